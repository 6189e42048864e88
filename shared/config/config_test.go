package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(API, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"collection", c.Collection, "tokens"},
		{"topic", c.EventsTopic, "token-events"},
		{"threshold", c.RefreshThreshold, 2 * time.Hour},
		{"token url", c.WebexTokenURL, "https://webexapis.com/v1/access_token"},
		{"authorize url", c.WebexAuthorizeURL, "https://webexapis.com/v1/authorize"},
		{"port", c.Port, "8080"},
		{"sweep", c.SweepInterval, 5 * time.Minute},
		{"lead", c.RefreshLead, 30 * time.Minute},
		{"min validity", c.MinTokenValidity, 5 * time.Minute},
		{"cache", c.CacheMaxAge, 60 * time.Second},
		{"inline", c.InlineTimeout, 1500 * time.Millisecond},
		{"concurrency", c.RefreshConcurrency, 8},
		{"sweep timeout", c.SweepTimeout, 2 * time.Minute},
		{"webex timeout", c.WebexTimeout, 10 * time.Second},
		{"legacy", c.LegacyState, false},
		{"cors all", c.CORSAllowsAll(), true},
		{"warning", c.ExpiryWarning, 168 * time.Hour},
		{"failure limit", c.AuthFailureLimit, 10},
		{"failure window", c.AuthFailureWindow, 15 * time.Minute},
		{"hops", c.TrustedProxyHops, 0},
		{"metrics addr", c.MetricsAddr, ""},
		{"behind iam", c.RunBehindIAM, false},
		{"oidc issuer", c.ConsoleOIDCIssuer, "https://idbroker.webex.com/idb"},
		{"sign-in", c.SignInWithWebex(), false},
		{"link ttl", c.AuthorizeLinkTTL, 72 * time.Hour},
		{"session idle", c.AdminSessionIdle, time.Hour},
		{"activity collection", c.ActivityCollection, "tokenActivity"},
		{"activity retention", c.ActivityRetention, 2160 * time.Hour},
		{"notify reminder", c.NotifyReminder, 24 * time.Hour},
		{"notify give up", c.NotifyGiveUp, 24 * time.Hour},
		{"notifies", c.Notifies(), false},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		b    Binary
		env  map[string]string
		want []string
	}{
		{"missing project and passphrase", API, map[string]string{}, []string{"GOOGLE_CLOUD_PROJECT", "TOKEN_PASSPHRASE"}},
		{"worker needs no passphrase", Worker, map[string]string{}, []string{"GOOGLE_CLOUD_PROJECT"}},
		{"bad duration", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "SWEEP_INTERVAL": "often"}, []string{"SWEEP_INTERVAL"}},
		{"bad cidr", API, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x", "ALLOWED_CIDRS": "10.0.0.0/8, nope"}, []string{"ALLOWED_CIDRS"}},
		{"bad bool", API, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x", "LEGACY_STATE": "yes please"}, []string{"LEGACY_STATE"}},
		{"bad metrics addr", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "METRICS_ADDR": "9090"}, []string{"METRICS_ADDR"}},
		{"short run secret", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "RUN_AUTH_SECRET": "0123456789abcdef0123456789abcde"}, []string{"RUN_AUTH_SECRET", "32"}},
		{"iam without audience", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "RUN_BEHIND_CLOUD_RUN_IAM": "true"}, []string{"RUN_BEHIND_CLOUD_RUN_IAM", "RUN_OIDC_AUDIENCE"}},
		{"sign-in without people", API, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x", "CONSOLE_OIDC_CLIENT_ID": "c", "CONSOLE_OIDC_CLIENT_SECRET": "s", "CONSOLE_URL": "https://c.example.com"}, []string{"CONSOLE_OPERATORS"}},
		{"sign-in without console url", API, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x", "CONSOLE_OIDC_CLIENT_ID": "c", "CONSOLE_OIDC_CLIENT_SECRET": "s", "CONSOLE_OPERATORS": "a@example.com"}, []string{"CONSOLE_URL"}},
		{"half sign-in", API, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x", "CONSOLE_OIDC_CLIENT_ID": "c", "CONSOLE_OPERATORS": "a@example.com"}, []string{"CONSOLE_OIDC_CLIENT_SECRET"}},
		{"bad operator", API, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x", "CONSOLE_OPERATORS": "alice, *@example.com"}, []string{"CONSOLE_OPERATORS", "alice"}},
		{"bad console url", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "CONSOLE_URL": "console.example.com"}, []string{"CONSOLE_URL"}},
		{"webhook without secret", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x"}, []string{"NOTIFY_WEBHOOK_SECRET"}},
		{"bot without room", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "NOTIFY_WEBEX_BOT_TOKEN": "t"}, []string{"NOTIFY_WEBEX_ROOM_ID"}},
		{"activity in tokens", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "ACTIVITY_COLLECTION": "tokens"}, []string{"ACTIVITY_COLLECTION"}},
		{"half oidc", Worker, map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "RUN_OIDC_AUDIENCE": "a"}, []string{"RUN_OIDC_SERVICE_ACCOUNT"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.b, env(tc.env))
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to name %s", err, w)
				}
			}
			if tc.b == Worker && strings.Contains(err.Error(), "TOKEN_PASSPHRASE") {
				t.Errorf("worker must not require TOKEN_PASSPHRASE: %v", err)
			}
		})
	}
}

func TestSweepIntervalZeroTurnsScheduleOff(t *testing.T) {
	c, err := Load(Worker, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "SWEEP_INTERVAL": "0"}))
	if err != nil || c.SweepInterval != 0 {
		t.Fatalf("got %v, %v; want 0", c.SweepInterval, err)
	}
}

func TestSecretsNotEchoed(t *testing.T) {
	_, err := Load(API, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "  ", "AUTH_FAILURE_LIMIT": "zero"}))
	if err == nil || strings.Contains(err.Error(), "  ") {
		t.Fatalf("got %v", err)
	}
}

func TestMetricsAddr(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9090", ":9090", "[::1]:9090", "localhost:0"} {
		c, err := Load(Worker, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "METRICS_ADDR": addr}))
		if err != nil || c.MetricsAddr != addr {
			t.Errorf("METRICS_ADDR=%s: got %q, %v", addr, c.MetricsAddr, err)
		}
	}
}

func TestAdminPassphraseLength(t *testing.T) {
	tests := []struct {
		name    string
		admin   string
		b       Binary
		wantErr bool
	}{
		{"unset: admin endpoints off", "", API, false},
		{"one character", "b", API, true},
		{"15 characters", "fifteen-chars-x", API, true},
		{"15 characters, some of them multi-byte", "ééééééééééééééé", API, true},
		{"16 characters", "sixteen-chars-xy", API, false},
		{"the worker ignores it", "b", Worker, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.b, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "a", "ADMIN_PASSPHRASE": tc.admin}))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "ADMIN_PASSPHRASE") || !strings.Contains(err.Error(), "16 characters") {
					t.Errorf("got %q, want it to name ADMIN_PASSPHRASE and the 16 characters", err)
				}
				if len(tc.admin) >= 8 && strings.Contains(err.Error(), tc.admin) {
					t.Errorf("got %q, which shows the passphrase", err)
				}
			}
		})
	}
}

func TestPeopleLists(t *testing.T) {
	c, err := Load(API, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "x",
		"CONSOLE_OIDC_CLIENT_ID": "c", "CONSOLE_OIDC_CLIENT_SECRET": "s", "CONSOLE_URL": "https://console.example.com",
		"CONSOLE_OPERATORS": "alice@example.com, *@ops.example.com", "CONSOLE_VIEWERS": "bob@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.ConsoleOperators, "|"); got != "alice@example.com|*@ops.example.com" {
		t.Errorf("operators: got %q", got)
	}
	if !c.SignInWithWebex() {
		t.Error("sign-in with Webex: got off, want on")
	}
}

func TestRunAuthSecretOf32IsAccepted(t *testing.T) {
	if _, err := Load(Worker, env(map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "RUN_AUTH_SECRET": strings.Repeat("k", 32)})); err != nil {
		t.Fatal(err)
	}
}
