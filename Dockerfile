# bccguard container image: a static binary on distroless, as a non-root user.
#
#   docker build -t bccguard --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d -p 2525:2525 -p 127.0.0.1:9025:9025 -v bccguard-data:/var/lib/bccguard \
#     -v $PWD/bccguard.yaml:/etc/bccguard/bccguard.yaml:ro bccguard
#
# Ports: 2525 SMTP (the default listener), 9025 admin (/metrics, /healthz,
# /readyz, review API). The queue, the control socket for `bccguard queue` and
# `bccguard quarantine` (docker exec ... bccguard queue list --data-dir
# /var/lib/bccguard) and the log redaction key live in the volume.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces go-smtp with the patched copy in third_party (see its PATCHES.md).
COPY third_party ./third_party
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bccguard ./cmd/bccguard \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bccguard /usr/local/bin/bccguard
COPY deploy/docker/bccguard.yaml /etc/bccguard/bccguard.yaml
# The volume's mount point exists and belongs to the runtime user, so a new
# named volume is created writable for it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/bccguard
USER 65532:65532
VOLUME /var/lib/bccguard
EXPOSE 2525 9025
# distroless has no shell or curl: the binary asks its own admin listener.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/bccguard", "healthcheck", "--config", "/etc/bccguard/bccguard.yaml"]
ENTRYPOINT ["/usr/local/bin/bccguard"]
CMD ["serve", "--config", "/etc/bccguard/bccguard.yaml", "--data-dir", "/var/lib/bccguard"]
