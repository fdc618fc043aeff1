package rewrite

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/store"
)

func loadEML(t testing.TB, name string) ([]byte, int) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("%s has no header/body separator", name)
	}
	return b, i + 4
}

func renderString(t testing.TB, raw []byte, hl int, d store.Delivery) string {
	t.Helper()
	var out bytes.Buffer
	msg := store.Message{ID: "T1", HeaderLen: int64(hl), Size: int64(len(raw))}
	if err := render(&out, bytes.NewReader(raw), msg, d); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Each rewrite changes exactly the documented fields; everything else,
// folding, case and the body included, is byte-identical.
func TestRender(t *testing.T) {
	raw, hl := loadEML(t, "survey.eml")
	body := string(raw[hl:])
	rcpt := func(a string) []store.Recipient { return []store.Recipient{{Addr: a}} }
	cases := []struct {
		name    string
		d       store.Delivery
		wantTo  string // the To: field expected, "" for "as in the original"
		dropped []string
	}{
		{"pass drops only Bcc", store.Delivery{Rewrite: store.RewritePass, Recipients: rcpt("ann@example.com")}, "", []string{"Bcc:"}},
		{"explode keeps the recipient's display name", store.Delivery{Rewrite: store.RewriteExplode, Recipients: rcpt("ann@example.com")},
			"To: \"Ann Example\" <ann@example.com>\r\n", []string{"Bcc:", "Cc:", "carl@", "bjorn@", "dora@", "Second To"}},
		{"explode re-encodes a non-ASCII name", store.Delivery{Rewrite: store.RewriteExplode, Recipients: rcpt("bjorn@example.net")},
			"To: =?utf-8?q?Bj=C3=B6rn?= <bjorn@example.net>\r\n", []string{"Ann", "carl@", "dora@"}},
		{"explode finds a name in a second To field", store.Delivery{Rewrite: store.RewriteExplode, Recipients: rcpt("DORA@example.org")},
			"To: \"Second To\" <DORA@example.org>\r\n", []string{"Ann", "carl@"}},
		{"explode of a true Bcc recipient shows the bare address", store.Delivery{Rewrite: store.RewriteExplode, Recipients: rcpt("secret@example.com")},
			"To: <secret@example.com>\r\n", []string{"Ann", "carl@", "Bcc:"}},
		{"bcc hides everyone", store.Delivery{Rewrite: store.RewriteBcc, Recipients: rcpt("ann@example.com")},
			"To: undisclosed-recipients:;\r\n", []string{"Ann", "carl@", "bjorn", "dora@", "Bcc:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := renderString(t, raw, hl, tc.d)
			if !strings.HasSuffix(got, body) {
				t.Fatal("body changed")
			}
			head := strings.TrimSuffix(got, body)
			for _, s := range tc.dropped {
				if strings.Contains(head, s) {
					t.Errorf("header still contains %q:\n%s", s, head)
				}
			}
			// Every field that is not To/Cc/Bcc stays byte for byte, in order.
			var want strings.Builder
			placed := false
			h := mailhdr.Split(raw[:hl])
			for _, f := range h.Fields {
				switch {
				case f.Is("Bcc"):
				case tc.wantTo != "" && (f.Is("To") || f.Is("Cc")):
					if !placed {
						want.WriteString(tc.wantTo)
						placed = true
					}
				default:
					want.Write(f.Raw)
				}
			}
			want.Write(h.Tail)
			if head != want.String() {
				t.Errorf("header =\n%q\nwant\n%q", head, want.String())
			}
		})
	}
}

// TestRenderDropsResentBcc: a blind field never leaves, whichever rewrite,
// and its removal counts as a change (so signatures over it go).
func TestRenderDropsResentBcc(t *testing.T) {
	raw := []byte("Resent-From: a@example.com\r\nResent-Bcc: hidden@secret.example\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody\r\n")
	hl := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	for _, rw := range []store.Rewrite{store.RewritePass, store.RewriteExplode, store.RewriteBcc} {
		got := renderString(t, raw, hl, store.Delivery{Rewrite: rw, Recipients: []store.Recipient{{Addr: "b@example.net"}}})
		if strings.Contains(got, "hidden@") || strings.Contains(strings.ToLower(got), "resent-bcc") {
			t.Errorf("%s: Resent-Bcc left:\n%s", rw, got)
		}
		if !strings.Contains(got, "Resent-From: a@example.com\r\n") {
			t.Errorf("%s: Resent-From lost:\n%s", rw, got)
		}
	}
	src := mustSource(t, memStore{raw: raw}, store.Message{ID: "m", Size: int64(len(raw)), HeaderLen: int64(hl)})
	if ch, err := src.changed(store.Delivery{Rewrite: store.RewritePass, Recipients: []store.Recipient{{Addr: "b@example.net"}}}, Options{}); err != nil || !ch["resent-bcc"] {
		t.Errorf("changed = %v (%v), want resent-bcc", ch, err)
	}
}
