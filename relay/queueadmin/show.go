package queueadmin

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// StateFinished is the state `queue show` gives an envelope recipient no
// delivery holds any more: delivered or bounced in an earlier attempt of
// the group it was sent with (the group's record keeps only the
// recipients still to try), or left out of a quarantine release.
const StateFinished = "finished"

// Message is one queued message as `queue show` prints it: the envelope,
// who sent it, and each recipient's state.
type Message struct {
	ID         string         `json:"id"`
	ReceivedAt time.Time      `json:"received_at"`
	Size       int64          `json:"size"`
	Envelope   store.Envelope `json:"envelope"`
	Client     store.Client   `json:"client"`
	// Rule is the policy rule that decided the message ("" for the
	// default action); Released is set for a message released from the
	// quarantine.
	Rule     string `json:"rule,omitempty"`
	Released bool   `json:"released,omitempty"`
	// Recipients is one entry per envelope recipient, in envelope order.
	Recipients []RecipientState `json:"recipients"`
	// Deliveries are the message's deliveries (one per copy).
	Deliveries []store.Delivery `json:"deliveries"`
}

// RecipientState is where one recipient's copy is.
type RecipientState struct {
	Addr string `json:"addr"`
	// Delivery is the ID of the delivery carrying it ("" when finished).
	Delivery string `json:"delivery,omitempty"`
	// State is the delivery's state, or StateFinished.
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// LastReply is the last attempt's error or upstream reply.
	LastReply string `json:"last_reply,omitempty"`
	// NextAttempt is when it is tried next (queued and deferred only).
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// HeldSince is when an operator put it on hold.
	HeldSince *time.Time `json:"held_since,omitempty"`
}

// Show returns message id with its deliveries. A delivery ID shows the
// message it belongs to.
func (s *Service) Show(ctx context.Context, a review.Actor, id string) (Message, error) {
	if err := authorize(a, false); err != nil {
		return Message{}, err
	}
	id, _, _ = strings.Cut(id, ".")
	if err := checkID(id); err != nil {
		return Message{}, err
	}
	m, ds, err := s.lookup(ctx, id)
	if err != nil {
		return Message{}, err
	}
	return view(m, ds), nil
}

// lookup reads a queued message and its deliveries.
func (s *Service) lookup(ctx context.Context, id string) (store.Message, []store.Delivery, error) {
	m, err := s.st.Message(ctx, id)
	if err != nil {
		return m, nil, s.storeErr(ctx, err, id, "reading the message")
	}
	ds, err := s.st.List(ctx, store.Filter{MessageID: id})
	if err != nil {
		return m, nil, s.storeErr(ctx, err, id, "reading the deliveries")
	}
	if len(ds) == 0 && m.Quarantine != nil {
		return m, nil, s.storeErr(ctx, store.ErrNotQueued, id, "")
	}
	return m, ds, nil
}

func view(m store.Message, ds []store.Delivery) Message {
	out := Message{ID: m.ID, ReceivedAt: m.ReceivedAt, Size: m.Size, Envelope: m.Envelope, Client: m.Client,
		Released: m.Quarantine != nil, Deliveries: ds}
	if m.Quarantine != nil {
		out.Rule = m.Quarantine.Rule
	}
	if out.Deliveries == nil {
		out.Deliveries = []store.Delivery{}
	}
	// Envelope recipients are matched to deliveries by address, the same
	// address once per delivery that carries it.
	carried := map[string][]RecipientState{}
	for _, d := range ds {
		for _, r := range d.Recipients {
			rs := RecipientState{Addr: r.Addr, Delivery: d.ID, State: string(d.State), Attempts: d.Attempts, LastReply: d.LastError}
			switch d.State {
			case store.StateQueued, store.StateDeferred:
				t := d.NextAttempt
				rs.NextAttempt = &t
			case store.StateHeld:
				t := d.HeldSince
				rs.HeldSince = &t
			}
			k := strings.ToLower(r.Addr)
			carried[k] = append(carried[k], rs)
		}
	}
	for _, r := range m.Envelope.Recipients {
		k := strings.ToLower(r.Addr)
		if rs := carried[k]; len(rs) > 0 {
			out.Recipients = append(out.Recipients, rs[0])
			carried[k] = rs[1:]
			continue
		}
		out.Recipients = append(out.Recipients, RecipientState{Addr: r.Addr, State: StateFinished})
	}
	if out.Recipients == nil {
		out.Recipients = []RecipientState{}
	}
	return out
}

// Cat returns the stored original of a queued message (with bccguard's
// Received: field), as postcat -q does. Reading a message is audited.
func (s *Service) Cat(ctx context.Context, a review.Actor, id string) (io.ReadCloser, error) {
	rc, err := s.cat(ctx, a, id)
	s.record(ctx, a, "cat", id, err)
	return rc, err
}

func (s *Service) cat(ctx context.Context, a review.Actor, id string) (io.ReadCloser, error) {
	if err := authorize(a, true); err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	// A quarantined message is read through the quarantine, with its own
	// audit entry.
	if _, _, err := s.lookup(ctx, id); err != nil {
		return nil, err
	}
	rc, err := s.st.Open(ctx, id)
	if err != nil {
		return nil, s.storeErr(ctx, err, id, "opening the message")
	}
	return rc, nil
}

// List returns the deliveries matching f, oldest first (`queue list`).
func (s *Service) List(ctx context.Context, a review.Actor, f store.Filter) ([]store.Delivery, error) {
	if err := authorize(a, false); err != nil {
		return nil, err
	}
	ds, err := s.st.List(ctx, f)
	if err != nil {
		return nil, &review.Error{Code: review.CodeInternal, Message: "listing the queue failed", Err: err}
	}
	if ds == nil {
		ds = []store.Delivery{}
	}
	return ds, nil
}

// Flush makes the deferred deliveries matching f due now, as postqueue -f
// does, and returns how many.
func (s *Service) Flush(ctx context.Context, a review.Actor, f store.Filter) (int, error) {
	n, err := s.flush(ctx, a, f)
	target := "queue"
	if f.MessageID != "" {
		target = f.MessageID
	}
	s.record(ctx, a, "flush", target, err, countText(n, "delivery", "deliveries")+" made due")
	return n, err
}

func (s *Service) flush(ctx context.Context, a review.Actor, f store.Filter) (int, error) {
	if err := authorize(a, true); err != nil {
		return 0, err
	}
	n, err := s.st.Flush(ctx, f, s.now())
	if err != nil {
		return 0, &review.Error{Code: review.CodeInternal, Message: "flushing the queue failed", Err: err}
	}
	if n > 0 {
		s.wake()
	}
	return n, nil
}
