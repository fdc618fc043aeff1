package relay

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/textproto"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/syncbuf"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// FuzzSession drives whole SMTP sessions (mox-style) through the relay's
// real ingress, the Server's listener and session over net.Pipe, into a
// temporary embedded store, and checks inside the target that:
//   - nothing panics (go-smtp recovers a panic into "421 Internal server
//     error" and a log line: either fails the target);
//   - every 250 after DATA or BDAT LAST is durable: it names a message that
//     is in the store afterwards, with exactly the recipients accepted in
//     that transaction;
//   - no reply leaks an internal error (Go error strings, file paths, the
//     store's internals, stack traces).
//
// The input is a script, one client line per line: a line after a 354 is
// message text up to a line ".", and "BDAT n" sends the next n bytes of the
// script as its chunk. With pipelined, the lines up to each DATA, BDAT or
// the end go out in one write before the replies are read.
func FuzzSession(f *testing.F) {
	for _, seed := range []struct {
		script    string
		pipelined bool
	}{
		{"EHLO c.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.net>\nRCPT TO:<c@example.org>\nDATA\nSubject: hi\n\nbody\n.\nQUIT\n", false},
		{"EHLO c.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.net>\nDATA\nSubject: hi\n\n..dot\n.\nMAIL FROM:<a@example.com>\nRCPT TO:<d@example.net>\nDATA\nx\n.\nQUIT\n", true},
		{"EHLO c.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.net>\nBDAT 12\nSubject: x\r\nBDAT 6 LAST\n\r\nab\r\nQUIT\n", false},
		{"EHLO c.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.net>\nRSET\nMAIL FROM:<>\nRCPT TO:<c@example.net>\nRCPT TO:<bad@@example.net>\nDATA\nSubject: r\n\nx\n.\n", false},
		{"HELO c.example\nRCPT TO:<b@example.net>\nDATA\nMAIL FROM:<a@example.com>\nMAIL FROM:<a@example.com>\nRCPT TO:<\"q uoted\"@example.net>\nBDAT x\nNOOP\nVRFY root\nDATA\nbare\rcr\n.\nQUIT\n", true},
		{"EHLO c.example\nMAIL FROM:<a@example.com> SMTPUTF8\nRCPT TO:<zoé@exämple.example> NOTIFY=FAILURE ORCPT=rfc822;x@example.net\nDATA\nSubject: é\n\nü\n.\n", false},
		{"EHLO c.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.net>\nBDAT 5\nabcdeRSET\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.net>\nBDAT 0 LAST\n", true},
		{"\x00\xff\nEHLO\nMAIL FROM:a@example.com\nAUTH PLAIN AGFAYg==\nSTARTTLS\nGARBAGE\n", false},
	} {
		f.Add([]byte(seed.script), seed.pipelined)
	}
	h := newSessionHarness(f)
	f.Fuzz(func(t *testing.T, script []byte, pipelined bool) {
		if len(script) > 32<<10 {
			return
		}
		h.run(t, script, pipelined)
	})
}

// sessionHarness is one Server with one listener that serves connections
// handed to it over net.Pipe, on a store in a temporary folder.
type sessionHarness struct {
	st    *embedded.Store
	conns chan net.Conn
	logs  *syncbuf.Buffer
}

func newSessionHarness(f *testing.F) *sessionHarness {
	dir := f.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "bccguard.yaml"), []byte(`hostname: relay.test
data_dir: `+strconv.Quote(filepath.Join(dir, "data"))+`
listeners:
  - {name: smtp, address: "127.0.0.1:0", limits: {max_recipients: 5, command_timeout: 5s, data_timeout: 5s}}
upstream: {address: "127.0.0.1:1", tls: none}
`))
	if err != nil {
		f.Fatal(err)
	}
	st, err := embedded.Open(cfg.DataDir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	h := &sessionHarness{st: st, conns: make(chan net.Conn), logs: &syncbuf.Buffer{}}
	srv, err := New(Options{Config: cfg, Store: st, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		f.Fatal(err)
	}
	// The listener as Start builds it, with its guard reading from the
	// pipes instead of the socket it bound (no delivery workers run: what
	// is accepted stays in the store).
	l, err := srv.listen(cfg.Listeners[0])
	if err != nil {
		f.Fatal(err)
	}
	_ = l.guard.Listener.Close()
	l.guard.Listener = pipeListener{h.conns}
	go l.smtp.Serve(l.ln)
	f.Cleanup(func() { l.smtp.Close() })
	return h
}

// loopbackPipe is the server's end of a net.Pipe, coming from 127.0.0.1
// (a listener's allow_networks) as a TCP client would.
type loopbackPipe struct{ net.Conn }

func (loopbackPipe) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

// leaks are what no reply text may contain: Go error strings, paths, the
// store's internals, stack traces, fmt's complaints.
var leaks = regexp.MustCompile(`(?i)\b(?:b?bolt|sql|pgx|postgres|goroutine|panic|spill|spool|embedded)\b|runtime error|nil pointer|` +
	`\.go:\d|/tmp/|/work/|/root/|/var/|/home/|unexpected EOF|no such file|permission denied|context canceled|` +
	`deadline exceeded|broken pipe|i/o timeout|transaction failed|Internal server error|%!`)

// withoutEcho removes from a reply what go-smtp repeats of the client's
// line (the verb of an unknown command, the EHLO name, the paths of MAIL
// and RCPT), so that only the server's own words are checked for leaks.
func withoutEcho(msg, line string) string {
	echo := strings.Fields(line)
	if len(echo) > 0 {
		echo = append(echo, strings.ToUpper(echo[0]))
	}
	if i, j := strings.IndexByte(line, '<'), strings.LastIndexByte(line, '>'); i >= 0 && j > i {
		echo = append(echo, line[i+1:j])
	}
	if _, arg, ok := strings.Cut(line, ":"); ok {
		echo = append(echo, arg, strings.TrimSpace(arg))
	}
	slices.SortFunc(echo, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, e := range echo {
		if e != "" {
			msg = strings.ReplaceAll(msg, e, "")
		}
	}
	return msg
}

// bdatCmd is a BDAT command as go-smtp takes it with its chunk; any other
// BDAT line is left out of the script, since go-smtp would read the chunk
// as commands and the replies would no longer pair with the lines.
var bdatCmd = regexp.MustCompile(`(?i)^BDAT (\d{1,5})( LAST)?$`)

// sessionRun is one session: the client's end of the pipe, its replies,
// and the transaction the client believes is under way.
type sessionRun struct {
	h    *sessionHarness
	t    *testing.T
	c    net.Conn
	r    *textproto.Reader
	open bool     // MAIL accepted
	utf8 bool     // MAIL asked for SMTPUTF8
	rcpt []string // RCPT lines accepted since

	lastCode int // the last reply
	last     string
}

func (h *sessionHarness) run(t *testing.T, script []byte, pipelined bool) {
	client, server := net.Pipe()
	defer client.Close()
	h.conns <- loopbackPipe{server}
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	h.logs.Reset() // only this session's lines: the panic check reads them after every reply
	s := &sessionRun{h: h, t: t, c: client, r: textproto.NewReader(bufio.NewReader(client))}
	if code, ok := s.reply("the greeting"); !ok || code != 220 {
		t.Fatalf("greeting %d %q", code, s.last)
	}

	lines := splitScript(script)
	var batch []string
	for len(lines) > 0 {
		line := lines[0]
		lines = lines[1:]
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "DATA":
			code, ok := s.exchange(append(batch, line), nil)
			batch = nil
			if !ok {
				return
			}
			if code != 354 {
				continue
			}
			var text []byte
			for len(lines) > 0 && lines[0] != "." {
				text = append(append(text, lines[0]...), "\r\n"...)
				lines = lines[1:]
			}
			if len(lines) > 0 {
				lines = lines[1:] // the "."
			}
			if _, ok := s.exchange(nil, append(text, ".\r\n"...)); !ok {
				return
			}
			s.dataEnd("DATA")
		case verb == "BDAT":
			m := bdatCmd.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			// The chunk is the next n bytes of the script (fewer if it
			// ends first: the size is then what is left).
			rest := []byte(strings.Join(lines, "\n"))
			if len(lines) > 0 {
				rest = append(rest, '\n')
			}
			n, _ := strconv.Atoi(m[1])
			n = min(n, len(rest))
			cmd := "BDAT " + strconv.Itoa(n) + m[2]
			raw := append([]byte(cmd+"\r\n"), rest[:n]...)
			lines = splitScript(rest[n:])
			code, ok := s.exchange(batch, raw)
			batch = nil
			if !ok {
				return
			}
			switch {
			case m[2] != "":
				s.dataEnd(cmd)
			case code/100 != 2:
				s.reset()
			}
		case pipelined:
			batch = append(batch, line)
		default:
			if _, ok := s.exchange([]string{line}, nil); !ok {
				return
			}
		}
	}
	s.exchange(append(batch, "QUIT"), nil)
}

// exchange sends lines and then raw in one write, reads a reply for each
// line (and one for raw), checks each, and returns the last code; false
// when the session has ended.
func (s *sessionRun) exchange(lines []string, raw []byte) (int, bool) {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.Write(raw)
	if b.Len() == 0 {
		return 0, true
	}
	// From another goroutine: net.Pipe has no buffer, and the server
	// answers a command (waiting for the answer to be read) before it
	// reads the next.
	go func() { _, _ = s.c.Write(b.Bytes()) }()
	code := 0
	for _, l := range lines {
		var ok bool
		if code, ok = s.reply(l); !ok {
			return 0, false
		}
		s.track(l, code)
	}
	if raw != nil {
		var ok bool
		if code, ok = s.reply("the data"); !ok {
			return 0, false
		}
	}
	return code, true
}

// reply reads one reply and checks it leaks nothing and nothing panicked.
func (s *sessionRun) reply(after string) (int, bool) {
	// A reply that does not come soon ends the session (not the test):
	// the server closing with a lingering read, or a line it took as
	// part of something else.
	_ = s.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	code, msg, err := s.r.ReadResponse(0)
	if err != nil && code == 0 {
		return 0, false // closed or timed out: the session is over
	}
	if leaks.MatchString(withoutEcho(msg, after)) {
		s.t.Fatalf("reply to %q leaks an internal error: %d %q", after, code, msg)
	}
	if strings.Contains(s.h.logs.String(), "panic serving") {
		s.t.Fatalf("the session panicked at %q:\n%s", after, s.h.logs.String())
	}
	s.lastCode, s.last = code, msg
	// The server closes after these: stop here rather than wait for the
	// lingering close to time out.
	return code, code != 221 && code != 421
}

// track follows the transaction as the client sees it.
func (s *sessionRun) track(line string, code int) {
	verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
	switch {
	case (verb == "EHLO" || verb == "HELO" || verb == "RSET") && code == 250:
		s.reset()
	case verb == "MAIL" && code == 250:
		s.open, s.utf8, s.rcpt = true, strings.Contains(strings.ToUpper(line), "SMTPUTF8"), nil
	case verb == "RCPT" && code/100 == 2 && s.open:
		s.rcpt = append(s.rcpt, line)
	}
}

func (s *sessionRun) reset() { s.open, s.utf8, s.rcpt = false, false, nil }

// dataEnd checks the reply that ended the data: a 250 must be durable.
// go-smtp ends the transaction whatever the reply.
func (s *sessionRun) dataEnd(what string) {
	if s.lastCode == 250 {
		s.checkDurable(what)
	}
	s.reset()
}

// queuedAs finds the message ID in a 250 after the data.
var queuedAs = regexp.MustCompile(`^2\.0\.0 Ok: (?:queued|held for review) as (\S+)$`)

// checkDurable: the 250 names a message in the store with exactly the
// recipients the client saw accepted.
func (s *sessionRun) checkDurable(what string) {
	t := s.t
	t.Helper()
	m := queuedAs.FindStringSubmatch(s.last)
	if m == nil {
		t.Fatalf("250 after %s without a message ID: %q", what, s.last)
	}
	got, err := s.h.st.Message(context.Background(), m[1])
	if err != nil {
		t.Fatalf("250 for %s, but the store has no such message: %v", m[1], err)
	}
	rs := got.Envelope.Recipients
	if len(rs) != len(s.rcpt) {
		t.Fatalf("message %s has %d recipients, the session accepted %d (%q)", m[1], len(rs), len(s.rcpt), s.rcpt)
	}
	for i, l := range s.rcpt {
		path, ok := rcptPath(l)
		if !ok {
			continue
		}
		if want, err := envelopeAddr(path, s.utf8, false); err == nil && rs[i].Addr != want {
			t.Fatalf("message %s recipient %d is %q, the session accepted %q", m[1], i, rs[i].Addr, l)
		}
	}
}

// rcptPath is the path of a plain "RCPT TO:<path>[ params]" line.
func rcptPath(line string) (string, bool) {
	i, j := strings.IndexByte(line, '<'), strings.IndexByte(line, '>')
	if i < 0 || j < i || strings.Count(line, "<") != 1 || strings.Count(line, ">") != 1 || strings.ContainsRune(line, '"') {
		return "", false
	}
	return line[i+1 : j], true
}

// splitScript cuts a script into lines (a CR before the LF stays part of
// the line: the client sends it and its own CRLF).
func splitScript(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.Split(s, "\n")
}
