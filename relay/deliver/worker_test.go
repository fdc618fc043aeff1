package deliver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/upstream"
)

const mailing = "From: crm@brand.example\r\nTo: ann@customers.example, ben@customers.example\r\nSubject: survey\r\n\r\nHello\r\n"

// TestWorkerDelivers: an explode copy for each recipient reaches the
// upstream showing only that recipient, and is recorded and counted as
// delivered.
func TestWorkerDelivers(t *testing.T) {
	sink := smtptest.NewSink(t)
	st := testStore(t)
	d := newTestDeliverer(t, Options{Store: st, Upstream: testUpstream(sink.Addr())})
	d.start(t)
	queueMessage(t, st, "crm@brand.example", mailing, []store.NewDelivery{
		{Recipients: []store.Recipient{{Addr: "ann@customers.example"}}, Rewrite: store.RewriteExplode},
		{Recipients: []store.Recipient{{Addr: "ben@customers.example"}}, Rewrite: store.RewriteExplode},
	})
	d.Wake()
	msgs := sink.WaitFor(t, 2, 20*time.Second)
	for _, m := range msgs {
		if len(m.Rcpts) != 1 || m.From != "crm@brand.example" {
			t.Fatalf("transaction from %q to %v", m.From, m.RcptAddrs())
		}
		other := "ben@customers.example"
		if m.Rcpts[0].Addr == other {
			other = "ann@customers.example"
		}
		if strings.Contains(string(m.Header), other) || !strings.Contains(string(m.Header), "To: <"+m.Rcpts[0].Addr+">") {
			t.Errorf("copy for %s has the header:\n%s", m.Rcpts[0].Addr, m.Header)
		}
	}
	waitQueue(t, st, "the outcomes to be recorded", func(s store.Stats) bool { return s.Pending == 0 })
	if v := testutil.ToFloat64(d.metrics.deliveries.WithLabelValues("delivered", "2xx")); v != 2 {
		t.Errorf("bccguard_deliveries_total{delivered,2xx} = %v, want 2", v)
	}
	if v := testutil.ToFloat64(d.metrics.upstreamUp); v != 1 {
		t.Errorf("bccguard_upstream_up = %v after delivering", v)
	}
}

// TestWorkerBouncesWithDSN: a recipient the upstream refuses for good gets
// the sender a DSN, queued and delivered like any other message, and the
// upstream's reply quoting the address reaches the log redacted.
func TestWorkerBouncesWithDSN(t *testing.T) {
	sink := smtptest.NewSink(t)
	sink.RejectRcpt("gone@customers.example", smtptest.SMTPErr(550, "5.1.1", "<gone@customers.example>: Recipient address rejected: User unknown"))
	st := testStore(t)
	redact := func(s string) string { return strings.ReplaceAll(s, "gone@customers.example", "addr:x") }
	d := newTestDeliverer(t, Options{Store: st, Upstream: testUpstream(sink.Addr()),
		Redact: func(string) string { return "addr:y" }, RedactText: redact})
	stop := d.start(t)
	queueMessage(t, st, "crm@brand.example", mailing, []store.NewDelivery{
		{Recipients: []store.Recipient{{Addr: "gone@customers.example"}}, Rewrite: store.RewritePass},
	})
	d.Wake()
	dsn := sink.WaitFor(t, 1, 20*time.Second)[0]
	if dsn.From != "" || len(dsn.Rcpts) != 1 || dsn.Rcpts[0].Addr != "crm@brand.example" {
		t.Fatalf("DSN from %q to %v", dsn.From, dsn.RcptAddrs())
	}
	if !strings.Contains(string(dsn.Header), "multipart/report") || !strings.Contains(string(dsn.Data), "Status: 5.1.1") {
		t.Errorf("not a DSN for 5.1.1:\n%s", dsn.Data)
	}
	waitQueue(t, st, "the outcomes to be recorded", func(s store.Stats) bool { return s.Pending == 0 })
	if v := testutil.ToFloat64(d.metrics.dsns); v != 1 {
		t.Errorf("bccguard_dsn_sent_total = %v, want 1", v)
	}
	stop() // waits for the log lines of the attempts
	logs := d.logs.String()
	if !strings.Contains(logs, "Recipient address rejected") {
		t.Errorf("the upstream's reply was not logged:\n%s", logs)
	}
	if strings.Contains(logs, "gone@customers.example") || strings.Contains(logs, "crm@brand.example") {
		t.Errorf("an address reached the log:\n%s", logs)
	}
}

// refusingDialer is an upstream that cannot be reached.
type refusingDialer struct{}

func (refusingDialer) Dial(context.Context) (*upstream.Conn, error) {
	return nil, errors.New("dial tcp 192.0.2.25:25: connect: connection refused")
}

// TestWorkerUpstreamDown: a delivery the upstream cannot be reached for is
// deferred, not bounced, and the attempt marks the upstream down for the
// gauge and /readyz at once.
func TestWorkerUpstreamDown(t *testing.T) {
	st := testStore(t)
	b := &bounces{}
	d := newTestDeliverer(t, Options{Store: st, Dialer: refusingDialer{}, Bouncer: b})
	d.start(t)
	queueMessage(t, st, "crm@brand.example", mailing, []store.NewDelivery{
		{Recipients: []store.Recipient{{Addr: "ann@customers.example"}}, Rewrite: store.RewritePass},
	})
	d.Wake()
	waitQueue(t, st, "the attempt to be recorded", func(s store.Stats) bool { return s.Deferred == 1 })
	if v := testutil.ToFloat64(d.metrics.deliveries.WithLabelValues("deferred", "network")); v != 1 {
		t.Errorf("bccguard_deliveries_total{deferred,network} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(d.metrics.upstreamUp); v != 0 {
		t.Errorf("bccguard_upstream_up = %v with the upstream unreachable", v)
	}
	if s := d.UpstreamStatus(context.Background()); !strings.HasPrefix(s, "down since") || !strings.Contains(s, "connection refused") {
		t.Errorf("upstream status %q", s)
	}
	if len(b.got) != 0 {
		t.Errorf("%d bounces for an unreachable upstream", len(b.got))
	}
}
