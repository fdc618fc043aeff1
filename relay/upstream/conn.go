// Package upstream is a small SMTP client for delivering to one upstream MTA.
//
// It exists instead of go-smtp's client because that one neither pipelines
// (RFC 2920) nor buffers its DATA writer, so each command costs a write and
// a read syscall and each body byte a buffered call. Here the envelope of a
// transaction goes out in one flush and the body in as few as its size
// allows.
package upstream

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/config"
)

// ErrNetwork marks failures to talk to the upstream at all (dial, I/O,
// timeouts, malformed replies, 421), as opposed to a reply it gave about a
// transaction. Such a Conn is unusable; the failure is always temporary.
var ErrNetwork = errors.New("upstream unreachable")

// Config says how to reach the upstream.
type Config struct {
	Address string // host:port
	// Helo is the name given in EHLO (and in HELO if EHLO is refused).
	Helo string
	// TLS is none, opportunistic or required ("" means none).
	TLS config.UpstreamTLS
	// TLSConfig is used for STARTTLS. The caller builds it (RootCAs,
	// InsecureSkipVerify for opportunistic); an empty ServerName is taken
	// from Address.
	TLSConfig *tls.Config
	// Username and Password enable AUTH PLAIN when Username != "". The
	// password is only sent over TLS or to a loopback address.
	Username, Password string
	ConnectTimeout     time.Duration
	// CommandTimeout bounds each reply, and each write to the socket
	// (so a large body gets it per buffer-full, not in total). 0: none.
	CommandTimeout time.Duration
}

const (
	writeBufSize = 32 << 10
	readBufSize  = 4 << 10 // also the longest reply line accepted
	quitTimeout  = 2 * time.Second
)

// Conn is one connection to the upstream. It is not safe for concurrent use.
type Conn struct {
	nc      net.Conn // the TCP or TLS connection
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	tls     bool
	ext     map[string]string // EHLO keywords (upper case) to their parameters
	feat    features

	// broken is the failure after which the connection was closed.
	broken error
	// needRset is set when a transaction was left open (MAIL accepted, no
	// DATA completed); the next Send puts RSET in front of its MAIL, in the
	// same flush when pipelining, instead of spending a round trip now.
	needRset bool

	code int       // the last reply's code
	text []byte    // the last reply's text, lines joined by "\n"
	line []byte    // scratch for building commands
	dot  dotWriter // reused so Send does not allocate one per body
}

// features caches the EHLO keywords Send consults for every transaction.
type features struct {
	pipelining, dsn, size, eightBit, utf8 bool
	maxSize                               int64
}

// netWriter gives every write to the socket a fresh deadline: a flush of
// the envelope and each buffer-full of a large body alike.
type netWriter struct{ c *Conn }

func (w netWriter) Write(p []byte) (int, error) {
	if w.c.timeout > 0 {
		_ = w.c.nc.SetWriteDeadline(time.Now().Add(w.c.timeout))
	}
	return w.c.nc.Write(p)
}

func newConn(nc net.Conn, timeout time.Duration) *Conn {
	c := &Conn{nc: nc, timeout: timeout}
	c.r = bufio.NewReaderSize(nc, readBufSize)
	c.w = bufio.NewWriterSize(netWriter{c}, writeBufSize)
	c.dot.w = c.w
	return c
}

// TLS reports whether the connection is encrypted (STARTTLS succeeded).
func (c *Conn) TLS() bool { return c.tls }

// Supports reports whether the upstream's EHLO reply listed the keyword
// ext (case-insensitive).
func (c *Conn) Supports(ext string) bool {
	_, ok := c.ext[strings.ToUpper(ext)]
	return ok
}

// MaxSize is the upstream's SIZE limit in bytes, 0 when it set none.
func (c *Conn) MaxSize() int64 { return c.feat.maxSize }

// Reset sends RSET, ending any transaction the upstream still holds open.
func (c *Conn) Reset() error {
	if err := c.simple("RSET"); err != nil {
		return err
	}
	c.needRset = false
	return nil
}

// Noop sends NOOP, to check that an idle connection still works.
func (c *Conn) Noop() error { return c.simple("NOOP") }

// simple runs a command whose only interesting reply is 2xx: it returns
// nil, the upstream's *smtp.SMTPError, or an ErrNetwork failure.
func (c *Conn) simple(cmd string) error {
	if c.broken != nil {
		return c.unusable()
	}
	c.writeLine(cmd)
	if err := c.flush(); err != nil {
		return err
	}
	se, err := c.expect(2)
	if err != nil {
		return err
	}
	if se != nil {
		return se
	}
	return nil
}

// Close says QUIT (best effort, with a short deadline, so a hung upstream
// does not hold up the caller) and closes the connection.
func (c *Conn) Close() error {
	if c.broken != nil {
		return nil // already closed by fail
	}
	c.broken = errors.New("connection closed")
	t := quitTimeout
	if c.timeout > 0 && c.timeout < t {
		t = c.timeout
	}
	_ = c.nc.SetDeadline(time.Now().Add(t))
	c.timeout = 0 // keep that deadline for QUIT's write and reply
	c.writeLine("QUIT")
	if c.w.Flush() == nil {
		_, _, _ = readReply(c.r, c.text[:0])
	}
	return c.nc.Close()
}

// writeLine buffers one command line; errors surface at the flush.
func (c *Conn) writeLine(s string) {
	_, _ = c.w.WriteString(s)
	_, _ = c.w.WriteString("\r\n")
}

// flush sends what is buffered; a failure breaks the connection.
func (c *Conn) flush() error {
	if err := c.w.Flush(); err != nil {
		return c.fail(fmt.Errorf("%w: %w", ErrNetwork, err))
	}
	return nil
}

// fail records a connection-level failure and closes the socket: after a
// lost reply or half a body the stream's state is unknown, and no further
// command may be written on it.
func (c *Conn) fail(err error) error {
	if c.broken == nil {
		c.broken = err
		_ = c.nc.Close()
	}
	return err
}

// Usable reports whether the connection can take another transaction: it
// has not failed or been closed. After a reply refusing a transaction it
// still can.
func (c *Conn) Usable() bool { return c.broken == nil }

func (c *Conn) unusable() error {
	return fmt.Errorf("%w: connection unusable after an earlier failure: %v", ErrNetwork, c.broken)
}

// expect reads one reply and sorts it: nil, nil when its class (first
// digit) is class; the reply as *smtp.SMTPError when it is another one; an
// ErrNetwork error (the connection failed) for I/O trouble, a malformed
// reply, or 421, with which the upstream announces it is closing.
func (c *Conn) expect(class int) (*smtp.SMTPError, error) {
	if c.timeout > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.timeout))
	}
	code, text, err := readReply(c.r, c.text[:0])
	c.code, c.text = code, text
	if err != nil {
		return nil, c.fail(fmt.Errorf("%w: %w", ErrNetwork, err))
	}
	if code/100 == class {
		return nil, nil
	}
	se := replyError(code, c.text)
	if code == 421 {
		return nil, c.fail(fmt.Errorf("%w: %w", ErrNetwork, se))
	}
	return se, nil
}
