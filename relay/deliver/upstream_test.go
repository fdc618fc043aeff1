package deliver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/relay/store"
)

// An upstream that refuses bccguard's password (or its greeting) is an
// operator's problem to fix: the mail waits, it is never bounced.
func TestUpstreamRefusedAuthDefers(t *testing.T) {
	sink := smtptest.NewSink(t,
		smtptest.PlainAuth(func(string, string) error { return errors.New("wrong password") }),
		smtptest.Configure(func(s *smtp.Server) { s.AllowInsecureAuth = true }))
	cfg := testUpstream(sink.Addr())
	cfg.Username = "relay"
	m, err := newMTA(cfg, "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Dial(context.Background())
	if err == nil {
		t.Fatal("dial succeeded with a refused AUTH")
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		t.Fatalf("dial error %v carries SMTP %d: a 5xx would bounce the mail", err, se.Code)
	}

	b := &bounces{}
	d := newTestDeliverer(t, Options{Bouncer: b})
	msg := store.Message{ID: "M", ReceivedAt: time.Now()}
	out := d.classify(context.Background(), msg, store.Delivery{Recipients: []store.Recipient{{Addr: "ann@example.com"}}}, nil, err)
	if out.State != store.StateDeferred || len(b.got) != 0 {
		t.Errorf("outcome %s with %d bounces, want deferred and none", out.State, len(b.got))
	}
}

// TestUpstreamObserve: one observation changes the gauge, what /readyz
// reports and (on a change only) the log, together.
func TestUpstreamObserve(t *testing.T) {
	d := newTestDeliverer(t, Options{})
	ctx := context.Background()
	gauge := func() float64 { return testutil.ToFloat64(d.metrics.upstreamUp) }
	logged := func(msg string) int { return strings.Count(d.logs.String(), `"msg":"`+msg) }

	if got := d.UpstreamStatus(ctx); got != "unknown: not checked yet" {
		t.Errorf("status before any observation: %q", got)
	}
	d.upstream.observe(false, "dial tcp 127.0.0.1:1: connection refused")
	if gauge() != 0 || !strings.HasPrefix(d.UpstreamStatus(ctx), "down since ") ||
		!strings.HasSuffix(d.UpstreamStatus(ctx), ": dial tcp 127.0.0.1:1: connection refused") || logged("upstream unreachable") != 1 {
		t.Errorf("after a failure: gauge %v, status %q, log:\n%s", gauge(), d.UpstreamStatus(ctx), d.logs.String())
	}
	d.upstream.observe(false, "")
	if logged("upstream unreachable") != 1 || !strings.HasSuffix(d.UpstreamStatus(ctx), "connection refused") {
		t.Errorf("a second failure logged again or lost its reason: %q", d.UpstreamStatus(ctx))
	}
	d.upstream.observe(true, "")
	if gauge() != 1 || !strings.HasPrefix(d.UpstreamStatus(ctx), "up since ") || logged("upstream reachable") != 1 {
		t.Errorf("after a connection: gauge %v, status %q, log:\n%s", gauge(), d.UpstreamStatus(ctx), d.logs.String())
	}
	if d.upstream.stale(time.Minute) {
		t.Error("just observed, yet stale")
	}
}

// TestUpstreamProbe: the probe connects as a delivery would and records
// what it found, before any mail needs the upstream.
func TestUpstreamProbe(t *testing.T) {
	sink := smtptest.NewSink(t)
	up := newTestDeliverer(t, Options{Upstream: testUpstream(sink.Addr())})
	down := newTestDeliverer(t, Options{Upstream: testUpstream("127.0.0.1:1")}) // nothing listens on port 1
	ctx := context.Background()
	up.probeUpstream(ctx)
	down.probeUpstream(ctx)
	if s := up.UpstreamStatus(ctx); !strings.HasPrefix(s, "up since") {
		t.Errorf("status %q with the upstream listening", s)
	}
	if s := down.UpstreamStatus(ctx); !strings.HasPrefix(s, "down since") {
		t.Errorf("status %q with nothing listening", s)
	}
	if v := testutil.ToFloat64(up.metrics.upstreamUp); v != 1 {
		t.Errorf("bccguard_upstream_up = %v with the upstream listening", v)
	}
	if v := testutil.ToFloat64(down.metrics.upstreamUp); v != 0 {
		t.Errorf("bccguard_upstream_up = %v with nothing listening", v)
	}
	if sink.Connections() != 1 {
		t.Errorf("the probe made %d connections, want 1", sink.Connections())
	}
}
