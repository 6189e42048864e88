package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	gfs "cloud.google.com/go/firestore"
)

// Groups of the population. Every token is one Webex integration of its
// own (its own client), so the fake's ledger maps each refresh token to
// exactly one token name.
const (
	groupPlain      = "plain"       // the sample's documents, read with TOKEN_PASSPHRASE
	groupOwn        = "own"         // the sample's documents given their own passphrase (PUT)
	groupLong       = "long"        // access tokens of 12 h: never due during the run
	groupOnboard    = "onboard"     // created by PUT and authorized through /authorize + /callback
	groupMigrate    = "migrate"     // the sample stand-in refreshes them too (plain profile)
	groupLapseRead  = "lapse-read"  // refresh tokens lapse during the run; read by flows
	groupLapseBatch = "lapse-batch" // refresh tokens lapse together, access tokens due together; idle
	groupRevoke     = "revoke"      // the user revokes the integration during the run
	groupLate       = "late"        // onboarded while Pub/Sub is unreachable (the final outage)
	groupServiceApp = "service-app" // Service Apps (DESIGN 5a), minted with soak-onboard-01 as manager
)

// groupSizes is the population: 62 tokens.
var groupSizes = []struct {
	group string
	n     int
}{
	{groupPlain, 24}, {groupOwn, 8}, {groupLong, 3}, {groupOnboard, 3},
	{groupMigrate, 6}, {groupLapseRead, 3}, {groupLapseBatch, 6}, {groupRevoke, 4}, {groupLate, 2},
	{groupServiceApp, 3},
}

// soakToken is one token of the population and what the campaign does
// with it.
type soakToken struct {
	Name, Group                         string
	ClientID, ClientSecret, RedirectURI string
	// Passphrase is the token's own passphrase, "" for TOKEN_PASSPHRASE.
	Passphrase string
	// Read: flows GET it. SampleWrites: the Node sample stand-in
	// refreshes it too.
	Read, SampleWrites bool
	// Doubles: the seeded times are doubles, as older writers stored them.
	Doubles bool
	// LapseAfter is when, after t0, its refresh token expires (zero: not
	// during the run); Lapse is that time.
	LapseAfter time.Duration
	Lapse      time.Time
	// RevokeAfter is when, after t0, the user revokes the integration
	// (zero: never); Revoked is when it was done.
	RevokeAfter time.Duration
	Revoked     time.Time
	// AppID and OrgID are a Service App's (DESIGN section 5a); Manager
	// is the integration that mints it.
	AppID, OrgID, Manager string
	// SeedAccess and SeedRefresh are the seeded tokens ("" for onboard).
	SeedAccess, SeedRefresh string
	// Seeded is when the document was written.
	Seeded time.Time
}

// expectReauth says whether the campaign makes this token need
// re-authorization on purpose.
func (t *soakToken) expectReauth() bool {
	return t.Group == groupLapseRead || t.Group == groupLapseBatch || t.Group == groupRevoke
}

// planPopulation draws the population of one profile running for d, with
// faults between faultFrom and faultTo; lapses and revocations are
// placed relative to t0, the start of the run.
func planPopulation(rng *rand.Rand, d time.Duration, faultFrom, faultTo time.Duration) []*soakToken {
	var out []*soakToken
	for _, g := range groupSizes {
		for i := range g.n {
			t := &soakToken{
				Name:         fmt.Sprintf("soak-%s-%02d", g.group, i+1),
				Group:        g.group,
				ClientID:     "soak-client-" + randomHex(rng, 6),
				ClientSecret: "soak-csecret-" + randomHex(rng, 12),
				RedirectURI:  "https://flows.example.com/callback",
				Read:         g.group != groupLapseBatch && g.group != groupLate,
			}
			switch g.group {
			case groupPlain:
				t.Doubles = i < 4
			case groupOwn:
				t.Passphrase = "soak-own-" + randomHex(rng, 10)
			case groupMigrate:
				t.SampleWrites = true
			case groupLapseRead:
				t.LapseAfter = d*3/10 + time.Duration(i)*3*time.Second
			case groupLapseBatch:
				t.LapseAfter = d * 4 / 10
			case groupServiceApp:
				t.AppID = "soak-app-" + randomHex(rng, 8)
				t.OrgID = "soak-org-" + randomHex(rng, 4)
				t.Manager = fmt.Sprintf("soak-%s-%02d", groupOnboard, 1)
			case groupRevoke:
				span := faultTo - faultFrom
				t.RevokeAfter = faultFrom + span*time.Duration(i+1)/time.Duration(g.n+1)
			}
			out = append(out, t)
		}
	}
	return out
}

// seededAtT0 reports whether t's document is written at t0 rather than
// before the processes start: the lapse groups, whose times count from t0.
func (t *soakToken) seededAtT0() bool { return t.LapseAfter > 0 }

// seedDoc writes t's document exactly as the Node sample does (its eight
// fields, times in integer milliseconds, or doubles for older writers)
// and tells the fake Webex about its client and tokens.
func (c *campaign) seedDoc(ctx context.Context, t *soakToken) error {
	now := time.Now()
	accessExpires := now.Add(25*time.Second + time.Duration(c.rng.Int64N(int64(60*time.Second))))
	refreshExpires := now.Add(refreshLifetime)
	switch {
	case t.Group == groupLong:
		accessExpires = now.Add(12 * time.Hour)
	case t.Group == groupLapseBatch:
		// Untouched until they all become due together, after the lapse.
		accessExpires = t.Lapse.Add(refreshThreshold + refreshLead + 5*time.Second)
	}
	if !t.Lapse.IsZero() {
		refreshExpires = t.Lapse
	}
	t.SeedAccess = "seed-at-" + randomHex(c.rng, 16)
	t.SeedRefresh = "seed-rt-" + randomHex(c.rng, 16)
	c.fake.AddClient(t.ClientID, t.ClientSecret)
	c.fake.AddRefreshToken(t.ClientID, t.SeedRefresh, refreshExpires)
	c.fake.AddAccessToken(t.ClientID, t.SeedAccess, accessExpires)
	c.secrets.add(t.ClientSecret, t.SeedAccess, t.SeedRefresh)
	ms := func(at time.Time) any {
		if t.Doubles {
			return float64(at.UnixMilli())
		}
		return at.UnixMilli()
	}
	doc := map[string]any{
		"clientId":       t.ClientID,
		"clientSecret":   t.ClientSecret,
		"redirectUri":    t.RedirectURI,
		"accessToken":    t.SeedAccess,
		"refreshToken":   t.SeedRefresh,
		"accessExpires":  ms(accessExpires),
		"refreshExpires": ms(refreshExpires),
		"lastRefresh":    ms(accessExpires.Add(-accessLifetime)),
	}
	if _, err := c.fs.Collection(c.coll).Doc(t.Name).Set(ctx, doc); err != nil {
		return fmt.Errorf("seed %s: %w", t.Name, err)
	}
	t.Seeded = time.Now()
	return nil
}

// onboard creates t through the api as an administrator does: PUT the
// client config, GET /authorize, follow the link to the fake Webex (which
// consents at once) and hand its redirect to /callback.
func (c *campaign) onboard(ctx context.Context, t *soakToken) error {
	api := c.apis()[0]
	t.RedirectURI = api.URL() + "/callback"
	c.fake.AddClient(t.ClientID, t.ClientSecret)
	if c.isManager(t.Name) {
		c.fake.SetClientExpiresIn(t.ClientID, managerLifetime)
	}
	c.secrets.add(t.ClientSecret)
	body, _ := json.Marshal(map[string]any{"clientId": t.ClientID, "clientSecret": t.ClientSecret,
		"redirectUri": t.RedirectURI, "scopes": []string{"spark:kms", "cjp:config_read"}})
	if r := c.do(ctx, http.MethodPut, api.URL()+"/admin/tokens/"+t.Name, string(body), c.adminHeader()); r.Status != http.StatusOK {
		return fmt.Errorf("onboard %s: PUT answered %d %s", t.Name, r.Status, r.Body)
	}
	r := c.do(ctx, http.MethodGet, api.URL()+"/authorize?name="+t.Name, "", c.adminHeader())
	var link struct{ URL string }
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &link) != nil {
		return fmt.Errorf("onboard %s: /authorize answered %d %s", t.Name, r.Status, r.Body)
	}
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(link.URL)
	if err != nil {
		return fmt.Errorf("onboard %s: consent at the fake Webex: %w", t.Name, err)
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || to.Query().Get("code") == "" {
		return fmt.Errorf("onboard %s: the fake Webex redirected to %q", t.Name, resp.Header.Get("Location"))
	}
	if r := c.do(ctx, http.MethodGet, api.URL()+"/callback?"+to.RawQuery, "", nil); r.Status != http.StatusOK {
		return fmt.Errorf("onboard %s: /callback answered %d %s", t.Name, r.Status, r.Body)
	}
	t.Seeded = time.Now()
	return nil
}

// createServiceApp registers t's app with the fake Webex, authorized for
// its org as a Full Admin does in Control Hub, and creates it with PUT
// /admin/tokens/N: the api mints it at once, with its manager's token.
func (c *campaign) createServiceApp(ctx context.Context, t *soakToken) error {
	c.fake.AddApp(t.AppID, t.ClientID, t.ClientSecret, t.OrgID)
	c.secrets.add(t.ClientSecret)
	body, _ := json.Marshal(map[string]any{"kind": "service_app", "appId": t.AppID, "clientId": t.ClientID,
		"clientSecret": t.ClientSecret, "targetOrgId": t.OrgID, "manager": t.Manager})
	api := c.apis()[0]
	if r := c.do(ctx, http.MethodPut, api.URL()+"/admin/tokens/"+t.Name, string(body), c.adminHeader()); r.Status != http.StatusOK {
		return fmt.Errorf("service app %s: PUT answered %d %s", t.Name, r.Status, r.Body)
	}
	t.Seeded = time.Now()
	return nil
}

// managerLifetime is the access token lifetime of the Service Apps'
// manager. The protocol sends a manager's token along with a mint only
// while it has a minute left (token.managerMinValidity, not
// configurable, so not compressed): with the campaign's 60 s tokens no
// mint could ever happen.
const managerLifetime = 5 * time.Minute

// isManager says whether a Service App of the population names name as
// its manager.
func (c *campaign) isManager(name string) bool {
	for _, t := range c.tokens {
		if t.Manager == name {
			return true
		}
	}
	return false
}

// givePassphrase sets t's own passphrase with PUT /admin/tokens/N.
func (c *campaign) givePassphrase(ctx context.Context, t *soakToken) error {
	c.secrets.add(t.Passphrase)
	body, _ := json.Marshal(map[string]string{"passphrase": t.Passphrase})
	api := c.apis()[c.rng.IntN(len(c.apis()))]
	if r := c.do(ctx, http.MethodPut, api.URL()+"/admin/tokens/"+t.Name, string(body), c.adminHeader()); r.Status != http.StatusOK {
		return fmt.Errorf("passphrase of %s: PUT answered %d %s", t.Name, r.Status, r.Body)
	}
	return nil
}

// seedBefore writes the documents that exist when the processes start.
func (c *campaign) seedBefore(ctx context.Context) error {
	for _, t := range c.tokens {
		if t.Group == groupOnboard || t.Group == groupLate || t.Group == groupServiceApp || t.seededAtT0() {
			continue
		}
		if err := c.seedDoc(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// seedAfterStart does what needs the api: onboarding and own passphrases.
func (c *campaign) seedAfterStart(ctx context.Context) error {
	for _, t := range c.tokens {
		var err error
		switch {
		case t.Group == groupOnboard:
			err = retrying(ctx, func() error { return c.onboard(ctx, t) })
		case t.Passphrase != "":
			err = retrying(ctx, func() error { return c.givePassphrase(ctx, t) })
		case t.Group == groupServiceApp:
			err = retrying(ctx, func() error { return c.createServiceApp(ctx, t) })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runLateOnboarding onboards the late tokens early in the final Pub/Sub
// outage, retrying while other faults get in the way.
func (c *campaign) runLateOnboarding(ctx context.Context, t0 time.Time, wg *sync.WaitGroup) {
	var at time.Duration
	for _, f := range c.plan {
		if f.Param == finalParam {
			at = f.At + 500*time.Millisecond
		}
	}
	wg.Go(func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(t0.Add(at))):
		}
		for _, t := range c.tokens {
			if t.Group == groupLate {
				if err := retrying(ctx, func() error { return c.onboard(ctx, t) }); err != nil {
					c.say("%s: late onboarding of %s: %v", c.p.Name, t.Name, err)
				}
			}
		}
	})
}

// seedAtT0 writes the documents of the lapse groups, as a migration
// script onboarding more of the sample's tokens would, at t0.
func (c *campaign) seedAtT0(ctx context.Context, t0 time.Time) error {
	for _, t := range c.tokens {
		if !t.seededAtT0() {
			continue
		}
		t.Lapse = t0.Add(t.LapseAfter)
		if err := c.seedDoc(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// retrying runs a setup step until it succeeds, at most five times with
// a growing pause: on a shared machine the emulators are sometimes too
// slow for the api's own deadlines while everything starts.
func retrying(ctx context.Context, step func() error) error {
	var err error
	for attempt := range 5 {
		if err = step(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(1<<attempt) * time.Second):
		}
	}
	return err
}

// setFakeLifetimes compresses time at the fake Webex and turns rotation
// on, so that a refresh token presented twice is detectable.
func (c *campaign) setFakeLifetimes() {
	c.fake.SetExpiresIn(accessLifetime)
	c.fake.SetRefreshExpiresIn(refreshLifetime)
	c.fake.SetRotation(true)
}

// listDocs reads every document of the collection, raw.
func listDocs(ctx context.Context, fs *gfs.Client, coll string) (map[string]map[string]any, error) {
	// Bounded: the client retries an unreachable emulator for as long as
	// ctx lasts, and the campaign's end must not wait for ever.
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	snaps, err := fs.Collection(coll).Documents(ctx).GetAll()
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]any, len(snaps))
	for _, s := range snaps {
		out[s.Ref.ID] = s.Data()
	}
	return out, nil
}

const listTimeout = 10 * time.Second

func randomHex(rng *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}
