package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/txkv/txkv/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSeed returns the seed of a randomized test: MVCC_SEED if set (replay), else a fresh one.
// It is always logged so a failure can be replayed.
func testSeed(t testing.TB) uint64 { return testenv.Seed(t, "MVCC_SEED") }

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// baseEntry is one key of mapBase.
type baseEntry struct {
	value   []byte
	version uint64
}

// mapBase is a Base for tests: a map updated atomically the way a checkpoint updates the bbolt
// base bucket. Scan sorts keys on each call (tests are small).
type mapBase struct {
	mu    sync.Mutex // guards m, err, scans
	m     map[string]baseEntry
	err   error // returned by every call when set
	scans int
}

func newMapBase() *mapBase { return &mapBase{m: make(map[string]baseEntry)} }

func (b *mapBase) Get(key []byte) ([]byte, uint64, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, 0, false, b.err
	}
	e, ok := b.m[string(key)]
	if !ok {
		return nil, 0, false, nil
	}
	return bytes.Clone(e.value), e.version, true, nil
}

func (b *mapBase) Scan(start, end []byte, limit int, fn func(key, value []byte, version uint64) bool) error {
	b.mu.Lock()
	if b.err != nil {
		defer b.mu.Unlock()
		return b.err
	}
	b.scans++
	keys := make([]string, 0, len(b.m))
	for k := range b.m {
		if (start == nil || k >= string(start)) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	type row struct {
		k string
		e baseEntry
	}
	rows := make([]row, len(keys))
	for i, k := range keys {
		rows[i] = row{k, b.m[k]}
	}
	b.mu.Unlock()
	// Call fn with scratch copies that are overwritten afterwards, to catch retention bugs.
	for _, r := range rows {
		k, v := []byte(r.k), bytes.Clone(r.e.value)
		cont := fn(k, v, r.e.version)
		for i := range k {
			k[i] = '#'
		}
		for i := range v {
			v[i] = '#'
		}
		if !cont {
			break
		}
	}
	return nil
}

// apply writes a checkpoint atomically.
func (b *mapBase) apply(entries []Entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range entries {
		if e.Delete {
			delete(b.m, string(e.Key))
		} else {
			b.m[string(e.Key)] = baseEntry{value: bytes.Clone(e.Value), version: e.Version}
		}
	}
}

func (b *mapBase) setErr(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

// checkpoint runs the checkpoint protocol against b: upTo = GCWatermark, write the entries,
// then Flushed.
func checkpoint(s *Store, b *mapBase) uint64 {
	upTo := s.GCWatermark()
	var entries []Entry
	for e := range s.CheckpointEntries(upTo) {
		entries = append(entries, e)
	}
	b.apply(entries)
	s.Flushed(upTo)
	return upTo
}

// commit installs writes as one transaction through the oracle.
func commit(s *Store, writes ...Write) uint64 {
	ts := s.Next()
	s.Install(ts, writes)
	s.DoneDurable(ts)
	return ts
}

func put(k, v string) Write { return Write{Key: []byte(k), Value: []byte(v)} }
func del(k string) Write    { return Write{Key: []byte(k), Delete: true} }

// history is the model: every version ever committed per key.
type history struct {
	mu sync.Mutex // guards m
	m  map[string][]histVersion
}

type histVersion struct {
	ts    uint64
	value string
	tomb  bool
}

func newHistory() *history { return &history{m: make(map[string][]histVersion)} }

func (h *history) record(ts uint64, ws []Write) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range ws {
		h.m[string(w.Key)] = append(h.m[string(w.Key)], histVersion{ts, string(w.Value), w.Delete})
	}
}

// at returns the model's view at ts: newest version <= ts, tombstones removed.
func (h *history) at(ts uint64) map[string]histVersion {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]histVersion)
	for k, vs := range h.m {
		best := histVersion{}
		found := false
		for _, v := range vs {
			if v.ts <= ts && (!found || v.ts > best.ts) {
				best, found = v, true
			}
		}
		if found && !best.tomb {
			out[k] = best
		}
	}
	return out
}

// collect drains an iterator into "key=value@version" lines.
func collectIter(it *Iterator) ([]string, error) {
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, fmt.Sprintf("%s=%s@%d", it.Key(), it.Value(), it.Version()))
	}
	return out, it.Err()
}

var errBoom = errors.New("boom")

// eq fails the test unless got == want (testify is not usable here without go.mod changes).
func eq[T comparable](t testing.TB, want, got T, msgAndArgs ...any) {
	t.Helper()
	if want != got {
		t.Fatalf("want %v, got %v %s", want, got, fmtMsg(msgAndArgs))
	}
}

func noErr(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v %s", err, fmtMsg(msgAndArgs))
	}
}

func isErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("want error %v, got %v", target, err)
	}
}

func fmtMsg(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if f, ok := msgAndArgs[0].(string); ok {
		return "(" + fmt.Sprintf(f, msgAndArgs[1:]...) + ")"
	}
	return fmt.Sprint(msgAndArgs...)
}

// len returns the number of keys (tests) (each shard read under its lock; the sum is approximate
// unless writers are excluded).
func (x *index) len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		n += sh.mu.n
		sh.mu.RUnlock()
	}
	return n
}
