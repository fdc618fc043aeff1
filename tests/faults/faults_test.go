// Package faults runs the real binary through the faults it must survive
// without losing an accepted message: kill -9 while sessions send, the
// upstream refusing or down, a full disk, slow peers and 1,000 held
// connections. Each scenario prints accepted, delivered, duplicated and
// lost (lost must be 0). The normal test suite runs a shortened form;
// BCCGUARD_FAULTS=full (make faults) runs the full counts.
package faults

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

var full = os.Getenv("BCCGUARD_FAULTS") == "full"

// pick is the full count with BCCGUARD_FAULTS=full, else the short one.
func pick(short, long int) int {
	if full {
		return long
	}
	return short
}

// ledger is what the clients were told about each message (by its unique
// Message-ID) and what reached the sink.
type ledger struct {
	mu        sync.Mutex
	n         int
	accepted  map[string]bool
	refused   map[string]string // SMTP error reply
	ambiguous map[string]string // connection lost before any reply
	bodies    map[string][32]byte
}

func newLedger() *ledger {
	return &ledger{accepted: map[string]bool{}, refused: map[string]string{}, ambiguous: map[string]string{}, bodies: map[string][32]byte{}}
}

// message is a unique single-recipient message (the built-in policy passes
// it) with a body of size bytes.
func (l *ledger) message(prefix string, size int) (string, []byte) {
	l.mu.Lock()
	l.n++
	id := fmt.Sprintf("%s-%d-%d@faults.example", prefix, l.n, rand.Uint32())
	l.mu.Unlock()
	body := bytes.Repeat([]byte("fault tolerance is the point of this line 0123456789\r\n"), max(size/54, 1))
	head := fmt.Sprintf("From: sender@faults.example\r\nTo: rcpt@upstream.example\r\nSubject: fault test\r\nMessage-ID: <%s>\r\n\r\n", id)
	l.mu.Lock()
	l.bodies[id] = sha256.Sum256(body)
	l.mu.Unlock()
	return id, append([]byte(head), body...)
}

// send submits one message and records the outcome; it returns the error.
func (l *ledger) send(addr, prefix string, size int, timeout time.Duration) error {
	id, raw := l.message(prefix, size)
	_, err := harness.TrySend(addr, "sender@faults.example", []string{"rcpt@upstream.example"}, bytes.NewReader(raw), &harness.SendOptions{Timeout: timeout})
	l.record(id, err)
	return err
}

func (l *ledger) record(id string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch code, _ := harness.Code(err); {
	case err == nil:
		l.accepted[id] = true
	case code > 0:
		l.refused[id] = err.Error()
	default:
		l.ambiguous[id] = err.Error()
	}
}

var msgID = regexp.MustCompile(`(?im)^Message-ID:\s*<([^>]+)>`)

// delivered counts the sink's copies by Message-ID (bounces have none of
// ours) and checks that each body arrived intact.
func delivered(t *testing.T, sink *smtptest.Sink, l *ledger) (copies map[string]int, bounces int) {
	copies = map[string]int{}
	for _, m := range sink.Messages() {
		if m.From == "" {
			bounces++
			continue
		}
		mm := msgID.FindSubmatch(m.Header)
		if mm == nil {
			t.Errorf("a delivered message has no Message-ID: %q", m.Header)
			continue
		}
		id := string(mm[1])
		copies[id]++
		l.mu.Lock()
		want, ok := l.bodies[id]
		l.mu.Unlock()
		if ok && m.BodySum != want {
			t.Errorf("message %s arrived damaged (body hash differs)", id)
		}
	}
	return copies, bounces
}

// result is one scenario's line of the table.
type result struct {
	name                                    string
	accepted, refused, ambiguous            int
	delivered, duplicated, lost, leaked, ok int
	note                                    string
}

var table struct {
	mu   sync.Mutex
	rows []result
}

// settle waits until every accepted message has reached the sink (or the
// timeout), then tallies the scenario and fails it if anything accepted was
// lost or anything refused was delivered.
func settle(t *testing.T, name string, sink *smtptest.Sink, l *ledger, timeout time.Duration, note string) result {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		copies, _ := delivered(t, sink, l)
		l.mu.Lock()
		missing := 0
		for id := range l.accepted {
			if copies[id] == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-sink.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
	copies, bounces := delivered(t, sink, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	r := result{name: name, accepted: len(l.accepted), refused: len(l.refused), ambiguous: len(l.ambiguous), note: note}
	for id := range l.accepted {
		switch n := copies[id]; {
		case n == 0:
			r.lost++
			t.Errorf("%s: message %s got a 250 but was never delivered", name, id)
		default:
			r.delivered++
			r.duplicated += n - 1
		}
	}
	for id, e := range l.refused {
		if copies[id] > 0 {
			r.leaked++
			t.Errorf("%s: message %s was refused (%s) but delivered", name, id, e)
		}
	}
	for id := range l.ambiguous {
		if copies[id] > 0 {
			r.ok++ // cut before the reply, yet committed: at-least-once
		}
	}
	if r.ambiguous > 0 {
		r.note = strings.TrimSpace(fmt.Sprintf("%s %d of the cut-off ones delivered", r.note, r.ok))
	}
	if bounces > 0 {
		t.Errorf("%s: %d bounces reached the sink", name, bounces)
	}
	table.mu.Lock()
	table.rows = append(table.rows, r)
	table.mu.Unlock()
	return r
}

// TestFaults runs the scenarios one after the other (they measure time and
// memory: run alone, they are not disturbed by each other) and prints the
// table.
func TestFaults(t *testing.T) {
	defer func() {
		table.mu.Lock()
		defer table.mu.Unlock()
		var b strings.Builder
		fmt.Fprintf(&b, "\n%-34s %9s %8s %10s %10s %11s %5s %15s  %s\n", "scenario", "accepted", "refused", "cut-off*", "delivered", "duplicated", "lost", "refused+sent", "note")
		for _, r := range table.rows {
			fmt.Fprintf(&b, "%-34s %9d %8d %10d %10d %11d %5d %15d  %s\n", r.name, r.accepted, r.refused, r.ambiguous, r.delivered, r.duplicated, r.lost, r.leaked, r.note)
		}
		b.WriteString("* cut-off: the connection died before any reply (kill -9); such a message may be delivered (at-least-once) and is not counted as accepted\n")
		fmt.Print(b.String())
	}()
	t.Run("kill9", testKill9)
	t.Run("upstream-down", testUpstreamDown)
	t.Run("disk-full", testDiskFull)
	t.Run("slow-peers", testSlowPeers)
	t.Run("connections", testConnections)
}

func testKill9(t *testing.T) {
	rounds := pick(3, 10)
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, "log: {format: json, level: warn}\n", harness.WithUpstream(sink.Addr()))
	l := newLedger()
	for round := range rounds {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for s := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.send(r.Addr(), fmt.Sprintf("kill%d.%d", round, s), 2048, 10*time.Second); err != nil {
						if code, _ := harness.Code(err); code == 0 {
							return // the relay is gone
						}
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rand.IntN(600)) * time.Millisecond)
		r.Kill()
		close(stop)
		wg.Wait()
		r.Restart()
	}
	res := settle(t, "kill -9 ×"+fmt.Sprint(rounds)+", 20 sessions", sink, l, 60*time.Second, "")
	if res.accepted < 20 {
		t.Errorf("only %d messages accepted over %d rounds", res.accepted, rounds)
	}
}

func testUpstreamDown(t *testing.T) {
	n := pick(20, 100)
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, "log: {format: json, level: warn}\n", harness.WithUpstream(sink.Addr()))
	l := newLedger()
	sendN := func(prefix string) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.send(r.Addr(), fmt.Sprintf("%s%d", prefix, i), 2048, 30*time.Second); err != nil {
					t.Errorf("send while the upstream is unavailable: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	// Refusing with 4xx for a while: retried (retry_first 1s), not bounced.
	sink.RejectData(smtptest.SMTPErr(451, "4.3.0", "try again later"))
	sendN("refuse")
	time.Sleep(2500 * time.Millisecond)
	if got := sink.Count(); got != 0 {
		t.Errorf("the sink took %d messages while refusing them", got)
	}
	sink.AcceptAll()
	settle(t, "upstream 451 for 2.5 s, then OK", sink, l, 30*time.Second, fmt.Sprintf("%d refusals at the sink", len(sink.Rejected())))

	// Down (connection refused) for a while.
	l2 := newLedger()
	l = l2
	sink2 := sink
	sink2.Stop()
	sendN("down")
	time.Sleep(2500 * time.Millisecond)
	sink2.Start()
	settle(t, "upstream down 2.5 s, then up", sink2, l2, 30*time.Second, "")
}

func testDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("disk-full scenario: needs root to mount a small tmpfs; skipped")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("disk-full scenario: cannot mount a tmpfs (%v: %s); skipped", err, bytes.TrimSpace(out))
	}
	// Registered before the relay starts, so it runs after the relay stops.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	sink := harness.NewSink(t, smtptest.HashOnly())
	sink.Stop() // upstream down: what is accepted stays on the small disk
	r := harness.Start(t, fmt.Sprintf("data_dir: %q\nlog: {format: json, level: warn}\n", filepath.Join(mnt, "data")), harness.WithUpstream(sink.Addr()))
	l := newLedger()
	var refusal error
	for i := 0; i < 200 && refusal == nil; i++ {
		refusal = l.send(r.Addr(), "fill", 256<<10, 30*time.Second)
	}
	if refusal == nil {
		t.Fatal("200 messages of 256 KiB fit on an 8 MiB tmpfs: the disk never filled")
	}
	if code, enh := harness.Code(refusal); code != 452 || enh != "4.3.1" {
		t.Fatalf("on a full disk the client got %v, want 452 4.3.1", refusal)
	}
	// Still refused, still running.
	if err := l.send(r.Addr(), "fill-again", 256<<10, 30*time.Second); err != nil {
		if code, enh := harness.Code(err); code != 452 || enh != "4.3.1" {
			t.Errorf("second try on a full disk: %v, want 452 4.3.1", err)
		}
	}
	if !r.Running() {
		t.Fatal("bccguard exited on a full disk")
	}
	// Space returns as the accepted messages are delivered and removed.
	sink.Start()
	res := settle(t, "disk full (8 MiB tmpfs)", sink, l, 60*time.Second, "")
	var resumed error
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resumed = l.send(r.Addr(), "after", 256<<10, 30*time.Second); resumed == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if resumed != nil {
		t.Errorf("acceptance did not resume once space returned: %v", resumed)
	}
	table.mu.Lock()
	table.rows[len(table.rows)-1].note = fmt.Sprintf("%d accepted before 452 4.3.1; resumed: %v", res.accepted, resumed == nil)
	table.mu.Unlock()
}

func testSlowPeers(t *testing.T) {
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, "log: {format: json, level: warn}\n", harness.WithUpstream(sink.Addr()))
	l := newLedger()
	// A slow upstream: every transaction takes 2 s to answer.
	sink.OnData(func(*smtptest.Message) *smtp.SMTPError { time.Sleep(2 * time.Second); return nil })
	// A slow client: opens a transaction and trickles its message.
	slowID, slowRaw := l.message("slow-client", 512)
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := textproto.NewConn(c)
	expect := func(code int, cmd string) {
		if cmd != "" {
			tp.PrintfLine("%s", cmd)
		}
		if _, _, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("slow client, %q: %v", cmd, err)
		}
	}
	expect(220, "")
	expect(250, "EHLO slow.example")
	expect(250, "MAIL FROM:<sender@faults.example>")
	expect(250, "RCPT TO:<rcpt@upstream.example>")
	expect(354, "DATA")
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		w := bufio.NewWriter(c)
		for i, b := range slowRaw {
			w.WriteByte(b)
			if i%16 == 0 {
				w.Flush()
				time.Sleep(50 * time.Millisecond)
			}
		}
		w.WriteString(".\r\n")
		w.Flush()
	}()
	// Meanwhile 20 sessions get their 250 quickly.
	n := pick(40, 200)
	var mu sync.Mutex
	var worst time.Duration
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := l.send(r.Addr(), fmt.Sprint("fast", i), 2048, 30*time.Second); err != nil {
				t.Errorf("a fast client next to slow peers: %v", err)
			}
			mu.Lock()
			worst = max(worst, time.Since(start))
			mu.Unlock()
		}()
		if i%20 == 19 {
			wg.Wait()
		}
	}
	wg.Wait()
	if worst > 2*time.Second {
		t.Errorf("with a slow upstream and a slow client, the slowest other submission took %v", worst)
	}
	<-trickled
	_, _, err = tp.ReadResponse(250)
	l.record(slowID, err)
	if err != nil {
		t.Errorf("slow client's message: %v", err)
	}
	sink.AcceptAll()
	settle(t, "slow upstream (2 s) + slow client", sink, l, 60*time.Second, fmt.Sprintf("slowest other submission %v", worst.Round(time.Millisecond)))
}

func testConnections(t *testing.T) {
	n := pick(1000, 1000)
	sink := harness.NewSink(t, smtptest.HashOnly())
	r := harness.Start(t, `log: {format: json, level: warn}
listeners:
  - name: smtp
    address: {{addr "smtp"}}
    limits: {max_connections: 1100, command_timeout: 3s}
`, harness.WithUpstream(sink.Addr()))
	l := newLedger()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", r.Addr(), 10*time.Second)
			if err != nil {
				t.Errorf("connection: %v", err)
				return
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			tp := textproto.NewReader(br)
			if _, _, err := tp.ReadResponse(220); err != nil {
				t.Errorf("greeting: %v", err)
				c.Close()
				return
			}
			fmt.Fprintf(c, "EHLO idle.example\r\n")
			if _, _, err := tp.ReadResponse(250); err != nil {
				t.Errorf("EHLO: %v", err)
				c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	held := len(conns)
	rss := r.PeakRSS()
	if held != n {
		t.Errorf("held %d connections, want %d", held, n)
	}
	// While they are held, mail still goes through.
	for i := range 5 {
		if err := l.send(r.Addr(), fmt.Sprint("beside-idle", i), 2048, 10*time.Second); err != nil {
			t.Errorf("send beside %d idle connections: %v", held, err)
		}
	}
	if rss > 256<<20 {
		t.Errorf("peak RSS with %d connections: %d MiB, want < 256 MiB", held, rss>>20)
	}
	// Idle ones are timed out (command_timeout 3s): the server closes them.
	closed := 0
	deadline := time.Now().Add(15 * time.Second)
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closed++
				}
				break
			}
		}
	}
	if closed != held {
		t.Errorf("%d of %d idle connections were closed by the server after command_timeout", closed, held)
	}
	settle(t, fmt.Sprintf("%d idle connections held", held), sink, l, 30*time.Second,
		fmt.Sprintf("peak RSS %.1f MiB; %d/%d closed after command_timeout 3s", float64(rss)/(1<<20), closed, held))
}
