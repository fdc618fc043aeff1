package relay

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// guardedConn wraps a client connection so that bccguard, not go-smtp,
// controls its deadlines and its end.
//
// go-smtp sets a read deadline per command line but not during DATA, where
// its ReadTimeout would bound the whole transfer and a timeout turns into a
// 5xx (upstream issue #196). Here every Read gets the earlier of an idle
// deadline (no byte for idle) and a hard deadline (the whole DATA), and a
// reply marked closeAfterNextWrite is followed by closing the connection, so
// the rest of a broken DATA stream is never parsed as commands.
type guardedConn struct {
	net.Conn
	idle time.Duration

	mu         sync.Mutex
	hard       time.Time // zero: none
	clearHard  bool      // clear hard at the next reply
	closeAfter bool
	closed     atomic.Bool
	release    func()
}

func (c *guardedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	d := time.Time{}
	if c.idle > 0 {
		d = time.Now().Add(c.idle)
	}
	if !c.hard.IsZero() && (d.IsZero() || c.hard.Before(d)) {
		d = c.hard
	}
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *guardedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	closeNow := c.closeAfter
	if c.clearHard {
		c.hard, c.clearHard = time.Time{}, false
	}
	c.mu.Unlock()
	if closeNow {
		c.closeAfterReply()
	}
	return n, err
}

// How long, and for how many bytes, a connection closed after its last
// reply waits for the client to close its half.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

// closeAfterReply ends the connection without losing the reply just
// written: a socket closed with unread input makes the kernel send a reset,
// which can destroy the reply before the client has read it (a client that
// still sends after a timeout, or mid-message after "500 Line too long").
// So the sending half is shut first, and what the client still sends is
// read and dropped until it closes too, or for lingerTime at most.
func (c *guardedConn) closeAfterReply() {
	if c.closed.Load() {
		return
	}
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes))
	}
	c.Close()
}

// SetReadDeadline is called by go-smtp before each command; the deadlines
// are ours, so it is ignored.
func (c *guardedConn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline likewise only keeps the write side.
func (c *guardedConn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// setHardDeadline bounds every read until releaseAtNextReply is called and
// a reply has then been written. Interim replies (BDAT's "250 Continue")
// keep it in force.
func (c *guardedConn) setHardDeadline(t time.Time) {
	c.mu.Lock()
	c.hard, c.clearHard = t, false
	c.mu.Unlock()
}

// releaseAtNextReply ends the hard deadline once the next reply is written:
// after a failed DATA go-smtp drains the rest of the message before it
// replies, and that drain must not outlive the deadline either.
func (c *guardedConn) releaseAtNextReply() {
	c.mu.Lock()
	c.clearHard = true
	c.mu.Unlock()
}

// endReads makes every further read fail at once, as if the hard deadline
// had passed, until a reply after releaseAtNextReply. After a DATA timeout
// go-smtp drains the rest of the message before it writes the 421: a
// client that fell silent would get it only after a second idle period,
// and one that trickles bytes would keep the drain going until the hard
// deadline.
func (c *guardedConn) endReads() {
	c.mu.Lock()
	c.hard = time.Now()
	c.mu.Unlock()
}

// closeAfterNextWrite makes the next reply the last one.
func (c *guardedConn) closeAfterNextWrite() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
}

func (c *guardedConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.release != nil {
		c.release()
	}
	return c.Conn.Close()
}

// guardedListener caps concurrent connections: one over the cap is greeted
// with 421 and closed at once, rather than left waiting in the backlog as
// netutil.LimitListener would, so the client retries elsewhere or later.
type guardedListener struct {
	net.Listener
	max  int64
	idle time.Duration
	n    atomic.Int64
	// onAccept and onReject are called for each accepted and each refused
	// connection (metrics, logs).
	onAccept func()
	onReject func(net.Addr)

	mu    sync.Mutex
	conns map[*guardedConn]struct{}
}

// closeAll cuts every open connection. go-smtp's Close does nothing once
// Shutdown has begun, so the relay keeps its own list for the end of a
// shutdown that timed out.
func (l *guardedListener) closeAll() {
	l.mu.Lock()
	cs := make([]*guardedConn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max > 0 && l.n.Add(1) > l.max {
			l.n.Add(-1)
			if l.onReject != nil {
				l.onReject(c.RemoteAddr())
			}
			go refuse(c)
			continue
		}
		if l.max <= 0 {
			l.n.Add(1)
		}
		if l.onAccept != nil {
			l.onAccept()
		}
		g := &guardedConn{Conn: c, idle: l.idle}
		g.release = func() {
			l.n.Add(-1)
			l.mu.Lock()
			delete(l.conns, g)
			l.mu.Unlock()
		}
		l.mu.Lock()
		if l.conns == nil {
			l.conns = map[*guardedConn]struct{}{}
		}
		l.conns[g] = struct{}{}
		l.mu.Unlock()
		return g, nil
	}
}

func refuse(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("421 4.7.0 Too many connections, please try again later\r\n"))
	_ = c.Close()
}
