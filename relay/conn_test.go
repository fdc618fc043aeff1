package relay

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair is both ends of a loopback TCP connection: the server's end
// wrapped as the listener wraps it (idle as given), and the client's.
func tcpPair(t *testing.T, idle time.Duration) (*guardedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	g := &guardedConn{Conn: server, idle: idle}
	t.Cleanup(func() { g.Close(); client.Close() })
	return g, client
}

// readWithin runs one Read on c and returns its result, failing the test if
// it has not returned after d: a guard against a hang, not a measurement.
func readWithin(t *testing.T, c net.Conn, d time.Duration) (int, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.Read(make([]byte, 64))
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-time.After(d):
		t.Fatalf("Read still blocked after %v", d)
		return 0, nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// After a DATA timeout the reply must go out at once. go-smtp first drains
// the rest of the message: endReads makes that drain fail at once, even
// with a long idle deadline and a client that is still sending, and the
// reply that follows is the connection's last.
func TestGuardedConnEndReads(t *testing.T) {
	g, client := tcpPair(t, time.Hour)
	if _, err := client.Write([]byte("Subject: x\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := readWithin(t, g, 10*time.Second); err != nil || n == 0 {
		t.Fatalf("Read before endReads = %d, %v; want the client's bytes", n, err)
	}

	g.setHardDeadline(time.Now().Add(time.Hour))
	g.closeAfterNextWrite()
	g.endReads()
	g.releaseAtNextReply()
	// A trickling client: bytes keep arriving, and still the drain ends.
	if _, err := client.Write([]byte("more\r\n")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n, err := readWithin(t, g, 10*time.Second); !isTimeout(err) {
			t.Fatalf("Read after endReads = %d, %v; want a timeout at once", n, err)
		}
	}

	// The reply then reaches the client intact, although it left unread
	// bytes behind (closed at once, the socket would answer with a reset),
	// and the connection ends as soon as the client closes its half.
	type result struct {
		got []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(client)
		client.Close()
		read <- result{got, err}
	}()
	reply := "421 4.4.2 Timeout during data transfer\r\n"
	if _, err := g.Write([]byte(reply)); err != nil {
		t.Fatalf("reply: %v", err)
	}
	r := <-read
	if r.err != nil {
		t.Fatalf("client read: %v (want the reply, then the end of the connection)", r.err)
	}
	if string(r.got) != reply {
		t.Errorf("client got %q, want %q and then EOF", r.got, reply)
	}
	if !g.closed.Load() {
		t.Error("connection not closed after its last reply")
	}
}

// The hard deadline bounds reads through interim replies and ends with the
// first reply after releaseAtNextReply.
func TestGuardedConnHardDeadline(t *testing.T) {
	g, client := tcpPair(t, time.Hour)
	g.setHardDeadline(time.Now().Add(-time.Second))
	if _, err := readWithin(t, g, 10*time.Second); !isTimeout(err) {
		t.Fatalf("Read past the hard deadline: %v, want a timeout", err)
	}
	if _, err := g.Write([]byte("250 2.0.0 Continue\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := readWithin(t, g, 10*time.Second); !isTimeout(err) {
		t.Fatalf("Read after an interim reply: %v, want the hard deadline still in force", err)
	}
	g.releaseAtNextReply()
	if _, err := g.Write([]byte("421 4.4.2 Timeout\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("QUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := readWithin(t, g, 10*time.Second); err != nil || n == 0 {
		t.Fatalf("Read after the reply = %d, %v; want the hard deadline gone", n, err)
	}
}
