package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Postfix is a throwaway Postfix MTA relaying everything to one relayhost:
// its own configuration, queue and data folders in a temporary folder,
// smtpd on a loopback port of its own, no local delivery. It is started
// with `postfix -c DIR start` (which needs root) and stopped when the test
// ends, whatever happened.
type Postfix struct {
	t testing.TB
	// Dir holds conf/, queue/, data/ and the maillog file.
	Dir     string
	ConfDir string
	// Addr is its smtpd, for clients that inject over SMTP.
	Addr string
	bin  string
}

// PostfixOptions configures a throwaway Postfix.
type PostfixOptions struct {
	// Relayhost (HOST:PORT) is where every message goes, as relayhost =
	// [HOST]:PORT (no MX lookup).
	Relayhost string
	// Hostname is myhostname (default postfix.localdomain): the name in its
	// EHLO and Received: fields.
	Hostname string
	// Parent is where its folder is made (default: the system temporary
	// folder); the postfix user must be able to traverse it.
	Parent string
	// Main holds more main.cf lines ("name = value"), after the defaults,
	// which they override. $config_directory names the configuration folder.
	Main []string
	// Files are written into the configuration folder (name → content,
	// mode 0600) before it starts: password tables, certificates.
	Files map[string]string
	// ConfDirFile, if set, gets the configuration folder's path while it
	// runs, so that a script can stop it if the test process is killed.
	ConfDirFile string
}

// StartPostfix writes the configuration, starts Postfix and waits until its
// smtpd greets.
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the throwaway Postfix needs root (postfix start): run the tests as root (make test does on CI)")
	}
	bin := Tool(t, "postfix")
	if o.Hostname == "" {
		o.Hostname = "postfix.localdomain"
	}
	dir, err := os.MkdirTemp(o.Parent, "postfix-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	p := &Postfix{t: t, Dir: dir, ConfDir: filepath.Join(dir, "conf"), bin: bin}
	queue, data := filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{p.ConfDir, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", data).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix %s: %v\n%s", data, err, out)
	}
	port := FreePort(t)
	p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rhost, rport, err := net.SplitHostPort(o.Relayhost)
	if err != nil {
		t.Fatalf("Postfix relayhost %q: %v", o.Relayhost, err)
	}
	mainCF := fmt.Sprintf(`# throwaway Postfix for a bccguard test
compatibility_level = 3.6
config_directory = %[1]s
queue_directory = %[2]s
data_directory = %[3]s
mail_owner = postfix
setgid_group = postdrop
myhostname = %[7]s
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
smtputf8_enable = no
biff = no
maillog_file_prefixes = /var, /dev/stdout, %[6]s
maillog_file = %[6]s/maillog
`, p.ConfDir, queue, data, rhost, rport, dir, o.Hostname) + strings.Join(o.Main, "\n") + "\n"
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
	files := map[string]string{"main.cf": mainCF, "master.cf": masterCF}
	for name, content := range o.Files {
		files[name] = content
	}
	for name, content := range files {
		mode := os.FileMode(0o600)
		if name == "main.cf" || name == "master.cf" {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(p.ConfDir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	if o.ConfDirFile != "" {
		os.WriteFile(o.ConfDirFile, []byte(p.ConfDir+"\n"), 0o644)
	}
	// Stopped in every case, even when the start half failed.
	t.Cleanup(func() {
		out, err := exec.Command(bin, "-c", p.ConfDir, "stop").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not running") {
			t.Logf("postfix -c %s stop: %v\n%s", p.ConfDir, err, out)
		}
		if t.Failed() {
			t.Logf("Postfix maillog:\n%s", p.Maillog())
		}
		if o.ConfDirFile != "" {
			os.Remove(o.ConfDirFile)
		}
		os.RemoveAll(dir)
	})
	if out, err := exec.Command(bin, "-c", p.ConfDir, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix -c %s start: %v\n%s\n%s", p.ConfDir, err, out, p.Maillog())
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		err := greets(p.Addr)
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix's smtpd does not greet on %s: %v\n%s", p.Addr, err, p.Maillog())
		}
		time.Sleep(PollInterval)
	}
}

// Maillog is what Postfix has logged so far.
func (p *Postfix) Maillog() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// Sendmail injects msg the way local programs do: `sendmail -C CONF -i -f
// from -- rcpts…` with the message on standard input (LF or CRLF line
// ends; a line with a lone dot is part of the message).
func (p *Postfix) Sendmail(from string, rcpts []string, msg []byte) CLIResult {
	p.t.Helper()
	args := append([]string{"-C", p.ConfDir, "-i", "-f", from, "--"}, rcpts...)
	return runTool("sendmail", Tool(p.t, "sendmail"), CLITimeout, msg, args)
}
