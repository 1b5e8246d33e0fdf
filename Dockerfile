# syntax=docker/dockerfile:1
# mcpgw container image: a static binary on distroless, running as nonroot
# (uid 65532). Build with `make image` (it passes VERSION and COMMIT), or:
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=abc1234 -t mcpgw .
# test/ship runs the go build line below and checks the binary it makes.

# GO_VERSION matches the go line of go.mod (test/ship checks it).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# Set by BuildKit from --platform; empty means the build machine's.
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/mcpgw ./cmd/mcpgw

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/mcpgw /mcpgw
USER 65532:65532
EXPOSE 9190
ENTRYPOINT ["/mcpgw"]
CMD ["serve", "-config", "/etc/mcpgw/mcpgw.yaml"]
