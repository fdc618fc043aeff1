//go:build !linux

package embedded

import "os"

// datasync flushes a file's data; without fdatasync it is a full fsync.
func datasync(f *os.File) error { return f.Sync() }
