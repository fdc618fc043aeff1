package rewrite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/leakcheck"
	"github.com/bccguard/bccguard/internal/lineend"
	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/store"
)

// FuzzNoLeak is the differential check of promise 2 in the header: for any
// header block, body and envelope, when the policy decides explode or bcc,
// no copy shows, anywhere in its header but the trace fields, the address
// or the telling name (mailhdr.Telling) of another recipient: an envelope
// recipient or an address the policy counted as visible (the originator's
// and a list's own addresses aside). Either the copies are clean, or the
// policy held the message as unsafe-copy. The copies are judged by
// internal/leakcheck, which shares no parsing with mailhdr, the policy or
// the renderer.
func FuzzNoLeak(f *testing.F) {
	files, _ := filepath.Glob("testdata/leaks/*.eml")
	files = append(files, "testdata/survey.eml")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		h := policy.HeaderBlock(raw)
		f.Add(h, raw[len(h):], "zoe@alpha.example,bob@beta.example,chen@gamma.example", false)
		f.Add(h, raw[len(h):], "", true)
	}
	f.Add([]byte("To: a@example.com\r\nSubject: x\rReceived: b@example.org\r\n\r\n"), []byte("hi\r\n"), "a@example.com,b@example.org", false)
	f.Add([]byte("To: a@example.com, \"Bob Barker\" <b@example.org>\r\nX-Note: for Bob Barker\r\n\r\n"), []byte(""), "", false)
	explode := mustPolicy(f, "rules:\n  - {name: all, when: 'true', action: explode}\n")
	bcc := mustPolicy(f, "rules:\n  - {name: all, when: 'true', action: bcc}\n")
	f.Fuzz(func(t *testing.T, header, body []byte, rcpts string, asBcc bool) {
		raw := append(append([]byte(nil), header...), body...)
		// What the relay stores: a bare CR or LF is refused at ingress
		// (bare_newlines: reject) or made CRLF (normalize), so the policy
		// and the copies both see the normalized lines.
		raw, _ = lineend.Normalized(raw)
		var env []string
		for _, a := range strings.Split(rcpts, ",") {
			if plain(a) {
				env = append(env, a)
			}
		}
		p, rw := explode, store.RewriteExplode
		if asBcc {
			p, rw = bcc, store.RewriteBcc
		}
		in := policy.BuildInput(raw, policy.Envelope{Sender: "bounces@brand.example", Recipients: env}, policy.Client{})
		env = nil
		for _, a := range in.Recipients {
			if plain(a) {
				env = append(env, a)
			}
		}
		if len(env) == 0 {
			return
		}
		in.Recipients = env
		d, _ := p.Evaluate(context.Background(), in)
		switch {
		case d.Action == policy.Quarantine && (d.Rule == policy.UnsafeCopyRule || d.Rule == policy.ParseErrorRule):
			return // held: nothing leaves
		case string(d.Action) != string(rw):
			t.Fatalf("decided %s by %q (%s), want %s or held", d.Action, d.Rule, d.Reason, rw)
		}
		people := recipients(in, raw)
		penv := policy.Envelope{Sender: "bounces@brand.example", Recipients: env}
		for _, dl := range deliveries(rw, env) {
			head := renderHead(t, raw, penv, dl)
			for _, leak := range leakcheck.Header(head, people, dl.Recipients[0].Addr, len(dl.Recipients)) {
				t.Errorf("%s copy to %v shows %s, which the policy did not hold\n--- copy header\n%s", rw, addrs(dl), leak, head)
			}
		}
	})
}

// recipients are whom no copy but their own may show: the envelope
// recipients and the visible addresses the policy counted, each with every
// telling name the header gives them; not the originator's or a mailing
// list's own addresses, which every copy shows as such.
func recipients(in *policy.Input, raw []byte) []leakcheck.Person {
	r := mailhdr.Read(policy.HeaderBlock(raw))
	own := map[string]bool{mailhdr.Key(in.Sender): true}
	for _, mb := range r.Authors() {
		own[mailhdr.Key(mb.Addr)] = true
	}
	for _, e := range r.Entries {
		for _, f := range e.Found {
			if mailhdr.IsListInfra(e.Name, f.Mailto) {
				own[mailhdr.Key(f.Addr)] = true
			}
		}
	}
	var out []leakcheck.Person
	add := func(a, name string) {
		if own[mailhdr.Key(a)] || !strings.Contains(a, "@") {
			return
		}
		if !mailhdr.Telling(mailhdr.NameKey(name)) || strings.Contains(name, "@") {
			name = "" // an address in a name is checked as an address
		}
		out = append(out, leakcheck.Person{Addr: a, Name: name})
	}
	for _, a := range in.Recipients {
		add(a, "")
	}
	for _, v := range in.Visible.Recipients {
		add(v.Address, "")
		for _, n := range v.Names {
			add(v.Address, n)
		}
	}
	return out
}

// plain reports whether a is an address go-smtp hands over as a recipient
// and go-message writes back as it is.
func plain(a string) bool {
	if a == "" || strings.ContainsAny(a, "\",;:()[]\\<> \t\r\n") || strings.Count(a, "@") != 1 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < 0x21 || a[i] > 0x7e {
			return false
		}
	}
	m, err := mail.ParseAddress("<" + a + ">")
	return err == nil && m.Address == a
}
