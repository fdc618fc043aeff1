package review

import (
	"context"
	"errors"
	"fmt"

	"github.com/bccguard/bccguard/relay/store"
)

// MaxBulk is the most holds one bulk action applies to; a filter that
// matches more is refused (CodeTooMany) so a slip cannot release the whole
// quarantine. A dry run still counts them all.
const MaxBulk = 5000

// Bulk actions.
const (
	BulkRelease = "release"
	BulkDelete  = "delete"
)

// BulkAction is what to do to every hold a bulk filter matches.
type BulkAction struct {
	Kind string // BulkRelease or BulkDelete
	// Release applies to BulkRelease; a recipient subset is refused (it
	// cannot fit every message).
	Release ReleaseOptions
	Delete  DeleteOptions
}

// BulkRequest is the JSON body of POST /quarantine/bulk.
type BulkRequest struct {
	Filter BulkFilter `json:"filter"`
	Action string     `json:"action"` // release or delete
	DryRun bool       `json:"dry_run,omitempty"`
	// For release:
	Rewrite string `json:"rewrite,omitempty"`
	Force   bool   `json:"force,omitempty"`
	// For delete:
	NotifySender bool `json:"notify_sender,omitempty"`
}

// Parse converts the request to Bulk's arguments.
func (r BulkRequest) Parse() (Filter, BulkAction, error) {
	f, err := r.Filter.Filter()
	return f, BulkAction{
		Kind:    r.Action,
		Release: ReleaseOptions{Rewrite: r.Rewrite, Force: r.Force},
		Delete:  DeleteOptions{NotifySender: r.NotifySender},
	}, err
}

// BulkResult is what Bulk did, or with DryRun would do.
type BulkResult struct {
	DryRun  bool   `json:"dry_run"`
	Action  string `json:"action"`
	Filter  string `json:"filter"`
	Matched int    `json:"matched"`
	// IDs are the matching holds (a dry run's answer), newest first.
	IDs []string `json:"ids,omitempty"`
	// Outcomes, one per hold acted on, and their tally.
	Outcomes  []BulkOutcome `json:"outcomes,omitempty"`
	Succeeded int           `json:"succeeded"`
	Failed    int           `json:"failed"`
}

// BulkOutcome is what happened to one hold.
type BulkOutcome struct {
	ID     string `json:"id"`
	Status string `json:"status,omitempty"` // released, deleted or needs_second_reviewer
	Error  *Error `json:"error,omitempty"`
}

// Bulk applies one action to every held message matching f (states and
// paging in f are ignored). With dryRun it only counts them. Each hold is
// acted on, and audited, as if one by one, and the bulk action itself gets
// an audit entry with the filter and the tally.
func (s *Service) Bulk(ctx context.Context, a Actor, f Filter, act BulkAction, dryRun bool) (BulkResult, error) {
	res := BulkResult{DryRun: dryRun, Action: act.Kind, Filter: f.String()}
	err := s.bulkCheck(a, f, act)
	if err == nil {
		res.IDs, res.Matched, err = s.matchHeld(ctx, f, dryRun)
	}
	if dryRun || err != nil {
		if err != nil {
			s.record(ctx, a, bulkAuditAction(act.Kind), res.Filter, err)
		}
		return res, err
	}
	for _, id := range res.IDs {
		o := BulkOutcome{ID: id}
		var err error
		if act.Kind == BulkRelease {
			var r ReleaseResult
			r, err = s.Release(ctx, a, id, act.Release)
			o.Status = r.Status
		} else {
			var r DeleteResult
			r, err = s.Delete(ctx, a, id, act.Delete)
			o.Status = r.Status
		}
		if err != nil {
			o.Status = ""
			o.Error = asError(err)
			res.Failed++
		} else {
			res.Succeeded++
		}
		res.Outcomes = append(res.Outcomes, o)
	}
	res.IDs = nil
	s.record(ctx, a, bulkAuditAction(act.Kind), res.Filter, nil,
		fmt.Sprintf("%d matched, %d done, %d failed", res.Matched, res.Succeeded, res.Failed))
	return res, nil
}

func (s *Service) bulkCheck(a Actor, f Filter, act BulkAction) error {
	if err := authorize(a, true); err != nil {
		return err
	}
	switch act.Kind {
	case BulkRelease:
		if len(act.Release.Recipients) > 0 {
			return errorf(CodeBadRequest, "a bulk release cannot choose recipients")
		}
		if act.Release.Rewrite == "" {
			act.Release.Rewrite = store.RewriteExplode.Name()
		}
		if _, err := act.Release.storeRewrite(); err != nil {
			return err
		}
	case BulkDelete:
	default:
		return errorf(CodeBadRequest, "unknown bulk action %q: release or delete", act.Kind)
	}
	if !f.narrowed() {
		return errorf(CodeBadRequest, "a bulk action needs a filter: rule, sender, client_ip, user or older_than")
	}
	return nil
}

// matchHeld returns the IDs of the held messages f matches and their
// count. IDs are collected before anything is acted on, since acting
// changes what later pages would hold.
func (s *Service) matchHeld(ctx context.Context, f Filter, dryRun bool) ([]string, int, error) {
	hf := f.storeFilter(s.now())
	hf.States = []store.HoldState{store.HoldHeld}
	hf.Offset, hf.Limit = 0, MaxLimit
	var ids []string
	total := 0
	for {
		hs, n, err := s.st.Holds(ctx, hf)
		if err != nil {
			return nil, 0, storeErr(err, "", "listing the quarantine")
		}
		total = n
		if total > MaxBulk && !dryRun {
			return nil, total, errorf(CodeTooMany, "the filter matches %d held messages, more than %d: narrow it", total, MaxBulk)
		}
		for _, h := range hs {
			ids = append(ids, h.Message.ID)
		}
		hf.Offset += len(hs)
		if len(hs) == 0 || hf.Offset >= total || len(ids) >= MaxBulk {
			return ids, total, nil
		}
	}
}

// bulkAuditAction names the action in the audit log and metrics; an
// unknown kind (a client's typo) must not become a metric label.
func bulkAuditAction(kind string) string {
	if kind == BulkRelease || kind == BulkDelete {
		return "bulk-" + kind
	}
	return "bulk"
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: e.Code, Message: e.Message}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}
