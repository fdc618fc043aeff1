package smtp_test

import (
	"io"
	"strings"
	"testing"
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
