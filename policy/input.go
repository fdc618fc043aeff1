package policy

import "net/netip"

// Input is what the relay saw of one message, handed to the policy at the
// end of DATA.
type Input struct {
	// Listener is the name of the listener the message came in on.
	Listener string
	ClientIP netip.Addr
	// User is the SMTP AUTH identity, empty if the client did not log in.
	User       string
	Sender     string
	Recipients []string
	Size       int64
	// Header is the raw header block as received (without bccguard's
	// Received: field).
	Header []byte
}
