package review

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/bccguard/bccguard/relay/store"
)

// Paging limits of Audit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Audit lists audit entries matching f, newest first (Limit 0:
// DefaultAuditLimit; at most MaxAuditLimit).
func (s *Service) Audit(ctx context.Context, a Actor, f store.AuditFilter) ([]store.AuditEntry, error) {
	if err := authorize(a, false); err != nil {
		return nil, err
	}
	switch {
	case f.Limit <= 0:
		f.Limit = DefaultAuditLimit
	case f.Limit > MaxAuditLimit:
		f.Limit = MaxAuditLimit
	}
	es, err := s.st.Audit(ctx, f)
	if err != nil {
		return nil, storeErr(err, "", "reading the audit log")
	}
	if es == nil {
		es = []store.AuditEntry{}
	}
	return es, nil
}

// ExportAudit writes every audit entry matching f (its Offset and Limit
// are ignored) to w as JSON lines, newest first. The export is itself
// audited, once it is written.
func (s *Service) ExportAudit(ctx context.Context, a Actor, w io.Writer, f store.AuditFilter) error {
	n, err := s.exportAudit(ctx, a, w, f)
	s.record(ctx, a, "audit-export", "audit", err, fmt.Sprintf("%d entries", n))
	return err
}

func (s *Service) exportAudit(ctx context.Context, a Actor, w io.Writer, f store.AuditFilter) (int, error) {
	if err := authorize(a, false); err != nil {
		return 0, err
	}
	enc := json.NewEncoder(w)
	f.Offset, f.Limit = 0, MaxAuditLimit
	n := 0
	var last int64 // ID of the last entry written
	for {
		es, err := s.st.Audit(ctx, f)
		if err != nil {
			return n, storeErr(err, "", "reading the audit log")
		}
		for _, e := range es {
			// Entries added during the export shift the pages by as many;
			// IDs only grow, so anything not older than the last written
			// was written already.
			if last != 0 && e.ID != 0 && e.ID >= last {
				continue
			}
			if err := enc.Encode(e); err != nil {
				return n, &Error{Code: CodeInternal, Message: "writing the export", Err: err}
			}
			n++
			last = e.ID
		}
		if len(es) < f.Limit {
			return n, nil
		}
		f.Offset += len(es)
	}
}
