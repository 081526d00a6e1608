package txkv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/testenv"
)

// watchItem is one step of a Watch iteration, as a streamer goroutine forwards it.
type watchItem struct {
	ev  txkv.Event
	err error
}

// watchStream ranges over db.Watch in its own goroutine and forwards each step on the returned
// unbuffered channel, closed when the iteration ends. A test that stops receiving pauses
// the consumer inside yield: that is how tests make a slow consumer. The iteration is
// cancelled and waited for at the end of the test.
func watchStream(t testing.TB, db *txkv.DB, prefix string, from uint64) (<-chan watchItem, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(bg)
	seq := db.Watch(ctx, []byte(prefix), from) // from 0: "now" is when Watch is called
	out := make(chan watchItem)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for ev, err := range seq {
			select {
			case out <- watchItem{ev, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return out, cancel
}

// nextEvent receives the next event, failing on an error, the end, or a hang.
func nextEvent(t testing.TB, ch <-chan watchItem) txkv.Event {
	t.Helper()
	select {
	case it, ok := <-ch:
		if !ok {
			t.Fatal("watch ended")
		}
		if it.err != nil {
			t.Fatalf("watch error: %v", it.err)
		}
		return it.ev
	case <-time.After(waitLimit):
		t.Fatal("no event within the wait limit")
	}
	return txkv.Event{}
}

// nextWatchErr receives the next step and requires it to be an error.
func nextWatchErr(t testing.TB, ch <-chan watchItem) error {
	t.Helper()
	select {
	case it, ok := <-ch:
		if !ok {
			t.Fatal("watch ended without an error")
		}
		if it.err == nil {
			t.Fatalf("got event %s@%d, want an error", it.ev.Key, it.ev.Version)
		}
		return it.err
	case <-time.After(waitLimit):
		t.Fatal("no error within the wait limit")
	}
	return nil
}

// putV writes key and returns the version it got.
func putV(t testing.TB, db *txkv.DB, key, value string) uint64 {
	t.Helper()
	mustPut(t, db, key, value)
	return versionOf(t, db, key)
}

// watchBarrier returns once the watch hub has sequenced every commit made so far: it
// writes a key of its own and waits for a watcher to receive it (the hub releases commits
// in ts order). Tests that depend on the ring's contents use it: the ring is filled
// asynchronously, after the commits return.
func watchBarrier(t testing.TB, db *txkv.DB) {
	t.Helper()
	ch, cancel := watchStream(t, db, "~barrier", 0)
	defer cancel()
	mustPut(t, db, "~barrier", "")
	nextEvent(t, ch)
}

func wantEvent(t testing.TB, ev txkv.Event, key, value string, version uint64) {
	t.Helper()
	if string(ev.Key) != key || string(ev.Value) != value || ev.Deleted || (version != 0 && ev.Version != version) {
		t.Fatalf("event %q=%q@%d deleted=%v, want %q=%q@%d", ev.Key, ev.Value, ev.Version, ev.Deleted, key, value, version)
	}
}

// drainWatch collects every event of a finite Watch (from a version) until it has n.
func drainWatch(t testing.TB, db *txkv.DB, prefix string, from uint64, n int) []txkv.Event {
	t.Helper()
	ch, cancel := watchStream(t, db, prefix, from)
	defer cancel()
	evs := make([]txkv.Event, 0, n)
	for len(evs) < n {
		evs = append(evs, nextEvent(t, ch))
	}
	return evs
}

func eventKeys(evs []txkv.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Key)
	}
	return out
}

func watchSeed(t *testing.T) uint64 { return testenv.Seed(t, "TXKV_WATCH_SEED") }

// Concurrent committers, many of them conflicting (so aborted timestamps leave holes in the
// ts sequence and commits finish out of ts order): the watcher sees exactly the committed
// writes under its prefix, in strictly increasing version order. The contended counter
// proves there is no gap and no reordering: its events must carry 1, 2, 3, ... in order.
func TestWatchOrderConcurrent(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			seed := watchSeed(t)
			opts := &txkv.Options{Sync: txkv.SyncNone, WatchRingEvents: 64} // a small ring: some catch-up from the log
			var db *txkv.DB
			if file {
				db, _ = openFile(t, opts)
			} else {
				opts.WatchRingEvents = 1 << 16
				db = openMem(t, opts)
			}
			ch, _ := watchStream(t, db, "w/", 0)
			const workers, perWorker = 8, 60
			var wg sync.WaitGroup
			var mu sync.Mutex
			unique := map[string]bool{}
			var incs int
			for g := range workers {
				rng := rand.New(rand.NewPCG(seed, uint64(g)))
				wg.Go(func() {
					for i := range perWorker {
						var err error
						switch rng.IntN(3) {
						case 0:
							_, err = db.Increment(bg, []byte("w/ctr"), 1)
							mu.Lock()
							incs++
							mu.Unlock()
						case 1:
							k := fmt.Sprintf("w/k/%d/%d", g, i)
							err = db.Put(bg, []byte(k), []byte(k))
							mu.Lock()
							unique[k] = true
							mu.Unlock()
						default:
							err = db.Put(bg, []byte(fmt.Sprintf("x/%d/%d", g, i)), []byte("other prefix"))
						}
						if err != nil {
							t.Errorf("worker %d: %v", g, err)
							return
						}
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			want := incs + len(unique)
			var last uint64
			var ctr int64
			seen := map[string]bool{}
			for range want {
				ev := nextEvent(t, ch)
				if ev.Version <= last {
					t.Fatalf("version %d after %d", ev.Version, last)
				}
				last = ev.Version
				if string(ev.Key) == "w/ctr" {
					ctr++
					if got := int64(binary.BigEndian.Uint64(ev.Value)); got != ctr {
						t.Fatalf("counter event %d carries %d: a gap or a reordering", ctr, got)
					}
					continue
				}
				k := string(ev.Key)
				if !unique[k] || seen[k] || string(ev.Value) != k {
					t.Fatalf("unexpected event %q=%q", k, ev.Value)
				}
				seen[k] = true
				if v := versionOf(t, db, k); v != ev.Version {
					t.Fatalf("%s: event version %d, committed version %d", k, ev.Version, v)
				}
			}
			if len(seen) != len(unique) || ctr != int64(incs) {
				t.Fatalf("saw %d of %d keys, counter %d of %d", len(seen), len(unique), ctr, incs)
			}
			// And nothing else: one more write must be the next event.
			v := putV(t, db, "w/end", "end")
			wantEvent(t, nextEvent(t, ch), "w/end", "end", v)
		})
	}
}

func TestWatchPrefixFilter(t *testing.T) {
	db := openMem(t, nil)
	a, _ := watchStream(t, db, "a/", 0)
	all, _ := watchStream(t, db, "", 0)
	for _, k := range []string{"a/1", "b/1", "ab/1", "a/2", "a"} {
		mustPut(t, db, k, "v"+k)
	}
	wantEvent(t, nextEvent(t, a), "a/1", "va/1", 0)
	wantEvent(t, nextEvent(t, a), "a/2", "va/2", 0)
	for _, k := range []string{"a/1", "b/1", "ab/1", "a/2", "a"} {
		wantEvent(t, nextEvent(t, all), k, "v"+k, 0)
	}
	// A multi-key transaction: one event per key under the prefix, sharing a version, in key order.
	if err := db.Update(bg, nil, func(tx *txkv.Tx) error {
		for _, k := range []string{"a/z", "b/2", "a/y"} {
			if err := tx.Put([]byte(k), []byte("t")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	y, z := nextEvent(t, a), nextEvent(t, a)
	if string(y.Key) != "a/y" || string(z.Key) != "a/z" || y.Version != z.Version || y.Version != versionOf(t, db, "b/2") {
		t.Fatalf("transaction events %q@%d %q@%d", y.Key, y.Version, z.Key, z.Version)
	}
}

func TestWatchDeletes(t *testing.T) {
	db := openMem(t, nil)
	ch, _ := watchStream(t, db, "k", 0)
	v1 := putV(t, db, "k", "v")
	if err := db.Delete(bg, []byte("k")); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, nextEvent(t, ch), "k", "v", v1)
	ev := nextEvent(t, ch)
	if string(ev.Key) != "k" || !ev.Deleted || ev.Value != nil || ev.Version <= v1 {
		t.Fatalf("delete event %+v", ev)
	}
}

// Breaking out of the loop and resuming at the last version + 1 continues exactly.
func TestWatchResumeAfterBreak(t *testing.T) {
	db := openMem(t, nil)
	for i := range 10 {
		mustPut(t, db, fmt.Sprint("r/", i), strconv.Itoa(i))
	}
	var first []txkv.Event
	for ev, err := range db.Watch(bg, []byte("r/"), 1) {
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, ev)
		if len(first) == 4 {
			break
		}
	}
	if db.Watchers() != 0 {
		t.Fatalf("%d watchers after break", db.Watchers())
	}
	rest := drainWatch(t, db, "r/", first[3].Version+1, 6)
	got := eventKeys(append(first, rest...))
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprint("r/", i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("resumed watchStream %v, want %v", got, want)
	}
}

// The resume token survives Close and reopen: the log keeps the records behind the final
// checkpoint (WatchRetainRecords).
func TestWatchResumeAcrossReopen(t *testing.T) {
	db, path := openFile(t, nil)
	for i := range 5 {
		mustPut(t, db, fmt.Sprint("r/", i), strconv.Itoa(i))
	}
	first := drainWatch(t, db, "r/", 1, 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	mustPut(t, db, "r/5", "5")
	mustPut(t, db, "r/6", "6")
	rest := drainWatch(t, db, "r/", first[2].Version+1, 4)
	if got := eventKeys(rest); !slices.Equal(got, []string{"r/3", "r/4", "r/5", "r/6"}) {
		t.Fatalf("after reopen: %v", got)
	}
	if first[2].Version >= rest[0].Version {
		t.Fatalf("versions went back: %d then %d", first[2].Version, rest[0].Version)
	}
}

// A version the checkpoint deleted from the log gives ErrCompacted; the retained tail and
// everything after it is served, also after a reopen.
func TestWatchCompactedLog(t *testing.T) {
	opts := &txkv.Options{WatchRetainRecords: 3, WatchRingEvents: 1, Sync: txkv.SyncNone}
	db, path := openFile(t, opts)
	var vers []uint64
	for i := range 10 {
		vers = append(vers, putV(t, db, fmt.Sprint("c/", i), "v"))
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	watchBarrier(t, db) // the one-event ring now holds only the barrier
	// check: the versions up to c/<first-1> are compacted, c/<first>..c/9 are served.
	check := func(db *txkv.DB, first int) {
		t.Helper()
		for _, from := range []uint64{1, vers[first-1]} {
			ch, _ := watchStream(t, db, "c/", from)
			if err := nextWatchErr(t, ch); !errors.Is(err, txkv.ErrCompacted) {
				t.Fatalf("from %d: %v, want ErrCompacted", from, err)
			}
		}
		var want []string
		for i := first; i < 10; i++ {
			want = append(want, fmt.Sprint("c/", i))
		}
		if got := eventKeys(drainWatch(t, db, "c/", vers[first-1]+1, len(want))); !slices.Equal(got, want) {
			t.Fatalf("retained tail: %v, want %v", got, want)
		}
	}
	check(db, 7) // the log keeps c/7, c/8, c/9
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, opts)
	defer closeQuietly(t, db)
	check(db, 8) // Close checkpointed past the barrier: the log keeps c/8, c/9, ~barrier

	// Without retention the checkpoint takes everything it covers.
	opts.WatchRetainRecords = -1
	db2, path2 := openFile(t, opts)
	v := putV(t, db2, "c/x", "v")
	if err := db2.Close(); err != nil { // checkpoints; a reopened DB's ring starts empty
		t.Fatal(err)
	}
	db2 = openAt(t, path2, opts)
	defer closeQuietly(t, db2)
	ch, _ := watchStream(t, db2, "c/", v)
	if err := nextWatchErr(t, ch); !errors.Is(err, txkv.ErrCompacted) {
		t.Fatalf("no retention: %v, want ErrCompacted", err)
	}
}

// An in-memory DB keeps only its ring: a watcher paused while the ring overflows gets the
// events it had already been handed, then ErrCompacted; a new watcher from an evicted
// version too; one from a retained version works.
func TestWatchMemRingOverflow(t *testing.T) {
	db := openMem(t, &txkv.Options{WatchRingEvents: 8})
	ch, _ := watchStream(t, db, "o/", 0)
	v0 := putV(t, db, "o/0", "v")
	wantEvent(t, nextEvent(t, ch), "o/0", "v", v0) // the consumer now pauses in yield
	var vers []uint64
	for i := 1; i <= 100; i++ {
		vers = append(vers, putV(t, db, fmt.Sprint("o/", i), "v"))
	}
	watchBarrier(t, db)
	// Whatever comes before the error is in order, without gaps.
	for i := 0; ; i++ {
		it := recv(t, ch, "event or error")
		if it.err != nil {
			if !errors.Is(it.err, txkv.ErrCompacted) {
				t.Fatalf("paused watcher: %v, want ErrCompacted", it.err)
			}
			break
		}
		if it.ev.Version != vers[i] {
			t.Fatalf("event %d has version %d, want %d", i, it.ev.Version, vers[i])
		}
	}
	ch2, _ := watchStream(t, db, "o/", vers[0])
	if err := nextWatchErr(t, ch2); !errors.Is(err, txkv.ErrCompacted) {
		t.Fatalf("from an evicted version: %v", err)
	}
	if got := eventKeys(drainWatch(t, db, "o/", vers[95], 5)); !slices.Equal(got, []string{"o/96", "o/97", "o/98", "o/99", "o/100"}) {
		t.Fatalf("from a retained version: %v", got)
	}
}

// A watcher on a quiet prefix is not compacted because other prefixes churn the ring.
func TestWatchQuietPrefixSurvivesChurn(t *testing.T) {
	db := openMem(t, &txkv.Options{WatchRingEvents: 4})
	ch, _ := watchStream(t, db, "quiet/", 0)
	waitFor(t, "watcher registered", func() bool { return db.Watchers() == 1 })
	for i := range 50 {
		mustPut(t, db, fmt.Sprint("busy/", i), "v")
	}
	watchBarrier(t, db) // the busy keys have gone through the ring
	v := putV(t, db, "quiet/1", "v")
	wantEvent(t, nextEvent(t, ch), "quiet/1", "v", v)
}

// A consumer paused in yield never blocks commits; afterwards it catches up, in order —
// from the log for a file DB whose ring is small, from the ring in memory.
func TestWatchSlowConsumer(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			var db *txkv.DB
			if file {
				db, _ = openFile(t, &txkv.Options{Sync: txkv.SyncNone, WatchRingEvents: 16})
			} else {
				db = openMem(t, nil)
			}
			ch, _ := watchStream(t, db, "s/", 0)
			v0 := putV(t, db, "s/0", "v")
			wantEvent(t, nextEvent(t, ch), "s/0", "v", v0) // the consumer is now paused
			const n = 500
			vers := make([]uint64, 0, n)
			for i := 1; i <= n; i++ {
				vers = append(vers, putV(t, db, fmt.Sprint("s/", i), "v"))
				mustPut(t, db, fmt.Sprint("other/", i), "v")
			}
			for i := range n {
				wantEvent(t, nextEvent(t, ch), fmt.Sprint("s/", i+1), "v", vers[i])
			}
		})
	}
}

func TestWatchCancelAndClose(t *testing.T) {
	db := openMem(t, nil)
	ch, cancel := watchStream(t, db, "", 0)
	waitFor(t, "watcher registered", func() bool { return db.Watchers() == 1 })
	cancel()
	// The streamer may stop forwarding on ctx.Done itself; either way the iteration ends.
	for it := range ch {
		if it.err != nil && !errors.Is(it.err, context.Canceled) {
			t.Fatalf("after cancel: %v", it.err)
		}
	}
	waitFor(t, "watcher released", func() bool { return db.Watchers() == 0 })

	// ctx.Err() is yielded to the consumer.
	ctx, cancel2 := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		for _, err := range db.Watch(ctx, nil, 0) {
			errc <- err
			return
		}
	}()
	waitFor(t, "watcher registered", func() bool { return db.Watchers() == 1 })
	cancel2()
	if err := recv(t, errc, "cancel error"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled watch yielded %v", err)
	}

	// Close ends a sleeping watcher with ErrClosed; Watch on a closed DB fails at once.
	ch3, _ := watchStream(t, db, "", 0)
	waitFor(t, "watcher registered", func() bool { return db.Watchers() == 1 })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nextWatchErr(t, ch3); !errors.Is(err, txkv.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	for _, err := range db.Watch(bg, nil, 1) {
		if !errors.Is(err, txkv.ErrClosed) {
			t.Fatalf("Watch on a closed DB: %v", err)
		}
	}
}

// Events own their bytes: changing them changes nothing for anyone else.
func TestWatchEventsAreCopies(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "e", "value")
	for ev, err := range db.Watch(bg, nil, 1) {
		if err != nil {
			t.Fatal(err)
		}
		ev.Key[0], ev.Value[0] = 'X', 'X'
		break
	}
	for ev := range db.Watch(bg, nil, 1) {
		wantEvent(t, ev, "e", "value", 0)
		break
	}
	wantValue(t, db, "e", "value")
}

func TestWatchOptionsValidate(t *testing.T) {
	for _, o := range []txkv.Options{{WatchRingEvents: -1}, {WatchRingBytes: -1}, {WatchRetainBytes: -1}} {
		if _, err := txkv.Open("", &o); !errors.Is(err, txkv.ErrInvalidOption) {
			t.Errorf("Open(%+v): %v, want ErrInvalidOption", o, err)
		}
	}
}

// BenchmarkWatchCommit measures commit throughput with 0 and 1,000 idle watchers on other
// prefixes: the commit path's cost must not grow with the number of watchers.
//
//	go test -run '^$' -bench BenchmarkWatchCommit -benchtime 200000x -count 5 .
func BenchmarkWatchCommit(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			db := openMem(b, &txkv.Options{AdaptiveThreshold: txkv.AdaptiveNever})
			ctx, cancel := context.WithCancel(bg)
			var wg sync.WaitGroup
			for i := range n {
				seq := db.Watch(ctx, []byte(fmt.Sprintf("idle/%04d/", i)), 0)
				wg.Go(func() {
					for _, err := range seq {
						if err != nil {
							return
						}
					}
				})
			}
			waitFor(b, "watchers registered", func() bool { return db.Watchers() == n })
			var id sync.Mutex
			worker := 0
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id.Lock()
				worker++
				key := fmt.Appendf(nil, "bench/%03d/", worker)
				id.Unlock()
				base := len(key)
				for i := 0; pb.Next(); i++ {
					k := strconv.AppendInt(key[:base], int64(i&1023), 10)
					if err := db.Put(bg, k, k); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cancel()
			wg.Wait()
		})
	}
}
