package token

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalidConfig: a client config change breaks a rule of the model;
// the wrapping error says which, without echoing a secret.
var ErrInvalidConfig = errors.New("invalid client config")

// ConfigChange is a change of a token's client config and its own
// passphrase as an operator asks for it (PUT /admin/tokens/N, the
// console's forms). A nil field is left as it is; Passphrase "" removes
// the token's own passphrase. Kind, AppID, TargetOrgID and Manager are a
// Service App's (DESIGN 5a).
type ConfigChange struct {
	ClientID     *string
	ClientSecret *string
	RedirectURI  *string
	Scopes       *[]string
	Passphrase   *string
	Kind         *string
	AppID        *string
	TargetOrgID  *string
	Manager      *string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// Validate checks every field present but the passphrase, whose rules
// are the hashing's (package passphrase); it never echoes a secret.
func (c *ConfigChange) Validate() error {
	if c.ClientID != nil && !printable(*c.ClientID, 1, 256) {
		return invalid("clientId must be 1-256 printable characters without spaces")
	}
	if c.ClientSecret != nil && !printable(*c.ClientSecret, 1, 512) {
		return invalid("clientSecret must be 1-512 printable characters without spaces")
	}
	if c.RedirectURI != nil {
		if err := validRedirectURI(*c.RedirectURI); err != nil {
			return err
		}
	}
	if c.Scopes != nil {
		if len(*c.Scopes) > 64 {
			return invalid("scopes: at most 64")
		}
		for _, sc := range *c.Scopes {
			if !printable(sc, 1, 128) {
				return invalid("scopes must be 1-128 printable characters without spaces each")
			}
		}
	}
	if c.Kind != nil && *c.Kind != string(KindServiceApp) && *c.Kind != string(KindIntegration) {
		return invalid(`kind must be "integration" or "service_app"`)
	}
	if c.AppID != nil {
		if err := ValidateAppID(*c.AppID); err != nil {
			return invalid("appId must be a Webex application ID (1-512 characters of A-Z a-z 0-9 - _, as developer.webex.com shows it): %v", err)
		}
	}
	if c.TargetOrgID != nil && !printable(*c.TargetOrgID, 1, 512) {
		return invalid("targetOrgId must be 1-512 printable characters without spaces")
	}
	if c.Manager != nil && ValidateName(*c.Manager) != nil {
		return invalid("manager must be the name of another token (1-128 characters of A-Z a-z 0-9 . _ -)")
	}
	return nil
}

// validRedirectURI: an absolute https URL (http only for localhost), no
// fragment (RFC 6749 section 3.1.2).
func validRedirectURI(uri string) error {
	if strings.Contains(uri, "#") {
		return invalid("redirectUri must not contain a fragment (#): RFC 6749 section 3.1.2")
	}
	u, err := url.Parse(uri)
	local := err == nil && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1")
	if err != nil || len(uri) > 2048 || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && local) {
		return invalid("redirectUri must be an absolute https URL (http only for localhost)")
	}
	return nil
}

func printable(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Apply writes the change into t and reports which fields changed, by
// their document names (never their values). passphraseHash is the new
// passphrase's hash when the change sets one. It refuses a change of kind
// once t holds tokens, and a Service App's fields on an integration; a
// Service App must keep every field a mint needs.
func (c *ConfigChange) Apply(t *Token, passphraseHash string) ([]string, error) {
	var changed []string
	set := func(field string, dst *string, v *string) {
		if v != nil && *dst != *v {
			*dst = *v
			changed = append(changed, field)
		}
	}
	if c.Kind != nil && Kind(*c.Kind) != t.Kind && (*c.Kind == string(KindServiceApp) || t.IsServiceApp()) {
		if t.HasAccessToken() {
			return nil, invalid("kind cannot change once the token holds tokens: delete it and create it again")
		}
		t.Kind = Kind(*c.Kind)
	}
	set("clientId", &t.ClientID, c.ClientID)
	set("clientSecret", &t.ClientSecret, c.ClientSecret)
	set("redirectUri", &t.RedirectURI, c.RedirectURI)
	if c.Scopes != nil && strings.Join(*c.Scopes, " ") != strings.Join(t.Scopes, " ") {
		t.Scopes = append([]string{}, *c.Scopes...)
		changed = append(changed, "scopes")
	}
	if c.Passphrase != nil && (passphraseHash != "" || t.PassphraseHash != "") {
		t.PassphraseHash = passphraseHash
		changed = append(changed, "passphrase")
	}
	if !t.IsServiceApp() {
		if c.AppID != nil || c.TargetOrgID != nil || c.Manager != nil {
			return nil, invalid(`appId, targetOrgId and manager are for "kind":"service_app" only`)
		}
		return changed, nil
	}
	set("appId", &t.AppID, c.AppID)
	set("targetOrgId", &t.TargetOrgID, c.TargetOrgID)
	set("manager", &t.Manager, c.Manager)
	t.OrgID = t.TargetOrgID
	if missing := t.MissingClientFields(); len(missing) > 0 {
		return nil, invalid("a Service App needs appId, clientId, clientSecret, targetOrgId and manager: no %s", strings.Join(missing, ", "))
	}
	return changed, nil
}
