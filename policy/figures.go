package policy

// Figure is a count a decision rests on that is recorded with a hold and
// shown to its reviewers: one of the variables, under a label for people.
type Figure struct {
	// Name is the variable, as conditions and the reason name it
	// ("visible.count").
	Name string
	// Label is how the review page names it ("visible recipients").
	Label string
	// Always is set for a figure recorded even when it is zero; the others
	// are recorded only when the message has some.
	Always bool
}

// FigureTable lists the figures in the order the review page shows them.
// It is the one place their names are spelled: the relay records a hold's
// figures from it, the review page labels them with it, VARIABLES.md lists
// it, and a test keeps every Name an int variable of the variable table,
// so a figure is valued exactly as conditions see it.
var FigureTable = []Figure{
	{"visible.count", "visible recipients", true},
	{"visible.external", "external visible", true},
	{"visible.domains", "visible organisations", true},
	{"visible.elsewhere", "shown outside To/Cc", true},
	{"envelope.count", "envelope recipients", true},
	{"body.addresses", "addresses in the body", true},
	{"body.phones", "phone numbers in the body", false},
	{"body.cards", "card numbers in the body", false},
	{"body.ibans", "IBANs in the body", false},
	{"body.records", "records of personal data", false},
	{"body.recipients", "recipients the body shows", false},
}

// Figures are what one evaluation counted, returned by Evaluate so that
// the caller records them (with a hold, in its own counts) from the facts
// the rules saw: nothing is parsed or counted a second time. The zero
// Figures (no policy evaluated) has no counts and no visible recipients.
type Figures struct{ f *facts }

// Counts maps the Name of each figure of FigureTable to its value: every
// Always figure, and the others when they are not zero. The map is the
// caller's own.
func (fg Figures) Counts() map[string]int {
	out := map[string]int{}
	if fg.f == nil {
		return out
	}
	for _, x := range FigureTable {
		n, _ := variableByName[x.Name].get(fg.f).(int)
		if x.Always || n != 0 {
			out[x.Name] = n
		}
	}
	return out
}

// Visible is what the message's header shows, as the evaluation counted
// it; nil for the zero Figures.
func (fg Figures) Visible() *Visible {
	if fg.f == nil {
		return nil
	}
	return fg.f.vis
}
