package main

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanFaults(t *testing.T) {
	for _, d := range []time.Duration{minDuration, 90 * time.Second, 10 * time.Minute} {
		a := planFaults(42, 1, d)
		if b := planFaults(42, 1, d); !reflect.DeepEqual(a, b) {
			t.Errorf("%v: the same seed drew two schedules", d)
		}
		if reflect.DeepEqual(a, planFaults(43, 1, d)) {
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
		for _, f := range planFaults(seed, 1, 10*time.Minute) {
			kinds[f.Kind] = true
		}
	}
	for _, k := range kindWeights {
		if !kinds[k.kind] {
			t.Errorf("no schedule of 30 seeds has a %s fault", k.kind)
		}
	}
}
