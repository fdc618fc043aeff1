package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

// TestNoRelayForStrangers: bccguard is never an open relay. A client whose
// address is not allow-listed (127.0.0.2 against 127.0.0.1/32) and that has
// not authenticated is refused at MAIL FROM or RCPT TO with 5.7.x, on a
// listener without AUTH and on one that offers AUTH; the upstream gets
// nothing from it, while the allow-listed address relays normally.
func TestNoRelayForStrangers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tlsFiles := harness.WriteTLSCert(t, dir)
	sink := harness.NewSink(t)
	r := harness.Start(t, fmt.Sprintf(`
listeners:
  - name: smtp
    address: {{addr "smtp"}}
  - name: plain
    address: {{hostaddr "127.0.0.2" "plain"}}
    allow_networks: [127.0.0.1/32]
  - name: submission
    address: {{hostaddr "127.0.0.2" "submission"}}
    tls: starttls
    tls_cert: {{.Dir}}/cert.pem
    tls_key: {{.Dir}}/key.pem
    auth: true
    allow_networks: [127.0.0.1/32]
auth:
  users:
    - {name: crm@example.com, password_hash: %q}
`, bcryptHash(t, "correct horse")), harness.WithUpstream(sink.Addr()), harness.InDir(dir))
	plain := "127.0.0.2:" + itoa(r.Port("plain"))
	submission := "127.0.0.2:" + itoa(r.Port("submission"))

	// refused runs one transaction from 127.0.0.2 and expects a 5xx 5.7.x
	// refusal at MAIL FROM or RCPT TO; it returns that reply.
	refused := func(t *testing.T, c *harness.RawConn) harness.Reply {
		t.Helper()
		mail := c.Cmd("MAIL FROM:<spammer@example.com>")
		if mail.Code/100 == 5 {
			return mail
		}
		if mail.Code != 250 {
			t.Fatalf("MAIL FROM: want 250 or a 5.7.x refusal, got %s", mail)
		}
		rcpt := c.Cmd("RCPT TO:<victim@example.net>")
		if rcpt.Code/100 != 5 {
			t.Fatalf("unauthenticated client from 127.0.0.2 may relay: RCPT TO got %s, want 5xx 5.7.x", rcpt)
		}
		return rcpt
	}

	t.Run("no AUTH listener", func(t *testing.T) {
		c := harness.DialRaw(t, plain, "127.0.0.2")
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		if rep := refused(t, c); !rep.Is(554, "5.7.1") {
			t.Errorf("want 554 5.7.1 (Relay access denied), got %s", rep)
		}
	})
	t.Run("AUTH listener, before STARTTLS", func(t *testing.T) {
		c := harness.DialRaw(t, submission, "127.0.0.2")
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		if rep := refused(t, c); !rep.Is(530, "5.7.0") {
			t.Errorf("want 530 5.7.0 (Authentication required) at MAIL FROM, got %s", rep)
		}
	})
	t.Run("AUTH listener, after STARTTLS", func(t *testing.T) {
		c := harness.DialRaw(t, submission, "127.0.0.2")
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		c.StartTLS(tlsFiles.Client)
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		if rep := refused(t, c); !rep.Is(530, "5.7.0") {
			t.Errorf("want 530 5.7.0 (Authentication required) at MAIL FROM, got %s", rep)
		}
	})
	t.Run("go-smtp client", func(t *testing.T) {
		_, err := harness.TrySend(plain, "spammer@example.com", []string{"victim@example.net"},
			bytesReader("Subject: spam\r\n\r\nspam\r\n"), &harness.SendOptions{LocalAddr: "127.0.0.2"})
		if code, enh := harness.Code(err); code/100 != 5 || !strings.HasPrefix(enh, "5.7.") {
			t.Errorf("want a 5.7.x refusal, got %v", err)
		}
	})

	// The allow-listed address relays through the same listener.
	ok := harness.CRLF("From: alice@example.com\nTo: bob@example.net\nSubject: allowed\n\nx\n")
	harness.SendWith(t, plain, "alice@example.com", []string{"bob@example.net"}, bytesReader(string(ok)), &harness.SendOptions{LocalAddr: "127.0.0.1"})
	sink.WaitFor(t, 1, deliverTimeout)
	waitQueue(t, r, "nothing pending", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
	for _, m := range sink.Messages() {
		if m.From != "alice@example.com" {
			t.Errorf("upstream got a message from <%s>: only the allow-listed client's may pass", m.From)
		}
	}
}
