package review

import (
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"golang.org/x/net/html"
)

// Preview is a safe plain-text excerpt of a message body: decoded
// (transfer encoding and charset), HTML reduced to its text, control and
// direction-override characters removed, capped at MaxPreview bytes. It is
// text to be escaped by whoever displays it, never markup.
type Preview struct {
	Text string `json:"text"`
	// Source is the part the text came from: "text/plain", "text/html",
	// or "" when there was none.
	Source    string `json:"source,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Note says why there is no text, when there is none.
	Note string `json:"note,omitempty"`
}

// Bounds of the preview.
const (
	MaxPreview = 4 << 10
	// maxPreviewScan bounds how much of the stored message the preview
	// reads while looking for a text part: attachments before the text are
	// skipped, but not for ever.
	maxPreviewScan = 16 << 20
	maxHTMLRead    = 512 << 10
	maxParts       = 200
	maxDepth       = 10
)

var errStopWalk = errors.New("stop")

// preview finds the first text/plain part of the message in r (or, if there
// is none, the first text/html one) that is not an attachment.
func preview(r io.Reader) Preview {
	e, err := message.Read(io.LimitReader(r, maxPreviewScan))
	if e == nil {
		return Preview{Note: "the message could not be parsed: " + oneLine(err.Error(), 200)}
	}
	var htmlText string
	var found Preview
	parts := 0
	werr := e.Walk(func(path []int, p *message.Entity, err error) error {
		parts++
		if parts > maxParts || len(path) > maxDepth {
			return errStopWalk
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return nil // an undecodable part: look further
		}
		t, _, _ := p.Header.ContentType()
		if t == "" && len(path) == 0 {
			t = "text/plain" // RFC 2045 5.2: no Content-Type means text/plain
		}
		if disp, _, _ := p.Header.ContentDisposition(); disp == "attachment" {
			return nil
		}
		switch t {
		case "text/plain":
			b, _ := io.ReadAll(io.LimitReader(p.Body, 4*MaxPreview))
			found = Preview{Source: t}
			found.Text, found.Truncated = capText(sanitizeText(string(b)), MaxPreview)
			return errStopWalk
		case "text/html":
			if htmlText == "" {
				htmlText = htmlToText(io.LimitReader(p.Body, maxHTMLRead))
				if htmlText == "" {
					htmlText = " " // an empty HTML part still counts as found
				}
			}
		}
		return nil
	})
	if found.Source != "" {
		return found
	}
	if htmlText != "" {
		p := Preview{Source: "text/html"}
		p.Text, p.Truncated = capText(sanitizeText(htmlText), MaxPreview)
		return p
	}
	if werr != nil && !errors.Is(werr, errStopWalk) {
		return Preview{Note: "the message structure could not be read: " + oneLine(werr.Error(), 200)}
	}
	return Preview{Note: "the message has no text part"}
}

// htmlToText keeps the text of an HTML document: no markup, no scripts or
// styles, line breaks where blocks end. The result is never rendered, so
// this only has to be readable, not faithful.
func htmlToText(r io.Reader) string {
	z := html.NewTokenizer(r)
	var b strings.Builder
	skip := 0 // depth inside elements whose text is not content
	for b.Len() < 4*MaxPreview {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return trimLines(b.String())
		case html.TextToken:
			if skip == 0 {
				b.WriteString(strings.Join(strings.Fields(string(z.Text())), " "))
				b.WriteByte(' ')
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title", "template", "noscript", "svg":
				if tt == html.StartTagToken {
					skip++
				}
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "hr":
				b.WriteByte('\n')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title", "template", "noscript", "svg":
				if skip > 0 {
					skip--
				}
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote":
				b.WriteByte('\n')
			}
		}
	}
	return trimLines(b.String())
}

// trimLines trims the spaces that markup leaves around each line.
func trimLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(strings.TrimSpace(line))
		b.WriteByte('\n')
	}
	return b.String()
}

// sanitizeText makes text safe to show: valid UTF-8, \n line ends, no
// control characters but tab and newline, no bidirectional overrides or
// invisible characters that could make the preview say something other
// than what the bytes say, trailing spaces trimmed and at most one blank
// line in a row.
func sanitizeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	blank := 0
	for line := range strings.Lines(s) {
		line = strings.TrimRight(strings.Map(keepRune, strings.TrimSuffix(line, "\n")), " \t")
		if line == "" {
			blank++
			if blank > 1 || b.Len() == 0 {
				continue
			}
		} else {
			blank = 0
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

func keepRune(r rune) rune {
	switch {
	case r == '\t':
		return r
	case r == '\r':
		return -1
	case unicode.IsControl(r):
		return -1
	case invisible(r):
		// Zero-width characters, bidirectional controls and every other
		// format character (display.go).
		return -1
	}
	return r
}

// oneLine sanitizes a single-line value (a header field) and caps it at
// max bytes.
func oneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' {
			return ' '
		}
		return keepRune(r)
	}, s)
	s, _ = capText(strings.TrimSpace(s), max)
	return s
}

// capText cuts s to at most max bytes on a rune boundary.
func capText(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
