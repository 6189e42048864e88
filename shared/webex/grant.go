package webex

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxcc/tokenservice/shared/token"
)

// toGrant converts oauth2's answer. Lifetimes Webex did not send are 0.
func toGrant(tok *oauth2.Token) token.Grant {
	g := token.Grant{AccessToken: tok.AccessToken}
	if d, ok := seconds(tok.Extra("expires_in")); ok {
		g.ExpiresIn = d
	} else if tok.ExpiresIn > 0 {
		g.ExpiresIn = time.Duration(tok.ExpiresIn) * time.Second
	}
	// oauth2 copies the refresh token that was sent into an answer that
	// has none; only one that is really in the answer counts.
	if sentRefreshToken(tok) {
		g.RefreshToken = tok.RefreshToken
		if d, ok := seconds(tok.Extra("refresh_token_expires_in")); ok {
			g.RefreshExpiresIn = d
		}
	}
	return g
}

// sentRefreshToken reports whether the answer itself had a non-empty
// refresh_token.
func sentRefreshToken(tok *oauth2.Token) bool {
	switch v := tok.Extra("refresh_token").(type) {
	case nil:
		return false
	case string:
		return v != "" && tok.RefreshToken != ""
	default: // a form-encoded answer whose token parsed as a number
		return tok.RefreshToken != ""
	}
}

// seconds reads a lifetime in seconds that JSON carried as a number or a
// string (form-encoded answers arrive as int64 or float64 from oauth2).
// It reports false for absent, unparseable or non-positive values.
func seconds(v any) (time.Duration, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int64:
		f = float64(v)
	case json.Number:
		n, err := v.Float64()
		if err != nil {
			return 0, false
		}
		f = n
	case string:
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, false
		}
		f = n
	default:
		return 0, false
	}
	if math.IsNaN(f) || f <= 0 {
		return 0, false
	}
	const maxSeconds = float64(math.MaxInt64 / int64(time.Second))
	return time.Duration(math.Min(f, maxSeconds)) * time.Second, true
}
