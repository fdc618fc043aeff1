package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestPostfixRelayhostOverSTARTTLSAuth chains bccguard behind an
// organisation's Postfix: a throwaway Postfix has bccguard as its relayhost
// and must use STARTTLS (smtp_tls_security_level = encrypt, the certificate
// checked against bccguard's) and SASL AUTH (Cyrus, PLAIN in one instance,
// LOGIN in another) to relay there. A mailing injected with Postfix's
// sendmail reaches bccguard's upstream exploded, one copy per customer,
// each showing that customer alone; bccguard's trace field says it came
// over TLS with AUTH.
func TestPostfixRelayhostOverSTARTTLSAuth(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, tlsFiles := startAuthRelay(t, sink)
	relayhost := r.AddrOf("submission")
	host, port, _ := net.SplitHostPort(relayhost)
	ca, err := os.ReadFile(tlsFiles.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cs := customers(8)
	for _, mech := range []string{"plain", "login"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			pf := harness.StartPostfix(t, harness.PostfixOptions{
				Relayhost: relayhost,
				Hostname:  "mta-" + mech + ".example.org",
				Main: []string{
					"smtp_sasl_auth_enable = yes",
					"smtp_sasl_password_maps = texthash:$config_directory/sasl_passwd",
					"smtp_sasl_mechanism_filter = " + mech,
					// Postfix's default refuses plaintext mechanisms even over TLS.
					"smtp_sasl_security_options = noanonymous",
					"smtp_sasl_tls_security_options = noanonymous",
					"smtp_tls_security_level = encrypt",
					"smtp_tls_CAfile = $config_directory/bccguard.pem",
					"smtp_tls_loglevel = 1",
				},
				Files: map[string]string{
					"sasl_passwd":  fmt.Sprintf("[%s]:%s %s:%s\n", host, port, authUser, authPassword),
					"bccguard.pem": string(ca),
				},
			})
			subject := "Postfix as a client of bccguard, AUTH " + strings.ToUpper(mech)
			msg := crmMailing(cs, subject)
			if res := pf.Sendmail("crm@example.com", rcptAddrs(cs), lf(msg)); !res.OK() {
				t.Fatalf("sendmail into the throwaway Postfix:\n%s", res)
			}
			ms := sink.WaitUntil(t, deliverTimeout, "the copies of "+subject, func(ms []*smtptest.Message) bool {
				return len(withSubject(ms, subject)) >= len(cs)
			})
			ms = withSubject(ms, subject)

			// What bccguard received is the mailing below Postfix's own
			// Received: field, the same in every copy, under bccguard's.
			fields := harness.Fields(ms[0].Header)
			if len(fields) < 2 || fields[1].Name != "Received" || !bytes.Contains(fields[1].Raw, []byte("by mta-"+mech+".example.org (Postfix")) {
				t.Fatalf("want Postfix's Received: field under bccguard's, got header:\n%s", ms[0].Header)
			}
			checkExploded(t, append(bytes.Clone(fields[1].Raw), msg...), ms, cs)
			for _, m := range ms {
				recv := harness.Fields(m.Header)[0]
				if !bytes.Contains(recv.Raw, []byte("from mta-"+mech+".example.org")) || !bytes.Contains(recv.Raw, []byte("with ESMTPSA")) {
					t.Errorf("bccguard's Received: field does not show Postfix over TLS with AUTH (ESMTPSA): %q", recv.Raw)
				}
			}
			if log := pf.Maillog(); !strings.Contains(log, "Trusted TLS connection established to "+host) {
				t.Errorf("Postfix's log shows no verified TLS connection to bccguard:\n%s", log)
			}
		})
	}
}
