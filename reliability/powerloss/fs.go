package powerloss

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
)

// PageSize is the unit in which unsynced data is kept and lost: a power loss keeps or drops
// whole 4 KiB pages, as the page cache writes them back.
const PageSize = 4096

// ErrMounted is returned by Crash and by a second Mount while the FS is mounted: a crash
// must not happen under a kernel that still caches what it drops.
var ErrMounted = errors.New("txkv: powerloss: the file system is mounted")

// FS is an in-memory file system with one flat directory that remembers, for every file and
// for the directory itself, what was synced and what was not (see the package doc). Files
// are read and written through a FUSE mount (Mount); the test side uses WriteFile, ReadFile,
// Export and Crash while it is not mounted. All methods are safe for concurrent use.
type FS struct {
	mu sync.Mutex
	// names is the directory as processes see it; synced is the directory as a power loss
	// would leave it (as of the last fsync of the directory).
	names, synced map[string]*file
	nextIno       uint64
	free          int64 // what statfs reports as free
	mounted       bool
	stats         Stats
	fsyncHook     func() // tests: runs at each file fsync, outside mu, before it takes effect
}

// Stats counts what went through the file system since New.
type Stats struct {
	Writes, Fsyncs, DirFsyncs uint64
	Crashes                   uint64
	KeptPages, LostPages      uint64 // unsynced pages a crash kept (written back) or dropped
	LostEntries               uint64 // directory changes a crash undid
}

// file is one file's content: synced pages (what survives a power loss) under unsynced ones.
type file struct {
	ino        uint64
	mode       uint32
	size       int64 // as processes see it
	syncedSize int64
	pages      map[int64][]byte // synced content, pages below syncedSize
	// dirty is what was written or truncated since the last fsync, pages below size; a nil
	// page is one a truncation zeroed.
	dirty map[int64][]byte
}

// New returns an empty FS that reports 1 TiB free.
func New() *FS {
	return &FS{names: map[string]*file{}, synced: map[string]*file{}, nextIno: 2, free: 1 << 40}
}

// SetFree sets the free space statfs reports (the file system never actually runs out).
func (fsys *FS) SetFree(bytes int64) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.free = bytes
}

// Stats returns the counters.
func (fsys *FS) Stats() Stats {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.stats
}

// WriteFile creates or replaces name with data, synced, directory entry included: the state
// a test starts from. All-zero pages are left as holes (bbolt files are mostly holes).
func (fsys *FS) WriteFile(name string, data []byte) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if err := checkName(name); err != nil {
		return err
	}
	f := fsys.newFile(0o600)
	var zero [PageSize]byte
	for off := 0; off < len(data); off += PageSize {
		if pg := data[off:min(off+PageSize, len(data))]; !bytes.Equal(pg, zero[:len(pg)]) {
			f.write(pg, int64(off))
		}
	}
	f.truncate(int64(len(data)))
	f.sync()
	fsys.names[name], fsys.synced[name] = f, f
	return nil
}

// ReadFile returns name's content as processes see it.
func (fsys *FS) ReadFile(name string) ([]byte, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	f := fsys.names[name]
	if f == nil {
		return nil, notExist(name)
	}
	b := make([]byte, f.size)
	f.read(b, 0)
	return b, nil
}

func notExist(name string) error { return fmt.Errorf("txkv: powerloss: %s: %w", name, os.ErrNotExist) }

// Export writes name's content as processes see it to a real file at path, leaving pages
// never written (or zeroed) as holes.
func (fsys *FS) Export(name, path string) error {
	fsys.mu.Lock()
	f := fsys.names[name]
	if f == nil {
		fsys.mu.Unlock()
		return notExist(name)
	}
	size := f.size
	pages := map[int64][]byte{}
	for pg := range (size + PageSize - 1) / PageSize {
		if p := f.page(pg); p != nil {
			pages[pg] = bytes.Clone(p)
		}
	}
	fsys.mu.Unlock()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for _, pg := range slices.Sorted(maps.Keys(pages)) {
		if _, err = out.WriteAt(pages[pg][:min(PageSize, size-pg*PageSize)], pg*PageSize); err != nil {
			break
		}
	}
	if err == nil {
		err = out.Truncate(size)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Names lists the directory as processes see it, sorted.
func (fsys *FS) Names() []string {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return slices.Sorted(maps.Keys(fsys.names))
}

// Crash simulates a power loss: everything not synced is lost. With keep nil every unsynced
// page, size change and directory change is dropped. Otherwise keep is asked, for each of
// them in a fixed order (files by name, pages by offset, then directory entries by name),
// whether the page cache had written it back before the power went: the writeback of a real
// kernel, in any order, with fsync as the only barrier. The FS must not be mounted.
func (fsys *FS) Crash(keep func() bool) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.mounted {
		return ErrMounted
	}
	seen := map[*file]bool{}
	for _, name := range slices.Sorted(maps.Keys(fsys.names)) {
		if f := fsys.names[name]; !seen[f] {
			seen[f] = true
			kept, lost := f.crash(keep)
			fsys.stats.KeptPages += kept
			fsys.stats.LostPages += lost
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fsys.synced)) {
		if f := fsys.synced[name]; !seen[f] {
			seen[f] = true
			f.crash(keep) // unlinked but synced: its unsynced writes are lost too
		}
	}
	fsys.crashNames(keep)
	fsys.stats.Crashes++
	return nil
}

// crashNames keeps or drops each directory change since the last directory fsync.
func (fsys *FS) crashNames(keep func() bool) {
	all := maps.Clone(fsys.names)
	maps.Copy(all, fsys.synced)
	for _, name := range slices.Sorted(maps.Keys(all)) {
		cur, syn := fsys.names[name], fsys.synced[name]
		if cur == syn {
			continue
		}
		if keep == nil || !keep() {
			fsys.stats.LostEntries++
			continue
		}
		if cur == nil {
			delete(fsys.synced, name)
		} else {
			fsys.synced[name] = cur
		}
	}
	fsys.names = maps.Clone(fsys.synced)
}

func (fsys *FS) setMounted(v bool) {
	fsys.mu.Lock()
	fsys.mounted = v
	fsys.mu.Unlock()
}

func (fsys *FS) newFile(mode uint32) *file {
	f := &file{ino: fsys.nextIno, mode: mode, pages: map[int64][]byte{}, dirty: map[int64][]byte{}}
	fsys.nextIno++
	return f
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || bytes.ContainsAny([]byte(name), "/\x00") {
		return fmt.Errorf("txkv: powerloss: %q is not a file name in a flat directory", name)
	}
	return nil
}

// The file operations. The caller holds fsys.mu.

// page returns the content of page pg as processes see it (nil: zeros).
func (f *file) page(pg int64) []byte {
	if p, ok := f.dirty[pg]; ok {
		return p
	}
	return f.pages[pg]
}

// read copies the content at off into dst and returns how much there was.
func (f *file) read(dst []byte, off int64) int {
	if off >= f.size {
		return 0
	}
	n := min(int64(len(dst)), f.size-off)
	for done := int64(0); done < n; {
		pg, in := (off+done)/PageSize, (off+done)%PageSize
		c := min(PageSize-in, n-done)
		if src := f.page(pg); src != nil {
			copy(dst[done:done+c], src[in:in+c])
		} else {
			clear(dst[done : done+c])
		}
		done += c
	}
	return int(n)
}

// write writes data at off, unsynced, extending the file if needed.
func (f *file) write(data []byte, off int64) {
	for done := int64(0); done < int64(len(data)); {
		pg, in := (off+done)/PageSize, (off+done)%PageSize
		c := min(PageSize-in, int64(len(data))-done)
		copy(f.writable(pg)[in:in+c], data[done:done+c])
		done += c
	}
	f.size = max(f.size, off+int64(len(data)))
}

// writable returns an unsynced copy of page pg to write into.
func (f *file) writable(pg int64) []byte {
	p, ok := f.dirty[pg]
	if p != nil {
		return p
	}
	p = make([]byte, PageSize)
	if !ok {
		copy(p, f.pages[pg])
	}
	f.dirty[pg] = p
	return p
}

// truncate sets the size, unsynced. Cutting zeroes the rest of the last page and marks every
// page beyond it zeroed, so that growing the file again reads zeros, not old data.
func (f *file) truncate(size int64) {
	if size < f.size {
		first := (size + PageSize - 1) / PageSize // the first page wholly beyond size
		for pg := range f.dirty {
			if pg >= first {
				delete(f.dirty, pg)
			}
		}
		for pg := range f.pages {
			if pg >= first {
				f.dirty[pg] = nil
			}
		}
		if in := size % PageSize; in != 0 {
			clear(f.writable(size / PageSize)[in:])
		}
	}
	f.size = size
}

// sync makes the content as processes see it the synced content (fsync, fdatasync).
func (f *file) sync() {
	for pg, p := range f.dirty {
		f.apply(pg, p)
	}
	clear(f.dirty)
	f.syncedSize = f.size
	f.trim()
}

func (f *file) apply(pg int64, p []byte) {
	if p == nil {
		delete(f.pages, pg)
	} else {
		f.pages[pg] = p
	}
}

// trim drops synced pages beyond the synced size (a crash that kept pages but not the size
// that covered them: the data is not part of the file).
func (f *file) trim() {
	last := (f.syncedSize + PageSize - 1) / PageSize
	for pg := range f.pages {
		if pg >= last {
			delete(f.pages, pg)
		}
	}
	if in := f.syncedSize % PageSize; in != 0 {
		if p := f.pages[f.syncedSize/PageSize]; p != nil {
			clear(p[in:])
		}
	}
}

// crash keeps the unsynced pages keep chooses (none if keep is nil), and the unsynced size
// if keep chooses it, and drops the rest. It returns how many pages it kept and dropped.
func (f *file) crash(keep func() bool) (kept, lost uint64) {
	for _, pg := range slices.Sorted(maps.Keys(f.dirty)) {
		if keep != nil && keep() {
			f.apply(pg, f.dirty[pg])
			kept++
		} else {
			lost++
		}
	}
	clear(f.dirty)
	if f.size != f.syncedSize && keep != nil && keep() {
		f.syncedSize = f.size
	}
	f.size = f.syncedSize
	f.trim()
	return kept, lost
}
