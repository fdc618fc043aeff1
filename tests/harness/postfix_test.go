package harness

import (
	"strings"
	"testing"
	"time"
)

func TestPostfixSourceToSink(t *testing.T) {
	ps := StartPostfixSink(t, true)
	res := SMTPSource(t, ps.Addr, "-s", "2", "-m", "6", "-f", "a@example.com", "-t", "b@example.net", "-S", "hello", "-l", "300")
	if !res.OK() {
		t.Fatalf("smtp-source:\n%s", res)
	}
	ps.WaitFor(t, 6, 20*time.Second)
	Eventually(t, 10*time.Second, "6 dump files", func() bool { return len(ps.Dumps()) == 6 })
	if d := ps.Dumps()[0]; !strings.Contains(d, "X-Mail-Args: <a@example.com>") || !strings.Contains(d, "Subject: hello\n") {
		t.Errorf("dump:\n%s", d)
	}

	// And smtp-source is a client the go-smtp sink understands.
	s := NewSink(t)
	res = SMTPSource(t, s.Addr(), "-m", "3", "-f", "a@example.com", "-t", "b@example.net", "-l", "100")
	if !res.OK() {
		t.Fatalf("smtp-source:\n%s", res)
	}
	s.WaitFor(t, 3, 10*time.Second)
}
