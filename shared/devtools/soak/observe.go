package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/sealing"
)

// docState is one version of a token document, as a Firestore listener
// saw it (secrets opened with the campaign's key when sealed).
type docState struct {
	At                            time.Time // the version's update time
	Deleted                       bool
	AccessToken, RefreshToken     string
	AccessExpires, RefreshExpires time.Time
	Generation                    int64
	Status                        string
	LeaseUntil                    time.Time
}

// servable says whether this version holds a token that may be served at
// now, with slack more than MIN_TOKEN_VALIDITY left.
func (d docState) servable(now time.Time, slack time.Duration) bool {
	return !d.Deleted && d.AccessToken != "" && d.AccessExpires.Sub(now) >= minValidity+slack
}

// state is the effective status, as the service derives it for documents
// the sample wrote (which have none).
func (d docState) state() string {
	switch {
	case d.Status == "reauth_required" || d.Status == "config_error":
		return d.Status
	case d.AccessToken == "":
		return "pending"
	}
	return "active"
}

// timeline is every version of every token document, per name in order.
type timeline struct {
	mu     sync.Mutex
	byName map[string][]docState
	// firstSeen is when each access token first appeared in Firestore.
	firstSeen map[string]time.Time
}

func newTimeline() *timeline {
	return &timeline{byName: map[string][]docState{}, firstSeen: map[string]time.Time{}}
}

func (tl *timeline) add(name string, d docState) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	list := tl.byName[name]
	if n := len(list); n > 0 && !list[n-1].At.Before(d.At) {
		return // already seen (a listener restart replays the current state)
	}
	tl.byName[name] = append(list, d)
	if d.AccessToken != "" {
		if _, ok := tl.firstSeen[d.AccessToken]; !ok {
			tl.firstSeen[d.AccessToken] = d.At
		}
	}
}

// at returns name's version at time t (the latest with At ≤ t).
func (tl *timeline) at(name string, t time.Time) (docState, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	list := tl.byName[name]
	i := sort.Search(len(list), func(i int) bool { return list[i].At.After(t) })
	if i == 0 {
		return docState{}, false
	}
	return list[i-1], true
}

// latest returns name's newest version.
func (tl *timeline) latest(name string) (docState, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	list := tl.byName[name]
	if len(list) == 0 {
		return docState{}, false
	}
	return list[len(list)-1], true
}

// versions returns every version of name.
func (tl *timeline) versions(name string) []docState {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]docState(nil), tl.byName[name]...)
}

func (tl *timeline) seen(accessToken string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	t, ok := tl.firstSeen[accessToken]
	return t, ok
}

// watchDocs follows the collection with a Firestore listener (directly on
// the emulator, not through the fault proxy) until ctx ends.
func (c *campaign) watchDocs(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		for ctx.Err() == nil {
			it := c.fs.Collection(c.coll).Snapshots(ctx)
			for {
				qs, err := it.Next()
				if err != nil {
					break
				}
				for _, ch := range qs.Changes {
					if ch.Kind == gfs.DocumentRemoved {
						c.tl.add(ch.Doc.Ref.ID, docState{At: qs.ReadTime, Deleted: true})
						continue
					}
					c.tl.add(ch.Doc.Ref.ID, c.decodeDoc(ch.Doc.Ref.ID, ch.Doc.UpdateTime, ch.Doc.Data()))
				}
			}
			it.Stop()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
}

// decodeDoc reads the fields the checks need, opening sealed secrets.
func (c *campaign) decodeDoc(name string, at time.Time, d map[string]any) docState {
	s := docState{
		At:             at,
		AccessToken:    c.open(name, "accessToken", stringField(d, "accessToken")),
		RefreshToken:   c.open(name, "refreshToken", stringField(d, "refreshToken")),
		AccessExpires:  msTime(millisField(d, "accessExpires")),
		RefreshExpires: msTime(millisField(d, "refreshExpires")),
		Generation:     millisField(d, "generation"),
		Status:         stringField(d, "status"),
	}
	if lease, ok := d["lease"].(map[string]any); ok {
		s.LeaseUntil = msTime(millisField(lease, "until"))
	}
	return s
}

// open returns the plain text of a secret field (the campaign knows the
// key), or the stored value when it is not sealed or does not open.
func (c *campaign) open(name, field, v string) string {
	if c.keys == nil || !sealing.IsSealed(v) {
		return v
	}
	plain, _, err := c.keys.Open(sealing.AAD(c.coll, name, field), v)
	if err != nil {
		return v
	}
	return plain
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// event is one message received on the ordered subscription.
type event struct {
	ID, Type, Name string
	Generation     int64
	Data           pubsub.Data
	Attributes     map[string]string
	RawData        string
	Published      time.Time
	Received       time.Time
}

// receiveEvents collects the subscription's messages until ctx ends.
// The Pub/Sub client's Receive can outlive ctx by far when the emulator
// went away under it (seen: a stream's Send stuck for 30 minutes), so the
// campaign waits for it at most receiverStopWait after ctx ends and then
// goes on without it.
func (c *campaign) receiveEvents(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.receive(ctx)
	}()
	wg.Go(func() {
		select {
		case <-done:
		case <-ctx.Done():
			select {
			case <-done:
			case <-time.After(receiverStopWait):
				c.say("%s: the Pub/Sub receiver did not stop within %v of the end; going on without it", c.p.Name, receiverStopWait)
			}
		}
	})
}

const receiverStopWait = 15 * time.Second

func (c *campaign) receive(ctx context.Context) {
	for ctx.Err() == nil {
		_ = c.ps.Subscriber(c.sub).Receive(ctx, func(_ context.Context, m *gps.Message) {
			m.Ack()
			e := event{
				ID: m.Attributes[pubsub.AttrID], Type: m.Attributes[pubsub.AttrType], Name: m.Attributes[pubsub.AttrName],
				Attributes: m.Attributes, RawData: string(m.Data), Published: m.PublishTime, Received: time.Now(),
			}
			e.Generation, _ = strconv.ParseInt(m.Attributes[pubsub.AttrGeneration], 10, 64)
			_ = json.Unmarshal(m.Data, &e.Data)
			c.events.add(e)
		})
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// resourceSample is one reading of a process's /metrics.
type resourceSample struct {
	At         time.Time
	Proc       string
	Life       int
	RSS        float64 // bytes
	Goroutines float64
}

// sampleResources reads process_resident_memory_bytes and go_goroutines
// from every live process's /metrics every resourceEvery until ctx ends.
func (c *campaign) sampleResources(ctx context.Context, wg *sync.WaitGroup) {
	client := &http.Client{Timeout: resourceEvery}
	wg.Go(func() {
		tick := time.NewTicker(resourceEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, p := range c.procs {
				l := p.Current()
				if l == nil || !p.Up() {
					continue
				}
				m, err := scrape(ctx, client, p.URL()+"/metrics")
				if err != nil {
					continue
				}
				rss, ok1 := m["process_resident_memory_bytes"]
				gr, ok2 := m["go_goroutines"]
				if !ok1 || !ok2 {
					continue
				}
				c.resources.add(resourceSample{At: time.Now(), Proc: p.Name, Life: l.N, RSS: rss, Goroutines: gr})
			}
		}
	})
}

// scrape reads a Prometheus text page into sample name (with labels, as
// written) → value.
func scrape(ctx context.Context, client *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body), nil
}

func parseMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// healthSample is the service's health at one instant, as the campaign
// sees it.
type healthSample struct {
	At time.Time
	// ProcsUp: every instance is serving.
	ProcsUp bool
	// Inactive names tokens with a valid grant whose status is not
	// active; Unservable those with a valid grant and no servable token.
	Inactive, Unservable []string
	// Outbox holds the commit time of every event in the outbox;
	// OutboxErr is set when the outbox could not be read.
	Outbox    []time.Time
	OutboxErr bool
}

// tokensHealthy says whether every token with a valid grant is active
// and servable.
func (h healthSample) tokensHealthy() bool { return len(h.Inactive) == 0 && len(h.Unservable) == 0 }

// outboxClear says whether no event committed in (from, to] is left.
func (h healthSample) outboxClear(from, to time.Time) bool {
	if h.OutboxErr {
		return false
	}
	for _, at := range h.Outbox {
		if at.After(from) && !at.After(to) {
			return false
		}
	}
	return true
}

// outboxOldest is the commit time of the oldest event left (zero if none).
func (h healthSample) outboxOldest() time.Time {
	var oldest time.Time
	for _, at := range h.Outbox {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	return oldest
}

// healthy is full health: every instance up, every token with a valid
// grant active and servable, no event older than a few seconds waiting.
func (h healthSample) healthy() bool {
	return h.ProcsUp && h.tokensHealthy() && h.outboxClear(time.Time{}, h.At.Add(-5*time.Second))
}

// watchHealth samples health every second until ctx ends.
func (c *campaign) watchHealth(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c.health.add(c.healthNow(ctx))
		}
	})
}

func (c *campaign) healthNow(ctx context.Context) healthSample {
	h := healthSample{At: time.Now(), ProcsUp: true}
	for _, p := range c.procs {
		if !p.Up() {
			h.ProcsUp = false
		}
	}
	for _, t := range c.tokens {
		d, ok := c.tl.latest(t.Name)
		if !ok || d.RefreshToken == "" || !c.fake.RefreshTokenValid(d.RefreshToken) {
			continue // no valid grant: nothing to expect
		}
		if d.state() != "active" {
			h.Inactive = append(h.Inactive, t.Name)
		}
		if !d.servable(h.At, 0) {
			h.Unservable = append(h.Unservable, t.Name)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	snaps, err := c.fs.Collection(c.coll + "_outbox").Documents(octx).GetAll()
	if err != nil {
		h.OutboxErr = true
		return h
	}
	for _, s := range snaps {
		h.Outbox = append(h.Outbox, msTime(millisField(s.Data(), "time")))
	}
	return h
}
