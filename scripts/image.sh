#!/usr/bin/env bash
# Builds the container image offline with podman (make image; tests/container
# runs it too): the Dockerfile's runtime stage, unchanged, on a local base
# image instead of distroless, from a static binary built here. No registry
# is contacted.
#
#   scripts/image.sh [IMAGE]      default IMAGE: bccguard:$VERSION
#
# Environment:
#   VERSION  the version the binary reports (default: git describe --tags --always --dirty)
#   PODMAN   the podman command, with global flags if needed (default: podman),
#            e.g. PODMAN="podman --storage-driver vfs"
#   GO       the go command (default: go)
#
# The local base provides what the runtime stage takes from distroless static
# nonroot: the CA bundle (this machine's, from Debian's ca-certificates) and
# the passwd and group entries root, nobody and nonroot (65532), as
# distroless has them. The image is in Docker format: the OCI format has no
# HEALTHCHECK, and podman would drop it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
image=${1:-bccguard:$version}
base=localhost/bccguard-base:local
read -r -a podman <<<"${PODMAN:-podman}"
go=${GO:-go}
ca=/etc/ssl/certs/ca-certificates.crt

if ! command -v "${podman[0]}" >/dev/null 2>&1; then
	echo "image: ${podman[0]} not found: install podman (scripts/install-test-deps.sh does), or build with docker: docker build ." >&2
	exit 1
fi
if [ ! -s "$ca" ]; then
	echo "image: no CA bundle at $ca: install Debian's ca-certificates" >&2
	exit 1
fi

ctx=$(mktemp -d)
bin=localhost/bccguard-binary:build-$$
cleanup() {
	"${podman[@]}" image rm --force "$bin" >/dev/null 2>&1 || true
	rm -rf "$ctx"
}
trap cleanup EXIT

# The base: scratch with the files distroless would provide.
mkdir -p "$ctx/base/etc/ssl/certs"
cp "$ca" "$ctx/base/etc/ssl/certs/ca-certificates.crt"
cat >"$ctx/base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$ctx/base/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
printf 'FROM scratch\nCOPY etc/ /etc/\n' >"$ctx/base/Containerfile"
"${podman[@]}" build --quiet --format docker -f "$ctx/base/Containerfile" -t "$base" "$ctx/base" >/dev/null

# The binary, built here with the same flags as the Dockerfile's build
# stage, in an image of its own (/out/bccguard and the empty /out/data, the
# volume's mount point) for the runtime stage to copy from; removed after.
mkdir -p "$ctx/bin/out/data"
(cd "$root" && CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w -X main.version=${version}" -o "$ctx/bin/out/bccguard" ./cmd/bccguard)
printf 'FROM scratch\nCOPY out/ /out/\n' >"$ctx/bin/Containerfile"
"${podman[@]}" build --quiet --format docker -f "$ctx/bin/Containerfile" -t "$bin" "$ctx/bin" >/dev/null

# The runtime stage's context: the files it copies from the repository.
mkdir -p "$ctx/app/deploy/docker"
cp "$root/deploy/docker/bccguard.yaml" "$ctx/app/deploy/docker/bccguard.yaml"
"${podman[@]}" build --quiet --format docker -f "$root/Dockerfile" --target runtime \
	--build-arg BASE="$base" --build-arg BINARY="$bin" \
	-t "$image" "$ctx/app" >/dev/null
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
echo "image: built $image ($((size / 1024)) KiB)"
