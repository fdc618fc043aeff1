package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// dkimSetup is a sending domain, brand.example, with an RSA and an Ed25519
// key made by `bccguard dkim keygen` and published on a DNS server on
// loopback (the records exactly as keygen printed them), plus the other
// signers a test invents.
type dkimSetup struct {
	dns     *harness.DNS
	dir     string
	rsaFile string
	edFile  string
}

func newDKIMSetup(t *testing.T) *dkimSetup {
	t.Helper()
	s := &dkimSetup{dns: harness.NewDNS(t), dir: t.TempDir()}
	s.rsaFile = s.keygen(t, "brand.example", "rsa2026", "rsa")
	s.edFile = s.keygen(t, "brand.example", "ed2026", "ed25519")
	return s
}

// keygen runs `bccguard dkim keygen`, publishes the record it prints and
// returns the key file.
func (s *dkimSetup) keygen(t *testing.T, domain, selector, typ string) string {
	t.Helper()
	out := filepath.Join(s.dir, domain+"."+selector+".pem")
	res := harness.RunCLI(t, "dkim", "keygen", "--domain", domain, "--selector", selector, "--type", typ, "--out", out)
	if !res.OK() {
		t.Fatalf("keygen failed:\n%s", res)
	}
	name, value := keygenRecord(t, res.Stdout)
	s.dns.SetTXT(name, value)
	return out
}

var keygenLine = regexp.MustCompile(`(?m)^  (name|value): +(.+)$`)

// keygenRecord reads the record's name and value from keygen's output.
func keygenRecord(t *testing.T, out string) (name, value string) {
	t.Helper()
	for _, m := range keygenLine.FindAllStringSubmatch(out, -1) {
		if m[1] == "name" {
			name = m[2]
		} else {
			value = m[2]
		}
	}
	if name == "" || !strings.HasPrefix(value, "v=DKIM1; k=") {
		t.Fatalf("keygen printed no record:\n%s", out)
	}
	return name, value
}

// senderKey is a key of the sender's own MTA (not bccguard's), published.
func (s *dkimSetup) senderKey(t *testing.T, domain, selector string) ed25519.PrivateKey {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.dns.SetTXT(selector+"._domainkey."+domain, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	return key
}

// config is the relay configuration with both keys, the DNS server and the
// given sections.
func (s *dkimSetup) config(extra string) string {
	return fmt.Sprintf(`
dkim:
  resolver: %s
  keys:
    - {domain: brand.example, selector: rsa2026, key_file: %s}
    - {domain: brand.example, selector: ed2026, key_file: %s}
`, s.dns.Addr(), s.rsaFile, s.edFile) + extra
}

// signAs signs msg as the sender's MTA would, over the fields in h.
func signAs(t *testing.T, key ed25519.PrivateKey, domain, selector string, h []string, msg string) string {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: key, HeaderKeys: h,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// goVerify checks every signature of msg with go-msgauth, the keys looked
// up at the test's DNS server.
func goVerify(t *testing.T, dnsAddr string, msg io.Reader) []*dkim.Verification {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsAddr)
	}}
	vs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return r.LookupTXT(ctx, name+".")
	}})
	if err != nil {
		t.Fatalf("go-msgauth: %v", err)
	}
	return vs
}

// dkimpyVerify checks every signature of msg with dkimpy (Debian's
// python3-dkim), which shares no code with bccguard or go-msgauth, through
// tests/dkimpy/verify.py and the test's DNS server. It returns the
// script's report and whether all signatures verified.
func dkimpyVerify(t *testing.T, dnsAddr string, msg []byte) (string, bool) {
	t.Helper()
	const py = "/usr/bin/python3" // Debian's, where python3-dkim installs
	if err := exec.Command(py, "-c", "import dkim, nacl, dns.resolver").Run(); err != nil {
		t.Fatalf("dkimpy is not installed for %s (%v): run scripts/install-test-deps.sh (make test does)", py, err)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(root, "tests", "dkimpy", "verify.py"), "--dns", dnsAddr)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

// ourFields splits a copy into the fields bccguard put above it (its
// DKIM-Signature fields, then Authentication-Results:) and the rest, which
// starts with its Received: field.
func ourFields(t *testing.T, raw []byte) (sigs []harness.Field, authResults string, rest []byte) {
	t.Helper()
	fields, _ := splitHeaderBlock(raw)
	n := 0
	for n < len(fields) && isField(fields[n], "DKIM-Signature") {
		sigs = append(sigs, fields[n])
		rest = raw[len(fields[n].Raw):]
		raw = rest
		n++
	}
	if n < len(fields) && isField(fields[n], "Authentication-Results") {
		authResults = string(fields[n].Raw)
		raw = raw[len(fields[n].Raw):]
	}
	return sigs, authResults, raw
}

// metric reads one sample from the relay's /metrics ("" if absent).
func metric(t *testing.T, r *harness.Relay, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + r.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// An exploded mailing from brand.example: each copy carries bccguard's RSA
// and Ed25519 signatures and both verify, with go-msgauth and with dkimpy.
// The sender's own signature over To:/Cc: (broken by the rewrite) is gone;
// the list signer's over From/Subject/Date is kept and still verifies; the
// Authentication-Results: field records that both held on arrival. The
// message has no Reply-To:, which bccguard's signatures oversign anyway.
func TestDKIMExplodedCopiesVerify(t *testing.T) {
	t.Parallel()
	s := newDKIMSetup(t)
	esp := s.senderKey(t, "esp.example", "list")
	crm := s.senderKey(t, "brand.example", "crm")
	sink := harness.NewSink(t)
	r := harness.Start(t, s.config(`
policy:
  rules:
    - {name: all, when: "true", action: explode}
`), harness.WithUpstream(sink.Addr()))

	cs := customers(3)
	rcpts := []string{cs[0].Addr, cs[1].Addr, cs[2].Addr}
	msg := "From: Brand Phones <crm@brand.example>\r\n" + addressField("To", cs[:2]) + addressField("Cc", cs[2:]) +
		"Subject: =?utf-8?q?Wie_gef=C3=A4llt_Ihnen_Ihr_Telefon=3F?=\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <survey-2026@brand.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + surveyBody
	msg = signAs(t, esp, "esp.example", "list", []string{"From", "Subject", "Date"}, msg)
	kept := msg // what every copy must show, but for the rewrite and bccguard's fields
	msg = signAs(t, crm, "brand.example", "crm", []string{"From", "To", "Cc", "Subject"}, msg)

	reply, _ := submit(t, r.Addr(), "crm@brand.example", rcpts, []byte(msg))
	queueID(t, reply.Text())
	ms := sink.WaitFor(t, len(rcpts), deliverTimeout)

	for i, m := range ms {
		rcpt := m.Rcpts[0].Addr
		sigs, ar, rest := ourFields(t, m.Data)
		if len(sigs) != 2 {
			t.Fatalf("copy to %s starts with %d DKIM-Signature fields, want bccguard's 2:\n%s", rcpt, len(sigs), m.Header)
		}
		for _, p := range copyProblems(crlf([]byte(kept)), rest, rewriteExplode, rcpt, nil) {
			t.Errorf("copy to %s: %s", rcpt, p)
		}
		if bytes.Contains(m.Data, []byte("s=crm;")) {
			t.Errorf("copy to %s keeps the signature over To:/Cc: that the rewrite broke", rcpt)
		}
		for _, sig := range sigs {
			if v := string(sig.Raw); !strings.Contains(v, "d=brand.example") || !strings.Contains(v, "c=relaxed/relaxed") ||
				!strings.Contains(strings.Join(strings.Fields(v), ""), "Reply-To:MIME-Version") {
				t.Errorf("bccguard's signature is not relaxed, for brand.example, oversigning Reply-To: %q", sig.Raw)
			}
		}

		// go-msgauth: bccguard's two signatures and the kept one.
		var got []string
		for _, v := range goVerify(t, s.dns.Addr(), bytes.NewReader(m.Data)) {
			if v.Err != nil {
				t.Errorf("copy to %s: go-msgauth: signature of %s fails: %v", rcpt, v.Domain, v.Err)
			}
			got = append(got, v.Domain)
		}
		if !slices.Equal(got, []string{"brand.example", "brand.example", "esp.example"}) {
			t.Errorf("copy to %s: signatures of %v, want brand.example (RSA, Ed25519) and esp.example", rcpt, got)
		}
		// dkimpy, which shares no code with either.
		out, ok := dkimpyVerify(t, s.dns.Addr(), m.Data)
		if !ok || strings.Count(out, ": pass") != 3 || !strings.Contains(out, "a=ed25519-sha256") || !strings.Contains(out, "a=rsa-sha256") {
			t.Errorf("copy to %s: dkimpy does not verify all three signatures:\n%s", rcpt, out)
		} else if i == 0 {
			t.Logf("dkimpy on the copy to %s:\n%s", rcpt, out)
		}

		// Authentication-Results: bccguard's authserv-id, both originals passed.
		id, results, err := authres.Parse(strings.TrimSpace(strings.TrimPrefix(ar, "Authentication-Results:")))
		if err != nil || id != harness.Hostname || len(results) != 2 {
			t.Fatalf("copy to %s: Authentication-Results %q: id %q, %d results, %v", rcpt, ar, id, len(results), err)
		}
		for i, want := range []string{"brand.example", "esp.example"} {
			if d, ok := results[i].(*authres.DKIMResult); !ok || d.Value != authres.ResultPass || d.Domain != want {
				t.Errorf("copy to %s: result %d is %+v, want dkim=pass header.d=%s", rcpt, i, results[i], want)
			}
		}
	}
	t.Logf("a copy as delivered:\n%s", ms[0].Header)
	// The verifiers are not vacuous: a recipient added to a copy's To:
	// breaks bccguard's signatures (the list signer's never covered To:).
	forged := bytes.Replace(ms[0].Data, []byte("\r\nTo: "), []byte("\r\nTo: someone@attacker.example, "), 1)
	if out, ok := dkimpyVerify(t, s.dns.Addr(), forged); ok || strings.Count(out, ": pass") != 1 {
		t.Errorf("dkimpy on a copy with a recipient added to To: still verifies bccguard's signatures:\n%s", out)
	}
	for _, v := range goVerify(t, s.dns.Addr(), bytes.NewReader(forged)) {
		if (v.Err == nil) != (v.Domain == "esp.example") {
			t.Errorf("go-msgauth on the forged copy: %s: %v", v.Domain, v.Err)
		}
	}

	n := fmt.Sprint(len(rcpts))
	for series, want := range map[string]string{
		`bccguard_dkim_signatures_total{algorithm="rsa-sha256",domain="brand.example"}`:     n,
		`bccguard_dkim_signatures_total{algorithm="ed25519-sha256",domain="brand.example"}`: n,
		`bccguard_dkim_verifications_total{result="pass"}`:                                  "2",
	} {
		if got := metric(t, r, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

// A passed message keeps its header: unsigned unless it lost a Bcc:, when
// the signature that covered the Bcc: is removed, one that did not is kept,
// and bccguard signs. A message with a broken or unverifiable signature is
// recorded as such; the policy sees the verification and whether bccguard
// can sign.
func TestDKIMPassAndPolicy(t *testing.T) {
	t.Parallel()
	s := newDKIMSetup(t)
	crm := s.senderKey(t, "brand.example", "crm")
	sink := harness.NewSink(t)
	r := harness.Start(t, s.config(`
policy:
  rules:
    - name: cannot-sign
      when: "!dkim.can_sign"
      action: quarantine
    - name: forged
      when: 'sender_domain == "brand.example" && !dkim.valid'
      action: reject
      message: the signature of brand.example does not verify
  default_action: pass
`), harness.WithUpstream(sink.Addr()))

	base := "From: crm@brand.example\r\nTo: ann@example.com\r\nSubject: your order\r\n\r\nThank you.\r\n"
	withBcc := "From: crm@brand.example\r\nTo: ann@example.com\r\nBcc: boss@brand.example\r\nSubject: your order\r\n\r\nThank you.\r\n"
	plain := signAs(t, crm, "brand.example", "crm", []string{"From", "To", "Subject"}, base)
	overBcc := signAs(t, crm, "brand.example", "crm", []string{"From", "Bcc"}, withBcc)
	notBcc := signAs(t, crm, "brand.example", "crm", []string{"From", "To", "Subject"}, withBcc)
	tampered := strings.Replace(plain, "Thank you.", "Thank you!", 1)
	other := "From: someone@other.example\r\nTo: ann@example.com\r\nSubject: hi\r\n\r\nhi\r\n"

	send := func(from, rcpt, msg string) harness.Reply {
		reply, _ := submit(t, r.Addr(), from, []string{rcpt}, []byte(msg))
		return reply
	}
	if rep := send("crm@brand.example", "forged@example.com", tampered); rep.Code != 550 || !strings.Contains(rep.Text(), "does not verify") {
		t.Errorf("tampered message: %s, want 550 from the rule on dkim.valid", rep)
	}
	if rep := send("someone@other.example", "held@example.com", other); rep.Code != 250 || !strings.Contains(rep.Text(), "held for review") {
		t.Errorf("From: a domain without a key: %s, want held (dkim.can_sign false)", rep)
	}
	for _, m := range []struct{ rcpt, msg string }{{"plain@example.com", plain}, {"overbcc@example.com", overBcc}, {"notbcc@example.com", notBcc}} {
		queueID(t, send("crm@brand.example", m.rcpt, m.msg).Text())
	}
	ms := sink.WaitFor(t, 3, deliverTimeout)
	byRcpt := map[string]*smtptest.Message{}
	for _, m := range ms {
		byRcpt[m.Rcpts[0].Addr] = m
	}
	for rcpt, want := range map[string]struct {
		ours    int    // bccguard's signatures
		crmKept bool   // the sender's signature is still there
		ar      string // in Authentication-Results:
	}{
		"plain@example.com":   {0, true, "dkim=pass header.d=brand.example"},
		"overbcc@example.com": {2, false, "dkim=pass header.d=brand.example"},
		"notbcc@example.com":  {2, true, "dkim=pass header.d=brand.example"},
	} {
		m := byRcpt[rcpt]
		if m == nil {
			t.Errorf("no copy to %s", rcpt)
			continue
		}
		// The sender's signature, when kept, is below Received:, not
		// among bccguard's fields at the top.
		sigs, ar, _ := ourFields(t, m.Data)
		if len(sigs) != want.ours || bytes.Contains(m.Data, []byte("s=crm;")) != want.crmKept {
			t.Errorf("copy to %s: %d signatures of bccguard (want %d), the sender's kept: want %v:\n%s",
				rcpt, len(sigs), want.ours, want.crmKept, m.Header)
		}
		if !strings.Contains(ar, want.ar) {
			t.Errorf("copy to %s: Authentication-Results %q lacks %q", rcpt, ar, want.ar)
		}
		if bytes.Contains(m.Data, []byte("boss@")) {
			t.Errorf("copy to %s shows the Bcc recipient", rcpt)
		}
		for _, v := range goVerify(t, s.dns.Addr(), bytes.NewReader(m.Data)) {
			if v.Err != nil {
				t.Errorf("copy to %s: signature of %s fails: %v", rcpt, v.Domain, v.Err)
			}
		}
	}
	if got := metric(t, r, `bccguard_dkim_verifications_total{result="fail"}`); got != "1" {
		t.Errorf("verifications{fail} = %q, want 1 (the tampered message)", got)
	}
	if got := metric(t, r, `bccguard_dkim_verifications_total{result="none"}`); got != "1" {
		t.Errorf("verifications{none} = %q, want 1 (the unsigned message)", got)
	}
}

// A 50 MiB message arrives signed, is verified on the way in, and is
// exploded to two recipients, each copy signed with both keys while it
// streams: bccguard's memory stays under 64 MiB, and the copies verify
// (the test regenerates the deterministic body rather than keeping 50 MiB).
func TestDKIMLargeMessageStreams(t *testing.T) {
	t.Parallel()
	const (
		bodySize = int64(50 << 20)
		maxRSS   = 64 << 20
	)
	s := newDKIMSetup(t)
	crm := s.senderKey(t, "brand.example", "crm")
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, s.config(`
listeners:
  - name: smtp
    address: {{addr "smtp"}}
    limits: {max_message_size: 60MiB}
policy:
  rules:
    - {name: all, when: "true", action: explode}
`), harness.WithUpstream(sink.Addr()))

	rcpts := []string{"ann@example.com", "bob@example.net"}
	hdr := "From: Brand Phones <crm@brand.example>\r\nTo: ann@example.com, bob@example.net\r\n" +
		"Subject: the big catalogue\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
	// The sender's signature, made streaming too, over a header whose To:
	// the rewrite changes: it must be removed from the copies.
	signer, err := dkim.NewSigner(&dkim.SignOptions{Domain: "brand.example", Selector: "crm", Signer: crm,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(signer, io.MultiReader(strings.NewReader(hdr), harness.NewBody(bodySize)))
	if err := signer.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	body := io.MultiReader(strings.NewReader(signer.Signature()+hdr), harness.NewBody(bodySize))
	queueID(t, harness.SendWith(t, r.Addr(), "crm@brand.example", rcpts, body, nil))
	ms := sink.WaitFor(t, len(rcpts), deliverTimeout)
	took := time.Since(start)

	want := harness.BodySum(bodySize)
	for _, m := range ms {
		if m.BodySize != bodySize || m.BodySum != want {
			t.Errorf("copy to %s: body of %d bytes (same bytes: %v), want the %d sent", m.Rcpts[0].Addr, m.BodySize, m.BodySum == want, bodySize)
		}
		sigs, ar, _ := ourFields(t, m.Header)
		if len(sigs) != 2 || !strings.Contains(ar, "dkim=pass header.d=brand.example") || bytes.Contains(m.Header, []byte("s=crm;")) {
			t.Errorf("copy to %s: want bccguard's 2 signatures, the arrival's pass recorded and the sender's signature removed:\n%s", m.Rcpts[0].Addr, m.Header)
		}
		for _, v := range goVerify(t, s.dns.Addr(), io.MultiReader(bytes.NewReader(m.Header), harness.NewBody(bodySize))) {
			if v.Err != nil {
				t.Errorf("copy to %s: signature of %s fails: %v", m.Rcpts[0].Addr, v.Domain, v.Err)
			}
		}
	}
	rss := r.PeakRSS()
	t.Logf("a %d MiB message verified on arrival and exploded to %d copies, each signed with RSA and Ed25519 while streaming: delivered after %v; bccguard peak RSS (VmHWM) %.1f MiB",
		bodySize>>20, len(rcpts), took.Round(time.Millisecond), float64(rss)/(1<<20))
	if rss >= maxRSS {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB: signing must stream", float64(rss)/(1<<20), maxRSS>>20)
	}
}
