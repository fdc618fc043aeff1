package policy

import (
	"context"
	"strings"
	"testing"
)

// leakyMailing goes to three customers of three domains; its body
// forwards a message whose header lists them all.
const leakyMailing = "From: crm@brand.example\r\nTo: Zoe Adams <zoe@alpha.example>, Bob Barker <bob@beta.example>, chen@gamma.example\r\n" +
	"Subject: survey\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n" +
	"--b\r\nContent-Type: message/rfc822\r\n\r\nTo: Zoe Adams <zoe@alpha.example>, Bob Barker <bob@beta.example>, chen@gamma.example\r\nSubject: survey\r\n\r\nhi all\r\n--b--\r\n"

// The unsafe-copy guard: an explode or bcc whose body shows other
// recipients becomes the on_unsafe_copy action; in monitor mode it is
// recorded as monitored.
func TestUnsafeCopyGuard(t *testing.T) {
	rcpts := []string{"zoe@alpha.example", "bob@beta.example", "chen@gamma.example"}
	tests := []struct {
		name, yaml   string
		action       Action
		rule         string
		monitor, msg bool
	}{
		{"built-in explode is held", "", Quarantine, UnsafeCopyRule, false, false},
		{"bcc is held", "policy:\n  rules:\n    - {name: b, when: 'true', action: bcc}\n", Quarantine, UnsafeCopyRule, false, false},
		{"reject", "policy:\n  on_unsafe_copy: reject\n  rules:\n    - {name: b, when: 'true', action: explode}\n", Reject, UnsafeCopyRule, false, true},
		{"allow", "policy:\n  on_unsafe_copy: allow\n  rules:\n    - {name: b, when: 'true', action: explode}\n", Explode, "b", false, false},
		{"monitor", "policy:\n  mode: monitor\n  rules:\n    - {name: b, when: 'true', action: explode}\n", Quarantine, UnsafeCopyRule, true, false},
		{"pass is not guarded", "policy:\n  rules:\n    - {name: b, when: 'true', action: pass}\n", Pass, "b", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.yaml)
			in := p.BuildInput([]byte(leakyMailing), Envelope{Sender: "crm@brand.example", Recipients: rcpts}, Client{})
			d, _ := p.Evaluate(context.Background(), in)
			if d.Action != tc.action || d.Rule != tc.rule || d.Monitor != tc.monitor || (d.Message != "") != tc.msg {
				t.Errorf("got %+v, want %s by %q (monitor %v, reply %v)", d, tc.action, tc.rule, tc.monitor, tc.msg)
			}
			if d.Rule == UnsafeCopyRule && !strings.Contains(d.Reason, "shows 3 of the message's recipients") {
				t.Errorf("reason %q does not say how many are shown", d.Reason)
			}
		})
	}
	// One envelope recipient whom the body shows: the one copy shows only
	// them, so it is made.
	p := mustLoad(t, "")
	in := p.BuildInput([]byte(strings.ReplaceAll(leakyMailing, ", Bob Barker <bob@beta.example>, chen@gamma.example", ", bob@beta.example")),
		Envelope{Sender: "crm@brand.example", Recipients: []string{"zoe@alpha.example"}}, Client{})
	if d, _ := p.Evaluate(context.Background(), in); d.Rule == UnsafeCopyRule {
		t.Errorf("a copy to the one recipient the body shows is held: %+v", d)
	}
}

func TestContentSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"policy:\n  on_unsafe_copy: hold\n", `bccguard.yaml:2: on_unsafe_copy: expected quarantine, reject or allow, not "hold"`},
		{"policy:\n  content:\n    phone_region: XX\n", `bccguard.yaml:3: content phone_region: "XX" is not a region code`},
		{"policy:\n  content:\n    max_inflated: lots\n", "bccguard.yaml:3: content max_inflated: expected a positive size"},
		{"policy:\n  content:\n    time_limt: 5s\n", `bccguard.yaml:3: policy content: unknown key "time_limt" (did you mean "time_limit"?)`},
	} {
		_, err := loadYAML(t, tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	p := mustLoad(t, "policy:\n  content: {phone_region: gb, max_entries: 5, time_limit: 2s}\n")
	if o := p.ScanOptions(); o.PhoneRegion != "GB" || o.Limits.MaxEntries != 5 || o.Limits.Time.Seconds() != 2 || o.Limits.MaxInflated == 0 {
		t.Errorf("ScanOptions %+v", o)
	}
}
