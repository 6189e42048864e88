package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wxcc/tokenservice/shared/token"
)

// The Service App part of PUT /admin/tokens/N (DESIGN 5a): the body may
// carry kind, appId, targetOrgId and manager; a Service App needs appId,
// clientId, clientSecret, targetOrgId and a manager that is another token
// of kind integration, and is minted right after it is created.

// validateServiceApp checks the Service App fields present.
func (cc *clientConfig) validateServiceApp() error {
	if cc.Kind != nil && *cc.Kind != string(token.KindServiceApp) && *cc.Kind != string(token.KindIntegration) {
		return errors.New(`kind must be "integration" or "service_app"`)
	}
	if cc.AppID != nil {
		if err := token.ValidateAppID(*cc.AppID); err != nil {
			return err
		}
	}
	if cc.TargetOrgID != nil && !printable(*cc.TargetOrgID, 1, 512) {
		return errors.New("targetOrgId must be 1-512 printable characters without spaces")
	}
	if cc.Manager != nil && token.ValidateName(*cc.Manager) != nil {
		return errors.New("manager must be the name of another token (1-128 characters of A-Z a-z 0-9 . _ -)")
	}
	return nil
}

// applyServiceApp writes the Service App fields of cc into t and reports
// which changed; it refuses a change of kind once t holds tokens, and a
// Service App field on an integration.
func (cc *clientConfig) applyServiceApp(t *token.Token) ([]string, error) {
	if cc.Kind != nil && token.Kind(*cc.Kind) != t.Kind && (*cc.Kind == string(token.KindServiceApp) || t.IsServiceApp()) {
		if t.HasAccessToken() {
			return nil, errorf(http.StatusBadRequest, "kind cannot change once the token holds tokens: DELETE it and create it again")
		}
		t.Kind = token.Kind(*cc.Kind)
	}
	if !t.IsServiceApp() {
		if cc.AppID != nil || cc.TargetOrgID != nil || cc.Manager != nil {
			return nil, errorf(http.StatusBadRequest, `appId, targetOrgId and manager are for "kind":"service_app" only`)
		}
		return nil, nil
	}
	var changed []string
	set := func(field string, dst *string, v *string) {
		if v != nil && *dst != *v {
			*dst = *v
			changed = append(changed, field)
		}
	}
	set("appId", &t.AppID, cc.AppID)
	set("targetOrgId", &t.TargetOrgID, cc.TargetOrgID)
	set("manager", &t.Manager, cc.Manager)
	t.OrgID = t.TargetOrgID
	if missing := t.MissingClientFields(); len(missing) > 0 {
		return nil, errorf(http.StatusBadRequest, "a Service App needs appId, clientId, clientSecret, targetOrgId and manager: no "+strings.Join(missing, ", "))
	}
	return changed, nil
}

// checkManager refuses a manager that does not exist, is itself a Service
// App, or is the token being written (400).
func (s *server) checkManager(ctx context.Context, name string, manager *string) *apiError {
	if manager == nil {
		return nil
	}
	app := &token.Token{Name: name, Kind: token.KindServiceApp, Manager: *manager}
	var m *token.Token
	if *manager != name {
		var err error
		m, err = token.ForReauthorization(s.store.Get(ctx, *manager))
		switch {
		case errors.Is(err, token.ErrNotFound):
			m = nil
		case err != nil:
			return statusOf(err, *manager, s.now())
		}
	}
	if err := token.CheckManager(app, m); err != nil {
		return errorf(http.StatusBadRequest, "manager: "+strings.TrimPrefix(err.Error(), token.ErrBadManager.Error()+": "))
	}
	return nil
}

// mintAfterPut mints a Service App that the PUT left without tokens (just
// created, or resumed from config_error), through the refresh protocol,
// and says how it went for the answer. An integration is left alone.
func (s *server) mintAfterPut(ctx context.Context, name string, t *token.Token) map[string]any {
	if t == nil || !t.IsServiceApp() || t.HasAccessToken() || t.HeldBack(s.now()) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	res, err := s.refresher.Refresh(ctx, name, token.RefreshOptions{Trigger: token.TriggerManual, WaitForOthers: true})
	s.cache.drop(name)
	out := map[string]any{"minted": err == nil && res.Token != nil && res.Token.HasAccessToken()}
	if res.Token != nil {
		out["tokenStatus"] = string(res.Token.State())
		if le := res.Token.LastError; le != nil {
			out["lastError"] = le.Message
		}
	}
	if err != nil {
		s.logger.Warn("service app not minted after put", "token", name, "error", err.Error())
		if res.Token == nil {
			out["tokenStatus"] = "pending"
			out["lastError"] = fmt.Sprintf("mint not finished: %s", statusOf(err, name, s.now()).message)
		}
	}
	return out
}
