package txkv_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Calling the transaction's own methods from inside a Scan callback — the
// natural way to write "for every key that matches, update it" — must not
// deadlock: it either works or returns an error. (It used to: Tx.Scan held
// the transaction's mutex while calling fn, so Tx.Put or Tx.Get in fn
// blocked forever, and so did DB.Close afterwards.) A hang cannot be
// recovered in process, so the scenario runs in a child process that is
// killed if it does not finish.

func TestScanCallbackCanUseTx(t *testing.T) {
	// The child needs about a second, mostly to start under -race; the
	// scenario itself takes microseconds. Not finishing in 5s is a hang.
	out := runChildTest(t, "TestScanCallbackCanUseTxChild", 5*time.Second)
	for _, m := range allModes {
		if !strings.Contains(out, "REENTRANT OK "+m.Name+"\n") {
			t.Errorf("%s: the scenario did not complete", m.Name)
		}
	}
}

// TestScanCallbackCanUseTxChild runs the scenario under every mode, one
// after the other, reporting each that completes.
func TestScanCallbackCanUseTxChild(t *testing.T) {
	if !isChild("TestScanCallbackCanUseTxChild") {
		t.Skip("run by TestScanCallbackCanUseTx as a child process")
	}
	for _, m := range allModes {
		scanAndUpdate(t, m)
		fmt.Printf("REENTRANT OK %s\n", m.Name)
	}
}

func scanAndUpdate(t *testing.T, m mode) {
	db := openMem(t, nil)
	mustPut(t, db, "fruit/1", "pear")
	mustPut(t, db, "fruit/2", "apple")
	tx := mustBegin(t, db, m.TxOptions())
	err := tx.Scan([]byte("fruit/"), []byte("fruit0"), func(k, v []byte) error {
		if _, err := tx.Get(k); err != nil {
			return fmt.Errorf("Get inside Scan: %w", err)
		}
		if string(v) == "pear" {
			return tx.Put(k, []byte("apple"))
		}
		return nil
	})
	if err != nil {
		// A clear refusal is acceptable; the transaction must still end.
		t.Logf("%s: Scan refused the nested calls: %v", m.Name, err)
		if err := tx.Rollback(); err != nil && !errors.Is(err, txkv.ErrTxDone) {
			t.Fatalf("Rollback: %v", err)
		}
		return
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("%s: Commit after writes made inside Scan: %v", m.Name, err)
	}
	wantValue(t, db, "fruit/1", "apple")
	wantValue(t, db, "fruit/2", "apple")
}
