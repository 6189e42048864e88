// Package config reads the service's configuration from environment
// variables, with the names and defaults fixed in DESIGN section 6. It takes
// a getenv function instead of reading the process environment, so tests
// supply their own.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/passphrase"
)

// Config is everything either binary reads. Fields used by only one binary
// are ignored by the other.
type Config struct {
	Project            string
	Collection         string
	EventsTopic        string
	RefreshThreshold   time.Duration
	WebexTokenURL      string
	WebexAuthorizeURL  string
	WebexAPIURL        string
	MetaCollection     string
	AdminSessionTTL    time.Duration
	Port               string
	MetricsAddr        string
	WebexTimeout       time.Duration
	EncryptionKeys     string
	TokenPassphrase    string
	PreviousPassphrase string
	AdminPassphrase    string
	StateSigningKey    string
	MinTokenValidity   time.Duration
	CacheMaxAge        time.Duration
	InlineTimeout      time.Duration
	LegacyState        bool
	CORSAllowOrigins   []string
	AuthFailureLimit   int
	AuthFailureWindow  time.Duration
	TrustedProxyHops   int
	AllowedCIDRs       []netip.Prefix
	SweepInterval      time.Duration
	RefreshLead        time.Duration
	RefreshConcurrency int
	SweepTimeout       time.Duration
	ExpiryWarning      time.Duration
	RunAuthSecret      string
	RunOIDCAudience    string
	RunOIDCAccount     string
	// RunBehindIAM: Cloud Run's IAM check admits every request to the
	// worker, and its front end replaces a verified ID token's signature
	// with SIGNATURE_REMOVED_BY_GOOGLE (RUN_BEHIND_CLOUD_RUN_IAM).
	RunBehindIAM bool

	// Sign-in with Webex for the console (DESIGN 2b).
	ConsoleOIDCClientID     string
	ConsoleOIDCClientSecret string
	ConsoleOIDCIssuer       string
	ConsoleOperators        []string
	ConsoleViewers          []string
	ConsoleOrgID            string
	// ConsoleURL is the console's public base URL, for links in
	// notifications ("" : none).
	ConsoleURL string
	// AdminSessionIdle ends a console session nobody used for this long.
	AdminSessionIdle time.Duration
	// AuthorizeLinkTTL is how long an authorization link stays valid.
	AuthorizeLinkTTL time.Duration

	// The activity record (DESIGN 2b).
	ActivityCollection string
	ActivityRetention  time.Duration

	// Notifications (worker's POST /notify).
	NotifyWebexBotToken string
	NotifyWebexRoomID   string
	NotifyWebhookURL    string
	NotifyWebhookSecret string
	NotifyReminder      time.Duration
	NotifyGiveUp        time.Duration
}

// WebexIssuer is the issuer of Login with Webex's ID tokens, as Webex's
// documentation names it; its discovery document is at
// <issuer>/.well-known/openid-configuration.
const WebexIssuer = "https://idbroker.webex.com/idb"

// MinRunAuthSecret is the shortest RUN_AUTH_SECRET accepted.
const MinRunAuthSecret = 32

// Binary selects which required variables are checked.
type Binary int

// The two binaries.
const (
	API Binary = iota
	Worker
)

// Load reads the configuration of binary b through getenv. It reports every
// missing or malformed variable at once, each by name.
func Load(b Binary, getenv func(string) string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{
		Project:            r.required("GOOGLE_CLOUD_PROJECT"),
		Collection:         r.str("TOKENS_COLLECTION", "tokens"),
		EventsTopic:        r.str("EVENTS_TOPIC", "token-events"),
		RefreshThreshold:   r.duration("REFRESH_THRESHOLD", 2*time.Hour),
		WebexTokenURL:      r.str("WEBEX_TOKEN_URL", "https://webexapis.com/v1/access_token"),
		WebexAuthorizeURL:  r.str("WEBEX_AUTHORIZE_URL", "https://webexapis.com/v1/authorize"),
		WebexAPIURL:        strings.TrimRight(r.str("WEBEX_API_URL", "https://webexapis.com"), "/"),
		MetaCollection:     r.str("META_COLLECTION", "tokenservice"),
		AdminSessionTTL:    r.duration("ADMIN_SESSION_TTL", 8*time.Hour),
		Port:               r.str("PORT", "8080"),
		MetricsAddr:        r.hostPort("METRICS_ADDR"),
		WebexTimeout:       r.duration("WEBEX_TIMEOUT", 10*time.Second),
		EncryptionKeys:     r.str("TOKEN_ENCRYPTION_KEYS", ""),
		PreviousPassphrase: r.str("TOKEN_PASSPHRASE_PREVIOUS", ""),
		AdminPassphrase:    r.str("ADMIN_PASSPHRASE", ""),
		StateSigningKey:    r.str("STATE_SIGNING_KEY", ""),
		MinTokenValidity:   r.duration("MIN_TOKEN_VALIDITY", 5*time.Minute),
		CacheMaxAge:        r.duration("CACHE_MAX_AGE", 60*time.Second),
		InlineTimeout:      r.duration("INLINE_REFRESH_TIMEOUT", 1500*time.Millisecond),
		LegacyState:        r.boolean("LEGACY_STATE", false),
		CORSAllowOrigins:   r.list("CORS_ALLOW_ORIGINS", "*"),
		AuthFailureLimit:   r.integer("AUTH_FAILURE_LIMIT", 10, 1),
		AuthFailureWindow:  r.duration("AUTH_FAILURE_WINDOW", 15*time.Minute),
		TrustedProxyHops:   r.integer("TRUSTED_PROXY_HOPS", 0, 0),
		AllowedCIDRs:       r.prefixes("ALLOWED_CIDRS"),
		SweepInterval:      r.duration("SWEEP_INTERVAL", 5*time.Minute),
		RefreshLead:        r.duration("REFRESH_LEAD", 30*time.Minute),
		RefreshConcurrency: r.integer("REFRESH_CONCURRENCY", 8, 1),
		SweepTimeout:       r.duration("SWEEP_TIMEOUT", 2*time.Minute),
		ExpiryWarning:      r.duration("REFRESH_EXPIRY_WARNING", 168*time.Hour),
		RunAuthSecret:      r.str("RUN_AUTH_SECRET", ""),
		RunOIDCAudience:    r.str("RUN_OIDC_AUDIENCE", ""),
		RunOIDCAccount:     r.str("RUN_OIDC_SERVICE_ACCOUNT", ""),
		RunBehindIAM:       r.boolean("RUN_BEHIND_CLOUD_RUN_IAM", false),

		ConsoleOIDCClientID:     r.str("CONSOLE_OIDC_CLIENT_ID", ""),
		ConsoleOIDCClientSecret: r.str("CONSOLE_OIDC_CLIENT_SECRET", ""),
		ConsoleOIDCIssuer:       strings.TrimRight(r.str("CONSOLE_OIDC_ISSUER", WebexIssuer), "/"),
		ConsoleOperators:        r.list("CONSOLE_OPERATORS", ""),
		ConsoleViewers:          r.list("CONSOLE_VIEWERS", ""),
		ConsoleOrgID:            r.str("CONSOLE_ORG_ID", ""),
		ConsoleURL:              strings.TrimRight(r.str("CONSOLE_URL", ""), "/"),
		AdminSessionIdle:        r.duration("ADMIN_SESSION_IDLE", time.Hour),
		AuthorizeLinkTTL:        r.duration("AUTHORIZE_LINK_TTL", 72*time.Hour),

		ActivityCollection: r.str("ACTIVITY_COLLECTION", "tokenActivity"),
		ActivityRetention:  r.duration("ACTIVITY_RETENTION", 2160*time.Hour),

		NotifyWebexBotToken: r.str("NOTIFY_WEBEX_BOT_TOKEN", ""),
		NotifyWebexRoomID:   r.str("NOTIFY_WEBEX_ROOM_ID", ""),
		NotifyWebhookURL:    r.str("NOTIFY_WEBHOOK_URL", ""),
		NotifyWebhookSecret: r.str("NOTIFY_WEBHOOK_SECRET", ""),
		NotifyReminder:      r.duration("NOTIFY_REMINDER", 24*time.Hour),
		NotifyGiveUp:        r.duration("NOTIFY_GIVE_UP", 24*time.Hour),
	}
	if b == API {
		c.TokenPassphrase = r.required("TOKEN_PASSPHRASE")
		// TOKEN_PASSPHRASE must keep the value existing flows send (the
		// api warns when it is short); ADMIN_PASSPHRASE is new, so it can
		// be held to the rule of a token's own passphrase.
		if c.AdminPassphrase != "" && passphrase.Short(c.AdminPassphrase) {
			r.errs = append(r.errs, fmt.Errorf("ADMIN_PASSPHRASE is shorter than %d characters: choose a longer one (it guards every client config)", passphrase.MinChars))
		}
	}
	r.positive("REFRESH_THRESHOLD", c.RefreshThreshold)
	r.positive("WEBEX_TIMEOUT", c.WebexTimeout)
	r.positive("INLINE_REFRESH_TIMEOUT", c.InlineTimeout)
	r.positive("SWEEP_TIMEOUT", c.SweepTimeout)
	r.positive("AUTH_FAILURE_WINDOW", c.AuthFailureWindow)
	r.positive("ADMIN_SESSION_TTL", c.AdminSessionTTL)
	if c.MetaCollection == c.Collection {
		r.errs = append(r.errs, errors.New("META_COLLECTION must differ from TOKENS_COLLECTION: the sample's callers may list the tokens collection"))
	}
	if c.StateSigningKey != "" && len(c.StateSigningKey) < 16 {
		r.errs = append(r.errs, errors.New("STATE_SIGNING_KEY must be at least 16 bytes"))
	}
	if c.RunAuthSecret != "" && len(c.RunAuthSecret) < MinRunAuthSecret {
		r.errs = append(r.errs, fmt.Errorf("RUN_AUTH_SECRET is shorter than %d characters: choose a longer one (openssl rand -base64 32)", MinRunAuthSecret))
	}
	if c.RunBehindIAM && c.RunOIDCAudience == "" {
		r.errs = append(r.errs, errors.New("RUN_BEHIND_CLOUD_RUN_IAM=true needs RUN_OIDC_AUDIENCE and RUN_OIDC_SERVICE_ACCOUNT: the claims are all that is checked"))
	}
	if (c.ConsoleOIDCClientID == "") != (c.ConsoleOIDCClientSecret == "") {
		r.errs = append(r.errs, errors.New("CONSOLE_OIDC_CLIENT_ID and CONSOLE_OIDC_CLIENT_SECRET must be set together"))
	}
	if c.ConsoleOIDCClientID != "" && c.ConsoleURL == "" {
		r.errs = append(r.errs, errors.New("CONSOLE_OIDC_CLIENT_ID is set but CONSOLE_URL is not: sign-in with Webex returns to CONSOLE_URL + /admin/signin/webex/callback, which the integration must list"))
	}
	if c.ConsoleOIDCClientID != "" && len(c.ConsoleOperators)+len(c.ConsoleViewers) == 0 {
		r.errs = append(r.errs, errors.New("CONSOLE_OIDC_CLIENT_ID is set but CONSOLE_OPERATORS and CONSOLE_VIEWERS are empty: nobody could sign in"))
	}
	for _, name := range []string{"CONSOLE_OPERATORS", "CONSOLE_VIEWERS"} {
		for _, p := range r.list(name, "") {
			if !validPersonPattern(p) {
				r.errs = append(r.errs, fmt.Errorf("%s: %q is neither an e-mail address nor *@domain", name, p))
			}
		}
	}
	r.url("CONSOLE_OIDC_ISSUER", c.ConsoleOIDCIssuer)
	r.url("CONSOLE_URL", c.ConsoleURL)
	r.url("NOTIFY_WEBHOOK_URL", c.NotifyWebhookURL)
	if (c.NotifyWebexBotToken == "") != (c.NotifyWebexRoomID == "") {
		r.errs = append(r.errs, errors.New("NOTIFY_WEBEX_BOT_TOKEN and NOTIFY_WEBEX_ROOM_ID must be set together"))
	}
	if c.NotifyWebhookURL != "" && len(c.NotifyWebhookSecret) < 24 {
		r.errs = append(r.errs, errors.New("NOTIFY_WEBHOOK_URL needs NOTIFY_WEBHOOK_SECRET (at least 24 characters; a whsec_ value is accepted as it is)"))
	}
	r.positive("AUTHORIZE_LINK_TTL", c.AuthorizeLinkTTL)
	r.positive("ACTIVITY_RETENTION", c.ActivityRetention)
	r.positive("NOTIFY_REMINDER", c.NotifyReminder)
	r.positive("NOTIFY_GIVE_UP", c.NotifyGiveUp)
	r.positive("ADMIN_SESSION_IDLE", c.AdminSessionIdle)
	if c.ActivityCollection == c.Collection || c.ActivityCollection == c.MetaCollection {
		r.errs = append(r.errs, errors.New("ACTIVITY_COLLECTION must differ from TOKENS_COLLECTION and META_COLLECTION"))
	}
	if (c.RunOIDCAudience == "") != (c.RunOIDCAccount == "") {
		r.errs = append(r.errs, errors.New("RUN_OIDC_AUDIENCE and RUN_OIDC_SERVICE_ACCOUNT must be set together"))
	}
	if err := errors.Join(r.errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// SignInWithWebex reports whether the console offers sign-in with Webex.
func (c *Config) SignInWithWebex() bool { return c.ConsoleOIDCClientID != "" }

// Notifies reports whether the worker has a notification channel.
func (c *Config) Notifies() bool { return c.NotifyWebexBotToken != "" || c.NotifyWebhookURL != "" }

// validPersonPattern: an e-mail address (something@domain) or *@domain.
func validPersonPattern(p string) bool {
	local, domain, ok := strings.Cut(p, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(domain, "@ ") &&
		strings.Contains(domain, ".") && (local == "*" || !strings.ContainsAny(local, "* "))
}

// CORSAllowsAll reports whether every origin may call the api from a browser.
func (c *Config) CORSAllowsAll() bool {
	for _, o := range c.CORSAllowOrigins {
		if o == "*" {
			return true
		}
	}
	return false
}

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) required(name string) string {
	v := r.getenv(name)
	if strings.TrimSpace(v) == "" {
		r.errs = append(r.errs, fmt.Errorf("%s is required but not set", name))
	}
	return v
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not a duration such as 90s, 5m or 2h", name, v))
		return def
	}
	return d
}

func (r *reader) positive(name string, d time.Duration) {
	if d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s must be greater than zero", name))
	}
}

func (r *reader) integer(name string, def, min int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not an integer of at least %d", name, v, min))
		return def
	}
	return n
}

func (r *reader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not true or false", name, v))
		return def
	}
	return b
}

func (r *reader) list(name, def string) []string {
	var out []string
	for _, s := range strings.Split(r.str(name, def), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// hostPort reads an optional listen address such as 127.0.0.1:9090.
func (r *reader) hostPort(name string) string {
	v := r.str(name, "")
	if v == "" {
		return ""
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not a listen address such as 127.0.0.1:9090", name, v))
		return ""
	}
	return v
}

// url checks that an optional value is an absolute http(s) URL.
func (r *reader) url(name, v string) {
	if v == "" {
		return
	}
	u, err := neturl.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not an absolute http(s) URL", name, v))
	}
}

func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range r.list(name, "") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: %q is not a CIDR such as 192.0.2.0/24", name, s))
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}
