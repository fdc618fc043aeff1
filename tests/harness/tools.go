package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tool finds an external program the tests use (swaks, smtp-sink,
// smtp-source), also in /usr/sbin, which is not always on PATH. It fails the
// test if the program is missing: scripts/install-test-deps.sh installs them.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s is not installed: run scripts/install-test-deps.sh (make test does)", name)
	return ""
}
