package relay

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/syncbuf"
	"github.com/bccguard/bccguard/internal/testcert"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// testRelay is a Server on its own registry with an embedded store, started
// on loopback ports.
type testRelay struct {
	srv  *Server
	reg  *prometheus.Registry
	logs *syncbuf.Buffer
	cert *x509.Certificate
	cfg  *config.Config
}

// startTestRelay runs a relay that explodes every message with more than
// one visible recipient, delivering to upstream, with a plain listener
// "smtp" and a STARTTLS listener "submission".
func startTestRelay(t *testing.T, upstream string, redactKey []byte) *testRelay {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, cert := writeTestCert(t, dir)
	cfgFile := filepath.Join(dir, "bccguard.yaml")
	text := fmt.Sprintf(`hostname: relay.test
data_dir: %q
listeners:
  - {name: smtp, address: "127.0.0.1:0"}
  - {name: submission, address: "127.0.0.1:0", tls: starttls, tls_cert: %q, tls_key: %q, auth: false}
upstream: {address: %q, tls: none}
queue: {retry_first: 1s, retry_max: 2s, lifetime: 1h}
policy:
  rules:
    - {name: many-visible, when: "visible.count > 1", action: explode}
`, filepath.Join(dir, "data"), certFile, keyFile, upstream)
	if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(&cfg.Policy, cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Open(cfg.DataDir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	reg := prometheus.NewRegistry()
	srv, err := New(Options{
		Config: cfg, Store: st, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg, Policy: pol, RedactKey: redactKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		_ = st.Close()
		if t.Failed() {
			t.Logf("relay log:\n%s", logs.String())
		}
	})
	return &testRelay{srv: srv, reg: reg, logs: logs, cert: cert, cfg: cfg}
}

func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	c := testcert.New(t, "relay.test")
	certFile, keyFile = c.WriteFiles(t, dir)
	return certFile, keyFile, c.Leaf
}

func sendTestMail(t *testing.T, addr, from string, to []string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: " + from + "\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: survey\r\n\r\nHello\r\n"
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	_ = c.Quit()
}

// waitTimeout bounds harness.Eventually in these tests: they wait for a
// state, never for an amount of time.
const waitTimeout = 20 * time.Second

// metricValue sums the samples of name whose labels include want.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			found = true
			sum += sampleValue(mf.GetType(), m)
		}
	}
	return sum, found
}

func sampleValue(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}
