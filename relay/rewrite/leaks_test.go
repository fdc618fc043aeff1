package rewrite_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/internal/leakcheck"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
)

// leakCase is one line of testdata/leaks/CASES.
type leakCase struct {
	file    string
	rcpts   []string
	copies  string // clean or held
	builtin string // action/rule
	name    string // the explode copy's own display name for rcpts[0], "" for none
}

func loadLeakCases(t *testing.T) ([]leakCase, []leakcheck.Person) {
	t.Helper()
	f, err := os.Open("testdata/leaks/CASES")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cases, people, err := leakcheck.ReadCases(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []leakCase
	for _, c := range cases {
		out = append(out, leakCase{c.File, c.Rcpts, c.Copies, c.Builtin, c.Name})
	}
	return out, people
}

// TestLeaks is the specification of promise 2 in the header: for every way
// a header can show the recipients to each other (testdata/leaks), the
// built-in policy decides as CASES says, and an explode or a bcc of it
// either makes copies that show no other recipient anywhere in their
// header, or is held as unsafe-copy. Each case failed before the header
// reader and the table of edits.
func TestLeaks(t *testing.T) {
	cases, people := loadLeakCases(t)
	builtin, err := policy.Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.file, ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata/leaks", c.file))
			if err != nil {
				t.Fatal(err)
			}
			env := policy.Envelope{Sender: "bounces@brand.example", Recipients: c.rcpts}
			d, _ := builtin.Evaluate(context.Background(), policy.BuildInput(raw, env, policy.Client{}))
			if got := string(d.Action) + "/" + d.Rule; got != c.builtin {
				t.Errorf("built-in policy: %s (%s), want %s", got, d.Reason, c.builtin)
			}
			for _, rw := range []store.Rewrite{store.RewriteExplode, store.RewriteBcc} {
				p := mustPolicy(t, fmt.Sprintf("rules:\n  - {name: all, when: 'true', action: %s}\n", rw))
				d, _ := p.Evaluate(context.Background(), policy.BuildInput(raw, env, policy.Client{}))
				switch {
				case c.copies == "held":
					if d.Action != policy.Quarantine || d.Rule != policy.UnsafeCopyRule {
						t.Errorf("%s: decided %s by %q (%s), want quarantine by unsafe-copy", rw, d.Action, d.Rule, d.Reason)
					}
					continue
				case string(d.Action) != string(rw):
					t.Errorf("%s: decided %s by %q (%s), want the copies made", rw, d.Action, d.Rule, d.Reason)
					continue
				}
				for _, dl := range deliveries(rw, c.rcpts) {
					head := renderHead(t, raw, env, dl)
					for _, leak := range leakcheck.Header(head, people, dl.Recipients[0].Addr, len(dl.Recipients)) {
						t.Errorf("%s copy to %v shows %s", rw, addrs(dl), leak)
					}
					if rw == store.RewriteExplode && dl.Recipients[0].Addr == c.rcpts[0] {
						if got := leakcheck.ToName(head); got != c.name {
							t.Errorf("explode copy to %s shows the name %q, want %q", c.rcpts[0], got, c.name)
						}
					}
				}
			}
		})
	}
}

func mustPolicy(t testing.TB, section string) *policy.Policy {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(section), &n); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(&n, "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deliveries are the copies a rewrite makes, as the relay plans them.
func deliveries(rw store.Rewrite, rcpts []string) []store.Delivery {
	var all []store.Recipient
	for _, r := range rcpts {
		all = append(all, store.Recipient{Addr: r})
	}
	if rw == store.RewriteBcc {
		return []store.Delivery{{ID: "D", Rewrite: rw, Recipients: all}}
	}
	var out []store.Delivery
	for i, r := range all {
		out = append(out, store.Delivery{ID: fmt.Sprint("D", i), Rewrite: rw, Recipients: []store.Recipient{r}})
	}
	return out
}

func addrs(d store.Delivery) []string {
	var out []string
	for _, r := range d.Recipients {
		out = append(out, r.Addr)
	}
	return out
}

// renderHead renders a copy of raw (stored with bccguard's Received:) and
// returns its header block.
func renderHead(t testing.TB, raw []byte, env policy.Envelope, dl store.Delivery) []byte {
	t.Helper()
	stored := append([]byte(rewrite.Received("crm.example", "192.0.2.1", "relay.example", "ESMTP", "Q1", testTime)), raw...)
	hl := len(stored) - len(raw) + len(policy.HeaderBlock(raw))
	msg := store.Message{ID: "M", HeaderLen: int64(hl), Size: int64(len(stored)),
		Envelope: store.Envelope{Sender: env.Sender}}
	for _, r := range env.Recipients {
		msg.Envelope.Recipients = append(msg.Envelope.Recipients, store.Recipient{Addr: r})
	}
	r := bytes.NewReader(stored)
	src, err := rewrite.ReadSource(r, msg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	if err := rewrite.WriteCopy(bw, src, r, dl, rewrite.Options{}); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	if !bytes.HasSuffix(out.Bytes(), raw[len(policy.HeaderBlock(raw)):]) {
		t.Fatal("the body changed")
	}
	return out.Bytes()[:out.Len()-len(raw)+len(policy.HeaderBlock(raw))]
}

var testTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
