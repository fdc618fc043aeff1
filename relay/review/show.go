package review

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/policy/content"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
)

// Summary is one hold as List shows it.
type Summary struct {
	ID         string          `json:"id"`
	State      store.HoldState `json:"state"`
	ReceivedAt time.Time       `json:"received_at"`
	ExpiresAt  time.Time       `json:"expires_at"`
	Rule       string          `json:"rule"`
	Reason     string          `json:"reason"`
	Sender     string          `json:"sender"` // envelope sender, "" for <>
	Client     store.Client    `json:"client"`
	Size       int64           `json:"size"`
	// Recipients is the number of envelope recipients; Visible the number
	// of addresses its header shows (whom every copy would have shown).
	Recipients int `json:"recipients"`
	Visible    int `json:"visible"`
	// Subject and From are read from the stored header, best effort
	// (empty once the body is removed).
	Subject string `json:"subject,omitempty"`
	From    string `json:"from,omitempty"`
	// FourEyes: releasing needs two different reviewers.
	FourEyes   bool              `json:"four_eyes,omitempty"`
	Approvals  []store.Approval  `json:"approvals,omitempty"`
	Resolution *store.Resolution `json:"resolution,omitempty"`
}

// Page is one page of List.
type Page struct {
	Items  []Summary `json:"items"`
	Total  int       `json:"total"` // matches in all pages
	Offset int       `json:"offset"`
	Limit  int       `json:"limit"`
}

// HeaderField is one header field as stored: the name as written, the value
// unfolded, RFC 2047-decoded and stripped of control characters.
type HeaderField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// VisibleCounts summarise whom the message would have exposed.
type VisibleCounts struct {
	To    int `json:"to"`
	Cc    int `json:"cc"`
	Total int `json:"total"`
	// Domains counts the distinct domains; TopDomains lists the most
	// frequent ones (at most 20).
	Domains    int           `json:"domains"`
	TopDomains []DomainCount `json:"top_domains,omitempty"`
}

// DomainCount is how many visible addresses are at one domain.
type DomainCount struct {
	Domain string `json:"domain"`
	Count  int    `json:"count"`
}

// Detail is one hold as Show shows it: everything a reviewer needs to
// decide, and nothing rendered (the preview is plain text).
type Detail struct {
	Summary
	Figures map[string]int `json:"figures,omitempty"`
	// Contains is what the body and attachments hold: per part its type
	// and counts by kind, with a few masked samples.
	Contains           *content.Report          `json:"contains,omitempty"`
	EnvelopeRecipients []string                 `json:"envelope_recipients"`
	VisibleRecipients  []store.VisibleRecipient `json:"visible_recipients"`
	VisibleCounts      VisibleCounts            `json:"visible_counts"`
	Date               string                   `json:"date,omitempty"`
	MessageID          string                   `json:"message_id,omitempty"`
	Header             []HeaderField            `json:"header"`
	// HeaderTruncated: the header block had more than Show reads.
	HeaderTruncated bool `json:"header_truncated,omitempty"`
	// BodyAvailable is false once a deleted or expired hold's body is gone.
	BodyAvailable bool    `json:"body_available"`
	Preview       Preview `json:"preview"`
}

// Bounds of what Show reads from a stored message, so a hostile message
// cannot make a reviewer's page slow or huge.
const (
	maxHeaderRead   = 256 << 10
	maxHeaderFields = 300
	maxFieldValue   = 2000 // bytes of one decoded value
	listHeaderRead  = 64 << 10
)

// List returns one page of holds matching f, newest first.
func (s *Service) List(ctx context.Context, a Actor, f Filter) (Page, error) {
	if err := authorize(a, false); err != nil {
		return Page{}, err
	}
	f.Limit = f.limit()
	hs, total, err := s.st.Holds(ctx, f.storeFilter(s.now()))
	if err != nil {
		return Page{}, storeErr(err, "", "listing the quarantine")
	}
	p := Page{Items: make([]Summary, 0, len(hs)), Total: total, Offset: f.Offset, Limit: f.Limit}
	for _, h := range hs {
		sum := s.summary(h)
		if h.State == store.HoldHeld {
			if fs, _, err := s.readHeader(ctx, h.Message, listHeaderRead); err == nil {
				sum.Subject, sum.From = first(fs, "Subject"), first(fs, "From")
			}
		}
		sum.neutralize()
		p.Items = append(p.Items, sum)
	}
	return p, nil
}

// show is Show before neutralisation (display.go).
func (s *Service) show(ctx context.Context, a Actor, id string) (Detail, error) {
	if err := authorize(a, false); err != nil {
		return Detail{}, err
	}
	h, err := s.getHold(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	m := h.Message
	d := Detail{Summary: s.summary(h), VisibleRecipients: []store.VisibleRecipient{}, Header: []HeaderField{}}
	for _, r := range m.Envelope.Recipients {
		d.EnvelopeRecipients = append(d.EnvelopeRecipients, r.Addr)
	}
	if q := m.Quarantine; q != nil {
		d.Figures = q.Figures
		d.Contains = q.Content
		if q.Visible != nil {
			d.VisibleRecipients = q.Visible
		}
	}
	d.VisibleCounts = countVisible(d.VisibleRecipients)

	fields, truncated, err := s.readHeader(ctx, m, maxHeaderRead)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Deleted, expired, or released and delivered: the body is gone.
		d.Preview.Note = "the message body is no longer stored"
		return d, nil
	case err != nil:
		return Detail{}, storeErr(err, id, "reading the message")
	}
	d.BodyAvailable = true
	d.Header, d.HeaderTruncated = fields, truncated
	d.Subject, d.From = first(fields, "Subject"), first(fields, "From")
	d.Date, d.MessageID = first(fields, "Date"), first(fields, "Message-Id")
	rc, err := s.st.Open(ctx, m.ID)
	if err != nil {
		d.Preview.Note = "the message body could not be read"
		s.log.Warn("quarantine preview: open failed", "queue_id", m.ID, "err", err)
		return d, nil
	}
	defer rc.Close()
	d.Preview = preview(rc)
	return d, nil
}

// Raw returns the stored message as received (with bccguard's Received:
// header first), for download as .eml. Downloads are audited: the raw
// message holds every recipient the policy kept from leaking.
func (s *Service) Raw(ctx context.Context, a Actor, id string) (io.ReadCloser, error) {
	rc, err := s.raw(ctx, a, id)
	s.record(ctx, a, "download", id, err)
	return rc, err
}

func (s *Service) raw(ctx context.Context, a Actor, id string) (io.ReadCloser, error) {
	if err := authorize(a, false); err != nil {
		return nil, err
	}
	h, err := s.getHold(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, err := s.st.Open(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeGone, "the body of message %s is no longer stored (%s)", id, h.State)
	}
	if err != nil {
		return nil, storeErr(err, id, "opening the message")
	}
	return rc, nil
}

func (s *Service) summary(h store.Hold) Summary {
	m := h.Message
	sum := Summary{
		ID: m.ID, State: h.State, ReceivedAt: m.ReceivedAt, ExpiresAt: s.expiresAt(m),
		Sender: m.Envelope.Sender, Client: m.Client, Size: m.Size,
		Recipients: len(m.Envelope.Recipients),
		Approvals:  h.Approvals, Resolution: h.Resolution,
	}
	if q := m.Quarantine; q != nil {
		sum.Rule, sum.Reason, sum.Visible = q.Rule, q.Reason, len(q.Visible)
		sum.FourEyes = s.fourEyes[q.Rule]
	}
	return sum
}

func countVisible(vs []store.VisibleRecipient) VisibleCounts {
	c := VisibleCounts{Total: len(vs)}
	domains := map[string]int{}
	for _, v := range vs {
		switch v.Field {
		case "to":
			c.To++
		case "cc":
			c.Cc++
		}
		if _, d, ok := strings.Cut(v.Address, "@"); ok {
			domains[strings.ToLower(d)]++
		}
	}
	c.Domains = len(domains)
	for d, n := range domains {
		c.TopDomains = append(c.TopDomains, DomainCount{d, n})
	}
	slices.SortFunc(c.TopDomains, func(a, b DomainCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Domain, b.Domain))
	})
	if len(c.TopDomains) > 20 {
		c.TopDomains = c.TopDomains[:20]
	}
	return c
}

// readHeader reads and parses the stored header block, at most limit
// bytes of it.
func (s *Service) readHeader(ctx context.Context, m store.Message, limit int64) ([]HeaderField, bool, error) {
	rc, err := s.st.Open(ctx, m.ID)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	n, truncated := m.HeaderLen, false
	if n <= 0 || n > limit {
		n, truncated = limit, m.HeaderLen > limit
	}
	b, err := io.ReadAll(io.LimitReader(rc, n))
	if err != nil {
		return nil, false, err
	}
	fields, more := parseHeader(b)
	return fields, truncated || more, nil
}

// parseHeader reads a stored header block (bccguard's Received: first, then
// the original) into decoded fields with mailhdr, the reader the policy and
// the copies use, so that a reviewer sees the fields the policy saw: a
// malformed, truncated or odd header (an mbox "From " line, a stray line, a
// first line starting with white space) shows what it does contain, such a
// line as a field without a name. The second result is true when fields
// were dropped over the cap.
func parseHeader(b []byte) ([]HeaderField, bool) {
	own, orig := rewrite.SplitStored(b)
	fields := mailhdr.Split(own).Fields
	fields = append(fields, mailhdr.Split(orig).Fields...)
	more := len(fields) > maxHeaderFields
	if more {
		fields = fields[:maxHeaderFields]
	}
	out := make([]HeaderField, len(fields))
	for i, f := range fields {
		out[i] = HeaderField{Name: oneLine(f.Name, 100), Value: oneLine(mailhdr.Decode(f.Body()), maxFieldValue)}
	}
	return out, more
}

// first returns the value of the first field named name.
func first(fs []HeaderField, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}
