package policy

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-message/textproto"
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

// Recipient is one address shown in a To: or Cc: field.
type Recipient struct {
	// Name is the display name, RFC 2047-decoded ("" if none was given).
	Name string `json:"name,omitempty"`
	// Address is the addr-spec: the local part as written (unquoted) and
	// the domain normalized as in Domain.
	Address string `json:"address"`
	// Domain is lowercased; internationalized domains in Unicode form.
	Domain string `json:"domain"`
	// Internal is set when Domain is one of the policy's internal domains.
	Internal bool `json:"internal"`
	// Field is "to" or "cc": where the address was first shown.
	Field string `json:"field"`
}

// Visible is what every recipient of a message can see of the others: the
// addresses in all To: and Cc: fields, plus the header fields for
// conditions such as Precedence: bulk.
type Visible struct {
	// Recipients are the distinct addresses (compared case-insensitively)
	// in the order they first appear, To: fields before Cc: fields.
	Recipients []Recipient `json:"recipients"`
	// Domains are the distinct domains of Recipients, sorted.
	Domains []string `json:"domains"`
	// Count is len(Recipients); External + Internal == Count.
	Count    int `json:"count"`
	External int `json:"external"`
	Internal int `json:"internal"`
	// ExternalDomains is the number of distinct domains of external recipients.
	ExternalDomains int `json:"external_domains"`
	// Truncated is set when more than MaxVisible addresses were shown.
	Truncated bool `json:"truncated,omitempty"`
	// ParseError is set when the header block or any To:/Cc: field could
	// not be parsed. Then the counts are not to be trusted ("unparsable" is
	// not "nobody") and the policy fails closed. It never quotes the input.
	ParseError string `json:"parse_error,omitempty"`
	// Header maps lowercased field names to their values in order,
	// unfolded and RFC 2047-decoded.
	Header map[string][]string `json:"-"`

	internalKey string // the internal domains Internal was computed with
}

// ParseVisible reads the raw header block of a message (with or without
// the blank line that ends it) and returns what its recipients can see.
// internalDomains are matched exactly, or as "*.example.com" for any
// subdomain of example.com.
//
// Every To: and Cc: field counts, not only the first (go-message's
// Header.AddressList reads only the first, so a second To: field would slip
// past a policy built on it).
func ParseVisible(header []byte, internalDomains []string) Visible {
	v := Visible{Header: map[string][]string{}}
	if len(header) > MaxHeaderBytes {
		v.ParseError = fmt.Sprintf("header block larger than %d bytes", MaxHeaderBytes)
		v.finish(nil)
		return v
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(terminated(header))))
	if err != nil {
		v.ParseError = "header block: " + safeParseError(err)
	}

	var to, cc []string
	for f := h.Fields(); f.Next(); {
		key := strings.ToLower(f.Key())
		raw := f.Value()
		switch key {
		case "to":
			to = append(to, raw)
		case "cc":
			cc = append(cc, raw)
		}
		val, err := wordDecoder.DecodeHeader(raw)
		if err != nil {
			val = raw
		}
		v.Header[key] = append(v.Header[key], strings.ToValidUTF8(val, "\uFFFD"))
	}

	seen := map[string]bool{}
	add := func(field string, values []string) {
		for i, value := range values {
			list, err := parseAddressList(value)
			if err != nil {
				if v.ParseError == "" {
					v.ParseError = fmt.Sprintf("%s field %d of %d: %s", field, i+1, len(values), safeParseError(err))
				}
				continue
			}
			for _, a := range list {
				local, domain, ok := splitAddress(a.Address)
				domain = strings.ToValidUTF8(normDomain(domain), "\uFFFD")
				if !ok || domain == "" {
					if v.ParseError == "" {
						v.ParseError = fmt.Sprintf("%s field %d of %d: address without a domain", field, i+1, len(values))
					}
					continue
				}
				r := Recipient{
					Name:    strings.ToValidUTF8(a.Name, "\uFFFD"),
					Address: strings.ToValidUTF8(local, "\uFFFD") + "@" + domain,
					Field:   field,
				}
				r.Domain = r.Address[strings.LastIndexByte(r.Address, '@')+1:]
				k := addrKey(r.Address)
				if seen[k] {
					continue
				}
				if len(v.Recipients) >= MaxVisible {
					v.Truncated = true
					return
				}
				seen[k] = true
				v.Recipients = append(v.Recipients, r)
			}
		}
	}
	add("to", to)
	add("cc", cc)
	v.finish(internalDomains)
	return v
}

// terminated makes sure the block ends in a blank line, so a header block
// handed over without it still parses.
func terminated(h []byte) []byte {
	if len(h) == 0 || bytes.HasSuffix(h, []byte("\n\n")) || bytes.HasSuffix(h, []byte("\r\n\r\n")) {
		return h
	}
	out := make([]byte, 0, len(h)+4)
	out = append(out, h...)
	if !bytes.HasSuffix(h, []byte("\n")) {
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}

// finish fills the derived fields.
func (v *Visible) finish(internalDomains []string) {
	v.internalKey = strings.Join(internalDomains, ",")
	m := newDomainMatcher(internalDomains)
	domains := map[string]bool{}
	external := map[string]bool{}
	v.Internal, v.External = 0, 0
	for i := range v.Recipients {
		r := &v.Recipients[i]
		r.Internal = m.match(r.Domain)
		domains[r.Domain] = true
		if r.Internal {
			v.Internal++
		} else {
			v.External++
			external[r.Domain] = true
		}
	}
	v.Count = len(v.Recipients)
	v.ExternalDomains = len(external)
	v.Domains = make([]string, 0, len(domains))
	for d := range domains {
		v.Domains = append(v.Domains, d)
	}
	slices.Sort(v.Domains)
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

// NotVisible returns the distinct envelope recipients that no To: or Cc:
// field shows: the true Bcc recipients.
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

// domainMatcher decides which domains are internal.
type domainMatcher struct {
	exact    map[string]bool
	suffixes []string // ".example.com" for "*.example.com"
}

func newDomainMatcher(domains []string) domainMatcher {
	m := domainMatcher{exact: map[string]bool{}}
	for _, d := range domains {
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			m.suffixes = append(m.suffixes, "."+normDomain(rest))
		} else {
			m.exact[normDomain(d)] = true
		}
	}
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
