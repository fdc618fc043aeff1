package content

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
)

// readCSV reads comma-, semicolon-, tab- or pipe-separated values with
// encoding/csv (quotes as RFC 4180 has them, lazily), one row at a time.
// delim 0 means "detect from the first line".
func (s *Scan) readCSV(r *bufio.Reader, delim rune) error {
	if delim == 0 {
		head, _ := r.Peek(4096)
		delim = guessDelimiter(head)
	}
	g := &stepGuard{r: r, what: "CSV record"}
	cr := csv.NewReader(g)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	tb := &table{}
	cells := make([]cell, 0, 32)
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		rec, err := cr.Read()
		g.step()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return err
		}
		if err != nil {
			continue // a stray quote: the record is still mostly read
		}
		cells = cells[:0]
		for i, f := range rec {
			if i >= maxColumns {
				break
			}
			cells = append(cells, s.cellOf([]byte(f), tb.rows == 0))
		}
		s.row(tb, cells)
	}
}

// guessDelimiter picks the most frequent of , ; tab | on the first line.
func guessDelimiter(head []byte) rune {
	line := head
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		line = head[:i]
	}
	best, n := ',', 0
	for _, d := range []rune{',', ';', '\t', '|'} {
		if c := bytes.Count(line, []byte(string(d))); c > n {
			best, n = d, c
		}
	}
	return best
}
