# One image with every Flowline binary; the service is chosen by the command, e.g.
#   docker run flowline indexer
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && for b in producer enrichment-joiner aggregator indexer archiver flowctl; do cp target/release/$b /out/; done

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home flowline
COPY --from=build /out/ /usr/local/bin/
USER 10001
# Containers are probed from outside the container's loopback.
ENV PRODUCER_ADMIN__BIND=0.0.0.0 ENRICHMENT_JOINER_ADMIN__BIND=0.0.0.0 AGGREGATOR_ADMIN__BIND=0.0.0.0 \
    INDEXER_ADMIN__BIND=0.0.0.0 ARCHIVER_ADMIN__BIND=0.0.0.0 RUST_LOG=info
ENTRYPOINT []
CMD ["indexer"]
