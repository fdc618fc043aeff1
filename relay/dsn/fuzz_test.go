package dsn

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzWrite: for any report fields and any original message, Write never
// panics, and a DSN it writes reads back as a multipart/report of
// delivery-status with its three parts (two without an original), one
// recipient block per recipient, CRLF line ends and lines under 998 bytes
// in what it made itself, and a size bounded by the original's plus a
// fixed amount (field values are capped).
func FuzzWrite(f *testing.F) {
	r := failedReport()
	f.Add(r.ReportingMTA, r.EnvID, "", r.From, r.To, r.QueueID, "", r.Recipients[0].Addr, r.Recipients[0].ORcpt,
		"failed", "5.1.1", r.Recipients[0].DiagnosticCode, r.Recipients[0].RemoteMTA, []byte(original), true)
	f.Add("relay.example.com", "", "HDRS", "MAILER-DAEMON@relay.example.com", "news@shop.example", "Q1", "deleted by an operator",
		"carol@example.org", "", "delayed", "4.4.7", "421 4.4.2 timeout", "dns; mx.example.org", []byte("Subject: x\r\n\r\nbody"), true)
	f.Add("relay\r\nBcc: x@example.com", "id\r\n", "full", "a@b", "c@d\r\nX: y", "", "line\r\n.\r\n--=_bccguard_",
		"ü@exämple.example", "utf-8;ü@x", "FAILED", "", strings.Repeat("x", 2000), "", []byte("no header at all\n\n.\r\n"), false)
	f.Add("r.example", "", "", "a@b", "c@d", "", "", "e@f", "", "delivered", "2.0.0", "", "", []byte{0xff, 0xfe, '\r', '\n', '\r', '\n'}, true)
	f.Fuzz(func(t *testing.T, mta, envID, ret, from, to, queueID, explanation, addr, orcpt, action, status, diag, remote string, orig []byte, withOrig bool) {
		rep := Report{
			ReportingMTA: mta, ArrivalDate: t0, EnvID: envID, Ret: ret, From: from, To: to, QueueID: queueID,
			Explanation: explanation, Date: t1, MessageID: "dsn-fuzz@relay.example.com",
			Recipients: []RecipientStatus{{Addr: addr, ORcpt: orcpt, Action: action, Status: status,
				DiagnosticCode: diag, RemoteMTA: remote, LastAttempt: t1, WillRetryUntil: t1.Add(time.Hour)}},
		}
		var original *bytes.Reader
		if withOrig {
			original = bytes.NewReader(orig)
		}
		var out bytes.Buffer
		var err error
		if original != nil {
			err = Write(&out, rep, original)
		} else {
			err = Write(&out, rep, nil)
		}
		if err != nil {
			return // refused: nothing to check but that it did not panic
		}
		const fixed = 64 << 10 // every value capped at maxValue, a handful of them, and the text around
		if n := out.Len(); n > len(orig)+len(explanation)+fixed {
			t.Fatalf("DSN of %d bytes for an original of %d", n, len(orig))
		}
		got := parse(t, out.Bytes())
		mt, params, err := got.header.ContentType()
		if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
			t.Fatalf("Content-Type %q %v %v", mt, params, err)
		}
		want := 3
		if !withOrig {
			want = 2
		}
		if len(got.types) != want || got.types[0] != "text/plain" || got.types[1] != "message/delivery-status" {
			t.Fatalf("parts %v, want %d starting text/plain, message/delivery-status", got.types, want)
		}
		if len(got.perRcpt) != 1 {
			t.Fatalf("%d recipient blocks, want 1", len(got.perRcpt))
		}
		// What Write made itself: all before the third part's body (the
		// original, copied as it came).
		made := out.Bytes()
		if withOrig {
			delim := []byte("\r\n--" + params["boundary"] + "\r\n")
			parts := bytes.SplitN(made, delim, 4)
			if len(parts) != 4 {
				t.Fatalf("%d delimiters %q", len(parts)-1, delim)
			}
			third, _, _ := bytes.Cut(parts[3], []byte("\r\n\r\n"))
			made = made[:len(made)-len(parts[3])+len(third)]
		}
		if bytes.Count(made, []byte("\n")) != bytes.Count(made, []byte("\r\n")) {
			t.Fatalf("bare LF in what Write made:\n%q", made)
		}
		for _, line := range bytes.Split(made, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("line of %d bytes: %.100q…", len(line), line)
			}
		}
	})
}
