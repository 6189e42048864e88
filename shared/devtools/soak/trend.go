package main

import (
	"math"
	"sort"
)

// A growth trend, tested robustly: the Theil–Sen slope (the median of the
// slopes between every pair of samples, indifferent to outliers and to a
// step near either end) says how much the series grows, and the
// Mann–Kendall test says whether it grows at all or only wanders. A
// series has a growth trend when the test is significant and the growth
// the slope projects over the window is material, so that neither noise
// nor a harmless few bytes fail a run.

// trendResult is the verdict on one series.
type trendResult struct {
	N      int
	Slope  float64 // units per second (Theil–Sen)
	Growth float64 // Slope × the window's length
	Median float64
	Z      float64 // Mann–Kendall statistic, normal approximation with ties
	Grows  bool
}

// mannKendallZ is the one-sided significance the test needs: p < 0.001.
const mannKendallZ = 3.09

// trend tests ys (at times xs, seconds) for a material growth: more than
// max(minAbs, minRel × median) over the window.
func trend(xs, ys []float64, minAbs, minRel float64) trendResult {
	n := len(xs)
	r := trendResult{N: n}
	if n < 3 {
		return r
	}
	var slopes []float64
	s := 0.0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			dy := ys[j] - ys[i]
			if dx := xs[j] - xs[i]; dx > 0 {
				slopes = append(slopes, dy/dx)
			}
			switch {
			case dy > 0:
				s++
			case dy < 0:
				s--
			}
		}
	}
	r.Slope = median(slopes)
	r.Growth = r.Slope * (xs[n-1] - xs[0])
	r.Median = median(append([]float64(nil), ys...))

	// Variance of S with the correction for tied values.
	ties := map[float64]int{}
	for _, y := range ys {
		ties[y]++
	}
	fn := float64(n)
	v := fn * (fn - 1) * (2*fn + 5)
	for _, t := range ties {
		ft := float64(t)
		v -= ft * (ft - 1) * (2*ft + 5)
	}
	v /= 18
	if v > 0 {
		switch {
		case s > 0:
			r.Z = (s - 1) / math.Sqrt(v)
		case s < 0:
			r.Z = (s + 1) / math.Sqrt(v)
		}
	}
	r.Grows = r.Z > mannKendallZ && r.Growth > math.Max(minAbs, minRel*r.Median)
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}
