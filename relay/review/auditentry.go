package review

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// NewAuditEntry is the audit entry of an action by a on target at at:
// outcome "ok" or err's code, and a detail saying where the action came
// from ("via cli"), then detail, then why it failed. Every action's entry
// is made here, the queue commands' too, so the log reads the same for all.
func NewAuditEntry(at time.Time, a Actor, action, target string, err error, detail ...string) store.AuditEntry {
	outcome := "ok"
	if err != nil {
		outcome = string(CodeOf(err))
	}
	d := make([]string, 0, len(detail)+2)
	if a.Via != "" {
		d = append(d, "via "+a.Via)
	}
	for _, x := range detail {
		if x != "" {
			d = append(d, x)
		}
	}
	var e *Error
	if errors.As(err, &e) {
		d = append(d, e.Message)
	}
	return store.AuditEntry{At: at, Actor: a.Name, Action: action, Target: target, Outcome: outcome, Detail: strings.Join(d, "; ")}
}

// AddAudit writes e. The entry outlives the request: a client that hangs
// up must not leave an action unaudited.
func AddAudit(ctx context.Context, st store.QuarantineStore, e store.AuditEntry) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return st.AddAudit(actx, e)
}
