package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// ProbePaths are the health probes' paths. Cloud Run's front end
// reserves some paths ending in z, so each has a second name without it.
var ProbePaths = []string{"/healthz", "/health", "/readyz", "/ready"}

// IsProbe reports whether path is a health probe's.
func IsProbe(path string) bool {
	for _, p := range ProbePaths {
		if p == path {
			return true
		}
	}
	return false
}

// Probes registers the health probes on e for GET and HEAD: liveness at
// /healthz and /health, readiness (ping answers within 2 s) at /readyz
// and /ready. m is middleware for each route.
func Probes(e *echo.Echo, ping func(context.Context) error, log *slog.Logger, m ...echo.MiddlewareFunc) {
	methods := []string{http.MethodGet, http.MethodHead}
	live := func(c echo.Context) error { return OK(c, "ok") }
	ready := func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			log.Warn("not ready: store unreachable", "error", err.Error())
			return Write(c, &Error{Code: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Message: "firestore unreachable"})
		}
		return OK(c, "ready")
	}
	e.Match(methods, "/healthz", live, m...)
	e.Match(methods, "/health", live, m...)
	e.Match(methods, "/readyz", ready, m...)
	e.Match(methods, "/ready", ready, m...)
}
