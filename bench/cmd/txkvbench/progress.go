package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports the matrix's advance on stderr.
type progress interface {
	start(desc string) // a cell begins
	done()             // it ended
	finish()
}

// newProgress picks the form for w: a bar redrawn in place on a terminal;
// elsewhere (a CI log, a file) plain lines now and then, because a bar's
// carriage-return frames pile up there as thousands of partial lines.
func newProgress(w io.Writer, cells int, hidden bool) progress {
	switch {
	case hidden:
		return noProgress{}
	case isTerminal(w):
		return newBar(w, cells)
	}
	return &lines{w: w, total: cells, every: 10 * time.Second, now: time.Now}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type noProgress struct{}

func (noProgress) start(string) {}
func (noProgress) done()        {}
func (noProgress) finish()      {}

type bar struct{ *progressbar.ProgressBar }

func newBar(w io.Writer, cells int) bar {
	return bar{progressbar.NewOptions(cells,
		progressbar.OptionSetWriter(w), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())}
}

func (b bar) start(desc string) { b.Describe(desc) }
func (b bar) done()             { _ = b.Add(1) }
func (b bar) finish()           { _ = b.Finish() }

// lines prints one line per period: cells done, elapsed, an estimate of the
// time left, and the cell running. now is the clock (a test's fake).
type lines struct {
	w            io.Writer
	total, count int
	every        time.Duration
	now          func() time.Time
	began, last  time.Time
	desc         string
}

func (l *lines) start(desc string) {
	if l.began.IsZero() {
		l.began, l.last = l.now(), l.now()
	}
	l.desc = desc
}

func (l *lines) done() {
	l.count++
	if t := l.now(); t.Sub(l.last) >= l.every && l.count < l.total {
		l.last = t
		el := t.Sub(l.began)
		left := time.Duration(float64(el) / float64(l.count) * float64(l.total-l.count))
		fmt.Fprintf(l.w, "txkvbench: %d/%d cells (%d%%), %s elapsed, about %s left; last: %s\n",
			l.count, l.total, 100*l.count/l.total, el.Round(time.Second), left.Round(time.Second), l.desc)
	}
}

func (l *lines) finish() {
	if l.count > 0 {
		fmt.Fprintf(l.w, "txkvbench: %d/%d cells in %s\n", l.count, l.total, l.now().Sub(l.began).Round(time.Second))
	}
}
