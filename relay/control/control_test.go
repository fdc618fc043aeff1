package control_test

import (
	"bytes"
	"context"
	"errors"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/control/controltest"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

var ctx = context.Background()

// serve runs the control socket over a real store and review service in a
// temp data folder, as serve does.
func serve(t *testing.T) (string, *embedded.Store) {
	t.Helper()
	f := reviewtest.NewService(t)
	controltest.Serve(t, f)
	return f.Dir, f.Store
}

func hold(t *testing.T, st store.Store, rcpts ...string) string {
	t.Helper()
	env := store.Envelope{Sender: "news@shop.example"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, store.Recipient{Addr: r})
	}
	return reviewtest.Hold(t, st, "Subject: hello\r\nTo: "+strings.Join(rcpts, ", ")+"\r\n\r\nbody\r\n", store.Message{
		Envelope: env, Client: store.Client{Listener: "smtp", IP: "192.0.2.1"},
		Quarantine: &store.Quarantine{Rule: "many-visible", ExpiresAt: time.Now().Add(time.Hour)},
	})
}

func TestQuarantineOverSocket(t *testing.T) {
	dir, st := serve(t)
	id := hold(t, st, "ann@one.example", "bob@two.example")
	c := control.NewClient(dir)

	p, err := c.QuarantineList(ctx, review.Filter{Rule: "many-visible"})
	if err != nil || p.Total != 1 || p.Items[0].ID != id || p.Items[0].Subject != "hello" {
		t.Fatalf("list = %+v, %v", p, err)
	}
	d, err := c.QuarantineShow(ctx, id)
	if err != nil || d.Preview.Text != "body" || len(d.EnvelopeRecipients) != 2 {
		t.Fatalf("show = %+v, %v", d, err)
	}
	var raw bytes.Buffer
	if err := c.QuarantineRaw(ctx, id, &raw); err != nil || !strings.HasPrefix(raw.String(), "Subject: hello") {
		t.Fatalf("raw = %q, %v", raw.String(), err)
	}
	_, err = c.QuarantineRelease(ctx, id, review.ReleaseOptions{Recipients: []string{"eve@evil.example"}})
	var re *review.Error
	if !errors.As(err, &re) || re.Code != review.CodeBadRequest {
		t.Fatalf("release to a stranger: %v", err)
	}
	r, err := c.QuarantineRelease(ctx, id, review.ReleaseOptions{Rewrite: "bcc"})
	if err != nil || r.Status != review.StatusReleased || r.Deliveries != 1 {
		t.Fatalf("release = %+v, %v", r, err)
	}
	if _, err := c.QuarantineDelete(ctx, id, review.DeleteOptions{}); !errors.As(err, &re) || re.Code != review.CodeNotHeld {
		t.Fatalf("delete after release: %v", err)
	}
	if _, err := c.QuarantineShow(ctx, "NOSUCH"); !errors.As(err, &re) || re.Code != review.CodeNotFound {
		t.Fatalf("show unknown: %v", err)
	}

	// The CLI acts as a reviewer named after the peer's Unix user.
	me, _ := user.Current()
	es, err := c.Audit(ctx, nil)
	if err != nil || len(es) == 0 {
		t.Fatalf("audit = %v, %v", es, err)
	}
	for _, e := range es {
		if e.Actor != "cli:"+me.Username || !strings.Contains(e.Detail, "via cli") {
			t.Fatalf("audit entry %+v, want actor cli:%s", e, me.Username)
		}
	}

	// The queue commands still work beside them.
	ds, err := c.List(ctx, store.Filter{})
	if err != nil || len(ds) != 1 || ds[0].Rewrite != store.RewriteBcc {
		t.Fatalf("queue list = %+v, %v", ds, err)
	}
	if n, err := c.Flush(ctx, store.Filter{}); err != nil || n != 0 {
		t.Fatalf("flush = %d, %v", n, err)
	}
}

func TestNotRunning(t *testing.T) {
	_, err := control.NewClient(t.TempDir()).QuarantineList(ctx, review.Filter{})
	if !errors.Is(err, control.ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
}
