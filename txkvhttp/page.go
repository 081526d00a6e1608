package txkvhttp

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"time"
)

//go:embed assets
var assets embed.FS

// page holds the page and its panels: html/template escapes every value
// (keys, labels, reasons) for its context.
var page = template.Must(template.New("").Funcs(template.FuncMap{
	"pct":        func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"modeLetter": modeLetter,
	"age":        ageText,
	"ago":        func(now, t time.Time) string { return ageText(now.Sub(t).Milliseconds(), false) + " ago" },
	"window": func() string {
		return fmt.Sprintf("%.0f minutes", (time.Duration(HistoryPoints) * SampleInterval).Minutes())
	},
}).ParseFS(assets, "assets/page.html"))

// panels are the ids of the page's sections, each the name of the template
// that renders it: a frame carries them all.
var panels = []string{"caption", "summary", "locks", "graph", "deadlocks", "strategies", "hotkeys", "advice"}

// ageText renders milliseconds for humans: "850 ms", "12.3 s", "4m10s";
// atLeast adds "≥" (the age of a lock granted without a wait).
func ageText(ms int64, atLeast bool) string {
	d := time.Duration(ms) * time.Millisecond
	var s string
	switch {
	case d < time.Second:
		s = fmt.Sprintf("%d ms", ms)
	case d < time.Minute:
		s = fmt.Sprintf("%.1f s", d.Seconds())
	default:
		s = d.Round(time.Second).String()
	}
	if atLeast {
		return "≥" + s
	}
	return s
}

// view is a Snapshot with its drawings, as the templates use it.
type view struct {
	*Snapshot
	GraphSVG    template.HTML // built by graphSVG, which escapes every text
	ConflictSVG template.HTML
	Charts      []chartView
}

type chartView struct {
	Strategy        string
	Commits, Aborts uint64
	Last            *Rates
	Rates           template.HTML // built by chartSVG, which escapes every text
	ConflictRate    template.HTML
}

func newView(s *Snapshot) *view {
	v := &view{Snapshot: s, GraphSVG: template.HTML(graphSVG(&s.Graph))}
	marks := s.Strategies.Marks
	v.ConflictSVG = template.HTML(chartSVG(s.Time, 1, marks, series{"rate", s.Strategies.ConflictRate}))
	for _, ser := range s.Strategies.Series {
		cv := chartView{Strategy: ser.Strategy, Commits: ser.Commits, Aborts: ser.Aborts}
		var commits, aborts, rate []Point
		for _, p := range ser.Points {
			commits = append(commits, Point{p.Time, p.Commits})
			aborts = append(aborts, Point{p.Time, p.Aborts})
			rate = append(rate, Point{p.Time, p.ConflictRate})
		}
		if n := len(ser.Points); n > 0 {
			cv.Last = &ser.Points[n-1]
		}
		cv.Rates = template.HTML(chartSVG(s.Time, 0, marks, series{"commits", commits}, series{"aborts", aborts}))
		cv.ConflictRate = template.HTML(chartSVG(s.Time, 1, marks, series{"rate", rate}))
		v.Charts = append(v.Charts, cv)
	}
	return v
}

// frame is what the event stream sends: every panel, rendered.
type frame struct {
	Time   string            `json:"time"`
	Panels map[string]string `json:"panels"`
	data   []byte            // the frame as JSON
}

// frame returns the current frame, rendering it once per snapshot.
func (c *collector) frame() (*frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snapshotLocked()
	if c.mu.frameCache != nil {
		return c.mu.frameCache, nil
	}
	f, err := renderFrame(s)
	if err != nil {
		return nil, err
	}
	c.mu.frameCache = f
	return f, nil
}

func renderFrame(s *Snapshot) (*frame, error) {
	v := newView(s)
	f := &frame{Time: s.Time.Format("15:04:05.0"), Panels: make(map[string]string, len(panels))}
	var b bytes.Buffer
	for _, p := range panels {
		b.Reset()
		if err := page.ExecuteTemplate(&b, p, v); err != nil {
			return nil, fmt.Errorf("txkv: txkvhttp: render %s: %w", p, err)
		}
		f.Panels[p] = b.String()
	}
	data, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("txkv: txkvhttp: encode frame: %w", err)
	}
	f.data = data
	return f, nil
}
