package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy"
)

// loadPolicy compiles the config's policy section (the built-in policy when
// there is none). Its errors carry file and line: exit code 2.
func loadPolicy(cfg *config.Config) (*policy.Policy, error) {
	p, err := policy.Load(&cfg.Policy, cfg.File)
	if err != nil {
		return nil, configError{err}
	}
	return p, nil
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdPolicy(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return usagef("policy needs a subcommand: policy test [--config FILE] [MESSAGE.eml [--from ADDR] [--rcpt ADDR]...] [--json]")
	}
	fs := newFlags("policy test")
	cfgPath := fs.String("config", "", "configuration file (default: the built-in policy)")
	from := fs.String("from", "", "envelope sender (default: the message's From:)")
	asJSON := fs.Bool("json", false, "print JSON")
	var rcpts stringList
	fs.Var(&rcpts, "rcpt", "envelope recipient (repeatable; default: the message's To/Cc/Bcc)")
	// Flags may come after the message file, as in the documented usage.
	var files []string
	rest := args[1:]
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return usagef("policy test: %v", err)
		}
		rest = fs.Args()
		if len(rest) > 0 {
			files, rest = append(files, rest[0]), rest[1:]
		}
	}
	if len(files) > 1 {
		return usagef("policy test takes one message file, got %d", len(files))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	p, err := loadPolicy(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if len(files) == 0 {
		if *cfgPath == "" {
			return usagef("policy test needs a message file, or --config FILE to run the policy's own tests")
		}
		return runPolicyTests(ctx, p, stdout, *asJSON)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		return usagef("policy test: %v", err)
	}
	in := p.BuildInput(raw, policy.Envelope{Sender: *from, Recipients: rcpts}, policy.Client{Listener: "policy-test"})
	e := p.Explain(ctx, in)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	}
	printExplanation(stdout, e)
	return nil
}

func printExplanation(w io.Writer, e policy.Explanation) {
	rule := e.Rule
	if rule == "" {
		rule = "(default action)"
	}
	mode := ""
	if e.Monitor {
		mode = " (monitor mode: the message would pass)"
	}
	fmt.Fprintf(w, "decision: %s by %s%s\n", e.Action, rule, mode)
	if e.Reason != "" {
		fmt.Fprintf(w, "reason:   %s\n", e.Reason)
	}
	if e.Message != "" {
		fmt.Fprintf(w, "reply:    550 5.7.1 %s\n", e.Message)
	}
	if lines := e.Contains.Summary(); len(lines) > 0 {
		fmt.Fprintln(w, "\nwhat it contains:")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	fmt.Fprintln(w, "\nrules, in order:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range e.Rules {
		status := "no match"
		switch {
		case r.Error != "":
			status = "error: " + r.Error
		case r.Matched:
			status = "MATCH"
		}
		var vals []string
		for _, v := range r.Values {
			vals = append(vals, v.Name+"="+v.Value)
		}
		fmt.Fprintf(tw, "  %s\t%s\t-> %s\t%s\t%s\n", r.Name, r.When, r.Action, status, strings.Join(vals, " "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nvariables:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range e.Variables {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Value)
	}
	tw.Flush()
}

// errTestsFailed makes `policy test --config` exit 1 when a case fails.
type errTestsFailed struct{ failed, total int }

func (e errTestsFailed) Error() string {
	return fmt.Sprintf("%d of %d policy tests failed", e.failed, e.total)
}

func runPolicyTests(ctx context.Context, p *policy.Policy, stdout io.Writer, asJSON bool) error {
	results := p.RunTests(ctx, nil)
	if len(results) == 0 {
		return usagef("the policy has no tests: add a tests: list to its policy section")
	}
	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			status := "PASS"
			if !r.Passed {
				status = "FAIL"
			}
			fmt.Fprintf(stdout, "%s  %s: %s", status, r.Case.Name, r.Decision.Action)
			if r.Decision.Rule != "" {
				fmt.Fprintf(stdout, " (rule %s)", r.Decision.Rule)
			}
			if r.Failure != "" {
				fmt.Fprintf(stdout, "  %s", r.Failure)
			}
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
	}
	if failed > 0 {
		return errTestsFailed{failed, len(results)}
	}
	return nil
}
