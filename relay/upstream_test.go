package relay

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
)

// authRefuser is an upstream that refuses every AUTH with 535.
type authRefuser struct{ *sinkSession }

func (authRefuser) AuthMechanisms() []string { return []string{sasl.Plain} }
func (authRefuser) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, _ string) error {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	}), nil
}

// An upstream that refuses bccguard's password (or its greeting) is an
// operator's problem to fix: the mail waits, it is never bounced.
func TestUpstreamRefusedAuthDefers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return authRefuser{&sinkSession{s: &testSink{}}}, nil }))
	srv.AllowInsecureAuth = true
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	cfg := config.Upstream{Address: ln.Addr().String(), TLS: "none", Username: "relay",
		ConnectTimeout: config.Duration(5 * time.Second), CommandTimeout: config.Duration(5 * time.Second)}
	m, err := newMTA(cfg, "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.dial(context.Background())
	if err == nil {
		t.Fatal("dial succeeded with a refused AUTH")
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		t.Fatalf("dial error %v carries SMTP %d: a 5xx would bounce the mail", err, se.Code)
	}

	d := &deliverer{srv: &Server{cfg: &config.Config{Queue: config.Queue{RetryFirst: config.Duration(time.Minute),
		RetryMax: config.Duration(time.Hour), Lifetime: config.Duration(time.Hour)}}, metrics: newMetrics(prometheus.NewRegistry())}}
	msg := store.Message{ID: "M", ReceivedAt: time.Now()}
	out := d.classify(context.Background(), msg, store.Delivery{Recipients: []store.Recipient{{Addr: "ann@example.com"}}}, nil, err)
	if out.State != store.StateDeferred {
		t.Errorf("outcome %s, want deferred", out.State)
	}
}
