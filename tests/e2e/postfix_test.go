package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

// TestPostfixPeers relays between two programs that share no code with
// bccguard or go-smtp: Postfix's smtp-source as the client and smtp-sink as
// the upstream.
func TestPostfixPeers(t *testing.T) {
	t.Parallel()
	const sessions, messages = 2, 10
	ps := harness.StartPostfixSink(t, true)
	r := harness.Start(t, "", harness.WithUpstream(ps.Addr))

	res := harness.SMTPSource(t, r.Addr(),
		"-s", strconv.Itoa(sessions), "-m", strconv.Itoa(messages), "-M", "client.example.com",
		"-f", "sender@example.com", "-t", "rcpt@example.net",
		"-S", "smtp-source through bccguard", "-l", "4000")
	if !res.OK() {
		t.Fatalf("smtp-source was refused by bccguard:\n%s", res)
	}
	ps.WaitFor(t, messages, deliverTimeout)
	if n := ps.Count(); n != messages {
		// Delivery is at-least-once, but with nothing going wrong there is
		// no reason for a duplicate.
		t.Errorf("smtp-sink counted %d messages, want %d", n, messages)
	}
	dumps := ps.Dumps()
	if len(dumps) != messages {
		t.Fatalf("smtp-sink wrote %d dumps, want %d", len(dumps), messages)
	}
	for _, d := range dumps {
		// smtp-sink's dump: its own X- lines and Received:, then the message
		// as relayed (with LF line endings), beginning with bccguard's
		// Received: field.
		for _, want := range []string{
			"X-Mail-Args: <sender@example.com>",
			"X-Rcpt-Args: <rcpt@example.net>",
			"Subject: smtp-source through bccguard\n",
		} {
			if !strings.Contains(d, want) {
				t.Fatalf("dump lacks %q:\n%s", want, d)
			}
		}
		relayed := afterSinkHeaders(d)
		first, _, _ := strings.Cut(relayed, "\nFrom:")
		if !strings.HasPrefix(relayed, "Received: ") || !strings.Contains(first, harness.Hostname) {
			t.Fatalf("relayed message does not begin with bccguard's Received: field:\n%s", d)
		}
	}
}

// afterSinkHeaders skips what smtp-sink puts before the message in a dump:
// X-… lines and its own (folded) Received: field.
func afterSinkHeaders(dump string) string {
	lines := strings.SplitAfter(dump, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "X-") {
		i++
	}
	if i < len(lines) && strings.HasPrefix(lines[i], "Received:") {
		i++
		for i < len(lines) && (strings.HasPrefix(lines[i], "\t") || strings.HasPrefix(lines[i], " ")) {
			i++
		}
	}
	return strings.Join(lines[i:], "")
}
