package relay

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/policy"
)

// ops is what operations watch beyond the per-message instruments of
// metrics.go: recipients protected, policy reloads and the configuration in
// force, certificate expiry, session gauges read at scrape time and the
// state /readyz reports. (The queue's and the upstream's are relay/deliver's.)
type ops struct {
	protected  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	configInfo *prometheus.GaugeVec
	certExpiry *prometheus.GaugeVec

	mu      sync.Mutex
	stopped map[string]bool // listeners whose Serve has returned
}

// initOps registers the operations metrics on reg.
func (s *Server) initOps(reg prometheus.Registerer) error {
	o := &ops{
		protected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_recipients_protected_total",
			Help: "Visible recipient addresses (in any header field) that an explode or bcc rewrite kept from being shown to the other recipients, " +
				"counted when the message is accepted, by action: a mailing that shows 120 addresses to 120 recipients counts 120.",
		}, []string{"action"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_policy_reload_total",
			Help: "Policy reloads (SIGHUP), by result: success, or failure (the old policy stays in force).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bccguard_policy_last_reload_successful",
			Help: "1 if the last policy load (at start or on SIGHUP) succeeded, 0 if it was refused and an older policy is in force.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bccguard_policy_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful policy load (at start or on SIGHUP).",
		}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bccguard_config_info",
			Help: "The configuration file in force: sha256 is the first 16 hex digits of the SHA-256 of the file as last loaded successfully " +
				"(\"builtin\" without a file). The value is always 1. Differing hashes across replicas mean configuration drift.",
		}, []string{"sha256"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bccguard_tls_certificate_expiry_timestamp_seconds",
			Help: "Unix time at which the TLS certificate a listener loaded at start stops being valid (its NotAfter), by listener.",
		}, []string{"listener"}),
		stopped: map[string]bool{},
	}
	sc := &sessionsCollector{srv: s, desc: prometheus.NewDesc("bccguard_sessions_active",
		"SMTP sessions (client connections) open now, by listener.", []string{"listener"}, nil)}
	for _, c := range []prometheus.Collector{o.protected, o.reloads, o.reloadOK, o.reloadTime, o.configInfo, o.certExpiry, sc} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("relay: register metrics: %w", err)
		}
	}
	s.ops = o

	// The policy given to New is the first one loaded.
	o.reloadOK.Set(1)
	o.reloadTime.SetToCurrentTime()
	s.setConfigInfo(s.cfg.File)

	// Series that exist from the start, at 0, so that rate() and
	// increase() in alerts and dashboards work before the first event.
	for _, a := range policy.RewritingActions() {
		o.protected.WithLabelValues(string(a))
	}
	o.reloads.WithLabelValues("success")
	o.reloads.WithLabelValues("failure")
	for _, l := range s.cfg.Listeners {
		s.metrics.connections.WithLabelValues(l.Name)
		s.metrics.accepted.WithLabelValues(l.Name)
		s.metrics.authFailures.WithLabelValues(l.Name)
		s.metrics.bareNewlines.WithLabelValues(l.Name, "rejected")
		s.metrics.bareNewlines.WithLabelValues(l.Name, "normalized")
	}
	return nil
}

// PolicyReloaded records the outcome of a policy reload: err nil means the
// policy from configFile is now in force.
func (s *Server) PolicyReloaded(configFile string, err error) {
	if err != nil {
		s.ops.reloads.WithLabelValues("failure").Inc()
		s.ops.reloadOK.Set(0)
		return
	}
	s.ops.reloads.WithLabelValues("success").Inc()
	s.ops.reloadOK.Set(1)
	s.ops.reloadTime.SetToCurrentTime()
	s.setConfigInfo(configFile)
}

// setConfigInfo points bccguard_config_info at the file's current content.
func (s *Server) setConfigInfo(file string) {
	sum := "builtin"
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			s.log.Warn("config hash: cannot read the configuration file", "file", file, "err", err)
			sum = "unreadable"
		} else {
			h := sha256.Sum256(b)
			sum = hex.EncodeToString(h[:8])
		}
	}
	s.ops.configInfo.Reset()
	s.ops.configInfo.WithLabelValues(sum).Set(1)
}

// certLoaded records when a listener's certificate expires.
func (s *Server) certLoaded(listener string, cert tls.Certificate) {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil {
		return
	}
	s.ops.certExpiry.WithLabelValues(listener).Set(float64(leaf.NotAfter.Unix()))
}

// countProtected counts the visible addresses an explode or bcc rewrite of
// an accepted message keeps from other recipients: a visible address is
// protected when some envelope recipient other than its owner gets a copy.
func (s *Server) countProtected(in *policy.Input, dec policy.Decision, fig policy.Figures) {
	a := dec.Effective()
	vis := fig.Visible()
	if !a.Rewrites() || vis == nil {
		return
	}
	n := 0
	switch len(in.Recipients) {
	case 0:
	case 1:
		for _, r := range vis.Recipients {
			if !strings.EqualFold(r.Address, in.Recipients[0]) {
				n++
			}
		}
	default:
		n = vis.Count
	}
	s.ops.protected.WithLabelValues(string(a)).Add(float64(n))
}

// listenerStopped notes that a listener no longer accepts connections.
func (s *Server) listenerStopped(name string) {
	s.ops.mu.Lock()
	s.ops.stopped[name] = true
	s.ops.mu.Unlock()
}

// ListenersReady is the /readyz check that every listener accepts
// connections.
func (s *Server) ListenersReady(context.Context) error {
	if s.closing.Load() {
		return errors.New("shutting down")
	}
	if len(s.listeners) == 0 {
		return errors.New("listeners not started")
	}
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	var down []string
	for _, l := range s.listeners {
		if s.ops.stopped[l.cfg.Name] {
			down = append(down, l.cfg.Name)
		}
	}
	if len(down) > 0 {
		sort.Strings(down)
		return fmt.Errorf("listener stopped: %s", strings.Join(down, ", "))
	}
	return nil
}

// PolicyReady is the /readyz check that a policy is loaded.
func (s *Server) PolicyReady(context.Context) error {
	s.policyMu.RLock()
	p := s.policy
	s.policyMu.RUnlock()
	if p == nil {
		return errors.New("no policy loaded")
	}
	return nil
}

// UpstreamStatus describes the upstream's reachability for /readyz, which
// reports it without depending on it: while the upstream is down the queue
// holds what is accepted.
func (s *Server) UpstreamStatus(ctx context.Context) string { return s.delivery.UpstreamStatus(ctx) }
