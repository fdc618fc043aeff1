package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

// sessionsCollector reports the connections each listener holds open now,
// counted by its guardedListener.
type sessionsCollector struct {
	srv  *Server
	desc *prometheus.Desc
}

func (c *sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.srv.listeners {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(max(l.guard.n.Load(), 0)), l.cfg.Name)
	}
}
