package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ingress's Prometheus instruments, registered on the
// registry main passes in. Labels carry listener names, actions, rule names
// and reasons only: never an address. (Delivery's are relay/deliver's.)
type metrics struct {
	connections   *prometheus.CounterVec
	refused       *prometheus.CounterVec
	accepted      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	receivedBytes prometheus.Counter
	authFailures  *prometheus.CounterVec
	bareNewlines  *prometheus.CounterVec
	dataSeconds   prometheus.Histogram
	decisions     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_connections_total", Help: "SMTP connections accepted, by listener.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_connections_refused_total", Help: "SMTP connections refused with 421 because the listener was full.",
		}, []string{"listener"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_messages_accepted_total", Help: "Messages accepted (250 after DATA), by listener.",
		}, []string{"listener"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_messages_rejected_total", Help: "Transactions refused, by reason.",
		}, []string{"reason"}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bccguard_received_bytes_total", Help: "Bytes of accepted messages.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_auth_failures_total", Help: "Failed SMTP AUTH attempts, by listener.",
		}, []string{"listener"}),
		bareNewlines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_bare_newline_messages_total",
			Help: "Messages with a bare CR or LF in their content, by listener and what was done (rejected, or normalized to CRLF).",
		}, []string{"listener", "action"}),
		dataSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bccguard_data_duration_seconds", Help: "Time from DATA to the final reply, including the durable commit.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_policy_decisions_total", Help: "Policy decisions, by action, rule and mode (enforce or monitor).",
		}, []string{"action", "rule", "mode"}),
	}
	reg.MustRegister(m.connections, m.refused, m.accepted, m.rejected, m.receivedBytes, m.authFailures, m.bareNewlines,
		m.dataSeconds, m.decisions)
	return m
}
