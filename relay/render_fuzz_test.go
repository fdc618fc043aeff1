package relay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/smtpaddr"
	"github.com/bccguard/bccguard/relay/store"
)

// FuzzRenderExplode checks the rewriter's promises on arbitrary header
// blocks: an exploded copy has exactly one To: field naming exactly its own
// recipient, no Cc:/Bcc:, every other field byte-identical and in order,
// and the body unchanged.
func FuzzRenderExplode(f *testing.F) {
	raw, _ := loadEML(f, "survey.eml")
	f.Add(raw, "ann@example.com")
	f.Add([]byte("To: a@example.com\r\nCc: b@example.net\r\n\r\nbody"), "b@example.net")
	f.Add([]byte("To: undisclosed-recipients:;\r\n\r\n"), "x@example.org")
	f.Add([]byte("Subject: no separator"), "y@example.org")
	f.Fuzz(func(t *testing.T, msg []byte, addr string) {
		if mb, err := smtpaddr.Parse(addr, false); err != nil || mb.String() != addr || strings.ContainsAny(addr, "\",;:()[]\\") {
			return
		}
		if _, err := mail.ParseAddress("<" + addr + ">"); err != nil {
			return // not an address go-smtp's parser would hand over
		}
		hl := bytes.Index(msg, []byte("\r\n\r\n"))
		if hl < 0 {
			hl = len(msg)
		} else {
			hl += 4
		}
		d := store.Delivery{Rewrite: store.RewriteExplode, Recipients: []store.Recipient{{Addr: addr}}}
		var out bytes.Buffer
		m := store.Message{HeaderLen: int64(hl), Size: int64(len(msg))}
		if err := render(&out, bytes.NewReader(msg), m, d); err != nil {
			t.Fatal(err)
		}
		got := out.Bytes()
		if !bytes.HasSuffix(got, msg[hl:]) {
			t.Fatal("body changed")
		}
		head := got[:len(got)-len(msg)+hl]
		fields, _ := splitHeader(head)
		var others [][]byte
		tos := 0
		for _, fl := range fields {
			switch {
			case fl.is("Cc"), fl.is("Bcc"):
				t.Fatalf("copy has %s", fl.name)
			case fl.is("To"):
				tos++
				list, err := mail.ParseAddressList(fl.value())
				if err != nil || len(list) != 1 || !strings.EqualFold(list[0].Address, addr) {
					t.Fatalf("To: %q does not show exactly %q (err %v)", fl.raw, addr, err)
				}
			default:
				others = append(others, fl.raw)
			}
		}
		if tos != 1 {
			t.Fatalf("copy has %d To: fields", tos)
		}
		origFields, _ := splitHeader(msg[:hl])
		var want [][]byte
		for _, fl := range origFields {
			if !fl.is("To") && !fl.is("Cc") && !fl.is("Bcc") {
				want = append(want, fl.raw)
			}
		}
		if len(want) != len(others) {
			t.Fatalf("other fields: %d, want %d", len(others), len(want))
		}
		for i := range want {
			// Only a last field with no line end may gain one, so the new
			// To: does not run into it.
			w, o := want[i], others[i]
			if i == len(want)-1 && !bytes.HasSuffix(w, []byte("\n")) {
				o = bytes.TrimSuffix(o, []byte("\r\n"))
			}
			if !bytes.Equal(w, o) {
				t.Fatalf("field %q became %q", want[i], others[i])
			}
		}
	})
}
