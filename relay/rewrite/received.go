package rewrite

import (
	"bytes"
	"fmt"
	"time"
)

// Received is the trace field (RFC 5321 4.4) bccguard writes above every
// message it accepts, ending in CRLF. It names no recipient ("for <...>"):
// in an exploded mailing that would be one more place a recipient list could
// show. Its shape is fixed (three lines), so that SplitStored can tell it
// from the original that follows.
func Received(helo, ip, host, proto, id string, at time.Time) string {
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (bccguard) with %s id %s;\r\n\t%s\r\n",
		helo, ip, host, proto, id, at.Format(time.RFC1123Z))
}

// SplitStored cuts bccguard's own Received: (see Received) off the top of a
// stored header block and returns it and the original header block as the
// client sent it. Without one, own is empty.
//
// The original must be read on its own: a first line that starts with white
// space would otherwise read as a continuation of bccguard's Received:,
// while the policy read it (without the Received:) as a line of its own.
func SplitStored(block []byte) (own, orig []byte) {
	rest := block
	for i := range 3 {
		j := bytes.Index(rest, []byte("\r\n"))
		if j < 0 {
			return nil, block
		}
		line := rest[:j]
		switch i {
		case 0:
			if !bytes.HasPrefix(line, []byte("Received: from ")) {
				return nil, block
			}
		case 1:
			if !bytes.HasPrefix(line, []byte("\tby ")) || !bytes.Contains(line, []byte(" (bccguard) with ")) {
				return nil, block
			}
		case 2:
			if len(line) < 2 || line[0] != '\t' {
				return nil, block
			}
			if _, err := time.Parse(time.RFC1123Z, string(line[1:])); err != nil {
				return nil, block
			}
		}
		rest = rest[j+2:]
	}
	n := len(block) - len(rest)
	return block[:n], block[n:]
}
