package policy

import (
	"slices"

	"github.com/bccguard/bccguard/policy/content"
)

// Watch is the list of a message's recipients whose address or name the
// body scan looks for: a copy of an exploded or bcc'd message cannot hide
// a recipient that its body or an attachment shows.
type Watch struct {
	Recipients []WatchedRecipient
}

// WatchedRecipient is one recipient: the address key (as addrKey
// computes it: lowercased local part, the domain in Unicode form) and
// the display names the header gave it (decoded).
type WatchedRecipient struct {
	Key   string
	Names []string
}

// NewWatch builds the watch list from the envelope recipients and the
// visible ones (with their names), each address once.
func NewWatch(envelope []string, vis *Visible) Watch {
	var w Watch
	idx := map[string]int{}
	add := func(addr, name string) {
		k := addrKey(addr)
		if k == "" {
			return
		}
		i, ok := idx[k]
		if !ok {
			i = len(w.Recipients)
			idx[k] = i
			w.Recipients = append(w.Recipients, WatchedRecipient{Key: k})
		}
		if name != "" {
			for _, n := range w.Recipients[i].Names {
				if n == name {
					return
				}
			}
			w.Recipients[i].Names = append(w.Recipients[i].Names, name)
		}
	}
	for _, r := range envelope {
		add(r, "")
	}
	if vis != nil {
		for _, r := range vis.Recipients {
			add(r.Address, r.Name)
		}
	}
	return w
}

// WatchFor builds the watch list of in: the envelope recipients and
// everyone the header shows (with every name it gives them), read from
// in.Visible when the caller has read the header already.
func WatchFor(in *Input) Watch {
	v := in.Visible
	if v == nil {
		r := readVisible(in.Header)
		v = &r
	}
	w := NewWatch(in.Recipients, nil)
	if v.reading == nil {
		return w
	}
	idx := map[string]int{}
	for i, r := range w.Recipients {
		idx[r.Key] = i
	}
	for _, who := range v.reading.People(in.Sender, in.Recipients).List {
		if who.Addr == "" || who.Own {
			continue
		}
		k := addrKey(who.Addr)
		i, ok := idx[k]
		if !ok {
			i = len(w.Recipients)
			idx[k] = i
			w.Recipients = append(w.Recipients, WatchedRecipient{Key: k})
		}
		for _, n := range who.Names {
			if !slices.Contains(w.Recipients[i].Names, n) {
				w.Recipients[i].Names = append(w.Recipients[i].Names, n)
			}
		}
	}
	return w
}

func (w Watch) content() content.Watch {
	c := content.Watch{Key: addrKey}
	for _, r := range w.Recipients {
		c.Keys = append(c.Keys, r.Key)
		c.Names = append(c.Names, r.Names)
	}
	return c
}
