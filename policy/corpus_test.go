package policy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir holds real-world messages from other mail projects. It is read
// where it is, never copied into the repository.
const corpusDir = "../../shared/corpus"

// TestCorpus runs the real-world messages through everything the policy
// does with a message: visible recipients, body scan, built-in policy. It
// lists what the built-in policy decides and every header it cannot parse
// (those are held, not passed), and checks the invariants on each.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("no corpus at %s: %v", corpusDir, err)
	}
	p, err := Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	counts := map[Action]int{}
	filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".md") || strings.HasSuffix(path, ".tsv") ||
			strings.HasPrefix(d.Name(), "LICENSE") || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		name, _ := filepath.Rel(corpusDir, path)
		v := ParseVisible(HeaderBlock(raw), nil)
		checkVisibleInvariants(t, v)
		res, seen := scanAll(t, raw, MaxBodyAddresses)
		if res.Addresses != len(seen) {
			t.Errorf("%s: Addresses %d, %d seen", name, res.Addresses, len(seen))
		}
		d2, _ := p.Evaluate(context.Background(), BuildInput(raw, Envelope{Sender: "crm@brand.example", Recipients: []string{"rcpt@example.net"}}, Client{}))
		counts[d2.Action]++
		if v.ParseError != "" && d2.Action != Quarantine {
			t.Errorf("%s: unparsable (%s) but %s", name, v.ParseError, d2.Action)
		}
		if d2.Action != Pass || res.Err != "" {
			t.Logf("%-70s %-10s %-30s visible=%d body=%d %s %s", name, d2.Action, d2.Rule, v.Count, res.Addresses, v.ParseError, firstLine(res.Err))
		}
		return nil
	})
	t.Logf("%d corpus messages: %v", n, counts)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
