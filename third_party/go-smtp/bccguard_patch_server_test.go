package smtp_test

import (
	"bytes"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestPatchDataLinesNotLimited: a message line longer than MaxLineLength is
// handed to the backend, and the limit holds again for the next command.
func TestPatchDataLinesNotLimited(t *testing.T) {
	be, s, c, scanner := testServerAuthenticated(t)
	defer s.Close()
	defer c.Close()
	long := strings.Repeat("x", 3*s.MaxLineLength)
	for _, line := range []string{"MAIL FROM:<root@nsa.gov>", "RCPT TO:<root@gchq.gov.uk>", "DATA"} {
		io.WriteString(c, line+"\r\n")
		scanner.Scan()
	}
	io.WriteString(c, "Subject: long\r\n\r\n"+long+"\r\n.\r\n")
	scanner.Scan()
	if !strings.HasPrefix(scanner.Text(), "250 ") {
		t.Fatalf("long message line: %s", scanner.Text())
	}
	if len(be.messages) != 1 || !strings.Contains(string(be.messages[0].Data), long) {
		t.Fatal("the long line did not reach the backend whole")
	}
	io.WriteString(c, "NOOP "+long+"\r\n")
	scanner.Scan()
	if !strings.HasPrefix(scanner.Text(), "500 ") {
		t.Fatalf("long command line after DATA: %s, want 500", scanner.Text())
	}
}

// TestPatchNoCommandsAfterClose: once the server has closed a connection
// (after QUIT, or too many errors), the commands a pipelining client had
// already sent, still in the read buffer, are not handled: they found no
// session and panicked (recovered, logged with a stack trace) at MAIL.
func TestPatchNoCommandsAfterClose(t *testing.T) {
	for _, tc := range []struct{ send, last string }{
		{"QUIT\r\n", "221 "},
		{"FOO\r\nFOO\r\nFOO\r\nFOO\r\n", "Too many errors"},
	} {
		var errorLog bytes.Buffer
		_, s, c, scanner, _ := testServerEhlo(t, func(s *smtp.Server) { s.ErrorLog = log.New(&errorLog, "", 0) })
		io.WriteString(c, tc.send+"MAIL FROM:<root@nsa.gov>\r\nRCPT TO:<root@gchq.gov.uk>\r\n")
		var replies []string
		for scanner.Scan() {
			replies = append(replies, scanner.Text())
		}
		if n := len(replies); n == 0 || !strings.Contains(replies[n-1], tc.last) {
			t.Errorf("%q: replies %q, want the last to end the connection", tc.send, replies)
		}
		if strings.Contains(errorLog.String(), "panic") {
			t.Errorf("%q: panic:\n%s", tc.send, errorLog.String())
		}
		c.Close()
		s.Close()
	}
}
