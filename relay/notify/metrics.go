package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/store"
)

// metrics count what the Service sends, by channel (the configured names
// and "sender"): never an address.
type metrics struct {
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	givenUp *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, st store.NotificationStore, channels []string, log *slog.Logger) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_notifications_sent_total",
			Help: "Notifications sent (a webhook answered 2xx, an email was queued for the upstream), by channel.",
		}, []string{"channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_notifications_failed_total",
			Help: "Attempts to send a notification that failed (each is retried until notify.lifetime), by channel.",
		}, []string{"channel"}),
		givenUp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_notifications_given_up_total",
			Help: "Notifications given up after notify.lifetime of failures, by channel.",
		}, []string{"channel"}),
	}
	qc := &queuedCollector{st: st, channels: channels, log: log, desc: prometheus.NewDesc("bccguard_notifications_queued",
		"Notifications waiting to be sent (due or retrying), by channel; read from the store at scrape time.", []string{"channel"}, nil)}
	for _, ch := range channels {
		m.sent.WithLabelValues(ch)
		m.failed.WithLabelValues(ch)
		m.givenUp.WithLabelValues(ch)
	}
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.givenUp, qc} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// queuedCollector reads the outbox at scrape time, so the gauge is right
// whichever replica queued or sent.
type queuedCollector struct {
	st       store.NotificationStore
	channels []string
	log      *slog.Logger
	desc     *prometheus.Desc
}

func (c *queuedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queuedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.st.PendingNotifications(ctx)
	if err != nil {
		c.log.Warn("notify metrics: store stats failed", "err", err)
		return
	}
	for _, name := range c.channels {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[name]), name)
		delete(counts, name)
	}
	// Notifications of a channel no longer configured, until they fail.
	for name, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), name)
	}
}
