package main

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/token"
)

// apiError is a failure as the caller sees it: a status, a message that
// reveals no internals, and for 429/503 how long to wait.
type apiError struct {
	code       int
	message    string
	retryAfter time.Duration
	// hold, when set, is called before the answer is written (a refusal
	// that may have to wait: see refusalPacer).
	hold func(context.Context)
}

func (e *apiError) Error() string { return e.message }

func errorf(code int, message string) *apiError { return &apiError{code: code, message: message} }

// statusOf is the one table from the model's errors to HTTP statuses.
// Internal error text never reaches the caller; it goes to the log.
func statusOf(err error, name string, now time.Time) *apiError {
	var ae *apiError
	var be *token.BackoffError
	var me *token.ManagerError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, token.ErrInvalidName):
		return errorf(http.StatusBadRequest, "invalid name: use 1-128 characters of A-Z a-z 0-9 . _ -")
	case errors.Is(err, token.ErrNotFound):
		return errorf(http.StatusNotFound, "no token named "+name)
	case errors.Is(err, token.ErrNotAuthorized):
		return errorf(http.StatusConflict, "token "+name+" has not been authorized yet")
	case errors.As(err, &me) && me.Reauth:
		return errorf(http.StatusConflict, "Service App "+name+" cannot be minted: its manager "+me.Manager+" must be authorized again")
	case errors.Is(err, token.ErrWaitingForManager):
		return errorf(http.StatusConflict, "Service App "+name+" waits for its manager, which must be authorized again")
	case errors.Is(err, token.ErrReauthRequired):
		return errorf(http.StatusConflict, "token "+name+" must be authorized again: its refresh token expired or was revoked")
	case errors.Is(err, token.ErrConfigError):
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: time.Minute,
			message: "webex rejected the client credentials of token " + name + "; an administrator must fix clientId/clientSecret"}
	case errors.As(err, &be):
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: be.Until.Sub(now),
			message: "token " + name + " could not be refreshed; retry later"}
	case errors.Is(err, token.ErrSealed):
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: time.Minute,
			message: "token " + name + " cannot be decrypted with the configured keys"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, token.ErrUnavailable):
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second,
			message: "token " + name + " is temporarily unavailable; retry later"}
	default:
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second,
			message: "temporarily unavailable; retry later"}
	}
}

// writeError sends ae as the JSON body every failure has.
func writeError(c echo.Context, ae *apiError) error {
	if ae.hold != nil {
		ae.hold(c.Request().Context())
	}
	if ae.retryAfter > 0 || ae.code == http.StatusServiceUnavailable || ae.code == http.StatusTooManyRequests {
		secs := int(math.Ceil(ae.retryAfter.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	return c.JSON(ae.code, map[string]string{"status": strconv.Itoa(ae.code), "message": ae.message})
}

// httpErrorHandler answers Echo's own errors (unknown route, wrong method,
// body too large) in the same JSON shape.
func httpErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(code)
		}
	}
	_ = writeError(c, &apiError{code: code, message: msg})
}
