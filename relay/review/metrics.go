package review

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the quarantine's Prometheus metrics. Labels carry rule names
// and action kinds only, never an address.
type metrics struct {
	actions       *prometheus.CounterVec
	expired       *prometheus.CounterVec
	auditFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st Store, now func() time.Time, log *slog.Logger) (*metrics, error) {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_quarantine_actions_total",
			Help: "Review actions on the quarantine, by action (release-explode, approve, delete, download, ...) and outcome (ok or an error code).",
		}, []string{"action", "outcome"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_quarantine_expired_total",
			Help: "Held messages that reached the end of their retention, by what was done (delete or release).",
		}, []string{"action"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bccguard_quarantine_audit_write_failures_total",
			Help: "Review actions whose audit entry could not be written.",
		}),
	}
	// Both expiry outcomes exist from the start, so a rate() over them
	// works before the first expiry.
	m.expired.WithLabelValues("delete")
	m.expired.WithLabelValues("release")
	hc := &holdCollector{
		st: st, now: now, log: log,
		held: prometheus.NewDesc("bccguard_quarantine_held",
			"Messages held for review, by the rule that held them.", []string{"rule"}, nil),
		oldest: prometheus.NewDesc("bccguard_quarantine_oldest_age_seconds",
			"Age of the oldest message held for review (0 when none is held).", nil, nil),
	}
	for _, c := range []prometheus.Collector{m.actions, m.expired, m.auditFailures, hc} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// holdCollector asks the store at scrape time, so the gauges are right
// whichever replica or process changed the quarantine.
type holdCollector struct {
	st     Store
	now    func() time.Time
	log    *slog.Logger
	held   *prometheus.Desc
	oldest *prometheus.Desc
}

func (c *holdCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.held
	ch <- c.oldest
}

func (c *holdCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byRule, oldest, err := c.st.HoldStats(ctx)
	if err != nil {
		// Leave the gauges out rather than fail the whole scrape: the
		// relay's other metrics still matter, and an absent series is
		// what an alert on the quarantine notices.
		c.log.Warn("quarantine metrics: store stats failed", "err", err)
		return
	}
	merged := make(map[string]int, len(byRule))
	for rule, n := range byRule {
		if rule == "" {
			rule = "none" // a hold without a rule name; "" would drop the label
		}
		merged[rule] += n
	}
	for rule, n := range merged {
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(n), rule)
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, c.now().Sub(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
