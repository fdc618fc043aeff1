package mailhdr

import "sync"

// Entry is one field as Read reads it.
type Entry struct {
	Field
	Role Role
	// Text is the body decoded (RFC 2047, see Decode): what a reader of
	// the field sees. Empty for Trace fields, which are not read.
	Text string
	// List is the parsed address list of an address field (IsList), nil
	// for the others.
	List *List
	// Found are the address-like tokens a reader sees outside the list's
	// mailboxes: in a Text field's text; in the display names, comments,
	// group names and bare names of an address field; and in the whole
	// text of an address field that did not parse cleanly, whose every
	// address-like token then counts.
	Found []Found
}

// Reading is a header block read field by field.
type Reading struct {
	Header
	Entries []Entry // one per field of Header.Fields, in order

	// last is the last People worked out, reused when asked again for
	// the same envelope: the relay asks once for the body scan's watch
	// list and once for the policy's counts of the same message.
	mu   sync.Mutex
	last *peopleFor
}

// peopleFor is a People and the envelope it was worked out for.
type peopleFor struct {
	sender   string
	envelope []string
	p        *People
}

// Read splits block (see Split) and reads every field.
func Read(block []byte) *Reading {
	h := Split(block)
	r := &Reading{Header: h, Entries: make([]Entry, len(h.Fields))}
	for i, f := range h.Fields {
		r.Entries[i] = readField(f)
	}
	return r
}

func readField(f Field) Entry {
	e := Entry{Field: f, Role: RoleOf(f.Name)}
	if e.Role == Trace && f.AfterCR {
		// Part of the field before for a reader that ends lines at LF
		// only, which shows it: read as text.
		e.Role = Text
	}
	if e.Role == Trace {
		return e
	}
	body := f.Body()
	e.Text = Decode(body)
	if !e.Role.IsList() {
		e.Found = Find(e.Text)
		return e
	}
	l := ParseList(body)
	e.List = &l
	inList := map[string]bool{}
	for _, mb := range l.Boxes {
		inList[Key(mb.Addr)] = true
	}
	var more []Found
	add := func(s string) {
		for _, fd := range Find(s) {
			if !inList[Key(fd.Addr)] {
				inList[Key(fd.Addr)] = true
				more = append(more, fd)
			}
		}
	}
	for _, mb := range l.Boxes {
		add(mb.Name)
		for _, c := range mb.Comments {
			add(c)
		}
	}
	for _, s := range l.Groups {
		add(s)
	}
	for _, s := range l.Names {
		add(s)
	}
	for _, s := range l.Comments {
		add(s)
	}
	if !l.Clean {
		add(e.Text)
	}
	e.Found = more
	return e
}

// Texts returns what a reader sees of the entry as text, to look for names
// in: the whole decoded text of a Text field; the display names, comments,
// group names and bare names of an address field (its addresses are
// matched by address).
func (e *Entry) Texts() []string {
	if e.List == nil {
		if e.Text == "" {
			return nil
		}
		return []string{e.Text}
	}
	var out []string
	for _, mb := range e.List.Boxes {
		if mb.Name != "" {
			out = append(out, mb.Name)
		}
		out = append(out, mb.Comments...)
	}
	out = append(out, e.List.Groups...)
	out = append(out, e.List.Names...)
	out = append(out, e.List.Comments...)
	if !e.List.Clean {
		out = append(out, e.Text)
	}
	return out
}

// Authors returns the addresses of the From: (and Resent-From:) fields.
func (r *Reading) Authors() []Mailbox {
	var out []Mailbox
	for _, e := range r.Entries {
		if e.Role == Author {
			out = append(out, e.List.Boxes...)
		}
	}
	return out
}

// Values maps lowercased field names to their decoded values in order, for
// the policy's header variable.
func (r *Reading) Values() map[string][]string {
	m := map[string][]string{}
	for _, e := range r.Entries {
		if e.Name == "" {
			continue
		}
		v := e.Text
		if e.Role == Trace {
			v = Decode(e.Body())
		}
		m[e.Key()] = append(m[e.Key()], v)
	}
	return m
}

// authorTexts are Texts without the author's display names.
func (e *Entry) authorTexts() []string {
	var out []string
	for _, mb := range e.List.Boxes {
		out = append(out, mb.Comments...)
	}
	out = append(out, e.List.Groups...)
	out = append(out, e.List.Names...)
	out = append(out, e.List.Comments...)
	return out
}
