# bccguard container image: a static binary on distroless, as a non-root user.
#
#   docker build -t bccguard:$(git describe --tags --always) --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d -p 2525:2525 -p 127.0.0.1:9025:9025 -v bccguard-data:/var/lib/bccguard \
#     -v $PWD/bccguard.yaml:/etc/bccguard/bccguard.yaml:ro bccguard:TAG
#
# Ports: 2525 SMTP (the default listener), 9025 admin (/metrics, /healthz,
# /readyz, review API). The queue, the control socket for `bccguard queue` and
# `bccguard quarantine` (docker exec ... bccguard queue list --data-dir
# /var/lib/bccguard) and the log redaction key live in the volume.
#
# Offline (no registry), `make image` builds the same runtime stage with
# BASE set to a local image (scratch, the host's CA bundle and the passwd
# entries below) and BINARY set to an image holding a binary built outside:
# see scripts/image.sh.

# The runtime base. It must provide what distroless static nonroot does and
# the runtime stage relies on: /etc/ssl/certs/ca-certificates.crt, an
# /etc/passwd entry "nonroot" with uid 65532 (os/user, the CLI's reviewer
# name) and gid 65532. Pinned by digest (the nonroot tag as of 2026-08); to
# update, take the tag's current digest and replace it here:
#   crane digest gcr.io/distroless/static-debian12:nonroot
#   (or: docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot)
ARG BASE=gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
# Where the binary comes from: the stage "build" below compiles it, or an
# image holding /out/bccguard (static) and the empty folder /out/data.
ARG BINARY=build

# An exact Go release (the one the tests run with here); to update, pick a
# newer golang:1.26.N tag (https://go.dev/dl lists the releases).
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces go-smtp with the patched copy in third_party (see its PATCHES.md).
COPY third_party ./third_party
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bccguard ./cmd/bccguard \
 && mkdir -p /out/data

FROM ${BINARY} AS binary

FROM ${BASE} AS runtime
COPY deploy/docker/bccguard.yaml /etc/bccguard/bccguard.yaml
# The volume's mount point exists and belongs to the runtime user, so a new
# named volume is created writable for it.
COPY --from=binary --chown=65532:65532 /out/data /var/lib/bccguard
# The binary last: it changes most often, and the small layers before it
# stay cached.
COPY --from=binary /out/bccguard /usr/local/bin/bccguard
USER 65532:65532
VOLUME /var/lib/bccguard
EXPOSE 2525 9025
# distroless has no shell or curl: the binary asks its own admin listener.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/bccguard", "healthcheck", "--config", "/etc/bccguard/bccguard.yaml"]
ENTRYPOINT ["/usr/local/bin/bccguard"]
CMD ["serve", "--config", "/etc/bccguard/bccguard.yaml", "--data-dir", "/var/lib/bccguard"]
