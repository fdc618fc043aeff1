package e2e

import (
	"bytes"
	"io"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestLargeMessageMemory relays a 50 MiB message, generated and hashed on
// the fly on both sides, and checks that bccguard's peak resident memory
// stays under 64 MiB: bodies are streamed, never held whole.
func TestLargeMessageMemory(t *testing.T) {
	t.Parallel()
	const (
		bodySize = 50 << 20
		maxRSS   = 64 << 20
	)
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, `
listeners:
  - name: smtp
    address: {{addr "smtp"}}
    limits: {max_message_size: 60MiB}
`, harness.WithUpstream(sink.Addr()))

	hdr := harness.CRLF("From: alice@example.com\nTo: bob@example.net\nSubject: 50 MiB\nMIME-Version: 1.0\nContent-Type: text/plain\n\n")
	body := io.MultiReader(bytes.NewReader(hdr), harness.NewBody(bodySize))
	queueID(t, harness.SendWith(t, r.Addr(), "alice@example.com", []string{"bob@example.net"}, body, nil))

	m := sink.WaitFor(t, 1, 3*deliverTimeout)[0]
	relayedCopy(t, m, hdr, nil)
	if m.BodySize != bodySize || m.BodySum != harness.BodySum(bodySize) {
		t.Errorf("body at the upstream: %d bytes, same bytes: %v; want %d identical bytes", m.BodySize, m.BodySum == harness.BodySum(bodySize), bodySize)
	}
	rss := r.PeakRSS()
	t.Logf("bccguard peak RSS (VmHWM) after relaying a %d MiB message: %.1f MiB", bodySize>>20, float64(rss)/(1<<20))
	if rss >= maxRSS {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(rss)/(1<<20), maxRSS>>20)
	}
}
