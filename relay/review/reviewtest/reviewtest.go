// Package reviewtest has what the tests of the review service, the review
// pages, the queue administration, the control socket and the command line
// all need: a review.Service over a real embedded store (NewService), a
// clock they can move, a way to put held messages in the store as the relay
// does, and API requests.
package reviewtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/storetest"
)

// Clock is the service's time, moved by tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at now, to the second.
func NewClock() *Clock { return &Clock{t: time.Now().UTC().Truncate(time.Second)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Hold commits raw as a quarantined message (msg.Quarantine set, no
// deliveries), as the relay does, and returns its ID. HeaderLen is taken
// from raw.
func Hold(t testing.TB, st store.Store, raw string, msg store.Message) string {
	t.Helper()
	msg.HeaderLen = int64(strings.Index(raw, "\r\n\r\n") + 4)
	return storetest.Put(t, st, []byte(raw), msg, nil)
}

// State is the state of hold id.
func State(t testing.TB, st store.QuarantineStore, id string) store.HoldState {
	t.Helper()
	h, err := st.Hold(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h.State
}

// Audit returns the audit entries about target, newest first.
func Audit(t testing.TB, st store.QuarantineStore, target string) []store.AuditEntry {
	t.Helper()
	es, err := st.Audit(context.Background(), store.AuditFilter{Target: target, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// APIRequest is a request to an API handler: body ("" for none) is sent
// as JSON.
func APIRequest(method, path, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}
