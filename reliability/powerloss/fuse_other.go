//go:build !linux

package powerloss

import "errors"

var errUnsupported = errors.New("txkv: powerloss: FUSE mounts are supported on Linux only")

// Available reports why this process cannot mount an FS: only Linux is supported.
func Available() error { return errUnsupported }

// Mount is an FS mounted on a directory (Linux only).
type Mount struct{}

// Mount fails: only Linux is supported.
func (fsys *FS) Mount(string) (*Mount, error) { return nil, errUnsupported }

func (m *Mount) abortable() bool { return false }

// Abort fails: only Linux is supported.
func (m *Mount) Abort() error { return errUnsupported }

// Unmount fails: only Linux is supported.
func (m *Mount) Unmount() error { return errUnsupported }
