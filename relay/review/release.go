package review

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/rewrite/edits"
	"github.com/bccguard/bccguard/relay/store"
)

// Statuses of action results.
const (
	StatusReleased            = "released"
	StatusDeleted             = "deleted"
	StatusNeedsSecondReviewer = string(CodeNeedsSecondReviewer) // an approval was recorded
)

// ReleaseOptions say how to release. The zero value releases as explode to
// every envelope recipient.
type ReleaseOptions struct {
	// Rewrite is the store.Rewrite's Name: "explode" (the default, and
	// what expiry releases as), "bcc", or "as-is" (the message as it was
	// but for Bcc: removal, recipient list and all: only with Force, and
	// audited as forced).
	Rewrite string `json:"rewrite,omitempty"`
	// Recipients, if set, releases to these envelope recipients only; each
	// must be one of the message's envelope recipients.
	Recipients []string `json:"recipients,omitempty"`
	// Force is required to release as-is, and to release copies that
	// would still show other recipients (CodeUnsafeCopy).
	Force bool `json:"force,omitempty"`
}

// ReleaseResult is what Release did.
type ReleaseResult struct {
	ID string `json:"id"`
	// Status is StatusReleased, or StatusNeedsSecondReviewer when the hold
	// is under the four-eyes rule and this was the first approval.
	Status     string           `json:"status"`
	Rewrite    string           `json:"rewrite"` // as in ReleaseOptions
	Deliveries int              `json:"deliveries"`
	Recipients int              `json:"recipients"`
	Forced     bool             `json:"forced,omitempty"`
	Approvals  []store.Approval `json:"approvals,omitempty"`
}

// Release releases a held message. Under the four-eyes rule the first
// reviewer's release only records an approval (Status
// StatusNeedsSecondReviewer); a release by a different reviewer with the
// same rewrite completes it, and the same reviewer again gets an error with
// CodeNeedsSecondReviewer.
func (s *Service) Release(ctx context.Context, a Actor, id string, o ReleaseOptions) (ReleaseResult, error) {
	if o.Rewrite == "" {
		o.Rewrite = store.RewriteExplode.Name()
	}
	res, action, detail, err := s.release(ctx, a, id, o)
	s.record(ctx, a, action, id, err, detail...)
	if err == nil && res.Status == StatusReleased {
		s.wake()
		s.log.Info("quarantined message released", "queue_id", id, "actor", a.Name, "via", a.Via,
			"rewrite", string(res.Rewrite), "deliveries", res.Deliveries, "forced", res.Forced)
	}
	return res, err
}

// release does the work of Release and returns the audit action and detail.
func (s *Service) release(ctx context.Context, a Actor, id string, o ReleaseOptions) (ReleaseResult, string, []string, error) {
	action := "release-" + o.Rewrite
	res := ReleaseResult{ID: id, Rewrite: o.Rewrite}
	if err := authorize(a, true); err != nil {
		return res, "release", nil, err
	}
	rw, err := o.storeRewrite()
	if err != nil {
		return res, "release", nil, err
	}
	h, err := s.getHold(ctx, id)
	if err != nil {
		return res, action, nil, err
	}
	if h.State != store.HoldHeld {
		return res, action, nil, notHeld(h)
	}
	rcpts, err := pickRecipients(h.Message.Envelope.Recipients, o.Recipients)
	if err != nil {
		return res, action, nil, err
	}
	detail := []string{fmt.Sprintf("%d of %d recipients", len(rcpts), len(h.Message.Envelope.Recipients))}
	if rw == store.RewritePass {
		res.Forced = true
		detail = append(detail, "forced: released as-is, recipient list visible")
	} else {
		// The copies are checked with the table that renders them (a
		// field they cannot clean that shows another recipient) and
		// against what the body shows, which no rewrite changes.
		why, err := s.unsafeCopies(ctx, h.Message, rw, rcpts)
		if err != nil {
			return res, action, nil, err
		}
		switch {
		case why != "" && !o.Force:
			return res, action, nil, errorf(CodeUnsafeCopy,
				"releasing %s as %s would not hide the recipients: %s; release it with force to send these copies anyway, or delete it", id, o.Rewrite, why)
		case why != "":
			res.Forced = true
			detail = append(detail, "forced: the copies still show other recipients")
		}
	}

	if rule := ruleOf(h.Message); s.fourEyes[rule] {
		other := slices.IndexFunc(h.Approvals, func(p store.Approval) bool { return p.Actor != a.Name && p.Rewrite == rw })
		if other < 0 {
			res.Approvals = h.Approvals
			if slices.ContainsFunc(h.Approvals, func(p store.Approval) bool { return p.Actor == a.Name && p.Rewrite == rw }) {
				return res, "approve", detail, errorf(CodeNeedsSecondReviewer,
					"you already approved releasing %s as %s; under the four-eyes rule for %q a different reviewer must release it", id, o.Rewrite, rule)
			}
			c := s.change(ctx, h, notify.EventNeedsSecondReviewer, a, "approve")
			c.Approvals = len(h.Approvals) + 1
			ns := s.notices(c)
			h2, err := s.st.Approve(ctx, id, store.Approval{Actor: a.Name, At: s.now(), Rewrite: rw}, ns...)
			if err != nil {
				return res, "approve", detail, storeErr(err, id, "recording the approval")
			}
			s.notified(ns)
			res.Status, res.Approvals = StatusNeedsSecondReviewer, h2.Approvals
			return res, "approve", append(detail, "four-eyes rule "+rule+": awaiting a second reviewer"), nil
		}
		detail = append(detail, "four-eyes: approved by "+h.Approvals[other].Actor)
	}

	deliveries := store.PlanCopies(rw, rcpts)
	r := store.Resolution{Actor: a.Name, At: s.now(), Action: action}
	if len(o.Recipients) > 0 {
		for _, x := range rcpts {
			r.Recipients = append(r.Recipients, x.Addr)
		}
	}
	if res.Forced {
		r.Note = "forced"
	}
	ns := s.notices(s.change(ctx, h, notify.EventReleased, a, action))
	if err := s.st.Release(ctx, id, deliveries, r, ns...); err != nil {
		return res, action, detail, storeErr(err, id, "releasing")
	}
	s.notified(ns)
	res.Status, res.Deliveries, res.Recipients = StatusReleased, len(deliveries), len(rcpts)
	res.Approvals = h.Approvals
	return res, action, append(detail, fmt.Sprintf("%d deliveries queued", len(deliveries))), nil
}

// storeRewrite is the rewrite o names; as-is needs Force.
func (o ReleaseOptions) storeRewrite() (store.Rewrite, error) {
	rw, ok := store.RewriteNamed(o.Rewrite)
	switch {
	case !ok:
		return "", errorf(CodeBadRequest, "unknown rewrite %q: explode, bcc or as-is", o.Rewrite)
	case rw == store.RewritePass && !o.Force:
		return "", errorf(CodeBadRequest, "releasing as-is shows every recipient to every other: it needs force")
	}
	return rw, nil
}

// pickRecipients returns the envelope recipients to release to: all of
// them, or the chosen subset (each given once, in envelope order). Only
// envelope recipients can be chosen: a release must never add one.
func pickRecipients(env []store.Recipient, chosen []string) ([]store.Recipient, error) {
	if len(chosen) == 0 {
		return env, nil
	}
	want := map[string]bool{}
	for _, c := range chosen {
		want[strings.ToLower(strings.TrimSpace(c))] = true
	}
	var out []store.Recipient
	for _, r := range env {
		k := strings.ToLower(r.Addr)
		if want[k] {
			out = append(out, r)
			delete(want, k)
		}
	}
	if len(want) > 0 {
		var missing []string
		for k := range want {
			missing = append(missing, k)
		}
		slices.Sort(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], "...")
		}
		return nil, errorf(CodeBadRequest, "not envelope recipients of this message: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// unsafeCopies says why the copies of m that rewrite rw makes for rcpts
// would still show other recipients ("" when they would not): by what the
// body shows (recorded at the hold; explode and bcc change only the
// header, so the one safe rewritten release of such a message is to the
// one recipient the body shows, alone), then by the rewrite's own table.
func (s *Service) unsafeCopies(ctx context.Context, m store.Message, rw store.Rewrite, rcpts []store.Recipient) (string, error) {
	if why := bodyShowsOthers(m.Quarantine, rcpts); why != "" {
		return why, nil
	}
	rc, err := s.st.Open(ctx, m.ID)
	if err != nil {
		return "", storeErr(err, m.ID, "reading the message")
	}
	defer rc.Close()
	src, err := rewrite.ReadSource(rc, m)
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "reading the message failed", Err: err}
	}
	addrs := make([]string, len(rcpts))
	for i, r := range rcpts {
		addrs[i] = r.Addr
	}
	return edits.Unsafe(src.Header(), src.People(), rw, addrs), nil
}

// bodyShowsOthers says why a copy to one of rcpts would show another
// recipient in the body or an attachment, "" when none would.
func bodyShowsOthers(q *store.Quarantine, rcpts []store.Recipient) string {
	if q == nil || len(q.BodyShows) == 0 {
		return ""
	}
	if len(rcpts) == 1 && len(q.BodyShows) == 1 && strings.EqualFold(q.BodyShows[0], rcpts[0].Addr) {
		return ""
	}
	return fmt.Sprintf("the body or an attachment shows %d of the recipients", len(q.BodyShows))
}
