package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The harness's own tests run a stand-in relay (testdata/fakerelay), so they
// check the harness, not bccguard.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "harness-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "fakerelay")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./testdata/fakerelay")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakerelay: %v\n%s", err, out)
		os.Exit(1)
	}
	build.once.Do(func() { build.path = bin })
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
