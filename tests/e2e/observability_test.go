package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bccguard/bccguard/tests/harness"
)

// obsExplodePolicy explodes every message that shows more than one
// recipient.
const obsExplodePolicy = `policy:
  rules:
    - {name: all, when: "visible.count > 1", action: explode}
`

// obsMailing is a mailing that shows every recipient in To:.
func obsMailing(from string, to []string) []byte {
	return harness.CRLF("From: Brand <" + from + ">\nTo: " + strings.Join(to, ", ") +
		"\nSubject: Your opinion counts\nDate: Sat, 21 Nov 2026 10:00:00 +0000\nMessage-ID: <survey-1@brand.example>\n\nPlease take our survey.\n")
}

func obsGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestPrometheusScrapesRelay is the end-to-end check: a real
// Prometheus server scrapes the real binary, which relays and explodes a
// mailing, and its HTTP API returns the decision and delivery counters.
// The alert rules are loaded into the same server.
func TestPrometheusScrapesRelay(t *testing.T) {
	t.Parallel()
	prom := harness.ToolOrInstall(t, "prometheus")
	sink := harness.NewSink(t)
	r := harness.Start(t, obsExplodePolicy, harness.WithUpstream(sink.Addr()))
	api := startPrometheus(t, prom, r.AdminAddr())

	rcpts := []string{"ann@customers.example", "ben@customers.example", "cy@customers.example"}
	queueID(t, harness.Send(t, r.Addr(), "crm@brand.example", rcpts, obsMailing("crm@brand.example", rcpts)))
	sink.WaitFor(t, 3, deliverTimeout)

	want := map[string]float64{
		`sum(bccguard_policy_decisions_total{action="explode"})`:     1,
		`sum(bccguard_deliveries_total{result="delivered"})`:         3,
		`sum(bccguard_recipients_protected_total{action="explode"})`: 3,
		`sum(bccguard_messages_accepted_total)`:                      1,
		`up{job="bccguard"}`:                                         1,
		`bccguard_upstream_up`:                                       1,
	}
	got := map[string]string{}
	harness.Eventually(t, 20*time.Second, "Prometheus to have scraped the counters", func() bool {
		done := true
		for q, w := range want {
			v, ok := promQuery(t, api, q)
			got[q] = v
			if f, err := strconv.ParseFloat(v, 64); !ok || err != nil || f != w {
				done = false
			}
		}
		return done
	})
	for q, w := range want {
		t.Logf("%s = %s (want %v)", q, got[q], w)
	}

	// The alert rules load and evaluate in a real server, and none fires
	// for a healthy relay.
	_, body := obsGet(t, api+"/api/v1/rules?type=alert")
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
					State  string `json:"state"`
					Error  string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &rules); err != nil {
		t.Fatalf("/api/v1/rules: %v: %s", err, body)
	}
	n := 0
	for _, g := range rules.Data.Groups {
		for _, rl := range g.Rules {
			n++
			if rl.Health == "err" {
				t.Errorf("alert %s: %s", rl.Name, rl.Error)
			}
			if rl.State == "firing" {
				t.Errorf("alert %s fires for a healthy relay", rl.Name)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus loaded no alert rules")
	}
}

// startPrometheus runs a Prometheus server on a free loopback port that
// scrapes admin every second, with deploy/prometheus/alerts.yml loaded,
// until the test ends. It returns its base URL once it is ready.
func startPrometheus(t *testing.T, bin, admin string) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: bccguard
    static_configs:
      - targets: [%q]
`, filepath.Join(root, "deploy", "prometheus", "alerts.yml"), admin)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	var logs bytes.Buffer
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.console.templates="+filepath.Join(dir, "consoles"),
		"--web.console.libraries="+filepath.Join(dir, "console_libraries"),
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	harness.Eventually(t, 20*time.Second, "Prometheus to be ready on "+addr, func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited at start:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// promQuery runs an instant query and returns the single sample's value.
func promQuery(t *testing.T, api, q string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", api+"/api/v1/query?query="+urlQuery(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error(), false
	}
	defer resp.Body.Close()
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return err.Error(), false
	}
	if res.Status != "success" {
		t.Fatalf("query %s: %s", q, res.Error)
	}
	if len(res.Data.Result) != 1 {
		return fmt.Sprintf("%d series", len(res.Data.Result)), false
	}
	v, _ := res.Data.Result[0].Value[1].(string)
	return v, true
}

func urlQuery(q string) string {
	var b strings.Builder
	for _, c := range []byte(q) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TestMetricsEndpointIsClean: the real binary's /metrics, after relaying
// and exploding a mailing, passes promlint, carries no address in any
// label, and has bccguard_build_info.
func TestMetricsEndpointIsClean(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, obsExplodePolicy, harness.WithUpstream(sink.Addr()))
	rcpts := []string{"dee@customers.example", "eve@customers.example"}
	harness.Send(t, r.Addr(), "crm@brand.example", rcpts, obsMailing("crm@brand.example", rcpts))
	sink.WaitFor(t, 2, deliverTimeout)

	code, body := obsGet(t, "http://"+r.AdminAddr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "bccguard_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "@") {
					t.Errorf("%s: label %s=%q looks like an address", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	for _, n := range []string{"bccguard_build_info", "bccguard_config_info", "bccguard_sessions_active",
		"bccguard_queue_deliveries", "bccguard_policy_reload_total", "bccguard_recipients_protected_total",
		"bccguard_quarantine_oldest_age_seconds"} {
		if mfs[n] == nil {
			t.Errorf("/metrics has no %s", n)
		}
	}
}

// TestReadyzAndHealthcheck: /readyz checks the store, the policy and the
// listeners and reports the upstream without depending on it; `bccguard
// healthcheck` (the container HEALTHCHECK) asks the same endpoints.
func TestReadyzAndHealthcheck(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))
	readyz := func() (int, map[string]string) {
		code, body := obsGet(t, "http://"+r.AdminAddr()+"/readyz")
		var st map[string]string
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("/readyz: %v: %s", err, body)
		}
		return code, st
	}
	code, st := readyz()
	if code != http.StatusOK {
		t.Errorf("/readyz = %d %v with everything up", code, st)
	}
	for _, k := range []string{"store", "policy", "listeners"} {
		if st[k] != "ok" {
			t.Errorf("/readyz %s = %q", k, st[k])
		}
	}
	harness.Eventually(t, 10*time.Second, "the upstream to be reported up", func() bool {
		_, st := readyz()
		return strings.HasPrefix(st["upstream"], "up")
	})

	// The upstream goes down: a delivery fails, /readyz says so and stays 200.
	sink.Stop()
	queueID(t, harness.Send(t, r.Addr(), "crm@brand.example", []string{"fay@customers.example"},
		obsMailing("crm@brand.example", []string{"fay@customers.example"})))
	harness.Eventually(t, queueTimeout, "the upstream to be reported down", func() bool {
		_, st := readyz()
		return strings.HasPrefix(st["upstream"], "down")
	})
	if code, st := readyz(); code != http.StatusOK {
		t.Errorf("/readyz = %d %v: a down upstream must not make the relay unready", code, st)
	}

	for _, args := range [][]string{{"healthcheck", "--admin", r.AdminAddr()}, {"healthcheck", "--ready", "--config", r.ConfigPath()}} {
		if res := r.CLI(args...); !res.OK() {
			t.Errorf("healthcheck of a running relay failed:\n%s", res)
		}
	}
	r.Stop()
	if res := r.CLI("healthcheck", "--admin", r.AdminAddr(), "--timeout", "2s"); res.ExitCode != 1 {
		t.Errorf("healthcheck of a stopped relay: want exit 1\n%s", res)
	}
}

// The addresses of TestLogsRedactAddresses: none may appear in the logs.
var obsLogAddrs = []string{"crm.sender@brand.example", "ann.customer@customers.example",
	"ben.customer@customers.example", "gone.customer@customers.example"}

// obsRelayMailing sends a mailing that is exploded, has one recipient
// refused by the upstream with a reply quoting the address (as Postfix
// does) and so makes a DSN; it waits until all of that is logged.
func obsRelayMailing(t *testing.T, cfg string) *harness.Relay {
	t.Helper()
	sink := harness.NewSink(t)
	sink.RejectRcpt("gone.customer@customers.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "<gone.customer@customers.example>: Recipient address rejected: User unknown in virtual mailbox table"})
	r := harness.Start(t, cfg, harness.WithUpstream(sink.Addr()))
	from, rcpts := obsLogAddrs[0], obsLogAddrs[1:]
	queueID(t, harness.Send(t, r.Addr(), from, rcpts, obsMailing(from, rcpts)))
	// Two copies and the DSN to the sender.
	sink.WaitFor(t, 3, deliverTimeout)
	harness.Eventually(t, queueTimeout, "the bounce and the DSN to be logged", func() bool {
		l := r.Logs()
		return strings.Contains(l, "Recipient address rejected") && strings.Contains(l, "DSN queued")
	})
	return r
}

// TestLogsRedactAddresses: with the default configuration no address of
// sender or recipients reaches the log, not even inside an upstream reply;
// with log.redact_addresses false the sender is logged in clear.
func TestLogsRedactAddresses(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		r := obsRelayMailing(t, obsExplodePolicy)
		logs := r.Logs()
		for _, a := range obsLogAddrs {
			local := a[:strings.IndexByte(a, '@')]
			if strings.Contains(logs, a) || strings.Contains(logs, local) {
				t.Errorf("%s appears in the log", a)
			}
		}
		if !strings.Contains(logs, `"sender":"addr:`) {
			t.Errorf("the accepted message's sender is not logged as a redaction token")
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})
	t.Run("redact_addresses false", func(t *testing.T) {
		t.Parallel()
		r := obsRelayMailing(t, obsExplodePolicy+"log: {format: json, level: debug, redact_addresses: false}\n")
		if logs := r.Logs(); !strings.Contains(logs, obsLogAddrs[0]) {
			t.Errorf("with redact_addresses: false the sender %s is not in the log:\n%s", obsLogAddrs[0], logs)
		}
	})
}

// obsScrape returns the value of one sample of the relay's /metrics
// (name and labels as written there, e.g. `x_total{result="failure"}`).
func obsScrape(t *testing.T, r *harness.Relay, series string) string {
	t.Helper()
	_, body := obsGet(t, "http://"+r.AdminAddr()+"/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestReloadMetrics: SIGHUP with a broken policy is counted as a failure
// and keeps the configuration hash; a good one is counted and updates it.
func TestReloadMetrics(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, obsExplodePolicy, harness.WithUpstream(sink.Addr()))
	hash := func() string {
		_, body := obsGet(t, "http://"+r.AdminAddr()+"/metrics")
		for _, line := range strings.Split(string(body), "\n") {
			if rest, ok := strings.CutPrefix(line, `bccguard_config_info{sha256="`); ok {
				return rest[:strings.IndexByte(rest, '"')]
			}
		}
		t.Fatal("no bccguard_config_info on /metrics")
		return ""
	}
	first := hash()
	reload := func(from, to, logged string) {
		t.Helper()
		b, err := os.ReadFile(r.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		before := strings.Count(r.Logs(), logged)
		if err := os.WriteFile(r.ConfigPath(), []byte(strings.Replace(string(b), from, to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(r.PID(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 20*time.Second, "the relay to log "+logged, func() bool { return strings.Count(r.Logs(), logged) > before })
	}
	reload(`visible.count > 1`, `visible.cuont > 1`, "policy reload refused")
	if v := obsScrape(t, r, "bccguard_policy_last_reload_successful"); v != "0" {
		t.Errorf("bccguard_policy_last_reload_successful = %q after a refused reload", v)
	}
	if v := obsScrape(t, r, `bccguard_policy_reload_total{result="failure"}`); v != "1" {
		t.Errorf(`bccguard_policy_reload_total{result="failure"} = %q`, v)
	}
	if hash() != first {
		t.Error("a refused reload changed bccguard_config_info")
	}
	reload(`visible.cuont > 1`, `visible.count > 2`, "policy reloaded")
	if v := obsScrape(t, r, "bccguard_policy_last_reload_successful"); v != "1" {
		t.Errorf("bccguard_policy_last_reload_successful = %q after a good reload", v)
	}
	if v := obsScrape(t, r, `bccguard_policy_reload_total{result="success"}`); v != "1" {
		t.Errorf(`bccguard_policy_reload_total{result="success"} = %q`, v)
	}
	if hash() == first {
		t.Error("a good reload of a changed file kept the old bccguard_config_info")
	}
}
