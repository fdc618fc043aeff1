package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/testcert"
)

// received is one message as the in-process go-smtp server took it.
type received struct {
	From     string
	MailOpts smtp.MailOptions
	Rcpts    []string
	RcptOpts []smtp.RcptOptions
	Data     string // after the server removed the dot-stuffing
}

// backend is a go-smtp Backend that records what it receives. Its hooks,
// set before the server starts, refuse or misbehave by address.
type backend struct {
	mail func(c *smtp.Conn, from string) error
	rcpt func(to string) error
	// data runs before the body is read; it may read part of r itself.
	data func(c *smtp.Conn, from string, r io.Reader) error
	auth func(user, pass string) error // nil: AUTH not offered
	// discard drops the messages instead of recording them (benchmarks).
	discard bool

	mu    sync.Mutex
	msgs  []received
	mails int // MAIL commands that reached the backend
	datas int // DATA commands that reached the backend
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, c: c}, nil
}

func (b *backend) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

func (b *backend) counts() (mails, datas int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mails, b.datas
}

type session struct {
	b   *backend
	c   *smtp.Conn
	cur received
}

func (s *session) Mail(from string, o *smtp.MailOptions) error {
	s.b.mu.Lock()
	s.b.mails++
	s.b.mu.Unlock()
	if s.b.mail != nil {
		if err := s.b.mail(s.c, from); err != nil {
			return err
		}
	}
	s.cur = received{From: from, MailOpts: *o}
	return nil
}

func (s *session) Rcpt(to string, o *smtp.RcptOptions) error {
	if s.b.rcpt != nil {
		if err := s.b.rcpt(to); err != nil {
			return err
		}
	}
	s.cur.Rcpts = append(s.cur.Rcpts, to)
	s.cur.RcptOpts = append(s.cur.RcptOpts, *o)
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.b.mu.Lock()
	s.b.datas++
	s.b.mu.Unlock()
	if s.b.data != nil {
		if err := s.b.data(s.c, s.cur.From, r); err != nil {
			return err
		}
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.b.discard {
		return nil
	}
	s.cur.Data = string(body)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

func (s *session) AuthMechanisms() []string {
	if s.b.auth == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if err := s.b.auth(user, pass); err != nil {
			return smtp.ErrAuthFailed
		}
		return nil
	}), nil
}

// countingListener counts accepted connections (Dial's TLS fallback
// makes two).
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// testServer is a go-smtp server on 127.0.0.1.
type testServer struct {
	addr string
	be   *backend
	l    *countingListener
}

// startServer runs a go-smtp server for be; configure sets its options.
func startServer(t testing.TB, be *backend, configure func(*smtp.Server)) *testServer {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "mx.example"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if configure != nil {
		configure(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	go func() { _ = srv.Serve(cl) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &testServer{addr: l.Addr().String(), be: be, l: cl}
}

func (ts *testServer) config() Config {
	return Config{
		Address:        ts.addr,
		Helo:           "relay.example",
		TLS:            "none",
		ConnectTimeout: 5 * time.Second,
		CommandTimeout: 5 * time.Second,
	}
}

// dial connects to ts and closes the Conn at the end of the test.
func (ts *testServer) dial(t testing.TB) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), ts.config())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// selfSigned makes a certificate for mx.example and 127.0.0.1, and a pool
// that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	c := testcert.New(t, "mx.example", "127.0.0.1")
	return c.TLS, c.Pool
}

// body returns a Body func writing s.
func body(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}
