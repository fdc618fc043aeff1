package store

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidPlan: a plan of copies given to Commit or Release does not
// Validate. Nothing was stored. It is bccguard's own mistake, never the
// client's: the relay answers it with a temporary failure.
var ErrInvalidPlan = errors.New("store: invalid plan of copies")

// Rewrite says how a delivery's copy is rendered from the stored original.
// It is the one enum of how copies are made: the relay plans with it, the
// review service releases with it, the renderer reads it back. Its values
// are stored as they are (queued deliveries, approvals): never rename one.
type Rewrite string

// Rewrites.
const (
	RewritePass    Rewrite = "pass"    // unchanged but for Bcc: removal
	RewriteExplode Rewrite = "explode" // To: shows only this delivery's one recipient
	RewriteBcc     Rewrite = "bcc"     // To: undisclosed-recipients:;
)

// Rewrites lists every rewrite, in the order reviewers are offered them
// (the safest first).
func Rewrites() []Rewrite { return []Rewrite{RewriteExplode, RewriteBcc, RewritePass} }

// Valid reports whether r is one of Rewrites.
func (r Rewrite) Valid() bool { return slices.Contains(Rewrites(), r) }

// Name is the rewrite as people choose it (review API and pages, CLI): its
// stored value, but "as-is" for RewritePass, since a reviewer releasing a
// held message as it was shows its recipients to each other.
func (r Rewrite) Name() string {
	if r == RewritePass {
		return "as-is"
	}
	return string(r)
}

// RewriteNamed is the rewrite whose Name is name; false for any other
// name (the stored "pass" included: people say "as-is").
func RewriteNamed(name string) (Rewrite, bool) {
	for _, r := range Rewrites() {
		if r.Name() == name {
			return r, true
		}
	}
	return "", false
}

// NewDelivery is one delivery to create at Commit or Release: one copy of
// the message, made by Rewrite, for its recipients.
type NewDelivery struct {
	Recipients []Recipient `json:"recipients"`
	Rewrite    Rewrite     `json:"rewrite"`
}

// Validate reports why d cannot be queued, nil when it can: a known
// rewrite, at least one recipient, and exactly one for an explode (its
// copy's To: shows its one recipient).
func (d NewDelivery) Validate() error {
	switch {
	case !d.Rewrite.Valid():
		return fmt.Errorf("%w: unknown rewrite %q", ErrInvalidPlan, d.Rewrite)
	case len(d.Recipients) == 0:
		return fmt.Errorf("%w: no recipients", ErrInvalidPlan)
	case d.Rewrite == RewriteExplode && len(d.Recipients) != 1:
		return fmt.Errorf("%w: an explode copy for %d recipients", ErrInvalidPlan, len(d.Recipients))
	}
	return nil
}

// Plan is the copies to make of one message, one delivery each. An empty
// plan queues nothing (a hold, or a rejected message).
type Plan []NewDelivery

// PlanCopies is the plan of copies of rewrite rw to rcpts: one copy per
// recipient for an explode, one copy to all of them otherwise. Ingest and
// release both plan with it, so a decision and a reviewer's release of the
// same rewrite make the same copies.
func PlanCopies(rw Rewrite, rcpts []Recipient) Plan {
	if rw != RewriteExplode {
		return Plan{{Recipients: rcpts, Rewrite: rw}}
	}
	out := make(Plan, 0, len(rcpts))
	for _, r := range rcpts {
		out = append(out, NewDelivery{Recipients: []Recipient{r}, Rewrite: rw})
	}
	return out
}

// Validate reports the first delivery of p that does not Validate
// (wrapping ErrInvalidPlan), nil when every one does. Every backend calls
// it at Commit and Release, before storing anything.
func (p Plan) Validate() error {
	for i, d := range p {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("delivery %d: %w", i+1, err)
		}
	}
	return nil
}
