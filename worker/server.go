package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// tokenValidator checks a Google-signed OIDC ID token (Cloud Scheduler's)
// and returns the email it was issued to.
type tokenValidator func(ctx context.Context, idToken string) (email string, err error)

// runAuth decides who may trigger a sweep. With nothing configured anyone
// may (protect the service with Cloud Run IAM then); with a shared secret,
// the x-run-secret header must match; with OIDC, a Google ID token for the
// audience from the service account; with both, either is accepted.
type runAuth struct {
	secret   [32]byte
	hasSec   bool
	validate tokenValidator // nil: OIDC off
	account  string
}

func (a *runAuth) open() bool { return !a.hasSec && a.validate == nil }

func (a *runAuth) allow(r *http.Request) bool {
	if a.open() {
		return true
	}
	if a.hasSec {
		if got := r.Header.Get("x-run-secret"); got != "" {
			g := sha256.Sum256([]byte(got))
			if subtle.ConstantTimeCompare(g[:], a.secret[:]) == 1 {
				return true
			}
		}
	}
	if a.validate != nil {
		scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if ok && strings.EqualFold(scheme, "Bearer") && raw != "" { // schemes are case-insensitive (RFC 9110)
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			email, err := a.validate(ctx, raw)
			if err == nil && subtle.ConstantTimeCompare([]byte(strings.ToLower(email)), []byte(strings.ToLower(a.account))) == 1 {
				return true
			}
		}
	}
	return false
}

// pinger is a store that can say whether it answers (Firestore's Ping).
type pinger interface {
	Ping(ctx context.Context) error
}

// newHandler serves POST /run, the probes (GET and HEAD /healthz, /health
// and /ready, which checks the store) and, when metrics is not nil,
// GET /metrics.
func newHandler(sw *sweeper, auth *runAuth, metrics http.Handler, log *slog.Logger) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
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
		if !auth.allow(c.Request()) {
			log.Warn("sweep trigger refused", "remote_ip", c.RealIP())
			return c.JSON(http.StatusUnauthorized, map[string]string{"status": "401", "message": "x-run-secret or a Cloud Scheduler OIDC token is required"})
		}
		sum, err := sw.Run(c.Request().Context())
		if err != nil && sum.Error == "" {
			sum.Error = "sweep did not complete"
		}
		code := http.StatusOK
		if err != nil {
			code = http.StatusServiceUnavailable
		}
		return c.JSON(code, sum)
	})
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
