package deliver

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/syncbuf"
	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
	"github.com/bccguard/bccguard/relay/store/storetest"
)

// testUpstream is the upstream settings the tests deliver with: no TLS,
// short timeouts.
func testUpstream(addr string) config.Upstream {
	return config.Upstream{Address: addr, TLS: "none", Connections: 2,
		ConnectTimeout: config.Duration(5 * time.Second), CommandTimeout: config.Duration(5 * time.Second),
		IdleTimeout: config.Duration(time.Minute)}
}

var testQueue = config.Queue{RetryFirst: config.Duration(time.Minute), RetryMax: config.Duration(time.Hour),
	Lifetime: config.Duration(time.Hour)}

// testStore is an embedded store in a temporary folder.
func testStore(t *testing.T) store.Store {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// testDeliverer is a Deliverer with o's settings, filled in where the test
// left them out, and the registry and log it reports to.
type testDeliverer struct {
	*Deliverer
	reg  *prometheus.Registry
	logs *syncbuf.Buffer
}

func newTestDeliverer(t *testing.T, o Options) *testDeliverer {
	t.Helper()
	td := &testDeliverer{reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}}
	if o.Store == nil {
		o.Store = testStore(t)
	}
	if o.Hostname == "" {
		o.Hostname = "relay.test"
	}
	if o.Upstream.Address == "" {
		o.Upstream = testUpstream("127.0.0.1:1")
	}
	if o.Queue == (config.Queue{}) {
		o.Queue = testQueue
	}
	if o.Signer == nil {
		o.Signer = rewrite.NewSigner(rewrite.SignerOptions{Keyring: dkim.NewKeyring(nil, "")}, td.reg)
	}
	o.Logger = slog.New(slog.NewJSONHandler(td.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Registerer = td.reg
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	td.Deliverer = d
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("delivery log:\n%s", td.logs.String())
		}
	})
	return td
}

// start runs the deliverer until the test ends or it calls the function
// start returns, which waits for the outcomes being recorded (and their
// log lines).
func (td *testDeliverer) start(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	td.Start(ctx)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			td.Stop(sctx)
			cancel()
		})
	}
	t.Cleanup(stop)
	return stop
}

// queueMessage stores raw from sender with the deliveries dls, as ingest
// would; the deliverer finds it at its next poll or wake.
func queueMessage(t *testing.T, st store.Store, sender, raw string, dls []store.NewDelivery) string {
	t.Helper()
	var rcpts []store.Recipient
	for _, d := range dls {
		rcpts = append(rcpts, d.Recipients...)
	}
	return storetest.Put(t, st, []byte(raw), store.Message{
		Envelope:  store.Envelope{Sender: sender, Recipients: rcpts},
		Client:    store.Client{Listener: "smtp", IP: "192.0.2.1"},
		HeaderLen: int64(strings.Index(raw, "\r\n\r\n") + 4),
	}, dls)
}

// waitQueue waits until the queue's figures satisfy cond: outcomes are
// committed in the background after the upstream's reply.
func waitQueue(t *testing.T, st store.Store, what string, cond func(store.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := st.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cond(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: the queue has %+v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
