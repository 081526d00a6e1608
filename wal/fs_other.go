//go:build !(linux || darwin || freebsd)

package wal

// diskFree is unknown here: checkpoints never run in steps.
func diskFree(string) (int64, bool) { return 0, false }

// syncDir is not possible here (Windows cannot open a directory for fsync); NTFS journals
// the new entry with the file's metadata.
func syncDir(string) error { return nil }
