package conformance

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Target is the engine under test.
type Target struct {
	// Open returns a new, empty DB for one test and closes it at the end of
	// the test (t.Cleanup). The DB must wait for locks without a timeout
	// (LockTimeout: txkv.Forever): a hang is caught by the suite's own deadlines.
	Open func(t testing.TB) *txkv.DB
	// Strategies the engine supports; nil: all four.
	Strategies []txkv.Strategy
	// Scale divides the sizes of the concurrent cases (rounds,
	// transactions) for a slow engine; 0 or 1: full size.
	Scale int
}

func (tg Target) supports(s txkv.Strategy) bool {
	return tg.Strategies == nil || slices.Contains(tg.Strategies, s)
}

// modes returns the modes of AllModes the target supports.
func (tg Target) modes() []mode {
	var out []mode
	for _, m := range AllModes {
		if tg.supports(m.Strategy) {
			out = append(out, m)
		}
	}
	return out
}

func (tg Target) serializableModes() []mode {
	var out []mode
	for _, m := range tg.modes() {
		if m.Serializable() {
			out = append(out, m)
		}
	}
	return out
}

// strategies returns the target's strategies in the suite's order.
func (tg Target) strategies() []txkv.Strategy {
	var out []txkv.Strategy
	for _, s := range []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive} {
		if tg.supports(s) {
			out = append(out, s)
		}
	}
	return out
}

// scaled divides n by the target's Scale (at least 1).
func (tg Target) scaled(n int) int {
	if tg.Scale > 1 {
		n /= tg.Scale
	}
	return max(n, 1)
}

func (tg Target) forModes(t *testing.T, modes []mode, f func(*testing.T, mode)) {
	for _, m := range modes {
		t.Run(m.Name, func(t *testing.T) { f(t, m) })
	}
}

var bg = context.Background()

// waitLimit bounds every wait of a test on another goroutine or on the DB:
// far above anything a healthy run needs, so reaching it means a hang.
const waitLimit = 20 * time.Second

// Mode is one strategy at one isolation level: the axes of architecture §3.
type Mode struct {
	Name     string
	Strategy txkv.Strategy
	Iso      txkv.Isolation
}

// mode is the suite's own short name for Mode.
type mode = Mode

// TxOptions are the transaction options of the mode.
func (m Mode) TxOptions() *txkv.TxOptions {
	return &txkv.TxOptions{Strategy: m.Strategy, Isolation: m.Iso}
}

// Serializable reports whether the mode runs at Serializable isolation.
func (m Mode) Serializable() bool { return m.Iso == txkv.Serializable }

// The eight modes, and AllModes listing them.
var (
	PessimisticSerializable = mode{"pessimistic-serializable", txkv.Pessimistic, txkv.Serializable}
	PessimisticSnapshot     = mode{"pessimistic-snapshot", txkv.Pessimistic, txkv.Snapshot}
	OptimisticSerializable  = mode{"optimistic-serializable", txkv.Optimistic, txkv.Serializable}
	OptimisticSnapshot      = mode{"optimistic-snapshot", txkv.Optimistic, txkv.Snapshot}
	HybridSerializable      = mode{"hybrid-serializable", txkv.Hybrid, txkv.Serializable}
	HybridSnapshot          = mode{"hybrid-snapshot", txkv.Hybrid, txkv.Snapshot}
	AdaptiveSerializable    = mode{"adaptive-serializable", txkv.Adaptive, txkv.Serializable}
	AdaptiveSnapshot        = mode{"adaptive-snapshot", txkv.Adaptive, txkv.Snapshot}
)

// AllModes is every strategy at both isolation levels.
var AllModes = []mode{
	PessimisticSerializable, PessimisticSnapshot,
	OptimisticSerializable, OptimisticSnapshot,
	HybridSerializable, HybridSnapshot,
	AdaptiveSerializable, AdaptiveSnapshot,
}

// MustPut writes key=value with DB.Put or fails the test.
func MustPut(t testing.TB, db *txkv.DB, key, value string) {
	t.Helper()
	if err := db.Put(bg, []byte(key), []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// GetString reads key with db.Get; "" and false if absent.
func GetString(t testing.TB, db *txkv.DB, key string) (string, bool) {
	t.Helper()
	v, err := db.Get(bg, []byte(key))
	if errors.Is(err, txkv.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v), true
}

// WantValue fails the test unless key holds want.
func WantValue(t testing.TB, db *txkv.DB, key, want string) {
	t.Helper()
	got, ok := GetString(t, db, key)
	if !ok || got != want {
		t.Fatalf("Get(%q) = %q (found %v), want %q", key, got, ok, want)
	}
}

// WantAbsent fails the test unless key is absent.
func WantAbsent(t testing.TB, db *txkv.DB, key string) {
	t.Helper()
	if got, ok := GetString(t, db, key); ok {
		t.Fatalf("Get(%q) = %q, want ErrNotFound", key, got)
	}
}

// MustBegin begins a transaction or fails the test.
func MustBegin(t testing.TB, db *txkv.DB, opts *txkv.TxOptions) *txkv.Tx {
	t.Helper()
	tx, err := db.Begin(bg, opts)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return tx
}

// IsWaiting reports whether transaction id is queued for a lock (DB.Locks).
func IsWaiting(db *txkv.DB, id uint64) bool {
	for _, l := range db.Locks() {
		if l.TxID == id && !l.Granted {
			return true
		}
	}
	return false
}

// scanAll collects Scan(start, end) as "k=v" strings, in order.
func scanAll(t testing.TB, tx *txkv.Tx, start, end []byte) []string {
	t.Helper()
	var out []string
	err := tx.Scan(start, end, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %q): %v", start, end, err)
	}
	return out
}

func rollbackStep(tx *txkv.Tx) error { return tx.Rollback() }
