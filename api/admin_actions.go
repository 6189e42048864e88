package main

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/token"
)

// adminRoutes adds the JSON admin endpoints, usable by scripts with
// x-admin-passphrase and by the console with its session.
func (s *server) adminRoutes() {
	s.get("/authorize", s.authorizeLink, s.requireAdmin)
	s.get("/admin/tokens", s.listTokens, s.requireAdmin)
	s.echo.PUT("/admin/tokens/:name", s.putToken, s.requireAdmin)
	s.echo.POST("/admin/tokens/:name/refresh", s.refreshNow, s.requireAdmin)
	s.echo.DELETE("/admin/tokens/:name", s.deleteToken, s.requireAdmin)
	s.get("/admin/status", s.adminStatus, s.requireAdmin)
	s.get("/admin/activity", s.listActivity, s.requireAdmin)
	s.echo.POST("/admin/tokens/:name/authorize", s.createLink, s.requireAdmin)
}

// refreshNow is POST /admin/tokens/N/refresh: a forced refresh through the
// shared protocol (lease, one Webex call across all instances, the
// event). 200 with the new expiry, or the failure's own status.
func (s *server) refreshNow(c echo.Context) error {
	name := c.Param("name")
	res, err := s.service.RefreshNow(c.Request().Context(), s.actor(c), name)
	s.changed(name)
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	t := res.Token
	s.cache.put(t, s.now().Add(s.cfg.CacheMaxAge))
	return c.JSON(http.StatusOK, map[string]any{
		"status": "200", "name": name, "outcome": res.Outcome.String(),
		"message":       "token " + name + " refreshed",
		"generation":    t.Generation,
		"accessExpires": t.AccessExpires.UnixMilli(),
		"expiresAt":     t.AccessExpires.UTC().Format(time.RFC3339),
		"expiresIn":     int64(t.Remaining(s.now()) / time.Second),
	})
}

// deleteToken is DELETE /admin/tokens/N: 200, or 404 if there is no
// such token; token.deleted is published.
func (s *server) deleteToken(c echo.Context) error {
	name := c.Param("name")
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	err := s.service.Delete(ctx, s.actor(c), name)
	s.changed(name)
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "200", "name": name, "message": "token " + name + " deleted"})
}

// adminStatus is GET /admin/status: tokens counted by status (and by the
// console's finer health), the last sweep, and the start-up warnings.
func (s *server) adminStatus(c echo.Context) error {
	snap, err := s.listing.Overview(c.Request().Context())
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, "", s.now()))
	}
	counts := map[string]int{}
	for _, st := range []token.Status{token.StatusPending, token.StatusActive, token.StatusReauthRequired, token.StatusConfigError} {
		counts[string(st)] = 0
	}
	health := map[string]int{}
	for _, h := range token.Healths {
		health[string(h)] = 0
	}
	for _, r := range snap.Rows {
		counts[string(r.Status)]++
		health[string(r.Health)]++
	}
	warnings := s.startWarnings
	if warnings == nil {
		warnings = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"status": "200", "total": len(snap.Rows), "counts": counts, "health": health,
		"lastSweep": sweepJSON(snap.Sweep), "warnings": warnings,
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
