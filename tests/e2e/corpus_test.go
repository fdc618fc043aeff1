package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// corpusDir finds ../shared/corpus next to the repository: real-world test
// messages from other mail projects, read from there and never copied into
// the repository. BCCGUARD_CORPUS overrides it.
func corpusDir(t *testing.T) string {
	t.Helper()
	var tried []string
	try := func(dir string) string {
		if dir == "" {
			return ""
		}
		tried = append(tried, dir)
		if _, err := os.Stat(filepath.Join(dir, "MANIFEST.tsv")); err == nil {
			return dir
		}
		return ""
	}
	if d := try(os.Getenv("BCCGUARD_CORPUS")); d != "" {
		return d
	}
	if root, err := harness.ModuleRoot(); err == nil {
		if d := try(filepath.Join(root, "..", "shared", "corpus")); d != "" {
			return d
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		if d := try(filepath.Join(strings.TrimSpace(string(out)), "..", "shared", "corpus")); d != "" {
			return d
		}
	}
	if d := try("/work/shared/corpus"); d != "" {
		return d
	}
	t.Skipf("the shared corpus of real-world messages is absent (looked for MANIFEST.tsv in %s): skipping", strings.Join(tried, ", "))
	return ""
}

// corpusFiles lists the messages named in MANIFEST.tsv.
func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path, _, _ := strings.Cut(sc.Text(), "\t")
		if path == "" || path == "path" || strings.HasPrefix(path, "#") {
			continue
		}
		files = append(files, path)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("%s/MANIFEST.tsv lists no messages", dir)
	}
	return files
}

// visibleLine finds a line, anywhere before the first empty line, that a
// lenient reader would take for a To:, Cc: or Bcc: field (obsolete syntax
// allows white space before the colon).
var visibleLine = regexp.MustCompile(`(?im)^(to|cc|bcc)[ \t]*:`)

// corpusRun is what one policy did with one corpus file.
type corpusRun struct {
	file   string
	sender string
	rcpts  []string
	sent   []byte // as the relay got it (CRLF, dot-unstuffed)
	reply  harness.Reply
}

// TestCorpusPassAndExplode relays every message of the shared corpus through
// the real binary twice: with a policy that passes everything and one that
// explodes everything (on_unsafe_copy: allow, so that every copy is made).
// Each copy must keep the body and every header field other than To/Cc/Bcc
// byte for byte, in order, but for the address fields the table cleans of
// the other recipients (Reply-To:, Delivered-To:, ...); an exploded message
// arrives once per envelope recipient showing only that recipient. A message the
// relay refuses must get a correct reply for a reason the file really has;
// the refusals are listed.
func TestCorpusPassAndExplode(t *testing.T) {
	t.Parallel()
	dir := corpusDir(t)
	files := corpusFiles(t, dir)
	lim := config.DefaultLimits()

	type result struct {
		rw   rewrite
		runs []corpusRun
	}
	var (
		mu      sync.Mutex
		results []result
	)
	for _, rw := range []rewrite{rewritePass, rewriteExplode} {
		t.Run(rw.String(), func(t *testing.T) {
			t.Parallel()
			sink := harness.NewSink(t)
			r := harness.Start(t, fmt.Sprintf(`
policy:
  on_parse_error: %[1]s
  on_unsafe_copy: allow
  rules:
    - {name: all, when: "true", action: %[1]s}
`, rw), harness.WithUpstream(sink.Addr()))

			runs := make([]corpusRun, len(files))
			want := 0 // recipients to be delivered to
			for i, file := range files {
				raw, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				run := corpusRun{file: file, sender: fmt.Sprintf("corpus%03d@example.com", i)}
				for k := range 1 + i%3 {
					run.rcpts = append(run.rcpts, fmt.Sprintf("rcpt%d.%03d@%s", k+1, i, customerDomains[k]))
				}
				run.reply, run.sent = submit(t, r.Addr(), run.sender, run.rcpts, crlf(raw))
				if run.reply.Code == 250 {
					queueID(t, run.reply.Text())
					want += len(run.rcpts)
				}
				runs[i] = run
			}

			ms := sink.WaitUntil(t, 2*deliverTimeout, "every accepted corpus message", func(ms []*smtptest.Message) bool {
				k := 0
				for _, m := range ms {
					k += len(m.Rcpts)
				}
				return k >= want
			})
			bySender := map[string][]*smtptest.Message{}
			for _, m := range ms {
				bySender[m.From] = append(bySender[m.From], m)
			}

			for _, run := range runs {
				copies := bySender[run.sender]
				if run.reply.Code != 250 {
					if why := refusalProblem(run, lim); why != "" {
						t.Errorf("%s: refused with %s: %s", run.file, run.reply, why)
					}
					if len(copies) > 0 {
						t.Errorf("%s: refused with %s, yet %d copies reached the upstream", run.file, run.reply, len(copies))
					}
					continue
				}
				if line := longestLine(run.sent); line > lim.MaxLineLength {
					t.Errorf("%s: accepted although a line is %d octets, over max_line_length %d", run.file, line, lim.MaxLineLength)
				}
				checkCorpusCopies(t, run, rw, copies)
			}
			mu.Lock()
			results = append(results, result{rw, runs})
			mu.Unlock()
		})
	}
	t.Cleanup(func() {
		// The refusals, as a table: file, policy, reply, reason.
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "file\tpolicy\treply\treason")
		n := 0
		sort.Slice(results, func(i, j int) bool { return results[i].rw < results[j].rw })
		for _, res := range results {
			for _, run := range res.runs {
				if run.reply.Code != 250 {
					n++
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", run.file, res.rw, run.reply, refusalReason(run, lim))
				}
			}
		}
		tw.Flush()
		t.Logf("corpus %s: %d files, each relayed passed and exploded; %d refusals:\n%s", dir, len(files), n, b.String())
	})
}

// checkCorpusCopies checks the copies of one accepted corpus message.
func checkCorpusCopies(t *testing.T, run corpusRun, rw rewrite, copies []*smtptest.Message) {
	t.Helper()
	var got []string
	for _, m := range copies {
		got = append(got, m.RcptAddrs()...)
	}
	sort.Strings(got)
	want := append([]string(nil), run.rcpts...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s (%s): copies went to %v, want %v", run.file, rw, got, want)
		return
	}
	switch rw {
	case rewritePass:
		if len(copies) != 1 {
			t.Errorf("%s (pass): %d transactions, want 1 to all recipients", run.file, len(copies))
		}
	case rewriteExplode:
		if len(copies) != len(run.rcpts) {
			t.Errorf("%s (explode): %d transactions, want one per recipient (%d)", run.file, len(copies), len(run.rcpts))
		}
	}
	for _, m := range copies {
		rcpt := ""
		if len(m.Rcpts) == 1 {
			rcpt = m.Rcpts[0].Addr
		} else if rw == rewriteExplode {
			t.Errorf("%s (explode): a copy to %d recipients %v", run.file, len(m.Rcpts), m.RcptAddrs())
			continue
		}
		sent, got := run.sent, m.Data
		if rw != rewritePass {
			sent, got, _ = withoutCleaned(sent, got, rw)
		}
		for _, p := range copyProblems(sent, got, rw, rcpt, nil) {
			t.Errorf("%s (%s) copy to %v: %s", run.file, rw, m.RcptAddrs(), p)
		}
		if rw != rewriteExplode {
			continue
		}
		// However a reader splits the header from the body, the copy must
		// not show the original's To:/Cc:/Bcc: lines: the only one before
		// the first empty line is the relay's To: for this recipient.
		head := m.Data
		if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
			head = head[:i+2]
		}
		if lines := visibleLine.FindAllIndex(head, -1); len(lines) != 1 {
			var shown []string
			for _, l := range lines {
				end := bytes.IndexByte(head[l[0]:], '\n')
				if end < 0 {
					end = len(head) - l[0]
				}
				shown = append(shown, strings.TrimSpace(string(head[l[0]:l[0]+end])))
			}
			t.Errorf("%s (explode) copy to %s: before its first empty line it shows %d To/Cc/Bcc lines, want only its own To: %q",
				run.file, rcpt, len(lines), shown)
		}
	}
}

// longestLine is the length of the longest line of msg in octets, as the
// relay's max_line_length counts them (without the LF, with a CR).
func longestLine(msg []byte) int {
	longest := 0
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			i = len(msg)
		}
		longest = max(longest, i)
		msg = msg[min(i+1, len(msg)):]
	}
	return longest
}

// headerSize is the size of msg's header block as the relay reads it.
func headerSize(msg []byte) int {
	fields, _ := splitHeaderBlock(msg)
	n := 0
	for _, f := range fields {
		n += len(f.Raw)
	}
	return n
}

// refusalReason says what in the file explains a refusal ("" if nothing).
func refusalReason(run corpusRun, lim config.Limits) string {
	switch {
	case run.reply.Is(554, "5.6.0"):
		if l := longestLine(run.sent); l > lim.MaxLineLength {
			return fmt.Sprintf("a line of %d octets, over max_line_length %d", l, lim.MaxLineLength)
		}
	case run.reply.Is(552, "5.3.4"):
		if h := headerSize(run.sent); h > int(lim.MaxHeaderSize) {
			return fmt.Sprintf("a header block of %d octets, over max_header_size %d", h, lim.MaxHeaderSize)
		}
		if len(run.sent) > int(lim.MaxMessageSize) {
			return fmt.Sprintf("%d octets, over max_message_size %d", len(run.sent), lim.MaxMessageSize)
		}
	}
	return ""
}

// refusalProblem says what is wrong with a refusal, "" if it is a correct
// reply for a reason the message really has.
func refusalProblem(run corpusRun, lim config.Limits) string {
	rep := run.reply
	switch {
	case rep.Code == 0:
		return "the relay gave no reply to the end of DATA"
	case rep.Code/100 != 4 && rep.Code/100 != 5:
		return "not a 4xx/5xx reply"
	case rep.Enhanced == "" || rep.Enhanced[0] != byte('0'+rep.Code/100):
		return "no matching enhanced status code"
	case refusalReason(run, lim) == "":
		return "nothing in the message explains this refusal"
	}
	return ""
}

// TestCorpusBuiltinPolicy relays every message of the shared corpus through
// the real binary on the built-in policy, each to one envelope recipient
// the header does not show: what a CRM sending one mail at a time does. At
// least 97% must be delivered with the body and every header field but
// To/Cc/Bcc byte for byte as sent (a pass, or an explode to the one
// recipient); every message held or refused is listed with its reason.
// Refusals for a line over max_line_length are counted apart too, as the
// ingress decides them (issue 12), not the header reader.
func TestCorpusBuiltinPolicy(t *testing.T) {
	t.Parallel()
	dir := corpusDir(t)
	files := corpusFiles(t, dir)
	lim := config.DefaultLimits()
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	runs := make([]corpusRun, len(files))
	why := make([]string, len(files)) // held or refused: the reason
	want := 0
	for i, file := range files {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		run := corpusRun{file: file, sender: fmt.Sprintf("builtin%03d@example.com", i),
			rcpts: []string{fmt.Sprintf("rcpt.%03d@example.net", i)}}
		run.reply, run.sent = submit(t, r.Addr(), run.sender, run.rcpts, crlf(raw))
		runs[i] = run
		switch held := heldAs.FindStringSubmatch(run.reply.Text()); {
		case held != nil:
			var d struct{ Rule, Reason string }
			out := r.MustCLI("quarantine", "show", held[1], "--json", "--data-dir", r.DataDir())
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("quarantine show --json: %v\n%s", err, out)
			}
			why[i] = "held by " + d.Rule + ": " + d.Reason
		case run.reply.Code == 250:
			queueID(t, run.reply.Text())
			want++
		default:
			why[i] = "refused with " + run.reply.String()
			if reason := refusalReason(run, lim); reason != "" {
				why[i] += " (" + reason + ")"
			} else {
				t.Errorf("%s: refused with %s, which nothing in the message explains", file, run.reply)
			}
		}
	}
	ms := sink.WaitUntil(t, 2*deliverTimeout, "every accepted corpus message", func(ms []*smtptest.Message) bool {
		return len(ms) >= want
	})
	bySender := map[string][]*smtptest.Message{}
	for _, m := range ms {
		bySender[m.From] = append(bySender[m.From], m)
	}
	delivered, longLines := 0, 0
	for i, run := range runs {
		copies := bySender[run.sender]
		if why[i] != "" {
			if len(copies) > 0 {
				t.Errorf("%s: %s, yet %d copies reached the upstream", run.file, why[i], len(copies))
			}
			if run.reply.Is(500, "5.5.0") && longestLine(run.sent) > lim.MaxLineLength {
				longLines++
			}
			continue
		}
		if len(copies) != 1 || len(copies[0].Rcpts) != 1 || copies[0].Rcpts[0].Addr != run.rcpts[0] {
			t.Errorf("%s: %d copies, want one to %s", run.file, len(copies), run.rcpts[0])
			continue
		}
		// A pass keeps To:/Cc: too; an explode to the one recipient
		// rewrites them. Either way nothing else changes.
		probs := copyProblems(run.sent, copies[0].Data, rewritePass, run.rcpts[0], nil)
		if len(probs) > 0 {
			probs = copyProblems(run.sent, copies[0].Data, rewriteExplode, run.rcpts[0], nil)
		}
		if len(probs) > 0 {
			why[i] = "delivered changed: " + strings.Join(probs, "; ")
			continue
		}
		delivered++
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for i, w := range why {
		if w != "" {
			fmt.Fprintf(tw, "%s\t%s\n", runs[i].file, w)
		}
	}
	tw.Flush()
	reachable := len(files) - longLines
	t.Logf("built-in policy, one recipient: %d of %d delivered unchanged (%.1f%%); %d of the %d not refused for a long line (%.1f%%); the others:\n%s",
		delivered, len(files), 100*float64(delivered)/float64(len(files)),
		delivered, reachable, 100*float64(delivered)/float64(reachable), b.String())
	if 100*delivered < 97*reachable {
		t.Errorf("%d of %d delivered unchanged, want at least 97%%", delivered, reachable)
	}
}
