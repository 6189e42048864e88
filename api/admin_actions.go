package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// opsStore is what the admin actions and the console need from the store
// beyond adminStore: the Firestore store implements it.
type opsStore interface {
	ListChecked(ctx context.Context, pageSize int, fn func(t *token.Token, unreadable []string) error) error
	LastSweep(ctx context.Context) (*token.SweepRecord, error)
	Delete(ctx context.Context, name string, event func(t *token.Token) token.Event) (token.Event, error)
}

// adminActionRoutes adds the JSON endpoints behind the console, usable by
// scripts too, with x-admin-passphrase or a console session.
func (s *server) adminActionRoutes() {
	s.echo.POST("/admin/tokens/:name/refresh", s.refreshNow, s.requireAdmin)
	s.echo.DELETE("/admin/tokens/:name", s.deleteTokenJSON, s.requireAdmin)
	s.get("/admin/status", s.adminStatus, s.requireAdmin)
}

// refreshNow is POST /admin/tokens/N/refresh: a forced refresh through the
// shared protocol (lease, one Webex call across all instances, the
// event). 200 with the new expiry, or the failure's own status.
func (s *server) refreshNow(c echo.Context) error {
	name := c.Param("name")
	res, err := s.forceRefresh(c, name)
	if err != nil {
		return writeError(c, statusOf(err, name, s.now()))
	}
	t := res.Token
	return c.JSON(http.StatusOK, map[string]any{
		"status": "200", "name": name, "outcome": res.Outcome.String(),
		"message":       "token " + name + " refreshed",
		"generation":    t.Generation,
		"accessExpires": t.AccessExpires.UnixMilli(),
		"expiresAt":     t.AccessExpires.UTC().Format(time.RFC3339),
		"expiresIn":     int64(t.Remaining(s.now()) / time.Second),
	})
}

// forceRefresh is an operator's "Refresh now" of name. A refresh that
// another instance completed meanwhile counts as done: across all
// instances it is still one Webex call.
func (s *server) forceRefresh(c echo.Context, name string) (lifecycle.Result, error) {
	if err := token.ValidateName(name); err != nil {
		return lifecycle.Result{}, err
	}
	// The Webex call has its own timeout; waiting a little longer lets a
	// lease holder elsewhere finish first.
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.WebexTimeout+5*time.Second)
	defer cancel()
	res, err := s.refresher.Refresh(ctx, name, lifecycle.RefreshOptions{Force: true, Trigger: token.TriggerManual, WaitForOthers: true})
	if err == nil && res.Outcome != lifecycle.Refreshed && res.Outcome != lifecycle.RefreshedElsewhere {
		err = &apiError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second,
			message: "token " + name + " is being refreshed by another instance; retry in a few seconds"}
	}
	if err == nil {
		s.cache.put(res.Token, s.now().Add(s.cfg.CacheMaxAge))
	} else {
		s.cache.drop(name) // the next read takes the failure's state from the store
	}
	s.console.invalidate()
	s.logger.Info("admin action", "action", "refresh", "token", name, "outcome", res.Outcome.String(), "remote_ip", c.RealIP())
	if err != nil {
		s.logger.Warn("manual refresh failed", "token", name, "error", err.Error())
		return res, err
	}
	return res, nil
}

// deleteTokenJSON is DELETE /admin/tokens/N: 200, or 404 if there is no
// such token.
func (s *server) deleteTokenJSON(c echo.Context) error {
	name := c.Param("name")
	if err := s.deleteToken(c, name); err != nil {
		return writeError(c, statusOf(err, name, s.now()))
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "200", "name": name, "message": "token " + name + " deleted"})
}

// deleteToken deletes name's document and publishes token.deleted: the
// event is written into the outbox with the delete, then handed to the
// publisher.
func (s *server) deleteToken(c echo.Context, name string) error {
	if err := token.ValidateName(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	now := s.now()
	e, err := s.ops.Delete(ctx, name, func(t *token.Token) token.Event {
		return token.NewEvent(token.EventDeleted, t, token.TriggerManual, now)
	})
	if err != nil {
		if !errors.Is(err, token.ErrNotFound) {
			s.logger.Warn("admin delete failed", "token", name, "error", err.Error())
		}
		return err
	}
	s.cache.drop(name)
	s.console.invalidate()
	s.refresher.Publish([]token.Event{e})
	s.logger.Info("admin action", "action", "delete", "token", name, "generation", e.Generation, "remote_ip", c.RealIP())
	return nil
}

// adminStatus is GET /admin/status: tokens counted by status (and by the
// console's finer health), the last sweep, and the start-up warnings.
func (s *server) adminStatus(c echo.Context) error {
	snap, err := s.console.overview(c.Request().Context())
	if err != nil {
		return writeError(c, statusOf(err, "", s.now()))
	}
	counts := map[string]int{}
	for _, st := range []token.Status{token.StatusPending, token.StatusActive, token.StatusReauthRequired, token.StatusConfigError} {
		counts[string(st)] = 0
	}
	health := map[string]int{}
	for _, h := range token.Healths {
		health[string(h)] = 0
	}
	for _, r := range snap.rows {
		counts[string(r.Status)]++
		health[string(r.Health)]++
	}
	warnings := s.startWarnings
	if warnings == nil {
		warnings = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"status": "200", "total": len(snap.rows), "counts": counts, "health": health,
		"lastSweep": sweepJSON(snap.sweep), "warnings": warnings,
	})
}

// sweepJSON is the last sweep as GET /admin/status shows it (times in
// ms, as in /admin/tokens), or nil when none was recorded.
func sweepJSON(rec *token.SweepRecord) map[string]any {
	if rec == nil {
		return nil
	}
	return map[string]any{
		"at": rec.At.UnixMilli(), "instance": rec.Instance,
		"scanned": rec.Scanned, "due": rec.Due, "refreshed": rec.Refreshed, "failed": rec.Failed,
		"skipped": rec.Skipped, "warned": rec.Warned, "published": rec.Published,
		"halted": rec.Halted, "error": rec.Error, "durationMs": rec.Duration.Milliseconds(),
	}
}
