package harness

import (
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
)

// NewSink starts a capturing upstream (smtptest.Sink) on a port from
// FreePort rather than the kernel's: a sink stopped to play "upstream down"
// must not free an ephemeral port that a parallel test's relay or an
// outgoing connection then takes (see ports.go).
func NewSink(t testing.TB, opts ...smtptest.Option) *smtptest.Sink {
	t.Helper()
	return smtptest.NewSink(t, append([]smtptest.Option{smtptest.Listen(listenFree)}, opts...)...)
}
