package policy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
)

// TestCase is one entry of the policy's `tests:` list: a message file, an
// envelope, and the action the policy is expected to take. Like
// `promtool test rules`, it lets a policy change be checked before it is
// deployed.
type TestCase struct {
	Name string `json:"name"`
	// Message is the file as written in the configuration; Path is where
	// it is read from (relative to the configuration file's folder).
	Message string `json:"message"`
	Path    string `json:"path"`
	// From and Rcpt are the envelope; empty means "from the headers"
	// (From:, and To:/Cc:/Bcc:), as for BuildInput.
	From     string     `json:"from,omitempty"`
	Rcpt     []string   `json:"rcpt,omitempty"`
	User     string     `json:"user,omitempty"`
	ClientIP netip.Addr `json:"client_ip,omitzero"`
	Listener string     `json:"listener,omitempty"`
	// Expect is the expected Decision.Action (what would happen in
	// enforce mode; Decision.Monitor is not compared).
	Expect Action `json:"expect"`
	// Rule, when CheckRule is set, is the expected Decision.Rule ("" for
	// the default action).
	Rule      string `json:"rule,omitempty"`
	CheckRule bool   `json:"-"`
	// File and Line locate the test case in the configuration.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// TestResult is the outcome of one TestCase.
type TestResult struct {
	Case     TestCase `json:"case"`
	Decision Decision `json:"decision"`
	Passed   bool     `json:"passed"`
	// Failure says what went wrong, when the test did not pass.
	Failure string `json:"failure,omitempty"`
}

// Tests returns the policy's test cases.
func (p *Policy) Tests() []TestCase { return append([]TestCase(nil), p.tests...) }

// RunTests runs the policy's test cases. loadMessage reads a test message
// (nil: os.ReadFile); it is given TestCase.Path.
func (p *Policy) RunTests(ctx context.Context, loadMessage func(path string) ([]byte, error)) []TestResult {
	if loadMessage == nil {
		loadMessage = os.ReadFile
	}
	out := make([]TestResult, 0, len(p.tests))
	for _, tc := range p.tests {
		res := TestResult{Case: tc}
		raw, err := loadMessage(tc.Path)
		if err != nil {
			res.Failure = fmt.Sprintf("cannot read message: %v", err)
			out = append(out, res)
			continue
		}
		in := p.BuildInput(raw, Envelope{Sender: tc.From, Recipients: tc.Rcpt},
			Client{Listener: tc.Listener, IP: tc.ClientIP, User: tc.User})
		res.Decision, _ = p.Evaluate(ctx, in)
		switch {
		case res.Decision.Action != tc.Expect:
			res.Failure = fmt.Sprintf("expected %s, got %s (%s)", tc.Expect, res.Decision.Action, describe(res.Decision))
		case tc.CheckRule && res.Decision.Rule != tc.Rule:
			res.Failure = fmt.Sprintf("expected rule %q, got %s", tc.Rule, describe(res.Decision))
		default:
			res.Passed = true
		}
		out = append(out, res)
	}
	return out
}

func describe(d Decision) string {
	s := orDefault(d.Rule)
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	if d.Error != "" {
		s += "; error: " + d.Error
	}
	return s
}
