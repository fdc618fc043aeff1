package content

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
)

// read scans one part (or archive entry) of the detected type. depth is
// the archive nesting so far.
func (s *Scan) read(r *bufio.Reader, name, typ string, depth int) error {
	if err := s.budget.checkTime(); err != nil {
		return err
	}
	if depth > s.opts.Limits.MaxDepth {
		return bound(ReasonDepth, "archives nested deeper than %d", s.opts.Limits.MaxDepth)
	}
	switch typ {
	case "text":
		return s.readText(r)
	case "html":
		return s.readHTML(r)
	case "csv":
		return s.readCSV(r, 0)
	case "tsv":
		return s.readCSV(r, '\t')
	case "json":
		return s.readJSON(r)
	case "xml":
		return s.readXML(r)
	case "vcard":
		return s.readVCard(r)
	case "icalendar":
		return s.readICal(r)
	case "headers":
		return s.readHeaders(r)
	case "message":
		return s.message(r, depth)
	case "gzip":
		return s.readGzip(r, name, depth)
	case "zip":
		return s.readZip(r, name, depth)
	case "pdf":
		return s.readPDF(r)
	case "ole":
		return s.readOLE(r, name)
	}
	return nil
}

// sniffRead detects the type of an archive entry and reads it.
func (s *Scan) sniffRead(r io.Reader, name string, depth int) (string, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(512)
	typ := detect("", name, head)
	return typ, s.read(br, name, typ, depth)
}

// readHeaders reads a text/rfc822-headers part: a header block whose
// fields show addresses and names, decoded.
func (s *Scan) readHeaders(r *bufio.Reader) error {
	rec := &recorder{r: &lineBreaker{r: r}, headerEnd: -1}
	e, err := message.ReadWithOptions(rec, &message.ReadOptions{MaxHeaderBytes: maxScanHeader})
	if e == nil {
		s.noteErr(fmt.Errorf("rfc822-headers part: %s", safeMIMEError(err)))
		return s.readText(rec.rest())
	}
	s.headerFields(e.Header)
	return s.readText(e.Body)
}

// unfolder joins RFC 5545/6350 folded lines (a line break followed by a
// space or tab), so that an address or name folded across lines is seen
// whole. Line breaks come out as "\n".
type unfolder struct{ r *bufio.Reader }

func newUnfolder(r io.Reader) *unfolder { return &unfolder{r: bufio.NewReaderSize(r, 16<<10)} }

func (u *unfolder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := u.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if c == '\r' || c == '\n' {
			if next, _ := u.r.Peek(1); c == '\r' && len(next) == 1 && next[0] == '\n' {
				_, _ = u.r.ReadByte()
			}
			if next, _ := u.r.Peek(1); len(next) == 1 && (next[0] == ' ' || next[0] == '\t') {
				_, _ = u.r.ReadByte()
				continue
			}
			c = '\n'
		}
		p[n] = c
		n++
	}
	return n, nil
}

// readVCard reads vCards: each card is one row whose cells are its
// property values, classed by property (FN and N are names, ADR an
// address, TEL a phone, EMAIL an email).
func (s *Scan) readVCard(r io.Reader) error {
	sc := bufio.NewScanner(newUnfolder(r))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cells []cell
	tb := &table{header: []uint8{}}
	for sc.Scan() {
		line := sc.Bytes()
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			s.text(line)
			continue
		}
		prop := strings.ToUpper(string(line[:colon]))
		if i := strings.IndexAny(prop, ";"); i >= 0 {
			prop = prop[:i]
		}
		if i := strings.LastIndexByte(prop, '.'); i >= 0 {
			prop = prop[i+1:] // item1.EMAIL
		}
		val := line[colon+1:]
		switch prop {
		case "BEGIN":
			cells = cells[:0]
			continue
		case "END":
			s.row(tb, cells)
			cells = cells[:0]
			continue
		case "VERSION", "PRODID", "UID", "REV", "PHOTO", "LOGO", "SOUND", "KEY":
			continue
		}
		c := s.cellOf(bytes.ReplaceAll(val, []byte(";"), []byte(" ")), false)
		c.class = classIndex(vcardClass[prop])
		cells = append(cells, c)
	}
	return sc.Err()
}

var vcardClass = map[string]string{
	"FN": "name", "N": "name", "ADR": "address", "TEL": "phone", "EMAIL": "email", "BDAY": "birth date",
}

// readICal reads iCalendar after unfolding, line by line: ATTENDEE and
// ORGANIZER lines show each person's address and name (CN=); UIDs are
// shaped like addresses but show no one.
func (s *Scan) readICal(r io.Reader) error {
	sc := bufio.NewScanner(newUnfolder(r))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		prop := line
		if i := bytes.IndexAny(line, ";:"); i >= 0 {
			prop = line[:i]
		}
		switch strings.ToUpper(string(prop)) {
		case "UID", "RECURRENCE-ID", "RELATED-TO", "X-WR-RELCALID", "TZID", "DTSTAMP", "DTSTART", "DTEND", "PRODID":
			continue
		}
		s.text(line)
	}
	return sc.Err()
}
