# syntax=docker/dockerfile:1
# converge for a ClickHouse server (see docker-compose.yml). The image holds only the converge
# binary: with clickhouse.addr set it talks to the server over HTTP and never loads the embedded
# engine, so libchdb.so is not installed here.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# templ output (*_templ.go) is committed, so no generate step is needed.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -o /out/converge ./cmd/converge

FROM debian:bookworm-slim
# ca-certificates: TLS to ClickHouse Cloud / HTTPS servers; wget: the compose healthcheck.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates wget \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 converge \
 && useradd --system --uid 10001 --gid converge --home-dir /var/lib/converge --shell /usr/sbin/nologin converge \
 && install -d -o converge -g converge /var/lib/converge
COPY --from=build /out/converge /usr/local/bin/converge
# The working directory holds converge.yaml and the metrics folder; mount a volume here.
WORKDIR /var/lib/converge
USER converge:converge
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/converge"]
CMD ["serve"]
