package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// What the Dockerfile promises (deploy/deploy_test.go checks the file says
// so; this test checks the built image keeps it).
const (
	binary     = "/usr/local/bin/bccguard"
	configPath = "/etc/bccguard/bccguard.yaml" // where CMD reads its configuration
	dataDir    = "/var/lib/bccguard"           // the VOLUME
	user       = "65532:65532"                 // distroless's nonroot
)

const (
	image   = "localhost/bccguard:container-test"
	version = "container-test"

	// Deadlines for waiting on states, far above what a working relay
	// needs (retries in the test's configuration are 1–2 s apart).
	readyTimeout   = 60 * time.Second
	deliverTimeout = 60 * time.Second
	stopGrace      = 60 // seconds between podman stop's SIGTERM and its SIGKILL
)

// TestImage builds the image and runs it as a deployment would: mail sent
// through it to the test's upstream is exploded; /readyz and the image's
// HEALTHCHECK answer; SIGTERM stops it cleanly; and what it had queued is
// delivered by a second container on the same volume.
func TestImage(t *testing.T) {
	p := newPodman(t)
	p.build(image, version)

	img := p.inspectImage(image)
	t.Logf("image %s: %d bytes (%.1f MiB)", image, img.Size, float64(img.Size)/(1<<20))
	if img.Config.User != user {
		t.Errorf("image user %q, want %q", img.Config.User, user)
	}
	if hc := img.Healthcheck; hc == nil || !slices.Contains(hc.Test, binary) || !slices.Contains(hc.Test, "healthcheck") {
		t.Errorf("image health check %+v: want %s healthcheck (an OCI-format image drops it)", hc, binary)
	}
	if _, ok := img.Config.Volumes[dataDir]; !ok {
		t.Errorf("image volumes %v: want %s", img.Config.Volumes, dataDir)
	}
	if out := strings.TrimSpace(p.must("run", "--rm", "--pull", "never", "--network", "none", image, "version")); out != "bccguard "+version {
		t.Errorf("bccguard version in the image: %q, want %q", out, "bccguard "+version)
	}

	sink := harness.NewSink(t)
	cfg := config(t, sink.Addr())
	const volume = "bccguard-data"

	first := p.startRelay(t, "bccguard-1", volume, cfg)
	if s := first.ready["store"]; s != "ok" {
		t.Errorf("/readyz store: %q, want ok (can the nonroot user write the volume?)", s)
	}
	st := procStatus(t, first.pid)
	t.Logf("container %s at rest after start: VmRSS %s, VmHWM %s", first.name, st["VmRSS"], st["VmHWM"])
	for _, f := range []string{"Uid", "Gid"} {
		if ids := strings.Fields(st[f]); len(ids) == 0 || slices.ContainsFunc(ids, func(id string) bool { return id != "65532" }) {
			t.Errorf("the container's process has %s %q, want 65532 throughout (the image's user)", f, st[f])
		}
	}
	first.healthcheck(t)

	// Explode: one copy per recipient, each To: naming only its own.
	harness.Send(t, first.smtp, "crm@brand.example", survey.rcpts, survey.message(1))
	exploded(t, sink.WaitFor(t, 2, deliverTimeout), 1)
	st = procStatus(t, first.pid)
	t.Logf("container %s after the explode: VmRSS %s, VmHWM %s", first.name, st["VmRSS"], st["VmHWM"])

	// The upstream goes down; a mailing is accepted and stays queued.
	sink.Stop()
	harness.Send(t, first.smtp, "crm@brand.example", survey.rcpts, survey.message(2))
	first.waitQueue(t, "both copies of survey 2 deferred", func(q []harness.QueueEntry) bool {
		return len(q) == 2 && harness.CountState(q, "deferred") == 2
	})

	// podman stop sends the image's stop signal (SIGTERM) and SIGKILL only
	// after stopGrace: exit code 0 and the log line say SIGTERM did it.
	p.must("stop", "--time", strconv.Itoa(stopGrace), first.name)
	if s := p.inspect(first.name).State; s.ExitCode != 0 || s.OOMKilled {
		t.Errorf("%s after podman stop: exit code %d (OOM killed %v), want 0 (137 is SIGKILL: SIGTERM was not handled)", first.name, s.ExitCode, s.OOMKilled)
	}
	if logs := first.remove(t); !loggedShutdown(logs, "terminated") {
		t.Errorf("%s did not log shutting down on SIGTERM", first.name)
	}

	// A new container on the same volume delivers what the first queued.
	sink.Start()
	second := p.startRelay(t, "bccguard-2", volume, cfg)
	exploded(t, sink.WaitUntil(t, deliverTimeout, "the two queued copies of survey 2", func(ms []*smtptest.Message) bool {
		return len(withSubject(ms, survey.subject(2))) == 2
	}), 2)
	second.waitQueue(t, "an empty queue", func(q []harness.QueueEntry) bool { return len(q) == 0 })
	if n := len(sink.Messages()); n != 4 {
		t.Errorf("the upstream received %d messages, want 4 (two copies of each survey)", n)
	}
}

// setup is the relay's configuration for the test: loopback ports (the
// container shares the host's network), the sink as its upstream and an
// explode rule; data_dir is the image's volume.
type setup struct {
	path        string // the file on the host
	smtp, admin string // the listeners' addresses
}

func config(t *testing.T, upstream string) setup {
	t.Helper()
	s := setup{
		path:  filepath.Join(t.TempDir(), "bccguard.yaml"),
		smtp:  fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
	}
	text := fmt.Sprintf(`hostname: %s
data_dir: %s
log: {format: json}
admin: {listen: %q}
listeners:
  - {name: smtp, address: %q}
upstream: {address: %q, tls: none}
queue: {retry_first: 1s, retry_max: 2s, lifetime: 1h}
policy:
  internal_domains: [brand.example]
  rules:
    - {name: many-visible, when: "visible.external >= 2", action: explode}
  default_action: pass
`, harness.Hostname, dataDir, s.admin, s.smtp, upstream)
	// Readable by the container's user, which is not the file's owner.
	if err := os.WriteFile(s.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// relay is a running bccguard container.
type relay struct {
	setup
	p     *podman
	name  string
	pid   int               // of its main process, on the host
	ready map[string]string // the /readyz answer

	removedLogs string // its output, once removed
}

// remove removes the stopped container and returns its output.
func (r *relay) remove(t *testing.T) string {
	t.Helper()
	r.removedLogs = r.p.logs(r.name)
	r.p.must("rm", r.name)
	return r.removedLogs
}

// startRelay runs the image with the configuration cfg mounted where CMD
// reads it, as Kubernetes' embedded.yaml does: read-only root (and no tmpfs
// on /tmp either), no capabilities, no privilege escalation, the image's own
// user; and waits until /readyz answers 200.
func (p *podman) startRelay(t *testing.T, name, volume string, cfg setup) *relay {
	t.Helper()
	p.must("run", "--detach", "--pull", "never", "--name", name,
		"--read-only", "--read-only-tmpfs=false",
		"--cap-drop", "all", "--security-opt", "no-new-privileges",
		"--network", "host",
		"--volume", volume+":"+dataDir,
		"--volume", cfg.path+":"+configPath+":ro",
		image)
	r := &relay{setup: cfg, p: p, name: name}
	t.Cleanup(func() {
		if t.Failed() {
			if r.removedLogs == "" {
				r.removedLogs = p.logs(name)
			}
			t.Logf("container %s output:\n%s", name, r.removedLogs)
		}
	})
	deadline := time.Now().Add(readyTimeout)
	for {
		status, body, err := get("http://" + r.admin + "/readyz")
		if err == nil && status == http.StatusOK {
			if err := json.Unmarshal(body, &r.ready); err != nil {
				t.Fatalf("/readyz: %v: %s", err, body)
			}
			break
		}
		if s := p.inspect(name).State; !s.Running {
			t.Fatalf("container %s is %s (exit code %d) before it was ready:\n%s", name, s.Status, s.ExitCode, p.logs(name))
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s not ready after %v: last /readyz: %d %s %v", name, readyTimeout, status, body, err)
		}
		time.Sleep(harness.PollInterval)
	}
	r.pid = p.inspect(name).State.Pid
	return r
}

// healthcheck runs the image's HEALTHCHECK (podman healthcheck run: the
// image's command, inside the container) and the readiness form of
// `bccguard healthcheck`.
func (r *relay) healthcheck(t *testing.T) {
	t.Helper()
	if out, err := r.p.try("healthcheck", "run", r.name); err != nil {
		t.Errorf("the image's HEALTHCHECK failed: %v\n%s\ncontainer output:\n%s", err, out, r.p.logs(r.name))
	}
	if h := r.p.inspect(r.name).State.Health.Status; h != "healthy" {
		t.Errorf("health after podman healthcheck run: %q, want healthy", h)
	}
	out, err := r.p.try("exec", r.name, binary, "healthcheck", "--config", configPath, "--ready")
	if err != nil || !strings.Contains(out, `"store":"ok"`) {
		t.Errorf("bccguard healthcheck --ready in the container: %v\n%s", err, out)
	}
}

// waitQueue polls `bccguard queue list --json` in the container (through
// the control socket in the volume) until cond holds.
func (r *relay) waitQueue(t *testing.T, what string, cond func([]harness.QueueEntry) bool) {
	t.Helper()
	deadline := time.Now().Add(deliverTimeout)
	for {
		out := r.p.must("exec", r.name, binary, "queue", "list", "--json", "--data-dir", dataDir)
		q, err := harness.ParseQueue(out)
		if err != nil {
			t.Fatalf("queue list --json in %s: %v\n%s", r.name, err, out)
		}
		if cond(q) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for the queue in %s to show %s; last listing:\n%s", deliverTimeout, r.name, what, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// survey is the mailing the test sends: two customers in To:.
var survey = struct {
	rcpts   []string
	subject func(n int) string
	message func(n int) []byte
}{
	rcpts:   []string{"ann@customers.example", "bob@customers.example"},
	subject: func(n int) string { return fmt.Sprintf("Survey %d", n) },
	message: func(n int) []byte {
		return harness.CRLF(fmt.Sprintf(`From: Brand <crm@brand.example>
To: Ann Example <ann@customers.example>, Bob Example <bob@customers.example>
Subject: Survey %d
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <survey-%d@brand.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

How did we do?
`, n, n))
	},
}

// exploded checks that ms holds survey n's two copies, each to one
// recipient whose To: names only them, without Cc:.
func exploded(t *testing.T, ms []*smtptest.Message, n int) {
	t.Helper()
	copies := withSubject(ms, survey.subject(n))
	var got []string
	for _, m := range copies {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Header)))
		if err != nil {
			t.Fatalf("copy of survey %d: %v", n, err)
		}
		mh := mail.Header{Header: message.Header{Header: h}}
		to, err := mh.AddressList("To")
		if err != nil {
			t.Fatalf("copy of survey %d: To: %v", n, err)
		}
		rcpts := m.RcptAddrs()
		if len(rcpts) != 1 || len(to) != 1 || to[0].Address != rcpts[0] {
			t.Errorf("copy of survey %d to %v shows To: %v: want only its own recipient", n, rcpts, to)
		}
		if mh.Has("Cc") {
			t.Errorf("copy of survey %d to %v has a Cc:", n, rcpts)
		}
		got = append(got, rcpts...)
	}
	slices.Sort(got)
	if !slices.Equal(got, survey.rcpts) {
		t.Errorf("survey %d went to %v, want one copy each to %v", n, got, survey.rcpts)
	}
}

func withSubject(ms []*smtptest.Message, subject string) []*smtptest.Message {
	var out []*smtptest.Message
	for _, m := range ms {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Header)))
		if err == nil && h.Get("Subject") == subject {
			out = append(out, m)
		}
	}
	return out
}

// loggedShutdown reports whether the JSON log has bccguard's "shutting
// down" line for signal.
func loggedShutdown(logs, signal string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var e struct{ Msg, Signal string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "shutting down" && e.Signal == signal {
			return true
		}
	}
	return false
}

// procStatus reads /proc/PID/status of a process on the host: the
// container's main process, as the kernel accounts it.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

func get(url string) (int, []byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}
