# certbind container images.
#   docker build -t certbind .                      # the server (default target)
#   docker build --target testbed -t certbind-testbed .   # test-bed PKI generator, demo AS and API
# Both are static binaries on a distroless base, running as a non-root user.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/certbind ./cmd/certbind \
 && go build -trimpath -ldflags="-s -w" -o /out/testbed ./cmd/testbed \
 && mkdir -p /out/pki

FROM gcr.io/distroless/static-debian12:nonroot AS testbed
COPY --from=build /out/testbed /usr/local/bin/testbed
# An empty, non-root-owned /pki: a named volume mounted here starts with this ownership, so the
# PKI step can write to it without running as root.
COPY --from=build --chown=65532:65532 /out/pki /pki
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/testbed"]

FROM gcr.io/distroless/static-debian12:nonroot AS certbind
COPY --from=build /out/certbind /usr/local/bin/certbind
USER 65532:65532
EXPOSE 9191 9192
ENTRYPOINT ["/usr/local/bin/certbind"]
CMD ["serve", "--config", "/etc/certbind/certbind.yaml"]
