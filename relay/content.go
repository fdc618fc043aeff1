package relay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/policy/content"
)

// contentMetrics count what the body scan finds: findings by kind and
// attachments by detected type and outcome. Labels are a fixed set of
// words, never a value or a file name.
type contentMetrics struct {
	findings    *prometheus.CounterVec
	attachments *prometheus.CounterVec
}

func newContentMetrics(reg prometheus.Registerer) *contentMetrics {
	m := &contentMetrics{
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_content_findings_total",
			Help: "Distinct findings in accepted messages' bodies and attachments, by kind (email, phone, card, iban, record).",
		}, []string{"kind"}),
		attachments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_content_attachments_total",
			Help: "Attachments of accepted messages, by detected type and status (scanned, unscannable, skipped: a type that is not read).",
		}, []string{"type", "status"}),
	}
	reg.MustRegister(m.findings, m.attachments)
	for _, k := range content.Kinds {
		m.findings.WithLabelValues(k.String())
	}
	return m
}

// scanOptions are the Scanner's settings for one message: the policy's
// content settings, the data folder for the copies archives need, and
// the watch list of the message's recipients.
func (s *Server) scanOptions(in *policy.Input) policy.ScanOptions {
	s.policyMu.RLock()
	p := s.policy
	s.policyMu.RUnlock()
	var o policy.ScanOptions // no policy (Options.Policy nil): the defaults
	if p != nil {
		o = p.ScanOptions()
	}
	o.Watch = policy.WatchFor(in)
	in.Watch = o.Watch
	o.TempDir = s.cfg.DataDir
	return o
}

// knownTypes bounds the type label to the scan's own words.
var knownTypes = map[string]bool{
	"text": true, "html": true, "csv": true, "tsv": true, "json": true, "xml": true, "vcard": true, "icalendar": true,
	"headers": true, "message": true, "xlsx": true, "docx": true, "pptx": true, "ods": true, "odt": true, "odf": true,
	"pdf": true, "zip": true, "gzip": true, "office-legacy": true, "ole": true, "other": true,
}

// countContent records one message's findings and attachments.
func (s *Server) countContent(r policy.ScanResult) {
	m := s.contentMetrics
	if r.Content == nil {
		return
	}
	for _, k := range content.Kinds {
		if n := r.Content.Totals.Get(k); n > 0 {
			m.findings.WithLabelValues(k.String()).Add(float64(n))
		}
	}
	for _, a := range r.Attachments() {
		typ := a.Type
		if !knownTypes[typ] {
			typ = "other"
		}
		status := "scanned"
		switch {
		case len(a.Unscannable) > 0:
			status = "unscannable"
		case !a.Scanned:
			status = "skipped"
		}
		m.attachments.WithLabelValues(typ, status).Inc()
	}
}
