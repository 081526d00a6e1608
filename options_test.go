package txkv_test

import (
	"testing"

	"github.com/txkv/txkv"
)

// Open copies the options: the caller's Options and RetryPolicy are left
// as they were (zero fields stay zero), and changing them after Open does
// not reach the DB.
func TestOpenCopiesOptions(t *testing.T) {
	retry := &txkv.RetryPolicy{MaxAttempts: 3}
	opts := &txkv.Options{Strategy: txkv.Adaptive, Retry: retry}
	db, err := txkv.Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if *retry != (txkv.RetryPolicy{MaxAttempts: 3}) || opts.LockTimeout != 0 || opts.AdaptiveThreshold != 0 {
		t.Fatalf("Open modified the caller's options: %+v, retry %+v", opts, retry)
	}
}

// DefaultOptions spells out every default, and the zero Options means the
// same configuration.
func TestDefaultOptionsAreFilledIn(t *testing.T) {
	d := txkv.DefaultOptions()
	if d.Strategy != txkv.Optimistic || d.Isolation != txkv.Serializable || d.LockTimeout == 0 ||
		d.AdaptiveThreshold == 0 || d.Retry == nil || d.Retry.MaxAttempts == 0 || d.MaxKeySize == 0 {
		t.Fatalf("DefaultOptions left fields zero: %+v", d)
	}
	for _, o := range []*txkv.Options{nil, {}, d} {
		db, err := txkv.Open("", o)
		if err != nil {
			t.Fatalf("Open(%+v): %v", o, err)
		}
		_ = db.Close()
	}
}
