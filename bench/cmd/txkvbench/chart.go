package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/txkv/txkv/bench"
)

// chart draws one workload's PNG: throughput with its 95% confidence
// interval (left) and abort rate (right) against the hot-set size on a log
// axis, one line per strategy, and under both the run's details — a chart
// shown without the table must still say how it was measured.
func chart(path string, v verdict, cells []cell, details string) error {
	s, err := bench.Lookup(v.Workload)
	if err != nil {
		return err
	}
	ticks := sweepTicks{}
	for _, c := range cells {
		ticks = append(ticks, float64(c.HotSet))
	}
	tput := newPanel(fmt.Sprintf("%s: throughput", s.Title), "operations / s", ticks)
	aborts := newPanel(fmt.Sprintf("%s: abort rate", s.Title), "attempts aborted by contention (%)", ticks)
	for i, st := range bench.Strategies() {
		if err := addStrategy(tput, aborts, i, st.String(), v, cells); err != nil {
			return err
		}
	}
	for _, p := range []*plot.Plot{tput, aborts} {
		p.Y.Max *= 1.35 // headroom for the legend
	}
	return savePanels(path, details, tput, aborts)
}

// addStrategy draws one strategy's lines, if it ran.
func addStrategy(tput, aborts *plot.Plot, i int, st string, v verdict, cells []cell) error {
	var tp errorXYs
	var ab plotter.XYs
	for _, c := range cells {
		if c.Strategy == st {
			tp = append(tp, errorXY{plotter.XY{X: float64(c.HotSet), Y: c.Throughput}, c.CI})
			ab = append(ab, plotter.XY{X: float64(c.HotSet), Y: 100 * c.AbortRate})
		}
	}
	if len(tp) == 0 {
		return nil
	}
	slices.SortFunc(tp, func(a, b errorXY) int { return int(a.X - b.X) })
	slices.SortFunc(ab, func(a, b plotter.XY) int { return int(a.X - b.X) })
	name := st
	if st == v.Advised {
		name += " (guide)"
	}
	if err := addLine(tput, i, name, tp); err != nil {
		return err
	}
	bars, err := plotter.NewYErrorBars(tp)
	if err != nil {
		return err
	}
	bars.Color = plotutil.Color(i)
	tput.Add(bars)
	return addLine(aborts, i, name, ab)
}

// errorXY is a point and the half-width of its confidence interval.
type errorXY struct {
	plotter.XY
	half float64
}

// errorXYs is what plotter.NewYErrorBars takes: points with Y errors.
type errorXYs []errorXY

func (e errorXYs) Len() int                    { return len(e) }
func (e errorXYs) XY(i int) (float64, float64) { return e[i].X, e[i].Y }
func (e errorXYs) YError(i int) (float64, float64) {
	return min(e[i].half, e[i].Y), e[i].half // no bar below zero throughput
}

// addLine draws one strategy's line with the i-th color, dash and marker,
// so the strategies stay the same across every chart.
func addLine(p *plot.Plot, i int, name string, xys plotter.XYer) error {
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

// sweepTicks labels exactly the hot-set sizes that were swept: a log axis's
// own ticks label powers of ten only, leaving 2, 5, 20 or 500 unnamed.
type sweepTicks []float64

func (t sweepTicks) Ticks(lo, hi float64) []plot.Tick {
	vals := slices.Clone(t)
	slices.Sort(vals)
	var out []plot.Tick
	for _, x := range slices.Compact(vals) {
		if x >= lo && x <= hi {
			out = append(out, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
		}
	}
	return out
}

func newPanel(title, ylabel string, ticks sweepTicks) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "hot-set size (items; fewer = more contention)"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p
}

// footer is the height of the line of run details under the panels.
const footer = 16

func savePanels(path, details string, panels ...*plot.Plot) error {
	img := vgimg.New(vg.Points(float64(430*len(panels))), vg.Points(330+footer))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{panels}, t, draw.Crop(dc, 0, 0, vg.Points(footer), 0))
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	sty := panels[0].X.Tick.Label // the tick labels' small font, but left-aligned
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
	dc.FillText(sty, vg.Point{X: dc.Min.X + vg.Millimeter*2, Y: dc.Min.Y + vg.Points(4)}, details)
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
