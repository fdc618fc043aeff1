//go:build !linux

package control

import "net"

// peerUID is unknown off Linux; the caller falls back to the relay's own
// user, which the socket's 0600 permissions make the only possible peer
// (root aside).
func peerUID(net.Conn) (int, bool) { return 0, false }
