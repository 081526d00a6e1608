package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/bench"
	"github.com/txkv/txkv/txkvhttp"
)

// The -serve demo's defaults: runs long enough to watch, transactions slow
// enough to see their locks, the most contended level only.
const (
	serveDuration = 20 * time.Second
	serveThink    = 50 * time.Millisecond
)

// serveDefaults applies -serve's defaults to the flags the command line
// left unset; -runs unset means rounds until interrupted (0).
func serveDefaults(fs *flag.FlagSet, f *flags) {
	if !isSet(fs, "duration") {
		f.duration = serveDuration
	}
	if !isSet(fs, "think") {
		f.think = serveThink
	}
	if !isSet(fs, "contention") {
		f.contention = "high"
	}
	if !isSet(fs, "runs") {
		f.runs = 0
	}
}

// onServe, when set (tests), is called with the page's URL once it serves.
var onServe func(url string)

// serve runs the plan's cells one after another on a fresh database each,
// every one shown live by one txkvhttp.Server, round after round until ctx
// ends or f.runs rounds (0: no limit) are done. It prints the URL first.
func serve(ctx context.Context, f flags, p plan, stdout, stderr io.Writer) int {
	ln, err := txkvhttp.Listen(f.serve)
	if err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
		return 1
	}
	idle, err := txkv.Open("", nil) // shown until the first run starts
	if err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
		return 1
	}
	defer idle.Close()
	view := txkvhttp.NewServer(idle)
	hs := &http.Server{Handler: view, ReadHeaderTimeout: 10 * time.Second}
	hs.RegisterOnShutdown(view.Close)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	url := "http://" + hostPort(ln.Addr()) + "/"
	fmt.Fprintf(stdout, "txkvbench: watch at %s (Ctrl-C to stop)\n", url)
	if onServe != nil {
		onServe(url)
	}
	code, closeLast := serveRounds(ctx, f, p, view, stdout, stderr)
	defer closeLast() // after the view stops showing it
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "txkvbench:", err)
	}
	return code
}

// hostPort names the listener's address as a browser should ask for it.
func hostPort(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return net.JoinHostPort("localhost", fmt.Sprint(ta.Port))
	}
	return a.String()
}

// serveRounds runs the rounds; it returns the exit code and what closes
// the database the view still shows.
func serveRounds(ctx context.Context, f flags, p plan, view *txkvhttp.Server, stdout, stderr io.Writer) (int, func()) {
	closePrev := func() {}
	for round := 1; f.runs == 0 || round <= f.runs; round++ {
		for _, s := range p.specs {
			for _, level := range p.levels {
				for _, st := range p.strategies {
					if ctx.Err() != nil {
						return 0, closePrev
					}
					var err error
					closePrev, err = serveCell(ctx, f, s, st, hotSet(s, level), round, view, closePrev, stdout)
					if err != nil {
						fmt.Fprintln(stderr, "txkvbench:", err)
						return 1, closePrev
					}
				}
			}
		}
	}
	return 0, closePrev
}

// serveCell runs one cell on a fresh database that the view shows. It
// closes the previous cell's database (closePrev) once the view has moved
// to this one, and returns what closes this one.
func serveCell(ctx context.Context, f flags, s bench.Spec, st txkv.Strategy, hot, round int,
	view *txkvhttp.Server, closePrev func(), stdout io.Writer) (func(), error) {
	path, cleanup, err := dbPath(f)
	if err != nil {
		return closePrev, err
	}
	opts := txkv.DefaultOptions()
	if f.sync == "none" {
		opts.Sync = txkv.SyncNone
	}
	db, err := txkv.Open(path, opts)
	if err != nil {
		cleanup()
		return closePrev, err
	}
	caption := fmt.Sprintf("%s · %s · hot set %d · %d workers · think %v", s.Name, st, hot, f.workers, f.think)
	view.SetDB(db, caption)
	closePrev()
	closeThis := func() {
		_ = db.Close()
		cleanup()
	}
	fmt.Fprintf(stdout, "round %d: %s — %s (%v)\n", round, caption, s.Title, f.duration)
	res, err := bench.Run(ctx, db, s, bench.Config{HotSet: hot, Think: f.think},
		bench.RunConfig{Strategy: st, Workers: f.workers, Duration: f.duration, Seed: f.seed + uint64(round)})
	if err == nil && ctx.Err() == nil {
		fmt.Fprintf(stdout, "  %.0f ops/s, aborts %.1f%%, deadlocks %d, lock waits %d, check %s\n",
			res.Throughput, 100*res.AbortRate, res.Deadlocks, res.LockWaits, checkWord(res))
	}
	if ctx.Err() != nil {
		return closeThis, nil
	}
	return closeThis, err
}

func checkWord(r bench.Result) string {
	if p := r.Problem(); p != "" {
		return p
	}
	return "ok"
}
