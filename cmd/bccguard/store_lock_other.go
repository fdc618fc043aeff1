//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// lockDataDir does nothing where flock is not available.
func lockDataDir(string) (func(), error) { return func() {}, nil }
