package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// The policy sections the reload test swaps in and out of the config file.
const (
	passAllPolicy = `policy:
  rules:
    - {name: all, when: "true", action: pass}
`
	explodeAllPolicy = `policy:
  rules:
    - {name: all, when: "true", action: explode}
`
	// A condition with a misspelt variable: refused at load.
	invalidPolicy = `policy:
  rules:
    - {name: all, when: "visible.cuont >= 0", action: pass}
`
)

// TestPolicyReloadOnSIGHUP: SIGHUP loads the policy in the config file
// anew; an invalid one is refused, logged, and the old one stays in force.
func TestPolicyReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, passAllPolicy, harness.WithUpstream(sink.Addr()))

	// swap rewrites the config file with another policy section (keeping
	// what the harness added) and sends SIGHUP; it waits until the relay
	// logs the outcome, "policy reloaded" or "policy reload refused".
	swap := func(from, to, outcome string) {
		t.Helper()
		b, err := os.ReadFile(r.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), from) {
			t.Fatalf("config file does not hold the policy section to replace:\n%s", b)
		}
		writeFile(t, r.ConfigPath(), strings.Replace(string(b), from, to, 1))
		before := strings.Count(r.Logs(), outcome)
		if err := syscall.Kill(r.PID(), syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
		harness.Eventually(t, 20*time.Second, "the relay to log "+outcome, func() bool {
			return strings.Count(r.Logs(), outcome) > before
		})
	}
	cs := customers(3)
	rcpts := []string{cs[0].Addr, cs[1].Addr, cs[2].Addr}
	msg := []byte("From: Brand Phones <crm@brand.example>\r\n" + addressField("To", cs) +
		"Subject: reload\r\n\r\nDear customers\r\n")
	// send submits the message from sender and returns its copies.
	send := func(sender string) []*smtptest.Message {
		t.Helper()
		harness.Send(t, r.Addr(), sender, rcpts, msg)
		sink.WaitUntil(t, deliverTimeout, "copies from "+sender, func(ms []*smtptest.Message) bool {
			k := 0
			for _, m := range ms {
				if m.From == sender {
					k += len(m.Rcpts)
				}
			}
			return k >= len(rcpts)
		})
		var mine []*smtptest.Message
		for _, m := range sink.Messages() {
			if m.From == sender {
				mine = append(mine, m)
			}
		}
		return mine
	}
	exploded := func(what string, ms []*smtptest.Message) {
		t.Helper()
		if len(ms) != len(rcpts) {
			t.Fatalf("%s: the upstream got %d transactions, want one per recipient (%d): the explode policy is not in force", what, len(ms), len(rcpts))
		}
		for _, m := range ms {
			if len(m.Rcpts) != 1 {
				t.Fatalf("%s: a copy to %v", what, m.RcptAddrs())
			}
			checkCopy(t, msg, m, rewriteExplode, m.Rcpts[0].Addr)
		}
	}

	// Pass-all first: one transaction to everyone, unchanged.
	if ms := send("first@brand.example"); len(ms) != 1 {
		t.Fatalf("pass policy: the upstream got %d transactions, want 1", len(ms))
	}

	swap(passAllPolicy, explodeAllPolicy, "policy reloaded")
	exploded("after reloading the explode policy", send("second@brand.example"))

	swap(explodeAllPolicy, invalidPolicy, "policy reload refused")
	logs := r.Logs()
	i := strings.LastIndex(logs, "policy reload refused")
	if line, _, _ := strings.Cut(logs[i:], "\n"); !strings.Contains(line, "cuont") {
		t.Errorf("the refusal does not say what is wrong (visible.cuont): %s", line)
	}
	if !r.Running() {
		t.Fatal("the relay exited after an invalid policy was reloaded")
	}
	exploded("after an invalid policy was refused", send("third@brand.example"))
}
