package policy

import "testing"

// The relay counts a client's messages only for a policy that uses them.
func TestUsesClientCounts(t *testing.T) {
	for _, c := range []struct {
		when string
		want bool
	}{
		{"visible.count > 1", false},
		{`client.user == "crm"`, false},
		{"client.messages_last_hour > 100", true},
		{"visible.count > 1 && client.recipients_last_day >= 10000", true},
	} {
		p := mustLoad(t, "policy:\n  rules:\n    - {name: r, when: '"+c.when+"', action: quarantine}\n")
		if got := p.UsesClientCounts(); got != c.want {
			t.Errorf("%s: UsesClientCounts = %v, want %v", c.when, got, c.want)
		}
	}
	if mustLoad(t, "").UsesClientCounts() {
		t.Error("the built-in policy uses client counts")
	}
}
