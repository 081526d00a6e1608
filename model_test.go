package txkv_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/txkv/txkv"
)

// TestModel is a model-based test (pgregory.net/rapid state machine): random
// sequences of Begin/Get/GetVersioned/Put/PutIfVersion/Delete/Scan/Commit/
// Rollback/Checkpoint/Reopen run against a file-backed DB and a map model,
// one transaction at a time, and every step's result is compared with the
// model. After every step a read-only snapshot of the whole DB must equal
// the model's committed state.
//
// Replay: on failure rapid prints the seed and a fail file, e.g.
//
//	go test -run TestModel -rapid.seed=12345
//	go test -run TestModel -rapid.failfile=testdata/rapid/TestModel/TestModel-....fail
//
// (the fail file replays the minimized sequence; -rapid.v shows every step).
// -rapid.checks=N runs more sequences (default 100), -rapid.steps=N makes
// them longer (default here 100). A replay must use the same -rapid.steps.
func TestModel(t *testing.T) {
	defaultFlag("rapid.steps", "RAPID_STEPS", "100") // rapid's default is 30
	dir := t.TempDir()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		m := &modelMachine{
			path:     filepath.Join(dir, fmt.Sprintf("model-%d.db", n)),
			opts:     &txkv.Options{Sync: txkv.SyncNone},
			state:    map[string]string{},
			versions: map[string]uint64{},
			dirty:    map[string]bool{},
		}
		// Checkpoint pressure: the default (never, in a short run), or a
		// background checkpoint after nearly every commit.
		m.opts.CheckpointBytes = rapid.SampledFrom([]int64{0, 1, 300}).Draw(rt, "CheckpointBytes")
		m.open(rt)
		defer m.close()
		rt.Repeat(rapid.StateMachineActions(m))
	})
}

// modelMachine's exported methods are rapid's actions; Check is the
// invariant run after each.
type modelMachine struct {
	path string
	opts *txkv.Options
	db   *txkv.DB

	state    map[string]string // committed state
	versions map[string]uint64 // last observed committed version per key
	dirty    map[string]bool   // keys committed since their version was observed

	tx       *txkv.Tx
	txMode   mode
	readOnly bool
	overlay  map[string]*string // the open tx's writes; nil = deleted
}

var (
	modelKeys   = []string{"a", "ab", "b", "b\x00", "c", "cat", "d", "zz"}
	modelBounds = [][]byte{nil, []byte("a"), []byte("aa"), []byte("b"), []byte("b\x00"), []byte("c"), []byte("ca"), []byte("d"), []byte("z")}
	modelValues = []string{"", "1", "2", "three", strings.Repeat("v", 300)}
)

func drawKey(rt *rapid.T) string   { return rapid.SampledFrom(modelKeys).Draw(rt, "key") }
func drawValue(rt *rapid.T) string { return rapid.SampledFrom(modelValues).Draw(rt, "value") }

func (m *modelMachine) open(rt *rapid.T) {
	db, err := txkv.Open(m.path, m.opts)
	if err != nil {
		rt.Fatalf("Open: %v", err)
	}
	m.db = db
}

func (m *modelMachine) close() {
	if m.db != nil {
		_ = m.db.Close()
		m.db = nil
	}
}

// view is what the open transaction sees (or the committed state).
func (m *modelMachine) view(key string) (string, bool) {
	if m.tx != nil {
		if v, ok := m.overlay[key]; ok {
			if v == nil {
				return "", false
			}
			return *v, true
		}
	}
	v, ok := m.state[key]
	return v, ok
}

func (m *modelMachine) Begin(rt *rapid.T) {
	if m.tx != nil {
		rt.Skip("a transaction is open")
	}
	m.txMode = rapid.SampledFrom(allModes).Draw(rt, "mode")
	m.readOnly = rapid.IntRange(0, 4).Draw(rt, "readOnlyDie") == 0
	opts := m.txMode.TxOptions()
	opts.ReadOnly = m.readOnly
	tx, err := m.db.Begin(bg, opts)
	if err != nil {
		rt.Fatalf("Begin(%s): %v", m.txMode.Name, err)
	}
	m.tx, m.overlay = tx, map[string]*string{}
}

func (m *modelMachine) Get(rt *rapid.T) {
	key := drawKey(rt)
	var got []byte
	var err error
	if m.tx != nil {
		got, err = m.tx.Get([]byte(key))
	} else {
		got, err = m.db.Get(bg, []byte(key))
	}
	want, ok := m.view(key)
	switch {
	case !ok && !errors.Is(err, txkv.ErrNotFound):
		rt.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	case ok && (err != nil || string(got) != want):
		rt.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func (m *modelMachine) Put(rt *rapid.T) {
	key, val := drawKey(rt), drawValue(rt)
	m.write(rt, key, &val, func() error {
		if m.tx != nil {
			return m.tx.Put([]byte(key), []byte(val))
		}
		return m.db.Put(bg, []byte(key), []byte(val))
	})
}

func (m *modelMachine) Delete(rt *rapid.T) {
	key := drawKey(rt)
	m.write(rt, key, nil, func() error {
		if m.tx != nil {
			return m.tx.Delete([]byte(key))
		}
		return m.db.Delete(bg, []byte(key))
	})
}

// write applies one Put (val != nil) or Delete, in the open transaction or
// as its own.
func (m *modelMachine) write(rt *rapid.T, key string, val *string, op func() error) {
	err := op()
	switch {
	case m.tx != nil && m.readOnly:
		if !errors.Is(err, txkv.ErrReadOnly) {
			rt.Fatalf("write in a read-only tx = %v, want ErrReadOnly", err)
		}
	case err != nil:
		rt.Fatalf("write %q: %v", key, err)
	case m.tx != nil:
		m.overlay[key] = val
	default:
		m.apply(map[string]*string{key: val})
	}
}

func (m *modelMachine) apply(writes map[string]*string) {
	for k, v := range writes {
		if v == nil {
			delete(m.state, k)
		} else {
			m.state[k] = *v
		}
		m.dirty[k] = true
	}
}

// PutIfVersion with the version the transaction sees succeeds; with any
// other version it fails with ErrVersionMismatch and changes nothing.
func (m *modelMachine) PutIfVersion(rt *rapid.T) {
	if m.tx == nil || m.readOnly {
		rt.Skip("needs an open read-write transaction")
	}
	key, val := drawKey(rt), drawValue(rt)
	_, ver, err := m.tx.GetVersioned([]byte(key))
	if err != nil && !errors.Is(err, txkv.ErrNotFound) {
		rt.Fatalf("GetVersioned(%q): %v", key, err)
	}
	if err := m.tx.PutIfVersion([]byte(key), []byte("never"), ver+1); !errors.Is(err, txkv.ErrVersionMismatch) {
		rt.Fatalf("PutIfVersion(%q, version %d+1) = %v, want ErrVersionMismatch", key, ver, err)
	}
	if err := m.tx.PutIfVersion([]byte(key), []byte(val), ver); err != nil {
		rt.Fatalf("PutIfVersion(%q, its version %d) = %v", key, ver, err)
	}
	m.overlay[key] = &val
}

// GetVersioned outside a transaction: absent keys have version 0; a key
// keeps its version until it is written again, then gets a larger one —
// across checkpoints and reopens too.
func (m *modelMachine) GetVersioned(rt *rapid.T) {
	if m.tx != nil {
		rt.Skip("checks committed versions")
	}
	key := drawKey(rt)
	var val []byte
	var ver uint64
	err := m.db.View(bg, func(tx *txkv.Tx) error {
		var err error
		val, ver, err = tx.GetVersioned([]byte(key))
		return err
	})
	want, ok := m.state[key]
	switch {
	case !ok:
		if !errors.Is(err, txkv.ErrNotFound) || ver != 0 {
			rt.Fatalf("GetVersioned(absent %q) = %q, %d, %v; want version 0, ErrNotFound", key, val, ver, err)
		}
		delete(m.versions, key)
	case err != nil || string(val) != want:
		rt.Fatalf("GetVersioned(%q) = %q, %v; want %q", key, val, err, want)
	default:
		old, known := m.versions[key]
		switch {
		case ver == 0:
			rt.Fatalf("GetVersioned(%q): version 0 for a present key", key)
		case known && m.dirty[key] && ver <= old:
			rt.Fatalf("GetVersioned(%q): version %d after a write, not above %d", key, ver, old)
		case known && !m.dirty[key] && ver != old:
			rt.Fatalf("GetVersioned(%q): version changed %d → %d without a write", key, old, ver)
		}
		m.versions[key] = ver
	}
	delete(m.dirty, key)
}

func (m *modelMachine) Scan(rt *rapid.T) {
	start := rapid.SampledFrom(modelBounds).Draw(rt, "start")
	end := rapid.SampledFrom(modelBounds).Draw(rt, "end")
	var got []string
	fn := func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil }
	var err error
	if m.tx != nil {
		err = m.tx.Scan(start, end, fn)
	} else {
		err = m.db.View(bg, func(tx *txkv.Tx) error { return tx.Scan(start, end, fn) })
	}
	if err != nil {
		rt.Fatalf("Scan(%q, %q): %v", start, end, err)
	}
	if want := m.expectScan(start, end); !slices.Equal(got, want) {
		rt.Fatalf("Scan(%q, %q) = %q, want %q", start, end, got, want)
	}
}

func (m *modelMachine) expectScan(start, end []byte) []string {
	keys := map[string]bool{}
	for k := range m.state {
		keys[k] = true
	}
	for k := range m.overlay {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if (start != nil && k < string(start)) || (end != nil && k >= string(end)) {
			continue
		}
		if v, ok := m.view(k); ok {
			out = append(out, k+"="+v)
		}
	}
	sortByKey(out)
	return out
}

// Commit must succeed: with one transaction at a time nothing conflicts.
func (m *modelMachine) Commit(rt *rapid.T) {
	if m.tx == nil {
		rt.Skip("no transaction")
	}
	if err := m.tx.Commit(); err != nil {
		rt.Fatalf("Commit (%s): %v", m.txMode.Name, err)
	}
	if err := m.tx.Commit(); !errors.Is(err, txkv.ErrTxDone) {
		rt.Fatalf("second Commit = %v, want ErrTxDone", err)
	}
	m.apply(m.overlay)
	m.tx, m.overlay = nil, nil
}

func (m *modelMachine) Rollback(rt *rapid.T) {
	if m.tx == nil {
		rt.Skip("no transaction")
	}
	if err := m.tx.Rollback(); err != nil {
		rt.Fatalf("Rollback: %v", err)
	}
	m.tx, m.overlay = nil, nil
}

func (m *modelMachine) Checkpoint(rt *rapid.T) {
	if err := m.db.Checkpoint(); err != nil {
		rt.Fatalf("Checkpoint: %v", err)
	}
}

// Reopen closes (cleanly, or leaving the log as a crash would) and opens the
// file again. An open transaction is rolled back by Close: its next call
// returns ErrClosed.
func (m *modelMachine) Reopen(rt *rapid.T) {
	crash := rapid.Bool().Draw(rt, "crashLike")
	var err error
	if crash {
		err = txkv.CloseWithoutCheckpoint(m.db)
	} else {
		err = m.db.Close()
	}
	if err != nil {
		rt.Fatalf("Close (crash-like %v): %v", crash, err)
	}
	m.db = nil
	if m.tx != nil {
		if _, err := m.tx.Get([]byte("a")); !errors.Is(err, txkv.ErrClosed) {
			rt.Fatalf("tx after Close: Get = %v, want ErrClosed", err)
		}
		m.tx, m.overlay = nil, nil
	}
	m.open(rt)
}

// Check: a read-only snapshot of everything equals the committed model.
func (m *modelMachine) Check(rt *rapid.T) {
	var got []string
	err := m.db.View(bg, func(tx *txkv.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			return nil
		})
	})
	if err != nil {
		rt.Fatalf("View: %v", err)
	}
	var want []string
	for k, v := range m.state {
		want = append(want, k+"="+v)
	}
	sortByKey(want)
	if !slices.Equal(got, want) {
		rt.Fatalf("committed state %q, model %q", got, want)
	}
}

// sortByKey sorts "key=value" strings by key (keys hold no '=').
func sortByKey(kvs []string) {
	slices.SortFunc(kvs, func(a, b string) int {
		ka, _, _ := strings.Cut(a, "=")
		kb, _, _ := strings.Cut(b, "=")
		return strings.Compare(ka, kb)
	})
}

// defaultFlag sets a flag's value unless the command line or env set it.
func defaultFlag(name, env, value string) {
	if _, ok := os.LookupEnv(env); ok {
		return
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if !set {
		_ = flag.Set(name, value)
	}
}
