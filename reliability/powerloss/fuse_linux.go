package powerloss

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fusectlDir is where the kernel's FUSE control file system lists connections; writing to a
// connection's abort file fails every request in flight and every later one.
const fusectlDir = "/sys/fs/fuse/connections"

// fusectlMagic is the control file system's statfs type.
const fusectlMagic = 0x65735543

// Available reports why this process cannot mount an FS (nil: it can): a mount without
// fusermount needs root and /dev/fuse.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("txkv: powerloss: mounting FUSE directly needs root")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("txkv: powerloss: %w", err)
	}
	return f.Close()
}

// Mount is an FS mounted on a directory.
type Mount struct {
	fsys   *FS
	dir    string
	server *fuse.Server
	conn   string // the connection's directory under fusectlDir ("" if unknown)
}

// Mount serves fsys at dir (an existing empty directory) until Unmount. It mounts directly
// (root, no fusermount). One FS has at most one mount at a time.
func (fsys *FS) Mount(dir string) (*Mount, error) {
	fsys.mu.Lock()
	if fsys.mounted {
		fsys.mu.Unlock()
		return nil, ErrMounted
	}
	fsys.mounted = true
	fsys.mu.Unlock()
	zero := 0 * time.Second
	server, err := fs.Mount(dir, &dirNode{fsys: fsys}, &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true, // never fall back to fusermount
			FsName:            "txkv-powerloss",
			Name:              "powerloss",
			DisableXAttrs:     true,
			// go-fuse logs a reply it could not deliver (the process was killed, the
			// connection aborted): expected here, every cycle.
			Logger: log.New(io.Discard, "", 0),
		},
		// Every lookup and stat asks the FS: after a crash the next mount must not see
		// anything the kernel remembered (a new mount starts with empty caches anyway).
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	})
	if err != nil {
		fsys.setMounted(false)
		return nil, fmt.Errorf("txkv: powerloss: mount %s: %w", dir, err)
	}
	m := &Mount{fsys: fsys, dir: dir, server: server}
	m.conn = connDir(dir)
	return m, nil
}

// connDir finds the mount's FUSE connection under fusectlDir (mounting the control file
// system if it is not), or returns "".
func connDir(dir string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return ""
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(fusectlDir, &sfs); err != nil {
		return ""
	}
	if sfs.Type != fusectlMagic {
		if err := syscall.Mount("fusectl", fusectlDir, "fusectl", 0, ""); err != nil {
			return ""
		}
	}
	// The connection is named by the device number of the mount: major 0, so the minor.
	minor := (st.Dev & 0xff) | ((st.Dev >> 12) & 0xfff00)
	c := filepath.Join(fusectlDir, strconv.FormatUint(minor, 10))
	if _, err := os.Stat(c); err != nil {
		return ""
	}
	return c
}

// abortable reports whether Abort can work: the mount's FUSE connection was found.
func (m *Mount) abortable() bool { return m.conn != "" }

// Abort ends the connection: every request in flight and every later one fails (ENOTCONN),
// so a process blocked in the file system, even in a page fault, is released. A watchdog
// calls it instead of letting a stuck test hang. Unmount is still needed afterwards.
func (m *Mount) Abort() error {
	if m.conn == "" {
		return errors.New("txkv: powerloss: the mount's FUSE connection was not found under " + fusectlDir)
	}
	return os.WriteFile(filepath.Join(m.conn, "abort"), []byte("1"), 0)
}

// Unmount unmounts and waits for the server to stop. The processes that used the mount must
// have exited (a busy mount is retried briefly, then detached). After Unmount the FS can
// crash or be mounted again.
func (m *Mount) Unmount() error {
	err := m.server.Unmount()
	if err != nil {
		// Still busy (a process that has not let go): detach it from the tree, then stop.
		err = syscall.Unmount(m.dir, syscall.MNT_DETACH)
		m.server.Wait()
	}
	m.fsys.setMounted(false)
	if err != nil {
		return fmt.Errorf("txkv: powerloss: unmount %s: %w", m.dir, err)
	}
	return nil
}

// dirNode is the root directory: flat, holding regular files only.
type dirNode struct {
	fs.Inode
	fsys *FS
}

var (
	_ fs.NodeLookuper  = (*dirNode)(nil)
	_ fs.NodeCreater   = (*dirNode)(nil)
	_ fs.NodeUnlinker  = (*dirNode)(nil)
	_ fs.NodeRenamer   = (*dirNode)(nil)
	_ fs.NodeReaddirer = (*dirNode)(nil)
	_ fs.NodeFsyncer   = (*dirNode)(nil)
	_ fs.NodeStatfser  = (*dirNode)(nil)
)

func (d *dirNode) child(ctx context.Context, f *file, out *fuse.EntryOut) *fs.Inode {
	f.attr(&out.Attr)
	return d.NewInode(ctx, &fileNode{fsys: d.fsys, f: f}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: f.ino})
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	f := d.fsys.names[name]
	if f == nil {
		return nil, syscall.ENOENT
	}
	return d.child(ctx, f, out), 0
}

// Create adds a directory entry that is unsynced until the directory is fsynced: a crash
// before that loses the file, whatever was synced of its content.
func (d *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	if checkName(name) != nil {
		return nil, nil, 0, syscall.EINVAL
	}
	f := d.fsys.names[name]
	switch {
	case f != nil && flags&syscall.O_EXCL != 0:
		return nil, nil, 0, syscall.EEXIST
	case f == nil:
		f = d.fsys.newFile(mode & 0o7777)
		d.fsys.names[name] = f
	case flags&syscall.O_TRUNC != 0:
		f.truncate(0)
	}
	return d.child(ctx, f, out), nil, 0, 0
}

func (d *dirNode) Unlink(_ context.Context, name string) syscall.Errno {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	if d.fsys.names[name] == nil {
		return syscall.ENOENT
	}
	delete(d.fsys.names, name)
	return 0
}

func (d *dirNode) Rename(_ context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	f := d.fsys.names[name]
	switch {
	case newParent.EmbeddedInode() != d.EmbeddedInode() || flags != 0:
		return syscall.ENOTSUP
	case f == nil:
		return syscall.ENOENT
	case checkName(newName) != nil:
		return syscall.EINVAL
	}
	delete(d.fsys.names, name)
	d.fsys.names[newName] = f
	return 0
}

func (d *dirNode) Readdir(context.Context) (fs.DirStream, syscall.Errno) {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	var es []fuse.DirEntry
	for name, f := range d.fsys.names {
		es = append(es, fuse.DirEntry{Name: name, Ino: f.ino, Mode: syscall.S_IFREG})
	}
	return fs.NewListDirStream(es), 0
}

// Fsync of the directory makes its entries as they are now survive a crash.
func (d *dirNode) Fsync(context.Context, fs.FileHandle, uint32) syscall.Errno {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	d.fsys.synced = maps.Clone(d.fsys.names)
	d.fsys.stats.DirFsyncs++
	return 0
}

func (d *dirNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	free := uint64(max(d.fsys.free, 0)) / PageSize
	*out = fuse.StatfsOut{Blocks: free + 1<<20, Bfree: free, Bavail: free, Files: 1 << 20, Ffree: 1 << 20,
		Bsize: PageSize, Frsize: PageSize, NameLen: 255}
	return 0
}

// fileNode is a regular file. It hands out no file handles: every operation works on the
// node. In particular it offers no passthrough descriptor — with one (go-fuse's loopback
// does, as root) the kernel would read and write a backing file directly, and the writes
// would never reach the layer that decides what a crash loses.
type fileNode struct {
	fs.Inode
	fsys *FS
	f    *file
}

var (
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeSetattrer = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeWriter    = (*fileNode)(nil)
	_ fs.NodeFsyncer   = (*fileNode)(nil)
	_ fs.NodeFlusher   = (*fileNode)(nil)
	_ fs.NodeAllocater = (*fileNode)(nil)
)

func (f *file) attr(a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | f.mode
	a.Ino = f.ino
	a.Size = uint64(f.size)
	a.Blocks = uint64((f.size + 511) / 512)
	a.Blksize = PageSize
	a.Nlink = 1
}

func (n *fileNode) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		n.fsys.mu.Lock()
		n.f.truncate(0)
		n.fsys.mu.Unlock()
	}
	return nil, 0, 0
}

func (n *fileNode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	n.f.attr(&out.Attr)
	return 0
}

func (n *fileNode) Setattr(_ context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if size, ok := in.GetSize(); ok {
		n.f.truncate(int64(size))
	}
	if mode, ok := in.GetMode(); ok {
		n.f.mode = mode & 0o7777
	}
	n.f.attr(&out.Attr)
	return 0
}

func (n *fileNode) Read(_ context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	return fuse.ReadResultData(dest[:n.f.read(dest, off)]), 0
}

// Write keeps data unsynced until the next fsync of this file.
func (n *fileNode) Write(_ context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	n.f.write(data, off)
	n.fsys.stats.Writes++
	return uint32(len(data)), 0
}

// Fsync (and fdatasync, which also persists a size change) makes the file's content survive
// a crash. Its directory entry is another matter: see dirNode.Fsync.
func (n *fileNode) Fsync(context.Context, fs.FileHandle, uint32) syscall.Errno {
	n.fsys.mu.Lock()
	hook := n.fsys.fsyncHook
	n.fsys.mu.Unlock()
	if hook != nil {
		hook()
	}
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	n.f.sync()
	n.fsys.stats.Fsyncs++
	return 0
}

// Flush (close) syncs nothing: close(2) is no durability point.
func (n *fileNode) Flush(context.Context, fs.FileHandle) syscall.Errno { return 0 }

// Allocate supports plain preallocation (mode 0) by extending the file, unsynced.
func (n *fileNode) Allocate(_ context.Context, _ fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	if mode != 0 {
		return syscall.EOPNOTSUPP
	}
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if end := int64(off + size); end > n.f.size {
		n.f.truncate(end)
	}
	return 0
}
