package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// missingTTL bounds how long an unknown name is remembered as unknown:
// a document created on another instance is seen after at most this long.
const missingTTL = 5 * time.Second

// storeRetry is how long a cached token is served without asking the store
// again after the store failed to answer.
const storeRetry = 5 * time.Second

// getToken is the sample's GET /?name=N with x-token-passphrase.
func (s *server) getToken(c echo.Context) error {
	name := queryValue(c.Request().URL, "name")
	if name == "" {
		return httpapi.Write(c, httpapi.Errorf(http.StatusBadRequest, "missing name: call GET /?name=<token name>"))
	}
	if err := token.ValidateName(name); err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	// The store read and an inline refresh share one budget: a flow
	// waits INLINE_REFRESH_TIMEOUT at most, whatever is slow.
	budget := time.Now().Add(s.cfg.InlineTimeout)
	t, err := s.checkTokenPassphrase(c, name, budget)
	if err == nil {
		t, err = s.servable(c.Request().Context(), t, budget)
	}
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	// Set here from shared, read-only values, Content-Type costs Echo no
	// allocation; the body is built in a pooled buffer, written out
	// before JSONBlob returns.
	c.Response().Header()["Content-Type"] = jsonContentType
	buf := bodyBuffers.Get().(*[]byte)
	*buf = appendTokenBody((*buf)[:0], t, s.now())
	err = c.JSONBlob(http.StatusOK, *buf)
	bodyBuffers.Put(buf)
	return err
}

// jsonContentType is the Content-Type of JSON answers, as Echo sets it.
var jsonContentType = []string{echo.MIMEApplicationJSON}

// bodyBuffers hold token bodies while they are written out.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// cached returns name's token from the cache while it is younger than
// CACHE_MAX_AGE, else from the store, waiting for it until budget. While
// the store fails, a cached token is still returned as long as it is
// servable.
func (s *server) cached(ctx context.Context, name string, budget time.Time) (*token.Token, error) {
	now := s.now()
	e := s.cache.get(name)
	if e != nil && !now.After(e.checkAfter) {
		s.metrics.Cache("hit")
		if e.tok == nil {
			return nil, token.ErrNotFound
		}
		if e.unreadable != nil {
			return nil, e.unreadable
		}
	} else {
		if e != nil && e.tok == nil {
			e = nil // a stale "missing" says nothing while the store fails
		}
		t, err := s.load(ctx, name, budget)
		switch {
		case err == nil:
			s.storeDownUntil.Store(0)
			s.metrics.Cache("miss")
			e = s.cache.put(t, now.Add(s.cfg.CacheMaxAge))
		case errors.Is(err, token.ErrNotFound):
			s.cache.putMissing(name, now.Add(min(s.cfg.CacheMaxAge, missingTTL)))
			return nil, err
		case errors.As(err, new(*token.SealedError)):
			// The store answered: a key is missing. Remembered like any
			// token, so that asking again costs no read and no log line;
			// never a sign that the store is down.
			s.logger.Warn("token cannot be decrypted with the configured keys", "token", name, "error", err.Error())
			s.metrics.Cache("miss")
			s.cache.putUnreadable(err, now.Add(s.cfg.CacheMaxAge))
			return nil, err
		case e != nil:
			// Store trouble: keep serving what we have while it is valid,
			// and do not make every request wait for the store meanwhile.
			s.logger.Warn("store unreachable; serving cached token", "token", name, "error", err.Error())
			s.cache.postpone(e, s.now().Add(storeRetry))
			s.storeDownUntil.Store(s.now().Add(storeRetry).UnixNano())
			s.metrics.Cache("stale")
			if p := s.pending(name); p != nil {
				return p, nil
			}
			if e.tok.Servable(now, s.cfg.MinTokenValidity) {
				return e.tok, nil
			}
			return nil, fmt.Errorf("read %s: %w", name, token.ErrUnavailable)
		default:
			s.logger.Warn("store unreachable", "token", name, "error", err.Error())
			s.storeDownUntil.Store(s.now().Add(storeRetry).UnixNano())
			if p := s.pending(name); p != nil {
				return p, nil
			}
			return nil, fmt.Errorf("read %s: %w", name, token.ErrUnavailable)
		}
	}
	return e.tok, nil
}

// servable returns t, or a token refreshed inline when t is below the
// threshold (within INLINE_REFRESH_TIMEOUT), as long as it has
// MIN_TOKEN_VALIDITY left; else why not.
func (s *server) servable(ctx context.Context, t *token.Token, budget time.Time) (*token.Token, error) {
	now := s.now()
	name := t.Name
	if !t.HasAccessToken() && !t.IsServiceApp() { // a Service App is minted
		return nil, token.ErrNotAuthorized
	}
	if !t.Due(now, s.service.Threshold()) {
		return t, nil
	}
	// A lapsed refresh token goes to the protocol, which records it as
	// reauth_required without calling Webex; whatever else holds the
	// token back makes refreshing pointless now: it is usable, or not.
	if err := t.HeldBack(now); err != nil && !errors.Is(err, token.ErrRefreshTokenLapsed) {
		if t.Servable(now, s.cfg.MinTokenValidity) {
			return t, nil
		}
		// Before a failure, make sure it is not this instance's copy that
		// is old: another instance (an admin's Refresh now, a
		// re-authorization) may have stored a new token meanwhile.
		if fresh := s.reread(ctx, t, budget); fresh != nil {
			return s.servable(ctx, fresh, budget)
		}
		return nil, err
	}
	if p := s.pending(name); p != nil {
		return p, nil
	}
	if now.UnixNano() < s.storeDownUntil.Load() {
		// The store just failed to answer: a refresh, which reads and
		// writes it, would only make the caller wait.
		if t.Servable(now, s.cfg.MinTokenValidity) {
			return t, nil
		}
		return nil, fmt.Errorf("refresh %s: store unreachable: %w", name, token.ErrUnavailable)
	}
	rctx, cancel := context.WithDeadline(ctx, budget)
	defer cancel()
	res, err := s.service.Refresh(rctx, name, lifecycle.RefreshOptions{Trigger: token.TriggerInline, WaitForOthers: true})
	if res.Token != nil {
		t = s.cache.put(res.Token, s.now().Add(s.cfg.CacheMaxAge)).tok
	}
	if err != nil {
		s.logger.Info("inline refresh did not complete", "token", name, "outcome", res.Outcome.String(), "error", err.Error())
	}
	now = s.now()
	if t.Servable(now, s.cfg.MinTokenValidity) {
		return t, nil
	}
	if err == nil {
		err = token.ErrUnavailable
	}
	return nil, err
}

// pending returns name's token with a grant this instance holds and the
// store has not taken yet (cached, so that the next request finds it), or
// nil: Webex issued it, so it is served while the write waits.
func (s *server) pending(name string) *token.Token {
	p := s.service.Pending(name)
	if p == nil || !p.Servable(s.now(), s.cfg.MinTokenValidity) {
		return nil
	}
	return s.cache.put(p, s.now().Add(storeRetry)).tok
}

// reread reads t's document again, unless the store is known down, and
// returns it (cached) if it has moved on from t, else nil. It is for the
// failure path only: a cached token that cannot be served.
func (s *server) reread(ctx context.Context, t *token.Token, budget time.Time) *token.Token {
	now := s.now().UnixNano()
	if now < s.storeDownUntil.Load() {
		return nil
	}
	// At most once a second per token: a flow that keeps asking for a
	// token that needs a person costs one read a second, not one a request.
	if last, ok := s.rereads.Load(t.Name); ok && now-last.(int64) < int64(time.Second) {
		return nil
	}
	s.rereads.Store(t.Name, now)
	cur, err := s.load(ctx, t.Name, budget)
	if err != nil || (cur.Generation == t.Generation && cur.Status == t.Status && cur.Version.Equal(t.Version)) {
		return nil
	}
	return s.cache.put(cur, s.now().Add(s.cfg.CacheMaxAge)).tok
}

// load reads name from the store, one read per name at a time, bounded by
// the inline timeout so that a hung store never holds a caller, who waits
// until budget at most.
func (s *server) load(ctx context.Context, name string, budget time.Time) (*token.Token, error) {
	ch := s.loads.DoChan(name, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.InlineTimeout)
		defer cancel()
		return s.store.Get(lctx, name)
	})
	wait := time.NewTimer(time.Until(budget))
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, fmt.Errorf("read %s: %w", name, context.DeadlineExceeded)
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*token.Token), nil
	}
}

// appendTokenBody renders the success body by hand: it is the hot path,
// and the sample's shape is fixed: {"status":"200","token":...} plus expiry
// fields and orgId when it is known.
func appendTokenBody(b []byte, t *token.Token, now time.Time) []byte {
	org := t.Org()
	b = append(b, `{"status":"200","token":`...)
	b = appendJSONString(b, t.AccessToken)
	b = append(b, `,"expiresAt":"`...)
	b = t.AccessExpires.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","expiresIn":`...)
	b = strconv.AppendInt(b, int64(t.Remaining(now)/time.Second), 10)
	if org != "" {
		b = append(b, `,"orgId":`...)
		b = appendJSONString(b, org)
	}
	b = append(b, '}')
	return b
}

// appendJSONString appends s as a JSON string; the fast path covers what
// Webex tokens are made of, anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// queryValue is u.Query().Get(key) without building the whole map (the
// hot path): a query without escapes (%, +) or semicolons, which
// url.ParseQuery treats specially, is split in place.
func queryValue(u *url.URL, key string) string {
	raw := u.RawQuery
	if strings.ContainsAny(raw, "%+;") {
		return u.Query().Get(key)
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(pair, "="); k == key {
			return v
		}
	}
	return ""
}
