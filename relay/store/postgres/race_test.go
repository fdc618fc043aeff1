//go:build race

package postgres

// raceEnabled: the race detector makes sync.Pool drop buffers on purpose,
// so allocation counts mean nothing.
const raceEnabled = true
