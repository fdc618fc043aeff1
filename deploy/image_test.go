package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestImageScript: scripts/image.sh (make image, tests/container) builds
// what the Dockerfile's build stage would: the same go build flags, the
// stage the Dockerfile names, through the build arguments it declares, on a
// base whose passwd has the image's user.
func TestImageScript(t *testing.T) {
	b, err := os.ReadFile("../scripts/image.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	df := parseDockerfile(t, "../Dockerfile")
	img := dockerImage(t)

	goBuild := regexp.MustCompile(`CGO_ENABLED=0 "?\$?\{?go\}?"? build (.*?) -o `)
	flags := func(what, text string) string {
		m := goBuild.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("%s: no CGO_ENABLED=0 go build ... -o", what)
		}
		return strings.ToLower(m[1]) // ${VERSION} in one, ${version} in the other
	}
	build := df.stages[0]
	if d, s := flags("Dockerfile", strings.Join(build.all("RUN"), "\n")), flags("scripts/image.sh", script); d != s {
		t.Errorf("go build flags differ:\n  Dockerfile:       %s\n  scripts/image.sh: %s", d, s)
	}

	run := df.stages[len(df.stages)-1]
	if !strings.Contains(script, "--target "+run.name) {
		t.Errorf("scripts/image.sh does not build --target %s", run.name)
	}
	for _, arg := range regexp.MustCompile(`--build-arg ([A-Z_]+)=`).FindAllStringSubmatch(script, -1) {
		if _, ok := df.args[arg[1]]; !ok {
			t.Errorf("scripts/image.sh sets --build-arg %s, which the Dockerfile does not declare before its first FROM", arg[1])
		}
	}
	for _, a := range []string{"BASE", "BINARY"} {
		if !strings.Contains(script, "--build-arg "+a+"=") {
			t.Errorf("scripts/image.sh does not set --build-arg %s", a)
		}
	}

	// The local base's passwd names the image's USER, as distroless does.
	passwd := regexp.MustCompile(`(?m)^([a-z]+):x:(\d+):(\d+):`)
	found := false
	for _, m := range passwd.FindAllStringSubmatch(script, -1) {
		if uid, _ := strconv.Atoi(m[2]); uid == img.uid {
			found = m[1] == "nonroot"
		}
	}
	if !found {
		t.Errorf("scripts/image.sh's base has no passwd entry nonroot for the image's user %d", img.uid)
	}
}

// imageName is the repository `make image` tags (IMAGE ?= NAME:$(VERSION)).
func imageName(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE \?= ([a-z0-9./-]+):\$\(VERSION\)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Makefile: no IMAGE ?= NAME:$(VERSION)")
	}
	return string(m[1])
}

// repository is an image reference without its tag or digest.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// TestImagesNamedAndPinned: Compose and Kubernetes run bccguard's image by
// the name the build tags it with (a registry in front is the operator's),
// and every third-party image by digest or an exact version.
func TestImagesNamedAndPinned(t *testing.T) {
	name := imageName(t)
	own := func(where, ref string) {
		repo := repository(ref)
		if repo != name && !strings.HasSuffix(repo, "/"+name) {
			t.Errorf("%s: image %q, want %s:TAG as make image tags it (or REGISTRY/%s:TAG)", where, ref, name, name)
		}
		if strings.HasSuffix(ref, ":latest") || repo == ref {
			t.Errorf("%s: image %q has no tag or :latest: name a version", where, ref)
		}
	}
	third := func(where, ref string) {
		if !pinned(ref) {
			t.Errorf("%s: third-party image %q is not pinned by digest or exact version", where, ref)
		}
	}

	var c struct {
		Services map[string]struct {
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	readYAML(t, "compose/docker-compose.yml", &c)
	for svc, s := range c.Services {
		if svc == "bccguard" {
			own("compose service bccguard", s.Image)
		} else {
			third("compose service "+svc, s.Image)
		}
	}

	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/: %v", err)
	}
	for _, file := range files {
		for _, o := range loadManifests(t, file) {
			pod := get(o, "spec", "template", "spec")
			for _, key := range []string{"initContainers", "containers"} {
				for _, ctr := range list(get(pod, key)) {
					where := file + ": " + o.kind() + " " + o.name() + " container " + str(get(ctr, "name"))
					if ref := str(get(ctr, "image")); str(get(ctr, "name")) == "bccguard" {
						own(where, ref)
					} else {
						third(where, ref)
					}
				}
			}
		}
	}
}

func TestPinned(t *testing.T) {
	for ref, want := range map[string]bool{
		"prom/prometheus:v2.53.0":  true,
		"boky/postfix:v5.1.0":      true,
		"postgres:16.4-bookworm":   true,
		"postgres:16":              false,
		"boky/postfix:latest":      false,
		"boky/postfix":             false,
		"gcr.io/distroless/static": false,
		"gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab": true,
	} {
		if got := pinned(ref); got != want {
			t.Errorf("pinned(%q) = %v, want %v", ref, got, want)
		}
	}
}
