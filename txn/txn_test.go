package txn

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/txkv/txkv/lockmgr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func defaultConfig(t *testing.T) *Options {
	t.Helper()
	c := &Options{}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := defaultConfig(t)
	if c.Strategy != Optimistic || c.Isolation != Serializable || c.LockTimeout != DefaultLockTimeout {
		t.Fatalf("defaults: %+v", c)
	}
	if *c.Retry != DefaultRetryPolicy {
		t.Fatalf("retry default %+v", c.Retry)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Options){
		func(c *Options) { c.Strategy = Adaptive + 1 },
		func(c *Options) { c.Isolation = Snapshot + 1 },
		func(c *Options) { c.AdaptiveThreshold = AdaptiveAlways - 1 },
		func(c *Options) { c.MaxKeySize = DefaultMaxKeySize + 1 },
		func(c *Options) { c.MaxValueSize = -1 },
		func(c *Options) { c.CheckpointBytes = -1 },
		func(c *Options) { c.Retry.MaxAttempts = -1 },
		func(c *Options) { c.DeadlockDetection = 99 },
		func(c *Options) { c.Sync = 99 },
	}
	for i, mutate := range bad {
		c := defaultConfig(t)
		mutate(c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("case %d: Validate = %v, want ErrInvalidOption", i, err)
		}
	}
}

func TestBackoffCeiling(t *testing.T) {
	p := RetryPolicy{BaseDelay: 50 * time.Microsecond, MaxDelay: 10 * time.Millisecond}
	for _, c := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, 50 * time.Microsecond}, {2, 100 * time.Microsecond}, {3, 200 * time.Microsecond},
		{8, 6400 * time.Microsecond}, {9, 10 * time.Millisecond}, {40, 10 * time.Millisecond},
		{1 << 20, 10 * time.Millisecond}, // no shift overflow
	} {
		if got := backoffCeiling(p, c.attempt); got != c.want {
			t.Errorf("attempt %d: ceiling %v, want %v", c.attempt, got, c.want)
		}
	}
}

// A cancelled context ends the backoff sleep at once, whatever the delay.
func TestBackoffStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}
	for range 20 { // a zero draw returns nil at once; otherwise the cancelled ctx wins
		if err := sleepBackoff(ctx, long, 3); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	}
}

func TestSortPrelocksDedupsKeepingStrongest(t *testing.T) {
	p := []prelock{
		{key: []byte("b"), mode: lockmgr.Shared},
		{key: []byte("a"), mode: lockmgr.Shared},
		{key: []byte("b"), mode: lockmgr.Exclusive},
		{key: []byte("a"), mode: lockmgr.Shared},
	}
	p = sortPrelocks(p)
	if len(p) != 2 || !bytes.Equal(p[0].key, []byte("a")) || p[0].mode != lockmgr.Shared ||
		!bytes.Equal(p[1].key, []byte("b")) || p[1].mode != lockmgr.Exclusive {
		t.Fatalf("got %+v", p)
	}
}

func TestCounterCodec(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 1 << 62, -(1 << 62)} {
		got, err := DecodeCounter(EncodeCounter(n))
		if err != nil || got != n {
			t.Fatalf("round trip %d: %d %v", n, got, err)
		}
	}
	if n, err := DecodeCounter(nil); n != 0 || err != nil {
		t.Fatalf("nil: %d %v", n, err)
	}
	for _, b := range [][]byte{{}, {1, 2, 3}, make([]byte, 9)} {
		if _, err := DecodeCounter(b); !errors.Is(err, ErrNotCounter) {
			t.Fatalf("%x: %v", b, err)
		}
	}
}

func TestHybridRetryLocksWhatFailedAttemptTouched(t *testing.T) {
	db, err := Open("", defaultConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	attempts := 0
	opts := &TxOptions{Strategy: Hybrid}
	err = db.Update(ctx, opts, func(tx *Tx) error {
		attempts++
		if _, err := tx.Get([]byte("r")); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := tx.Put([]byte("w"), []byte("1")); err != nil {
			return err
		}
		if attempts == 1 {
			if tx.Strategy() != Hybrid {
				t.Errorf("attempt 1 strategy %v", tx.Strategy())
			}
			// A concurrent commit to the key read: attempt 1 must conflict.
			return errors.Join(db.Put(ctx, []byte("r"), []byte("x")), nil)
		}
		if tx.Strategy() != Pessimistic {
			t.Errorf("retry strategy %v, want pessimistic", tx.Strategy())
		}
		held := map[string]lockmgr.Mode{}
		for _, l := range db.Locks() {
			if l.TxID == tx.ID() && l.Granted {
				held[string(l.Key)] = l.Mode
			}
		}
		if m, ok := held["r"]; !ok || m != lockmgr.Shared {
			t.Errorf("retry holds %v on r, want shared (locks %v)", m, held)
		}
		if m, ok := held["w"]; !ok || m != lockmgr.Exclusive {
			t.Errorf("retry holds %v on w, want exclusive", m)
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err %v after %d attempts", err, attempts)
	}
}

// The zero Options is the default
// configuration: an Adaptive DB built without AdaptiveThreshold steers
// between MOCC and the plain arms, it is not pinned to locking every read.
func TestZeroAdaptiveThresholdIsTheDefault(t *testing.T) {
	c := &Options{Strategy: Adaptive}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.AdaptiveThreshold != DefaultAdaptiveThreshold {
		t.Fatalf("AdaptiveThreshold %d after defaults, want %d", c.AdaptiveThreshold, DefaultAdaptiveThreshold)
	}
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if got := adaptiveStart(db); got != runHotLocking {
		t.Fatalf("a fresh Adaptive DB starts in mode %d, want MOCC (%d)", got, runHotLocking)
	}
}
