// Command bareecho is the baseline of the hot-path benchmark: a bare Echo
// server that answers GET / with the body in the file named by BODY_FILE,
// as the api answers a cached token, with nothing else in between. It
// listens on PORT.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
)

func main() {
	body, err := os.ReadFile(os.Getenv("BODY_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareecho:", err)
		os.Exit(1)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) })
	if err := e.Start(":" + os.Getenv("PORT")); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "bareecho:", err)
		os.Exit(1)
	}
}
