package deliver

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/store"
)

// metrics are the delivery's Prometheus instruments, registered on the
// registry in Options. Labels carry results and reply classes only: never
// an address.
type metrics struct {
	deliveries   *prometheus.CounterVec
	deliverySecs prometheus.Histogram
	dsns         prometheus.Counter
	upstreamUp   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, st store.Store, log *slog.Logger) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_deliveries_total", Help: "Delivery attempts, by result (delivered, deferred, bounced, expired) and upstream reply class (2xx, 4xx, 5xx, network).",
		}, []string{"result", "reply_class"}),
		deliverySecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bccguard_delivery_duration_seconds", Help: "Time of one delivery attempt to the upstream.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		dsns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bccguard_dsn_sent_total", Help: "Delivery status notifications queued to senders.",
		}),
		upstreamUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bccguard_upstream_up", Help: "1 if the last attempt to reach the upstream connected, else 0.",
		}),
	}
	qc := &queueCollector{
		store: st, log: log,
		deliveries: prometheus.NewDesc("bccguard_queue_deliveries",
			"Deliveries in the queue, by state: queued (due or waiting for their first attempt), deferred (waiting to be retried) "+
				"or held (put on hold by an operator: not attempted, not aging, not in bccguard_queue_oldest_age_seconds).",
			[]string{"state"}, nil),
		oldest: prometheus.NewDesc("bccguard_queue_oldest_age_seconds",
			"Age of the oldest delivery still in the queue, since its message was accepted (0 when the queue is empty).", nil, nil),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.deliverySecs, m.dsns, m.upstreamUp, qc} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("deliver: register metrics: %w", err)
		}
	}
	// Series that exist from the start, at 0, so that rate() and
	// increase() in alerts and dashboards work before the first delivery.
	for _, rc := range [][2]string{{"delivered", "2xx"}, {"deferred", "4xx"}, {"deferred", "network"},
		{"bounced", "5xx"}, {"expired", "4xx"}, {"expired", "network"}} {
		m.deliveries.WithLabelValues(rc[0], rc[1])
	}
	return m, nil
}
