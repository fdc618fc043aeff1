package harness

import (
	"context"
	_ "embed"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

//go:embed netsmtp.pl
var netSMTPScript []byte

// NetSMTPTimeout bounds one Net::SMTP run. Net::SMTP's own Timeout does not
// cover reads once IO::Socket::SSL has taken over the socket, so a client
// stuck waiting for a reply is ended here.
const NetSMTPTimeout = 60 * time.Second

// NetSMTPOptions is one message sent with Perl's Net::SMTP.
type NetSMTPOptions struct {
	Server   string // HOST:PORT
	StartTLS bool
	// CAFile makes the client verify the server's certificate against it
	// for TLSName (default: the host of Server); empty: no verification.
	CAFile  string
	TLSName string
	// User and Password turn on AUTH; Mech picks PLAIN or LOGIN (default:
	// what Authen::SASL chooses from the server's list).
	User, Password, Mech string
	From                 string
	To                   []string
	Message              []byte
	// Timeout is Net::SMTP's Timeout in seconds (default 30).
	Timeout int
	// Characters hands datasend the message decoded from UTF-8 into a Perl
	// character string, as a CRM holding text from a database or a `use
	// utf8` template has it, instead of the octets Net::SMTP expects.
	Characters bool
}

// NetSMTPResult is one Net::SMTP run: its transcript (Net::SMTP's Debug
// output), the last line it printed ("OK <reply>" or "FAIL <stage> <code>
// <reply>") and whether it finished within NetSMTPTimeout.
type NetSMTPResult struct {
	Transcript string
	Result     string
	ExitCode   int
	TimedOut   bool
}

// OK reports that the message was accepted.
func (r NetSMTPResult) OK() bool { return r.ExitCode == 0 && strings.HasPrefix(r.Result, "OK ") }

// Reply is the end-of-DATA reply ("250 2.0.0 Ok: queued as ID") of an
// accepted message.
func (r NetSMTPResult) Reply() string { return strings.TrimPrefix(r.Result, "OK ") }

// NetSMTP sends o.Message with Perl's Net::SMTP (Debian's perl, with
// IO::Socket::SSL for STARTTLS and Authen::SASL for AUTH): the client
// library many CRM tools are built on, sharing no code with bccguard.
func NetSMTP(t testing.TB, o NetSMTPOptions) NetSMTPResult {
	t.Helper()
	// Debian's perl, where the install script put the modules (not
	// whatever perl comes first on PATH).
	const perl = "/usr/bin/perl"
	if out, err := exec.Command(perl, "-MNet::SMTP", "-MIO::Socket::SSL", "-MAuthen::SASL", "-e", "1").CombinedOutput(); err != nil {
		t.Fatalf("Net::SMTP with IO::Socket::SSL and Authen::SASL is not installed: run scripts/install-test-deps.sh (make test does):\n%s", out)
	}
	script := filepath.Join(t.TempDir(), "netsmtp.pl")
	if err := os.WriteFile(script, netSMTPScript, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{script, "--server", o.Server, "--from", o.From, "--helo", ClientHelo}
	for _, to := range o.To {
		args = append(args, "--to", to)
	}
	if o.StartTLS {
		args = append(args, "--starttls")
	}
	if o.CAFile != "" {
		args = append(args, "--ca-file", o.CAFile)
	}
	if o.TLSName != "" {
		args = append(args, "--tls-name", o.TLSName)
	}
	if o.User != "" {
		args = append(args, "--auth-user", o.User, "--auth-password", o.Password)
	}
	if o.Mech != "" {
		args = append(args, "--auth-mech", o.Mech)
	}
	if o.Characters {
		args = append(args, "--characters")
	}
	if o.Timeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(o.Timeout))
	}
	run := runTool("perl Net::SMTP", perl, NetSMTPTimeout, o.Message, args)
	if run.ExitCode == -1 && run.Err != nil && !errors.Is(run.Err, context.DeadlineExceeded) {
		t.Fatalf("run Net::SMTP: %v", run.Err)
	}
	res := NetSMTPResult{Transcript: run.Stderr, ExitCode: run.ExitCode, TimedOut: errors.Is(run.Err, context.DeadlineExceeded)}
	if lines := strings.Split(strings.TrimSpace(run.Stdout), "\n"); len(lines) > 0 {
		res.Result = strings.TrimSpace(lines[len(lines)-1])
	}
	return res
}
