package content

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// spill copies a part that needs random access (a ZIP's central directory
// is at its end) to a temporary file in TempDir, unlinked at once so that
// nothing is left behind even by a crash. The caller closes it.
func (s *Scan) spill(r io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.opts.TempDir, ".scan-*")
	if err != nil {
		return nil, 0, fmt.Errorf("temporary file: %w", err)
	}
	_ = os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(r, s.opts.Limits.MaxSpill+1))
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if n > s.opts.Limits.MaxSpill {
		f.Close()
		return nil, 0, bound(ReasonSize, "an archive over %d MiB", s.opts.Limits.MaxSpill>>20)
	}
	return f, n, nil
}

// readZip reads a ZIP with archive/zip from a spilled copy. An OOXML or
// OpenDocument file is a ZIP too: its type is decided by its entries.
func (s *Scan) readZip(r io.Reader, name string, depth int) error {
	f, size, err := s.spill(r)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return err
	}
	kind := zipKind(zr)
	if s.t.cur != nil && depth == 0 {
		s.t.cur.Type = kind
	}
	switch kind {
	case "xlsx":
		return s.readXLSX(zr, name)
	case "docx":
		return s.readOOXMLParts(zr, name, func(n string) bool {
			return n == "word/document.xml" || strings.HasPrefix(n, "word/header") || strings.HasPrefix(n, "word/footer") ||
				n == "word/footnotes.xml" || n == "word/endnotes.xml" || n == "word/comments.xml"
		}, docxSyntax)
	case "pptx":
		return s.readOOXMLParts(zr, name, func(n string) bool {
			return strings.HasPrefix(n, "ppt/slides/slide") || strings.HasPrefix(n, "ppt/notesSlides/")
		}, pptxSyntax)
	case "ods", "odt", "odf":
		return s.readODF(zr, name)
	}
	return s.readZipEntries(zr, name, depth)
}

// zipKind tells OOXML and OpenDocument files from plain ZIPs.
func zipKind(zr *zip.Reader) string {
	has := map[string]bool{}
	for _, f := range zr.File {
		switch {
		case f.Name == "xl/workbook.xml":
			has["xlsx"] = true
		case f.Name == "word/document.xml":
			has["docx"] = true
		case f.Name == "ppt/presentation.xml":
			has["pptx"] = true
		case f.Name == "mimetype":
			has["mimetype"] = true
		}
	}
	for _, k := range []string{"xlsx", "docx", "pptx"} {
		if has[k] {
			return k
		}
	}
	if has["mimetype"] {
		for _, f := range zr.File {
			if f.Name != "mimetype" || f.UncompressedSize64 > 200 {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(io.LimitReader(rc, 200))
			rc.Close()
			switch string(bytes.TrimSpace(b)) {
			case "application/vnd.oasis.opendocument.spreadsheet":
				return "ods"
			case "application/vnd.oasis.opendocument.text":
				return "odt"
			}
			if bytes.HasPrefix(b, []byte("application/vnd.oasis.opendocument.")) {
				return "odf"
			}
		}
	}
	return "zip"
}

// open opens one entry within the bounds: entry count, encryption,
// compression ratio and the message's inflate budget.
func (s *Scan) open(f *zip.File) (io.ReadCloser, error) {
	if err := s.budget.entry(); err != nil {
		return nil, err
	}
	if f.Flags&0x1 != 0 {
		return nil, bound(ReasonEncrypted, "an encrypted archive entry")
	}
	if f.UncompressedSize64 > ratioSlack && f.CompressedSize64 > 0 &&
		f.UncompressedSize64/f.CompressedSize64 > uint64(s.opts.Limits.MaxRatio) {
		return nil, bound(ReasonRatio, "an entry that inflates more than %d:1", s.opts.Limits.MaxRatio)
	}
	if left := s.opts.Limits.MaxInflated - s.budget.inflated; int64(f.UncompressedSize64) > left {
		return nil, bound(ReasonSize, "more than %d MiB inflated in one message", s.opts.Limits.MaxInflated>>20)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	comp := int64(f.CompressedSize64)
	return struct {
		io.Reader
		io.Closer
	}{&inflater{r: rc, b: s.budget, compressed: func() int64 { return comp }, what: "an archive entry"}, rc}, nil
}

// readZipEntries reads each entry of a plain ZIP by its own type.
func (s *Scan) readZipEntries(zr *zip.Reader, name string, depth int) error {
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		entry := name + "/" + f.Name
		rc, err := s.open(f)
		if err == nil {
			var typ string
			typ, err = s.sniffRead(rc, f.Name, depth+1)
			rc.Close()
			if err != nil {
				s.unscannable(entry, typ, err)
			}
		} else {
			s.unscannable(entry, entryType(f.Name), err)
		}
		if err != nil && fatal(err) {
			return nil
		}
	}
	return nil
}

// fatal errors end the scan of the archive: whatever follows would fail
// the same way.
func fatal(err error) bool {
	r, _ := reasonOf(err)
	return r == ReasonTime || r == ReasonEntries || r == ReasonSize
}

// entryType guesses an entry's type from its name, for reports about an
// entry that was not opened.
func entryType(name string) string {
	switch ext := strings.ToLower(path.Ext(name)); ext {
	case ".xlsx", ".xlsm", ".docx", ".pptx", ".ods", ".odt", ".pdf", ".zip", ".csv", ".json", ".xml", ".html", ".txt":
		return strings.TrimPrefix(ext, ".")
	}
	return "other"
}

// readOOXMLParts reads the XML parts of a DOCX or PPTX that hold text.
func (s *Scan) readOOXMLParts(zr *zip.Reader, name string, want func(string) bool, syn xmlSyntax) error {
	for _, f := range zr.File {
		if !want(f.Name) || !strings.HasSuffix(f.Name, ".xml") {
			continue
		}
		rc, err := s.open(f)
		if err == nil {
			err = s.readXMLDoc(rc, syn)
			rc.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readODF reads an OpenDocument file's content.xml. An encrypted one is
// still a ZIP, but its manifest says so and its content is ciphertext.
func (s *Scan) readODF(zr *zip.Reader, name string) error {
	for _, f := range zr.File {
		if f.Name != "META-INF/manifest.xml" {
			continue
		}
		rc, err := s.open(f)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if bytes.Contains(b, []byte("encryption-data")) {
			return bound(ReasonEncrypted, "a password-protected OpenDocument file")
		}
	}
	for _, f := range zr.File {
		if f.Name != "content.xml" {
			continue
		}
		rc, err := s.open(f)
		if err != nil {
			return err
		}
		defer rc.Close()
		return s.readXMLDoc(rc, odfSyntax)
	}
	return bound(ReasonCorrupt, "an OpenDocument file without content.xml")
}

// readGzip inflates a gzip stream and reads what it holds.
func (s *Scan) readGzip(r io.Reader, name string, depth int) error {
	cr := &countingReader{r: bufio.NewReader(r)}
	gz, err := gzip.NewReader(cr)
	if err != nil {
		return err
	}
	inner := gz.Name
	if inner == "" {
		inner = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".GZ")
		if strings.HasSuffix(strings.ToLower(name), ".tgz") {
			inner = strings.TrimSuffix(name, path.Ext(name)) + ".tar"
		}
	}
	in := &inflater{r: gz, b: s.budget, compressed: func() int64 { return cr.n }, what: "a gzip stream"}
	_, err = s.sniffRead(in, inner, depth+1)
	return err
}

// readOLE looks at a legacy Office (OLE compound) file. An encrypted
// OOXML document is one, holding an "EncryptedPackage" stream: it cannot
// be read without its password. Legacy .xls/.doc are not read.
func (s *Scan) readOLE(r io.Reader, name string) error {
	// The directory names are UTF-16; look for the stream's name in the
	// first megabytes, where the directory of such a file is.
	want := []byte("E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e\x00")
	br := bufio.NewReaderSize(r, 64<<10)
	var window []byte
	for read := 0; read < 8<<20; {
		b, err := br.Peek(64 << 10)
		window = append(window[max(0, len(window)-len(want)):], b...)
		if bytes.Contains(window, want) {
			return bound(ReasonEncrypted, "a password-protected Office document")
		}
		n, _ := br.Discard(len(b))
		read += n
		if err != nil {
			break
		}
	}
	if s.t.cur != nil && s.t.cur.Unscannable == nil {
		s.t.cur.Type = "office-legacy"
	}
	return nil
}
