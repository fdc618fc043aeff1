package content

import (
	"bytes"
	"path"
	"strings"
	"unicode/utf8"
)

// detect names a part's format from its first bytes, its declared type and
// its file name, in that order of trust: a CRM labels everything
// application/octet-stream, and a file name can lie, but magic numbers
// seldom do.
func detect(mediaType, name string, head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return "zip"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "pdf"
	case bytes.HasPrefix(head, []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}):
		return "ole" // legacy Office, or an encrypted OOXML document
	case binaryMagic(head):
		return "other"
	}
	ext := strings.ToLower(path.Ext(name))
	mediaType = strings.ToLower(mediaType)
	switch {
	case mediaType == "application/pdf" || ext == ".pdf":
		return "pdf"
	case mediaType == "text/html" || ext == ".html" || ext == ".htm" || mediaType == "application/xhtml+xml":
		return "html"
	case mediaType == "text/csv" || mediaType == "application/csv" || mediaType == "application/x-csv" || ext == ".csv":
		return "csv"
	case mediaType == "text/tab-separated-values" || ext == ".tsv" || ext == ".tab":
		return "tsv"
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json") || mediaType == "application/x-ndjson" ||
		mediaType == "application/jsonl" || ext == ".json" || ext == ".ndjson" || ext == ".jsonl":
		return "json"
	case mediaType == "text/vcard" || mediaType == "text/x-vcard" || mediaType == "application/vcard" || mediaType == "application/x-vcard" || ext == ".vcf" || ext == ".vcard":
		return "vcard"
	case mediaType == "text/calendar" || mediaType == "application/ics" || ext == ".ics" || ext == ".ical":
		return "icalendar"
	case mediaType == "message/rfc822" || ext == ".eml":
		return "message"
	case mediaType == "text/rfc822-headers":
		return "headers"
	case mediaType == "text/xml" || mediaType == "application/xml" || strings.HasSuffix(mediaType, "+xml") || ext == ".xml":
		return "xml"
	}
	if !looksLikeText(head) {
		if strings.HasPrefix(mediaType, "text/") && len(head) > 0 {
			return "text" // a declared text part in an unusual charset
		}
		return "other"
	}
	return sniffText(head, mediaType, ext)
}

// sniffText tells the text formats apart by their first bytes.
func sniffText(head []byte, mediaType, ext string) string {
	h := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	lower := bytes.ToLower(h[:min(len(h), 64)])
	switch {
	case bytes.HasPrefix(lower, []byte("<!doctype html")) || bytes.HasPrefix(lower, []byte("<html")):
		return "html"
	case bytes.HasPrefix(lower, []byte("begin:vcard")):
		return "vcard"
	case bytes.HasPrefix(lower, []byte("begin:vcalendar")):
		return "icalendar"
	case bytes.HasPrefix(lower, []byte("<?xml")):
		return "xml"
	case len(h) > 0 && (h[0] == '{' || h[0] == '['):
		return "json"
	case ext == ".txt" || strings.HasPrefix(mediaType, "text/plain"):
		return "text"
	case delimited(h):
		return "csv"
	}
	return "text"
}

// delimited: the first lines have the same number (one or more) of one
// delimiter.
func delimited(h []byte) bool {
	lines := bytes.Split(h, []byte("\n"))
	if len(lines) < 3 {
		return false
	}
	lines = lines[:len(lines)-1] // the last may be cut
	for _, d := range []byte{',', ';', '\t', '|'} {
		n := bytes.Count(lines[0], []byte{d})
		if n == 0 {
			continue
		}
		same := true
		for _, l := range lines[1:min(len(lines), 6)] {
			same = same && bytes.Count(l, []byte{d}) == n
		}
		if same {
			return true
		}
	}
	return false
}

// looksLikeText: valid UTF-8 (or 8-bit text) with no NUL and few control
// characters.
func looksLikeText(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	ctl := 0
	for _, c := range b {
		if c == 0 {
			return false
		}
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			ctl++
		}
	}
	if ctl > len(b)/50 {
		return false
	}
	if utf8.Valid(b[:max(0, len(b)-4)]) {
		return true
	}
	return true // Latin-1 and the like: still text to the finders
}

// binaryMagic: images, audio, video and executables, which hold no text
// worth scanning.
func binaryMagic(b []byte) bool {
	for _, m := range [][]byte{
		[]byte("\x89PNG"), []byte("\xff\xd8\xff"), []byte("GIF8"), []byte("RIFF"), []byte("\x00\x00\x00"),
		[]byte("ID3"), []byte("OggS"), []byte("fLaC"), []byte("MZ"), []byte("\x7fELF"), []byte("BM"),
		[]byte("7z\xbc\xaf\x27\x1c"), []byte("Rar!"), []byte("II*\x00"), []byte("MM\x00*"),
	} {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}
