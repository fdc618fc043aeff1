package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CLITimeout bounds one run of a bccguard subcommand.
const CLITimeout = 60 * time.Second

// CLIResult is what one run of the binary printed and how it exited.
type CLIResult struct {
	Name     string // the program: "bccguard" unless another tool
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int // -1 if it could not be run or was killed
	Err      error
}

// OK reports a zero exit code.
func (c CLIResult) OK() bool { return c.ExitCode == 0 }

// String describes the run for failure messages.
func (c CLIResult) String() string {
	exit := strconv.Itoa(c.ExitCode)
	if c.Err != nil && c.ExitCode == -1 {
		exit = c.Err.Error()
	}
	name := c.Name
	if name == "" {
		name = "bccguard"
	}
	return fmt.Sprintf("$ %s %s\nexit: %s\nstdout:\n%s\nstderr:\n%s",
		name, strings.Join(c.Args, " "), exit, c.Stdout, c.Stderr)
}

// RunCLI runs the bccguard binary with args (no relay needed).
func RunCLI(t testing.TB, args ...string) CLIResult {
	t.Helper()
	return runTool("", Binary(t), CLITimeout, nil, args)
}

// runTool runs bin with args and stdin (none if nil), bounded by timeout,
// and returns its run; name labels it in failure output ("" for bccguard
// itself).
func runTool(name, bin string, timeout time.Duration, stdin []byte, args []string) CLIResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := CLIResult{Name: name, Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		res.ExitCode = -1
	}
	if ctx.Err() != nil {
		res.ExitCode, res.Err = -1, ctx.Err()
	}
	return res
}

// CLI runs the binary with another subcommand, e.g.
// r.CLI("queue", "list", "--json", "--data-dir", r.DataDir()).
func (r *Relay) CLI(args ...string) CLIResult {
	r.t.Helper()
	return RunCLI(r.t, args...)
}

// MustCLI runs the binary and fails the test unless it exits 0; it returns
// standard output.
func (r *Relay) MustCLI(args ...string) string {
	r.t.Helper()
	res := r.CLI(args...)
	if !res.OK() {
		r.t.Fatalf("CLI failed:\n%s", res)
	}
	return res.Stdout
}
