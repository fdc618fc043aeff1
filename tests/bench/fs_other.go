//go:build !linux

package bench

func isTmpfs(string) bool { return false }
