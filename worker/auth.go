package main

import (
	"context"
	"crypto/sha256"
	"fmt"

	"google.golang.org/api/idtoken"

	"github.com/wxcc/tokenservice/shared/config"
)

// newRunAuth builds the POST /run guard from RUN_AUTH_SECRET and
// RUN_OIDC_AUDIENCE / RUN_OIDC_SERVICE_ACCOUNT.
func newRunAuth(ctx context.Context, cfg *config.Config) (*runAuth, error) {
	a := &runAuth{account: cfg.RunOIDCAccount}
	if cfg.RunAuthSecret != "" {
		a.secret, a.hasSec = sha256.Sum256([]byte(cfg.RunAuthSecret)), true
	}
	if cfg.RunOIDCAudience != "" {
		v, err := idtoken.NewValidator(ctx)
		if err != nil {
			return nil, fmt.Errorf("oidc validator: %w", err)
		}
		a.validate = oidcValidator(v, cfg.RunOIDCAudience)
	}
	return a, nil
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
		if p.Issuer != "https://accounts.google.com" && p.Issuer != "accounts.google.com" {
			return "", fmt.Errorf("id token not issued by Google")
		}
		email, _ := p.Claims["email"].(string)
		if verified, _ := p.Claims["email_verified"].(bool); !verified || email == "" {
			return "", fmt.Errorf("id token has no verified email")
		}
		return email, nil
	}
}
