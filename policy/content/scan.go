package content

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// Bounds of the MIME walk.
const (
	maxMIMEDepth = 16
	maxMIMEParts = 10_000
	// maxScanHeader bounds the header block of the message and of any
	// attached message.
	maxScanHeader = 8 << 20
	// maxScanLine is where an overlong line is broken before the MIME
	// parser sees it, so that no line is ever held whole.
	maxScanLine = 1 << 20
)

var (
	errTooDeep = errors.New("MIME nesting too deep")
	errTooMany = errors.New("too many MIME parts")
)

// Options configure the scan of one message.
type Options struct {
	Limits Limits
	// PhoneRegion is the ISO 3166 region of phone numbers written
	// without a country code ("US", "GB", "DE").
	PhoneRegion string
	// TempDir is where a ZIP-based part is copied for random access;
	// "" uses the system's.
	TempDir string
	Watch   Watch
	// MaxDistinct bounds each kind's distinct count (MaxDistinct if 0).
	MaxDistinct int
	// Now is the clock of the time bound (time.Now if nil).
	Now func() time.Time
	// NotPhones, shared by the scans of one policy, remembers the digit
	// runs found not to be phone numbers (nil: each scan parses its own).
	NotPhones *NotPhones
	// OnAddress sees each distinct address as it is first counted,
	// lowercased. For tests.
	OnAddress func([]byte)
}

// Scan reads one message and counts what it contains. It is used from
// one goroutine.
type Scan struct {
	opts   Options
	t      *tally
	nums   numberFinder
	watch  *watcher
	budget *budget
	buf    []byte
	err    string
	parts  int
}

// New starts the scan of one message.
func New(o Options) *Scan {
	o.Limits = o.Limits.WithDefaults()
	if o.PhoneRegion == "" {
		o.PhoneRegion = "US"
	}
	if o.MaxDistinct <= 0 {
		o.MaxDistinct = MaxDistinct
	}
	w := newWatcher(o.Watch)
	s := &Scan{opts: o, watch: w, t: newTally(o.MaxDistinct, w), budget: newBudget(o.Limits, o.Now)}
	s.t.onEmail = o.OnAddress
	s.nums.region = strings.ToUpper(o.PhoneRegion)
	s.nums.notPhones = o.NotPhones
	return s
}

// Result is what the scan found.
type Result struct {
	Report
	// RecipientsShown are the indexes of the Watch entries the body
	// showed (by address or by name), sorted.
	RecipientsShown     []int
	RecipientsByAddress int
	RecipientsByName    int
	// Err describes a MIME structure the scan could not follow (the
	// rest was then scanned as raw text). Informational; no content.
	Err string
}

// Result returns what was found so far; final once Message returned.
func (s *Scan) Result() Result {
	r := Result{Report: s.t.report(), Err: s.err}
	seen := map[int]bool{}
	for i := range s.watch.byAddr {
		seen[i] = true
	}
	for i := range s.watch.byName {
		seen[i] = true
	}
	for i := range seen {
		r.RecipientsShown = append(r.RecipientsShown, i)
	}
	slices.Sort(r.RecipientsShown)
	r.RecipientsByAddress, r.RecipientsByName = len(s.watch.byAddr), len(s.watch.byName)
	return r
}

func (s *Scan) noteErr(err error) {
	if s.err == "" {
		s.err = err.Error()
	}
}

// Message scans a whole message as it streams from r. The message's own
// header is not counted (the policy reads it); everything below it is:
// parts, their header fields, attached messages and their headers.
func (s *Scan) Message(r io.Reader) {
	// The chunk buffer is recycled: allocated per message it would be
	// most of what a small message costs the collector.
	bp := chunkBuffers.Get().(*[]byte)
	s.buf = (*bp)[:0]
	defer func() { s.buf = nil; chunkBuffers.Put(bp) }()
	defer func() {
		if p := recover(); p != nil { // a reader bug must not take the relay down
			s.noteErr(fmt.Errorf("scan aborted: %v", p))
			s.t.end()
		}
	}()
	wp := windowBuffers.Get().(*[]byte)
	rec := &recorder{r: &lineBreaker{r: r}, headerEnd: -1, window: (*wp)[:0]}
	defer func() {
		if cap(rec.window) <= 2*windowSize {
			*wp = rec.window[:0]
		}
		windowBuffers.Put(wp)
	}()
	br := getReader(nil)
	defer putReader(br)
	e, herr := readEntity(rec, br)
	var err error
	if e == nil {
		err = fmt.Errorf("message header: %s", safeMIMEError(herr))
	} else {
		err = s.walk(e, 0)
	}
	if err != nil {
		s.noteErr(fmt.Errorf("%v; rest scanned as raw text", err))
		s.t.end()
		s.t.begin(Part{Type: "text"})
		_ = s.readText(rec.rest())
		s.t.end()
	}
}

// walk scans one entity: its parts, an attached message, or its body.
func (s *Scan) walk(e *message.Entity, depth int) error {
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
				return fmt.Errorf("multipart: %s", safeMIMEError(err))
			}
			if s.parts++; s.parts > maxMIMEParts {
				return errTooMany
			}
			s.partHeader(p.Header)
			// An unknown charset or transfer encoding still leaves a
			// readable (undecoded) body: scan it as it is.
			if err := s.walk(p, depth+1); err != nil {
				return err
			}
		}
	}
	mt, params, _ := e.Header.ContentType()
	name := filename(e, params)
	disp, _, _ := e.Header.ContentDisposition()
	// A part of the message is reported on its own; inside an archive or
	// an attached .eml file, whatever is read counts for that part.
	own := s.t.cur == nil
	if mt == "message/rfc822" || mt == "message/global" {
		if depth >= maxMIMEDepth {
			return errTooDeep
		}
		// The attached message's header is its own part of the report;
		// its parts are reported as the message's are.
		if own {
			s.t.begin(Part{Name: name, Type: "message", Attachment: true, Scanned: true})
		}
		inner, err := message.ReadWithOptions(e.Body, &message.ReadOptions{MaxHeaderBytes: maxScanHeader})
		if inner == nil {
			s.noteErr(fmt.Errorf("attached message: %s", safeMIMEError(err)))
			err = s.readText(e.Body)
		} else {
			s.headerFields(inner.Header)
		}
		if own {
			s.t.end()
		}
		if inner == nil {
			return err
		}
		return s.walk(inner, depth+1)
	}
	cr := &countingReader{r: e.Body}
	br := getReader(cr)
	defer putReader(br)
	head, _ := br.Peek(512)
	typ := detect(mt, name, head)
	if own {
		attachment := disp == "attachment" || name != "" || !(typ == "text" || typ == "html") || !strings.HasPrefix(mt, "text/")
		s.t.begin(Part{Name: name, Type: typ, Attachment: attachment})
	}
	err := s.read(br, name, typ, 0)
	_, _ = io.Copy(io.Discard, br) // the part's size, and the MIME walk goes on
	if err != nil {
		// Over a bound, encrypted, or broken (base64, the format):
		// note it and go on with the next part.
		s.unscannable(name, typ, err)
	}
	if own {
		s.t.cur.Size = cr.n
		s.t.cur.Scanned = readable(s.t.cur.Type) && !wholeUnscannable(s.t.cur)
		s.t.end()
	}
	return nil
}

// readable says which detected types the scan reads.
func readable(typ string) bool { return typ != "other" && typ != "office-legacy" && typ != "ole" }

// wholeUnscannable: nothing of the part could be read.
func wholeUnscannable(p *Part) bool {
	for _, u := range p.Unscannable {
		if u.Name == p.Name {
			return true
		}
	}
	return false
}

func (s *Scan) unscannable(name, typ string, err error) {
	reason, detail := reasonOf(err)
	s.t.unscannable(Unscannable{Name: name, Type: typ, Reason: reason, Detail: detail})
}

// readEntity is message.ReadWithOptions with its header bound at
// maxScanHeader, reading through br (reset to r) instead of a bufio.Reader
// of its own, so that the caller can recycle it once the entity is read.
func readEntity(r io.Reader, br *bufio.Reader) (*message.Entity, error) {
	lr := &headerLimit{r: r, n: maxScanHeader}
	br.Reset(lr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	lr.n = math.MaxInt64
	return message.New(message.Header{Header: h}, br)
}

// headerLimit is go-message's limit on a header block: reads fail once n
// bytes are read, until the header is in and n is lifted.
type headerLimit struct {
	r io.Reader
	n int64
}

// errHeaderTooBig says what go-message says of a header over its bound.
var errHeaderTooBig = errors.New("message: header exceeds maximum size")

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooBig
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// message scans a message file found inside a part (an .eml attachment,
// an archive entry): its header fields show its recipients, and its parts
// count for the part it was found in.
func (s *Scan) message(r io.Reader, depth int) error {
	inner, err := message.ReadWithOptions(r, &message.ReadOptions{MaxHeaderBytes: maxScanHeader})
	if inner == nil {
		s.noteErr(fmt.Errorf("attached message: %s", safeMIMEError(err)))
		return s.readText(r)
	}
	s.headerFields(inner.Header)
	return s.walk(inner, depth+1)
}

// partHeader scans the fields of a MIME part's header: a To: or Cc:
// there shows its addresses to whoever opens the part's headers.
func (s *Scan) partHeader(h message.Header) {
	s.headerFields(h)
}

// headerFields scans every field value, RFC 2047-decoded.
func (s *Scan) headerFields(h message.Header) {
	fs := h.Fields()
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	for fs.Next() {
		if skipField[strings.ToLower(fs.Key())] {
			continue
		}
		v := fs.Value()
		if d, err := dec.DecodeHeader(v); err == nil {
			v = d
		}
		s.text([]byte(v))
	}
}

// skipField are fields that show no one: identifiers shaped like
// addresses (Message-ID, Content-ID), trace and signature fields, MIME
// structure.
var skipField = map[string]bool{
	"content-type": true, "content-transfer-encoding": true, "mime-version": true, "content-id": true,
	"message-id": true, "in-reply-to": true, "references": true, "resent-message-id": true, "received": true,
	"dkim-signature": true, "arc-seal": true, "arc-message-signature": true, "arc-authentication-results": true,
	"authentication-results": true, "x-google-dkim-signature": true, "domainkey-signature": true,
}

// filename is the attachment's file name from Content-Disposition or, as
// older mailers put it, the Content-Type name parameter.
func filename(e *message.Entity, ctParams map[string]string) string {
	if _, p, err := e.Header.ContentDisposition(); err == nil && p["filename"] != "" {
		return p["filename"]
	}
	if n := ctParams["name"]; n != "" {
		if d, err := (&mime.WordDecoder{CharsetReader: charsetReader}).DecodeHeader(n); err == nil {
			return d
		}
		return n
	}
	return ""
}

// safeMIMEError reduces a library's parse error to its kind: go-message
// repeats the offending input after it, and that input may be someone's
// address, which must not reach logs or replies.
func safeMIMEError(err error) string {
	if err == nil {
		return "malformed"
	}
	m := err.Error()
	for _, kind := range []string{"malformed MIME header line", "malformed MIME header key", "malformed MIME header initial line"} {
		if i := strings.Index(m, kind); i >= 0 {
			return m[:i+len(kind)]
		}
	}
	return safeDetail(err)
}

// charsetReader decodes the charsets mail uses (go-message's table).
var charsetReader = charset.Reader
