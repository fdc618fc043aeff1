package e2e

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/relay/rewrite/edits"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/tests/harness"
)

// Helpers for the tests of the policy's rewrites (explode, bcc, pass): they
// take a relayed copy apart and compare it with the message as sent.

// splitHeaderBlock cuts a message into its header fields and the rest (the
// empty line that ends the header block, if any, and the body), as RFC 5322
// reads it: the header block ends at the first empty line (or with the
// message). Every line that does not start with white space begins a field,
// a malformed one (an mbox "From " line, a line without a colon) included;
// a field's name is what comes before its first colon, trimmed of the white
// space the obsolete syntax allows there ("To :").
func splitHeaderBlock(raw []byte) (fields []harness.Field, rest []byte) {
	for len(raw) > 0 {
		end := lineEnd(raw, 0)
		line := raw[:end]
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			return fields, raw
		}
		// The field runs on over its continuation lines.
		for end < len(raw) && (raw[end] == ' ' || raw[end] == '\t') {
			end = lineEnd(raw, end)
		}
		name := ""
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name = strings.TrimRight(string(line[:i]), " \t")
		}
		fields = append(fields, harness.Field{Name: name, Raw: raw[:end]})
		raw = raw[end:]
	}
	return fields, raw
}

// lineEnd is the index just past the line that starts at i.
func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}

// isField reports whether f is called one of names (case-insensitive).
func isField(f harness.Field, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(f.Name, n) {
			return true
		}
	}
	return false
}

// without drops the fields called any of names.
func without(fs []harness.Field, names ...string) []harness.Field {
	var out []harness.Field
	for _, f := range fs {
		if !isField(f, names...) {
			out = append(out, f)
		}
	}
	return out
}

// fieldValue is the unfolded value of a field, as address parsers take it.
func fieldValue(f harness.Field) string {
	_, v, _ := bytes.Cut(f.Raw, []byte(":"))
	s := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(v))
	return strings.TrimSpace(s)
}

// rewrite is what a copy's header block is expected to have undergone.
type rewrite int

const (
	rewritePass    rewrite = iota // Bcc: removed, nothing else
	rewriteExplode                // To: shows only the copy's recipient; no Cc:, no Bcc:
	rewriteBcc                    // To: undisclosed-recipients:; no Cc:, no Bcc:
)

func (r rewrite) String() string {
	return [...]string{"pass", "explode", "bcc"}[r]
}

// copyProblems compares a relayed copy with the message as sent (sent is
// what went over SMTP, after dot-unstuffing: CRLF line ends) and lists
// every way in which it is not what the rewrite promises: a Received: field
// of this relay first; every field other than To/Cc/Bcc byte-identical and
// in order; the rewrite's To/Cc/Bcc; the empty line and body byte-identical.
// For explode, rcpt is the copy's recipient and *name receives the display
// name its To: shows.
func copyProblems(sent, got []byte, rw rewrite, rcpt string, name *string) []string {
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }

	of, orest := splitHeaderBlock(sent)
	gf, grest := splitHeaderBlock(got)
	// bccguard's own DKIM signatures and its Authentication-Results come
	// first, then its Received:.
	for len(gf) > 0 && isField(gf[0], "DKIM-Signature") && !containsField(of, gf[0]) {
		gf = gf[1:]
	}
	if len(gf) > 0 && isField(gf[0], "Authentication-Results") && bytes.Contains(gf[0].Raw, []byte(harness.Hostname)) {
		gf = gf[1:]
	}
	// The original signatures the rewrite invalidates are removed (their
	// h= covers a field it changed); the others must stay byte for byte.
	of = withoutBrokenSignatures(of, rw)
	if len(gf) == 0 || !isField(gf[0], "Received") || !bytes.Contains(gf[0].Raw, []byte(harness.Hostname)) {
		add("copy does not start with a Received: field naming %s", harness.Hostname)
	} else {
		gf = gf[1:]
	}

	// Every field but To/Cc/Bcc: the same bytes in the same order.
	drop := []string{"To", "Cc", "Bcc"}
	if rw == rewritePass {
		drop = []string{"Bcc"}
	}
	ok, gk := without(of, drop...), without(gf, drop...)
	if len(ok) != len(gk) {
		add("header has %d fields other than %s, the original %d", len(gk), strings.Join(drop, "/"), len(ok))
	}
	for i := range min(len(ok), len(gk)) {
		if !bytes.Equal(ok[i].Raw, gk[i].Raw) {
			add("header field %d differs: got %q, want %q", i+1, gk[i].Raw, ok[i].Raw)
			break
		}
	}

	var tos []harness.Field
	for _, f := range gf {
		switch {
		case isField(f, "Bcc"):
			add("copy has a Bcc: field: %q", f.Raw)
		case isField(f, "Cc") && rw != rewritePass:
			add("%s copy has a Cc: field: %q", rw, f.Raw)
		case isField(f, "To"):
			tos = append(tos, f)
		}
	}
	switch rw {
	case rewriteExplode:
		if len(tos) != 1 {
			add("explode copy has %d To: fields, want 1", len(tos))
			break
		}
		list, err := mail.ParseAddressList(fieldValue(tos[0]))
		switch {
		case err != nil:
			add("To: of the copy does not parse: %v: %q", err, tos[0].Raw)
		case len(list) != 1 || !strings.EqualFold(list[0].Address, rcpt):
			add("To: of the copy to <%s> shows %v: %q", rcpt, list, tos[0].Raw)
		case name != nil:
			*name = list[0].Name
		}
	case rewriteBcc:
		if len(tos) != 1 || string(tos[0].Raw) != "To: undisclosed-recipients:;\r\n" {
			add("bcc copy: want exactly one field \"To: undisclosed-recipients:;\", got %q", tos)
		}
	}

	if !bytes.Equal(orest, grest) {
		add("empty line and body differ: got %d bytes, want %d%s", len(grest), len(orest), firstDiff(grest, orest))
	}
	return probs
}

// containsField reports whether fs has a field with exactly f's bytes.
func containsField(fs []harness.Field, f harness.Field) bool {
	for _, g := range fs {
		if bytes.Equal(g.Raw, f.Raw) {
			return true
		}
	}
	return false
}

// withoutBrokenSignatures drops the DKIM-Signature fields a rewrite
// invalidates: those whose h= covers To (explode, bcc), a present Cc
// (explode, bcc) or a present Bcc (every rewrite).
func withoutBrokenSignatures(fs []harness.Field, rw rewrite) []harness.Field {
	has := func(name string) bool {
		for _, f := range fs {
			if isField(f, name) {
				return true
			}
		}
		return false
	}
	hasCc, hasBcc := has("Cc"), has("Bcc")
	var out []harness.Field
	for _, f := range fs {
		if isField(f, "DKIM-Signature") {
			h := signedFields(fieldValue(f))
			broken := h["bcc"] && hasBcc
			if rw != rewritePass {
				broken = broken || h["to"] || (h["cc"] && hasCc)
			}
			if broken {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// signedFields is the set of (lowercased) field names in a DKIM-Signature's h= tag.
func signedFields(v string) map[string]bool {
	out := map[string]bool{}
	for _, tag := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(tag), "=")
		if !ok || strings.TrimSpace(k) != "h" {
			continue
		}
		for _, name := range strings.Split(val, ":") {
			out[strings.ToLower(strings.Join(strings.Fields(name), ""))] = true
		}
	}
	return out
}

// firstDiff describes where a and b first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(i-20, 0)
	return fmt.Sprintf(" (first difference at byte %d: got %q, want %q)", i, a[lo:min(i+40, len(a))], b[lo:min(i+40, len(b))])
}

// checkCopy fails the test with every problem copyProblems finds.
func checkCopy(t *testing.T, sent []byte, got *smtptest.Message, rw rewrite, rcpt string) string {
	t.Helper()
	var name string
	for _, p := range copyProblems(sent, got.Data, rw, rcpt, &name) {
		t.Errorf("%s copy to %v: %s", rw, got.RcptAddrs(), p)
	}
	return name
}

// dotStuff prepares a CRLF message for DATA: a CRLF is added if it does not
// end with one (SMTP cannot carry a message that does not), lines starting
// with "." get another, and the end-of-data line follows. It returns the
// message as the server sees it after unstuffing, and the bytes to send.
func dotStuff(msg []byte) (sent, wire []byte) {
	sent = msg
	if !bytes.HasSuffix(sent, []byte("\r\n")) {
		sent = append(bytes.Clone(sent), '\r', '\n')
	}
	wire = bytes.ReplaceAll(sent, []byte("\r\n."), []byte("\r\n.."))
	if bytes.HasPrefix(wire, []byte(".")) {
		wire = append([]byte("."), wire...)
	}
	return sent, append(wire, ".\r\n"...)
}

// crlf normalises line ends to CRLF: every LF not after a CR gets one; a lone
// CR stays as it is.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// submit sends msg (CRLF line ends) on a raw connection and returns the
// reply to the end of DATA, with what the server got after unstuffing. It
// fails the test if a command before DATA is refused; the content is
// written while the reply is awaited, so a relay that answers early (a line
// too long) cannot deadlock it.
func submit(t *testing.T, addr, from string, rcpts []string, msg []byte) (harness.Reply, []byte) {
	t.Helper()
	c := harness.DialRaw(t, addr, "")
	defer c.Close()
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	c.Expect("MAIL FROM:<"+from+">", 250, "")
	for _, r := range rcpts {
		c.Expect("RCPT TO:<"+r+">", 250, "")
	}
	c.Expect("DATA", 354, "")
	sent, wire := dotStuff(msg)
	go c.WriteBytes(wire)
	rep, err := c.ReadReplyWithin(60 * time.Second)
	if err != nil {
		rep = harness.Reply{Lines: []string{"no reply: " + err.Error()}}
	} else if rep.Code == 250 {
		c.Cmd("QUIT")
	}
	return rep, sent
}

// sentinel sends a one-to-one message that every policy in these tests
// passes and waits until it arrives: a message refused or held before it
// must not arrive at all, and deliveries queued before it had their chance.
func sentinel(t *testing.T, r *harness.Relay, sink *smtptest.Sink) {
	t.Helper()
	msg := harness.CRLF("From: ops@example.com\nTo: Sentinel <sentinel@example.com>\nSubject: sentinel\n\nlast\n")
	harness.Send(t, r.Addr(), "ops@example.com", []string{"sentinel@example.com"}, msg)
	sink.WaitUntil(t, deliverTimeout, "the sentinel message", func(ms []*smtptest.Message) bool {
		for _, m := range ms {
			if m.From == "ops@example.com" {
				return true
			}
		}
		return false
	})
}

// logShows waits (briefly: the relay's output reaches the test through a
// pipe, a moment after the reply it goes with) for a line of r's log that
// contains every one of subs, and reports whether one came.
func logShows(t *testing.T, r *harness.Relay, subs ...string) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if logHas(r.Logs(), subs...) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logHas reports whether one line of the relay's log contains every one of
// subs.
func logHas(logs string, subs ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// withoutCleaned drops from sent and got the address fields that the
// rewrite's table cleans (package edits: Reply-To:, Delivered-To:, ...)
// wherever the copy changed their instances, and the original signatures
// over them (the relay removes those), so that copyProblems can hold the
// rest to byte identity. It returns the names dropped.
func withoutCleaned(sent, got []byte, rw rewrite) ([]byte, []byte, []string) {
	srw := store.RewriteExplode
	if rw == rewriteBcc {
		srw = store.RewriteBcc
	}
	of, orest := splitHeaderBlock(sent)
	gf, grest := splitHeaderBlock(got)
	instances := func(fs []harness.Field, name string) [][]byte {
		var out [][]byte
		for _, f := range fs {
			if isField(f, name) {
				out = append(out, f.Raw)
			}
		}
		return out
	}
	var dropped []string
	seen := map[string]bool{}
	for _, f := range of {
		k := strings.ToLower(f.Name)
		if f.Name == "" || seen[k] || edits.For(srw, f.Name, mailhdr.RoleOf(f.Name)) != edits.Clean {
			continue
		}
		seen[k] = true
		if !slices.EqualFunc(instances(of, f.Name), instances(gf, f.Name), bytes.Equal) {
			dropped = append(dropped, k)
		}
	}
	if len(dropped) == 0 {
		return sent, got, nil
	}
	keep := func(fs []harness.Field, sigs bool) []byte {
		var b []byte
		for _, f := range fs {
			if isField(f, dropped...) {
				continue
			}
			if sigs && isField(f, "DKIM-Signature") {
				h := signedFields(fieldValue(f))
				if slices.ContainsFunc(dropped, func(n string) bool { return h[n] }) {
					continue
				}
			}
			b = append(b, f.Raw...)
		}
		return b
	}
	return append(keep(of, true), orest...), append(keep(gf, false), grest...), dropped
}
