// Package bench is the end-to-end benchmark of bccguard against a stock
// Postfix relay, both measured in the same run with the same client
// (Postfix's smtp-source, and a Go client for what smtp-source cannot send)
// and the same upstream (Postfix's smtp-sink). It runs only when
// BCCGUARD_BENCH is set (`make bench`); see docs/benchmarks.md.
package bench

import (
	"bufio"
	"bytes"
	"fmt"
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

// postfixRelay is a throwaway Postfix instance configured as a plain relay
// to the sink: its own config and queue directories in a temporary folder,
// smtpd on a loopback port of its own, no local delivery.
type postfixRelay struct {
	dir  string
	Addr string
}

// PostfixDirEnv names a file into which the benchmark writes the throwaway
// Postfix's config directory, so that scripts/bench.sh can stop it even if
// the test process is killed.
const PostfixDirEnv = "BCCGUARD_BENCH_POSTFIX_DIR_FILE"

func startPostfix(t testing.TB, sinkAddr string) *postfixRelay {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the Postfix peer needs root (postfix start); run `make bench` as root")
	}
	bin := harness.Tool(t, "postfix")
	// A folder the postfix user can traverse, on the same disk as
	// bccguard's data folder.
	dir, err := os.MkdirTemp(benchTmp(t), "bench-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	p := &postfixRelay{dir: dir}
	conf, queue, data := filepath.Join(dir, "conf"), filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{conf, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec.Command("chown", "postfix", data).Run(); err != nil {
		t.Fatalf("chown postfix %s: %v", data, err)
	}
	port := harness.FreePort(t)
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	mainCF := fmt.Sprintf(`# throwaway relay for the bccguard benchmark
compatibility_level = 3.6
config_directory = %[1]s
queue_directory = %[2]s
data_directory = %[3]s
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [%[4]s]:%[5]s
message_size_limit = 52428800
default_process_limit = 100
smtputf8_enable = no
biff = no
maillog_file_prefixes = /var, /dev/stdout, %[6]s
maillog_file = %[6]s/maillog
`, conf, queue, data, hostOf(sinkAddr), portOf(sinkAddr), dir)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, port)
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(masterCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if f := os.Getenv(PostfixDirEnv); f != "" {
		os.WriteFile(f, []byte(conf+"\n"), 0o644)
	}
	// Stopped in every case, even when the start half failed.
	t.Cleanup(func() {
		out, err := exec.Command(bin, "-c", conf, "stop").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not running") {
			t.Logf("postfix -c %s stop: %v\n%s", conf, err, out)
		}
		if f := os.Getenv(PostfixDirEnv); f != "" {
			os.Remove(f)
		}
		os.RemoveAll(dir)
	})
	if out, err := exec.Command(bin, "-c", conf, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix -c %s start: %v\n%s\n%s", conf, err, out, log)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s: %v", p.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

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
