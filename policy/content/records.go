package content

import (
	"hash/maphash"
	"strings"
	"unicode"
)

// Records are rows of a table (CSV/TSV, spreadsheet, document table, HTML
// table, JSON array of objects, vCard) that hold personal data. A row's
// score is its findings (addresses, phones, cards, IBANs, repeats
// included) plus one for each non-empty cell under a column whose header
// names personal data (name, address, street, city, postcode, phone,
// email, date of birth). A row scoring two or more is a record: so "one
// finding plus a personal-data column" is one, and so is a
// name-and-address row without any email, while a catalogue row of SKU,
// EAN and price scores nothing. Records are counted distinct by a hash of
// the row's cells.

// table tracks one table: its header and the rows seen.
type table struct {
	header []uint8 // column class per column, 0 for none
	rows   int
}

// cell is what a row's scoring needs of one cell: its text is scanned
// (and counted) when the cell is made, and not kept.
type cell struct {
	hash     uint64
	findings int
	class    uint8 // the personal-data class of the cell's column
	empty    bool
	header   uint8 // the class the cell's own text names, for a header row
}

// classes are the personal-data column classes; 0 is none.
var classes = []string{"", "name", "address", "phone", "email", "birth date"}

func classIndex(c string) uint8 {
	for i, x := range classes {
		if x == c {
			return uint8(i)
		}
	}
	return 0
}

// maxColumns bounds the columns of a row that are looked at.
const maxColumns = 1024

// maxHeaderCell is the longest text looked at as a column header.
const maxHeaderCell = 80

// cellOf scans one cell's text and describes it; header asks for the
// class its text names (only the first row of a table needs it).
func (s *Scan) cellOf(b []byte, header bool) cell {
	b = trimSpace(b)
	c := cell{empty: len(b) == 0, hash: s.hashBytes(b)}
	if c.empty {
		return c
	}
	c.findings = s.text(b)
	if header && len(b) <= maxHeaderCell {
		c.header = classIndex(columnClass(string(b)))
	}
	return c
}

// hashBytes is a cell's hash: 32 bits, as a workbook's shared strings keep
// it (a record is told apart by all its cells together).
func (s *Scan) hashBytes(b []byte) uint64 { return uint64(uint32(maphash.Bytes(s.t.seed, b))) }

// row takes one row of a table. The first non-empty row is the table's
// header when no cell holds a finding and some cell names a personal-data
// column; every other row is scored.
func (s *Scan) row(tb *table, cells []cell) {
	if len(cells) > maxColumns {
		cells = cells[:maxColumns]
	}
	empty := true
	for _, c := range cells {
		empty = empty && c.empty
	}
	if empty {
		return
	}
	tb.rows++
	if tb.rows == 1 && tb.header == nil {
		hdr, named, findings := make([]uint8, len(cells)), []string(nil), 0
		for i, c := range cells {
			hdr[i] = c.header
			findings += c.findings
			if c.header != 0 {
				named = append(named, classes[c.header])
			}
		}
		if findings == 0 && len(named) > 0 {
			tb.header = hdr
			s.t.columns(named)
			return
		}
	}
	for i := range cells {
		if i < len(tb.header) && cells[i].class == 0 {
			cells[i].class = tb.header[i]
		}
	}
	s.score(cells)
}

// score counts the row as a record when it scores two or more.
func (s *Scan) score(cells []cell) {
	score := 0
	var h uint64 = 14695981039346656037
	for _, c := range cells {
		h = (h ^ c.hash) * 1099511628211
		if c.empty {
			continue
		}
		score += c.findings
		if c.class != 0 {
			score++
		}
	}
	if score < 2 {
		return
	}
	var key [8]byte
	for i := range key {
		key[i] = byte(h >> (8 * i))
	}
	s.t.found(Record, key[:], nil)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

// columnClass says which kind of personal data a column header names, in
// English, French, German, Spanish, Italian, Portuguese, Dutch, Chinese
// and Japanese; "" for none.
func columnClass(h string) string {
	n := normHeader(h)
	if n == "" {
		return ""
	}
	if c, ok := headerWords[n]; ok {
		return c
	}
	// Qualified forms: "customer name", "shipping address", "mobile phone".
	if i := strings.LastIndexByte(n, ' '); i > 0 && personQualifiers[n[:i]] {
		if c, ok := headerWords[n[i+1:]]; ok {
			return c
		}
	}
	if j := strings.IndexByte(n, ' '); j > 0 && personQualifiers[n[j+1:]] {
		if c, ok := headerWords[n[:j]]; ok { // "nom client", "telefono cliente"
			return c
		}
	}
	// Chinese and Japanese headers have no spaces: look for the word.
	for _, k := range cjkHeaders {
		if strings.Contains(n, k.word) {
			return k.class
		}
	}
	return ""
}

// normHeader lowercases and folds separators: "E-Mail_Address" is
// "e mail address".
func normHeader(h string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			space = false
		} else {
			space = true
		}
	}
	return b.String()
}

var headerWords = func() map[string]string {
	m := map[string]string{}
	for class, words := range map[string][]string{
		"name": {"name", "full name", "first name", "last name", "given name", "family name", "surname", "firstname", "lastname", "fullname",
			"contact", "customer", "nom", "prénom", "prenom", "nom complet", "nom de famille", "vorname", "nachname", "familienname",
			"nombre", "apellido", "apellidos", "nombre completo", "nome", "cognome", "sobrenome", "naam", "voornaam", "achternaam"},
		"address": {"address", "street", "street address", "address line 1", "address 1", "address1", "addr", "city", "town",
			"postcode", "post code", "postal code", "zip", "zip code", "zipcode", "adresse", "rue", "ville", "code postal", "cp",
			"anschrift", "straße", "strasse", "ort", "stadt", "wohnort", "plz", "postleitzahl", "dirección", "direccion", "domicilio",
			"calle", "ciudad", "localidad", "provincia", "código postal", "codigo postal", "indirizzo", "città", "cap", "endereço", "cidade",
			"adres", "straat", "woonplaats", "postcode nl"},
		"phone": {"phone", "telephone", "tel", "mobile", "cell", "phone number", "mobile number", "téléphone", "telephone number", "portable",
			"numéro de téléphone", "telefon", "handy", "mobilnummer", "telefonnummer", "teléfono", "telefono", "móvil", "movil", "celular",
			"telefoon", "fax"},
		"email": {"email", "e mail", "mail", "email address", "e mail address", "courriel", "adresse e mail", "adresse mail", "e mail adresse",
			"correo", "correo electrónico", "correo electronico", "posta elettronica"},
		"birth date": {"birthday", "birth date", "date of birth", "dob", "date de naissance", "geburtsdatum", "fecha de nacimiento",
			"data di nascita"},
	} {
		for _, w := range words {
			m[w] = class
		}
	}
	return m
}()

// personQualifiers turn a header word into a personal one: "customer
// name" (but not "product name" or "file name").
var personQualifiers = map[string]bool{
	"customer": true, "client": true, "contact": true, "billing": true, "shipping": true, "delivery": true, "home": true,
	"postal": true, "mailing": true, "private": true, "personal": true, "work": true, "mobile": true, "cell": true,
	"primary": true, "secondary": true, "member": true, "user": true, "recipient": true, "buyer": true, "patient": true,
	"employee": true, "student": true, "guest": true, "cliente": true, "kunde": true, "kunden": true, "du client": true,
	"de livraison": true, "de facturation": true, "de entrega": true, "privat": true, "privée": true,
}

// cjkHeaders are the Chinese and Japanese personal-data header words,
// matched inside a header ("客户姓名", "お客様の住所").
var cjkHeaders = []struct{ word, class string }{
	{"姓名", "name"}, {"名字", "name"}, {"氏名", "name"}, {"名前", "name"}, {"联系人", "name"}, {"收件人", "name"}, {"お名前", "name"},
	{"地址", "address"}, {"住址", "address"}, {"住所", "address"}, {"街道", "address"}, {"城市", "address"}, {"市区町村", "address"},
	{"邮编", "address"}, {"邮政编码", "address"}, {"郵便番号", "address"}, {"都道府県", "address"},
	{"电话", "phone"}, {"手机", "phone"}, {"電話", "phone"}, {"携帯", "phone"}, {"联系方式", "phone"},
	{"邮箱", "email"}, {"电子邮件", "email"}, {"メール", "email"}, {"電子メール", "email"},
	{"生日", "birth date"}, {"出生日期", "birth date"}, {"生年月日", "birth date"},
}

// tableBuilder gathers the cells of one table of a markup format (HTML,
// DOCX, PPTX, OpenDocument): cell text arrives in pieces between tags,
// and a row is scored when it ends.
type tableBuilder struct {
	tb     table
	cells  []cell
	cur    []byte
	inCell bool
	repeat int // how many columns the open cell stands for (ODF)
}

// startCell ends the open cell and opens one standing for n columns.
func (b *tableBuilder) startCell(s *Scan, n int) {
	b.endCell(s)
	b.inCell, b.repeat = true, n
}

// add appends text to the open cell; what does not fit is scanned as text.
func (b *tableBuilder) add(s *Scan, p []byte) {
	if len(b.cur)+len(p) > maxCell {
		s.text(p)
		return
	}
	b.cur = append(b.cur, p...)
}

func (b *tableBuilder) endCell(s *Scan) {
	if !b.inCell {
		return
	}
	c := s.cellOf(b.cur, b.tb.rows == 0)
	for range max(1, b.repeat) {
		if len(b.cells) < maxColumns {
			b.cells = append(b.cells, c)
		}
	}
	b.cur, b.inCell, b.repeat = b.cur[:0], false, 0
}

// endRow ends the open cell and scores the row.
func (b *tableBuilder) endRow(s *Scan) {
	b.endCell(s)
	if len(b.cells) > 0 {
		s.row(&b.tb, b.cells)
	}
	b.cells = b.cells[:0]
}
