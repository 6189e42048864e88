package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The chart is inline SVG drawn here, on the server: no script, no style
// attribute (the stylesheet styles it by class, as the CSP wants), and a
// <title>, a <desc> and a sentence beside it for those who do not see it.
// Marks differ by shape as well as colour, and the legend names them.

// Geometry of the chart, in the SVG's own units (it scales to the page).
const (
	chartW, chartH             = 720, 222
	plotL, plotR, plotT, plotB = 56.0, 704.0, 14.0, 182.0
	xLabelY                    = 200.0
	labelGap                   = 13.0
)

// lifeChart is what the template draws.
type lifeChart struct {
	ViewBox    string
	Line, Area string
	// Frame is the plot's border; Grid its horizontal lines.
	Frame          string
	Threshold, Min hline
	YTicks, XTicks []tick
	Marks          []chartMark
	Title, Desc    string
	Summary        string
	// Empty: nothing to draw (no rotation known in the window).
	Empty bool
	// ThresholdText and MinText name the lines in the legend.
	ThresholdText, MinText string
}

type hline struct {
	Y, X1, X2, LabelX, LabelY string
	Label                     string
	Show                      bool
}

type tick struct {
	Pos, LabelPos, Anchor string
	Label                 string
	Grid                  string // the grid line's path, "" for none
}

// chartMark is one event on the chart. Shape is an SVG path; refreshes
// are circles (CX, CY, R) instead.
type chartMark struct {
	Kind, Label string
	CX, CY, R   string
	Shape       string
}

// num writes a coordinate with one decimal at most.
func num(v float64) string {
	return strconv.FormatFloat(float64(int64(v*10+0.5*sign(v)))/10, 'f', -1, 64)
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// yStep picks the validity between two horizontal grid lines: at most
// five of them under top.
func yStep(top time.Duration) time.Duration {
	for _, s := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour,
		4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 96 * time.Hour, 168 * time.Hour} {
		if top <= 5*s {
			return s
		}
	}
	return 30 * 24 * time.Hour
}

// shortDuration labels an axis: "30 min", "4 h", "2 d".
func shortDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour || d%(24*time.Hour) != 0:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d d", int(d.Hours())/24)
}

// markLabels say what each kind of mark is, in the legend and its title.
var markLabels = map[string]string{
	markRefresh:    "Refreshed",
	markAuthorized: "Authorized by a person",
	markFailure:    "Refresh failed",
	markReauth:     "Re-authorization needed",
}

// drawLife lays d out; threshold is REFRESH_THRESHOLD, min
// MIN_TOKEN_VALIDITY.
func drawLife(d lifeData, threshold, minValidity time.Duration) lifeChart {
	c := lifeChart{
		ViewBox: fmt.Sprintf("0 0 %d %d", chartW, chartH),
		Frame:   fmt.Sprintf("M%s %sH%sV%sH%sZ", num(plotL), num(plotT), num(plotR), num(plotB), num(plotL)),
		Title:   "Remaining validity of the access token, last 7 days",
		Summary: d.summary(),
		Empty:   len(d.Segments) == 0,
		ThresholdText: "Refresh threshold (REFRESH_THRESHOLD, " + humanDuration(threshold) +
			"): the worker refreshes before the line gets here",
		MinText: "MIN_TOKEN_VALIDITY (" + humanDuration(minValidity) + "): below it, callers get 503 if a refresh fails",
	}
	c.Desc = c.Summary + " Refresh threshold " + humanDuration(threshold) + "; MIN_TOKEN_VALIDITY " + humanDuration(minValidity) + "."

	top := threshold + threshold/4
	for _, s := range d.Segments {
		top = max(top, s.Expires.Sub(s.From))
	}
	step := yStep(top)
	top = (top + step - 1) / step * step
	span := d.To.Sub(d.From)
	x := func(t time.Time) float64 { return plotL + float64(t.Sub(d.From))/float64(span)*(plotR-plotL) }
	y := func(v time.Duration) float64 {
		v = min(max(v, 0), top)
		return plotB - float64(v)/float64(top)*(plotB-plotT)
	}

	for v := time.Duration(0); v <= top; v += step {
		yy := y(v)
		tk := tick{Pos: num(yy), LabelPos: num(yy + 4), Anchor: "end", Label: shortDuration(v)}
		if v > 0 {
			tk.Grid = fmt.Sprintf("M%s %sH%s", num(plotL), num(yy), num(plotR))
		}
		c.YTicks = append(c.YTicks, tk)
	}
	for k := 7; k >= 0; k-- {
		t := d.To.Add(-time.Duration(k) * 24 * time.Hour)
		label, anchor := fmt.Sprintf("%d d ago", k), "middle"
		switch k {
		case 0:
			label, anchor = "now", "end"
		case 7:
			anchor = "start"
		}
		xx := x(t)
		tk := tick{Pos: num(xx), LabelPos: num(xLabelY), Anchor: anchor, Label: label}
		if k > 0 && k < 7 {
			tk.Grid = fmt.Sprintf("M%s %sV%s", num(xx), num(plotT), num(plotB))
		}
		c.XTicks = append(c.XTicks, tk)
	}

	line := func(v time.Duration, label string) hline {
		yy := y(v)
		return hline{Y: num(yy), X1: num(plotL), X2: num(plotR), LabelX: num(plotR - 4), LabelY: num(yy - 4), Label: label, Show: true}
	}
	c.Threshold = line(threshold, "refresh threshold "+humanDuration(threshold))
	c.Min = line(minValidity, "MIN_TOKEN_VALIDITY "+humanDuration(minValidity))
	// Labels that would touch each other or the top: the legend names the
	// lines anyway.
	if y(minValidity)-y(threshold) < labelGap {
		c.Min.Show = false
	}
	if y(threshold) < plotT+labelGap {
		c.Threshold.Show = false
	}

	var path strings.Builder
	for i, s := range d.Segments {
		cmd := "L"
		if i == 0 || !s.From.Equal(d.Segments[i-1].To) {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%s %s", cmd, num(x(s.From)), num(y(s.Expires.Sub(s.From))))
		if s.Expires.After(s.From) && s.Expires.Before(s.To) {
			fmt.Fprintf(&path, "L%s %s", num(x(s.Expires)), num(y(0)))
		}
		fmt.Fprintf(&path, "L%s %s", num(x(s.To)), num(y(s.Expires.Sub(s.To))))
	}
	c.Line = path.String()
	if c.Line != "" {
		// The area under the line, closed along the time axis.
		c.Area = c.Line + "L" + num(x(d.Segments[len(d.Segments)-1].To)) + " " + num(plotB) +
			"L" + num(x(d.Segments[0].From)) + " " + num(plotB) + "Z"
	}

	for _, e := range d.Events {
		xx, yy := x(e.At), plotB
		if v, ok := d.validityAt(e.At); ok {
			yy = y(v)
		}
		m := chartMark{Kind: e.Kind, Label: markLabels[e.Kind] + " " + e.At.UTC().Format("2 Jan 15:04 MST")}
		switch e.Kind {
		case markRefresh:
			m.Label += ": access token valid until " + e.Expires.UTC().Format("2 Jan 15:04 MST")
			m.CX, m.CY, m.R = num(xx), num(yy), "4.5"
		case markAuthorized:
			m.Shape = fmt.Sprintf("M%s %sl6 6l-6 6l-6 -6Z", num(xx), num(yy-6))
		case markFailure:
			m.Shape = fmt.Sprintf("M%s %sl10 10m0 -10l-10 10", num(xx-5), num(yy-5))
		case markReauth:
			m.Shape = fmt.Sprintf("M%s %sl6.5 11h-13Z", num(xx), num(yy-7))
		}
		if e.Detail != "" && e.Kind != markRefresh {
			m.Label += ": " + e.Detail
		}
		c.Marks = append(c.Marks, m)
	}
	return c
}
