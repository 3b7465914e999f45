package overview

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in SVG user units; the page scales the SVG to its width.
const (
	chartW   = 720
	chartH   = 180
	padLeft  = 56
	padRight = 28
	padTop   = 12
	padBot   = 28
	plotW    = chartW - padLeft - padRight
	plotH    = chartH - padTop - padBot
	// maxLines bounds the series drawn in one line chart; the table
	// beside it lists them all.
	maxLines = 6
)

// palette is colour-blind safe (Okabe–Ito); each line also has its own
// dash pattern, so colour is never the only cue.
var palette = [maxLines]string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"}
var dashes = [maxLines]string{"", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"}

// View is a snapshot drawn for the page: each chart as inline SVG with
// its text alternative, and the snapshot itself for the tables.
type View struct {
	Snapshot
	// End is the end of the last minute shown.
	End                                                time.Time
	Requests, Refusals, Latency, Nodes                 template.HTML
	RequestsText, RefusalsText, LatencyText, NodesText string
	TotalRequests, TotalErrors, TotalRefusals          int
}

// Draw renders s. Every name drawn (reasons, classes, nodes) is escaped.
func Draw(s Snapshot) View {
	v := View{Snapshot: s, End: s.Start.Add(Minutes * time.Minute)}
	peak, peakAt := 0, 0
	for i, n := range s.Requests {
		v.TotalRequests += n
		v.TotalErrors += s.ServerErrors[i]
		if n > peak {
			peak, peakAt = n, i
		}
	}
	for _, r := range s.Refusals {
		v.TotalRefusals += r.Total
	}
	if v.TotalRequests == 0 {
		v.RequestsText = "No requests in the last hour."
	} else {
		v.RequestsText = fmt.Sprintf("%d requests in the last hour, %d answered with a server error; busiest minute %s with %d.",
			v.TotalRequests, v.TotalErrors, hhmm(s.Start, peakAt), peak)
	}
	v.Requests = bars("requests", "Requests per minute", v.RequestsText, s.Start, s.Requests, s.ServerErrors)

	var ref []line
	for i, r := range s.Refusals {
		if i == maxLines {
			break
		}
		vals := make([]float64, len(r.Counts))
		for k, c := range r.Counts {
			vals[k] = float64(c)
		}
		ref = append(ref, line{name: r.Name, values: vals})
	}
	if len(s.Refusals) == 0 {
		v.RefusalsText = "No refusals in the last hour."
	} else {
		parts := make([]string, 0, len(s.Refusals))
		for _, r := range s.Refusals {
			parts = append(parts, fmt.Sprintf("%s %d", r.Name, r.Total))
		}
		v.RefusalsText = fmt.Sprintf("%d refusals in the last hour: %s.", v.TotalRefusals, strings.Join(parts, ", "))
	}
	v.Refusals = lines("refusals", "Refusals per minute by reason", v.RefusalsText, s.Start, ref, "")

	var lat []line
	for i, l := range s.P95 {
		if i == maxLines {
			break
		}
		lat = append(lat, line{name: l.Class, values: l.P95})
	}
	if len(s.P95) == 0 {
		v.LatencyText = "No requests reached Superset in the last hour."
	} else {
		parts := make([]string, 0, len(s.P95))
		for _, l := range s.P95 {
			parts = append(parts, fmt.Sprintf("%s %s over %d requests", l.Class, ms(l.HourP95), l.Requests))
		}
		v.LatencyText = "Superset p95 time to response headers over the hour: " + strings.Join(parts, "; ") + "."
	}
	v.Latency = lines("latency", "Superset p95 latency per endpoint class", v.LatencyText, s.Start, lat, " ms")

	if len(s.Nodes) == 0 {
		v.NodesText = "No Superset node has been seen yet."
	} else {
		parts := make([]string, 0, len(s.Nodes))
		for _, n := range s.Nodes {
			st := "healthy now"
			if !n.HealthyNow {
				st = "unhealthy now"
			}
			parts = append(parts, fmt.Sprintf("%s %s, down in %d of the last %d minutes", n.Name, st, n.DownMinutes, Minutes))
		}
		v.NodesText = strings.Join(parts, "; ") + "."
	}
	v.Nodes = strip("nodes", "Superset node health", v.NodesText, s.Start, s.Nodes)
	return v
}

func hhmm(start time.Time, i int) string {
	return start.Add(time.Duration(i) * time.Minute).UTC().Format("15:04")
}

func ms(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// open starts an SVG with its accessible name and description.
func open(b *strings.Builder, id, title, desc string, height int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc">`,
		id, chartW, height, id, id)
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, esc(title), id, esc(desc))
}

// axes draws the frame, the y scale (0 and max, with unit) and the time
// marks every 15 minutes.
func axes(b *strings.Builder, start time.Time, max float64, unit string) {
	fmt.Fprintf(b, `<g class="axes" font-size="11" fill="#444"><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`,
		padLeft, padTop+plotH, padLeft+plotW, padTop+plotH)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, padLeft, padTop, padLeft, padTop+plotH)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s%s</text>`, padLeft-4, padTop+10, num(max), esc(unit))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">0</text>`, padLeft-4, padTop+plotH)
	for i := 0; i <= Minutes; i += 15 {
		x := padLeft + plotW*i/Minutes
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, x, chartH-8, hhmm(start, i))
	}
	b.WriteString(`</g>`)
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceMax(v float64) float64 {
	if v <= 1 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// bars draws one bar per minute, the part that were server errors on top
// in a second colour.
func bars(id, title, desc string, start time.Time, total, errs []int) template.HTML {
	var b strings.Builder
	open(&b, id, title, desc, chartH)
	max := 0
	for _, n := range total {
		max = maxInt(max, n)
	}
	top := niceMax(float64(max))
	axes(&b, start, top, "/min")
	bw := float64(plotW) / Minutes
	b.WriteString(`<g class="bars">`)
	for i, n := range total {
		if n == 0 {
			continue
		}
		h := float64(plotH) * float64(n) / top
		x := float64(padLeft) + bw*float64(i)
		fmt.Fprintf(&b, `<rect class="bar" data-minute="%d" data-value="%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#0072B2"/>`,
			i, n, x+0.5, float64(padTop+plotH)-h, bw-1, h)
		if e := errs[i]; e > 0 {
			eh := float64(plotH) * float64(e) / top
			fmt.Fprintf(&b, `<rect class="bar-error" data-minute="%d" data-value="%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#D55E00"/>`,
				i, e, x+0.5, float64(padTop+plotH)-h, bw-1, eh)
		}
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped or a number
}

type line struct {
	name   string
	values []float64 // NaN: no data that minute
}

// lines draws each series as a polyline, broken where a minute has no
// data, and a legend under the plot.
func lines(id, title, desc string, start time.Time, ls []line, unit string) template.HTML {
	var b strings.Builder
	legendRows := (len(ls) + 2) / 3
	open(&b, id, title, desc, chartH+16*legendRows)
	max := 0.0
	for _, l := range ls {
		for _, v := range l.values {
			if !math.IsNaN(v) && v > max {
				max = v
			}
		}
	}
	top := niceMax(max)
	axes(&b, start, top, unit)
	step := float64(plotW) / (Minutes - 1)
	for k, l := range ls {
		fmt.Fprintf(&b, `<g class="series" data-name="%s" stroke="%s" fill="none" stroke-width="2"`, esc(l.name), palette[k])
		if dashes[k] != "" {
			fmt.Fprintf(&b, ` stroke-dasharray="%s"`, dashes[k])
		}
		b.WriteString(`>`)
		var pts []string
		flush := func() {
			switch len(pts) {
			case 0:
			case 1:
				// A lone minute is a dot, or it would not show.
				xy := strings.Split(pts[0], ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], palette[k])
			default:
				fmt.Fprintf(&b, `<polyline points="%s"/>`, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, v := range l.values {
			if math.IsNaN(v) {
				flush()
				continue
			}
			x := float64(padLeft) + step*float64(i)
			y := float64(padTop+plotH) - float64(plotH)*v/top
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		flush()
		b.WriteString(`</g>`)
	}
	for k, l := range ls {
		x := padLeft + (k%3)*(plotW/3)
		y := chartH + 4 + 16*(k/3)
		fmt.Fprintf(&b, `<g class="legend"><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"`, x, y, x+24, y, palette[k])
		if dashes[k] != "" {
			fmt.Fprintf(&b, ` stroke-dasharray="%s"`, dashes[k])
		}
		fmt.Fprintf(&b, `/><text x="%d" y="%d" font-size="12" fill="#222">%s</text></g>`, x+30, y+4, esc(l.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped or a number
}

// strip draws one row per node, a cell per minute: green healthy, red with
// a hatch-free darker fill when down (and the row's label says how long).
func strip(id, title, desc string, start time.Time, nodes []Node) template.HTML {
	var b strings.Builder
	rowH := 22
	h := padTop + rowH*max(len(nodes), 1) + padBot
	open(&b, id, title, desc, h)
	cw := float64(plotW) / Minutes
	for r, n := range nodes {
		y := padTop + r*rowH
		fmt.Fprintf(&b, `<g class="node" data-name="%s" data-down-minutes="%d">`, esc(n.Name), n.DownMinutes)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#222">%s</text>`, padLeft-4, y+14, esc(shortNode(n.Name)))
		for i, down := range n.Down {
			fill, cls := "#009E73", "up"
			if down {
				fill, cls = "#D55E00", "down"
			}
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`,
				cls, float64(padLeft)+cw*float64(i)+0.5, y+2, cw-1, rowH-6, fill)
		}
		b.WriteString(`</g>`)
	}
	for i := 0; i <= Minutes; i += 15 {
		x := padLeft + plotW*i/Minutes
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#444">%s</text>`, x, h-8, hhmm(start, i))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped or a number
}

// shortNode keeps a node's label inside the margin: its host:port.
func shortNode(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimSuffix(s, "/")
	if len(s) > 9 {
		s = "…" + s[len(s)-8:]
	}
	return s
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
