package mailhdr

import "slices"

// MaxPeople bounds the people People collects; beyond it People.Truncated
// is set, and no copy of such a message can be checked to be clean.
const MaxPeople = 250_000

// Person is someone a message is addressed to or shows, as its header and
// envelope tell.
type Person struct {
	// Addr is the address as first written (in the header, else in the
	// envelope); "" for a name shown without an address.
	Addr string
	// Key is Key(Addr), or "name:" and the NameKey for a bare name.
	Key string
	// Names are the display names the header gives the address, decoded,
	// distinct, in order; the comment a mailbox has instead of a display
	// name counts as one (some clients show it so).
	Names []string
	// Field is the lowercased name of the first field a recipient sees
	// that shows the person ("" when none does: a Bcc or envelope-only
	// recipient).
	Field string
	// Shown is set when a field a recipient sees shows the person: their
	// address, one of their names, or both.
	Shown bool
	// Envelope is set for envelope recipients (RCPT TO).
	Envelope bool
	// Listed is set for an address that no addressee field and no envelope
	// names, shown in a field that lists two or more such addresses (a
	// customer list in Reply-To: or X-Recipients:).
	Listed bool
	// Own is set for the originator's addresses (From:, Resent-From:, the
	// envelope sender): every copy shows them as the author, so they are
	// never "another recipient".
	Own bool
	// Addressee is set when an addressee or blind field names the address.
	Addressee bool

	addresseeNames []string // the display names addressee fields give it
}

// People are everyone a message is addressed to or shows, and which field
// shows whom.
type People struct {
	List []Person
	// Truncated is set when there were more than MaxPeople.
	Truncated bool

	r      *Reading
	index  map[string]int
	names  nameIndex
	shows  [][]int // per entry of r: the people it shows
	own    map[string]bool
	domain map[string]bool // the originator's domains
}

// People says who the header shows, given the envelope (sender "" and no
// recipients when it is not known): the addressees of the addressee and
// blind fields (display names and group names holding addresses included),
// the envelope recipients, the addresses that other fields show in a list,
// and names without an address in addressee fields. For each field it
// records whom it shows.
//
// An address outside the addressee fields that is neither a recipient nor
// in such a list is someone's own mailbox (a Reply-To: of the sender's, a
// list's address, an ESP's unsubscribe address) and not a person here; nor
// is an address at the originator's own domain, nor a List-* field's
// mailto: target.
//
// The result is shared: asked again for the same envelope, People returns
// the same *People, which callers must not change.
func (r *Reading) People(sender string, envelope []string) *People {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.last; l != nil && l.sender == sender && slices.Equal(l.envelope, envelope) {
		return l.p
	}
	p := r.people(sender, envelope)
	r.last = &peopleFor{sender: sender, envelope: slices.Clone(envelope), p: p}
	return p
}

func (r *Reading) people(sender string, envelope []string) *People {
	p := &People{r: r, index: map[string]int{}, own: map[string]bool{}, domain: map[string]bool{}}
	ownAddr := func(a string) {
		if a == "" {
			return
		}
		p.own[Key(a)] = true
		if d := DomainOf(a); d != "" {
			p.domain[d] = true
		}
	}
	for _, mb := range r.Authors() {
		ownAddr(mb.Addr)
	}
	ownAddr(sender)
	for _, e := range r.Entries {
		// A mailing list's own mailboxes are not people either.
		for _, f := range e.Found {
			if IsListInfra(e.Name, f.Mailto) {
				p.own[Key(f.Addr)] = true
			}
		}
	}

	// Addressees, To: first, then Cc:, the other addressee fields, the
	// blind ones.
	for _, pass := range []func(Entry) bool{
		func(e Entry) bool { return e.Is("To") },
		func(e Entry) bool { return e.Is("Cc") },
		func(e Entry) bool { return e.Role == Addressee && !e.Is("To") && !e.Is("Cc") },
		func(e Entry) bool { return e.Role == Blind },
	} {
		for _, e := range r.Entries {
			if !pass(e) {
				continue
			}
			for _, mb := range e.List.Boxes {
				if mb.Addr != "" {
					i := p.add(mb.Addr)
					p.addressee(i)
					p.name(i, mb.Name)
					if i >= 0 && mb.Name != "" && !slices.Contains(p.List[i].addresseeNames, mb.Name) {
						p.List[i].addresseeNames = append(p.List[i].addresseeNames, mb.Name)
					}
				}
			}
			for _, f := range e.Found {
				p.addressee(p.add(f.Addr))
			}
			for _, n := range e.List.Names {
				if k := NameKey(n); k != "" {
					p.addName(n, k)
				}
			}
		}
	}
	for _, a := range envelope {
		if i := p.add(a); i >= 0 {
			p.List[i].Envelope = true
		}
	}

	// Lists of other addresses in the other fields.
	for _, e := range r.Entries {
		if e.Role != Reply && e.Role != Author && e.Role != Text {
			continue
		}
		var cands []string
		seen := map[string]bool{}
		cand := func(a, also string, mailto bool) {
			k := Key(a)
			if _, ok := p.index[k]; ok || seen[k] {
				return
			}
			if also != "" {
				if _, ok := p.index[Key(also)]; ok {
					return
				}
			}
			if p.own[k] || p.domain[DomainOf(a)] {
				return
			}
			seen[k] = true
			cands = append(cands, a)
		}
		if e.Role == Reply {
			for _, mb := range e.List.Boxes {
				if mb.Addr != "" {
					cand(mb.Addr, "", false)
				}
			}
		}
		for _, f := range e.Found {
			cand(f.Addr, f.Also, f.Mailto)
		}
		if len(cands) >= 2 {
			for _, a := range cands {
				if i := p.add(a); i >= 0 {
					p.List[i].Listed = true
				}
			}
		}
	}
	for i := range p.List {
		if p.own[p.List[i].Key] {
			p.List[i].Own = true
		}
	}

	// Names given in reply fields to people known by address, and the
	// comments that stand in for a display name.
	for _, e := range r.Entries {
		if e.Role == Reply || e.Role == Addressee || e.Role == Blind {
			for _, mb := range e.List.Boxes {
				i, ok := p.index[Key(mb.Addr)]
				if !ok || mb.Addr == "" {
					continue
				}
				if e.Role == Reply {
					p.name(i, mb.Name)
				}
				if mb.Name == "" && len(mb.Comments) == 1 {
					p.name(i, mb.Comments[0])
				}
			}
		}
	}
	for i, who := range p.List {
		for _, n := range who.Names {
			p.names.add(NameKey(n), i)
		}
	}

	// Whom each field shows.
	p.shows = make([][]int, len(r.Entries))
	for ei := range r.Entries {
		e := &r.Entries[ei]
		if e.Role == Trace || e.Role == Blind {
			continue
		}
		p.shows[ei] = p.shownBy(e)
		for _, i := range p.shows[ei] {
			if !p.List[i].Shown {
				p.List[i].Shown = true
				p.List[i].Field = e.Key()
			}
		}
	}
	return p
}

// add records an address (once) and returns its index, -1 when full.
func (p *People) add(a string) int {
	k := Key(a)
	if i, ok := p.index[k]; ok {
		return i
	}
	if len(p.List) >= MaxPeople {
		p.Truncated = true
		return -1
	}
	p.index[k] = len(p.List)
	p.List = append(p.List, Person{Addr: a, Key: k})
	return len(p.List) - 1
}

// addName records a name shown without an address.
func (p *People) addName(n, key string) {
	k := "name:" + key
	if _, ok := p.index[k]; ok || len(p.List) >= MaxPeople {
		return
	}
	p.index[k] = len(p.List)
	p.List = append(p.List, Person{Key: k, Names: []string{n}})
}

func (p *People) addressee(i int) {
	if i >= 0 {
		p.List[i].Addressee = true
	}
}

func (p *People) name(i int, n string) {
	if i < 0 || n == "" || NameKey(n) == "" || slices.Contains(p.List[i].Names, n) {
		return
	}
	p.List[i].Names = append(p.List[i].Names, n)
}

// AddresseeNames are the display names the addressee fields give person
// i, in order: what the person's own copy may show as their name.
func (p *People) AddresseeNames(i int) []string { return p.List[i].addresseeNames }

// NamesIn returns the people any of whose names text holds as whole words,
// short names too (indexes, distinct, in order).
func (p *People) NamesIn(text string) []int {
	var out []int
	seen := map[int]bool{}
	p.names.find(words(text), func(i int, _ string) {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	})
	slices.Sort(out)
	return out
}

// Index returns the index of the person with address a (compared as Key).
func (p *People) Index(a string) (int, bool) {
	i, ok := p.index[Key(a)]
	return i, ok
}

// Shows returns the people the i-th entry of the reading shows by address
// or by name: indexes into List, distinct, in order. Trace and blind fields
// show nobody.
func (p *People) Shows(entry int) []int { return p.shows[entry] }

// shownBy finds whom an entry shows: the people whose address is among its
// mailboxes or address-like tokens, and those whose name its text holds.
// In free text only a telling name counts (see Telling); in a display name
// or comment any name of the person counts when it is the whole text.
func (p *People) shownBy(e *Entry) []int {
	var out []int
	seen := map[int]bool{}
	hit := func(i int) {
		if i >= 0 && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	byAddr := func(a string) bool {
		if a == "" {
			return false
		}
		i, ok := p.index[Key(a)]
		if ok {
			hit(i)
		}
		return ok
	}
	if e.List != nil && e.Role != Author {
		// The author's own mailbox shows the author, whom every copy
		// shows: it is matched by the names and tokens around it only.
		for _, mb := range e.List.Boxes {
			byAddr(mb.Addr)
		}
	}
	for _, f := range e.Found {
		if !byAddr(f.Addr) {
			byAddr(f.Also)
		}
	}
	texts := e.Texts()
	if e.Role == Author {
		// The author's display name is the author's, whoever else has it.
		texts = e.authorTexts()
	}
	for _, t := range texts {
		p.namesIn(t, e.List != nil, hit)
	}
	slices.Sort(out)
	return out
}

// namesIn calls hit for the people whose name text holds: a telling name
// anywhere in it, or (whole, when it is a display name or comment) any name.
func (p *People) namesIn(text string, whole bool, hit func(int)) {
	w := words(text)
	if len(w) == 0 {
		return
	}
	key := ""
	if whole {
		key = joinWords(w)
	}
	p.names.find(w, func(i int, k string) {
		if Telling(k) || k == key {
			hit(i)
		}
	})
}

func joinWords(w []string) string {
	n := 0
	for _, s := range w {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for i, s := range w {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return string(b)
}
