// Command bareecho is the baseline of the hot-path benchmark: a bare Echo
// server that answers GET / with the body in the file named by BODY_FILE,
// as the api answers a cached token, with nothing else in between. It
// listens on PORT.
//
// With HEADERS_FILE (a JSON object of header lists: the headers of the
// api's answer, saved by the bench) it also sends those headers, and
// serves through shared/httpserve as the api does (its read, write and
// idle timeouts): the api's whole answer from a handler that does nothing
// else, which tells the cost of the api's code from the cost of what it
// answers.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/httpserve"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bareecho:", err)
		os.Exit(1)
	}
}

func run() error {
	body, err := os.ReadFile(os.Getenv("BODY_FILE"))
	if err != nil {
		return err
	}
	var headers http.Header
	if f := os.Getenv("HEADERS_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &headers); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error {
		h := c.Response().Header()
		for k, v := range headers { // shared, read-only slices, as the api's
			h[k] = v
		}
		return c.JSONBlob(http.StatusOK, body)
	})
	addr := ":" + os.Getenv("PORT")
	if headers == nil {
		if err := e.Start(addr); err != nil && err != http.ErrServerClosed {
			return err
		}
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return httpserve.Serve(ctx, ln, e, slog.New(slog.DiscardHandler), httpserve.Options{})
}
