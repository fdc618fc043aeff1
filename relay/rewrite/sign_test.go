package rewrite

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/mailhdr"
	bdkim "github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/store"
)

// memStore serves one stored message; prepare needs nothing else.
type memStore struct {
	store.Store
	raw []byte
}

func (m memStore) Open(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.raw)), nil
}

func mustSource(t *testing.T, st store.Store, msg store.Message) *Source {
	t.Helper()
	src, err := Load(context.Background(), st, msg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

type testKeys struct {
	zone map[string]string
}

func (z testKeys) lookup(name string) ([]string, error) {
	if v, ok := z.zone[strings.TrimSuffix(name, ".")]; ok {
		return []string{v}, nil
	}
	return nil, &dkimNotFound{}
}

type dkimNotFound struct{}

func (*dkimNotFound) Error() string   { return "no such host" }
func (*dkimNotFound) Timeout() bool   { return false }
func (*dkimNotFound) Temporary() bool { return false }

func newKey(t *testing.T, z testKeys, domain, selector string) config.DKIMKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := bdkim.Record(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	z.zone[bdkim.RecordName(selector, domain)] = rec
	return config.DKIMKey{Domain: domain, Selector: selector, Signer: k}
}

// signAs signs msg as a sender's own MTA would, over the fields in h.
func signAs(t *testing.T, k config.DKIMKey, h []string, msg string) string {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: k.Domain, Selector: k.Selector, Signer: k.Signer, HeaderKeys: h,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// An exploded copy keeps the original signature that does not cover the
// rewritten fields (it still verifies), loses the one that does, drops a
// forged Authentication-Results: in bccguard's name, and gains bccguard's
// own signature and result; all of it verifies.
func TestPrepareSignsAndStrips(t *testing.T) {
	z := testKeys{zone: map[string]string{}}
	esp := newKey(t, z, "esp.example", "list")
	brandOrig := newKey(t, z, "brand.example", "crm")
	ours := newKey(t, z, "brand.example", "relay")

	orig := "From: Brand <news@brand.example>\r\n" +
		"To: Ann <ann@example.com>, Bob <bob@example.net>\r\n" +
		"Subject: Survey\r\n" +
		"Authentication-Results: relay.test; dkim=pass header.d=forged.example\r\n" +
		"\r\n" +
		"Hello,\r\nbody\r\n"
	orig = signAs(t, esp, []string{"From", "Subject"}, orig)             // kept: covers no changed field
	orig = signAs(t, brandOrig, []string{"From", "To", "Subject"}, orig) // removed: covers To
	received := "Received: from crm ([192.0.2.1])\r\n\tby relay.test (bccguard); x\r\n"
	raw := received + orig
	hl := strings.Index(raw, "\r\n\r\n") + 4

	reg := prometheus.NewRegistry()
	d := NewSigner(SignerOptions{Keyring: keyring(ours), AuthservID: "relay.test", Verifying: true}, reg)
	msg := store.Message{ID: "M1", HeaderLen: int64(hl), Size: int64(len(raw)),
		AuthResults: "Authentication-Results: relay.test;\r\n\tdkim=pass header.d=esp.example\r\n"}
	dl := store.Delivery{ID: "D1", Rewrite: store.RewriteExplode, Recipients: []store.Recipient{{Addr: "bob@example.net"}}}
	st := memStore{raw: []byte(raw)}
	src := mustSource(t, st, msg)
	o, err := d.Prepare(context.Background(), src, dl)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	body, _ := src.OpenBody(context.Background())
	if err := WriteCopy(&out, src, body, dl, o); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Logf("copy:\n%s", got)

	if !strings.HasPrefix(got, "DKIM-Signature:") || !strings.Contains(got, "s=relay;") {
		t.Errorf("the copy does not start with bccguard's signature")
	}
	if i, j := strings.Index(got, "s=relay;"), strings.Index(got, msg.AuthResults); j < i || !strings.Contains(got, msg.AuthResults+received) {
		t.Errorf("want signature, then Authentication-Results:, then Received: at the top")
	}
	if strings.Contains(got, "forged.example") {
		t.Error("a forged Authentication-Results: in bccguard's name was kept")
	}
	if strings.Contains(got, "s=crm;") {
		t.Error("the original signature over To: was kept although the rewrite broke it")
	}
	if !strings.Contains(got, "s=list;") {
		t.Error("the original signature over From and Subject only was removed")
	}
	if !strings.HasSuffix(got, "\r\n\r\nHello,\r\nbody\r\n") || !strings.Contains(got, "\r\nTo: \"Bob\" <bob@example.net>\r\n") {
		t.Errorf("rewrite or body wrong")
	}

	vs, err := dkim.VerifyWithOptions(strings.NewReader(got), &dkim.VerifyOptions{LookupTXT: z.lookup})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("%d signatures in the copy, want 2 (bccguard's and the kept one)", len(vs))
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("signature of %s does not verify: %v", v.Domain, v.Err)
		}
	}
	if n := testutil.ToFloat64(d.signatures.WithLabelValues("brand.example", "ed25519-sha256")); n != 1 {
		t.Errorf("signatures metric %v, want 1", n)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("metric lint: %v %v", probs, err)
	}
}

// A pass copy is signed only when it lost a Bcc: or sign_passed is set;
// either way no original signature it does not break is touched.
func TestPrepareWhenToSign(t *testing.T) {
	z := testKeys{zone: map[string]string{}}
	ours := newKey(t, z, "brand.example", "relay")
	plain := "From: news@brand.example\r\nTo: ann@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
	withBcc := "From: news@brand.example\r\nTo: ann@example.com\r\nBcc: boss@brand.example\r\nSubject: hi\r\n\r\nbody\r\n"
	other := "From: someone@other.example\r\nTo: ann@example.com\r\n\r\nbody\r\n"
	pass := store.Delivery{Rewrite: store.RewritePass, Recipients: []store.Recipient{{Addr: "ann@example.com"}}}
	cases := []struct {
		name       string
		raw        string
		signPassed bool
		want       bool
	}{
		{"pass unchanged", plain, false, false},
		{"pass with sign_passed", plain, true, true},
		{"pass that lost its Bcc", withBcc, false, true},
		{"no key for the From domain", other, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewSigner(SignerOptions{Keyring: keyring(ours), SignPassed: tc.signPassed, AuthservID: "relay.test", Verifying: true}, prometheus.NewRegistry())
			msg := store.Message{ID: "M", HeaderLen: int64(strings.Index(tc.raw, "\r\n\r\n") + 4), Size: int64(len(tc.raw))}
			o, err := d.Prepare(context.Background(), mustSource(t, memStore{raw: []byte(tc.raw)}, msg), pass)
			if err != nil {
				t.Fatal(err)
			}
			if signed := strings.HasPrefix(o.Prefix, "DKIM-Signature:"); signed != tc.want {
				t.Errorf("signed %v, want %v", signed, tc.want)
			}
		})
	}
}

func TestFromDomain(t *testing.T) {
	for head, want := range map[string]string{
		"From: A <a@Brand.Example>\r\n":                     "brand.example",
		"From: a@x.example, b@x.example\r\n":                "x.example",
		"From: a@x.example, b@y.example\r\n":                "",
		"From: a@x.example\r\nFrom: b@y.example\r\n":        "",
		"Subject: no from\r\n":                              "",
		"From: not an address\r\n":                          "",
		"From: =?utf-8?q?J=C3=B6rg?= <j@brand.example>\r\n": "brand.example",
	} {
		if got := FromDomain(mailhdr.Read([]byte(head))); got != want {
			t.Errorf("%q: %q, want %q", head, got, want)
		}
	}
}

// The changed set lists exactly the fields whose instances the copy
// changes: the signatures over them are the ones removed.
func TestChangedFields(t *testing.T) {
	full := "From: a@x.example\r\nTo: b@y.example\r\nCc: c@y.example\r\nBcc: d@y.example\r\nReply-To: c@y.example, a@x.example\r\n\r\n"
	only := "From: a@x.example\r\nTo: <b@y.example>\r\n\r\n"
	rcpt := func(rw store.Rewrite, a ...string) store.Delivery {
		d := store.Delivery{Rewrite: rw}
		for _, x := range a {
			d.Recipients = append(d.Recipients, store.Recipient{Addr: x})
		}
		return d
	}
	for name, tc := range map[string]struct {
		head string
		d    store.Delivery
		want string
	}{
		"explode":                {full, rcpt(store.RewriteExplode, "b@y.example"), "bcc cc reply-to to"},
		"explode, To: unchanged": {only, rcpt(store.RewriteExplode, "b@y.example"), ""},
		"bcc":                    {full, rcpt(store.RewriteBcc, "b@y.example", "c@y.example"), "bcc cc reply-to to"},
		"pass":                   {full, rcpt(store.RewritePass, "b@y.example"), "bcc"},
		"pass without Bcc":       {only, rcpt(store.RewritePass, "b@y.example"), ""},
	} {
		src, err := ReadSource(strings.NewReader(tc.head), store.Message{HeaderLen: int64(len(tc.head))})
		if err != nil {
			t.Fatal(err)
		}
		changed, err := src.changed(tc.d, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for n := range changed {
			got = append(got, n)
		}
		slices.Sort(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: changed %v, want %q", name, got, tc.want)
		}
	}
}

func keyring(keys ...config.DKIMKey) *bdkim.Keyring {
	var ks []bdkim.Key
	for _, k := range keys {
		ks = append(ks, bdkim.Key{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer})
	}
	return bdkim.NewKeyring(ks, "")
}
