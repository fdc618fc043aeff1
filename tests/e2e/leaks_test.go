package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/leakcheck"
	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestLeaksEndToEnd sends every golden leak case (relay/rewrite/testdata/
// leaks: a list in Reply-To:, Sender:, the notification fields,
// Delivered-To:, Apparently-To:, Keywords:, List-*:, an X- field, a display
// name or group name, behind a bare CR; the copy's own display name; the
// mbox From line, the obs-route and the first line starting with a space)
// through the real binary three ways: exploded, as bcc, and held and then
// released as explode by the CLI. Each case either arrives as clean copies,
// one per recipient (explode) or one for all (bcc), with the body as sent
// and no other recipient's address or name anywhere in the header, or is
// held as unsafe-copy and never leaves: its release is refused with
// unsafe_copy.
func TestLeaksEndToEnd(t *testing.T) {
	t.Parallel()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "relay", "rewrite", "testdata", "leaks")
	f, err := os.Open(filepath.Join(dir, "CASES"))
	if err != nil {
		t.Fatal(err)
	}
	cases, people, err := leakcheck.ReadCases(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"explode", "bcc", "release-as-explode"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			action := mode
			if mode == "release-as-explode" {
				action = "quarantine"
			}
			sink := harness.NewSink(t)
			// bare_newlines: normalize lets the bare-CR case in, as the
			// hidden field a CR-splitting reader shows; with the default
			// (reject) it is refused at the end of DATA (hygiene_test.go).
			r := harness.Start(t, fmt.Sprintf("policy:\n  rules:\n    - {name: sentinel, when: 'sender == \"ops@example.com\"', action: pass}\n"+
				"    - {name: all, when: 'true', action: %s}\n"+
				"listeners:\n  - name: smtp\n    address: {{addr \"smtp\"}}\n    bare_newlines: normalize\n", action),
				harness.WithUpstream(sink.Addr()))

			type run struct {
				c      leakcheck.Case
				sender string
				body   []byte
			}
			var runs []run
			want := 0 // transactions to arrive
			for i, c := range cases {
				raw, err := os.ReadFile(filepath.Join(dir, c.File))
				if err != nil {
					t.Fatal(err)
				}
				sender := fmt.Sprintf("case%02d@brand.example", i)
				reply, sent := submit(t, r.Addr(), sender, c.Rcpts, raw)
				_, body, _ := bytes.Cut(sent, []byte("\r\n\r\n"))
				held := heldAs.FindStringSubmatch(reply.Text())
				switch {
				case action == "quarantine":
					if held == nil {
						t.Errorf("%s: reply %s, want held for review", c.File, reply)
						continue
					}
					res := r.CLI("quarantine", "release", held[1], "--as", "explode", "--data-dir", r.DataDir())
					switch {
					case c.Copies == "held" && (res.OK() || !strings.Contains(res.Stdout+res.Stderr, "unsafe_copy")):
						t.Errorf("%s: releasing as explode: want refused with unsafe_copy:\n%s", c.File, res)
						continue
					case c.Copies == "held":
						continue
					case !res.OK():
						t.Errorf("%s: releasing as explode:\n%s", c.File, res)
						continue
					}
				case c.Copies == "held":
					if held == nil || !logShows(t, r, held[1], `"rule":"unsafe-copy"`) {
						t.Errorf("%s: reply %s, want held for review as unsafe-copy", c.File, reply)
					}
					continue
				default:
					queueID(t, reply.Text())
				}
				runs = append(runs, run{c, sender, body})
				if mode == "bcc" {
					want++
				} else {
					want += len(c.Rcpts)
				}
			}
			sentinel(t, r, sink)
			ms := sink.WaitUntil(t, deliverTimeout, "every copy", func(ms []*smtptest.Message) bool {
				return len(ms) >= want+1
			})
			bySender := map[string][]*smtptest.Message{}
			for _, m := range ms {
				bySender[m.From] = append(bySender[m.From], m)
			}
			for _, c := range cases {
				if c.Copies == "held" {
					for i := range cases {
						if cases[i].File == c.File && len(bySender[fmt.Sprintf("case%02d@brand.example", i)]) > 0 {
							t.Errorf("%s: held, yet copies reached the upstream", c.File)
						}
					}
				}
			}
			for _, rn := range runs {
				copies := bySender[rn.sender]
				n := len(rn.c.Rcpts)
				if mode == "bcc" {
					n = 1
				}
				if len(copies) != n {
					t.Errorf("%s: %d copies, want %d", rn.c.File, len(copies), n)
				}
				for _, m := range copies {
					own := m.Rcpts[0].Addr
					for _, leak := range leakcheck.Header(m.Header, people, own, len(m.Rcpts)) {
						t.Errorf("%s: %s copy to %v shows %s\n%s", rn.c.File, mode, m.RcptAddrs(), leak, m.Header)
					}
					if !bytes.Equal(m.Body(), rn.body) {
						t.Errorf("%s: %s copy to %v: the body changed", rn.c.File, mode, m.RcptAddrs())
					}
					if mode != "bcc" && strings.EqualFold(own, rn.c.Rcpts[0]) {
						if got := leakcheck.ToName(m.Header); got != rn.c.Name {
							t.Errorf("%s: the copy to %s shows the name %q, want %q", rn.c.File, own, got, rn.c.Name)
						}
					}
				}
			}
		})
	}
}
