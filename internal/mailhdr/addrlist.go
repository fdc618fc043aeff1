package mailhdr

import "strings"

// Mailbox is one address of an address list, as a mail client shows it.
type Mailbox struct {
	// Name is the display name (the phrase before "<"), RFC 2047-decoded;
	// never taken from a comment.
	Name string
	// Addr is the addr-spec with the local part unquoted; the local part
	// alone for an unqualified address ("baz"); "" for "<>".
	Addr string
	// Comments are the decoded comments in and around the mailbox.
	Comments []string
	// Group is the decoded name of the group the mailbox is in, "" if none.
	Group string
}

// List is an address list as ParseList reads it.
type List struct {
	Boxes []Mailbox
	// Groups are the decoded names of the list's groups, empty ones too
	// ("undisclosed-recipients").
	Groups []string
	// Names are phrases that name someone without an address
	// ("To: Mary Smith"), decoded.
	Names []string
	// Comments are the comments outside any mailbox, decoded.
	Comments []string
	// Clean is false when something in the field was not an address, a
	// group or an empty element: then the field is not fully understood,
	// and a reader must also look at it as text (see Find).
	Clean bool
}

// ParseList reads an address list (an unfolded field body) with RFC 5322's
// whole grammar, obsolete syntax (section 4.4) included: comments and
// folding white space anywhere, obs-route (<@a.example,@b.example:x@y>),
// obs-phrase ("John Q. Public"), obs-local-part and obs-domain
// (john . doe @ example . com), empty list elements. It also reads what
// mailers write and clients accept: ";" between addresses outside a group,
// a missing comma between two addr-specs, an unquoted "@" in a display name
// (Mikel@Lindsaar <mikel@example.com>), dots at the ends or doubled in a
// local part, raw 8-bit text, encoded words inside quoted strings, and
// unqualified addresses ("To: baz"). It never fails; what it could not read
// sets Clean to false.
func ParseList(body string) List {
	buf := tokenBufs.Get().(*[]token)
	toks, ok := lex(body, (*buf)[:0])
	p := &listParser{toks: toks, list: List{Clean: ok}}
	p.parse()
	*buf = toks
	putTokens(buf)
	return p.list
}

type listParser struct {
	toks []token
	pos  int
	list List
}

func (p *listParser) peek() byte {
	if p.pos >= len(p.toks) {
		return 0
	}
	return p.toks[p.pos].kind
}

// cfws skips white space and comments and returns the comments, decoded.
func (p *listParser) cfws() []string {
	var cs []string
	for p.pos < len(p.toks) {
		switch t := p.toks[p.pos]; t.kind {
		case tSpace:
		case tComment:
			cs = append(cs, Decode(t.text))
		default:
			return cs
		}
		p.pos++
	}
	return cs
}

func (p *listParser) parse() {
	for p.pos < len(p.toks) {
		p.list.Comments = append(p.list.Comments, p.cfws()...)
		switch p.peek() {
		case 0:
			return
		case ',', ';': // empty elements (obs-addr-list); ";" outside a group
			p.pos++
			continue
		}
		p.address("")
	}
}

// phrase reads words, dots and CFWS up to the next special and returns
// them: the words for a display name or a local part.
type phrase struct {
	words    []token // atoms, quoted strings, dots, literals, in order; tSpace between words separated by CFWS
	comments []string
	start    int
}

func (p *listParser) phrase() phrase {
	ph := phrase{start: p.pos}
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch t.kind {
		case tAtom, tQuoted, '.', tLiteral:
			ph.words = append(ph.words, t)
		case tSpace:
			if n := len(ph.words); n > 0 && ph.words[n-1].kind != tSpace {
				ph.words = append(ph.words, t)
			}
		case tComment:
			ph.comments = append(ph.comments, Decode(t.text))
			if n := len(ph.words); n > 0 && ph.words[n-1].kind != tSpace {
				ph.words = append(ph.words, token{tSpace, " "})
			}
		default:
			ph.trim()
			return ph
		}
		p.pos++
	}
	ph.trim()
	return ph
}

func (ph *phrase) trim() {
	for len(ph.words) > 0 && ph.words[len(ph.words)-1].kind == tSpace {
		ph.words = ph.words[:len(ph.words)-1]
	}
}

// text is the phrase as a display name shows it, decoded.
func (ph phrase) text() string {
	var b strings.Builder
	for _, w := range ph.words {
		b.WriteString(w.text)
	}
	return strings.TrimSpace(Decode(b.String()))
}

// local is the phrase as a local part: its words and dots without the
// white space obs-local-part allows around the dots. spaced reports white
// space between two words (not next to a dot): then it is no local part.
func (ph phrase) local() (s string, spaced bool) {
	var b strings.Builder
	for i, w := range ph.words {
		if w.kind == tSpace {
			if i > 0 && i+1 < len(ph.words) && ph.words[i-1].kind != '.' && ph.words[i+1].kind != '.' {
				spaced = true
			}
			continue
		}
		b.WriteString(w.text)
	}
	return b.String(), spaced
}

// address reads one mailbox or group (group is the enclosing group, "" at
// the top level).
func (p *listParser) address(group string) {
	ph := p.phrase()
	switch p.peek() {
	case ':':
		if group != "" {
			// A group inside a group: not RFC 5322. Read on as a name.
			p.list.Clean = false
			p.pos++
			p.list.Names = append(p.list.Names, ph.text())
			return
		}
		p.group(ph)
	case '<':
		mb := Mailbox{Name: ph.text(), Comments: ph.comments, Group: group}
		p.angle(&mb)
		p.add(mb)
	case '@':
		p.addrSpec(ph, group)
	case '>':
		p.pos++ // a stray ">"
		p.list.Clean = false
		p.bare(ph, group)
	default: // ',', ';' or the end
		p.bare(ph, group)
	}
}

// bare handles an element with no "@" and no "<": an unqualified address
// when it is one dotted word, else a name without an address.
func (p *listParser) bare(ph phrase, group string) {
	p.list.Comments = append(p.list.Comments, ph.comments...)
	if len(ph.words) == 0 {
		return
	}
	local, spaced := ph.local()
	if spaced || strings.ContainsAny(local, " ") {
		p.list.Names = append(p.list.Names, ph.text())
		return
	}
	p.add(Mailbox{Addr: toUTF8(local), Group: group})
}

func (p *listParser) group(ph phrase) {
	p.pos++ // ':'
	name := ph.text()
	p.list.Groups = append(p.list.Groups, name)
	p.list.Comments = append(p.list.Comments, ph.comments...)
	for {
		p.list.Comments = append(p.list.Comments, p.cfws()...)
		switch p.peek() {
		case 0:
			return // a group without its ";": read as if it had one
		case ';':
			p.pos++
			p.list.Comments = append(p.list.Comments, p.cfws()...)
			return
		case ',':
			p.pos++
			continue
		}
		p.address(name)
	}
}

// angle reads "<" [obs-route] addr-spec ">" and what follows up to the next
// element, into mb.
func (p *listParser) angle(mb *Mailbox) {
	p.pos++ // '<'
	mb.Comments = append(mb.Comments, p.cfws()...)
	if p.peek() == '@' {
		// obs-route: "@a.example,@b.example:" before the addr-spec, which
		// is dropped as RFC 5322 4.4 says.
		for p.pos < len(p.toks) && p.peek() != ':' && p.peek() != '>' {
			p.pos++
		}
		if p.peek() == ':' {
			p.pos++
		} else {
			p.list.Clean = false
		}
		mb.Comments = append(mb.Comments, p.cfws()...)
	}
	if p.peek() != '>' {
		local := p.phrase()
		mb.Comments = append(mb.Comments, local.comments...)
		l, spaced := local.local()
		if spaced {
			p.list.Clean = false
		}
		mb.Addr = toUTF8(l)
		if p.peek() == '@' {
			p.pos++
			d, cs := p.domain()
			mb.Comments = append(mb.Comments, cs...)
			mb.Addr += "@" + d
		}
	}
	if p.peek() == '>' {
		p.pos++
	} else {
		p.list.Clean = false
		p.skipToElement()
	}
	p.trailer(mb)
}

// trailer reads the CFWS after a mailbox; anything else before the next
// element is not understood.
func (p *listParser) trailer(mb *Mailbox) {
	mb.Comments = append(mb.Comments, p.cfws()...)
	switch p.peek() {
	case 0, ',', ';':
	default:
		p.list.Clean = false
		p.skipToElement()
	}
}

// skipToElement skips to the next "," or ";" at this level (or the end).
func (p *listParser) skipToElement() {
	for p.pos < len(p.toks) {
		switch p.peek() {
		case ',', ';':
			return
		}
		p.pos++
	}
}

// addrSpec reads local "@" domain, with ph the local part already read.
func (p *listParser) addrSpec(ph phrase, group string) {
	p.pos++ // '@'
	d, cs := p.domain()
	local, spaced := ph.local()
	mb := Mailbox{Comments: append(ph.comments, cs...), Group: group}
	if spaced {
		// "John Doe@example.com": the words before the last are a name.
		i := len(ph.words) - 1
		for i > 0 && !(ph.words[i].kind == tSpace && ph.words[i-1].kind != '.' && (i+1 >= len(ph.words) || ph.words[i+1].kind != '.')) {
			i--
		}
		name := phrase{words: ph.words[:i]}
		rest := phrase{words: ph.words[i+1:]}
		mb.Name = name.text()
		local, _ = rest.local()
		p.list.Clean = false
	}
	mb.Addr = toUTF8(local) + "@" + d
	mb.Comments = append(mb.Comments, p.cfws()...)
	switch p.peek() {
	case '<':
		// An unquoted "@" in a display name: Mikel@Lindsaar <mikel@...>.
		var b strings.Builder
		for _, t := range p.toks[ph.start:p.pos] {
			if t.kind == tComment {
				continue
			}
			b.WriteString(t.text)
		}
		named := Mailbox{Name: strings.TrimSpace(Decode(b.String())), Comments: mb.Comments, Group: group}
		p.angle(&named)
		p.add(named)
		return
	case tAtom, tQuoted:
		// Two addr-specs without a comma between them: the next element.
		p.list.Clean = false
		p.add(mb)
		return
	}
	p.trailer(&mb)
	p.add(mb)
}

// domain reads a domain (dot-atom, obs-domain with CFWS around its dots, or
// a domain literal) and returns it with the comments in it.
func (p *listParser) domain() (string, []string) {
	var b strings.Builder
	var cs []string
	for p.pos < len(p.toks) {
		start, ncs := p.pos, len(cs)
		cs = append(cs, p.cfws()...)
		t := p.peek()
		switch {
		case t == tAtom || t == tLiteral || t == '.':
			if t != '.' && b.Len() > 0 && !strings.HasSuffix(b.String(), ".") && p.pos > start {
				// White space between two labels without a dot: the
				// domain has ended (the next word is something else).
				p.pos = start
				return toUTF8(b.String()), cs[:ncs]
			}
			b.WriteString(p.toks[p.pos].text)
			p.pos++
		default:
			return toUTF8(b.String()), cs
		}
	}
	return toUTF8(b.String()), cs
}

func (p *listParser) add(mb Mailbox) {
	if mb.Addr == "" && mb.Name == "" {
		p.list.Comments = append(p.list.Comments, mb.Comments...)
		return
	}
	p.list.Boxes = append(p.list.Boxes, mb)
}
