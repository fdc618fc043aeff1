package harness

import (
	"bufio"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/syncbuf"
)

// Timeouts of the relay's life cycle; generous because CI machines are small.
const (
	StartTimeout = 20 * time.Second // until the SMTP port greets with 220
	StopTimeout  = 30 * time.Second // from SIGTERM until the process has exited
)

// Relay is a running bccguard process.
type Relay struct {
	t       testing.TB
	bin     string
	dir     string // the test's folder: config file, certificates, …
	dataDir string
	cfgPath string
	opts    options

	portsMu sync.Mutex
	ports   map[string]int

	logs *syncbuf.Buffer
	runs int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

type options struct {
	upstream string
	ready    string
	args     []string
	dir      string
}

// Option changes how Start runs the relay.
type Option func(*options)

// WithUpstream makes addr available as {{.Upstream}} and, when the config
// has no upstream section, delivers there without TLS.
func WithUpstream(addr string) Option { return func(o *options) { o.upstream = addr } }

// ReadyOn names the port (as in {{addr "NAME"}}) that must greet with a
// plain-text 220 before Start returns; the default is "smtp".
func ReadyOn(name string) Option { return func(o *options) { o.ready = name } }

// ServeArgs adds arguments to `bccguard serve --config FILE`.
func ServeArgs(args ...string) Option { return func(o *options) { o.args = append(o.args, args...) } }

// InDir uses dir (which must exist) as the test's folder instead of a new
// temporary one, so files the test prepared ({{.Dir}}) are next to the config.
func InDir(dir string) Option { return func(o *options) { o.dir = dir } }

// Start writes the configuration (see renderConfig for the template and the
// defaults), runs `bccguard serve --config FILE` and waits until it greets.
// The process is stopped when the test ends; its output is logged if the
// test failed.
func Start(t testing.TB, cfg string, opts ...Option) *Relay {
	t.Helper()
	r := &Relay{t: t, bin: Binary(t), ports: map[string]int{}, logs: &syncbuf.Buffer{}}
	r.opts.ready = "smtp"
	for _, o := range opts {
		o(&r.opts)
	}
	r.dir = r.opts.dir
	if r.dir == "" {
		r.dir = t.TempDir()
	}
	r.dataDir = filepath.Join(t.TempDir(), "data")
	text, err := r.renderConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.cfgPath = filepath.Join(r.dir, "bccguard.yaml")
	if err := os.WriteFile(r.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stop(false)
		if t.Failed() {
			t.Logf("bccguard config %s:\n%s", r.cfgPath, text)
			t.Logf("bccguard output:\n%s", r.Logs())
		}
	})
	r.launch()
	return r
}

// Dir is the test's folder holding the config file.
func (r *Relay) Dir() string { return r.dir }

// DataDir is the relay's data folder.
func (r *Relay) DataDir() string { return r.dataDir }

// ConfigPath is the config file the relay runs with.
func (r *Relay) ConfigPath() string { return r.cfgPath }

// Addr is the address of the listener named "smtp" (the default one).
func (r *Relay) Addr() string { return r.AddrOf("smtp") }

// AdminAddr is the admin listener's address (when the harness chose it).
func (r *Relay) AdminAddr() string { return r.AddrOf("admin") }

// Port is the port reserved for name, chosen the first time it is asked for
// and kept across restarts.
func (r *Relay) Port(name string) int {
	r.portsMu.Lock()
	defer r.portsMu.Unlock()
	p, ok := r.ports[name]
	if !ok {
		p = FreePort(r.t)
		r.ports[name] = p
	}
	return p
}

// AddrOf is 127.0.0.1 with the port reserved for name.
func (r *Relay) AddrOf(name string) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port(name)))
}

// Logs is everything the relay printed, over all its runs.
func (r *Relay) Logs() string { return r.logs.String() }

// PID is the current process's id.
func (r *Relay) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (r *Relay) Running() bool {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func (r *Relay) launch() {
	t := r.t
	t.Helper()
	r.runs++
	fmt.Fprintf(r.logs, "=== harness: bccguard run %d starts at %s ===\n", r.runs, time.Now().Format(time.RFC3339Nano))
	args := append([]string{"serve", "--config", r.cfgPath}, r.opts.args...)
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	cmd.Stdout = r.logs
	cmd.Stderr = r.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bccguard: %v", err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(r.logs, "=== harness: bccguard run exited: %v ===\n", exitText(cmd, err))
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()

	addr := r.AddrOf(r.opts.ready)
	deadline := time.Now().Add(StartTimeout)
	var last error
	for {
		select {
		case <-done:
			t.Fatalf("bccguard exited while starting (%s); output:\n%s", exitText(cmd, nil), r.Logs())
		default:
		}
		if last = greets(addr); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bccguard did not greet with 220 on %s within %v: %v", addr, StartTimeout, last)
		}
		time.Sleep(PollInterval)
	}
}

func exitText(cmd *exec.Cmd, err error) string {
	if cmd.ProcessState != nil {
		return cmd.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "running"
}

// greets connects to addr and checks for a 220 greeting, then says QUIT.
func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	tp := textproto.NewReader(bufio.NewReader(c))
	code, msg, err := tp.ReadResponse(0)
	if err != nil {
		return err
	}
	if code != 220 {
		return fmt.Errorf("greeting %d %s", code, msg)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	tp.ReadResponse(0)
	return nil
}

// Stop sends SIGTERM and waits for the process to exit; it fails the test if
// that takes longer than StopTimeout (and then kills it). It returns the exit
// code (-1 when killed by a signal).
func (r *Relay) Stop() int {
	r.t.Helper()
	return r.stop(true)
}

func (r *Relay) stop(report bool) int {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return 0
	}
	select {
	case <-done:
	default:
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(StopTimeout):
			if report {
				r.t.Errorf("bccguard did not exit within %v of SIGTERM; killing it", StopTimeout)
			}
			cmd.Process.Kill()
			<-done
		}
	}
	return cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL (kill -9) and waits until the process is gone.
func (r *Relay) Kill() {
	r.t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart stops the relay (if it is running) and starts it again with the
// same configuration, ports and data folder.
func (r *Relay) Restart() {
	r.t.Helper()
	if r.Running() {
		r.Stop()
	}
	r.launch()
}

// PeakRSS is the process's peak resident set size in bytes (VmHWM in
// /proc/PID/status). The process must be running.
func (r *Relay) PeakRSS() int64 {
	r.t.Helper()
	pid := r.PID()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		r.t.Fatalf("peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	r.t.Fatalf("peak RSS: no VmHWM in /proc/%d/status", pid)
	return 0
}
