package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSA is one 2048-bit key for the whole package (generating one takes
// a noticeable fraction of a second).
func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsaKey
}

func testEd25519(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// zone is a TXT lookup over a map, with the error a real resolver gives
// for a name that does not exist.
type zone map[string]string

func (z zone) lookup(_ context.Context, name string) ([]string, error) {
	name = strings.TrimSuffix(name, ".")
	if v, ok := z[name]; ok {
		return []string{v}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (z zone) publish(t testing.TB, k Key) {
	rec, err := Record(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	z[RecordName(k.Selector, k.Domain)] = rec
}

const message = "Received: from crm.example.com by relay.brand.example; Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
	"From: Brand Phones <crm@brand.example>\r\n" +
	"To: Ann <ann@example.com>\r\n" +
	"Subject: your phone\r\n" +
	"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <survey@brand.example>\r\n" +
	"\r\n" +
	"How do you like it?\r\n"

func sign(t *testing.T, keys []Key, msg string) string {
	t.Helper()
	fields := headerNames(msg)
	sigs, err := Sign(keys, HeaderKeys(fields), func(w io.Writer) error {
		_, err := io.WriteString(w, msg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range sigs {
		b.WriteString(s.Field)
	}
	return b.String() + msg
}

func headerNames(msg string) []string {
	var names []string
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		n, _, _ := strings.Cut(l, ":")
		names = append(names, n)
	}
	return names
}

func verify(t *testing.T, z zone, msg string) []*dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return z.lookup(context.Background(), name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// An RSA and an Ed25519 key sign one message in one pass; both signatures
// verify, relaxed/relaxed, with the oversigned list in h=.
func TestSignBothKeyTypes(t *testing.T) {
	z := zone{}
	keys := []Key{
		{Domain: "brand.example", Selector: "rsa2026", Signer: testRSA(t)},
		{Domain: "brand.example", Selector: "ed2026", Signer: testEd25519(t), Expire: 24 * time.Hour},
	}
	for _, k := range keys {
		z.publish(t, k)
	}
	signed := sign(t, keys, message)
	vs := verify(t, z, signed)
	if len(vs) != 2 {
		t.Fatalf("%d verifications, want 2", len(vs))
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("%s: %v", v.Domain, v.Err)
		}
		if !slices.Contains(v.HeaderKeys, "Reply-To") {
			t.Errorf("h= %v does not oversign the absent Reply-To", v.HeaderKeys)
		}
	}
	if !strings.Contains(signed, "a=rsa-sha256") || !strings.Contains(signed, "a=ed25519-sha256") || !strings.Contains(signed, "c=relaxed/relaxed") {
		t.Errorf("signatures:\n%s", signed)
	}
	if !strings.Contains(signed, "x=") {
		t.Error("the key with an expiry made no x= tag")
	}

	// Oversigning at work: a From: or a Reply-To: added after signing
	// breaks both signatures, as does a changed body.
	for name, forged := range map[string]string{
		"added From":     strings.Replace(signed, "Subject:", "From: evil@attacker.example\r\nSubject:", 1),
		"added Reply-To": strings.Replace(signed, "Subject:", "Reply-To: evil@attacker.example\r\nSubject:", 1),
		"changed body":   strings.Replace(signed, "like it", "hate it", 1),
	} {
		for _, v := range verify(t, z, forged) {
			if v.Err == nil {
				t.Errorf("%s: signature of %s still verifies", name, v.Domain)
			}
		}
	}
	// Whitespace changes on the way do not matter (relaxed).
	refolded := strings.Replace(signed, "Subject: your phone", "Subject:   your\r\n  phone", 1)
	for _, v := range verify(t, z, refolded) {
		if v.Err != nil {
			t.Errorf("refolded: %v", v.Err)
		}
	}
}

func TestHeaderKeys(t *testing.T) {
	got := HeaderKeys([]string{"Received", "From", "to", "TO", "Subject", "List-Unsubscribe", "X-Mailer"})
	want := []string{"From", "From", "To", "To", "To", "Cc", "Subject", "Subject", "Date", "Message-ID", "Reply-To",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe"}
	if !slices.Equal(got, want) {
		t.Errorf("HeaderKeys = %v\nwant %v", got, want)
	}
}

func TestKeyringFor(t *testing.T) {
	brand := Key{Domain: "brand.example", Selector: "a"}
	esp := Key{Domain: "esp.example", Selector: "b"}
	kr := NewKeyring([]Key{brand, esp}, "esp.example")
	for from, want := range map[string]string{
		"brand.example":          "brand.example",
		"Brand.Example.":         "brand.example",
		"news.brand.example":     "brand.example",
		"a.b.news.brand.example": "brand.example",
		"other.example":          "esp.example",
		"":                       "esp.example",
	} {
		got := kr.For(from)
		if len(got) != 1 || got[0].Domain != want {
			t.Errorf("For(%q) = %v, want the %s key", from, got, want)
		}
	}
	if got := NewKeyring([]Key{brand}, "").For("other.example"); got != nil {
		t.Errorf("without a fallback, For(other) = %v", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, k := range []crypto.Signer{testRSA(t), testEd25519(t)} {
		rec, err := Record(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ParseRecord(rec)
		if err != nil {
			t.Fatalf("%s: %v", rec, err)
		}
		if !SameKey(pub, k.Public()) {
			t.Errorf("%s: parsed key differs", rec)
		}
		// As a zone file splits it into strings, with spaces after joining.
		if pub, err := ParseRecord(strings.ReplaceAll(rec, "; ", " ;  ")); err != nil || !SameKey(pub, k.Public()) {
			t.Errorf("spaced %s: %v", rec, err)
		}
	}
	if _, err := ParseRecord("v=DKIM1; k=rsa; p="); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked key: %v", err)
	}
}

func TestSignedFields(t *testing.T) {
	got := SignedFields("v=1; a=rsa-sha256; d=x.example; s=s;\r\n\th=From : To:\r\n\t cc; bh=abc; b=def")
	if !slices.Equal(got, []string{"from", "to", "cc"}) {
		t.Errorf("SignedFields = %v", got)
	}
	if got := SignedFields("v=1; d=x.example"); got != nil {
		t.Errorf("no h=: %v", got)
	}
}

// check streams msg through a Check in small writes, as DATA arrives.
func check(v *Verifier, msg string) Result {
	c := v.Start(context.Background())
	r := strings.NewReader(msg)
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		c.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return c.Result()
}

func TestVerifyResults(t *testing.T) {
	z := zone{}
	good := Key{Domain: "brand.example", Selector: "s1", Signer: testRSA(t)}
	unpublished := Key{Domain: "esp.example", Selector: "gone", Signer: testEd25519(t)}
	z.publish(t, good)
	signed := sign(t, []Key{good, unpublished}, message)
	v := &Verifier{Lookup: z.lookup}

	r := check(v, signed)
	if got := r.Values(); !slices.Equal(got, []string{"pass", "permerror"}) {
		t.Errorf("results %v, want pass then permerror (no key)", got)
	}
	if !r.Valid() || !slices.Equal(r.Domains(), []string{"brand.example"}) {
		t.Errorf("Valid %v Domains %v", r.Valid(), r.Domains())
	}
	field := r.Field("relay.brand.example")
	for _, want := range []string{
		"Authentication-Results: relay.brand.example;\r\n\tdkim=pass header.d=brand.example header.i=@brand.example;\r\n\tdkim=permerror reason=",
		"header.d=esp.example",
	} {
		if !strings.Contains(field, want) {
			t.Errorf("field lacks %q:\n%s", want, field)
		}
	}
	if id, results, err := authres.Parse(strings.TrimPrefix(strings.TrimSuffix(field, "\r\n"), "Authentication-Results: ")); err != nil || id != "relay.brand.example" || len(results) != 2 {
		t.Errorf("authres cannot parse its own field: %v\n%s", err, field)
	}

	if r := check(v, strings.Replace(signed, "like it", "hate it", 1)); !slices.Equal(r.Values(), []string{"fail", "permerror"}) || r.Valid() {
		t.Errorf("changed body: %v", r.Values())
	}
	r = check(v, message)
	if !slices.Equal(r.Values(), []string{"none"}) || r.Valid() {
		t.Errorf("unsigned: %v", r.Values())
	}
	if f := r.Field("relay.brand.example"); f != "Authentication-Results: relay.brand.example;\r\n\tdkim=none\r\n" {
		t.Errorf("unsigned field %q", f)
	}
}

// A DNS server that does not answer costs the message at most the time
// bound, gives temperror, and never blocks the stream for good.
func TestVerifyTimeout(t *testing.T) {
	key := Key{Domain: "brand.example", Selector: "s1", Signer: testEd25519(t)}
	signed := sign(t, []Key{key}, message+strings.Repeat("more body\r\n", 10000))
	hang := func(ctx context.Context, name string) ([]string, error) {
		<-ctx.Done()
		return nil, &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
	}
	v := &Verifier{Lookup: hang, Timeout: 200 * time.Millisecond}
	start := time.Now()
	r := check(v, signed)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	if !slices.Equal(r.Values(), []string{"temperror"}) {
		t.Errorf("results %v, want temperror", r.Values())
	}
}

// A stream cut short (the client went away) ends the check without a
// goroutine left writing or reading.
func TestVerifyAbort(t *testing.T) {
	c := (&Verifier{Lookup: zone{}.lookup}).Start(context.Background())
	c.Write([]byte("DKIM-Signature: v=1; d=x.example; s=s; h=from; a=rsa-sha256; bh=; b=\r\nFrom: a@x.example\r\n"))
	c.Abort()
	if n, err := c.Write(bytes.Repeat([]byte("x"), 1<<20)); n != 1<<20 || err != nil {
		t.Errorf("write after abort: %d %v", n, err)
	}
}

func TestSignRejectsBadKey(t *testing.T) {
	_, err := Sign([]Key{{Domain: "x.example", Selector: "s", Signer: badSigner{}}}, HeaderKeys(nil), func(w io.Writer) error {
		_, err := io.WriteString(w, message)
		return err
	})
	if err == nil {
		t.Fatal("signing with an unsupported key succeeded")
	}
}

type badSigner struct{}

func (badSigner) Public() crypto.PublicKey { return "not a key" }
func (badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}
