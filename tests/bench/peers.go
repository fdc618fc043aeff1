// Package bench is the end-to-end benchmark of bccguard against a stock
// Postfix relay, both measured in the same run with the same client
// (Postfix's smtp-source, and a Go client for what smtp-source cannot send)
// and the same upstream (Postfix's smtp-sink). It runs only when
// BCCGUARD_BENCH is set (`make bench`); see docs/benchmarks.md.
package bench

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bccguard/bccguard/tests/harness"
)

// countingSink is smtp-sink -c with its counter read as it runs: the
// number of completed DATA transactions, parsed incrementally from its
// output (re-reading the whole output on every poll would cost the CPU
// the relays are measured on).
type countingSink struct {
	Addr string
	cmd  *exec.Cmd
	mesg atomic.Int64
	done chan struct{}
}

func startSink(t testing.TB) *countingSink {
	t.Helper()
	bin := harness.Tool(t, "smtp-sink")
	s := &countingSink{done: make(chan struct{})}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	// 256: the listen backlog; smtp-sink handles every session itself.
	s.cmd = exec.Command(bin, "-u", "nobody", "-c", s.Addr, "256")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	go func() {
		// The counter line is rewritten after \r: "sess=N quit=N mesg=N".
		sc := bufio.NewScanner(out)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
				return i + 1, data[:i], nil
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			line := sc.Text()
			if i := strings.LastIndex(line, "mesg="); i >= 0 {
				if n, err := strconv.ParseInt(strings.TrimSpace(line[i+5:]), 10, 64); err == nil {
					s.mesg.Store(n)
				}
			}
		}
	}()
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink does not listen on %s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Count is the number of messages the sink has taken so far.
func (s *countingSink) Count() int64 { return s.mesg.Load() }

// waitCount waits until the sink has counted n messages, returning when it
// did, or fails after timeout.
func (s *countingSink) waitCount(t testing.TB, n int64, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s.Count() >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink counted %d messages, want %d, after %v", s.Count(), n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// PostfixDirEnv names a file into which the benchmark writes the throwaway
// Postfix's config directory, so that scripts/bench.sh can stop it even if
// the test process is killed.
const PostfixDirEnv = "BCCGUARD_BENCH_POSTFIX_DIR_FILE"

// startPostfix is the throwaway stock Postfix relay the benchmark measures
// bccguard against, relaying to the sink, with its queue on the same disk
// as bccguard's data folder.
func startPostfix(t testing.TB, sinkAddr string) *harness.PostfixRelay {
	t.Helper()
	f := os.Getenv(PostfixDirEnv)
	p := harness.StartPostfixRelay(t, harness.PostfixOptions{
		Parent:    benchTmp(t),
		Relayhost: sinkAddr,
		BeforeStart: func(conf string) {
			if f != "" {
				os.WriteFile(f, []byte(conf+"\n"), 0o644)
			}
		},
	})
	if f != "" {
		t.Cleanup(func() { os.Remove(f) })
	}
	return p
}

var tmpOnce struct {
	sync.Once
	dir string
}

// benchTmp is where data folders go: the system temporary folder when it
// is on a disk, else a folder in the module (a tmpfs would flatter fsync).
func benchTmp(t testing.TB) string {
	tmpOnce.Do(func() {
		tmpOnce.dir = os.TempDir()
		if isTmpfs(tmpOnce.dir) {
			root, err := harness.ModuleRoot()
			if err == nil {
				d := filepath.Join(root, ".bench-tmp")
				if os.MkdirAll(d, 0o755) == nil {
					tmpOnce.dir = d
				}
			}
		}
	})
	return tmpOnce.dir
}
