package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/internal/testcert"
)

// startServer runs the capturing upstream (smtptest.Sink) as a plain
// go-smtp server: go-smtp's defaults (no SMTPUTF8, no DSN, 2000-byte
// lines) as mx.example, so that each test turns on what it needs with
// smtptest.Configure.
func startServer(t testing.TB, opts ...smtptest.Option) *smtptest.Sink {
	t.Helper()
	return smtptest.NewSink(t, append([]smtptest.Option{smtptest.Configure(plainServer)}, opts...)...)
}

func plainServer(s *smtp.Server) {
	s.Domain = "mx.example"
	s.MaxLineLength = 2000
	s.EnableSMTPUTF8, s.EnableDSN = false, false
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
}

// serverConfig is the Config that reaches ts without TLS.
func serverConfig(ts *smtptest.Sink) Config {
	return Config{
		Address:        ts.Addr(),
		Helo:           "relay.example",
		TLS:            "none",
		ConnectTimeout: 5 * time.Second,
		CommandTimeout: 5 * time.Second,
	}
}

// dialSink connects to ts and closes the Conn at the end of the test.
func dialSink(t testing.TB, ts *smtptest.Sink) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), serverConfig(ts))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rcptOpts lists the RCPT parameters m arrived with, in order.
func rcptOpts(m *smtptest.Message) []smtp.RcptOptions {
	var out []smtp.RcptOptions
	for _, r := range m.Rcpts {
		out = append(out, r.Opts)
	}
	return out
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
