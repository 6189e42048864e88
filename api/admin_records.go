package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/httpapi"
)

// activityJSON is one entry of GET /admin/activity: never a secret.
type activityJSON struct {
	At        int64  `json:"at"`
	ActorKind string `json:"actorKind"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Token     string `json:"token,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Outcome   string `json:"outcome"`
	Detail    string `json:"detail,omitempty"`
	// Generation and AccessExpires (ms) are a rotation's or a mint's.
	Generation    int64  `json:"generation,omitempty"`
	AccessExpires *int64 `json:"accessExpires,omitempty"`
}

// listActivity is GET /admin/activity?token=&actor=&action=&limit=&cursor=:
// the activity record, newest first (DESIGN 2b); next continues it.
func (s *server) listActivity(c echo.Context) error {
	q := c.QueryParams()
	f := activity.Filter{Token: q.Get("token"), Actor: q.Get("actor"), Action: activity.Action(q.Get("action")), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > activity.MaxLimit {
			return httpapi.Write(c, httpapi.Errorf(http.StatusBadRequest, "limit must be 1-"+strconv.Itoa(activity.MaxLimit)))
		}
		f.Limit = n
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	page, err := s.activity.List(ctx, f)
	switch {
	case errors.Is(err, activity.ErrBadFilter), errors.Is(err, activity.ErrBadCursor):
		return httpapi.Write(c, httpapi.Errorf(http.StatusBadRequest, err.Error()))
	case err != nil:
		s.logger.Warn("activity not listed", "error", err.Error())
		return httpapi.Write(c, httpapi.StatusOf(err, "", s.now()))
	}
	entries := make([]activityJSON, 0, len(page.Entries))
	for _, e := range page.Entries {
		entries = append(entries, activityJSON{At: e.At.UnixMilli(), ActorKind: string(e.ActorKind), Actor: e.Actor, Action: string(e.Action),
			Token: e.Token, Addr: e.Addr, Outcome: string(e.Outcome), Detail: e.Detail,
			Generation: e.Generation, AccessExpires: millisOrNil(e.AccessExpires)})
	}
	body := map[string]any{"status": "200", "entries": entries}
	if page.Next != "" {
		body["next"] = page.Next
	}
	return c.JSON(http.StatusOK, body)
}

// linkRequest is the optional body of POST /admin/tokens/N/authorize.
type linkRequest struct {
	Email *string `json:"email"`
}

// createLink is POST /admin/tokens/N/authorize: an authorization link
// for someone else (single use, AUTHORIZE_LINK_TTL, PKCE held
// server-side, optionally only for one e-mail address).
func (s *server) createLink(c echo.Context) error {
	name := c.Param("name")
	var body linkRequest
	if r := c.Request(); r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		if ae := decodeBody(c, &body); ae != nil {
			return httpapi.Write(c, ae)
		}
	}
	email := ""
	if body.Email != nil {
		email = strings.TrimSpace(*body.Email)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	id, l, err := s.service.CreateLink(ctx, s.actor(c), name, email)
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	out := map[string]any{"status": "200", "name": name, "url": s.console.LinkURL(c.Request(), id),
		"expiresAt": l.Expires.UTC().Format(time.RFC3339), "message": "authorization link for token " + name + ": send it to the person who must authorize; it works once"}
	if l.Email != "" {
		out["email"] = l.Email
	}
	return c.JSON(http.StatusOK, out)
}
