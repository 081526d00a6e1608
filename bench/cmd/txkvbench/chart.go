package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/txkv/txkv/bench"
)

// chart draws one workload's PNG: throughput (left) and abort rate (right)
// against the hot-set size on a log axis, one line per strategy.
func chart(path string, v verdict, results []bench.Result) error {
	s, err := bench.Lookup(v.Workload)
	if err != nil {
		return err
	}
	tput := newPanel(fmt.Sprintf("%s: throughput", s.Title), "operations / s")
	aborts := newPanel(fmt.Sprintf("%s: abort rate", s.Title), "aborted attempts (%)")
	for i, st := range bench.Strategies() {
		var tp, ab plotter.XYs
		for _, r := range results {
			if r.Workload == v.Workload && r.Strategy == st.String() {
				tp = append(tp, plotter.XY{X: float64(r.HotSet), Y: r.Throughput})
				ab = append(ab, plotter.XY{X: float64(r.HotSet), Y: 100 * r.AbortRate})
			}
		}
		if len(tp) == 0 {
			continue
		}
		slices.SortFunc(tp, func(a, b plotter.XY) int { return int(a.X - b.X) })
		slices.SortFunc(ab, func(a, b plotter.XY) int { return int(a.X - b.X) })
		name := st.String()
		if name == v.Advised {
			name += " (guide)"
		}
		if err := addLine(tput, i, name, tp); err != nil {
			return err
		}
		if err := addLine(aborts, i, name, ab); err != nil {
			return err
		}
	}
	for _, p := range []*plot.Plot{tput, aborts} {
		p.Y.Max *= 1.35 // headroom for the legend
	}
	return savePanels(path, tput, aborts)
}

// addLine draws one strategy's line with the i-th color, dash and marker,
// so the strategies stay the same across every chart.
func addLine(p *plot.Plot, i int, name string, xys plotter.XYs) error {
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(1.5)
	pts.Color = plotutil.Color(i)
	pts.Shape = plotutil.Shape(i)
	p.Add(l, pts)
	p.Legend.Add(name, l, pts)
	return nil
}

func newPanel(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "hot-set size (items; fewer = more contention)"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p
}

func savePanels(path string, panels ...*plot.Plot) error {
	img := vgimg.New(vg.Points(float64(430*len(panels))), vg.Points(330))
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{panels}, t, dc)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
