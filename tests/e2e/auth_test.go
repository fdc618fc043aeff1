package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
	"github.com/emersion/go-sasl"
)

const (
	authUser     = "crm@example.com"
	authPassword = "correct horse battery staple"
)

// startAuthRelay runs a relay whose "submission" listener offers STARTTLS
// and AUTH and allow-lists no loopback address, so only AUTH lets a test
// client relay there.
func startAuthRelay(t *testing.T, sink *smtptest.Sink) (*harness.Relay, harness.TLSFiles) {
	t.Helper()
	return startAuthRelayLimits(t, sink, "{}")
}

// startAuthRelayLimits is startAuthRelay with the submission listener's
// limits given (a YAML mapping, "{}" for the defaults).
func startAuthRelayLimits(t *testing.T, sink *smtptest.Sink, limits string) (*harness.Relay, harness.TLSFiles) {
	t.Helper()
	dir := t.TempDir()
	tlsFiles := harness.WriteTLSCert(t, dir)
	r := harness.Start(t, fmt.Sprintf(`
listeners:
  - name: smtp
    address: {{addr "smtp"}}
  - name: submission
    address: {{addr "submission"}}
    tls: starttls
    tls_cert: {{.Dir}}/cert.pem
    tls_key: {{.Dir}}/key.pem
    auth: true
    allow_networks: [192.0.2.0/24]
    limits: %s
auth:
  users:
    - name: %s
      password_hash: %q
`, limits, authUser, bcryptHash(t, authPassword)), harness.WithUpstream(sink.Addr()), harness.InDir(dir))
	return r, tlsFiles
}

func TestAuthOnlyAfterSTARTTLS(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, tlsFiles := startAuthRelay(t, sink)
	c := harness.DialRaw(t, r.AddrOf("submission"), "")
	ehlo := c.Expect("EHLO "+harness.ClientHelo, 250, "")
	if hasExt(ehlo, "AUTH") != "" {
		t.Errorf("AUTH offered before STARTTLS: %s", ehlo)
	}
	if hasExt(ehlo, "STARTTLS") == "" {
		t.Fatalf("STARTTLS not offered: %s", ehlo)
	}
	// A client that tries anyway is refused, and its password was not
	// accepted in the clear.
	if rep := c.Cmd("AUTH PLAIN " + plainResp(authUser, authPassword)); rep.Code/100 != 5 {
		t.Errorf("AUTH PLAIN before STARTTLS: want a 5xx refusal, got %s", rep)
	}
	if rep := c.Cmd("MAIL FROM:<" + authUser + ">"); !rep.Is(530, "5.7.0") {
		t.Errorf("MAIL FROM after refused AUTH: want 530 5.7.0, got %s", rep)
	}
	c.Close()

	c = harness.DialRaw(t, r.AddrOf("submission"), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	c.StartTLS(tlsFiles.Client)
	ehlo = c.Expect("EHLO "+harness.ClientHelo, 250, "")
	mechs := strings.Fields(strings.ToUpper(hasExt(ehlo, "AUTH")))
	if !slices.Contains(mechs, "PLAIN") || !slices.Contains(mechs, "LOGIN") {
		t.Errorf("after STARTTLS want AUTH PLAIN LOGIN offered, got %s", ehlo)
	}
}

// hasExt returns the EHLO keyword line for ext ("" if not offered).
func hasExt(ehlo harness.Reply, ext string) string {
	for _, l := range ehlo.Lines[1:] {
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], ext) {
			return l
		}
	}
	return ""
}

func plainResp(user, pass string) string {
	return base64Std("\x00" + user + "\x00" + pass)
}

func TestAuthPlainAndLoginWithSwaks(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, _ := startAuthRelay(t, sink)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		res := harness.Swaks(t, "--server", r.AddrOf("submission"), "-tls",
			"--auth", mech, "--auth-user", authUser, "--auth-password", authPassword,
			"--from", authUser, "--to", "rcpt@example.net", "--header", "Subject: swaks AUTH "+mech)
		if res.ExitCode != 0 {
			t.Fatalf("swaks AUTH %s over STARTTLS failed (exit %d):\n%s", mech, res.ExitCode, res.Output)
		}
		subject := "Subject: swaks AUTH " + mech + "\r\n"
		sink.WaitUntil(t, deliverTimeout, "the message sent with AUTH "+mech, func(ms []*smtptest.Message) bool {
			return slices.ContainsFunc(ms, func(m *smtptest.Message) bool { return strings.Contains(string(m.Header), subject) })
		})
	}
	res := harness.Swaks(t, "--server", r.AddrOf("submission"), "-tls",
		"--auth", "LOGIN", "--auth-user", authUser, "--auth-password", "wrong password",
		"--from", authUser, "--to", "rcpt@example.net")
	if res.ExitCode == 0 || !strings.Contains(res.Output, "535 5.7.8") {
		t.Errorf("wrong password: want swaks to fail with 535 5.7.8, got exit %d:\n%s", res.ExitCode, res.Output)
	}
}

func TestAuthPlainAndLoginWithGoSMTP(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, tlsFiles := startAuthRelay(t, sink)
	clients := map[string]func(user, pass string) sasl.Client{
		"PLAIN": func(u, p string) sasl.Client { return sasl.NewPlainClient("", u, p) },
		"LOGIN": sasl.NewLoginClient,
	}
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		msg := harness.CRLF("From: " + authUser + "\nTo: rcpt@example.net\nSubject: go-smtp AUTH " + mech + "\n\nx\n")
		reply := harness.SendWith(t, r.AddrOf("submission"), authUser, []string{"rcpt@example.net"}, bytesReader(string(msg)), &harness.SendOptions{
			StartTLS: tlsFiles.Client,
			Auth:     clients[mech](authUser, authPassword),
		})
		queueID(t, reply)
		subject := "Subject: go-smtp AUTH " + mech + "\r\n"
		sink.WaitUntil(t, deliverTimeout, "the message sent with AUTH "+mech, func(ms []*smtptest.Message) bool {
			return slices.ContainsFunc(ms, func(m *smtptest.Message) bool { return strings.Contains(string(m.Header), subject) })
		})

		_, err := harness.TrySend(r.AddrOf("submission"), authUser, []string{"rcpt@example.net"}, bytesReader(string(msg)), &harness.SendOptions{
			StartTLS: tlsFiles.Client,
			Auth:     clients[mech](authUser, "wrong password"),
		})
		if code, enh := harness.Code(err); code != 535 || enh != "5.7.8" {
			t.Errorf("AUTH %s with a wrong password: want 535 5.7.8, got %v", mech, err)
		}
	}
}
