package e2e

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// FullMemoryEnv runs TestExplodeLargeMessageMemory at full size: a 50 MiB
// message exploded to 100 recipients (5 GiB through loopback).
const FullMemoryEnv = "BCCGUARD_FULL"

// TestExplodeLargeMessageMemory explodes a large message with 100 visible
// recipients to its 100 envelope recipients, generated and hashed on the
// fly on both sides, and checks that bccguard's peak resident memory stays
// under 64 MiB: the message is stored once and every copy is rendered from
// it, streaming. By default the message is 10 MiB (1 GiB to deliver, a few
// seconds); with BCCGUARD_FULL=1 it is 50 MiB, as DESIGN.md promises.
func TestExplodeLargeMessageMemory(t *testing.T) {
	t.Parallel()
	const (
		recipients = 100
		maxRSS     = 64 << 20
	)
	bodySize := int64(10 << 20)
	if os.Getenv(FullMemoryEnv) == "1" {
		bodySize = 50 << 20
	}
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, `
listeners:
  - name: smtp
    address: {{addr "smtp"}}
    limits: {max_message_size: 60MiB}
`, harness.WithUpstream(sink.Addr()))

	cs := customers(recipients)
	rcpts := make([]string, len(cs))
	for i, c := range cs {
		rcpts[i] = c.Addr
	}
	hdr := []byte("From: Brand Phones <crm@brand.example>\r\n" + addressField("To", cs) +
		"Subject: the big catalogue\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
	start := time.Now()
	body := io.MultiReader(bytes.NewReader(hdr), harness.NewBody(bodySize))
	queueID(t, harness.SendWith(t, r.Addr(), "crm@brand.example", rcpts, body, nil))
	sent := time.Since(start)

	ms := sink.WaitFor(t, recipients, 5*deliverTimeout)
	took := time.Since(start)
	want := harness.BodySum(bodySize)
	got := map[string]int{}
	for _, m := range ms {
		if len(m.Rcpts) != 1 {
			t.Errorf("a copy to %v, want one per recipient", m.RcptAddrs())
			continue
		}
		got[strings.ToLower(m.Rcpts[0].Addr)]++
		if m.BodySize != bodySize || m.BodySum != want {
			t.Errorf("copy to %s: body of %d bytes, same bytes: %v; want %d identical bytes", m.Rcpts[0].Addr, m.BodySize, m.BodySum == want, bodySize)
		}
		for _, p := range copyProblems(hdr, m.Header, rewriteExplode, m.Rcpts[0].Addr, nil) {
			t.Errorf("copy to %s: %s", m.Rcpts[0].Addr, p)
		}
	}
	for _, a := range rcpts {
		if got[a] != 1 {
			t.Errorf("%s got %d copies, want 1", a, got[a])
		}
	}
	rss := r.PeakRSS()
	t.Logf("explode of a %d MiB message to %d recipients: submitted in %v, all copies delivered after %v (%.0f MiB/s out); bccguard peak RSS (VmHWM) %.1f MiB",
		bodySize>>20, recipients, sent.Round(time.Millisecond), took.Round(time.Millisecond),
		float64(bodySize*recipients)/(1<<20)/took.Seconds(), float64(rss)/(1<<20))
	if rss >= maxRSS {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(rss)/(1<<20), maxRSS>>20)
	}
}
