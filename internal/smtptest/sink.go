// Package smtptest is a capturing SMTP upstream for tests: a go-smtp server
// on 127.0.0.1 that records every transaction exactly as it arrived (envelope,
// parameters and the raw data bytes), answers as the test tells it to, and
// can go down and come back on the same port.
package smtptest

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// pollInterval is how often Start retries listening on the old port.
const pollInterval = 50 * time.Millisecond

// Sink is a capturing upstream MTA. Its zero value is not usable: start one
// with NewSink.
type Sink struct {
	t         testing.TB
	addr      string
	hashOnly  bool
	discard   bool
	tls       *tls.Config
	configure []func(*smtp.Server)
	auth      *authConfig
	listen    func(testing.TB) net.Listener

	mu        sync.Mutex
	srv       *smtp.Server
	ln        net.Listener
	msgs      []*Message
	discarded int        // messages accepted in Discard mode
	rejected  []*Message // transactions refused at DATA
	rcptRej   int        // RCPT commands refused
	mails     int        // MAIL commands that reached the sink
	datas     int        // DATA or BDAT transfers that reached the sink
	onMail    func(c *smtp.Conn, m *Message) error
	onRcpt    func(from, to string) *smtp.SMTPError
	onBody    func(c *smtp.Conn, m *Message, r io.Reader) error
	onData    func(m *Message) *smtp.SMTPError
	changed   chan struct{} // closed and replaced whenever something is recorded
	wire      wireLog       // every byte received (wire.go)
}

// Rcpt is one RCPT TO with its parameters.
type Rcpt struct {
	Addr string
	Opts smtp.RcptOptions
}

// Message is one transaction as the sink received it.
type Message struct {
	From     string
	MailOpts smtp.MailOptions
	Rcpts    []Rcpt
	Helo     string
	Remote   string
	TLS      bool
	// User is who the client authenticated as ("" without AUTH).
	User string

	// Data is the message exactly as received (after dot-unstuffing), nil
	// in hash-only mode.
	Data []byte
	// Header is the header block including the empty line that ends it
	// (all of the message if it has no empty line), kept even in hash-only
	// mode.
	Header []byte
	// Size is the length of the whole message, BodySize that of the part
	// after the header block; Sum and BodySum are their SHA-256.
	Size     int64
	BodySize int64
	Sum      [32]byte
	BodySum  [32]byte
	At       time.Time
}

// Body is the part after the header block (Data must have been kept).
func (m *Message) Body() []byte {
	if m.Data == nil {
		return nil
	}
	return m.Data[len(m.Header):]
}

// RcptAddrs lists the recipients' addresses.
func (m *Message) RcptAddrs() []string {
	var out []string
	for _, r := range m.Rcpts {
		out = append(out, r.Addr)
	}
	return out
}

// Option configures NewSink.
type Option func(*Sink)

// HashOnly keeps only the header block, sizes and hashes of each message,
// not its bytes (for very large messages).
func HashOnly() Option { return func(s *Sink) { s.hashOnly = true } }

// Discard reads each message and drops it: nothing is kept or hashed, only
// counted (Accepted), so a benchmark measures the client, not the sink.
func Discard() Option { return func(s *Sink) { s.discard = true } }

// StartTLS offers STARTTLS with cfg.
func StartTLS(cfg *tls.Config) Option { return func(s *Sink) { s.tls = cfg } }

// Configure changes the go-smtp server after the sink's defaults are set
// (unlimited sizes, SMTPUTF8 and DSN on), each time it starts: to turn an
// extension off, set a size limit or allow AUTH without TLS. A nil f
// changes nothing.
func Configure(f func(*smtp.Server)) Option {
	return func(s *Sink) {
		if f != nil {
			s.configure = append(s.configure, f)
		}
	}
}

// Listen makes the sink listen with f instead of on 127.0.0.1:0 (a test
// harness that hands out ports from its own range).
func Listen(f func(testing.TB) net.Listener) Option { return func(s *Sink) { s.listen = f } }

type authConfig struct {
	mechs     []string
	newServer func(mech string, done func(user string)) (sasl.Server, error)
}

// Auth offers AUTH with mechs. newServer makes the SASL server for one
// exchange and calls done with the user once it has accepted them; that
// user is then recorded in each Message.User of the connection.
func Auth(mechs []string, newServer func(mech string, done func(user string)) (sasl.Server, error)) Option {
	return func(s *Sink) { s.auth = &authConfig{mechs: mechs, newServer: newServer} }
}

// PlainAuth offers AUTH PLAIN, accepting the users for which check returns
// nil (535 otherwise).
func PlainAuth(check func(user, pass string) error) Option {
	return Auth([]string{sasl.Plain}, func(_ string, done func(string)) (sasl.Server, error) {
		return sasl.NewPlainServer(func(_, user, pass string) error {
			if err := check(user, pass); err != nil {
				return smtp.ErrAuthFailed
			}
			done(user)
			return nil
		}), nil
	})
}

// NewSink starts a sink on a free port of 127.0.0.1; it is closed when the
// test ends.
func NewSink(t testing.TB, opts ...Option) *Sink {
	t.Helper()
	s := &Sink{t: t, changed: make(chan struct{}), listen: listenLocal}
	for _, o := range opts {
		o(s)
	}
	l := s.listen(t)
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(func() { s.Stop() })
	return s
}

func listenLocal(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	return l
}

// Addr is where the sink listens (it keeps the port across Stop and Start).
func (s *Sink) Addr() string { return s.addr }

func (s *Sink) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "sink.example.net"
	srv.MaxLineLength = 0 // unlimited: the sink must not be the limit under test
	srv.MaxMessageBytes = 0
	srv.MaxRecipients = 0
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.TLSConfig = s.tls
	srv.ErrorLog = log.New(io.Discard, "", 0)
	for _, f := range s.configure {
		f(srv)
	}
	s.mu.Lock()
	s.srv, s.ln = srv, l
	s.mu.Unlock()
	go srv.Serve(wireListener{Listener: l, log: &s.wire})
}

// Stop closes the listener and every connection: the upstream is down and
// connections to it are refused.
func (s *Sink) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// Close the listener here too: srv.Close only closes listeners
		// that Serve has registered, and Serve may not have started yet.
		ln.Close()
		srv.Close()
	}
}

// Start brings a stopped sink back on the same port.
func (s *Sink) Start() {
	s.t.Helper()
	s.mu.Lock()
	up := s.srv != nil
	s.mu.Unlock()
	if up {
		return
	}
	var l net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sink: listen again on %s: %v", s.addr, err)
		}
		time.Sleep(pollInterval)
	}
	s.serve(l)
}

// OnMail sets a hook run at MAIL FROM with the transaction begun so far
// (From, MailOpts, Helo, User…): it returns nil to accept or the error to
// answer with, and may misbehave with the connection (close it). nil
// removes the hook.
func (s *Sink) OnMail(f func(c *smtp.Conn, m *Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMail = f
}

// OnRcpt sets the reply to RCPT TO: f returns nil to accept or the error to
// answer with. nil restores accepting everything.
func (s *Sink) OnRcpt(f func(from, to string) *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRcpt = f
}

// OnBody sets a hook run when the data starts, before the sink reads it: it
// may read part of r itself, close the connection, or return an error to
// answer with at once (the transaction is then not recorded). nil removes
// the hook.
func (s *Sink) OnBody(f func(c *smtp.Conn, m *Message, r io.Reader) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onBody = f
}

// OnData sets the reply after DATA (the message has been read in full and
// is passed to f): nil to accept it, or the error to answer with. A refused
// message is recorded in Rejected, not in Messages.
func (s *Sink) OnData(f func(m *Message) *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = f
}

// RejectRcpt answers RCPT TO:<addr> (any recipient if addr is "") with e.
func (s *Sink) RejectRcpt(addr string, e *smtp.SMTPError) {
	s.OnRcpt(func(_, to string) *smtp.SMTPError {
		if addr == "" || strings.EqualFold(to, addr) {
			return e
		}
		return nil
	})
}

// RejectData answers every message's DATA with e.
func (s *Sink) RejectData(e *smtp.SMTPError) {
	s.OnData(func(*Message) *smtp.SMTPError { return e })
}

// AcceptAll removes every rule set with OnMail, OnRcpt, OnBody, OnData,
// RejectRcpt or RejectData.
func (s *Sink) AcceptAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMail, s.onRcpt, s.onBody, s.onData = nil, nil, nil, nil
}

// SMTPErr builds an SMTP reply such as SMTPErr(550, "5.1.1", "no such user").
func SMTPErr(code int, enhanced string, msg string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, Message: msg}
	var c [3]int
	if n, _ := scanEnhanced(enhanced, &c); n == 3 {
		e.EnhancedCode = smtp.EnhancedCode(c)
	}
	return e
}

func scanEnhanced(s string, c *[3]int) (int, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return 0, errors.New("enhanced code needs three parts")
	}
	for i, p := range parts {
		n := 0
		for _, ch := range p {
			if ch < '0' || ch > '9' {
				return i, errors.New("enhanced code: not a number")
			}
			n = n*10 + int(ch-'0')
		}
		c[i] = n
	}
	return 3, nil
}

// Messages returns the messages accepted so far, oldest first (none in
// Discard mode).
func (s *Sink) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Count is the number of accepted messages (kept ones; see Accepted).
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Accepted is the number of accepted messages, kept or discarded.
func (s *Sink) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs) + s.discarded
}

// Rejected returns the transactions refused at DATA.
func (s *Sink) Rejected() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejected)
}

// RejectedRcpts counts RCPT commands the sink refused.
func (s *Sink) RejectedRcpts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcptRej
}

// Connections counts the connections the sink has accepted (a STARTTLS
// on one of them does not count again, though go-smtp starts a new
// session).
func (s *Sink) Connections() int {
	s.wire.mu.Lock()
	defer s.wire.mu.Unlock()
	return len(s.wire.conns)
}

// Mails counts the MAIL commands that reached the sink (accepted or not).
func (s *Sink) Mails() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mails
}

// DataTransfers counts the DATA commands (or BDAT transfers) that reached
// the sink, whatever their outcome.
func (s *Sink) DataTransfers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.datas
}

// Changed returns a channel closed the next time the sink records anything.
func (s *Sink) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor waits until at least n messages have been accepted and returns
// them; it fails the test after timeout.
func (s *Sink) WaitFor(t testing.TB, n int, timeout time.Duration) []*Message {
	t.Helper()
	return s.WaitUntil(t, timeout, "the upstream sink to receive messages", func(ms []*Message) bool { return len(ms) >= n })
}

// WaitUntil waits until cond holds for the accepted messages.
func (s *Sink) WaitUntil(t testing.TB, timeout time.Duration, what string, cond func([]*Message) bool) []*Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		ch := s.Changed()
		ms := s.Messages()
		if cond(ms) {
			return ms
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s; it has %d message(s)%s", timeout, what, len(ms), describe(ms))
		}
	}
}

func describe(ms []*Message) string {
	var b strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&b, "\n  #%d MAIL FROM:<%s> RCPT TO:%s (%d bytes)", i+1, m.From, strings.Join(m.RcptAddrs(), ","), m.Size)
	}
	return b.String()
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	if s.auth != nil {
		return &authSession{session: session{s: s, conn: c}}, nil
	}
	return &session{s: s, conn: c}, nil
}

// session is one connection. m is the transaction under way; user is who
// authenticated on this connection.
type session struct {
	s    *Sink
	conn *smtp.Conn
	m    *Message
	user string
}

func (ss *session) Reset()        { ss.m = nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	_, isTLS := ss.conn.TLSConnectionState()
	m := &Message{From: from, Helo: ss.conn.Hostname(), Remote: ss.conn.Conn().RemoteAddr().String(), TLS: isTLS, User: ss.user}
	if opts != nil {
		m.MailOpts = *opts
	}
	ss.s.mu.Lock()
	ss.s.mails++
	ss.s.notifyLocked()
	f := ss.s.onMail
	ss.s.mu.Unlock()
	if f != nil {
		if err := f(ss.conn, m); err != nil {
			return err
		}
	}
	ss.m = m
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	f := ss.s.onRcpt
	ss.s.mu.Unlock()
	if f != nil {
		if e := f(ss.m.From, to); e != nil {
			ss.s.mu.Lock()
			ss.s.rcptRej++
			ss.s.notifyLocked()
			ss.s.mu.Unlock()
			return e
		}
	}
	r := Rcpt{Addr: to}
	if opts != nil {
		r.Opts = *opts
	}
	ss.m.Rcpts = append(ss.m.Rcpts, r)
	return nil
}

// maxHeaderKept bounds the header block kept in hash-only mode.
const maxHeaderKept = 4 << 20

func (ss *session) Data(r io.Reader) error {
	m := ss.m
	ss.m = nil
	ss.s.mu.Lock()
	ss.s.datas++
	onBody, discard := ss.s.onBody, ss.s.discard
	ss.s.mu.Unlock()
	if onBody != nil {
		if err := onBody(ss.conn, m, r); err != nil {
			return err
		}
	}
	if discard {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		ss.s.mu.Lock()
		ss.s.discarded++
		ss.s.mu.Unlock()
		return nil
	}
	w := &capture{keep: !ss.s.hashOnly, all: sha256.New(), body: sha256.New()}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	w.finish(m)
	m.At = time.Now()

	ss.s.mu.Lock()
	f := ss.s.onData
	ss.s.mu.Unlock()
	var e *smtp.SMTPError
	if f != nil {
		e = f(m)
	}
	ss.s.mu.Lock()
	if e != nil {
		ss.s.rejected = append(ss.s.rejected, m)
	} else {
		ss.s.msgs = append(ss.s.msgs, m)
	}
	ss.s.notifyLocked()
	ss.s.mu.Unlock()
	if e != nil {
		return e
	}
	return nil
}

// authSession is a session that offers AUTH (go-smtp looks for the
// AuthSession interface, so a sink without Auth must not implement it).
type authSession struct{ session }

func (as *authSession) AuthMechanisms() []string { return as.s.auth.mechs }

func (as *authSession) Auth(mech string) (sasl.Server, error) {
	return as.s.auth.newServer(mech, func(user string) { as.user = user })
}
