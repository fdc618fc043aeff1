package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"
)

// Limits on one reply. RFC 5321 §4.5.3.1.5 allows 512 bytes a line; EHLO
// replies run to a few dozen lines. Anything far beyond is not an SMTP
// server we can reason with.
const (
	maxReplyLines = 100
	maxReplyBytes = 64 << 10
)

// readReply reads one (possibly multi-line) reply from r. It returns the
// code and the lines' text (after "NNN-" / "NNN "), joined by "\n" and
// appended to text, so a caller can reuse one buffer and success replies
// cost no allocation. Unlike textproto.Reader.ReadResponse it insists that
// every line carries the same code, and caps the reply's size; any
// violation is an error, as the stream can no longer be trusted.
func readReply(r *bufio.Reader, text []byte) (int, []byte, error) {
	code, total := 0, 0
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return 0, text, errors.New("reply has too many lines")
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, text, errors.New("reply line too long")
		}
		if err != nil {
			return 0, text, err
		}
		if total += len(line); total > maxReplyBytes {
			return 0, text, errors.New("reply too long")
		}
		line = line[:len(line)-1]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		lc, ok := parseCode(line)
		if !ok {
			return 0, text, fmt.Errorf("malformed reply line %q", truncate(line))
		}
		if n == 0 {
			code = lc
		} else if lc != code {
			return 0, text, fmt.Errorf("reply line %q does not continue code %d", truncate(line), code)
		}
		more := len(line) > 3 && line[3] == '-'
		if len(line) > 3 && !more && line[3] != ' ' {
			return 0, text, fmt.Errorf("malformed reply line %q", truncate(line))
		}
		if n > 0 {
			text = append(text, '\n')
		}
		if len(line) > 4 {
			text = append(text, line[4:]...)
		}
		if !more {
			return code, text, nil
		}
	}
}

// parseCode reads a line's three-digit code; SMTP uses classes 2 to 5.
func parseCode(line []byte) (int, bool) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' ||
		line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' {
		return 0, false
	}
	return int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0'), true
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// replyError makes a reply into the *smtp.SMTPError go-smtp's client would
// have returned: an enhanced code ("X.Y.Z ", RFC 3463) at the start of the
// first line is parsed out of the message, and removed from the following
// lines where it repeats (RFC 2034 puts it on each).
func replyError(code int, text []byte) *smtp.SMTPError {
	msg := string(text)
	se := &smtp.SMTPError{Code: code, Message: msg}
	first, rest, ok := strings.Cut(msg, " ")
	if !ok {
		return se
	}
	enh, ok := parseEnhanced(first)
	if !ok {
		return se
	}
	se.EnhancedCode = enh
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}

// parseEnhanced parses "class.subject.detail": class 2, 4 or 5, the others
// 1 to 3 digits each (RFC 3463 §2).
func parseEnhanced(s string) (smtp.EnhancedCode, bool) {
	var ec smtp.EnhancedCode
	for i := range 3 {
		part := s
		if i < 2 {
			var ok bool
			if part, s, ok = strings.Cut(s, "."); !ok {
				return ec, false
			}
		}
		if len(part) < 1 || len(part) > 3 || (i == 0 && len(part) != 1) {
			return ec, false
		}
		for _, ch := range []byte(part) {
			if ch < '0' || ch > '9' {
				return ec, false
			}
			ec[i] = ec[i]*10 + int(ch-'0')
		}
	}
	if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 {
		return smtp.EnhancedCode{}, false
	}
	return ec, true
}
