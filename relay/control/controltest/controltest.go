// Package controltest runs the control socket for tests of the socket and
// of the command line, over a reviewtest.Fixture, as serve does. It is not
// in reviewtest because the control socket needs queueadmin, whose own
// tests use reviewtest.
package controltest

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
)

// Serve runs the control socket in f.Dir over f's Service and a queue
// administration on f's store, as serve does for the command line; it is
// closed when the test ends.
func Serve(t testing.TB, f *reviewtest.Fixture) {
	t.Helper()
	ln, err := control.Listen(f.Dir)
	if err != nil {
		t.Fatal(err)
	}
	queue, err := queueadmin.New(queueadmin.Options{Store: f.Store, Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), Hostname: reviewtest.Hostname})
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(control.NewHandler(queue, f.Service))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}
