package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawConn is the server side of a hand-scripted SMTP session: the tests
// here check what goes over the wire and when, which a real server hides.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

const rawTimeout = 2 * time.Second

// rawServer accepts one connection on 127.0.0.1 and runs script on it.
// Cleanup waits for the script, so its t.Error calls count.
func rawServer(t testing.TB, script func(rc *rawConn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conn net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		script(&rawConn{t: t, c: c, r: bufio.NewReader(c)})
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		if conn != nil {
			_ = conn.SetDeadline(time.Now().Add(rawTimeout))
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

func (rc *rawConn) send(s string) {
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Errorf("server write: %v", err)
	}
}

// line reads one command line (without CRLF).
func (rc *rawConn) line() string {
	_ = rc.c.SetReadDeadline(time.Now().Add(rawTimeout))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Errorf("server read: %v (got %q)", err, l)
		return ""
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line and checks it.
func (rc *rawConn) expect(want string) {
	if got := rc.line(); got != want {
		rc.t.Errorf("server got %q, want %q", got, want)
	}
}

// lines reads until n command lines have arrived, without replying, and
// says in how many reads they came. A client that waited for a reply
// would make this time out.
func (rc *rawConn) lines(n int) ([]string, int) {
	if rc.r.Buffered() > 0 {
		rc.t.Errorf("unexpected buffered input")
		return nil, 0
	}
	var got []byte
	reads := 0
	buf := make([]byte, 4096)
	_ = rc.c.SetReadDeadline(time.Now().Add(rawTimeout))
	for strings.Count(string(got), "\r\n") < n {
		k, err := rc.c.Read(buf)
		reads++
		got = append(got, buf[:k]...)
		if err != nil {
			rc.t.Errorf("server read after %q: %v (the client waited for a reply?)", got, err)
			return nil, reads
		}
	}
	return strings.Split(strings.TrimSuffix(string(got), "\r\n"), "\r\n"), reads
}

// data reads a DATA body, as sent, up to and including the final dot.
func (rc *rawConn) data() string {
	var b strings.Builder
	for !strings.HasSuffix(b.String(), "\r\n.\r\n") && b.String() != ".\r\n" {
		_ = rc.c.SetReadDeadline(time.Now().Add(rawTimeout))
		l, err := rc.r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			rc.t.Errorf("server read body: %v", err)
			break
		}
	}
	return b.String()
}

// quiet checks that the client sends nothing more for d: it is waiting
// for our reply, in lock-step.
func (rc *rawConn) quiet(d time.Duration) {
	if rc.r.Buffered() > 0 {
		rc.t.Errorf("client sent more before the reply")
		return
	}
	_ = rc.c.SetReadDeadline(time.Now().Add(d))
	if _, err := rc.r.Peek(1); err == nil {
		rc.t.Errorf("client sent more before the reply")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		rc.t.Errorf("server read: %v", err)
	}
}

// expectClosed waits for the client to hang up (QUIT or not).
func (rc *rawConn) expectClosed(d time.Duration) {
	_ = rc.c.SetReadDeadline(time.Now().Add(d))
	_, _ = io.Copy(io.Discard, rc.r)
}

// quit answers the client's QUIT.
func (rc *rawConn) quit() {
	rc.expect("QUIT")
	rc.send("221 2.0.0 bye\r\n")
}

func isNetwork(err error) bool { return errors.Is(err, ErrNetwork) }
