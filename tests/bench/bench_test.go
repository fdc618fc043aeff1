package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// EnvBench turns the benchmark on; BCCGUARD_BENCH_OUT names a file for the
// table in Markdown (docs/benchmarks.md quotes it).
const (
	EnvBench = "BCCGUARD_BENCH"
	EnvOut   = "BCCGUARD_BENCH_OUT"
)

// Sizes of the run: bounded so that `make bench` takes a few minutes.
var (
	passMessages = envInt("BCCGUARD_BENCH_PASS", 4000) // smtp-source -m
	// 5,000, not 1,000: with 20 sessions one stall of the 2-core machine
	// delays 20 messages at once, which alone set the p99 of 1,000 (runs
	// of one binary gave 13 to 56 ms); over 5,000 the p99 moves by ±15%.
	latencyMessages = envInt("BCCGUARD_BENCH_LATENCY", 5000)
	explode50Msgs   = envInt("BCCGUARD_BENCH_EXPLODE50", 200) // 10,000 copies
	explode500Msgs  = envInt("BCCGUARD_BENCH_EXPLODE500", 20) // 10,000 copies
	bigMessages     = envInt("BCCGUARD_BENCH_BIG", 12)        // 10 MiB each
)

const sessions = 20

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// relayUnderTest is one of the two relays measured.
type relayUnderTest struct {
	name string
	addr string
	// recipientLimit is how many recipients the relay puts in one upstream
	// transaction (Postfix: smtp_destination_recipient_limit, 50); 1 for
	// bccguard's explode.
	recipientLimit int
	// pid is bccguard's process (peak RSS); nil for Postfix.
	relay *harness.Relay
}

// row is one scenario's figures for one relay.
type row struct {
	in       float64 // messages accepted per second (client side)
	out      float64 // messages (or copies) delivered per second, end to end
	mbps     float64 // for big messages: MB/s end to end
	p50, p99 time.Duration
	rss      int64
	anon     int64 // sampled peak RssAnon (see rssSampler)
	file     int64 // sampled peak RssFile
	copies   int64 // transactions the sink counted
}

func TestBench(t *testing.T) {
	if os.Getenv(EnvBench) == "" {
		t.Skipf("set %s=1 (make bench) to run the benchmark against Postfix", EnvBench)
	}
	sink := startSink(t)
	dataDir, err := os.MkdirTemp(benchTmp(t), "bench-bccguard-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	if isTmpfs(dataDir) {
		t.Fatalf("%s is a tmpfs: the benchmark needs a disk (fsync on)", dataDir)
	}
	cfg := fmt.Sprintf(`data_dir: %q
log: {format: json, level: info}
`, filepath.Join(dataDir, "data"))
	bg := harness.Start(t, cfg, harness.WithUpstream(sink.Addr))
	pf := startPostfix(t, sink.Addr)

	relays := []relayUnderTest{
		{name: "bccguard", addr: bg.Addr(), recipientLimit: 1, relay: bg},
		{name: "postfix", addr: pf.Addr, recipientLimit: 50},
	}
	type scenario struct {
		name string
		run  func(t *testing.T, r relayUnderTest) row
	}
	scenarios := []scenario{
		{"pass-through 2 KiB, 1 rcpt, 20 sessions (smtp-source)", func(t *testing.T, r relayUnderTest) row {
			return passThrough(t, sink, r)
		}},
		{"250 latency, 2 KiB, 20 sessions (Go client)", func(t *testing.T, r relayUnderTest) row {
			return goLoad(t, sink, r, latencyMessages, 1, 2048, false)
		}},
		{"explode, 50 visible rcpts (Go client)", func(t *testing.T, r relayUnderTest) row {
			return goLoad(t, sink, r, explode50Msgs, 50, 2048, false)
		}},
		{"explode, 500 visible rcpts (Go client)", func(t *testing.T, r relayUnderTest) row {
			return goLoad(t, sink, r, explode500Msgs, 500, 2048, false)
		}},
		{"10 MiB messages, 1 rcpt, 4 sessions (Go client)", func(t *testing.T, r relayUnderTest) row {
			return goLoad(t, sink, r, bigMessages, 1, 10<<20, true)
		}},
	}
	results := make([][2]row, len(scenarios))
	for i, sc := range scenarios {
		for j, r := range relays {
			var sampler *rssSampler
			if r.relay != nil {
				resetPeakRSS(t, r.relay.PID())
				sampler = sampleRSS(r.relay.PID())
			}
			res := sc.run(t, r)
			if r.relay != nil {
				res.rss = r.relay.PeakRSS()
				res.anon, res.file = sampler.Stop()
			}
			results[i][j] = res
			t.Logf("%s / %s: %+v", sc.name, r.name, res)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | metric | bccguard | Postfix | bccguard/Postfix |\n|---|---|---:|---:|---:|\n")
	line := func(name, metric string, bv, pv float64, format string) {
		ratio := "–"
		if pv > 0 {
			ratio = fmt.Sprintf("%.2f×", bv/pv)
		}
		fmt.Fprintf(&b, "| %s | %s | "+format+" | "+format+" | %s |\n", name, metric, bv, pv, ratio)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for i, sc := range scenarios {
		bgr, pfr := results[i][0], results[i][1]
		switch i {
		case 0:
			line(sc.name, "msgs/s accepted", bgr.in, pfr.in, "%.0f")
			line(sc.name, "msgs/s delivered (end to end)", bgr.out, pfr.out, "%.0f")
		case 1:
			line(sc.name, "msgs/s delivered", bgr.out, pfr.out, "%.0f")
		case 2, 3:
			line(sc.name, "msgs/s in", bgr.in, pfr.in, "%.1f")
			fmt.Fprintf(&b, "| %s | copies/s out | %.0f | %.1f (1× : one copy per message, %d rcpts per upstream transaction) | – |\n",
				sc.name, bgr.out, pfr.out, min(rcptsOf(i), 50))
		case 4:
			line(sc.name, "MB/s end to end", bgr.mbps, pfr.mbps, "%.1f")
		}
		if bgr.p50 > 0 {
			line(sc.name, "250 after DATA p50 (ms)", ms(bgr.p50), ms(pfr.p50), "%.2f")
			line(sc.name, "250 after DATA p99 (ms)", ms(bgr.p99), ms(pfr.p99), "%.2f")
		}
		fmt.Fprintf(&b, "| %s | bccguard peak RSS (MiB; sampled peaks anon / file) | %.1f (%.1f / %.1f) | – | – |\n", sc.name,
			float64(bgr.rss)/(1<<20), float64(bgr.anon)/(1<<20), float64(bgr.file)/(1<<20))
	}
	table := b.String()
	fmt.Printf("\nbccguard vs Postfix, same run, same smtp-source/Go client and smtp-sink (nproc %s):\n\n%s\n", nproc(), table)
	if f := os.Getenv(EnvOut); f != "" {
		if err := os.WriteFile(f, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	// Targets of the issue, reported (not failed: they depend on the machine).
	p := results[0]
	fmt.Printf("targets: pass-through e2e %.2f× Postfix (want ≥3×); explode-50 copies/s %.0f, explode-500 copies/s %.0f (want ≥5,000); p99 at 20 sessions %.2f ms (want <20 ms); max peak RSS %.1f MiB (want <64 MiB)\n",
		p[0].out/p[1].out, results[2][0].out, results[3][0].out, ms(results[1][0].p99),
		float64(slices.Max([]int64{results[0][0].rss, results[1][0].rss, results[2][0].rss, results[3][0].rss, results[4][0].rss}))/(1<<20))
}

func rcptsOf(scenario int) int {
	if scenario == 3 {
		return 500
	}
	return 50
}

// passThrough runs smtp-source -s 20 -m N -l 2048 against the relay and
// times acceptance (until smtp-source exits) and delivery (until the sink
// has counted every message).
func passThrough(t *testing.T, sink *countingSink, r relayUnderTest) row {
	base := sink.Count()
	start := time.Now()
	res := harness.SMTPSource(t, r.addr, "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(passMessages),
		"-l", "2048", "-f", "sender@bench.example", "-t", "rcpt@upstream.example", "-M", "bench.example")
	accepted := time.Since(start)
	if res.ExitCode != 0 {
		t.Fatalf("smtp-source against %s: exit %d: %v\n%s%s", r.name, res.ExitCode, res.Err, res.Stdout, res.Stderr)
	}
	done := sink.waitCount(t, base+int64(passMessages), 3*time.Minute)
	return row{
		in:     float64(passMessages) / accepted.Seconds(),
		out:    float64(passMessages) / done.Sub(start).Seconds(),
		copies: sink.Count() - base,
	}
}

// goLoad sends n messages with rcpts visible and envelope recipients each,
// over 20 sessions (4 for big messages), timing the 250 after each DATA.
func goLoad(t *testing.T, sink *countingSink, r relayUnderTest, n, rcpts, size int, big bool) row {
	nsess := sessions
	if big {
		nsess = 4
	}
	nsess = min(nsess, n)
	to := make([]string, rcpts)
	for i := range to {
		// Several domains: the built-in policy explodes visible lists.
		to[i] = fmt.Sprintf("customer%04d@shop%d.example", i, i%7)
	}
	body := makeBody(size)
	perTx := (rcpts + r.recipientLimit - 1) / r.recipientLimit
	want := int64(n * perTx)
	base := sink.Count()

	var mu sync.Mutex
	var lats []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	for s := range nsess {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := harness.DialClient(r.addr, &harness.SendOptions{Timeout: 3 * time.Minute})
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			defer c.Close()
			for i := range next {
				msg := makeMessage(fmt.Sprintf("%d.%d.%d", time.Now().UnixNano(), s, i), to, body)
				lat, err := sendOne(c, to, msg)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("message %d: %w", i, err)
				}
				lats = append(lats, lat)
				mu.Unlock()
				if err != nil {
					return
				}
			}
			c.Quit()
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	if firstErr != nil {
		t.Fatalf("%s: %v", r.name, firstErr)
	}
	done := sink.waitCount(t, base+want, 3*time.Minute)
	e2e := done.Sub(start).Seconds()
	slices.Sort(lats)
	out := row{
		in:     float64(n) / accepted.Seconds(),
		p50:    lats[len(lats)*50/100],
		p99:    lats[min(len(lats)-1, len(lats)*99/100)],
		copies: sink.Count() - base,
	}
	if r.recipientLimit == 1 {
		out.out = float64(want) / e2e // copies out
	} else {
		out.out = float64(n) / e2e // messages out, each carrying every recipient
	}
	if big {
		out.mbps = float64(n) * float64(len(body)) / 1e6 / e2e
	}
	return out
}

func makeBody(size int) []byte {
	line := []byte("The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstu\r\n")
	var b bytes.Buffer
	b.Grow(size + len(line))
	for b.Len() < size {
		b.Write(line)
	}
	return b.Bytes()[:size-size%len(line)+len(line)]
}

func makeMessage(id string, to []string, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + 64*len(to) + 512)
	b.WriteString("From: Brand Phones <crm@brand.example>\r\n")
	for i, a := range to {
		if i == 0 {
			b.WriteString("To: ")
		} else {
			b.WriteString(",\r\n ")
		}
		fmt.Fprintf(&b, "\"Customer %04d\" <%s>", i, a)
	}
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "Subject: Your opinion matters\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@bench.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", id)
	b.Write(body)
	return b.Bytes()
}

// resetPeakRSS resets the process's VmHWM (clear_refs 5) so that each
// scenario reports its own peak.
func resetPeakRSS(t *testing.T, pid int) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Logf("reset peak RSS: %v (peaks are then cumulative)", err)
	}
}

func nproc() string {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
