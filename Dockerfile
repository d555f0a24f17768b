# syntax=docker/dockerfile:1.7
# One image with every Flowline binary; the first argument names the service:
#   docker run --rm flowline:latest indexer --help
#   docker run --rm flowline:latest flowctl bootstrap --index-replicas 0
# Build: docker build -t flowline:latest .   (BuildKit, the default since Docker 23)

# Pinned by tag; bump both stages together with rust-toolchain/rust-version.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:12.12-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The whole workspace is needed even to resolve dependencies (every member's manifest);
# deploy/opensearch holds the index templates crates/opensearch embeds.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY services services
COPY tools tools
COPY deploy/opensearch deploy/opensearch
# BuildKit cache mounts keep the registry and target/ between builds: after an edit
# nothing is downloaded and only the crates that changed recompile (what cargo-chef's
# layer trick gives, without a tool). Binaries are copied out, as the mount is not kept.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo fetch --locked
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --offline --workspace --bins \
 && mkdir -p /out \
 && for b in producer enrichment-joiner aggregator indexer archiver flowctl; do \
      cp "target/release/$b" /out/; \
    done

FROM ${RUNTIME_IMAGE}
# ca-certificates for TLS to AWS and OpenSearch; curl for the health checks that compose
# and the import jobs run inside the container (Kubernetes probes need neither).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 flowline \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin flowline
COPY --from=build /out/ /usr/local/bin/
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/flowline-entrypoint
USER 10001:10001
# Admin HTTP must answer probes from outside the container's loopback.
ENV PRODUCER_ADMIN__BIND=0.0.0.0 \
    ENRICHMENT_JOINER_ADMIN__BIND=0.0.0.0 \
    AGGREGATOR_ADMIN__BIND=0.0.0.0 \
    INDEXER_ADMIN__BIND=0.0.0.0 \
    ARCHIVER_ADMIN__BIND=0.0.0.0 \
    RUST_LOG=info
EXPOSE 9101 9102 9103 9104 9105
# Health checks live in docker-compose.yml and the Kubernetes probes, where the port is known.
ENTRYPOINT ["/usr/local/bin/flowline-entrypoint"]
CMD ["--help"]
