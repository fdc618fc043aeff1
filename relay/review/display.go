package review

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/bccguard/bccguard/relay/store"
)

// Message data shown to a reviewer (on the pages, in the API and in the
// CLI, which all take it from Show and List) is neutralised here, once: a
// bidirectional override (U+202E) in a display name can make
// "moc.elpmaxe@nna" read as a harmless address, a zero-width character can
// make two names look alike, and a control character can rewrite a
// terminal. Each such character is replaced by a visible "[U+202E]", so the
// reviewer sees both that something was there and what it was. (The body
// preview, being text to read, drops them instead: preview.go.)

// invisible reports whether r changes how text around it is shown without
// being seen itself: control characters, format characters (Unicode Cf:
// bidi embeddings, overrides and isolates, zero-width joiners and spaces,
// the BOM, ...), line and paragraph separators.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// Neutralize returns s with every invisible character written as [U+XXXX]
// and invalid UTF-8 as U+FFFD. Tabs become spaces.
func Neutralize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsFunc(s, invisible) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case invisible(r):
			fmt.Fprintf(&b, "[U+%04X]", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (sum *Summary) neutralize() {
	for _, p := range []*string{&sum.Sender, &sum.Subject, &sum.From, &sum.Client.Helo, &sum.Client.User, &sum.Reason} {
		*p = Neutralize(*p)
	}
}

func (d *Detail) neutralize() {
	d.Summary.neutralize()
	d.Date, d.MessageID = Neutralize(d.Date), Neutralize(d.MessageID)
	for i := range d.EnvelopeRecipients {
		d.EnvelopeRecipients[i] = Neutralize(d.EnvelopeRecipients[i])
	}
	vis := make([]store.VisibleRecipient, len(d.VisibleRecipients))
	copy(vis, d.VisibleRecipients)
	for i := range vis {
		vis[i].Name, vis[i].Address = Neutralize(vis[i].Name), Neutralize(vis[i].Address)
	}
	d.VisibleRecipients = vis
	for i := range d.Header {
		d.Header[i].Name, d.Header[i].Value = Neutralize(d.Header[i].Name), Neutralize(d.Header[i].Value)
	}
}

// Show returns one hold in detail, with its header fields and a safe text
// preview of its body, every piece of message data neutralised.
func (s *Service) Show(ctx context.Context, a Actor, id string) (Detail, error) {
	d, err := s.show(ctx, a, id)
	if err == nil {
		d.neutralize()
	}
	return d, err
}
