package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/clientip"
	"github.com/wxcc/tokenservice/shared/throttle"
)

// tokenValidator fully verifies a Google-signed OIDC ID token (signature
// included) for the configured audience and returns the e-mail it was
// issued to.
type tokenValidator func(ctx context.Context, idToken string) (email string, err error)

// triggerGuard decides who may call the worker's trigger routes: POST /run
// (Cloud Scheduler) and any route guarded the same way (POST /notify, a
// Pub/Sub push subscription). With nothing configured anyone may (protect
// the service with Cloud Run IAM then). Otherwise a request needs either
// the x-run-secret header (RUN_AUTH_SECRET) or a Google ID token for
// RUN_OIDC_AUDIENCE from RUN_OIDC_SERVICE_ACCOUNT. Behind Cloud Run IAM
// (RUN_BEHIND_CLOUD_RUN_IAM), whose front end verifies the token and
// replaces its signature with SIGNATURE_REMOVED_BY_GOOGLE before the
// container sees it, such a token is accepted on its claims alone.
//
// Failed credentials are counted per client address; while an address has
// too many (AUTH_FAILURE_LIMIT within AUTH_FAILURE_WINDOW), every request
// from it gets 429. A request without any credential is refused without
// being counted: a browser can send such requests from any page.
//
// Guard a route with it by adding protect as the route's middleware:
//
//	e.POST("/notify", notify, guard.protect)
type triggerGuard struct {
	secret    [32]byte // SHA-256 of RUN_AUTH_SECRET, so comparing takes constant time
	hasSecret bool
	verify    tokenValidator // nil: ID tokens are not accepted
	audience  string
	account   string
	behindIAM bool

	clients  clientip.Resolver
	failures *throttle.Throttle
	now      func() time.Time
	log      *slog.Logger
}

// maxTriggerAddrs caps the client addresses whose failures are tracked.
const maxTriggerAddrs = 10_000

// throttleName is the throttle's second key: every guarded route shares
// one count per address.
const throttleName = "trigger"

// guardSettings are what a triggerGuard is built from (the configuration,
// through newTriggerGuard, or a test).
type guardSettings struct {
	secret        string
	verify        tokenValidator
	audience      string
	account       string
	behindIAM     bool
	trustedHops   int
	failureLimit  int
	failureWindow time.Duration
	now           func() time.Time
	log           *slog.Logger
}

func newGuard(s guardSettings) *triggerGuard {
	if s.now == nil {
		s.now = time.Now
	}
	g := &triggerGuard{
		verify: s.verify, audience: s.audience, account: s.account, behindIAM: s.behindIAM,
		clients:  clientip.Resolver{TrustedHops: s.trustedHops},
		failures: throttle.New(s.failureLimit, s.failureWindow, s.now, throttle.WithMaxPairs(maxTriggerAddrs)),
		now:      s.now,
		log:      s.log,
	}
	if s.secret != "" {
		g.secret, g.hasSecret = sha256.Sum256([]byte(s.secret)), true
	}
	return g
}

// open reports whether anyone may trigger (no credential configured).
func (g *triggerGuard) open() bool { return !g.hasSecret && g.verify == nil }

// verdict is what decide says of a request.
type verdict struct {
	code       int           // 0: let it through; else 401 or 429
	retryAfter time.Duration // with 429
	// reason says why, for the log; it never holds any part of a
	// credential.
	reason string
}

func (v verdict) allowed() bool { return v.code == 0 }

// decide says whether r may reach a guarded route.
func (g *triggerGuard) decide(r *http.Request) verdict {
	if g.open() {
		return verdict{}
	}
	secret := r.Header.Get("x-run-secret")
	authz := r.Header.Get("Authorization")
	if secret == "" && authz == "" {
		return verdict{code: http.StatusUnauthorized, reason: "no credential"}
	}
	addr := clientip.Key(g.clients.ClientAddr(r))
	if wait, blocked := g.failures.Blocked(addr, throttleName); blocked {
		return verdict{code: http.StatusTooManyRequests, retryAfter: wait, reason: "too many failed attempts from this address"}
	}
	if secret != "" && g.secretMatches(secret) {
		return verdict{}
	}
	reason := "wrong x-run-secret"
	if authz != "" {
		var ok bool
		if ok, reason = g.bearerAccepted(r.Context(), authz); ok {
			return verdict{}
		}
	}
	g.failures.Fail(addr, throttleName)
	return verdict{code: http.StatusUnauthorized, reason: reason}
}

func (g *triggerGuard) secretMatches(got string) bool {
	if !g.hasSecret {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], g.secret[:]) == 1
}

// bearerAccepted checks an Authorization header; when it refuses, reason
// says why.
func (g *triggerGuard) bearerAccepted(ctx context.Context, authz string) (ok bool, reason string) {
	if g.verify == nil {
		return false, "ID tokens are not accepted (RUN_OIDC_AUDIENCE is unset)"
	}
	scheme, raw, found := strings.Cut(authz, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || raw == "" { // schemes are case-insensitive (RFC 9110)
		return false, "Authorization is not a bearer token"
	}
	if len(raw) > maxIDTokenBytes {
		return false, "bearer token too long"
	}
	if signatureRemoved(raw) {
		if !g.behindIAM {
			return false, "token without signature (" + removedSignature + ") while RUN_BEHIND_CLOUD_RUN_IAM is false"
		}
		c, err := parseSignatureRemoved(raw)
		if err != nil {
			return false, "token without signature: " + err.Error()
		}
		if err := c.check(g.now(), g.audience, g.account); err != nil {
			return false, "token without signature: " + err.Error()
		}
		return true, ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	email, err := g.verify(ctx, raw)
	if err != nil {
		// The library's errors name no claim values, but stay generic.
		return false, "ID token did not verify"
	}
	if !sameAccount(email, g.account) {
		return false, "ID token is for another account"
	}
	return true, ""
}

// sameAccount compares two e-mail addresses case-insensitively, in time
// that does not depend on where they differ.
func sameAccount(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(strings.ToLower(a))), sha256.Sum256([]byte(strings.ToLower(b)))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// protect is Echo middleware that lets only what decide allows reach next.
func (g *triggerGuard) protect(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := g.decide(c.Request())
		if v.allowed() {
			return next(c)
		}
		if g.log != nil {
			g.log.Warn("trigger refused", "path", c.Request().URL.Path, "remote_ip", c.RealIP(),
				"status", v.code, "reason", v.reason)
		}
		msg := "x-run-secret or a Cloud Scheduler OIDC token is required"
		if v.code == http.StatusTooManyRequests {
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(v.retryAfter.Seconds())), 1)))
			msg = "too many failed attempts from this address; retry later"
		}
		return c.JSON(v.code, map[string]string{"status": strconv.Itoa(v.code), "message": msg})
	}
}

// clientIP is Echo's IPExtractor: the address TRUSTED_PROXY_HOPS says the
// client has, never one a client chose by sending X-Real-IP or
// X-Forwarded-For past the trusted proxies.
func (g *triggerGuard) clientIP(r *http.Request) string { return g.clients.ClientAddr(r).String() }
