package smtptest

import (
	"bytes"
	"net"
	"sync"
)

// wireLog keeps every byte clients sent to a Sink, per connection, exactly
// as it came off the socket (before go-smtp parsed or unstuffed anything):
// the sink is then a byte-logging upstream.
type wireLog struct {
	mu    sync.Mutex
	conns []*bytes.Buffer
}

type wireListener struct {
	net.Listener
	log *wireLog
}

func (l wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.log.mu.Lock()
	b := &bytes.Buffer{}
	l.log.conns = append(l.log.conns, b)
	l.log.mu.Unlock()
	return &wireConn{Conn: c, log: l.log, buf: b}, nil
}

type wireConn struct {
	net.Conn
	log *wireLog
	buf *bytes.Buffer
}

func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.log.mu.Lock()
		c.buf.Write(p[:n])
		c.log.mu.Unlock()
	}
	return n, err
}

// Wire returns what clients sent the sink, one entry per connection in the
// order they were accepted, byte for byte (in clear text: a sink with TLS
// logs the ciphertext after STARTTLS).
func (s *Sink) Wire() [][]byte {
	s.wire.mu.Lock()
	defer s.wire.mu.Unlock()
	out := make([][]byte, len(s.wire.conns))
	for i, b := range s.wire.conns {
		out[i] = bytes.Clone(b.Bytes())
	}
	return out
}

// WireText is Wire joined into one string, connections in order.
func (s *Sink) WireText() string {
	return string(bytes.Join(s.Wire(), nil))
}
