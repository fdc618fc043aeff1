package harness

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestSinkPort: the harness's sink listens on a port from FreePort's range,
// and the harness's client sends to it byte for byte.
func TestSinkPort(t *testing.T) {
	s := NewSink(t)
	lo, hi := portRange()
	if p := portOf(t, s.Addr()); p < lo || p >= hi {
		t.Errorf("sink on port %d, outside [%d, %d)", p, lo, hi)
	}
	raw := CRLF("From: a@example.com\nSubject: hi\n\n.leading dot\n")
	Send(t, s.Addr(), "a@example.com", []string{"b@example.net"}, raw)
	if m := s.WaitFor(t, 1, 10*time.Second)[0]; !bytes.Equal(m.Data, raw) || m.Helo != ClientHelo {
		t.Errorf("got %q from %q", m.Data, m.Helo)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
