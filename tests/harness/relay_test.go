package harness

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRelayLifecycle runs the harness's process handling against the
// stand-in relay: config rendering (checked by the real config package),
// readiness, CLI, peak RSS, restart, kill and stop.
func TestRelayLifecycle(t *testing.T) {
	s := NewSink(t)
	r := Start(t, `
listeners:
  - name: smtp
    address: {{addr "smtp"}}
  - name: second
    address: {{hostaddr "127.0.0.2" "second"}}
    allow_networks: [127.0.0.1/32]
`, WithUpstream(s.Addr()))
	cfg, err := os.ReadFile(r.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data_dir: ", "queue: {retry_first: 1s", "upstream: {address: \"" + s.Addr(), "127.0.0.2:", "log: {format: json"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if err := greets(fmt.Sprintf("127.0.0.2:%d", r.Port("second"))); err != nil {
		t.Errorf("second listener: %v", err)
	}
	Send(t, r.Addr(), "a@example.com", []string{"b@example.net"}, CRLF("Subject: x\n\nx\n"))

	q := r.Queue()
	if len(q) != 1 || q[0].State != "deferred" || q[0].Recipients[0].Addr != "a@example.net" {
		t.Errorf("queue: %+v", q)
	}
	if rss := r.PeakRSS(); rss < 8<<20 || rss > 1<<30 {
		t.Errorf("peak RSS %d", rss)
	}
	// The harness knows the relay is up from its SMTP greeting; the log
	// line may come a moment later, and a kill before it would lose it.
	Eventually(t, 30*time.Second, "first ready log line", func() bool { return strings.Contains(r.Logs(), "fakerelay ready") })
	pid := r.PID()
	r.Kill()
	if r.Running() {
		t.Fatal("running after Kill")
	}
	r.Restart()
	if r.PID() == pid || !r.Running() {
		t.Fatal("Restart did not start a new process")
	}
	Eventually(t, 30*time.Second, "ready log line", func() bool { return strings.Count(r.Logs(), "fakerelay ready") == 2 })
	if code := r.Stop(); code != 0 {
		t.Errorf("exit code after SIGTERM: %d\n%s", code, r.Logs())
	}
	if res := RunCLI(t, "bogus"); res.ExitCode != 2 {
		t.Errorf("bogus subcommand: %s", res)
	}
}
