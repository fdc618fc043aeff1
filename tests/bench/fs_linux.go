package bench

import "syscall"

// isTmpfs reports whether dir is on a tmpfs (memory, where fsync is free).
func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return false
	}
	return st.Type == 0x01021994 // TMPFS_MAGIC
}
