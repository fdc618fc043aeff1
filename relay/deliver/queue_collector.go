package deliver

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/store"
)

// queueCollector reads the queue's figures from the store at scrape time,
// so they are right whichever process (or replica) changed the queue.
type queueCollector struct {
	store      store.Store
	log        *slog.Logger
	deliveries *prometheus.Desc
	oldest     *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.deliveries
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.store.Stats(ctx)
	if err != nil {
		// Leave the gauges out rather than fail the whole scrape; an
		// absent series is what the queue alerts notice.
		c.log.Warn("queue metrics: store stats failed", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.GaugeValue, float64(max(st.Pending-st.Deferred, 0)), "queued")
	ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.GaugeValue, float64(st.Deferred), "deferred")
	ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.GaugeValue, float64(st.Held), "held")
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(0, time.Since(st.Oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
