package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/wxcc/tokenservice/shared/httpapi"
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

// newHandler serves POST /run, the probes (GET and HEAD /healthz, /health,
// and /readyz, /ready, which check the store) and, when metrics is not
// nil, GET /metrics.
func newHandler(sw *sweeper, auth *runAuth, metrics http.Handler, log *slog.Logger) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.BodyLimit("8K"))
	e.HTTPErrorHandler = httpapi.ErrorHandler
	e.POST("/run", func(c echo.Context) error {
		if !auth.allow(c.Request()) {
			log.Warn("sweep trigger refused", "remote_ip", c.RealIP())
			return httpapi.Write(c, httpapi.Errorf(http.StatusUnauthorized, "x-run-secret or a Cloud Scheduler OIDC token is required"))
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
