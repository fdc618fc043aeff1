package policy

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/bccguard/bccguard/internal/mailhdr"
)

// Bounds on the work ParseVisible does for one message.
const (
	// MaxHeaderBytes is the largest header block ParseVisible reads; a
	// larger one is a parse error (the relay's own limit is 1 MiB by default).
	MaxHeaderBytes = 8 << 20
	// MaxVisible is the most distinct visible addresses collected; beyond
	// it Visible.Truncated is set and the counts mean "at least".
	MaxVisible = 100_000
)

// Recipient is one address a recipient of the message can see in its
// header.
type Recipient struct {
	// Name is the first display name given for the address, RFC
	// 2047-decoded ("" if none was given); Names are all of them.
	Name  string   `json:"name,omitempty"`
	Names []string `json:"names,omitempty"`
	// Address is the addr-spec as first written: the local part unquoted,
	// the domain normalized as in Domain; the local part alone for an
	// unqualified address ("baz").
	Address string `json:"address"`
	// Domain is lowercased, internationalized domains in Unicode form; ""
	// for an unqualified address.
	Domain string `json:"domain"`
	// Internal is set when Domain is one of the policy's internal domains.
	Internal bool `json:"internal"`
	// Consumer is set when Domain is a consumer mailbox provider's.
	Consumer bool `json:"consumer,omitempty"`
	// Field is where the address is shown: "to" or "cc" when one of those
	// shows it, else the first other field that does ("reply-to",
	// "x-recipients", ...; "" for a line that is not a field).
	Field string `json:"field"`
	// Elsewhere is set when a field other than To:/Cc: shows it.
	Elsewhere bool `json:"elsewhere,omitempty"`
}

// Visible is what every recipient of a message can see of the others in
// its header, and the header fields for conditions such as Precedence: bulk.
type Visible struct {
	// Recipients are the distinct addresses (compared case-insensitively,
	// IDN forms alike) that any header field shows, To: fields first, then
	// Cc:, then the others: addressees, envelope recipients shown
	// anywhere, addresses in display names and group names, and lists of
	// other addresses (see mailhdr.People). The originator's own addresses
	// count only where an addressee field shows them.
	Recipients []Recipient `json:"recipients"`
	// Domains are the distinct domains of Recipients, sorted.
	Domains []string `json:"domains"`
	// Count is len(Recipients); External + Internal == Count.
	Count    int `json:"count"`
	External int `json:"external"`
	Internal int `json:"internal"`
	// Organisations counts distinct domains, each consumer-domain or
	// unqualified address as an organisation of its own;
	// ExternalDomains counts the organisations of external recipients.
	Organisations   int `json:"organisations"`
	ExternalDomains int `json:"external_domains"`
	// Consumer counts the recipients at consumer mailbox domains.
	Consumer int `json:"consumer"`
	// Elsewhere counts the recipients shown outside To:/Cc:; InNames those
	// shown inside a display name, group name or comment; Listed those
	// shown only in a list of other addresses in a non-addressee field.
	Elsewhere int `json:"elsewhere"`
	InNames   int `json:"in_names"`
	Listed    int `json:"listed"`
	// Fields are the lowercased names of the fields that show a
	// recipient, sorted.
	Fields []string `json:"fields"`
	// Truncated is set when more than MaxVisible addresses were shown.
	Truncated bool `json:"truncated,omitempty"`
	// ParseError is set when nothing can be made of the header block (it
	// is larger than MaxHeaderBytes); every other header is read, a field
	// that does not parse by every address-like token in it. It never
	// quotes the input.
	ParseError string `json:"parse_error,omitempty"`
	// Header maps lowercased field names to their values in order,
	// unfolded and RFC 2047-decoded.
	Header map[string][]string `json:"-"`

	reading *mailhdr.Reading
	people  *mailhdr.People
	key     string // what the counts were computed with (see finishKey)
}

// ParseVisible reads the raw header block of a message (with or without
// the blank line that ends it) and returns what its recipients can see,
// knowing nothing of its envelope. internalDomains are matched exactly, or
// as "*.example.com" for any subdomain of example.com.
//
// Every field counts, not only the first To: (go-message's
// Header.AddressList reads only the first, so a second To: field would slip
// past a policy built on it).
func ParseVisible(header []byte, internalDomains []string) Visible {
	v := readVisible(header)
	v.finish(newDomainMatcher(internalDomains), newDomainMatcher(consumerDomains), "", nil)
	return v
}

// ReadVisible wraps a header block the caller has read already (the relay
// reads it for DKIM too) for Input.Visible: Evaluate counts from it without
// reading the block again.
func ReadVisible(r *mailhdr.Reading) *Visible {
	n := len(r.Tail)
	for _, f := range r.Fields {
		n += len(f.Raw)
	}
	if n > MaxHeaderBytes {
		v := tooLarge()
		return &v
	}
	return &Visible{reading: r, Header: r.Values()}
}

// readVisible reads the header block once; finish counts.
func readVisible(header []byte) Visible {
	if len(header) > MaxHeaderBytes {
		return tooLarge()
	}
	v := Visible{reading: mailhdr.Read(header)}
	v.Header = v.reading.Values()
	return v
}

// tooLarge is the Visible of a header block larger than MaxHeaderBytes, of
// which nothing is read.
func tooLarge() Visible {
	return Visible{Header: map[string][]string{}, ParseError: fmt.Sprintf("header block larger than %d bytes", MaxHeaderBytes)}
}

// finishKey identifies what finish was given.
func finishKey(internal, consumer domainMatcher, sender string, rcpts []string) string {
	return internal.key + "\x00" + consumer.key + "\x00" + sender + "\x00" + strings.Join(rcpts, "\x00")
}

// finish works out whom the header shows, given the envelope, and counts.
func (v *Visible) finish(internal, consumer domainMatcher, sender string, rcpts []string) {
	v.key = finishKey(internal, consumer, sender, rcpts)
	v.Recipients, v.Domains, v.Fields = nil, nil, nil
	v.Count, v.External, v.Internal, v.Organisations, v.ExternalDomains = 0, 0, 0, 0, 0
	v.Consumer, v.Elsewhere, v.InNames, v.Listed, v.Truncated = 0, 0, 0, 0, false
	if v.reading == nil {
		return
	}
	p := v.reading.People(sender, rcpts)
	v.people = p
	v.Truncated = p.Truncated

	// Which fields show whom.
	n := len(p.List)
	field := make([]string, n)
	byAddressee := make([]bool, n)
	elsewhere := make([]bool, n)
	fields := map[string]bool{}
	for i, e := range v.reading.Entries {
		for _, j := range p.Shows(i) {
			switch {
			case e.Role == mailhdr.Addressee:
				byAddressee[j] = true
				if field[j] == "" || field[j] != "to" && e.Is("To") {
					field[j] = e.Key()
				}
			case field[j] == "" && !byAddressee[j]:
				field[j] = e.Key()
			}
			if !e.Is("To") && !e.Is("Cc") {
				elsewhere[j] = true
			}
		}
	}
	inNames := map[string]bool{}
	for _, e := range v.reading.Entries {
		if e.List != nil && e.Role != mailhdr.Blind {
			for _, f := range e.Found {
				inNames[mailhdr.Key(f.Addr)] = true
			}
		}
	}

	counted := make([]bool, n)
	domains := map[string]bool{}
	orgs := map[string]bool{}
	extOrgs := map[string]bool{}
	for i, who := range p.List {
		if who.Addr == "" || !who.Shown || who.Own && !byAddressee[i] {
			continue
		}
		if len(v.Recipients) >= MaxVisible {
			v.Truncated = true
			break
		}
		r := Recipient{Names: who.Names, Address: who.Addr, Field: field[i], Elsewhere: elsewhere[i]}
		if len(who.Names) > 0 {
			r.Name = who.Names[0]
		}
		org := "address:" + who.Key
		if local, domain, ok := mailhdr.SplitAddr(who.Addr); ok {
			r.Domain = strings.ToValidUTF8(mailhdr.NormDomain(domain), "\uFFFD")
			r.Address = strings.ToValidUTF8(local, "\uFFFD") + "@" + r.Domain
			r.Consumer = consumer.match(r.Domain)
			domains[r.Domain] = true
			if !r.Consumer {
				org = r.Domain
			}
		}
		r.Internal = r.Domain != "" && internal.match(r.Domain)
		orgs[org] = true
		if r.Internal {
			v.Internal++
		} else {
			v.External++
			extOrgs[org] = true
		}
		if r.Consumer {
			v.Consumer++
		}
		if r.Elsewhere {
			v.Elsewhere++
		}
		if inNames[who.Key] {
			v.InNames++
		}
		if who.Listed {
			v.Listed++
		}
		counted[i] = true
		v.Recipients = append(v.Recipients, r)
	}
	for i, e := range v.reading.Entries {
		if e.Name == "" {
			continue
		}
		for _, j := range p.Shows(i) {
			if counted[j] {
				fields[e.Key()] = true
				break
			}
		}
	}
	v.Count = len(v.Recipients)
	v.Organisations, v.ExternalDomains = len(orgs), len(extOrgs)
	for d := range domains {
		v.Domains = append(v.Domains, d)
	}
	slices.Sort(v.Domains)
	for f := range fields {
		v.Fields = append(v.Fields, f)
	}
	slices.Sort(v.Fields)
}

// NotInEnvelope returns the visible recipients that are not among the
// envelope recipients: shown to everyone, but not sent the message.
func (v *Visible) NotInEnvelope(envelope []string) []Recipient {
	env := make(map[string]bool, len(envelope))
	for _, e := range envelope {
		env[addrKey(e)] = true
	}
	var out []Recipient
	for _, r := range v.Recipients {
		if !env[addrKey(r.Address)] {
			out = append(out, r)
		}
	}
	return out
}

// NotVisible returns the distinct envelope recipients that no header field
// shows: the true Bcc recipients.
func (v *Visible) NotVisible(envelope []string) []string {
	vis := make(map[string]bool, len(v.Recipients))
	for _, r := range v.Recipients {
		vis[addrKey(r.Address)] = true
	}
	var out []string
	for _, e := range envelope {
		k := addrKey(e)
		if !vis[k] {
			vis[k] = true // count each once
			out = append(out, e)
		}
	}
	return out
}

// domainMatcher decides which domains are in a list (internal, consumer).
type domainMatcher struct {
	exact    map[string]bool
	suffixes []string // ".example.com" for "*.example.com"
	// key tells matchers apart: a digest of the list, since finishKey
	// puts it in a string twice per message and the consumer list alone
	// is over a kilobyte.
	key string
}

func newDomainMatcher(domains ...[]string) domainMatcher {
	m := domainMatcher{exact: map[string]bool{}}
	var all []string
	for _, list := range domains {
		for _, d := range list {
			all = append(all, d)
			if rest, ok := strings.CutPrefix(d, "*."); ok {
				m.suffixes = append(m.suffixes, "."+mailhdr.NormDomain(rest))
			} else {
				m.exact[mailhdr.NormDomain(d)] = true
			}
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(all, ",")))
	m.key = string(sum[:16])
	return m
}

func (m domainMatcher) match(domain string) bool {
	if m.exact[domain] {
		return true
	}
	for _, s := range m.suffixes {
		if strings.HasSuffix(domain, s) {
			return true
		}
	}
	return false
}
