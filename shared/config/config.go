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
}

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
	if (c.RunOIDCAudience == "") != (c.RunOIDCAccount == "") {
		r.errs = append(r.errs, errors.New("RUN_OIDC_AUDIENCE and RUN_OIDC_SERVICE_ACCOUNT must be set together"))
	}
	if err := errors.Join(r.errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
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
