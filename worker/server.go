package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/notify"
)

// pinger is a store that can say whether it answers (Firestore's Ping).
type pinger interface {
	Ping(ctx context.Context) error
}

// newHandler serves POST /run and POST /notify (behind guard), the probes (GET and HEAD
// /healthz, /health, and /readyz, /ready, which check the store) and,
// when metrics is not nil, GET /metrics.
func newHandler(sw *sweeper, guard *triggerGuard, n *notify.Notifier, metrics http.Handler, log *slog.Logger) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = guard.clientIP // TRUSTED_PROXY_HOPS, as the api
	e.Use(middleware.BodyLimit("8K"))
	e.HTTPErrorHandler = httpapi.ErrorHandler
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
	// Pub/Sub's push subscription to the service's own events, with the
	// OIDC token of its account: guarded exactly as /run is.
	e.POST("/notify", notifyHandler(n), guard.protect)
	ping := func(context.Context) error { return nil }
	if p, ok := sw.store.(pinger); ok {
		ping = p.Ping
	}
	httpapi.Probes(e, ping, log)
	if metrics != nil {
		e.GET("/metrics", echo.WrapHandler(metrics))
	}
	return e
}
