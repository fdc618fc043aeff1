package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

var installDeps struct {
	once sync.Once
	out  []byte
	err  error
}

// ToolOrInstall finds an external program like Tool; when it is missing it
// runs scripts/install-test-deps.sh once per test binary (serialised with
// other test binaries by a lock file, since apt allows one install at a
// time) and looks again. If the program still cannot be found (no root, no
// network), the test is skipped with the installer's output.
func ToolOrInstall(t testing.TB, name string) string {
	t.Helper()
	if p := findTool(name); p != "" {
		return p
	}
	installDeps.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			installDeps.err = err
			return
		}
		lock, err := os.OpenFile(filepath.Join(os.TempDir(), "bccguard-install-test-deps.lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err == nil {
			defer lock.Close()
			_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
			defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		}
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "install-test-deps.sh"))
		installDeps.out, installDeps.err = cmd.CombinedOutput()
	})
	if p := findTool(name); p != "" {
		return p
	}
	t.Skipf("%s is not installed and scripts/install-test-deps.sh could not install it (%v):\n%s", name, installDeps.err, installDeps.out)
	return ""
}

func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
