package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/api/idtoken"

	"github.com/wxcc/tokenservice/shared/config"
)

// newTriggerGuard builds the guard of the trigger routes from
// RUN_AUTH_SECRET, RUN_OIDC_AUDIENCE / RUN_OIDC_SERVICE_ACCOUNT,
// RUN_BEHIND_CLOUD_RUN_IAM, TRUSTED_PROXY_HOPS and AUTH_FAILURE_LIMIT /
// AUTH_FAILURE_WINDOW.
func newTriggerGuard(ctx context.Context, cfg *config.Config, log *slog.Logger) (*triggerGuard, error) {
	var verify tokenValidator
	if cfg.RunOIDCAudience != "" {
		v, err := idtoken.NewValidator(ctx)
		if err != nil {
			return nil, fmt.Errorf("oidc validator: %w", err)
		}
		verify = oidcValidator(v, cfg.RunOIDCAudience)
	}
	return newGuard(guardSettingsFrom(cfg, verify, log, time.Now)), nil
}

// guardSettingsFrom takes the guard's settings from the configuration,
// with verify as the full ID token check.
func guardSettingsFrom(cfg *config.Config, verify tokenValidator, log *slog.Logger, now func() time.Time) guardSettings {
	return guardSettings{
		secret: cfg.RunAuthSecret, verify: verify,
		audience: cfg.RunOIDCAudience, account: cfg.RunOIDCAccount, behindIAM: cfg.RunBehindIAM,
		trustedHops:  cfg.TrustedProxyHops,
		failureLimit: cfg.AuthFailureLimit, failureWindow: cfg.AuthFailureWindow,
		now: now, log: log,
	}
}

// oidcValidator checks a Google-signed ID token for audience and issuer
// and returns its verified email.
func oidcValidator(v *idtoken.Validator, audience string) tokenValidator {
	return func(ctx context.Context, raw string) (string, error) {
		p, err := v.Validate(ctx, raw, audience)
		if err != nil {
			return "", err
		}
		// idtoken checks signature, expiry and audience, not the issuer.
		if p.Issuer != googleIssuers[0] && p.Issuer != googleIssuers[1] {
			return "", fmt.Errorf("id token not issued by Google")
		}
		email, _ := p.Claims["email"].(string)
		if verified, _ := p.Claims["email_verified"].(bool); !verified || email == "" {
			return "", fmt.Errorf("id token has no verified email")
		}
		return email, nil
	}
}
