package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestTrend(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	series := func(f func(i int) float64) (xs, ys []float64) {
		for i := range 150 { // 5 minutes at 2 s
			xs = append(xs, float64(2*i))
			ys = append(ys, f(i))
		}
		return xs, ys
	}
	tests := []struct {
		name  string
		f     func(i int) float64
		grows bool
	}{
		{"flat", func(int) float64 { return 30 }, false},
		{"flat with noise", func(int) float64 { return 30 + rng.NormFloat64()*3 }, false},
		{"sawtooth of a garbage collector", func(i int) float64 { return 30 + float64(i%20) }, false},
		{"a step near the end (a fault's burst)", func(i int) float64 {
			if i > 135 {
				return 60
			}
			return 30 + rng.NormFloat64()
		}, false},
		{"steady leak", func(i int) float64 { return 30 + 0.5*float64(i) + rng.NormFloat64()*2 }, true},
		{"slow leak under noise", func(i int) float64 { return 100 + 0.2*float64(i) + rng.NormFloat64()*5 }, true},
		{"tiny but steady growth", func(i int) float64 { return 1000 + 0.01*float64(i) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xs, ys := series(tt.f)
			r := trend(xs, ys, 10, 0.2)
			if r.Grows != tt.grows {
				t.Errorf("got grows=%v (slope %.3f/s, growth %.1f, median %.1f, Z %.2f), want %v", r.Grows, r.Slope, r.Growth, r.Median, r.Z, tt.grows)
			}
		})
	}
}

func TestTrendSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4, 5}
	ys := []float64{0, 2, 4, 600, 8, 10} // one outlier
	if r := trend(xs, ys, 0, 0); math.Abs(r.Slope-2) > 1e-9 {
		t.Errorf("Theil–Sen slope: got %v, want 2 despite the outlier", r.Slope)
	}
}
