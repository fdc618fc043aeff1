// Package container builds the container image from the repository's
// Dockerfile and runs it the way it is deployed: read-only, as the image's
// non-root user, without capabilities, with a named data volume. It builds
// offline with podman (scripts/image.sh, as `make image` does: the
// Dockerfile's runtime stage on a local base), and runs it on the host's
// network so that it reaches the test's SMTP upstream on loopback.
package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/tests/harness"
)

// commandTimeout bounds one podman command; buildTimeout the image build,
// which compiles the binary (minutes on a cold build cache).
const (
	commandTimeout = 2 * time.Minute
	buildTimeout   = 10 * time.Minute
)

// podman runs podman on storage of the test's own (vfs, under a temporary
// folder, with file locks there too), so the test shares nothing with the
// machine's images and containers or with other test runs, and leaves
// nothing behind. The settings are those that work on the VMs the tests
// run on (see /work/shared/TRAPS.md, "Containers on these machines").
type podman struct {
	t   *testing.T
	bin string
	env []string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	bin := harness.ToolOrInstall(t, "podman")
	runc := harness.ToolOrInstall(t, "runc")
	dir := t.TempDir()
	for _, d := range []string{"storage", "run", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	storage := fmt.Sprintf(`[storage]
# vfs: plain copies of the layers, no overlay mounts (the image is small).
driver = "vfs"
graphroot = %q
runroot = %q
`, filepath.Join(dir, "storage"), filepath.Join(dir, "run"))
	containers := fmt.Sprintf(`[containers]
# Setting RLIMIT_NOFILE and RLIMIT_NPROC is refused inside these VMs.
default_ulimits = []
log_driver = "k8s-file"

[engine]
# crun fails on the hybrid cgroup hierarchy of these VMs; runc works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
# File locks in tmp_dir, not the machine-wide shared-memory lock table that
# every rootful podman shares.
lock_type = "file"
tmp_dir = %q

[engine.runtimes]
runc = [%q]
`, filepath.Join(dir, "tmp"), runc)
	p := &podman{t: t, bin: bin}
	for name, text := range map[string]string{"storage.conf": storage, "containers.conf": containers} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.env = append(os.Environ(),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"))
	t.Cleanup(func() {
		// Containers first (their mounts), then what the storage holds, so
		// that removing the temporary folder finds no mount points.
		for _, args := range [][]string{{"rm", "--all", "--force", "--time", "0"}, {"volume", "rm", "--all", "--force"}, {"image", "rm", "--all", "--force"}} {
			if out, err := p.try(args...); err != nil {
				t.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
	return p
}

// command is podman with the test's settings, bounded by timeout.
func (p *podman) command(timeout time.Duration, name string, args ...string) (*exec.Cmd, context.CancelFunc) {
	// Not the test's context: the cleanup runs podman after it is done.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.env
	return cmd, cancel
}

// try runs podman and returns its standard output; the error includes its
// standard error. (Podman writes warnings there that are not failures, such
// as that this machine has no systemd to run health check timers.)
func (p *podman) try(args ...string) (string, error) {
	cmd, cancel := p.command(commandTimeout, p.bin, args...)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// must runs podman and fails the test if it fails.
func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// build runs scripts/image.sh, which `make image` runs, with this podman.
func (p *podman) build(image, version string) {
	p.t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd, cancel := p.command(buildTimeout, "bash", filepath.Join(root, "scripts", "image.sh"), image)
	defer cancel()
	cmd.Env = append(cmd.Env, "PODMAN="+p.bin, "VERSION="+version)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	p.t.Logf("scripts/image.sh built %s in %v: %s", image, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(string(out)))
}

// imageConfig is what the test reads of `podman image inspect`.
type imageConfig struct {
	Size   int64
	Config struct {
		User    string
		Volumes map[string]struct{}
	}
	// Podman reports the Docker-format HEALTHCHECK here, not in Config.
	Healthcheck *struct{ Test []string }
}

func (p *podman) inspectImage(image string) imageConfig {
	p.t.Helper()
	return inspect[imageConfig](p, "image", image)
}

// inspect runs `podman KIND inspect NAME` and decodes its one object.
func inspect[T any](p *podman, kind, name string) T {
	p.t.Helper()
	var out []T
	if err := json.Unmarshal([]byte(p.must(kind, "inspect", name)), &out); err != nil || len(out) != 1 {
		p.t.Fatalf("podman %s inspect %s: %v (%d objects)", kind, name, err, len(out))
	}
	return out[0]
}

// containerState is what the test reads of `podman container inspect`.
type containerState struct {
	State struct {
		Status    string
		Running   bool
		Pid       int
		ExitCode  int
		OOMKilled bool
		Health    struct{ Status string }
	}
}

func (p *podman) inspect(name string) containerState {
	p.t.Helper()
	return inspect[containerState](p, "container", name)
}

// logs is what the container wrote to standard output and error (bccguard
// logs to standard error, which podman logs gives back on its own).
func (p *podman) logs(name string) string {
	cmd, cancel := p.command(commandTimeout, p.bin, "logs", name)
	defer cancel()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(podman logs %s: %v)", out, name, err)
	}
	return string(out)
}
