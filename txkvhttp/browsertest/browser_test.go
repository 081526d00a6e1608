package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/txkvhttp"
)

// waitLimit bounds every wait: reaching it means a hang, not slowness.
const waitLimit = 60 * time.Second

// browser finds Chromium: $TXKV_CHROME, or a usual name on PATH.
func browser() (string, bool) {
	if p := os.Getenv("TXKV_CHROME"); p != "" {
		return p, true
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// The page, opened once, shows a queue forming on a key, then a deadlock's
// cycle and its victim, as they happen: the frames arrive on the event
// stream and the page is never reloaded.
func TestPageShowsQueueThenDeadlock(t *testing.T) {
	exe, ok := browser()
	if !ok && os.Getenv("TXKV_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found, and TXKV_REQUIRE_BROWSER is set (as .ci/run sets it): apt-get install -y chromium")
	}
	if !ok {
		t.Skip("no Chromium found: install it (Debian: apt-get install -y chromium) or set TXKV_CHROME to a Chrome or Chromium binary")
	}
	db, err := txkv.Open("", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	srv := txkvhttp.NewServer(db)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close() // ends the page's event stream before ts.Close waits for it

	ctx := newBrowser(t, exe)
	do(t, ctx, "open the page",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible("#locks"),
		chromedp.Evaluate[chromedp.Void](`window.__opened = "once"; undefined`),
	)
	waitJS(t, ctx, "the event stream's first frame", `document.body.dataset.frames > 0`)

	// A queue: one holder, two waiters behind it.
	holder := begin(t, db, "booking-1")
	lock(t, holder, "seat/12A")
	w1, w2 := begin(t, db, "booking-2"), begin(t, db, "booking-3")
	q1, q2 := queue(t, db, w1, "seat/12A"), queue(t, db, w2, "seat/12A")
	waitJS(t, ctx, "the two waiters in the lock table",
		fmt.Sprintf(`document.querySelector('#locks .tx.waiter[data-tx="%d"]') !== null &&
			document.querySelector('#locks .tx.waiter[data-tx="%d"]') !== null &&
			document.querySelector('#locks').textContent.includes("booking-3")`, w1.ID(), w2.ID()))
	waitJS(t, ctx, "the waiters in the graph",
		fmt.Sprintf(`document.querySelector('#graph .node.waiting[data-tx="%d"]') !== null`, w1.ID()))

	// A deadlock: t1 holds a and wants b, t2 holds b and wants a.
	t1, t2 := begin(t, db, "a-then-b"), begin(t, db, "b-then-a")
	lock(t, t1, "acct/a")
	lock(t, t2, "acct/b")
	d1 := queue(t, db, t1, "acct/b")
	if _, err := t2.GetForUpdate([]byte("acct/a")); !errors.Is(err, txkv.ErrDeadlock) {
		t.Fatalf("t2 closing the cycle: %v, want a deadlock (t2 is the youngest)", err)
	}
	victim := t2.ID()
	waitJS(t, ctx, "the victim marked on the graph and the cycle in red",
		fmt.Sprintf(`document.querySelector('#graph .node.victim[data-tx="%d"]') !== null &&
			document.querySelectorAll('#graph .edge.cycle').length >= 2`, victim))
	waitJS(t, ctx, "the deadlock listed with its victim",
		fmt.Sprintf(`Array.from(document.querySelectorAll('#deadlocks .deadlock')).some(
			d => d.textContent.includes("victim txn %d") && d.textContent.includes('"acct/a"'))`, victim))

	opened := run(t, ctx, "check the page was not reloaded", chromedp.Evaluate[string](`String(window.__opened)`))
	if opened != "once" {
		t.Fatalf("the page was reloaded (window.__opened = %q)", opened)
	}
	screenshot(t, ctx)

	// Each waiter gets the lock in turn, as the one before lets it go.
	for i, step := range []struct {
		release *txkv.Tx
		granted <-chan error
	}{{holder, q1}, {w1, q2}, {t2, d1}} {
		_ = step.release.Rollback()
		if err := <-step.granted; err != nil {
			t.Errorf("waiter %d: %v", i, err)
		}
	}
}

// newBrowser starts headless Chromium for the test and stops it after.
func newBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.WindowSize(1400, 1100),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, which lives as long as the
	// context of that call: it must have no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return ctx
}

// run runs a browser action, failing the test after waitLimit.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// do runs browser actions in order, failing the test after waitLimit.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, what, chromedp.Steps(steps...))
}

// waitJS polls a JavaScript condition in the page until it holds.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	run(t, ctx, "wait for "+what, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(waitLimit)))
}

// screenshot saves the page as the test's artifact.
func screenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	png := run(t, ctx, "take a screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(t.ArtifactDir(), "txkvhttp-deadlock.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

func begin(t *testing.T, db *txkv.DB, label string) *txkv.Tx {
	t.Helper()
	tx, err := db.Begin(context.Background(), &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: label})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

func lock(t *testing.T, tx *txkv.Tx, key string) {
	t.Helper()
	if _, err := tx.GetForUpdate([]byte(key)); err != nil && !errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("txn %d GetForUpdate(%q): %v", tx.ID(), key, err)
	}
}

// queue makes tx wait for key in the background, returning once it waits;
// its error arrives on the channel when the wait ends.
func queue(t *testing.T, db *txkv.DB, tx *txkv.Tx, key string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := tx.GetForUpdate([]byte(key))
		if errors.Is(err, txkv.ErrNotFound) {
			err = nil
		}
		done <- err
	}()
	deadline := time.Now().Add(waitLimit)
	for !waiting(db, tx.ID()) {
		if time.Now().After(deadline) {
			t.Fatalf("txn %d never queued on %q", tx.ID(), key)
		}
		time.Sleep(time.Millisecond)
	}
	return done
}

func waiting(db *txkv.DB, id uint64) bool {
	for _, l := range db.Locks() {
		if l.TxID == id && !l.Granted {
			return true
		}
	}
	return false
}
