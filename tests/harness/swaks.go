package harness

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"
)

// SwaksTimeout bounds one swaks run.
const SwaksTimeout = 2 * time.Minute

// SwaksResult is one swaks run: its transcript and exit code (0 when the
// message was accepted; swaks uses 23, 24, 25, 28, 29 … for failures at
// the various stages).
type SwaksResult struct {
	Args     []string
	Output   string
	ExitCode int
}

// Swaks runs swaks (an SMTP client that shares no code with bccguard) with
// args. The server is given by the caller, e.g. "--server", addr.
func Swaks(t testing.TB, args ...string) SwaksResult {
	t.Helper()
	bin := Tool(t, "swaks")
	ctx, cancel := context.WithTimeout(context.Background(), SwaksTimeout)
	defer cancel()
	args = append([]string{"--timeout", "60", "--helo", ClientHelo}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = nil
	err := cmd.Run()
	res := SwaksResult{Args: args, Output: out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		t.Fatalf("run swaks: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("swaks did not finish within %v; transcript:\n%s", SwaksTimeout, res.Output)
	}
	return res
}
