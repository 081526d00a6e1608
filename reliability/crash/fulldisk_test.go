//go:build linux

package crash_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv"
)

// TestFullDiskRecovery fills a database on a small tmpfs until the disk is full, then gives
// back a tenth of the log's size and requires the database to recover:
//
//	fill: Put new keys until a commit fails ──▶ ErrLogFailed wrapping ENOSPC
//	      acknowledged data readable; Checkpoint and Close report the failure
//	free: shrink a ballast file by logSize/10
//	reopen ──▶ Checkpoint (in steps: too little space to write the base before truncating)
//	       ──▶ Put more ──▶ Close ──▶ reopen: everything acknowledged, Verify clean
//
// It needs root (to mount the tmpfs) and skips elsewhere. TXKV_FULLDISK_FREE_PERMILLE sets
// the space given back, in thousandths of the log (default 100, the goal; the figure
// RELIABILITY.md gives comes from lowering it until recovery fails).
func TestFullDiskRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("full disk: skipped under -short")
	}
	dir := smallTmpfs(t, 4<<20)
	permille := envInt(t, "TXKV_FULLDISK_FREE_PERMILLE", 100)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x66756c6c))
	const ballastSize = 1 << 20 // the space the test gives back comes out of it
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, bytes.Repeat([]byte{1}, ballastSize), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "full.db")
	acked := fillDisk(t, path, rng)

	logSize := logPages(t, path)
	give := logSize * int64(permille) / 1000
	if give > ballastSize {
		t.Fatalf("log of %d bytes: the ballast cannot give back %d", logSize, give)
	}
	if err := os.Truncate(ballast, ballastSize-give); err != nil {
		t.Fatal(err)
	}
	t.Logf("full at %d acknowledged Puts; log %d bytes (bbolt pages), file %d bytes; gave back %d bytes (%d‰ of the log)",
		len(acked), logSize, fileSize(t, path), give, permille)

	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen after freeing %d bytes: %v", give, err)
	}
	start := time.Now()
	if err := db.Checkpoint(); err != nil {
		_ = db.Close()
		t.Fatalf("checkpoint after freeing %d bytes (%d‰ of the log): %v", give, permille, err)
	}
	took := time.Since(start)
	for i := range 200 {
		k, v := fmt.Sprintf("after/%04d", i), randValue(rng)
		if err := db.Put(bg, []byte(k), v); err != nil {
			_ = db.Close()
			t.Fatalf("write %d after the recovery: %v", i, err)
		}
		acked[k] = v
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close after the recovery: %v", err)
	}
	t.Logf("recovered: the checkpoint took %v; then 200 more Puts; log now %d bytes (bbolt pages), file %d bytes",
		took.Round(time.Millisecond), logPages(t, path), fileSize(t, path))
	checkFilled(t, path, acked)
}

// smallTmpfs mounts a tmpfs of size bytes for the test, or skips saying why it cannot.
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("full disk: mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("full disk: cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount the tmpfs: %v", err)
		}
	})
	return dir
}

func randValue(rng *rand.Rand) []byte {
	v := make([]byte, 50+rng.IntN(100))
	for i := range v {
		v[i] = byte('a' + rng.IntN(26))
	}
	return v
}

// fillDisk Puts new keys until a commit fails, checks how it fails and what the database then
// says, and returns what was acknowledged.
func fillDisk(t *testing.T, path string, rng *rand.Rand) map[string][]byte {
	t.Helper()
	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string][]byte{}
	var putErr error
	for i := 0; putErr == nil; i++ {
		k, v := fmt.Sprintf("key/%07d", i), randValue(rng)
		if putErr = db.Put(bg, []byte(k), v); putErr == nil {
			acked[k] = v
		}
	}
	if !errors.Is(putErr, txkv.ErrLogFailed) || !errors.Is(putErr, syscall.ENOSPC) {
		_ = db.Close()
		t.Fatalf("the write that filled the disk: %v, want ErrLogFailed wrapping ENOSPC", putErr)
	}
	for k, v := range acked {
		if got, err := db.Get(bg, []byte(k)); err != nil || !bytes.Equal(got, v) {
			t.Errorf("acknowledged %s on the full disk: %q %v", k, got, err)
		}
		break // one, here; all of them after the recovery
	}
	if err := db.Put(bg, []byte("more"), []byte("x")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Errorf("a write after the disk filled: %v, want ErrLogFailed", err)
	}
	ckptErr := db.Checkpoint()
	closeErr := db.Close()
	for what, err := range map[string]error{"Checkpoint": ckptErr, "Close": closeErr} {
		if !errors.Is(err, txkv.ErrLogFailed) || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s of the full database: %v, want the failure that stopped writes (ErrLogFailed, ENOSPC)", what, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return acked
}

// logPages is the space the log bucket's pages take in the closed file at path.
func logPages(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		s := tx.Bucket([]byte("log")).Stats()
		n = int64(s.BranchPageN+s.BranchOverflowN+s.LeafPageN+s.LeafOverflowN) * int64(db.Info().PageSize)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512 // allocated, not the sparse length
}

// checkFilled reopens the database and requires every acknowledged value and a clean Verify.
func checkFilled(t *testing.T, path string, acked map[string][]byte) {
	t.Helper()
	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	n := 0
	err = db.View(bg, func(tx *txkv.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) error {
			if want, ok := acked[string(k)]; ok {
				if !bytes.Equal(v, want) {
					return fmt.Errorf("%s = %q, acknowledged %q", k, v, want)
				}
				n++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(acked) {
		t.Fatalf("%d of %d acknowledged keys after the recovery", n, len(acked))
	}
	if err := db.Verify(); err != nil {
		t.Fatal(err)
	}
}
