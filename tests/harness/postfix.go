package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/syncbuf"
)

// PostfixSink is Postfix's smtp-sink: an upstream that shares no code with
// bccguard. It counts messages and, with dumps on, writes each transaction
// to a file. Note: it binds with SO_REUSEPORT, so the harness gives it a
// port of its own; as root it runs as nobody; its dumps use LF line endings.
type PostfixSink struct {
	t    testing.TB
	Addr string
	// DumpDir holds one file per transaction when dumps are on.
	DumpDir string
	cmd     *exec.Cmd
	out     *syncbuf.Buffer
	done    chan struct{}
}

// StartPostfixSink runs `smtp-sink -u nobody -c [-d DIR/%M.] [args…]
// 127.0.0.1:PORT 64` and waits until it greets. It is stopped when the test
// ends.
func StartPostfixSink(t testing.TB, dump bool, args ...string) *PostfixSink {
	t.Helper()
	bin := Tool(t, "smtp-sink")
	s := &PostfixSink{t: t, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	argv := []string{"-u", "nobody", "-c"}
	if dump {
		// The sink writes as nobody: a folder of its own that nobody may
		// enter, outside the test's private temporary folders.
		dir, err := os.MkdirTemp("", "smtp-sink-")
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o777)
		t.Cleanup(func() { os.RemoveAll(dir) })
		s.DumpDir = dir
		argv = append(argv, "-d", filepath.Join(dir, "%M."))
	}
	argv = append(argv, args...)
	argv = append(argv, s.Addr, "64")
	s.cmd = exec.Command(bin, argv...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("smtp-sink %s output:\n%s", strings.Join(argv, " "), strings.ReplaceAll(s.out.String(), "\r", "\n"))
		}
	})
	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-s.done:
			t.Fatalf("smtp-sink exited at start: %s", s.out.String())
		default:
		}
		err := greets(s.Addr)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not greet on %s: %v", s.Addr, err)
		}
		time.Sleep(PollInterval)
	}
}

var mesgCount = regexp.MustCompile(`mesg=(\d+)`)

// Count is the number of messages the sink has received (completed DATA),
// from its running counter.
func (s *PostfixSink) Count() int {
	m := mesgCount.FindAllStringSubmatch(s.out.String(), -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// WaitFor waits until the sink has counted n messages.
func (s *PostfixSink) WaitFor(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("smtp-sink to count %d messages (has %d)", n, s.Count()), func() bool { return s.Count() >= n })
}

// Dumps returns the dump files' contents, ordered by file name.
func (s *PostfixSink) Dumps() []string {
	s.t.Helper()
	if s.DumpDir == "" {
		s.t.Fatal("smtp-sink was started without dumps")
	}
	ents, err := os.ReadDir(s.DumpDir)
	if err != nil {
		s.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(s.DumpDir, n))
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// Stop ends the sink (it is a process the harness started).
func (s *PostfixSink) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

// SMTPSource runs Postfix's smtp-source against addr with args (for example
// "-m", "20", "-s", "2", "-f", from, "-t", to) and returns its run; the test
// decides what exit code it expects.
func SMTPSource(t testing.TB, addr string, args ...string) CLIResult {
	t.Helper()
	argv := append(append([]string{}, args...), addr)
	return runTool("smtp-source", Tool(t, "smtp-source"), 3*time.Minute, nil, argv)
}
