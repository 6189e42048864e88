package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// pinger is a store that can say whether it answers (Firestore's Ping).
type pinger interface {
	Ping(ctx context.Context) error
}

// newHandler serves POST /run (behind guard), the probes (GET and HEAD
// /healthz, /health and /ready, which checks the store) and, when metrics
// is not nil, GET /metrics.
func newHandler(sw *sweeper, guard *triggerGuard, metrics http.Handler, log *slog.Logger) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = guard.clientIP // TRUSTED_PROXY_HOPS, as the api
	e.Use(middleware.BodyLimit("8K"))
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code := http.StatusInternalServerError
		if he, ok := err.(*echo.HTTPError); ok {
			code = he.Code
		}
		if !c.Response().Committed {
			_ = c.JSON(code, map[string]string{"status": strconv.Itoa(code), "message": http.StatusText(code)})
		}
	}
	e.POST("/run", func(c echo.Context) error {
		sum, err := sw.Run(c.Request().Context())
		if err != nil && sum.Error == "" {
			sum.Error = "sweep did not complete"
		}
		code := http.StatusOK
		if err != nil {
			code = http.StatusServiceUnavailable
		}
		return c.JSON(code, sum)
	}, guard.protect)
	probe := []string{http.MethodGet, http.MethodHead}
	health := func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "200", "message": "ok"})
	}
	e.Match(probe, "/healthz", health)
	e.Match(probe, "/health", health) // Cloud Run's front end reserves some paths ending in z
	e.Match(probe, "/ready", func(c echo.Context) error {
		if p, ok := sw.store.(pinger); ok {
			ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
			defer cancel()
			if err := p.Ping(ctx); err != nil {
				log.Warn("not ready: store unreachable", "error", err.Error())
				c.Response().Header().Set("Retry-After", "5")
				return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "503", "message": "firestore unreachable"})
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "200", "message": "ready"})
	})
	if metrics != nil {
		e.GET("/metrics", echo.WrapHandler(metrics))
	}
	return e
}
