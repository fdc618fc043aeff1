package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/tests/harness"
)

// EnvLimitRounds sets how many rounds TestBenchRateLimits runs (each runs
// both relays once per scenario, alternating).
const EnvLimitRounds = "BCCGUARD_BENCH_LIMIT_ROUNDS"

// tenLimits are ten rate limits that every message of the benchmark's
// clients (no AUTH, one sender domain, loopback) is checked against, so
// each MAIL FROM and RCPT TO does the full work: bounds far above what the
// run sends, so none refuses anything.
const tenLimits = `rate_limits:
  - {name: ip-minute, key: client_ip, per: minute, messages: 100000000}
  - {name: ip-hour, key: client_ip, per: hour, messages: 100000000, recipients: 100000000}
  - {name: ip-day, key: client_ip, per: day, recipients: 100000000}
  - {name: net-hour, key: client_ip, per: hour, messages: 100000000, ipv4_prefix: 24}
  - {name: domain-minute, key: sender_domain, per: minute, messages: 100000000}
  - {name: domain-hour, key: sender_domain, per: hour, messages: 100000000, recipients: 100000000}
  - {name: domain-day, key: sender_domain, per: day, messages: 100000000, action: quarantine}
  - {name: listener-minute, key: listener, per: minute, messages: 100000000}
  - {name: listener-hour, key: listener, per: hour, recipients: 100000000}
  - {name: listener-day, key: listener, per: day, messages: 100000000, recipients: 100000000}
`

// TestBenchRateLimits measures what ten rate limits cost: two bccguard
// relays, one without limits and one with tenLimits, same store (embedded,
// on the disk), same sink, same clients, measured in alternating rounds so
// that the machine's drift hits both alike. It reports the pass-through
// rate (smtp-source, 20 sessions, 2 KiB) and the p50/p99 of the 250 after
// DATA (Go client, 20 sessions) for each, their medians over the rounds,
// and the ratios; the target is within 5% of none. Run with:
//
//	BCCGUARD_BENCH=1 go test -count=1 -v -timeout 15m -run '^TestBenchRateLimits$' ./tests/bench
//
// (as root, for smtp-sink; BCCGUARD_BENCH_PASS and BCCGUARD_BENCH_LATENCY
// size the runs, BCCGUARD_BENCH_LIMIT_ROUNDS the rounds, default 3).
func TestBenchRateLimits(t *testing.T) {
	if os.Getenv(EnvBench) == "" {
		t.Skipf("set %s=1 to run the rate limit benchmark", EnvBench)
	}
	rounds := envInt(EnvLimitRounds, 3)
	sink := startSink(t)
	start := func(name, extra string) relayUnderTest {
		dir, err := os.MkdirTemp(benchTmp(t), "bench-limits-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if isTmpfs(dir) {
			t.Fatalf("%s is a tmpfs: the benchmark needs a disk (fsync on)", dir)
		}
		cfg := fmt.Sprintf("data_dir: %q\nlog: {format: json, level: info}\n%s", filepath.Join(dir, "data"), extra)
		r := harness.Start(t, cfg, harness.WithUpstream(sink.Addr))
		return relayUnderTest{name: name, addr: r.Addr(), recipientLimit: 1, relay: r}
	}
	relays := []relayUnderTest{start("no limits", ""), start("ten limits", tenLimits)}

	type figures struct{ pass, p50, p99 []float64 }
	got := make([]figures, len(relays))
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for round := range rounds {
		for k := range relays {
			// Alternate which relay goes first, so neither always runs on
			// a machine warmed (or tired) by the other.
			j := (k + round) % len(relays)
			r := relays[j]
			p := passThrough(t, sink, r)
			l := goLoad(t, sink, r, latencyMessages, 1, 2048, false)
			got[j].pass = append(got[j].pass, p.out)
			got[j].p50 = append(got[j].p50, ms(l.p50))
			got[j].p99 = append(got[j].p99, ms(l.p99))
			t.Logf("round %d, %s: pass-through %.0f msgs/s delivered; 250 after DATA p50 %.2f ms, p99 %.2f ms",
				round+1, r.name, p.out, ms(l.p50), ms(l.p99))
		}
	}
	median := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	list := func(v []float64, format string) string {
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprintf(format, x)
		}
		return strings.Join(parts, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| relay | pass-through msgs/s (median; runs) | 250 p50 ms | 250 p99 ms (median; runs) |\n|---|---:|---:|---:|\n")
	for j, r := range relays {
		g := got[j]
		fmt.Fprintf(&b, "| %s | %.0f (%s) | %.2f | %.2f (%s) |\n", r.name, median(g.pass), list(g.pass, "%.0f"),
			median(g.p50), median(g.p99), list(g.p99, "%.2f"))
	}
	none, ten := got[0], got[1]
	fmt.Printf("\nrate limits: ten configured vs none, same run, alternating rounds (nproc %s):\n\n%s\n", nproc(), b.String())
	fmt.Printf("ten limits / none: pass-through %.3f×, p99 of the 250 %.3f× (target: pass-through ≥ 0.95×, p99 ≤ 1.05×)\n",
		median(ten.pass)/median(none.pass), median(ten.p99)/median(none.p99))
}
