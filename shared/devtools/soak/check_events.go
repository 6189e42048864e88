package main

import (
	"fmt"
	"sort"

	"github.com/wxcc/tokenservice/shared/token"
)

// missingRotations lists the token.rotated events not received for the
// generations of the final documents.
func (c *campaign) missingRotations() []string {
	got := map[string]bool{}
	for _, e := range c.events.all() {
		got[e.ID] = true
	}
	var missing []string
	for name, d := range c.final {
		g0 := int64(0)
		if vs := c.tl.versions(name); len(vs) > 0 {
			g0 = vs[0].Generation
		}
		for g := g0 + 1; g <= d.Generation; g++ {
			if id := fmt.Sprintf("%s/%d/%s", name, g, token.EventRotated); !got[id] {
				missing = append(missing, id)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// 3. Every generation committed to Firestore has its token.rotated
// delivered at least once; after dropping duplicates by ce-id, nothing is
// missing. Besides, nothing false: no event for a generation never
// committed, and the expiries it carries are the committed ones.
func (c *campaign) checkEvents() result {
	r := result{ID: "3", Title: "every committed generation has its token.rotated delivered (nothing missing, nothing false)"}
	evs := c.events.all()
	distinct := map[string]event{}
	byType := map[string]int{}
	outOfOrder := 0
	lastGen := map[string]int64{}
	for _, e := range evs {
		if _, ok := distinct[e.ID]; !ok {
			distinct[e.ID] = e
			byType[e.Type]++
		}
		if e.Type == string(token.EventRotated) {
			if e.Generation < lastGen[e.Name] {
				outOfOrder++
			}
			lastGen[e.Name] = max(lastGen[e.Name], e.Generation)
		}
	}
	for _, id := range c.missingRotations() {
		r.fail("%s never arrived", id)
	}
	for _, e := range distinct {
		if e.Type == string(token.EventSweepHalted) {
			continue // invariant 5
		}
		if e.Data.Name != e.Name || e.Data.Generation != e.Generation {
			r.fail("%s: attributes say %s/%d, data says %s/%d", e.ID, e.Name, e.Generation, e.Data.Name, e.Data.Generation)
		}
		if c.tokenByName(e.Name) == nil {
			r.fail("%s: an event for a token the campaign never had", e.ID)
			continue
		}
		if e.Type != string(token.EventRotated) {
			continue
		}
		vs := c.tl.versions(e.Name)
		var committed *docState
		for i := range vs {
			if vs[i].Generation == e.Generation {
				committed = &vs[i]
				break
			}
		}
		if committed == nil {
			r.fail("%s: no such generation was ever committed (Firestore went up to %d)", e.ID, maxGeneration(vs))
			continue
		}
		if got, want := e.Data.AccessExpires, committed.AccessExpires.UnixMilli(); got != want {
			r.fail("%s: accessExpires %d, but the committed generation holds %d", e.ID, got, want)
		}
	}
	r.Summary = fmt.Sprintf("%d messages received, %d distinct ce-ids (%s); %d token.rotated arrived behind a later generation of the same token (subscribers order by generation)",
		len(evs), len(distinct), describeCounts(byType), outOfOrder)
	return r
}

func maxGeneration(vs []docState) int64 {
	var g int64
	for _, v := range vs {
		g = max(g, v.Generation)
	}
	return g
}
