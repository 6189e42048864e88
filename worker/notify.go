package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/bootstrap"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/notify"
)

// remindTimeout bounds one round of reminders after a sweep.
const remindTimeout = 2 * time.Minute

// newNotifier builds the consumer of the service's own events that tells
// people when they must act (DESIGN 2b), or nil when no channel is
// configured.
func newNotifier(cfg *config.Config, core *bootstrap.Core, log *slog.Logger, now func() time.Time) (*notify.Notifier, error) {
	if !cfg.Notifies() {
		return nil, nil
	}
	return notify.New(notify.Config{
		WebexBotToken: cfg.NotifyWebexBotToken, WebexRoomID: cfg.NotifyWebexRoomID, Webex: core.Webex, WebexTimeout: cfg.WebexTimeout,
		WebhookURL: cfg.NotifyWebhookURL, WebhookSecret: cfg.NotifyWebhookSecret,
		ConsoleURL: cfg.ConsoleURL, Reminder: cfg.NotifyReminder, GiveUp: cfg.NotifyGiveUp,
		Conditions: core.Store, Tokens: core.Store, Sweeps: core.Store,
		Activity: core.Activity, Instance: core.Service.Holder(), Logger: log, Now: now,
	})
}

// notifyHandler is POST /notify: a Pub/Sub push of one of the service's
// events (the standard push envelope). 2xx acknowledges it; anything
// else makes Pub/Sub deliver it again, with backoff. Without a channel
// every event is acknowledged: there is nobody to tell.
func notifyHandler(n *notify.Notifier) echo.HandlerFunc {
	return func(c echo.Context) error {
		if n == nil {
			return httpapi.OK(c, "no notification channel is configured; event acknowledged")
		}
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, notify.MaxEnvelope+1))
		if err != nil {
			return httpapi.Write(c, httpapi.Errorf(http.StatusBadRequest, "body could not be read"))
		}
		status, err := n.HandlePush(c.Request().Context(), body)
		if err != nil {
			return httpapi.Write(c, &httpapi.Error{Code: status, Message: err.Error(), RetryAfter: retryAfterOf(status)})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": strconv.Itoa(http.StatusOK), "message": "handled"})
	}
}

func retryAfterOf(status int) time.Duration {
	if status == http.StatusServiceUnavailable {
		return 10 * time.Second
	}
	return 0
}

// reminders sends the reminders that are due after a sweep, in the
// background and one round at a time: a sweep's answer never waits for
// Webex or a webhook.
type reminders struct {
	n       *notify.Notifier
	log     *slog.Logger
	running atomic.Bool
}

func (r *reminders) after(ctx context.Context) {
	if r == nil || r.n == nil || !r.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.running.Store(false)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remindTimeout)
		defer cancel()
		if err := r.n.Remind(ctx); err != nil {
			r.log.Warn("reminders not all sent", "error", err.Error())
		}
	}()
}
