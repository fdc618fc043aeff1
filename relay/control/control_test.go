package control_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

var ctx = context.Background()

// serve runs the control socket over a real store and review service in a
// temp data folder, as serve does.
func serve(t *testing.T) (string, *embedded.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rev, err := review.New(review.Options{
		Store: st, Config: config.Defaults().Quarantine, Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), Hostname: "relay.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := control.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	queue, err := queueadmin.New(queueadmin.Options{Store: st, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Hostname: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(control.NewHandler(queue, rev))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return dir, st
}

func hold(t *testing.T, st store.Store, rcpts ...string) string {
	t.Helper()
	sp, _, err := st.NewSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	raw := "Subject: hello\r\nTo: " + strings.Join(rcpts, ", ") + "\r\n\r\nbody\r\n"
	_, _ = io.WriteString(sp, raw)
	env := store.Envelope{Sender: "news@shop.example"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, store.Recipient{Addr: r})
	}
	id, err := sp.Commit(ctx, store.Message{
		Envelope: env, Client: store.Client{Listener: "smtp", IP: "192.0.2.1"},
		HeaderLen:  int64(strings.Index(raw, "\r\n\r\n") + 4),
		Quarantine: &store.Quarantine{Rule: "many-visible", ExpiresAt: time.Now().Add(time.Hour)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
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
