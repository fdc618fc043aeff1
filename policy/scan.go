package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"sync"

	"github.com/emersion/go-message"
)

// Bounds on the body scan.
const (
	// MaxBodyAddresses is the most distinct addresses the Scanner counts;
	// beyond it the result is Truncated ("at least this many").
	MaxBodyAddresses = 100_000
	// maxScanLine is where the Scanner breaks an overlong line before the
	// MIME parser sees it, so no line is ever held whole (base64 and the
	// address finder do not care about the extra line break).
	maxScanLine  = 1 << 20
	maxMIMEDepth = 16
	maxMIMEParts = 10_000
	// maxScanHeader bounds the header block of the message and of any
	// attached message/rfc822.
	maxScanHeader = 8 << 20
)

var (
	errSetFull  = errors.New("address limit reached")
	errTooDeep  = errors.New("MIME nesting too deep")
	errTooMany  = errors.New("too many MIME parts")
	errScanDone = errors.New("scanner finished")
)

// ScanResult is what the Scanner found in a message body.
type ScanResult struct {
	// Addresses is the number of distinct email addresses in the text
	// parts and text-like attachments (the message's own header excluded).
	Addresses int `json:"addresses"`
	// Truncated means the scan stopped at MaxBodyAddresses: at least
	// Addresses were present.
	Truncated bool `json:"truncated,omitempty"`
	// Err describes a MIME structure the scan could not follow; the rest
	// of the message was then scanned as raw text. Informational.
	Err string `json:"error,omitempty"`
}

// Scanner counts distinct email addresses in a message as it streams past:
// the relay tees every byte of the message (header block included) into it
// while spooling, so there is no second pass over the spool. It decodes
// transfer encodings and charsets and walks multipart nesting with
// go-message, in a goroutine fed through an io.Pipe. Memory is bounded by
// the address cap, not by the message size.
//
// Write never fails and never blocks once the parser has stopped (finished,
// full, or gave up on malformed input): it is safe inside an io.MultiWriter.
// While the parser runs, Write hands each chunk over synchronously, so the
// tee runs at the scan's pace (about 100 MB/s; far above SMTP's). Write and
// Close are called from one goroutine; Close must be called, also when the
// message is abandoned, or the parser goroutine stays behind.
type Scanner struct {
	pw     *io.PipeWriter
	done   chan struct{}
	closed bool

	mu  sync.Mutex // guards set and err between the goroutine and Result
	set *addrSet
	err string
	buf []byte
}

// NewScanner starts a Scanner.
func NewScanner() *Scanner { return newScanner(MaxBodyAddresses, nil) }

// scanBuffers recycles each scan's two large buffers (about 100 KiB):
// allocated per message they were most of the relay's allocation for small
// messages, and so most of its garbage collection.
var scanBuffers = sync.Pool{New: func() any {
	return &scanBuffer{
		br:  bufio.NewReaderSize(nil, 64<<10),
		buf: make([]byte, 0, chunkSize+2*(maxLocalLen+maxDomainLen)),
	}
}}

type scanBuffer struct {
	br  *bufio.Reader
	buf []byte
}

func newScanner(limit int, onAddr func([]byte)) *Scanner {
	pr, pw := io.Pipe()
	s := &Scanner{pw: pw, done: make(chan struct{}), set: newAddrSet(limit)}
	s.set.onAdd = onAddr
	go s.run(pr)
	return s
}

// Write feeds message bytes to the scan. It always reports success.
func (s *Scanner) Write(p []byte) (int, error) {
	if !s.closed {
		// An error means the parser has stopped reading: the rest is
		// discarded, which is fine, the count is final.
		_, _ = s.pw.Write(p)
	}
	return len(p), nil
}

// Close ends the input and waits for the scan to finish.
func (s *Scanner) Close() error {
	if !s.closed {
		s.closed = true
		s.pw.Close()
	}
	<-s.done
	return nil
}

// Result returns the counts; final after Close.
func (s *Scanner) Result() ScanResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ScanResult{Addresses: len(s.set.seen), Truncated: s.set.truncated, Err: s.err}
}

// noteErr keeps the first problem. Callers strip the input that library
// errors quote (safeParseError): the text may be logged.
func (s *Scanner) noteErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == "" {
		s.err = err.Error()
	}
}

// run is the parser goroutine. Whatever happens, it closes the pipe's
// reading end when it stops, so Write returns at once from then on.
func (s *Scanner) run(pr *io.PipeReader) {
	defer close(s.done)
	defer pr.CloseWithError(errScanDone)
	sb := scanBuffers.Get().(*scanBuffer)
	sb.br.Reset(pr)
	s.buf = sb.buf[:0]
	defer func() {
		sb.br.Reset(nil)
		s.buf = nil
		scanBuffers.Put(sb)
	}()
	defer func() {
		if r := recover(); r != nil { // a parser bug must not take the relay down
			s.noteErr(fmt.Errorf("scan aborted: %v", r))
		}
	}()
	// The large buffer takes each Write in one hand-over, not 4 KiB at a time.
	rec := &recorder{r: &lineBreaker{r: sb.br}, headerEnd: -1}
	var err error
	e, herr := message.ReadWithOptions(rec, &message.ReadOptions{MaxHeaderBytes: maxScanHeader})
	if e == nil {
		err = fmt.Errorf("message header: %s", safeParseError(herr))
	} else {
		err = s.walk(e, 0, new(int))
	}
	if err != nil && !errors.Is(err, errSetFull) {
		s.noteErr(fmt.Errorf("%v; rest scanned as raw text", err))
		s.text(rec.rest())
	}
}

// walk scans one entity: its parts, an attached message, or its text.
func (s *Scanner) walk(e *message.Entity, depth int, parts *int) error {
	if mr := e.MultipartReader(); mr != nil {
		if depth >= maxMIMEDepth {
			return errTooDeep
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if p == nil {
				return fmt.Errorf("multipart: %s", safeParseError(err))
			}
			if *parts++; *parts > maxMIMEParts {
				return errTooMany
			}
			// An unknown charset or transfer encoding still leaves a
			// readable (undecoded) body: scan it as it is.
			if err := s.walk(p, depth+1, parts); err != nil {
				return err
			}
		}
	}
	mt, params, _ := e.Header.ContentType()
	switch {
	case mt == "message/rfc822" || mt == "message/global":
		if depth >= maxMIMEDepth {
			return errTooDeep
		}
		inner, err := message.ReadWithOptions(e.Body, &message.ReadOptions{MaxHeaderBytes: maxScanHeader})
		if inner == nil {
			s.noteErr(fmt.Errorf("attached message: %s", safeParseError(err)))
			return s.text(e.Body)
		}
		// A forwarded message shows its own recipients: count them.
		for _, k := range []string{"From", "To", "Cc", "Bcc", "Reply-To", "Sender"} {
			for _, v := range inner.Header.Values(k) {
				if err := s.text(strings.NewReader(v)); err != nil {
					return err
				}
			}
		}
		return s.walk(inner, depth+1, parts)
	case scannable(mt, filename(e, params)):
		if err := s.text(e.Body); err != nil {
			if errors.Is(err, errSetFull) {
				return err
			}
			// A broken base64 or quoted-printable part: note it and go
			// on with the next part.
			s.noteErr(fmt.Errorf("%s part: %s", mt, safeParseError(err)))
		}
	}
	return nil
}

// text runs the address finder over r.
func (s *Scanner) text(r io.Reader) error {
	s.mu.Lock()
	full := s.set.truncated
	s.mu.Unlock()
	if full {
		return errSetFull
	}
	return findAll(r, lockedSet{s}, s.buf)
}

// lockedSet lets Result read the set while the goroutine fills it.
type lockedSet struct{ s *Scanner }

func (l lockedSet) add(a []byte) bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.set.add(a)
}

// scannable says which parts can carry an address list as text: all text/*
// (plain, html, csv, vcard, calendar invitations...), CSV sent under an
// application type, and any part whose file name says it is text.
func scannable(mediaType, name string) bool {
	if strings.HasPrefix(mediaType, "text/") {
		return true
	}
	switch mediaType {
	case "application/csv", "application/x-csv", "application/vcard", "application/x-vcard":
		return true
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".csv", ".tsv", ".txt", ".vcf", ".vcard", ".ics":
		return true
	}
	return false
}

// filename is the attachment's file name from Content-Disposition or, as
// older mailers put it, the Content-Type name parameter.
func filename(e *message.Entity, ctParams map[string]string) string {
	if _, p, err := e.Header.ContentDisposition(); err == nil && p["filename"] != "" {
		return p["filename"]
	}
	if n := ctParams["name"]; n != "" {
		if d, err := new(mime.WordDecoder).DecodeHeader(n); err == nil {
			return d
		}
		return n
	}
	return ""
}
