package content

import (
	"fmt"
	"strings"
)

// Summary is the "What it contains" section as lines of text, for the
// command line (`quarantine show`, `policy test`): per part its name,
// type, size and counts by kind, the masked samples, and what could not
// be inspected.
func (r *Report) Summary() []string {
	if r == nil {
		return nil
	}
	var out []string
	out = append(out, "total: "+countsText(r.Totals))
	for _, p := range r.Parts {
		name := p.Name
		if name == "" {
			name = "(message text)"
		}
		status := "scanned"
		if !p.Scanned {
			status = "not read"
		}
		out = append(out, fmt.Sprintf("%s [%s, %s, %s]: %s", name, p.Type, sizeText(p.Size), status, countsText(p.Counts)))
		for _, k := range Kinds {
			if s := p.Samples[k.String()]; len(s) > 0 {
				out = append(out, fmt.Sprintf("    %s e.g. %s", k, strings.Join(s, ", ")))
			}
		}
		if len(p.Columns) > 0 {
			out = append(out, "    columns: "+strings.Join(p.Columns, ", "))
		}
		for _, u := range p.Unscannable {
			out = append(out, fmt.Sprintf("    unscannable (%s): %s %s", u.Reason, orPart(u.Name), u.Detail))
		}
	}
	if r.MoreParts > 0 {
		out = append(out, fmt.Sprintf("… and %d more parts", r.MoreParts))
	}
	return out
}

func orPart(n string) string {
	if n == "" {
		return "the part:"
	}
	return n + ":"
}

func countsText(c Counts) string {
	if c.Total() == 0 {
		return "nothing found"
	}
	var parts []string
	for _, k := range Kinds {
		if n := c.Get(k); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, plural(k, n)))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(k Kind, n int) string {
	w := map[Kind]string{Email: "address", Phone: "phone number", Card: "card number", IBAN: "IBAN", Record: "record"}[k]
	if n == 1 {
		return w
	}
	if k == Email {
		return "addresses"
	}
	return w + "s"
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
