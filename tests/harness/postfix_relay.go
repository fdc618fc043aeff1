package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PostfixRelay is a throwaway stock Postfix (`postfix -c DIR start`) set up
// as a plain relay: its own config, queue and data folders in a temporary
// folder, smtpd on a loopback port of its own that lets 127.0.0.0/8 relay,
// no local delivery, everything relayed to one relayhost. It needs root
// (postfix start).
type PostfixRelay struct {
	// Addr is where its smtpd listens.
	Addr string
	// Dir holds everything; ConfDir is its config_directory.
	Dir, ConfDir string
}

// PostfixOptions configure StartPostfixRelay.
type PostfixOptions struct {
	// Parent is the folder to make Dir in ("" for the system's temporary
	// folder; a benchmark wants a real disk).
	Parent string
	// Relayhost is host:port of the MTA everything is relayed to.
	Relayhost string
	// Main is added to main.cf.
	Main string
	// BeforeStart, when set, is called with ConfDir once the
	// configuration is written (so a script can stop the instance should
	// the test process be killed).
	BeforeStart func(confDir string)
}

// StartPostfixRelay writes the configuration, starts Postfix and waits
// until its smtpd accepts connections. It is stopped, and its folder
// removed, when the test ends.
func StartPostfixRelay(t testing.TB, o PostfixOptions) *PostfixRelay {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the throwaway Postfix needs root (postfix start): run the tests as root, as make test does in CI")
	}
	bin := Tool(t, "postfix")
	// A folder the postfix user can traverse.
	dir, err := os.MkdirTemp(o.Parent, "postfix-relay-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	p := &PostfixRelay{Dir: dir, ConfDir: filepath.Join(dir, "conf")}
	queue, data := filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{p.ConfDir, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec.Command("chown", "postfix", data).Run(); err != nil {
		t.Fatalf("chown postfix %s: %v", data, err)
	}
	port := FreePort(t)
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	host, hport, err := net.SplitHostPort(o.Relayhost)
	if err != nil {
		t.Fatalf("relayhost %q: %v", o.Relayhost, err)
	}
	mainCF := fmt.Sprintf(`# throwaway relay for bccguard's tests
compatibility_level = 3.6
config_directory = %[1]s
queue_directory = %[2]s
data_directory = %[3]s
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-relay.localdomain
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
%[7]s
`, p.ConfDir, queue, data, host, hport, dir, o.Main)
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
	if err := os.WriteFile(filepath.Join(p.ConfDir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.ConfDir, "master.cf"), []byte(masterCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.BeforeStart != nil {
		o.BeforeStart(p.ConfDir)
	}
	// Stopped in every case, even when the start half failed.
	t.Cleanup(func() {
		out, err := exec.Command(bin, "-c", p.ConfDir, "stop").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not running") {
			t.Logf("postfix -c %s stop: %v\n%s", p.ConfDir, err, out)
		}
		if t.Failed() {
			t.Logf("postfix log:\n%s", p.Log())
		}
		os.RemoveAll(dir)
	})
	if out, err := exec.Command(bin, "-c", p.ConfDir, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix -c %s start: %v\n%s\n%s", p.ConfDir, err, out, p.Log())
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
		time.Sleep(PollInterval)
	}
}

// Log is Postfix's log so far (its maillog_file).
func (p *PostfixRelay) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}
