package txkvhttp

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The SVG drawings are built as text here, not with html/template (which
// does not know SVG's geometry), so every piece of text that reaches them
// goes through esc: keys, labels and modes alike.

// esc makes s safe as XML/HTML text or a quoted attribute value: valid
// UTF-8, no control characters, the five markup characters escaped.
func esc(s string) string { return html.EscapeString(printable(s)) }

// printable replaces invalid UTF-8 and non-printing runes by U+FFFD, so a
// label from SetLabel cannot break an XML parser or a line of the page.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, notPrintable) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if notPrintable(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }

// shorten cuts s to n runes, with an ellipsis.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// maxGraphNodes is how many transactions the SVG draws; graph.json has all.
const maxGraphNodes = 40

// The graph's geometry.
const (
	graphW, graphH = 720.0, 440.0
	nodeW, nodeH   = 96.0, 38.0
	bend           = 22.0 // how far an edge bows from the straight line
)

type pt struct{ x, y float64 }

// graphSVG draws the wait-for graph: transactions on a circle, an arrow
// from each waiter to what it waits for (dashed: queued behind), the
// latest deadlock's cycle in red and its victim crossed out.
func graphSVG(g *Graph) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="waitfor" viewBox="0 0 %g %g" role="img" aria-label="wait-for graph">`, graphW, graphH)
	b.WriteString(`<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker>` +
		`<marker id="arr-cycle" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#d22"/></marker></defs>`)
	nodes, omitted := pickNodes(g.Nodes)
	if len(nodes) == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="empty" text-anchor="middle">no transaction is waiting</text></svg>`, graphW/2, graphH/2)
		return b.String()
	}
	pos := layout(nodes)
	for _, e := range g.Edges {
		p, ok1 := pos[e.Waiter]
		q, ok2 := pos[e.Holder]
		if ok1 && ok2 {
			drawEdge(&b, &e, p, q)
		}
	}
	for _, n := range nodes {
		drawNode(&b, &n, pos[n.Tx])
	}
	if omitted > 0 {
		fmt.Fprintf(&b, `<text x="8" y="%g" class="note">+%d more transactions (graph.json lists all)</text>`, graphH-8, omitted)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// pickNodes keeps at most maxGraphNodes: the cycle's first, then waiters.
func pickNodes(all []GraphNode) ([]GraphNode, int) {
	if len(all) <= maxGraphNodes {
		return all, 0
	}
	rank := func(n GraphNode) int {
		switch {
		case n.InCycle:
			return 0
		case n.Waiting:
			return 1
		}
		return 2
	}
	kept := slices.Clone(all)
	slices.SortStableFunc(kept, func(a, b GraphNode) int { return rank(a) - rank(b) })
	kept = kept[:maxGraphNodes]
	slices.SortFunc(kept, func(a, b GraphNode) int { return cmpU64(a.Tx, b.Tx) })
	return kept, len(all) - maxGraphNodes
}

// layout places the nodes on a circle, in ID order, the first at the top.
func layout(nodes []GraphNode) map[uint64]pt {
	pos := make(map[uint64]pt, len(nodes))
	cx, cy := graphW/2, graphH/2
	rx, ry := graphW/2-nodeW/2-12, graphH/2-nodeH/2-14
	for i, n := range nodes {
		a := -math.Pi/2 + 2*math.Pi*float64(i)/float64(len(nodes))
		pos[n.Tx] = pt{cx + rx*math.Cos(a), cy + ry*math.Sin(a)}
	}
	return pos
}

// clip moves from c towards d to the border of c's box.
func clip(c, d pt) pt {
	dx, dy := d.x-c.x, d.y-c.y
	t := math.Inf(1)
	if dx != 0 {
		t = math.Min(t, (nodeW/2+3)/math.Abs(dx))
	}
	if dy != 0 {
		t = math.Min(t, (nodeH/2+3)/math.Abs(dy))
	}
	if math.IsInf(t, 1) || t > 1 {
		return c
	}
	return pt{c.x + dx*t, c.y + dy*t}
}

func drawEdge(b *strings.Builder, e *GraphEdge, p, q pt) {
	// A quadratic curve bowing to the right of the direction of travel, so
	// that a → b and b → a (a two-transaction deadlock) do not overlap.
	dx, dy := q.x-p.x, q.y-p.y
	l := math.Hypot(dx, dy)
	if l == 0 {
		return
	}
	ctl := pt{(p.x+q.x)/2 - dy/l*bend, (p.y+q.y)/2 + dx/l*bend}
	s, t := clip(p, ctl), clip(q, ctl)
	class, marker := "edge", "arr"
	if e.Soft {
		class += " soft"
	}
	if e.Cycle {
		class, marker = class+" cycle", "arr-cycle"
	}
	if !e.Live {
		class += " gone"
	}
	what := e.Mode + " on " + e.Target.Text
	fmt.Fprintf(b, `<g class="%s"><title>txn %d waits for txn %d: %s</title>`, class, e.Waiter, e.Holder, esc(what))
	fmt.Fprintf(b, `<path d="M%.1f,%.1f Q%.1f,%.1f %.1f,%.1f" marker-end="url(#%s)"/>`, s.x, s.y, ctl.x, ctl.y, t.x, t.y, marker)
	// The label sits beside the curve, on its outer side, so that the two
	// edges of a two-transaction cycle keep their labels apart.
	out := pt{-dy / l, dx / l}
	at := pt{(p.x+q.x)/2 + out.x*1.4*bend, (p.y+q.y)/2 + out.y*1.4*bend}
	anchor := "middle"
	switch {
	case out.x > 0.3:
		anchor = "start"
	case out.x < -0.3:
		anchor = "end"
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s">%s %s</text></g>`, at.x, at.y+4, anchor,
		modeLetter(e.Mode), esc(shorten(e.Target.Text, 20)))
}

func modeLetter(mode string) string {
	switch mode {
	case "shared":
		return "S"
	case "exclusive":
		return "X"
	}
	return mode
}

func drawNode(b *strings.Builder, n *GraphNode, c pt) {
	class := "node"
	switch {
	case n.Victim:
		class += " victim"
	case n.InCycle:
		class += " cycle"
	case n.Waiting:
		class += " waiting"
	}
	fmt.Fprintf(b, `<g class="%s" data-tx="%d"><title>txn %d%s</title>`, class, n.Tx, n.Tx, esc(labelSuffix(n.Label)))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%g" height="%g" rx="6"/>`, c.x-nodeW/2, c.y-nodeH/2, nodeW, nodeH)
	line2 := shorten(n.Label, 14)
	if n.Victim {
		line2 = "✗ victim"
	}
	if line2 == "" {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">txn %d</text>`, c.x, c.y+4, n.Tx)
	} else {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">txn %d</text>`, c.x, c.y-3, n.Tx)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="sub">%s</text>`, c.x, c.y+12, esc(line2))
	}
	b.WriteString(`</g>`)
}

func labelSuffix(l string) string {
	if l == "" {
		return ""
	}
	return " (" + l + ")"
}

// The charts' geometry.
const chartW, chartH = 240.0, 56.0

// series is one line of a chart.
type series struct {
	class string
	pts   []Point
}

// chartSVG draws lines over the history window ending at now, scaled to
// their maximum (or to top, when top > 0: a rate in [0, 1]), with the
// marks as vertical lines.
func chartSVG(now time.Time, top float64, marks []Mark, lines ...series) string {
	span := time.Duration(HistoryPoints) * SampleInterval
	x := func(t time.Time) float64 {
		return chartW * (1 - float64(now.Sub(t))/float64(span))
	}
	hi := top
	if hi <= 0 {
		for _, l := range lines {
			for _, p := range l.pts {
				hi = math.Max(hi, p.Value)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %g %g" preserveAspectRatio="none">`, chartW, chartH)
	fmt.Fprintf(&b, `<rect class="frame" x="0" y="0" width="%g" height="%g"/>`, chartW, chartH)
	for _, m := range marks {
		if mx := x(m.Time); mx >= 0 {
			fmt.Fprintf(&b, `<line class="mark" x1="%.1f" y1="0" x2="%.1f" y2="%g"><title>%s</title></line>`, mx, mx, chartH, esc(m.Caption))
		}
	}
	for _, l := range lines {
		if len(l.pts) == 0 || hi <= 0 {
			continue
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="`, l.class)
		for _, p := range l.pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", math.Max(x(p.Time), 0), chartH-2-(chartH-6)*p.Value/hi)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return b.String()
}
