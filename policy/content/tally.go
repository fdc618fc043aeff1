package content

import (
	"hash/maphash"
	"slices"
)

// MaxDistinct is the most distinct values counted of one kind; beyond it
// the report is Truncated ("at least this many").
const MaxDistinct = 100_000

// maxSamples is how many masked samples a part keeps of each kind.
const maxSamples = 3

// hashSet counts distinct values by a 64-bit hash of their canonical
// form, with no allocation per value (a collision needs about 2^32 values
// to become likely). Each entry notes the last part that saw it, so one
// map counts both the message's distinct values and the current part's.
type hashSet struct {
	seen      map[uint64]uint32
	limit     int
	truncated bool
	part      int // distinct values of the current part
}

// newHashSet makes an empty set; its map is made on the first add, as
// most messages have no finding of most kinds.
func newHashSet(limit int) hashSet { return hashSet{limit: limit} }

// add reports whether h is new to the message and whether it is new to
// part; a full set takes nothing more.
func (s *hashSet) add(h uint64, part uint32) (newToMessage, newToPart bool) {
	if p, ok := s.seen[h]; ok {
		if p != part {
			s.seen[h] = part
			s.part++
			return false, true
		}
		return false, false
	}
	if len(s.seen) >= s.limit {
		s.truncated = true
		return false, false
	}
	if s.seen == nil {
		s.seen = map[uint64]uint32{}
	}
	s.seen[h] = part
	s.part++
	return true, true
}

// tally is the findings of one message: distinct sets over the message
// and over the part being read, the parts reported, and what the watch
// list saw.
type tally struct {
	seed   maphash.Seed
	total  [numKinds]hashSet
	partNo uint32 // numbers the parts, from 1; 0 is "no part"
	cur    *Part
	parts  []Part
	more   int
	watch  *watcher
	lower  []byte
	// onEmail sees each new distinct address (tests only).
	onEmail func([]byte)
}

// maxParts bounds the parts listed in a report.
const maxParts = 200

func newTally(limit int, w *watcher) *tally {
	t := &tally{seed: maphash.MakeSeed(), watch: w}
	for k := range t.total {
		t.total[k] = newHashSet(limit)
	}
	return t
}

// begin starts a part; findings until end are counted in it too.
func (t *tally) begin(p Part) {
	t.cur = &p
	t.partNo++
	for k := range t.total {
		t.total[k].part = 0
	}
}

// end closes the current part and keeps it if it is worth reporting.
func (t *tally) end() {
	p := t.cur
	if p == nil {
		return
	}
	t.cur = nil
	for k := range t.total {
		p.Counts.set(Kind(k), t.total[k].part)
		t.total[k].part = 0
	}
	if !p.Attachment && p.Counts.Total() == 0 && len(p.Unscannable) == 0 {
		return // plain message text with nothing in it
	}
	if len(t.parts) >= maxParts {
		t.more++
		return
	}
	t.parts = append(t.parts, *p)
}

// unscannable notes that (a piece of) the current part could not be read.
func (t *tally) unscannable(u Unscannable) {
	if t.cur == nil {
		t.begin(Part{Type: u.Type})
		defer t.end()
	}
	if len(t.cur.Unscannable) < 20 {
		t.cur.Unscannable = append(t.cur.Unscannable, u)
	}
}

// found counts one value of kind k in its canonical form; mask makes its
// sample, called only when one is kept. It reports whether the value is
// new to the message.
func (t *tally) found(k Kind, canon []byte, mask func() string) bool {
	h := maphash.Bytes(t.seed, canon)
	part := uint32(0)
	if t.cur != nil {
		part = t.partNo
	}
	isNew, partNew := t.total[k].add(h, part)
	if t.cur != nil && partNew && mask != nil {
		if s := t.cur.Samples[kindName(k)]; len(s) < maxSamples {
			if t.cur.Samples == nil {
				t.cur.Samples = map[string][]string{}
			}
			t.cur.Samples[kindName(k)] = append(s, mask())
		}
	}
	return isNew
}

func kindName(k Kind) string { return k.String() }

// email counts an address found in text.
func (t *tally) email(a []byte) {
	t.lower = t.lower[:0]
	for _, c := range a {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		t.lower = append(t.lower, c)
	}
	if t.found(Email, t.lower, func() string { return maskEmail(t.lower) }) {
		if t.onEmail != nil {
			t.onEmail(t.lower)
		}
		t.watch.address(t.lower)
	}
}

// columns notes the personal-data columns a table header named.
func (t *tally) columns(cs []string) {
	if t.cur == nil {
		return
	}
	for _, c := range cs {
		if !slices.Contains(t.cur.Columns, c) {
			t.cur.Columns = append(t.cur.Columns, c)
		}
	}
	slices.Sort(t.cur.Columns)
}

func (t *tally) report() Report {
	r := Report{Parts: t.parts, MoreParts: t.more}
	for k := range t.total {
		r.Totals.set(Kind(k), len(t.total[k].seen))
		r.Truncated = r.Truncated || t.total[k].truncated
	}
	return r
}
