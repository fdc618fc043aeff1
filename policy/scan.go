package policy

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/bccguard/bccguard/policy/content"
)

// MaxBodyAddresses is the most distinct values of one kind the Scanner
// counts; beyond it the result is Truncated ("at least this many").
const MaxBodyAddresses = content.MaxDistinct

var errScanDone = errors.New("scanner finished")

// ScanResult is what the Scanner found in a message's body and
// attachments (the message's own header excluded).
type ScanResult struct {
	// Addresses, Phones, Cards, IBANs and Records are distinct over the
	// whole message, in every format the scan reads.
	Addresses int `json:"addresses"`
	Phones    int `json:"phones,omitempty"`
	Cards     int `json:"cards,omitempty"`
	IBANs     int `json:"ibans,omitempty"`
	Records   int `json:"records,omitempty"`
	// Truncated means a kind reached MaxBodyAddresses: its count means
	// "at least".
	Truncated bool `json:"truncated,omitempty"`
	// Err describes a MIME structure the scan could not follow; the rest
	// of the message was then scanned as raw text. Informational.
	Err string `json:"error,omitempty"`
	// Content is the breakdown by part, with masked samples only.
	Content *content.Report `json:"content,omitempty"`
	// RecipientsShown are indexes into the Watch the Scanner was given:
	// the watched recipients the body showed, by address or by name;
	// sorted, distinct.
	RecipientsShown     []int `json:"recipients_shown,omitempty"`
	RecipientsByAddress int   `json:"recipients_by_address,omitempty"`
	RecipientsByName    int   `json:"recipients_by_name,omitempty"`
}

// Unscannable lists what could not be inspected.
func (r ScanResult) Unscannable() []content.Unscannable {
	if r.Content == nil {
		return nil
	}
	return r.Content.Unscannable()
}

// Attachments lists the attachments the scan saw.
func (r ScanResult) Attachments() []content.Part {
	if r.Content == nil {
		return nil
	}
	var out []content.Part
	for _, p := range r.Content.Parts {
		if p.Attachment {
			out = append(out, p)
		}
	}
	return out
}

// ScanOptions configure a Scanner.
type ScanOptions struct {
	// Watch lists the recipients to look for in the body (NewWatch).
	Watch Watch
	// TempDir is where a ZIP-based attachment is copied for reading
	// (the data directory); "" uses the system's.
	TempDir string
	// Limits, PhoneRegion and NotPhones come from the policy
	// (Policy.ScanOptions).
	Limits      content.Limits
	PhoneRegion string
	NotPhones   *content.NotPhones

	maxDistinct int          // tests
	onAddress   func([]byte) // tests
}

// Scanner finds what a message contains as it streams past: the relay
// tees every byte of the message (header block included) into it while
// spooling, so there is no second pass over the spool. policy/content
// reads the MIME tree and every format in it; memory is bounded by
// content.Limits, not by the message.
//
// A message of up to inlineMax bytes is held and scanned in Close, in the
// caller's goroutine: for the common small message a goroutine fed
// through an io.Pipe cost more (two context switches per Write) than the
// scan. A larger one is scanned as it arrives, in a goroutine fed through
// an io.Pipe, starting with what was held.
//
// Write never fails and never blocks once the reader has stopped
// (finished, or gave up on malformed input): it is safe inside an
// io.MultiWriter. While the reader runs, Write hands each chunk over
// synchronously, so the tee runs at the scan's pace. Write and Close are
// called from one goroutine; Close must be called, also when the message
// is abandoned, or the reader goroutine stays behind.
type Scanner struct {
	opts   content.Options
	held   *[]byte // the message so far, until it outgrows inlineMax
	pw     *io.PipeWriter
	done   chan struct{}
	closed bool
	res    ScanResult
}

// inlineMax is the largest message Scanner holds to scan in Close.
const inlineMax = 64 << 10

// heldBuffers recycle the held messages. A buffer is emptied before it is
// reused and only its new contents are read: nothing of one message
// reaches another's scan.
var heldBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// NewScanner starts a Scanner.
func NewScanner(o ScanOptions) *Scanner {
	s := &Scanner{done: make(chan struct{}), opts: content.Options{
		Limits:      o.Limits,
		PhoneRegion: o.PhoneRegion,
		NotPhones:   o.NotPhones,
		TempDir:     o.TempDir,
		Watch:       o.Watch.content(),
		MaxDistinct: o.maxDistinct,
		OnAddress:   o.onAddress,
	}}
	s.held = heldBuffers.Get().(*[]byte)
	*s.held = (*s.held)[:0]
	return s
}

// release gives the held buffer back.
func (s *Scanner) release() {
	if s.held == nil {
		return
	}
	if cap(*s.held) <= inlineMax {
		*s.held = (*s.held)[:0]
		heldBuffers.Put(s.held)
	}
	s.held = nil
}

// stream starts the scan in a goroutine, fed first what was held.
func (s *Scanner) stream() {
	pr, pw := io.Pipe()
	s.pw = pw
	// The scan's time bound starts with the scan.
	sc := content.New(s.opts)
	go func() {
		defer close(s.done)
		// Whatever happens, the reading end is closed when the scan
		// stops, so Write returns at once from then on.
		defer pr.CloseWithError(errScanDone)
		sc.Message(pr)
		s.res = resultOf(sc.Result())
	}()
	if len(*s.held) > 0 {
		_, _ = pw.Write(*s.held)
	}
	s.release()
}

func newScanner(limit int, onAddr func([]byte)) *Scanner {
	return NewScanner(ScanOptions{maxDistinct: limit, onAddress: onAddr})
}

func resultOf(r content.Result) ScanResult {
	rep := r.Report
	return ScanResult{
		Addresses: rep.Totals.Addresses, Phones: rep.Totals.Phones, Cards: rep.Totals.Cards,
		IBANs: rep.Totals.IBANs, Records: rep.Totals.Records, Truncated: rep.Truncated, Err: r.Err,
		Content: &rep, RecipientsShown: r.RecipientsShown,
		RecipientsByAddress: r.RecipientsByAddress, RecipientsByName: r.RecipientsByName,
	}
}

// Write feeds message bytes to the scan. It always reports success.
func (s *Scanner) Write(p []byte) (int, error) {
	if s.closed {
		return len(p), nil
	}
	if s.pw == nil {
		if len(*s.held)+len(p) <= inlineMax {
			*s.held = append(*s.held, p...)
			return len(p), nil
		}
		s.stream()
	}
	// An error means the reader has stopped: the rest is discarded,
	// which is fine, the counts are final.
	_, _ = s.pw.Write(p)
	return len(p), nil
}

// Close ends the input and waits for the scan to finish; a message held
// whole is scanned now.
func (s *Scanner) Close() error {
	if !s.closed {
		s.closed = true
		if s.pw == nil {
			sc := content.New(s.opts)
			sc.Message(bytes.NewReader(*s.held))
			s.res = resultOf(sc.Result())
			s.release()
			close(s.done)
		} else {
			s.pw.Close()
		}
	}
	<-s.done
	return nil
}

// Result returns what the scan found; call it after Close.
func (s *Scanner) Result() ScanResult {
	<-s.done
	return s.res
}
