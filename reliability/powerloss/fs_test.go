package powerloss

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/txkv/txkv/internal/testenv"
)

// The model, without FUSE: what survives a crash.
func TestCrashDropsWhatWasNotSynced(t *testing.T) {
	fsys := New()
	if err := fsys.WriteFile("a", []byte("synced")); err != nil {
		t.Fatal(err)
	}
	f := fsys.names["a"]
	f.write([]byte("UNSYNCED tail"), 6)
	f.write([]byte("S"), 0)
	if got, _ := fsys.ReadFile("a"); string(got) != "SyncedUNSYNCED tail" {
		t.Fatalf("read before the crash: %q", got)
	}
	if err := fsys.Crash(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := fsys.ReadFile("a"); string(got) != "synced" {
		t.Fatalf("after the crash: %q, want the synced content", got)
	}
	if st := fsys.Stats(); st.LostPages != 1 || st.Crashes != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTruncateThenGrowReadsZeros(t *testing.T) {
	fsys := New()
	data := bytes.Repeat([]byte{7}, 3*PageSize)
	if err := fsys.WriteFile("a", data); err != nil {
		t.Fatal(err)
	}
	f := fsys.names["a"]
	f.truncate(PageSize + 10)
	f.truncate(3 * PageSize)
	got, _ := fsys.ReadFile("a")
	want := append(bytes.Clone(data[:PageSize+10]), make([]byte, 2*PageSize-10)...)
	if !bytes.Equal(got, want) {
		t.Fatal("a cut and regrown file does not read zeros past the cut")
	}
	f.sync()
	if err := fsys.Crash(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := fsys.ReadFile("a"); !bytes.Equal(got, want) {
		t.Fatal("the synced truncation did not survive the crash")
	}
}

// TestCrashKeepsWhatKeepChooses: a crash that keeps every unsynced change is a sync; one that
// keeps some leaves each page either old or new, never anything else, and the same choices
// (the same seed) give the same file.
func TestCrashKeepsWhatKeepChooses(t *testing.T) {
	seed := testenv.Seed(t, "TXKV_SEED")
	old := bytes.Repeat([]byte{'o'}, 8*PageSize)
	state := func(keep func() bool) []byte {
		fsys := New()
		if err := fsys.WriteFile("a", old); err != nil {
			t.Fatal(err)
		}
		fsys.names["a"].write(bytes.Repeat([]byte{'n'}, 8*PageSize), 0)
		if err := fsys.Crash(keep); err != nil {
			t.Fatal(err)
		}
		b, _ := fsys.ReadFile("a")
		return b
	}
	if got := state(func() bool { return true }); !bytes.Equal(got, bytes.Repeat([]byte{'n'}, 8*PageSize)) {
		t.Fatal("keeping everything is not a sync")
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	got := state(func() bool { return rng.IntN(2) == 0 })
	for pg := range 8 {
		p := got[pg*PageSize : (pg+1)*PageSize]
		if !bytes.Equal(p, bytes.Repeat([]byte{'o'}, PageSize)) && !bytes.Equal(p, bytes.Repeat([]byte{'n'}, PageSize)) {
			t.Fatalf("page %d is neither old nor new", pg)
		}
	}
	rng = rand.New(rand.NewPCG(seed, 1))
	if again := state(func() bool { return rng.IntN(2) == 0 }); !bytes.Equal(got, again) {
		t.Fatal("the same choices gave another file")
	}
}

func TestCrashRefusedWhileMounted(t *testing.T) {
	fsys := New()
	fsys.setMounted(true)
	if err := fsys.Crash(nil); !errors.Is(err, ErrMounted) {
		t.Fatalf("Crash while mounted: %v", err)
	}
}

// mounted mounts a new FS for the test, or skips saying why it cannot.
func mounted(t *testing.T) (*FS, *Mount, string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("no FUSE mount here: %v", err)
	}
	fsys := New()
	dir := t.TempDir()
	m, err := fsys.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Unmount() }) // a no-op if the test unmounted
	return fsys, m, dir
}

func unmount(t *testing.T, m *Mount) {
	t.Helper()
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// TestMountedFileLosesUnsyncedEntry: through the kernel, a created file whose content was
// fsynced but whose directory was not is lost at a crash; after a directory fsync it survives
// with exactly its synced content.
func TestMountedFileLosesUnsyncedEntry(t *testing.T) {
	for _, syncDir := range []bool{false, true} {
		fsys, m, dir := mounted(t)
		f, err := os.OpenFile(filepath.Join(dir, "new.db"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		mustDo(t, func() error { _, err := f.Write([]byte("durable")); return err })
		mustDo(t, f.Sync)
		mustDo(t, func() error { _, err := f.Write([]byte(" and lost")); return err })
		if syncDir {
			d, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			mustDo(t, d.Sync)
			mustDo(t, d.Close)
		}
		mustDo(t, f.Close)
		unmount(t, m)
		if err := fsys.Crash(nil); err != nil {
			t.Fatal(err)
		}
		got, err := fsys.ReadFile("new.db")
		switch {
		case !syncDir && !errors.Is(err, os.ErrNotExist):
			t.Fatalf("a file whose directory entry was never synced survived the crash: %q %v", got, err)
		case syncDir && (err != nil || string(got) != "durable"):
			t.Fatalf("after a directory fsync: %q %v, want the synced content", got, err)
		}
		if st := fsys.Stats(); st.Fsyncs != 1 || st.DirFsyncs != b2u(syncDir) {
			t.Fatalf("stats %+v", st)
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func mustDo(t *testing.T, fn func() error) {
	t.Helper()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
}

// TestMountedReadsWritesAndStatfs: what a process writes reads back through the kernel, pwrite
// and ftruncate included, and statfs reports SetFree's figure.
func TestMountedReadsWritesAndStatfs(t *testing.T) {
	fsys, m, dir := mounted(t)
	fsys.SetFree(3 << 20)
	path := filepath.Join(dir, "f")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, func() error { return f.Truncate(5 * PageSize) })
	mustDo(t, func() error { _, err := f.WriteAt([]byte("xyz"), 2*PageSize-1); return err })
	buf := make([]byte, 5*PageSize)
	if n, err := f.ReadAt(buf, 0); n != len(buf) || err != nil {
		t.Fatalf("read %d %v", n, err)
	}
	want := make([]byte, 5*PageSize)
	copy(want[2*PageSize-1:], "xyz")
	if !bytes.Equal(buf, want) {
		t.Fatal("read back differs from what was written")
	}
	var st syscall.Statfs_t
	mustDo(t, func() error { return syscall.Statfs(dir, &st) })
	if free := int64(st.Bavail) * int64(st.Bsize); free != 3<<20 {
		t.Fatalf("statfs: %d bytes free, want %d", free, 3<<20)
	}
	mustDo(t, f.Close)
	if names := fsys.Names(); !slices.Equal(names, []string{"f"}) {
		t.Fatalf("names %v", names)
	}
	unmount(t, m)
}

// TestAbortReleasesAStuckRequest: a request the server never answers (here an fsync held by
// a test hook) blocks its caller, SIGKILL or not; Abort fails it, and the mount then unmounts.
func TestAbortReleasesAStuckRequest(t *testing.T) {
	fsys, m, dir := mounted(t)
	if !m.abortable() {
		t.Skip("fusectl is not available: Abort cannot work here")
	}
	f, err := os.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	entered := make(chan struct{})
	fsys.mu.Lock()
	fsys.fsyncHook = func() { close(entered); <-hold }
	fsys.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- f.Sync() }()
	<-entered
	if err := m.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("fsync of an aborted connection succeeded")
	}
	close(hold)
	_ = f.Close()
	unmount(t, m)
}
