package content

// Kind is a kind of finding.
type Kind uint8

// The kinds of finding, in the order they are reported.
const (
	Email Kind = iota
	Phone
	Card
	IBAN
	Record
	numKinds
)

// Kinds lists every kind, in report order.
var Kinds = [...]Kind{Email, Phone, Card, IBAN, Record}

// String is the kind's name as variables, metrics and reports use it.
func (k Kind) String() string {
	switch k {
	case Email:
		return "email"
	case Phone:
		return "phone"
	case Card:
		return "card"
	case IBAN:
		return "iban"
	case Record:
		return "record"
	}
	return "unknown"
}

// Counts are distinct findings by kind.
type Counts struct {
	Addresses int `json:"addresses"`
	Phones    int `json:"phones"`
	Cards     int `json:"cards"`
	IBANs     int `json:"ibans"`
	Records   int `json:"records"`
}

// Get returns the count of kind k.
func (c Counts) Get(k Kind) int {
	switch k {
	case Email:
		return c.Addresses
	case Phone:
		return c.Phones
	case Card:
		return c.Cards
	case IBAN:
		return c.IBANs
	case Record:
		return c.Records
	}
	return 0
}

func (c *Counts) set(k Kind, n int) {
	switch k {
	case Email:
		c.Addresses = n
	case Phone:
		c.Phones = n
	case Card:
		c.Cards = n
	case IBAN:
		c.IBANs = n
	case Record:
		c.Records = n
	}
}

// Total is the sum over all kinds.
func (c Counts) Total() int { return c.Addresses + c.Phones + c.Cards + c.IBANs + c.Records }

// Reasons a part could not be inspected (Unscannable.Reason).
const (
	ReasonEncrypted = "encrypted" // an encrypted archive entry or document
	ReasonCorrupt   = "corrupt"   // the format could not be read
	ReasonSize      = "size"      // over the bytes-inflated bound
	ReasonRatio     = "ratio"     // over the compression-ratio bound
	ReasonEntries   = "entries"   // over the archive-entries bound
	ReasonDepth     = "depth"     // nested deeper than the bound
	ReasonTime      = "time"      // the scan ran out of time
)

// Unscannable is a part, or a piece of one (an archive entry), that could
// not be inspected. Detail is for people and holds no content values.
type Unscannable struct {
	Name   string `json:"name,omitempty"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Part is what one MIME part held: an attachment, or the message's own
// text (Attachment false).
type Part struct {
	// Name is the file name given for the part ("" for the message text).
	Name string `json:"name,omitempty"`
	// Type is the detected format: text, html, csv, json, xml, vcard,
	// icalendar, xlsx, docx, pptx, ods, odt, pdf, zip, gzip, message,
	// or "other" for what is not read (images, audio, unknown binary).
	Type       string `json:"type"`
	Attachment bool   `json:"attachment"`
	// Size is the part's decoded size in bytes.
	Size int64 `json:"size"`
	// Scanned is false for types that are not read, and for a part that
	// was unscannable as a whole.
	Scanned bool   `json:"scanned"`
	Counts  Counts `json:"counts"`
	// Samples are at most a few masked values per kind ("email",
	// "phone", ...): never a value in clear.
	Samples map[string][]string `json:"samples,omitempty"`
	// Columns names the kinds of personal data a table's header row
	// showed (name, address, phone, ...), as canonical words, not as the
	// header's own text.
	Columns []string `json:"columns,omitempty"`
	// Unscannable lists what in this part could not be inspected.
	Unscannable []Unscannable `json:"unscannable,omitempty"`
}

// Report is what the content scan of one message found.
type Report struct {
	// Totals are distinct over the whole message.
	Totals Counts `json:"totals"`
	// Truncated: a kind reached MaxDistinct; its total means "at least".
	Truncated bool `json:"truncated,omitempty"`
	// Parts lists the parts that hold something, every attachment, and
	// every part with an unscannable piece; at most MaxParts.
	Parts []Part `json:"parts,omitempty"`
	// MoreParts counts the parts left out of Parts.
	MoreParts int `json:"more_parts,omitempty"`
}

// Unscannable lists every unscannable piece of every part.
func (r *Report) Unscannable() []Unscannable {
	var out []Unscannable
	for _, p := range r.Parts {
		out = append(out, p.Unscannable...)
	}
	return out
}
