package rewrite

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/rewrite/edits"
	"github.com/bccguard/bccguard/relay/store"
)

// FuzzRenderExplode checks the rewriter's promises on arbitrary header
// blocks: an exploded copy has exactly one To: field naming exactly its own
// recipient, no Cc:/Bcc:, every field the table keeps byte-identical and in
// order, every field it cleans either as it was or without any other
// recipient, and the body unchanged.
func FuzzRenderExplode(f *testing.F) {
	raw, _ := loadEML(f, "survey.eml")
	f.Add(raw, "ann@example.com")
	f.Add([]byte("To: a@example.com\r\nCc: b@example.net\r\n\r\nbody"), "b@example.net")
	f.Add([]byte("To: undisclosed-recipients:;\r\n\r\n"), "x@example.org")
	f.Add([]byte("Subject: no separator"), "y@example.org")
	f.Add([]byte("To: a@example.com, b@example.net\r\nReply-To: \"b@example.net\" <c@example.org>, a@example.com\r\nSubject: x\rCc: <b@example.net>\r\n\r\n"), "a@example.com")
	f.Fuzz(func(t *testing.T, msg []byte, addr string) {
		if !plainMailbox(addr) {
			return
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
		for _, p := range copyProblems(msg[:hl], got[:len(got)-len(msg)+hl], d) {
			t.Error(p)
		}
	})
}

// plainMailbox reports whether addr is an address go-smtp would hand over
// as a recipient and go-message writes back as it is.
func plainMailbox(addr string) bool {
	if addr == "" || !isASCII(addr) || strings.ContainsAny(addr, "\",;:()[]\\<> \t\r\n") || strings.Count(addr, "@") != 1 {
		return false
	}
	a, err := mail.ParseAddress("<" + addr + ">")
	return err == nil && a.Address == addr
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// copyProblems lists how a copy's header block (head) breaks the table's
// promises for delivery d of a message whose header block was orig.
func copyProblems(orig, head []byte, d store.Delivery) []string {
	var probs []string
	src := mailhdr.Read(orig)
	p := src.People("", nil)
	own := ""
	if len(d.Recipients) == 1 {
		own = mailhdr.Key(d.Recipients[0].Addr)
	}
	cp := mailhdr.Read(head)
	tos := 0
	for _, e := range cp.Entries {
		switch edits.For(d.Rewrite, e.Name, e.Role) {
		case edits.Remove:
			probs = append(probs, "copy has "+e.Name+": "+string(e.Raw))
		case edits.Replace:
			if !e.Is("To") {
				probs = append(probs, "copy has "+e.Name+": "+string(e.Raw))
				continue
			}
			tos++
			if d.Rewrite == store.RewriteExplode {
				l := e.List
				if !l.Clean || len(l.Boxes) != 1 || !strings.EqualFold(l.Boxes[0].Addr, d.Recipients[0].Addr) {
					probs = append(probs, "To: does not show exactly its recipient: "+string(e.Raw))
				}
			}
		}
	}
	if d.Rewrite != store.RewritePass && tos != 1 {
		probs = append(probs, "copy has "+string(rune('0'+min(tos, 9)))+" To: fields")
	}
	// Kept fields: byte-identical and in order. Cleaned ones: as they were,
	// or showing no other recipient.
	var want, have [][]byte
	for _, e := range src.Entries {
		if k := edits.For(d.Rewrite, e.Name, e.Role); k == edits.Keep || k == edits.Hold {
			want = append(want, e.Raw)
		}
	}
	for _, e := range cp.Entries {
		switch edits.For(d.Rewrite, e.Name, e.Role) {
		case edits.Keep, edits.Hold:
			have = append(have, e.Raw)
		case edits.Clean:
			if containsRaw(src, e.Raw) {
				continue
			}
			for _, b := range e.List.Boxes {
				if i, ok := p.Index(b.Addr); ok && edits.Other(p, i, own) {
					probs = append(probs, "cleaned field still shows another recipient: "+string(e.Raw))
				}
			}
		}
	}
	if len(want) != len(have) {
		probs = append(probs, "kept fields: "+string(bytes.Join(have, []byte("|")))+" want "+string(bytes.Join(want, []byte("|"))))
		return probs
	}
	for i, w := range want {
		// Only a field without LF at its end may gain one, so that the
		// next field does not run into it.
		h := have[i]
		switch {
		case bytes.Equal(w, h):
		case bytes.HasSuffix(w, []byte("\r")) && bytes.Equal(append(bytes.Clone(w), '\n'), h):
		case !bytes.HasSuffix(w, []byte("\n")) && bytes.Equal(append(bytes.Clone(w), "\r\n"...), h):
		default:
			probs = append(probs, "field "+string(w)+" became "+string(h))
		}
	}
	return probs
}

func containsRaw(r *mailhdr.Reading, raw []byte) bool {
	for _, f := range r.Fields {
		if bytes.Equal(f.Raw, raw) {
			return true
		}
	}
	return false
}
