package reviewtest

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/syncbuf"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// Hostname is the relay's name in every Fixture's Service (delete notices
// come from MAILER-DAEMON@Hostname).
const Hostname = "relay.test"

// Fixture is a review.Service over a real embedded store in a temporary
// data folder, with what the tests look at.
type Fixture struct {
	// Dir is the data folder (the control socket goes there too).
	Dir     string
	Store   *embedded.Store
	Service *review.Service
	// Registry holds the Service's metrics.
	Registry *prometheus.Registry
	// Clock is the Service's time.
	Clock *Clock
	// Logs is the Service's log: text, at debug level.
	Logs *syncbuf.Buffer
}

// Option changes the review.Options before the Service is made. It sees
// the Fixture, whose store, clock and log are ready (a notifier needs the
// store).
type Option func(f *Fixture, o *review.Options)

// NewService opens an embedded store in a temporary folder and makes a
// review.Service over it with the default quarantine settings, Hostname, a
// fresh registry, the Clock and a debug log into Logs; no notifier, no
// wake. The store is closed when the test ends.
func NewService(t testing.TB, opts ...Option) *Fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &Fixture{Dir: dir, Store: st, Registry: prometheus.NewRegistry(), Clock: NewClock(), Logs: &syncbuf.Buffer{}}
	o := review.Options{
		Store: st, Config: config.Defaults().Quarantine, Hostname: Hostname, Registerer: f.Registry, Now: f.Clock.Now,
		Logger: slog.New(slog.NewTextHandler(f.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, opt := range opts {
		opt(f, &o)
	}
	if f.Service, err = review.New(o); err != nil {
		t.Fatal(err)
	}
	return f
}

// SenderNotices gives the Service the real Notifier with no channels (it
// makes the notices to senders only), built from the quarantine settings
// as they are when this option runs; wake is called at each of its Wake
// calls (nil: none).
func SenderNotices(wake func()) Option {
	return func(_ *Fixture, o *review.Options) {
		cfg := config.Defaults()
		cfg.Hostname, cfg.Quarantine = o.Hostname, o.Config
		o.Notify = Notifier{Notifier: notify.NewNotifier(cfg), OnWake: wake}
	}
}

// Notifier is a real notify.Notifier whose Wake only calls OnWake (when
// set): no notifier loop runs in these fixtures.
type Notifier struct {
	*notify.Notifier
	OnWake func()
}

// Wake tells the test instead of a notifier loop.
func (n Notifier) Wake() {
	if n.OnWake != nil {
		n.OnWake()
	}
}
