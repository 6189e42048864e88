package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// exercise records something in every family a binary has, with token
// names that would stand out in the exposition.
func exercise(m *Metrics, names []string) {
	var view []*token.Token
	for i, n := range names {
		view = append(view, &token.Token{Name: n, AccessToken: "at", AccessExpires: epoch.Add(time.Duration(i+1) * time.Hour),
			RefreshExpires: epoch.Add(time.Duration(i+10) * 24 * time.Hour)})
	}
	view = append(view, &token.Token{Name: "pending-only"}) // no access token: never reported
	if m.expiries != nil {
		m.expiries.now = func() time.Time { return epoch }
	}
	m.SetExpiries(view)
	m.Refresh(lifecycle.RefreshReport{Name: names[0], Trigger: token.TriggerScheduled, Result: "refreshed", Grant: "refresh_token", WebexLatency: time.Millisecond})
	m.Cache("hit")
	m.HTTP("/admin/tokens/:name", 200, time.Millisecond)
	m.Sweep("ok", time.Second)
	m.TopicMissing(false)
	m.WatchEvents(func() EventStats { return EventStats{Published: 1, Backlog: 0} })
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("scrape: got %d %s", rec.Code, b)
	}
	return string(b)
}

// TestTokenNamesOff: with TokenNames(false) (public /metrics), no token
// name appears anywhere in either binary's exposition, and the worker
// still exports the soonest expiries for alerts.
func TestTokenNamesOff(t *testing.T) {
	names := []string{"acme-prod-flow-7f3a", "wxcc.billing_queue"}
	for _, b := range []struct {
		name string
		bin  Binary
	}{{"api", API}, {"worker", Worker}} {
		t.Run(b.name, func(t *testing.T) {
			m := New(b.bin, TokenNames(false))
			exercise(m, names)
			body := scrape(t, m)
			for _, n := range append(names, "pending-only") {
				if strings.Contains(body, n) {
					t.Errorf("exposition names token %q:\n%s", n, grepLines(body, n))
				}
			}
			if strings.Contains(body, "token_access_expiry_seconds") || strings.Contains(body, `name="`) {
				t.Errorf("exposition has per-token series:\n%s", grepLines(body, "name="))
			}
			if b.bin == Worker {
				for _, want := range []string{"token_access_expiry_soonest_seconds 3600\n", "token_refresh_expiry_soonest_seconds 864000\n"} {
					if !strings.Contains(body, want) {
						t.Errorf("exposition lacks %q:\n%s", want, grepLines(body, "soonest"))
					}
				}
			}
		})
	}
}

// TestTokenNamesOn: by default (and with TokenNames(true): /metrics on
// METRICS_ADDR only) the worker reports every token by name.
func TestTokenNamesOn(t *testing.T) {
	for _, m := range []*Metrics{New(Worker), New(Worker, TokenNames(true))} {
		exercise(m, []string{"acme-prod-flow-7f3a", "wxcc.billing_queue"})
		body := scrape(t, m)
		for _, want := range []string{
			`token_access_expiry_seconds{name="acme-prod-flow-7f3a"} 3600`,
			`token_access_expiry_seconds{name="wxcc.billing_queue"} 7200`,
			`token_refresh_expiry_seconds{name="wxcc.billing_queue"} 950400`,
			"token_access_expiry_soonest_seconds 3600\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("exposition lacks %q:\n%s", want, grepLines(body, "expiry"))
			}
		}
		if strings.Contains(body, "pending-only") {
			t.Errorf("a token without an access token is reported:\n%s", grepLines(body, "pending-only"))
		}
	}
}

// TestSoonestWithoutTokens: no token, no soonest value (rather than 0,
// which would look like an expiring token).
func TestSoonestWithoutTokens(t *testing.T) {
	m := New(Worker, TokenNames(false))
	m.SetExpiries(nil)
	if body := scrape(t, m); strings.Contains(body, "soonest_seconds ") {
		t.Errorf("soonest gauges without tokens:\n%s", grepLines(body, "soonest"))
	}
}

func grepLines(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
