package main

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"
)

// plotResources draws, as an SVG, the resident memory and goroutines of
// every process life over the run, with the faults as shaded bands.
func (c *campaign) plotResources() string {
	const (
		width, panelH = 900, 220
		left, right   = 60, 140
		top, gap      = 30, 50
	)
	samples := c.resources.all()
	end := c.tEnd
	start := c.t0
	for _, s := range samples {
		if s.At.Before(start) {
			start = s.At
		}
		if s.At.After(end) {
			end = s.At
		}
	}
	span := math.Max(end.Sub(start).Seconds(), 1)
	x := func(t time.Time) float64 { return left + (width-left-right)*t.Sub(start).Seconds()/span }

	type key struct {
		proc string
		life int
	}
	series := map[key][]resourceSample{}
	var keys []key
	for _, s := range samples {
		k := key{s.Proc, s.Life}
		if series[k] == nil {
			keys = append(keys, k)
		}
		series[k] = append(series[k], s)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].proc != keys[j].proc {
			return keys[i].proc < keys[j].proc
		}
		return keys[i].life < keys[j].life
	})
	colors := map[string]string{"api-1": "#1f77b4", "api-2": "#2ca02c", "api-3": "#17becf", "worker-1": "#d62728", "worker-2": "#ff7f0e"}

	var b strings.Builder
	height := top + 2*panelH + gap + 40
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13">%s: resident memory and goroutines per process (shaded: faults; t0 = %s)</text>`+"\n",
		left, html.EscapeString(c.p.Name), c.t0.Format(time.TimeOnly))
	panels := []struct {
		title string
		value func(resourceSample) float64
		unit  string
	}{
		{"resident memory (MiB)", func(s resourceSample) float64 { return s.RSS / (1 << 20) }, "MiB"},
		{"goroutines", func(s resourceSample) float64 { return s.Goroutines }, ""},
	}
	for pi, p := range panels {
		y0 := float64(top + pi*(panelH+gap))
		maxV := 1.0
		for _, s := range samples {
			maxV = math.Max(maxV, p.value(s))
		}
		maxV = niceCeil(maxV)
		y := func(v float64) float64 { return y0 + panelH - panelH*v/maxV }
		for _, f := range c.faults.all() {
			fe := f.End
			if fe.IsZero() {
				fe = c.tEnd
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#999" fill-opacity="0.18"><title>%s</title></rect>`+"\n",
				x(f.Start), y0, math.Max(x(fe)-x(f.Start), 1), panelH, html.EscapeString(f.Kind+" "+f.Target))
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, y0, width-left-right, panelH)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-4, y(v)+4, v)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f">%s</text>`+"\n", left, y0-4, p.title)
		for _, k := range keys {
			var pts []string
			for _, s := range series[k] {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.At), y(p.value(s))))
			}
			color := colors[k.proc]
			if color == "" {
				color = "#000"
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.3" points="%s"><title>%s life %d</title></polyline>`+"\n",
				color, strings.Join(pts, " "), k.proc, k.life)
		}
	}
	// time axis and legend
	axisY := top + 2*panelH + gap + 14
	for i := 0; i <= 5; i++ {
		t := start.Add(time.Duration(float64(i) / 5 * span * float64(time.Second)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), axisY, c.rel(t))
	}
	ly := top
	for _, name := range []string{"api-1", "api-2", "api-3", "worker-1", "worker-2"} {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="3" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			width-right+10, ly, colors[name], width-right+26, ly+5, name)
		ly += 16
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
