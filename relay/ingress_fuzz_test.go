package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/lineend"
	"github.com/bccguard/bccguard/relay/upstream"
)

// FuzzIngressToUpstream drives arbitrary client bytes and an arbitrary
// RCPT TO path through the ingress exactly as the relay reads them
// (go-smtp's patched server and DATA or BDAT reader, envelopeAddr,
// contentReader with either bare_newlines mode) and then out through the
// upstream writer (relay/upstream.Conn) to a go-smtp server. The invariant
// is the issue's: what the upstream receives is, byte for byte, what the
// policy saw (the header block it parsed and the body it scanned), and the
// recipient it receives is the one the policy saw. Also: no bare CR or LF
// ever reaches the upstream, and with reject nothing with one is accepted.
func FuzzIngressToUpstream(f *testing.F) {
	for _, c := range []struct {
		data, rcpt string
		normalize  bool
		bdat       bool
	}{
		{"Subject: a\r\n\r\nbody\r\n", "ann@example.com", false, false},
		{"Subject: s\r\n\r\nhello\r.\rMAIL FROM:<admin@bank.example>\r\n", "ann@example.com", true, false},
		{"Subject: x\rBcc: v5@secret.example\r\n\r\nb\r\n", "ann@example.com", true, false},
		{"a\r\n.\nb\r\n..c\r\n", `"victim@evil.example"@c.example`, true, false},
		{"w\r.\r.end\r", `"u,v"@c.example`, true, true},
		{"x\n.\r\ny\r\n", `"u\\"@c.example`, false, false},
		{"\r\r\nz\r\n", "u@c.example\x00@evil.example", true, false},
		{"To: a@example.com\r\n\r\n.\r\nRSET\r\n", "zoé@exämple.example", true, false},
	} {
		f.Add([]byte(c.data), c.rcpt, c.normalize, c.bdat)
	}
	h := newIngressHarness(f)
	f.Fuzz(func(t *testing.T, data []byte, rcpt string, normalize, bdat bool) {
		if strings.ContainsAny(rcpt, "\r\n>") || len(rcpt) > 300 || len(data) > 64<<10 {
			return // not one path on one command line
		}
		mode := lineend.Reject
		if normalize {
			mode = lineend.Normalize
		}
		got := h.ingress(t, data, rcpt, mode, bdat)
		if got.rcptErr != nil {
			return // refused at RCPT: nothing to deliver
		}
		if got.dataErr != nil {
			var tl *lineend.LineTooLongError
			bareErr := errors.Is(got.dataErr, lineend.ErrBareCR) || errors.Is(got.dataErr, lineend.ErrBareLF)
			if !(bareErr && mode == lineend.Reject) && !errors.As(got.dataErr, &tl) && !errors.Is(got.dataErr, errHeaderTooBig) {
				t.Fatalf("mode %s: data %q refused: %v", mode, data, got.dataErr)
			}
			return
		}
		seen := append(bytes.Clone(got.head), got.body...)
		if i := bareAt(seen); i >= 0 {
			t.Fatalf("mode %s: the policy saw a bare line end at %d in %q", mode, i, seen)
		}
		// Nothing dropped or added but what the mode says: the content
		// the client sent (RFC 5321 transparency undone, by a reference
		// decoder), its bare CRs and LFs made CRLF.
		content := data
		if !bdat {
			content = referenceContent(append(bytes.Clone(data), "\r\n.\r\n"...))
		}
		want, bare := lineend.Normalized(content)
		if mode == lineend.Reject && bare > 0 {
			t.Fatalf("reject: content %q with %d bare line ends was accepted", content, bare)
		}
		if !bytes.Equal(seen, want) {
			t.Fatalf("the client sent %q (content %q); the policy saw %q, want %q", data, content, seen, want)
		}
		// The spool holds the relay's Received: field and then this.
		stored := append([]byte("Received: from fuzz\r\n"), seen...)
		wire, wireRcpt := h.deliver(t, got.rcpt, stored)
		if !bytes.Equal(wire, stored) {
			t.Fatalf("the upstream received\n%q\nthe policy saw\n%q", wire, stored)
		}
		back, err := envelopeAddr(wireRcpt, true, false)
		if err != nil || back != got.rcpt {
			t.Fatalf("the upstream got RCPT TO:<%s> = %q (%v), the policy saw %q", wireRcpt, back, err, got.rcpt)
		}
	})
}

// referenceContent decodes DATA the obvious way: lines end at CRLF only; a
// line "." ends the data; a "." that starts a line and is followed by
// anything but CR or LF is the transparency dot and goes; every other
// byte stays.
func referenceContent(wire []byte) []byte {
	var out []byte
	atStart := true
	for i := 0; i < len(wire); i++ {
		if atStart {
			if bytes.HasPrefix(wire[i:], []byte(".\r\n")) {
				return out
			}
			if wire[i] == '.' && i+1 < len(wire) && wire[i+1] != '\r' && wire[i+1] != '\n' {
				i++
			}
		}
		out = append(out, wire[i])
		atStart = wire[i] == '\n' && i > 0 && wire[i-1] == '\r'
	}
	return out
}

func bareAt(b []byte) int {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') || c == '\n' && (i == 0 || b[i-1] != '\r') {
			return i
		}
	}
	return -1
}

// ingressHarness is the ingress (a go-smtp server on in-memory pipes) and an
// upstream (a go-smtp server on loopback) with one upstream.Conn to it,
// shared by every input.
type ingressHarness struct {
	pipes chan net.Conn
	up    *upstream.Conn
	upSrv *captureBackend

	mu   sync.Mutex
	mode lineend.Mode
	got  ingressResult
}

type ingressResult struct {
	rcpt             string // as the policy saw it
	rcptErr, dataErr error  // refused at RCPT, at the end of the data
	head, body       []byte
}

func newIngressHarness(f *testing.F) *ingressHarness {
	h := &ingressHarness{pipes: make(chan net.Conn), upSrv: &captureBackend{}}
	in := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &ingressSession{h: h}, nil }))
	in.Domain, in.MaxLineLength, in.EnableSMTPUTF8 = "ingress.example", maxCommandLine, true
	in.ErrorLog = log.New(io.Discard, "", 0)
	go in.Serve(pipeListener{h.pipes})
	f.Cleanup(func() { in.Close() })

	out := smtp.NewServer(h.upSrv)
	out.Domain, out.MaxLineLength, out.EnableSMTPUTF8 = "upstream.example", 0, true
	out.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go out.Serve(ln)
	f.Cleanup(func() { out.Close() })
	h.up, err = upstream.Dial(context.Background(), upstream.Config{Address: ln.Addr().String(), Helo: "bccguard.example",
		ConnectTimeout: 5 * time.Second, CommandTimeout: 10 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.up.Close() })
	return h
}

// ingress sends MAIL, RCPT and the data (DATA with an end marker added, or
// one BDAT LAST chunk) on a new connection and returns what the session
// made of it.
func (h *ingressHarness) ingress(t *testing.T, data []byte, rcpt string, mode lineend.Mode, bdat bool) ingressResult {
	h.mu.Lock()
	h.mode, h.got = mode, ingressResult{}
	h.mu.Unlock()
	client, server := net.Pipe()
	defer client.Close()
	h.pipes <- server
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(client)
	reply := func() int {
		code, _, err := tp.ReadResponse(0)
		if err != nil {
			t.Fatalf("ingress reply: %v", err)
		}
		return code
	}
	cmd := func(s string) int {
		if _, err := io.WriteString(client, s+"\r\n"); err != nil {
			t.Fatal(err)
		}
		return reply()
	}
	reply() // greeting
	cmd("EHLO client.example")
	cmd("MAIL FROM:<sender@brand.example> SMTPUTF8")
	if cmd("RCPT TO:<"+rcpt+">") != 250 {
		// By envelopeAddr, or by go-smtp's path syntax before it.
		return ingressResult{rcptErr: errors.New("RCPT refused")}
	}
	var wire []byte
	if bdat {
		wire = append([]byte(fmt.Sprintf("BDAT %d LAST\r\n", len(data))), data...)
	} else {
		if cmd("DATA") != 354 {
			t.Fatal("DATA refused")
		}
		wire = append(bytes.Clone(data), "\r\n.\r\n"...)
	}
	// Written while the reply is read: an end marker inside the data
	// makes the server answer before the rest is read.
	go func() { _, _ = client.Write(wire) }()
	reply()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// deliver sends content to rcpt through the upstream writer and returns
// what the upstream server received and the RCPT path as written.
func (h *ingressHarness) deliver(t *testing.T, rcpt string, content []byte) ([]byte, string) {
	res, err := h.up.Send(&upstream.Transaction{From: "sender@brand.example", UTF8: true, Rcpts: []upstream.Recipient{{Addr: rcpt}},
		Body: func(w io.Writer) error { _, err := w.Write(content); return err }})
	if err != nil || res[0] != nil {
		t.Fatalf("upstream: %v %v", err, res)
	}
	return h.upSrv.last()
}

// ingressSession records the first transaction of its connection only: an
// end marker inside the data makes the rest of it commands, which must not
// overwrite what the test looks at.
type ingressSession struct {
	h        *ingressHarness
	rcpt     string
	finished bool
}

func (s *ingressSession) Mail(from string, o *smtp.MailOptions) error {
	_, err := envelopeAddr(from, o.UTF8, true)
	return err
}

func (s *ingressSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr, err := envelopeAddr(to, true, false)
	if !s.finished {
		s.rcpt = addr
	}
	return err
}

func (s *ingressSession) Data(r io.Reader) error {
	s.h.mu.Lock()
	mode := s.h.mode
	s.h.mu.Unlock()
	c := newContentReader(r, mode, 4096)
	defer c.release()
	var res ingressResult
	res.rcpt = s.rcpt
	head, err := c.header(16 << 10)
	if err == nil {
		res.head = bytes.Clone(head)
		var body bytes.Buffer
		_, err = c.body(&body)
		res.body = body.Bytes()
	}
	res.dataErr = err
	if !s.finished {
		s.finished = true
		s.h.mu.Lock()
		s.h.got = res
		s.h.mu.Unlock()
	}
	if err != nil {
		reply, _ := replyFor(err)
		return reply
	}
	return nil
}

func (s *ingressSession) Reset()        {}
func (s *ingressSession) Logout() error { return nil }

// captureBackend is the upstream: it keeps the last message and RCPT path.
type captureBackend struct {
	mu   sync.Mutex
	data []byte
	rcpt string
}

func (b *captureBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &captureSession{b: b}, nil
}

func (b *captureBackend) last() ([]byte, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.data, b.rcpt
}

type captureSession struct{ b *captureBackend }

func (s *captureSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *captureSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.b.mu.Lock()
	s.b.rcpt = to
	s.b.mu.Unlock()
	return nil
}
func (s *captureSession) Data(r io.Reader) error {
	d, err := io.ReadAll(bufio.NewReader(r))
	s.b.mu.Lock()
	s.b.data = d
	s.b.mu.Unlock()
	return err
}
func (s *captureSession) Reset()        {}
func (s *captureSession) Logout() error { return nil }

// pipeListener accepts the server ends of in-memory pipes.
type pipeListener struct{ c chan net.Conn }

func (l pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.c
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l pipeListener) Close() error   { return nil }
func (l pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
