package dsn

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// typed prefixes v with "typ; " unless it already names its type.
func typed(v, typ string) string {
	if typeRe.MatchString(v) {
		return v
	}
	return typ + "; " + v
}

// newHeader builds a header with the fields in the order given and their
// names spelled as given. go-message's Header.Add would put each new field
// on top and respell names (MIME-Version as Mime-Version, Reporting-MTA as
// Reporting-Mta); bounce parsers in CRM tools are not all case-blind.
func newHeader(kv ...string) message.Header {
	var h textproto.Header
	for i := len(kv) - 2; i >= 0; i -= 2 { // AddRaw also puts fields on top
		h.AddRaw([]byte(formatField(kv[i], kv[i+1])))
	}
	return message.Header{Header: h}
}

// formatField renders "Name: value" CRLF, folded at spaces to keep lines
// near 78 columns. value must already be clean: one line, single spaces.
func formatField(name, value string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	col := b.Len()
	for i, word := range strings.Split(value, " ") {
		if i > 0 && col+1+len(word) > 78 {
			b.WriteString("\r\n")
			col = 0
		}
		b.WriteString(" ")
		b.WriteString(word)
		col += 1 + len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}

// clean makes untrusted text (an upstream's reply, an address from the
// envelope) safe for one header or status field: invalid UTF-8 and control
// characters, CR and LF among them, become spaces, runs of white space
// become one, and the result is cut at maxValue bytes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if len(s) > maxValue {
		cut := maxValue
		for cut > 0 && !utfStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func utfStart(b byte) bool { return b&0xC0 != 0x80 }

// copyHeader copies the header block of the message in r to w, up to the
// blank line that ends it and at most maxHeader bytes, with CRLF endings.
// The body is never read.
func copyHeader(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 4096)
	atStart, prevCR := true, false
	for n := 0; n < maxHeader; {
		chunk, err := br.ReadSlice('\n')
		if atStart && (string(chunk) == "\r\n" || string(chunk) == "\n") {
			return nil
		}
		n += len(chunk)
		if full := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'; full {
			line, eol := chunk, ""
			if !bytes.HasSuffix(chunk, []byte("\r\n")) && !(len(chunk) == 1 && prevCR) {
				line, eol = chunk[:len(chunk)-1], "\r\n" // bare LF
			}
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			if _, werr := io.WriteString(w, eol); werr != nil {
				return werr
			}
			atStart, prevCR = true, false
		} else if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			atStart, prevCR = false, chunk[len(chunk)-1] == '\r'
		}
		switch {
		case err == bufio.ErrBufferFull:
		case err == io.EOF:
			n = maxHeader
		case err != nil:
			return err
		}
	}
	if !atStart {
		_, err := io.WriteString(w, "\r\n")
		return err
	}
	return nil
}
