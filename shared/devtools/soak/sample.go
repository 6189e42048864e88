package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gfs "cloud.google.com/go/firestore"
)

// The stand-in for the old Node sample, still running during a migration:
// it refreshes some documents by itself, the way the sample does, with no
// generation and no lease: it reads the document, asks Webex (the same
// fake) for new tokens with the stored refresh token, and merges
// accessToken, refreshToken, accessExpires, refreshExpires and
// lastRefresh into the document.
//
// It refreshes a token only while the service would not: with more than
// threshold + lead + sampleMargin left and no lease. Webex itself does not
// rotate refresh tokens, so the sample and the service refreshing the
// same token at once is harmless in production; with the fake's rotation
// on (needed to see a refresh token presented twice) it would make one of
// them present a spent refresh token, which is not what is tested here.
const (
	standInEvery = 4 * time.Second
	sampleMargin = 10 * time.Second
)

// sampleWrite is one refresh of the sample stand-in.
type sampleWrite struct {
	Token string
	Start time.Time
	// At is the write's commit time (zero when nothing was written).
	At                                time.Time
	OldRefresh, NewRefresh, NewAccess string
	// Failed says why nothing was written.
	Failed string
}

type sampleWrites struct {
	mu   sync.Mutex
	list []sampleWrite
}

func (s *sampleWrites) add(w sampleWrite) {
	s.mu.Lock()
	s.list = append(s.list, w)
	s.mu.Unlock()
}

func (s *sampleWrites) all() []sampleWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sampleWrite(nil), s.list...)
}

// runSample runs the stand-in until ctx ends.
func (c *campaign) runSample(ctx context.Context, wg *sync.WaitGroup) {
	var targets []*soakToken
	for _, t := range c.tokens {
		if t.SampleWrites {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(c.s.Seed, c.p.Index*1000+998))
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(standInEvery + time.Duration(rng.Int64N(int64(standInEvery)))):
			}
			c.sampleRefresh(ctx, targets[rng.IntN(len(targets))])
		}
	})
}

func (c *campaign) sampleRefresh(ctx context.Context, t *soakToken) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ref := c.fs.Collection(c.coll).Doc(t.Name)
	snap, err := ref.Get(ctx)
	if err != nil {
		return
	}
	d := snap.Data()
	now := time.Now()
	if time.UnixMilli(millisField(d, "accessExpires")).Sub(now) < refreshThreshold+refreshLead+sampleMargin {
		return // the service may be refreshing it: leave it alone
	}
	if lease, ok := d["lease"].(map[string]any); ok && time.UnixMilli(millisField(lease, "until")).After(now) {
		return
	}
	w := sampleWrite{Token: t.Name, Start: now, OldRefresh: stringField(d, "refreshToken")}
	defer func() { c.sample.add(w) }()

	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {stringField(d, "clientId")},
		"client_secret": {stringField(d, "clientSecret")},
		"refresh_token": {w.OldRefresh},
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	req, _ := http.NewRequestWithContext(wctx, http.MethodPost, c.fake.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.Failed = "webex: " + errKind(err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var g struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		RefreshToken     string `json:"refresh_token"`
		RefreshExpiresIn int64  `json:"refresh_token_expires_in"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &g) != nil || g.AccessToken == "" {
		w.Failed = fmt.Sprintf("webex answered %d", resp.StatusCode)
		return
	}
	now = time.Now()
	update := map[string]any{
		"accessToken":   g.AccessToken,
		"accessExpires": now.Add(time.Duration(g.ExpiresIn) * time.Second).UnixMilli(),
		"lastRefresh":   now.UnixMilli(),
	}
	if g.RefreshToken != "" {
		update["refreshToken"] = g.RefreshToken
		update["refreshExpires"] = now.Add(time.Duration(g.RefreshExpiresIn) * time.Second).UnixMilli()
	}
	wr, err := ref.Set(ctx, update, gfs.MergeAll)
	if err != nil {
		w.Failed = "firestore: " + err.Error()
		return
	}
	w.At, w.NewAccess, w.NewRefresh = wr.UpdateTime, g.AccessToken, g.RefreshToken
}

// millisField reads a number field of the sample (integer or double ms).
func millisField(d map[string]any, k string) int64 {
	switch n := d[k].(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

func stringField(d map[string]any, k string) string {
	s, _ := d[k].(string)
	return s
}
