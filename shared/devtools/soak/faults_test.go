package main

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanFaults(t *testing.T) {
	for _, d := range []time.Duration{minDuration, 90 * time.Second, 10 * time.Minute} {
		a := planFaults(42, 1, d, defaultFleet)
		if b := planFaults(42, 1, d, defaultFleet); !reflect.DeepEqual(a, b) {
			t.Errorf("%v: the same seed drew two schedules", d)
		}
		if reflect.DeepEqual(a, planFaults(43, 1, d, defaultFleet)) {
			t.Errorf("%v: seeds 42 and 43 drew the same schedule", d)
		}
		if len(a) == 0 {
			t.Fatalf("%v: no fault planned", d)
		}
		var t0 time.Time
		for _, f := range a {
			by := recoveredBy(f.Kind, t0.Add(f.At), t0.Add(f.At+f.For))
			if f.At < faultWarmup || by.Sub(t0) > d {
				t.Errorf("%v: %+v starts before the warm-up or recovers after the end (%v)", d, f, by.Sub(t0))
			}
		}
		final := -1
		for i, f := range a {
			if f.Kind == faultPubSub && f.For >= 12*time.Second {
				final = i
			}
		}
		if final < len(a)-2 {
			t.Errorf("%v: the schedule does not end with a Pub/Sub outage longer than a publish's timeout: %+v", d, a)
		}
		for _, f := range a[final+1:] {
			if isProcessFault(f.Kind) {
				t.Errorf("%v: a process fault inside the final Pub/Sub outage: %+v", d, f)
			}
		}
	}
	kinds := map[string]bool{}
	for seed := range uint64(30) {
		for _, f := range planFaults(seed, 1, 10*time.Minute, defaultFleet) {
			kinds[f.Kind] = true
		}
	}
	for _, k := range kindWeights {
		if !kinds[k.kind] {
			t.Errorf("no schedule of 30 seeds has a %s fault", k.kind)
		}
	}
}

// TestPlanGrantCuts: runs long enough get a Firestore cut after a grant,
// one per started 20 minutes, with no other fault before it has
// recovered (but the final Pub/Sub outage of a short run); the 90 s run
// of make test has none.
func TestPlanGrantCuts(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		cuts int
	}{{90 * time.Second, 0}, {3 * time.Minute, 1}, {10 * time.Minute, 1}, {60 * time.Minute, 3}} {
		for seed := range uint64(5) {
			plan := planFaults(seed, 1, tc.d, fleet{APIs: 3, Workers: 2})
			var cuts []plannedFault
			for _, f := range plan {
				if f.Kind == faultGrantCut {
					cuts = append(cuts, f)
				}
			}
			if len(cuts) != tc.cuts {
				t.Fatalf("%v seed %d: %d grant cuts, want %d", tc.d, seed, len(cuts), tc.cuts)
			}
			var t0 time.Time
			for _, c := range cuts {
				end := recoveredBy(c.Kind, t0.Add(c.At+grantCutArm), t0.Add(c.At+grantCutArm+c.For)).Sub(t0)
				for _, f := range plan {
					if f.Param == finalParam {
						break // the final outage and its companion may follow closely in a short run
					}
					if f != c && f.At <= end && c.At <= f.At+f.For {
						t.Errorf("%v seed %d: %+v overlaps the grant cut %+v", tc.d, seed, f, c)
					}
				}
			}
		}
	}
}
