package wal

import (
	"fmt"
	"os"
	"sync"
)

// openFiles lists the files this process has open as a Log, so that a second Open of one of
// them fails at once with ErrInUse instead of waiting out bbolt's file lock (which, within
// one process, could only ever time out: the first Open holds it until Close).
var openFiles struct {
	// mu protects infos.
	mu    sync.Mutex
	infos []os.FileInfo
}

// checkNotOpen returns ErrInUse if path names a file this process has open as a Log.
func checkNotOpen(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // absent (Open creates it) or unreadable (Open reports it)
	}
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	for _, o := range openFiles.infos {
		if os.SameFile(o, fi) {
			return fmt.Errorf("%w: %q is already open in this process (Close the first DB before opening it again)", ErrInUse, path)
		}
	}
	return nil
}

// registerOpen records that this process has path open; the returned function forgets it.
// A file that cannot be stat'ed is not recorded (bbolt's lock still guards it).
func registerOpen(path string) (forget func()) {
	fi, err := os.Stat(path)
	if err != nil {
		return func() {}
	}
	openFiles.mu.Lock()
	openFiles.infos = append(openFiles.infos, fi)
	openFiles.mu.Unlock()
	return func() {
		openFiles.mu.Lock()
		defer openFiles.mu.Unlock()
		for i, o := range openFiles.infos {
			if o == fi {
				openFiles.infos = append(openFiles.infos[:i], openFiles.infos[i+1:]...)
				return
			}
		}
	}
}
