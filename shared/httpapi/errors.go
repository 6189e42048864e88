// Package httpapi is what both binaries' Echo servers share: the JSON
// shape of every answer's failure, the one table from the model's errors
// to HTTP statuses, Echo's own errors in that shape, and the health
// probes. It turns errors into statuses; it decides nothing else.
package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// Error is a failure as the caller sees it: a status, a message that
// reveals no internals, and for 429/503 how long to wait.
type Error struct {
	Code       int
	Message    string
	RetryAfter time.Duration
	// Hold, when set, is called before the answer is written (a refusal
	// that may have to wait, see the api's refusal pacer).
	Hold func(context.Context)
}

func (e *Error) Error() string { return e.Message }

// Errorf is an Error with code and message.
func Errorf(code int, message string) *Error { return &Error{Code: code, Message: message} }

// Write sends e as the JSON body every failure has:
// {"status":"<code>","message":...}, with Retry-After for 429 and 503.
func Write(c echo.Context, e *Error) error {
	if e.Hold != nil {
		e.Hold(c.Request().Context())
	}
	if e.RetryAfter > 0 || e.Code == http.StatusServiceUnavailable || e.Code == http.StatusTooManyRequests {
		SetRetryAfter(c, e.RetryAfter)
	}
	return c.JSON(e.Code, map[string]string{"status": strconv.Itoa(e.Code), "message": e.Message})
}

// SetRetryAfter sets Retry-After to d in whole seconds, at least 1.
func SetRetryAfter(c echo.Context, d time.Duration) {
	secs := int(math.Ceil(d.Seconds()))
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// ErrorHandler answers Echo's own errors (unknown route, wrong method,
// body too large) in the same JSON shape.
func ErrorHandler(err error, c echo.Context) {
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
	_ = Write(c, &Error{Code: code, Message: msg})
}

// OK is the body of a plain success: {"status":"200","message":...}.
func OK(c echo.Context, message string) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "200", "message": message})
}
