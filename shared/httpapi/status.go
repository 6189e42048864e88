package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// StatusOf is the one table from the model's and the use cases' errors to
// HTTP statuses, for the token named name. Internal error text never
// reaches the caller (it goes to the log); the model's own rule messages
// (an invalid config, why a token cannot be authorized) are written for
// people and are passed on.
func StatusOf(err error, name string, now time.Time) *Error {
	var e *Error
	var be *token.BackoffError
	var me *token.ManagerError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, token.ErrInvalidName):
		return Errorf(http.StatusBadRequest, "invalid name: use 1-128 characters of A-Z a-z 0-9 . _ -")
	case errors.Is(err, token.ErrInvalidConfig):
		return Errorf(http.StatusBadRequest, ruleMessage(err, token.ErrInvalidConfig))
	case errors.Is(err, token.ErrBadManager):
		return Errorf(http.StatusBadRequest, "manager: "+ruleMessage(err, token.ErrBadManager))
	case errors.Is(err, token.ErrNotFound):
		return Errorf(http.StatusNotFound, "no token named "+name)
	case errors.Is(err, token.ErrExists):
		return Errorf(http.StatusConflict, "a token named "+name+" exists already")
	case errors.Is(err, lifecycle.ErrNotAuthorizable):
		return Errorf(http.StatusConflict, "token "+ruleMessage(err, lifecycle.ErrNotAuthorizable))
	case errors.Is(err, token.ErrNotAuthorized):
		return Errorf(http.StatusConflict, "token "+name+" has not been authorized yet")
	case errors.As(err, &me) && me.Reauth:
		return Errorf(http.StatusConflict, "Service App "+name+" cannot be minted: its manager "+me.Manager+" must be authorized again")
	case errors.Is(err, token.ErrWaitingForManager):
		return Errorf(http.StatusConflict, "Service App "+name+" waits for its manager, which must be authorized again")
	case errors.Is(err, token.ErrReauthRequired):
		return Errorf(http.StatusConflict, "token "+name+" must be authorized again: its refresh token expired or was revoked")
	case errors.Is(err, token.ErrConfigError):
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: time.Minute,
			Message: "webex rejected the client credentials of token " + name + "; an administrator must fix clientId/clientSecret"}
	case errors.As(err, &be):
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: be.Until.Sub(now),
			Message: "token " + name + " could not be refreshed; retry later"}
	case errors.Is(err, lifecycle.ErrRefreshInProgress):
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second,
			Message: "token " + name + " is being refreshed by another instance; retry in a few seconds"}
	case errors.Is(err, token.ErrSealed):
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: time.Minute,
			Message: "token " + name + " cannot be decrypted with the configured keys"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, token.ErrUnavailable):
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second,
			Message: "token " + name + " is temporarily unavailable; retry later"}
	default:
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second,
			Message: "temporarily unavailable; retry later"}
	}
}

// CallbackStatusOf is StatusOf for a failed completion of an
// authorization at /callback (DESIGN 2: 400 rejected code, 404 unknown
// token, 409 client config incomplete, 502 Webex rejected the client,
// 503 Webex unreachable).
func CallbackStatusOf(err error, name string, now time.Time) *Error {
	var te *token.TransientError
	switch {
	case errors.Is(err, token.ErrNotFound):
		return Errorf(http.StatusNotFound, "no token named "+name+": create it first")
	case errors.Is(err, token.ErrNoClientConfig):
		return Errorf(http.StatusConflict, "token "+name+" has no complete client config (clientId, clientSecret, redirectUri)")
	case errors.Is(err, token.ErrGrantRejected):
		return Errorf(http.StatusBadRequest, "webex rejected the authorization code (expired, already used, or for another redirect URI)")
	case errors.Is(err, token.ErrClientRejected):
		return Errorf(http.StatusBadGateway, "webex rejected the client credentials stored for token "+name)
	case errors.Is(err, lifecycle.ErrWrongPerson), errors.Is(err, lifecycle.ErrPersonUnknown):
		return Errorf(http.StatusForbidden, ruleMessage(err, nil))
	case errors.As(err, &te):
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: max(te.RetryAfter, 0), Message: "webex is unavailable; authorize again later"}
	}
	return StatusOf(err, name, now)
}

// ruleMessage is a rule's message as the model wrote it, after the
// sentinel's own words (which the status already says).
func ruleMessage(err, sentinel error) string {
	msg := err.Error()
	if sentinel != nil {
		if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
			msg = msg[i+len(sentinel.Error())+2:]
		}
	}
	return msg
}
