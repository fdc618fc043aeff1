package harness

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReplyTimeout bounds the wait for one reply on a raw connection.
const ReplyTimeout = 30 * time.Second

// Reply is one (possibly multi-line) SMTP reply.
type Reply struct {
	Code     int
	Enhanced string   // "5.7.1", or "" if the reply has none
	Lines    []string // the text of each line, without code and separator
}

var enhancedRe = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

// Text is the text of the last line, without the enhanced code.
func (r Reply) Text() string {
	if len(r.Lines) == 0 {
		return ""
	}
	last := r.Lines[len(r.Lines)-1]
	if r.Enhanced != "" {
		last = strings.TrimSpace(strings.TrimPrefix(last, r.Enhanced))
	}
	return last
}

// String renders the reply as it appeared on the wire (lines joined by " | ").
func (r Reply) String() string {
	if r.Code == 0 {
		return "(no reply)"
	}
	return fmt.Sprintf("%d %s", r.Code, strings.Join(r.Lines, " | "))
}

// Is reports whether the reply has this code and enhanced code ("" skips
// the enhanced code).
func (r Reply) Is(code int, enhanced string) bool {
	return r.Code == code && (enhanced == "" || r.Enhanced == enhanced)
}

// RawConn is a line-level SMTP client for checking exact replies,
// pipelining and misbehaving clients.
type RawConn struct {
	t        testing.TB
	conn     net.Conn
	r        *bufio.Reader
	Greeting Reply
}

// DialRaw connects to addr (from the source IP local, if not "") and reads
// the greeting; it fails the test if either fails.
func DialRaw(t testing.TB, addr, local string) *RawConn {
	t.Helper()
	conn, err := dial(addr, local, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &RawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	g, err := c.ReadReply()
	if err != nil {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	c.Greeting = g
	return c
}

// Write sends s exactly as given.
func (c *RawConn) Write(s string) error {
	c.conn.SetWriteDeadline(time.Now().Add(ReplyTimeout))
	_, err := io.WriteString(c.conn, s)
	return err
}

// WriteBytes sends b exactly as given.
func (c *RawConn) WriteBytes(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(ReplyTimeout))
	_, err := c.conn.Write(b)
	return err
}

// Cmd sends one command line (CRLF is added) and returns the reply; it fails
// the test if no reply comes.
func (c *RawConn) Cmd(line string) Reply {
	c.t.Helper()
	if err := c.Write(line + "\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	r, err := c.ReadReply()
	if err != nil {
		c.t.Fatalf("reply to %q: %v", line, err)
	}
	return r
}

// Expect sends a command and fails the test unless the reply has code (and
// enhanced code, if not "").
func (c *RawConn) Expect(line string, code int, enhanced string) Reply {
	c.t.Helper()
	r := c.Cmd(line)
	if !r.Is(code, enhanced) {
		c.t.Fatalf("%q: want %d %s, got %s", line, code, enhanced, r)
	}
	return r
}

// ReadReply reads one reply, waiting at most ReplyTimeout.
func (c *RawConn) ReadReply() (Reply, error) {
	return c.ReadReplyWithin(ReplyTimeout)
}

// ReadReplyWithin reads one reply, waiting at most d.
func (c *RawConn) ReadReplyWithin(d time.Duration) (Reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	return readReply(c.r)
}

func readReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if line != "" {
				return rep, fmt.Errorf("reply cut off after %q: %w", line, err)
			}
			return rep, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return rep, fmt.Errorf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || (rep.Code != 0 && code != rep.Code) {
			return rep, fmt.Errorf("malformed reply line %q", line)
		}
		rep.Code = code
		sep, text := byte(' '), ""
		if len(line) > 3 {
			sep, text = line[3], line[4:]
		}
		rep.Lines = append(rep.Lines, text)
		if sep == ' ' {
			if f := strings.Fields(text); len(f) > 0 && enhancedRe.MatchString(f[0]) {
				rep.Enhanced = f[0]
			}
			return rep, nil
		}
		if sep != '-' {
			return rep, fmt.Errorf("malformed reply line %q", line)
		}
	}
}

// StartTLS sends STARTTLS, expects 220 and upgrades the connection.
func (c *RawConn) StartTLS(cfg *tls.Config) {
	c.t.Helper()
	c.Expect("STARTTLS", 220, "")
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(ReplyTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// WaitClosed reads until the server closes the connection or d passes; it
// returns the replies that came meanwhile and whether the connection was
// closed by the server (EOF or reset).
func (c *RawConn) WaitClosed(d time.Duration) ([]Reply, bool) {
	deadline := time.Now().Add(d)
	var got []Reply
	for {
		c.conn.SetReadDeadline(deadline)
		r, err := readReply(c.r)
		if err == nil {
			got = append(got, r)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return got, false
		}
		return got, true
	}
}

// Close closes the connection.
func (c *RawConn) Close() error { return c.conn.Close() }

// Conn is the underlying connection.
func (c *RawConn) Conn() net.Conn { return c.conn }

// Step is one write in a scripted conversation and how many replies it
// should produce.
type Step struct {
	Send    string
	Replies int
}

// Cmd is a step sending one command line (CRLF added) with one reply.
func Cmd(line string) Step { return Step{Send: line + "\r\n", Replies: 1} }

// Pipeline is a step sending several command lines in one write, with one
// reply each (RFC 2920).
func Pipeline(lines ...string) Step {
	return Step{Send: strings.Join(lines, "\r\n") + "\r\n", Replies: len(lines)}
}

// Content is a step sending message content after a 354; it must end with
// "\r\n.\r\n" and gets one reply.
func Content(data string) Step { return Step{Send: data, Replies: 1} }

// SendRaw connects to addr, runs the steps and returns every reply, the
// greeting first. It stops early, without failing, if the server closes the
// connection or stops answering, so a test can check where it ended.
func SendRaw(t testing.TB, addr string, steps ...Step) []Reply {
	t.Helper()
	c := DialRaw(t, addr, "")
	defer c.Close()
	replies := []Reply{c.Greeting}
	for _, s := range steps {
		if err := c.Write(s.Send); err != nil {
			return replies
		}
		for i := 0; i < s.Replies; i++ {
			r, err := c.ReadReply()
			if err != nil {
				return replies
			}
			replies = append(replies, r)
		}
	}
	return replies
}

// Greet connects to addr (from the source IP local, if not ""), reads the
// greeting, says QUIT if it was a 220, and closes.
func Greet(addr, local string) (Reply, error) {
	conn, err := dial(addr, local, 10*time.Second)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ReplyTimeout))
	r := bufio.NewReader(conn)
	g, err := readReply(r)
	if err == nil && g.Code == 220 {
		io.WriteString(conn, "QUIT\r\n")
		readReply(r)
	}
	return g, err
}
