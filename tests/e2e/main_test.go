// Package e2e runs the real bccguard binary between real SMTP clients and
// servers on loopback: go-smtp's client and server (through tests/harness),
// and peers that share no code with bccguard: Postfix's smtp-source and
// smtp-sink, swaks, Perl's Net::SMTP and Postfix itself as a client.
// scripts/install-test-deps.sh installs those.
package e2e

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { harness.Main(m) }

// Deadlines for waiting on the relay. Retries in test configs are 1–2 s
// apart, so these are far above what a working relay needs.
const (
	deliverTimeout = 60 * time.Second
	queueTimeout   = 30 * time.Second
)

var queuedAs = regexp.MustCompile(`queued as <?([A-Za-z0-9._:+=/-]+)>?`)

// queueID checks that an end-of-DATA reply reads "2.0.0 … queued as ID" and
// returns the ID.
func queueID(t *testing.T, reply string) string {
	t.Helper()
	m := queuedAs.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("end of DATA reply %q: want \"250 2.0.0 … queued as <ID>\"", reply)
	}
	return m[1]
}

// relayedCopy checks that got is want as relayed: its header block is one
// Received: field followed by wantHeader byte for byte, and its body is
// wantBody byte for byte.
func relayedCopy(t *testing.T, got *smtptest.Message, wantHeader, wantBody []byte) {
	t.Helper()
	fields := harness.Fields(got.Header)
	if len(fields) == 0 || fields[0].Name != "Received" {
		t.Fatalf("relayed header does not start with Received:\n%s", got.Header)
	}
	recv := fields[0].Raw
	if !bytes.Contains(recv, []byte(harness.Hostname)) {
		t.Errorf("Received: field does not name the relay (%s): %q", harness.Hostname, recv)
	}
	if rest := got.Header[len(recv):]; !bytes.Equal(rest, wantHeader) {
		t.Errorf("header block after Received: differs\n--- got\n%s\n--- want\n%s", rest, wantHeader)
	}
	if got.Data != nil {
		if !bytes.Equal(got.Body(), wantBody) {
			t.Errorf("body differs (%d bytes, want %d)\n--- got\n%q\n--- want\n%q", len(got.Body()), len(wantBody), got.Body(), wantBody)
		}
	}
}

// waitQueue polls `bccguard queue list --json` until cond holds.
func waitQueue(t *testing.T, r *harness.Relay, what string, cond func([]harness.QueueEntry) bool) []harness.QueueEntry {
	t.Helper()
	var last []harness.QueueEntry
	deadline := time.Now().Add(queueTimeout)
	for {
		last = r.Queue()
		if cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for the queue to show %s; last listing: %+v", queueTimeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// pending counts queued or deferred deliveries.
func pending(q []harness.QueueEntry) int {
	return harness.CountState(q, "queued") + harness.CountState(q, "deferred")
}

func itoa(n int) string { return strconv.Itoa(n) }

func bytesReader(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }

// bcryptHash hashes password as `htpasswd -nBC 10` does.
func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
