package queueadmin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bccguard/bccguard/relay/dsn"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// MaxBulk is the most messages one `queue delete --all` deletes; a
// filter that matches more is refused (a dry run still lists them), so
// the queue is emptied in steps an operator has looked at.
const MaxBulk = 10000

// Statuses of a DeleteResult.
const (
	StatusDeleted     = "deleted"
	StatusWouldDelete = "would_delete" // a dry run
)

// deletedExplanation is the DSN's sentence for people.
const deletedExplanation = "An operator of this relay deleted it from the queue before it could be delivered; it will not be retried."

// DeleteOptions say how to delete.
type DeleteOptions struct {
	// DryRun only says what would be deleted.
	DryRun bool `json:"dry_run,omitempty"`
	// NotifySender sends the envelope sender a DSN (RFC 3464) for the
	// recipients who will not get the message and asked for failure
	// notices (NOTIFY); never for the null sender.
	NotifySender bool `json:"notify_sender,omitempty"`
}

// DeleteResult is what deleting one message did, or would do.
type DeleteResult struct {
	ID     string `json:"id"`
	Status string `json:"status,omitempty"` // StatusDeleted or StatusWouldDelete
	Sender string `json:"sender"`
	// Undelivered are the recipients of its unfinished deliveries: who
	// will not get it.
	Undelivered []string `json:"undelivered"`
	// NoticeID is the queue ID of the DSN sent to the sender.
	NoticeID string `json:"notice_id,omitempty"`
	// Note says why no DSN went although one was asked for.
	Note string `json:"note,omitempty"`
	// Error is set, in a bulk result, for a message that was not deleted.
	Error *review.Error `json:"error,omitempty"`
}

// Delete removes a queued message with all its deliveries and its body
// (postsuper -d), or with DryRun says what that would do.
func (s *Service) Delete(ctx context.Context, a review.Actor, id string, o DeleteOptions) (DeleteResult, error) {
	res, err := s.delete(ctx, a, id, o)
	if !o.DryRun {
		detail := []string{countText(len(res.Undelivered), "recipient", "recipients") + " not delivered"}
		if res.NoticeID != "" {
			detail = append(detail, "DSN queued as "+res.NoticeID)
		}
		s.record(ctx, a, "delete", id, err, append(detail, res.Note)...)
	}
	if err == nil && !o.DryRun {
		s.log.Info("queued message deleted", "queue_id", id, "actor", a.Name, "via", a.Via,
			"undelivered", len(res.Undelivered), "dsn_queue_id", res.NoticeID)
	}
	return res, err
}

func (s *Service) delete(ctx context.Context, a review.Actor, id string, o DeleteOptions) (DeleteResult, error) {
	res := DeleteResult{ID: id, Undelivered: []string{}}
	if err := authorize(a, true); err != nil {
		return res, err
	}
	if err := checkID(id); err != nil {
		return res, err
	}
	msg, ds, err := s.lookup(ctx, id)
	if err != nil {
		return res, err
	}
	res.Sender = msg.Envelope.Sender
	before := unfinished(ds)
	if o.DryRun {
		res.Status, res.Undelivered = StatusWouldDelete, recipientsOf(before)
		return res, nil
	}
	// The DSN quotes the original, which goes with the message: it is
	// written first and committed once the deletion is done.
	var n *notice
	if o.NotifySender {
		if n, res.Note = s.newNotice(ctx, msg, before, true); n != nil {
			defer n.sp.Abort()
		}
	}
	gone, err := s.st.DeleteQueued(ctx, id)
	if err != nil {
		return res, s.storeErr(ctx, err, id, "deleting")
	}
	res.Status, res.Undelivered = StatusDeleted, recipientsOf(gone)
	if !o.NotifySender {
		return res, nil
	}
	if n != nil && !slices.Equal(recipientsOf(n.ds), res.Undelivered) {
		// An attempt finished in between: the notice must name exactly
		// who did not get it, now without the original (RFC 3464 allows).
		n.sp.Abort()
		n, res.Note = s.newNotice(ctx, msg, gone, false)
		if n != nil {
			defer n.sp.Abort()
		}
	}
	if n == nil {
		return res, nil
	}
	nid, err := dsn.Commit(ctx, n.sp, msg.Envelope.Sender)
	if err != nil {
		// The deletion stands; the operator is told the DSN failed.
		s.log.Error("could not queue the DSN for a deleted message", "queue_id", id, "err", err)
		res.Note = "the DSN to the sender could not be queued"
		return res, nil
	}
	res.NoticeID = nid
	s.wake()
	return res, nil
}

// notice is a DSN written into a spool, waiting for its commit.
type notice struct {
	sp store.Spool
	ds []store.Delivery
}

// newNotice writes the DSN for the recipients of ds who asked for failure
// notices, quoting the original when withOriginal. It returns nil and a
// note when there is none to send.
func (s *Service) newNotice(ctx context.Context, m store.Message, ds []store.Delivery, withOriginal bool) (*notice, string) {
	if m.Envelope.Sender == "" {
		return nil, "the message has the null sender: no DSN"
	}
	rep := dsn.NewReport(s.hostname, m)
	rep.Explanation = deletedExplanation
	for _, d := range ds {
		for _, r := range d.Recipients {
			if dsn.ShouldNotify(r.Notify, "failed") {
				rep.Recipients = append(rep.Recipients, dsn.Failed(r))
			}
		}
	}
	if len(rep.Recipients) == 0 {
		return nil, "no recipient left asked for failure notices (NOTIFY): no DSN"
	}
	sp, _, err := s.st.NewSpool(ctx)
	if err != nil {
		s.log.Error("DSN for a deleted message: new spool", "queue_id", m.ID, "err", err)
		return nil, "the DSN to the sender could not be queued"
	}
	var orig io.Reader // nil: no third part
	if withOriginal {
		if rc, err := s.st.Open(ctx, m.ID); err == nil {
			defer rc.Close()
			orig = rc
		}
	}
	if werr := dsn.Write(sp, rep, orig); werr != nil {
		sp.Abort()
		s.log.Error("DSN for a deleted message: write", "queue_id", m.ID, "err", werr)
		return nil, "the DSN to the sender could not be queued"
	}
	return &notice{sp: sp, ds: ds}, ""
}

func unfinished(ds []store.Delivery) []store.Delivery {
	var out []store.Delivery
	for _, d := range ds {
		if d.State.Unfinished() {
			out = append(out, d)
		}
	}
	return out
}

func recipientsOf(ds []store.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		for _, r := range d.Recipients {
			out = append(out, r.Addr)
		}
	}
	return out
}

// DeleteRequest is the JSON body of POST /queue/delete: either IDs, or All
// with an optional filter (States, Sender).
type DeleteRequest struct {
	IDs []string `json:"ids,omitempty"`
	All bool     `json:"all,omitempty"`
	// States selects messages with a delivery in one of these states
	// (queued, deferred, held); Sender the exact envelope sender, "<>" for
	// the null sender. Both need All.
	States []store.State `json:"states,omitempty"`
	Sender string        `json:"sender,omitempty"`
	DeleteOptions
}

// BulkResult is what a DeleteRequest did, or with DryRun would do.
type BulkResult struct {
	DryRun    bool           `json:"dry_run"`
	Filter    string         `json:"filter"`
	Matched   int            `json:"matched"`
	Results   []DeleteResult `json:"results"`
	Succeeded int            `json:"succeeded"`
	Failed    int            `json:"failed"`
}

// filter checks the request and turns its selection into a store filter.
func (r DeleteRequest) filter() (store.QueueFilter, string, error) {
	var f store.QueueFilter
	switch {
	case r.All && len(r.IDs) > 0:
		return f, "", errorf(review.CodeBadRequest, "give message IDs or all, not both")
	case !r.All && len(r.IDs) == 0:
		return f, "", errorf(review.CodeBadRequest, "say which messages: message IDs, or all (with states and sender to narrow it)")
	case !r.All && (len(r.States) > 0 || r.Sender != ""):
		return f, "", errorf(review.CodeBadRequest, "states and sender select messages only with all")
	case !r.All:
		return f, "ids " + strings.Join(r.IDs, " "), nil
	}
	var desc []string
	for _, st := range r.States {
		if !st.Unfinished() {
			return f, "", errorf(review.CodeBadRequest, "state %q: queued messages are queued, deferred or held (finished deliveries leave the queue)", st)
		}
		f.States = append(f.States, st)
		desc = append(desc, "state="+string(st))
	}
	switch r.Sender {
	case "":
	case "<>":
		f.NullSender = true
		desc = append(desc, "sender=<>")
	default:
		f.Sender = r.Sender
		desc = append(desc, "sender="+r.Sender)
	}
	if len(desc) == 0 {
		return f, "all", nil
	}
	return f, "all " + strings.Join(desc, " "), nil
}

// BulkDelete deletes (or with DryRun lists) the messages of a request.
// Each message is deleted, and audited, as if one by one; a deletion of
// all that match a filter gets an audit entry of its own with the tally.
func (s *Service) BulkDelete(ctx context.Context, a review.Actor, r DeleteRequest) (BulkResult, error) {
	res := BulkResult{DryRun: r.DryRun, Results: []DeleteResult{}}
	f, desc, err := r.filter()
	res.Filter = desc
	if err == nil {
		err = authorize(a, true)
	}
	ids := r.IDs
	if err == nil && r.All {
		f.Limit = MaxBulk + 1
		if ids, err = s.st.QueuedMessages(ctx, f); err != nil {
			err = &review.Error{Code: review.CodeInternal, Message: "selecting the messages failed", Err: err}
		}
	}
	res.Matched = len(ids)
	if err == nil && len(ids) > MaxBulk && !r.DryRun {
		err = errorf(review.CodeTooMany, "the filter matches more than %d messages: narrow it (--state, --sender), or delete in steps", MaxBulk)
	}
	if err != nil {
		if r.All && !r.DryRun {
			s.record(ctx, a, "delete-all", desc, err)
		}
		return res, err
	}
	for _, id := range ids[:min(len(ids), MaxBulk)] {
		d, err := s.Delete(ctx, a, id, r.DeleteOptions)
		if err != nil {
			var e *review.Error
			if !errors.As(err, &e) {
				e = &review.Error{Code: review.CodeInternal, Message: "internal error"}
			}
			d.Error = &review.Error{Code: e.Code, Message: e.Message}
			d.Status = ""
			res.Failed++
		} else {
			res.Succeeded++
		}
		res.Results = append(res.Results, d)
	}
	if r.All && !r.DryRun {
		s.record(ctx, a, "delete-all", desc, nil, fmt.Sprintf("%d matched, %d deleted, %d failed", res.Matched, res.Succeeded, res.Failed))
	}
	return res, nil
}
