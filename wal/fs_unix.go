//go:build linux || darwin || freebsd

package wal

import (
	"os"
	"syscall"
)

// diskFree returns the bytes an unprivileged writer may still use in the file system holding
// dir (statfs's available blocks).
func diskFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

// syncDir fsyncs a directory, making the entries created in it durable: a new file whose
// data was fsynced but whose directory entry was not can vanish in a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
