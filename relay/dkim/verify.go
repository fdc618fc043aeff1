package dkim

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
)

// Defaults of a Verifier.
const (
	// DefaultTimeout bounds the DNS lookups of one message's verification
	// and the wait for its outcome after the message has ended.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxSignatures bounds the signatures checked per message (each
	// costs a DNS lookup and a pass over the body); more are ignored.
	DefaultMaxSignatures = 8
)

// LookupTXT returns the TXT records of name, one string per record (a
// record's strings joined), as net.Resolver.LookupTXT does.
type LookupTXT func(ctx context.Context, name string) ([]string, error)

// Verifier checks the DKIM signatures of incoming messages.
type Verifier struct {
	// Lookup finds the public keys; see NewLookup.
	Lookup LookupTXT
	// Timeout and MaxSignatures default to DefaultTimeout and
	// DefaultMaxSignatures when zero.
	Timeout       time.Duration
	MaxSignatures int
}

// Check is the verification of one message in progress. The message is
// written to it as it arrives (header block first, exactly as received);
// Result ends it.
type Check struct {
	pw      *io.PipeWriter
	pr      *io.PipeReader
	cancel  context.CancelFunc
	timeout time.Duration
	done    chan Result

	mu      sync.Mutex
	dropped bool // writes are discarded: the verification gave up or ended
}

// Start begins a verification. The lookups it makes are bounded by the
// Verifier's timeout from now, and by ctx.
func (v *Verifier) Start(ctx context.Context) *Check {
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	max := v.MaxSignatures
	if max <= 0 {
		max = DefaultMaxSignatures
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	pr, pw := io.Pipe()
	c := &Check{pw: pw, pr: pr, cancel: cancel, timeout: timeout, done: make(chan Result, 1)}
	lookup := v.Lookup
	go func() {
		verifs, err := dkim.VerifyWithOptions(pr, &dkim.VerifyOptions{
			MaxVerifications: max,
			LookupTXT: func(name string) ([]string, error) {
				return lookup(ctx, name)
			},
		})
		// go-msgauth stops reading once it has what it needs (right after
		// the header when there is no signature): take the rest, so that
		// the message's own stream never waits on this one.
		_, _ = io.Copy(io.Discard, pr)
		c.done <- newResult(verifs, err)
	}()
	return c
}

// Write passes p on to the verification. It never fails and never holds
// the caller up for longer than the lookups' time bound: it is a tee on the
// way to the spool, and a verification that gives up must not cost the
// message.
func (c *Check) Write(p []byte) (int, error) {
	c.mu.Lock()
	dropped := c.dropped
	c.mu.Unlock()
	if dropped {
		return len(p), nil
	}
	if _, err := c.pw.Write(p); err != nil {
		c.mu.Lock()
		c.dropped = true
		c.mu.Unlock()
	}
	return len(p), nil
}

// Result ends the message and returns the outcome. If the verification
// has not finished within the time bound after the end of the message, it
// is abandoned as a temporary error.
func (c *Check) Result() Result {
	defer c.cancel()
	_ = c.pw.Close()
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case r := <-c.done:
		return r
	case <-t.C:
		c.mu.Lock()
		c.dropped = true
		c.mu.Unlock()
		_ = c.pr.CloseWithError(errors.New("dkim: verification timed out"))
		return Result{Signatures: []SignatureResult{{Value: authres.ResultTempError, Reason: "verification timed out"}}}
	}
}

// Abort ends a verification whose result is not wanted (the message was
// refused on the way).
func (c *Check) Abort() {
	c.cancel()
	c.mu.Lock()
	c.dropped = true
	c.mu.Unlock()
	_ = c.pr.CloseWithError(errors.New("dkim: verification aborted"))
	_ = c.pw.Close()
}

// Result is the outcome of one message's verification.
type Result struct {
	// Signatures has one entry per signature checked; none when the
	// message had no signature.
	Signatures []SignatureResult
}

// SignatureResult is the outcome for one signature.
type SignatureResult struct {
	Domain     string // d=
	Identifier string // i=, or "@" + d= when absent
	// Value is pass, fail (the signature or body hash does not match),
	// temperror (the key could not be looked up now) or permerror (a
	// malformed signature, a missing or revoked key).
	Value  authres.ResultValue
	Reason string
}

func newResult(verifs []*dkim.Verification, err error) Result {
	var r Result
	for _, v := range verifs {
		sr := SignatureResult{Domain: strings.ToLower(v.Domain), Identifier: v.Identifier, Value: authres.ResultPass}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			sr.Value = authres.ResultTempError
		case dkim.IsPermFail(v.Err):
			sr.Value = authres.ResultPermError
		default:
			sr.Value = authres.ResultFail
		}
		if v.Err != nil {
			sr.Reason = strings.TrimPrefix(v.Err.Error(), "dkim: ")
		}
		r.Signatures = append(r.Signatures, sr)
	}
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) && len(r.Signatures) == 0 {
		// The header could not be read at all, or the stream was cut.
		r.Signatures = []SignatureResult{{Value: authres.ResultPermError, Reason: strings.TrimPrefix(err.Error(), "dkim: ")}}
	}
	return r
}

// Valid reports whether at least one signature verified.
func (r Result) Valid() bool { return len(r.Domains()) > 0 }

// Domains lists the distinct d= domains of the signatures that verified,
// sorted.
func (r Result) Domains() []string {
	var out []string
	for _, s := range r.Signatures {
		if s.Value == authres.ResultPass && s.Domain != "" && !slices.Contains(out, s.Domain) {
			out = append(out, s.Domain)
		}
	}
	slices.Sort(out)
	return out
}

// Values lists the result of each signature, or "none" for a message
// without one: what the verification metric counts.
func (r Result) Values() []string {
	if len(r.Signatures) == 0 {
		return []string{string(authres.ResultNone)}
	}
	out := make([]string, len(r.Signatures))
	for i, s := range r.Signatures {
		out[i] = string(s.Value)
	}
	return out
}

// Field formats the Authentication-Results: field (RFC 8601) that records
// the result under authservID, folded one result per line, ending in CRLF.
func (r Result) Field(authservID string) string {
	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(authservID)
	if len(r.Signatures) == 0 {
		b.WriteString(";\r\n\tdkim=none\r\n")
		return b.String()
	}
	for _, s := range r.Signatures {
		res := &authres.DKIMResult{Value: s.Value, Reason: clean(s.Reason), Domain: clean(s.Domain), Identifier: clean(s.Identifier)}
		// Format prefixes the authserv-id; one result at a time keeps the
		// folding between results, never inside a quoted reason.
		one := strings.TrimPrefix(authres.Format(authservID, []authres.Result{res}), authservID+"; ")
		b.WriteString(";\r\n\t")
		b.WriteString(strings.TrimSpace(one))
	}
	b.WriteString("\r\n")
	return b.String()
}

// clean keeps a value printable, on one line and short: reasons, domains
// and identifiers all come from parsing what the sender wrote.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 32 || r > 126 {
			return -1
		}
		return r
	}, s)
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}
