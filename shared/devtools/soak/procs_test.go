package main

import (
	"reflect"
	"testing"
	"time"
)

func TestDownWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	p := &proc{Name: "api-2", lives: []*life{
		{N: 1, Started: at(0), Ready: at(1), Told: "SIGKILL", ToldAt: at(10), Ended: at(10)},
		{N: 2, Started: at(12), Told: "SIGKILL", ToldAt: at(40), Ended: at(40)}, // never got ready
		{N: 3, Started: at(41), Ready: at(42), Ended: at(50)},                   // exited by itself
		{N: 4, Started: at(51), Ready: at(52)},
	}}
	want := []window{{at(0), at(1)}, {at(10), at(42)}, {at(50), at(52)}}
	if got := p.downWindows(at(90)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
