package upstream

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
)

// modes runs f against the go-smtp server with pipelining (which it
// advertises) and in lock-step (the advertisement ignored), so both paths
// meet a real server.
func modes(t *testing.T, f func(t *testing.T, pipelining bool)) {
	for _, p := range []bool{true, false} {
		name := "lockstep"
		if p {
			name = "pipelining"
		}
		t.Run(name, func(t *testing.T) { f(t, p) })
	}
}

func dialMode(t *testing.T, ts *smtptest.Sink, pipelining bool) *Conn {
	c := dialSink(t, ts)
	if !c.Supports("pipelining") {
		t.Fatal("go-smtp should advertise PIPELINING")
	}
	c.feat.pipelining = pipelining
	return c
}

func rcpts(addrs ...string) []Recipient {
	r := make([]Recipient, len(addrs))
	for i, a := range addrs {
		r[i].Addr = a
	}
	return r
}

func TestSendDelivers(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		to               []string
	}{
		{"single", "Subject: hi\r\n\r\nbody\r\n", "Subject: hi\r\n\r\nbody\r\n", []string{"a@example.com"}},
		{"multi", "Subject: hi\r\n\r\nx\r\n", "Subject: hi\r\n\r\nx\r\n", []string{"a@example.com", "b@example.com", "c@example.org"}},
		{"dots", "S: x\r\n\r\n.\r\n..\r\n.a\r\nb.\r\n", "S: x\r\n\r\n.\r\n..\r\n.a\r\nb.\r\n", []string{"a@example.com"}},
		{"no final crlf", "S: x\r\n\r\nlast", "S: x\r\n\r\nlast\r\n", []string{"a@example.com"}},
		{"bare lf", "S: x\n\nline\n.dot\n", "S: x\r\n\r\nline\r\n.dot\r\n", []string{"a@example.com"}},
		{"large", strings.Repeat("0123456789abcdef\r\n", 1<<16), strings.Repeat("0123456789abcdef\r\n", 1<<16), []string{"a@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			modes(t, func(t *testing.T, p bool) {
				ts := startServer(t)
				c := dialMode(t, ts, p)
				res, err := c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts(tc.to...), Body: body(tc.body)})
				if err != nil {
					t.Fatal(err)
				}
				if want := make([]error, len(tc.to)); !reflect.DeepEqual(res, want) {
					t.Fatalf("results %v", res)
				}
				msgs := ts.Messages()
				if len(msgs) != 1 {
					t.Fatalf("%d messages received", len(msgs))
				}
				m := msgs[0]
				if m.From != "s@example.com" || !reflect.DeepEqual(m.RcptAddrs(), tc.to) {
					t.Errorf("envelope %q %q", m.From, m.RcptAddrs())
				}
				if string(m.Data) != tc.want {
					t.Errorf("data %q, want %q", trunc(string(m.Data)), trunc(tc.want))
				}
				if m.MailOpts.Body != smtp.Body8BitMIME {
					t.Errorf("BODY=%q, want 8BITMIME (advertised)", m.MailOpts.Body)
				}
			})
		})
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

var errBody = errors.New("render failed")

// TestSendReplies covers the server's refusals. Each case sends tx, checks
// the outcome, then sends a good transaction to see if the Conn survived.
func TestSendReplies(t *testing.T) {
	const ok = "ok@example.com"
	refuse := func(code int, enh smtp.EnhancedCode) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: "no"}
	}
	hooks := func(ts *smtptest.Sink) {
		ts.OnMail(func(c *smtp.Conn, m *smtptest.Message) error {
			switch m.From {
			case "closemail@example.com":
				_ = c.Conn().Close()
			case "perm@example.com":
				return refuse(550, smtp.EnhancedCode{5, 7, 1})
			case "temp@example.com":
				return refuse(451, smtp.EnhancedCode{4, 3, 0})
			case "bye@example.com":
				return refuse(421, smtp.EnhancedCode{4, 3, 2})
			}
			return nil
		})
		ts.OnRcpt(func(_, to string) *smtp.SMTPError {
			switch to {
			case "temp@example.com":
				return refuse(450, smtp.EnhancedCode{4, 2, 1})
			case "perm@example.com":
				return refuse(550, smtp.EnhancedCode{5, 1, 1})
			}
			return nil
		})
		ts.OnBody(func(c *smtp.Conn, m *smtptest.Message, r io.Reader) error {
			switch m.From {
			case "datatemp@example.com":
				return refuse(452, smtp.EnhancedCode{4, 3, 1})
			case "dataperm@example.com":
				return refuse(554, smtp.EnhancedCode{5, 6, 0})
			case "data421@example.com":
				return refuse(421, smtp.EnhancedCode{4, 3, 2})
			case "close@example.com":
				_, _ = io.ReadFull(r, make([]byte, 10))
				_ = c.Conn().Close()
				return errors.New("closed")
			}
			return nil
		})
	}
	for _, tc := range []struct {
		name     string
		from     string
		to       []string
		body     func(io.Writer) error
		utf8     bool
		code     int   // the *smtp.SMTPError expected as err, 0: none
		results  []int // per-recipient codes when err == nil
		network  bool  // err wraps ErrNetwork, the Conn is broken
		notSent  bool  // NotSent(err): failed before any of the body went out
		bodyErr  bool  // err is the body's, the Conn is broken
		received int   // messages the backend got
	}{
		{name: "mail 5xx", from: "perm@example.com", to: []string{ok}, code: 550},
		{name: "mail 4xx", from: "temp@example.com", to: []string{ok}, code: 451},
		{name: "some rcpts refused", from: ok, to: []string{ok, "temp@example.com", "perm@example.com", "b@example.com"},
			results: []int{0, 450, 550, 0}, received: 1},
		{name: "all rcpts refused", from: ok, to: []string{"temp@example.com", "perm@example.com"}, results: []int{450, 550}},
		{name: "data end 4xx", from: "datatemp@example.com", to: []string{ok}, code: 452},
		{name: "data end 5xx", from: "dataperm@example.com", to: []string{ok}, code: 554},
		{name: "utf8 unsupported", from: ok, to: []string{ok}, utf8: true, code: 553},
		{name: "mail 421", from: "bye@example.com", to: []string{ok}, network: true, notSent: true, code: 421},
		{name: "data end 421", from: "data421@example.com", to: []string{ok}, network: true, code: 421},
		{name: "closed after mail", from: "closemail@example.com", to: []string{ok, "b@example.com"}, network: true, notSent: true},
		{name: "closed mid body", from: "close@example.com", to: []string{ok}, network: true},
		{name: "body fails", from: ok, to: []string{ok}, bodyErr: true,
			body: func(w io.Writer) error { _, _ = io.WriteString(w, "Subject: x\r\n"); return errBody }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			modes(t, func(t *testing.T, p bool) {
				ts := startServer(t)
				hooks(ts)
				c := dialMode(t, ts, p)
				tx := &Transaction{From: tc.from, Rcpts: rcpts(tc.to...), UTF8: tc.utf8, Body: tc.body}
				if tx.Body == nil {
					tx.Body = body("Subject: test\r\n\r\nhello\r\n")
				}
				res, err := c.Send(tx)
				if NotSent(err) != tc.notSent {
					t.Errorf("NotSent(%v) = %v, want %v", err, NotSent(err), tc.notSent)
				}
				var se *smtp.SMTPError
				switch {
				case tc.network:
					if !errors.Is(err, ErrNetwork) {
						t.Fatalf("err = %v, want ErrNetwork", err)
					}
					if tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code) {
						t.Fatalf("err = %v, want SMTP %d in it", err, tc.code)
					}
				case tc.bodyErr:
					if !errors.Is(err, errBody) || errors.Is(err, ErrNetwork) {
						t.Fatalf("err = %v, want the body's", err)
					}
				case tc.code != 0:
					if !errors.As(err, &se) || se.Code != tc.code || errors.Is(err, ErrNetwork) {
						t.Fatalf("err = %v, want SMTP %d", err, tc.code)
					}
					if tc.utf8 && se.EnhancedCode != (smtp.EnhancedCode{5, 6, 7}) {
						t.Errorf("enhanced code %v, want 5.6.7", se.EnhancedCode)
					}
				default:
					if err != nil {
						t.Fatal(err)
					}
					if len(res) != len(tc.results) {
						t.Fatalf("results %v", res)
					}
					for i, want := range tc.results {
						if got := codeOf(res[i]); got != want {
							t.Errorf("rcpt %d: %v, want %d", i, res[i], want)
						}
					}
				}
				if err != nil && res != nil {
					t.Errorf("results %v alongside an error", res)
				}
				if n := len(ts.Messages()); n != tc.received {
					t.Errorf("server received %d messages, want %d", n, tc.received)
				}
				if tc.utf8 {
					if ts.Mails() != 0 {
						t.Errorf("MAIL sent despite missing SMTPUTF8")
					}
				}
				if tc.results != nil && tc.received == 0 {
					if ts.DataTransfers() != 0 {
						t.Errorf("DATA reached the backend with no recipient")
					}
				}
				// Is the connection still usable?
				_, err = c.Send(&Transaction{From: ok, Rcpts: rcpts(ok), Body: body("S: again\r\n\r\n")})
				if tc.network || tc.bodyErr {
					if !errors.Is(err, ErrNetwork) {
						t.Errorf("Send on a broken Conn: %v, want ErrNetwork", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("next Send: %v", err)
				}
				if n := len(ts.Messages()); n != tc.received+1 {
					t.Errorf("next message not received")
				}
			})
		})
	}
}

func codeOf(err error) int {
	var se *smtp.SMTPError
	if err == nil {
		return 0
	}
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}
