package txkv_test

import (
	"errors"
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
)

// The anomaly suite (Berenson et al. 1995; Adya 1999) lives in
// internal/conformance, shared with every engine; these run it on the local
// engine, in memory, over every strategy at both isolation levels.

// local is the local engine as a conformance target: a fresh in-memory DB
// per test that waits for locks forever (a hang is a bug the suite's own
// deadline reports) and keeps Adaptive's default threshold, so Adaptive runs
// as MOCC (optimistic, cold keys unlocked) rather than as pure 2PL.
var local = conformance.Target{Open: func(t testing.TB) *txkv.DB { return openMem(t, anomalyOptions()) }}

func anomalyOptions() *txkv.Options {
	o := txkv.DefaultOptions()
	o.LockTimeout = txkv.Forever
	return o
}

func forModes(t *testing.T, modes []mode, f func(*testing.T, mode)) {
	for _, m := range modes {
		t.Run(m.Name, func(t *testing.T) { f(t, m) })
	}
}

var errRefused = errors.New("business rule refused the change")

func TestLostUpdateInterleaved(t *testing.T)     { conformance.LostUpdateInterleaved(t, local) }
func TestLostUpdateConcurrent(t *testing.T)      { conformance.LostUpdateConcurrent(t, local) }
func TestLostUpdateMixedStrategies(t *testing.T) { conformance.LostUpdateMixedStrategies(t, local) }
func TestWriteSkewPointReads(t *testing.T)       { conformance.WriteSkewPointReads(t, local) }
func TestWriteSkewRangeReads(t *testing.T)       { conformance.WriteSkewRangeReads(t, local) }
func TestWriteSkewPhantomInsert(t *testing.T)    { conformance.WriteSkewPhantomInsert(t, local) }
func TestWriteSkewConcurrentSerializable(t *testing.T) {
	conformance.WriteSkewConcurrentSerializable(t, local)
}
func TestSimpleWriteSkew(t *testing.T) { conformance.SimpleWriteSkew(t, local) }
func TestSimpleWriteSkewSerialOrders(t *testing.T) {
	conformance.SimpleWriteSkewSerialOrders(t, local)
}
func TestPhantom(t *testing.T)           { conformance.Phantom(t, local) }
func TestPhantomDelete(t *testing.T)     { conformance.PhantomDelete(t, local) }
func TestDirtyWrite(t *testing.T)        { conformance.DirtyWrite(t, local) }
func TestDirtyRead(t *testing.T)         { conformance.DirtyRead(t, local) }
func TestReadSkew(t *testing.T)          { conformance.ReadSkew(t, local) }
func TestNonRepeatableRead(t *testing.T) { conformance.NonRepeatableRead(t, local) }

// TestBank: the conformance bank (10 and 1,000 accounts, every strategy).
func TestBank(t *testing.T) { conformance.Bank(t, local) }
