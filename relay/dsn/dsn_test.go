package dsn

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

var update = flag.Bool("update", false, "rewrite testdata/*.eml from the current output")

const original = "Received: from crm.example.com by relay.example.com\r\n" +
	"From: Shop <news@shop.example>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: Your survey\r\n" +
	"Message-ID: <orig-1@shop.example>\r\n" +
	"\r\n" +
	"Tell us what you think.\r\n" +
	"Secret body line.\r\n"

var (
	t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	t1 = t0.Add(2 * time.Hour)
)

func failedReport() Report {
	return Report{
		ReportingMTA: "relay.example.com",
		ArrivalDate:  t0,
		EnvID:        "QQ314159",
		From:         "MAILER-DAEMON@relay.example.com",
		To:           "news@shop.example",
		QueueID:      "01J8Q3ZK5C",
		Recipients: []RecipientStatus{{
			Addr:           "bob@example.net",
			ORcpt:          "rfc822;bob@example.net",
			Action:         "failed",
			Status:         "5.1.1",
			DiagnosticCode: "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
			RemoteMTA:      "mx.example.net",
			LastAttempt:    t1,
		}, {
			Addr:           "carol@example.org",
			Action:         "failed",
			Status:         "4.4.7",
			DiagnosticCode: "421 4.4.2 mx.example.org Error: timeout exceeded",
			RemoteMTA:      "dns; mx.example.org",
			LastAttempt:    t1,
		}},
		Date:      t1,
		MessageID: "dsn-01J8Q3ZK5C@relay.example.com",
		Boundary:  "bccguard-dsn-TESTBOUNDARY",
	}
}

func delayedReport() Report {
	return Report{
		ReportingMTA: "relay.example.com",
		Ret:          "HDRS",
		From:         "MAILER-DAEMON@relay.example.com",
		To:           "news@shop.example",
		Recipients: []RecipientStatus{{
			Addr:           "dave@example.com",
			Action:         "delayed",
			Status:         "4.2.1",
			DiagnosticCode: "smtp; 452 4.2.1 mailbox temporarily disabled",
			RemoteMTA:      "mx.example.com",
			LastAttempt:    t1,
			WillRetryUntil: t0.Add(5 * 24 * time.Hour),
		}},
		Date:      t1,
		MessageID: "dsn-2@relay.example.com",
		Boundary:  "bccguard-dsn-TESTBOUNDARY",
	}
}

func write(t *testing.T, r Report, orig io.Reader) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, r, orig); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for name, r := range map[string]Report{"failed-full": failedReport(), "delayed-hdrs": delayedReport()} {
		t.Run(name, func(t *testing.T) {
			got := write(t, r, strings.NewReader(original))
			path := filepath.Join("testdata", name+".eml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s", path, got)
			}
			if lf := bytes.Count(got, []byte("\n")); lf != bytes.Count(got, []byte("\r\n")) {
				t.Errorf("bare LF in output")
			}
		})
	}
}

// report is a DSN read back with go-message.
type report struct {
	header     message.Header
	types      []string
	text       string
	perMessage textproto.Header
	perRcpt    []textproto.Header
	original   []byte
}

func parse(t *testing.T, b []byte) report {
	t.Helper()
	e, err := message.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rep := report{header: e.Header}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatal("not multipart")
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.ContentType()
		rep.types = append(rep.types, ct)
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch len(rep.types) {
		case 1:
			rep.text = string(body)
		case 2:
			br := bufio.NewReader(bytes.NewReader(body))
			if rep.perMessage, err = textproto.ReadHeader(br); err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := br.Peek(1); err == io.EOF {
					break
				}
				h, err := textproto.ReadHeader(br)
				if err != nil {
					t.Fatal(err)
				}
				rep.perRcpt = append(rep.perRcpt, h)
			}
		case 3:
			rep.original = body
		}
	}
	return rep
}

func TestParseBack(t *testing.T) {
	rep := parse(t, write(t, failedReport(), strings.NewReader(original)))

	mt, params, err := rep.header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type = %q %v %v", mt, params, err)
	}
	for k, want := range map[string]string{
		"From":           `"Mail Delivery System" <MAILER-DAEMON@relay.example.com>`,
		"To":             "<news@shop.example>",
		"Subject":        "Undelivered Mail Returned to Sender",
		"Auto-Submitted": "auto-replied",
		"Message-Id":     "<dsn-01J8Q3ZK5C@relay.example.com>",
		"Mime-Version":   "1.0",
		"Date":           "Sat, 14 Mar 2026 11:26:53 +0000",
	} {
		if got := rep.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if want := []string{"text/plain", "message/delivery-status", "message/rfc822"}; strings.Join(rep.types, ",") != strings.Join(want, ",") {
		t.Fatalf("parts = %v, want %v", rep.types, want)
	}
	if !strings.Contains(rep.text, "<bob@example.net>: delivery failed (5.1.1)") ||
		!strings.Contains(rep.text, "Check the address for typing errors.") ||
		!strings.Contains(rep.text, "queue ID 01J8Q3ZK5C") {
		t.Errorf("text part:\n%s", rep.text)
	}
	for k, want := range map[string]string{
		"Reporting-MTA":        "dns; relay.example.com",
		"Original-Envelope-Id": "QQ314159",
		"Arrival-Date":         "Sat, 14 Mar 2026 09:26:53 +0000",
		"X-Bccguard-Queue-ID":  "01J8Q3ZK5C",
	} {
		if got := rep.perMessage.Get(k); got != want {
			t.Errorf("per-message %s = %q, want %q", k, got, want)
		}
	}
	if len(rep.perRcpt) != 2 {
		t.Fatalf("%d recipient blocks, want 2", len(rep.perRcpt))
	}
	for i, fields := range []map[string]string{{
		"Original-Recipient": "rfc822;bob@example.net",
		"Final-Recipient":    "rfc822; bob@example.net",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-MTA":         "dns; mx.example.net",
		"Diagnostic-Code":    "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
		"Last-Attempt-Date":  "Sat, 14 Mar 2026 11:26:53 +0000",
	}, {
		"Original-Recipient": "",
		"Final-Recipient":    "rfc822; carol@example.org",
		"Status":             "4.4.7",
		"Remote-MTA":         "dns; mx.example.org",
		"Diagnostic-Code":    "smtp; 421 4.4.2 mx.example.org Error: timeout exceeded",
	}} {
		for k, want := range fields {
			// ReadHeader unfolds by dropping the CRLF only, as RFC 5322 says.
			if got := rep.perRcpt[i].Get(k); got != want {
				t.Errorf("recipient %d %s = %q, want %q", i, k, got, want)
			}
		}
	}
	if string(rep.original) != original {
		t.Errorf("returned message differs:\n%q", rep.original)
	}
}

func TestHeadersOnly(t *testing.T) {
	rep := parse(t, write(t, delayedReport(), strings.NewReader(original)))
	if rep.types[2] != "text/rfc822-headers" {
		t.Fatalf("third part is %s", rep.types[2])
	}
	if got := rep.header.Get("Subject"); !strings.HasPrefix(got, "Delayed Mail") {
		t.Errorf("Subject = %q", got)
	}
	head, _, _ := strings.Cut(original, "\r\n\r\n")
	if string(rep.original) != head+"\r\n" {
		t.Errorf("headers part = %q, want the header block only", rep.original)
	}
	if rcpt := rep.perRcpt[0]; rcpt.Get("Action") != "delayed" || rcpt.Get("Will-Retry-Until") == "" {
		t.Errorf("delayed recipient fields: %v", rcpt.Map())
	}
	if !strings.Contains(rep.text, "Delivery will be retried until") {
		t.Errorf("text part:\n%s", rep.text)
	}
}

// TestCopyHeaderEdges: a message that never reaches a blank line, with
// LF endings and a line longer than the read buffer, still comes back as
// CRLF lines and only up to the header's end.
func TestCopyHeaderEdges(t *testing.T) {
	long := "X-Long: " + strings.Repeat("y", 10000)
	tests := []struct{ in, want string }{
		{"A: 1\nB: 2\n\nbody\n", "A: 1\r\nB: 2\r\n"},
		{"A: 1\r\nB: 2", "A: 1\r\nB: 2\r\n"},
		{long + "\r\nB: 2\r\n\r\nbody", long + "\r\nB: 2\r\n"},
		{long + "\nB: 2\n\nbody", long + "\r\nB: 2\r\n"},
		{"\r\nbody", ""},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := copyHeader(&b, strings.NewReader(tc.in)); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("copyHeader(%.20q...) = %.60q..., want %.60q...", tc.in, b.String(), tc.want)
		}
	}
	// A header that never ends is cut at maxHeader.
	var b bytes.Buffer
	if err := copyHeader(&b, io.LimitReader(&lines{line: []byte("X-A: b\r\n")}, 10<<20)); err != nil {
		t.Fatal(err)
	}
	if b.Len() > maxHeader+100 || !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		t.Errorf("endless header: copied %d bytes", b.Len())
	}
}

func TestInjectionSanitized(t *testing.T) {
	r := failedReport()
	r.To = "news@shop.example>\r\nBcc: victim@example.com"
	r.EnvID = "id\r\nX-Injected: 1"
	r.Recipients[0].DiagnosticCode = "smtp; 550 no\r\nBcc: victim@example.com\r\n\r\n--bccguard-dsn-TESTBOUNDARY\r\nX-Evil: \x00\x1b[31m"
	r.Recipients[0].RemoteMTA = "mx\nStatus: 2.0.0"
	r.Recipients[0].Addr = "bob@example.net\rAction: delivered"
	out := write(t, r, strings.NewReader(original))
	rep := parse(t, out)

	if rep.header.Has("Bcc") || rep.perMessage.Has("X-Injected") {
		t.Fatal("a header field was injected")
	}
	if len(rep.perRcpt) != 2 || len(rep.types) != 3 {
		t.Fatalf("structure broken: %d recipient blocks, parts %v", len(rep.perRcpt), rep.types)
	}
	rc := rep.perRcpt[0]
	if rc.Has("Bcc") || rc.Has("X-Evil") || len(rc.Values("Status")) != 1 || len(rc.Values("Action")) != 1 {
		t.Fatalf("status fields injected: %v", rc.Map())
	}
	if got := rc.Get("Diagnostic-Code"); got != "smtp; 550 no Bcc: victim@example.com --bccguard-dsn-TESTBOUNDARY X-Evil: [31m" {
		t.Errorf("Diagnostic-Code = %q", got)
	}
	if bytes.ContainsAny(out, "\x00\x1b") {
		t.Error("control characters reached the output")
	}
	if n := bytes.Count(out, []byte("\r\n--bccguard-dsn-TESTBOUNDARY")); n != 4 {
		t.Errorf("boundary delimiter appears %d times, want 4", n)
	}
}

func TestClean(t *testing.T) {
	long := strings.Repeat("é", 1000)
	got := clean(long)
	if len(got) > maxValue+3 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "éé") {
		t.Errorf("clean(long) = %d bytes", len(got))
	}
	if got := clean("  a\t\tb\xffc \u0085 d "); got != "a b?c d" {
		t.Errorf("clean = %q", got)
	}
}

func TestInvalidReports(t *testing.T) {
	tests := map[string]func(*Report){
		"null sender":      func(r *Report) { r.To = "" },
		"no reporting MTA": func(r *Report) { r.ReportingMTA = "\r\n" },
		"no recipients":    func(r *Report) { r.Recipients = nil },
		"bad action":       func(r *Report) { r.Recipients[0].Action = "bounced" },
		"bad status":       func(r *Report) { r.Recipients[0].Status = "550" },
		"status vs action": func(r *Report) { r.Recipients[0].Status = "2.0.0" },
		"bad RET":          func(r *Report) { r.Ret = "BODY" },
		"bad boundary":     func(r *Report) { r.Boundary = "a\r\nb" },
	}
	for name, mutate := range tests {
		r := failedReport()
		mutate(&r)
		if err := Write(io.Discard, r, nil); err == nil {
			t.Errorf("%s: Write accepted it", name)
		}
	}
	// Defaults fill in, and the caller's recipients are left alone.
	r := failedReport()
	r.Date, r.MessageID, r.Boundary = time.Time{}, "", ""
	r.Recipients[0].Status, r.Recipients[0].Action = "", "FAILED"
	rep := parse(t, write(t, r, nil))
	if len(rep.types) != 2 || rep.perRcpt[0].Get("Status") != "5.0.0" || rep.perRcpt[0].Get("Action") != "failed" {
		t.Errorf("defaults: parts %v, fields %v", rep.types, rep.perRcpt[0].Map())
	}
	if !strings.HasSuffix(rep.header.Get("Message-Id"), "@relay.example.com>") || rep.header.Get("Date") == "" {
		t.Errorf("default Message-Id %q, Date %q", rep.header.Get("Message-Id"), rep.header.Get("Date"))
	}
	if r.Recipients[0].Status != "" || r.Recipients[0].Action != "FAILED" {
		t.Error("Write changed the caller's recipients")
	}
}

// lines is an endless (or limited) message: a header, then one line again
// and again. It allocates nothing per Read and has no WriteTo, like a file.
type lines struct {
	line []byte
	off  int
}

func (l *lines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.line[l.off:])
		n += c
		l.off = (l.off + c) % len(l.line)
	}
	return n, nil
}

func bigOriginal(size int64) io.Reader {
	head := "From: a@shop.example\r\nTo: b@example.net\r\nSubject: big\r\n\r\n"
	body := &lines{line: []byte(strings.Repeat("0123456789", 7) + "\r\n")}
	return io.MultiReader(strings.NewReader(head), io.LimitReader(body, size))
}

// TestLargeOriginalStreams checks that Write's allocations do not grow with
// the size of the original: 20 MiB must cost about what 1 MiB costs.
func TestLargeOriginalStreams(t *testing.T) {
	alloc := func(size int64, ret string) uint64 {
		r := failedReport()
		r.Ret = ret
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cw := &countWriter{}
		if err := Write(cw, r, bigOriginal(size)); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if ret == "FULL" && cw.n < size {
			t.Fatalf("wrote %d bytes for a %d-byte original", cw.n, size)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, ret := range []string{"FULL", "HDRS"} {
		small, big := alloc(1<<20, ret), alloc(20<<20, ret)
		t.Logf("RET=%s: %d bytes allocated for 1 MiB, %d for 20 MiB", ret, small, big)
		if big > small+256<<10 || big > 1<<20 {
			t.Errorf("RET=%s: allocation grows with the message: %d bytes for 1 MiB, %d for 20 MiB", ret, small, big)
		}
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func TestShouldNotify(t *testing.T) {
	tests := []struct {
		notify []string
		action string
		want   bool
	}{
		{nil, "failed", true},
		{nil, "delayed", false},
		{nil, "delivered", false},
		{[]string{"NEVER"}, "failed", false},
		{[]string{"never"}, "delayed", false},
		{[]string{"FAILURE"}, "failed", true},
		{[]string{"FAILURE"}, "delayed", false},
		{[]string{"DELAY"}, "failed", false},
		{[]string{"DELAY"}, "delayed", true},
		{[]string{"SUCCESS", "DELAY"}, "delayed", true},
		{[]string{"SUCCESS"}, "delivered", true},
		{[]string{"SUCCESS"}, "relayed", true},
		{[]string{"failure,delay"}, "delayed", true},
		{[]string{"FAILURE"}, "FAILED", true},
		{[]string{"FAILURE"}, "unknown", false},
	}
	for _, tc := range tests {
		if got := ShouldNotify(tc.notify, tc.action); got != tc.want {
			t.Errorf("ShouldNotify(%q, %q) = %v, want %v", tc.notify, tc.action, got, tc.want)
		}
	}
}

// An explanation for people follows the opening line, on one line however
// it was given (no header or part can be injected through it).
func TestExplanation(t *testing.T) {
	r := failedReport()
	r.Explanation = "An operator deleted it.\r\n\r\n--bccguard-dsn-TESTBOUNDARY\r\nContent-Type: text/html"
	out := string(write(t, r, nil))
	if !strings.Contains(out, "Your message could not be delivered to the recipients below.\r\nAn operator deleted it.") {
		t.Fatalf("explanation missing or misplaced:\n%s", out)
	}
	if strings.Count(out, "--bccguard-dsn-TESTBOUNDARY\r\n") != 2 {
		t.Fatalf("the explanation added a part:\n%s", out)
	}
}
