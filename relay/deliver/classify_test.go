package deliver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/relay/store"
)

// bounces is a Bouncer that keeps what it is told.
type bounces struct{ got [][]Failure }

func (b *bounces) Bounce(_ context.Context, _ store.Message, failed []Failure) {
	b.got = append(b.got, failed)
}

func smtpErr(code int, e1, e2, e3 int, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{e1, e2, e3}, Message: msg}
}

// TestClassify: each kind of result becomes the right outcome, is counted
// under the right result and reply class, and bounces exactly the
// recipients that will not get the message.
func TestClassify(t *testing.T) {
	ann := store.Recipient{Addr: "ann@example.com"}
	ben := store.Recipient{Addr: "ben@example.com"}
	cy := store.Recipient{Addr: "cy@example.com"}
	for _, tc := range []struct {
		name     string
		age      time.Duration // since the message was received
		res      []error
		err      error
		state    store.State
		again    []store.Recipient // recipients left to retry
		bounced  []string          // recipients bounced, in order
		expired  bool              // the bounces are for expiry
		counted  [2]string         // result, reply class
		countedN float64
	}{
		{name: "delivered", res: []error{nil, nil, nil}, state: store.StateDelivered,
			counted: [2]string{"delivered", "2xx"}, countedN: 3},
		{name: "network", err: errors.New("dial tcp: connection refused"), state: store.StateDeferred,
			counted: [2]string{"deferred", "network"}, countedN: 1},
		{name: "4xx for the transaction", err: smtpErr(451, 4, 3, 0, "try later"), state: store.StateDeferred,
			counted: [2]string{"deferred", "4xx"}, countedN: 1},
		{name: "5xx for the transaction", err: smtpErr(554, 5, 7, 1, "refused"), state: store.StateBounced,
			bounced: []string{"ann@example.com", "ben@example.com", "cy@example.com"}, counted: [2]string{"bounced", "5xx"}, countedN: 1},
		{name: "network past the lifetime", age: 2 * time.Hour, err: errors.New("i/o timeout"), state: store.StateExpired,
			bounced: []string{"ann@example.com", "ben@example.com", "cy@example.com"}, expired: true,
			counted: [2]string{"expired", "network"}, countedN: 1},
		{name: "per recipient: one each", res: []error{nil, smtpErr(550, 5, 1, 1, "unknown"), smtpErr(452, 4, 2, 2, "full")},
			state: store.StateDeferred, again: []store.Recipient{cy}, bounced: []string{"ben@example.com"},
			counted: [2]string{"bounced", "5xx"}, countedN: 1},
		{name: "per recipient: 4xx past the lifetime", age: 2 * time.Hour, res: []error{nil, nil, smtpErr(452, 4, 2, 2, "full")},
			state: store.StateDelivered, bounced: []string{"cy@example.com"}, expired: true,
			counted: [2]string{"expired", "4xx"}, countedN: 1},
		{name: "per recipient: all 5xx", res: []error{smtpErr(550, 5, 1, 1, "a"), smtpErr(550, 5, 1, 1, "b"), smtpErr(550, 5, 1, 1, "c")},
			state: store.StateBounced, bounced: []string{"ann@example.com", "ben@example.com", "cy@example.com"},
			counted: [2]string{"bounced", "5xx"}, countedN: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bounces{}
			d := newTestDeliverer(t, Options{Bouncer: b})
			msg := store.Message{ID: "M", ReceivedAt: time.Now().Add(-tc.age)}
			dl := store.Delivery{ID: "D", Recipients: []store.Recipient{ann, ben, cy}}
			out := d.classify(context.Background(), msg, dl, tc.res, tc.err)
			if out.State != tc.state {
				t.Errorf("state %s, want %s", out.State, tc.state)
			}
			if len(out.Recipients) != len(tc.again) || len(tc.again) > 0 && out.Recipients[0].Addr != tc.again[0].Addr {
				t.Errorf("left to retry %v, want %v", out.Recipients, tc.again)
			}
			if out.State == store.StateDeferred && out.NextAttempt.Before(time.Now().Add(50*time.Second)) {
				t.Errorf("retried at %v: sooner than retry_first", out.NextAttempt)
			}
			var got []string
			for _, f := range b.got {
				for _, r := range f {
					got = append(got, r.Recipient.Addr)
					if r.Expired != tc.expired {
						t.Errorf("bounce for %s: expired %v, want %v", r.Recipient.Addr, r.Expired, tc.expired)
					}
				}
			}
			if len(b.got) > 1 || len(got) != len(tc.bounced) {
				t.Fatalf("bounced %v in %d notices, want %v in one", got, len(b.got), tc.bounced)
			}
			for i := range got {
				if got[i] != tc.bounced[i] {
					t.Errorf("bounced %v, want %v", got, tc.bounced)
				}
			}
			if v := testutil.ToFloat64(d.metrics.deliveries.WithLabelValues(tc.counted[0], tc.counted[1])); v != tc.countedN {
				t.Errorf("bccguard_deliveries_total%v = %v, want %v", tc.counted, v, tc.countedN)
			}
		})
	}
}

// TestBackoff doubles from retry_first up to retry_max, within its jitter.
func TestBackoff(t *testing.T) {
	d := newTestDeliverer(t, Options{})
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{{0, time.Minute}, {1, 2 * time.Minute}, {3, 8 * time.Minute}, {6, time.Hour}, {40, time.Hour}} {
		got := d.backoff(tc.attempts)
		if got < tc.want*9/10 || got > tc.want*11/10 {
			t.Errorf("backoff(%d) = %v, want %v ±10%%", tc.attempts, got, tc.want)
		}
	}
}
