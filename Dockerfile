# The eventflow service: a release build on Debian, run as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, against stub sources: this layer is rebuilt only when
# Cargo.toml or Cargo.lock change, not on every source change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in $(grep -A1 '^\[\[bench\]\]' Cargo.toml | sed -n 's/^name = "\(.*\)"/\1/p'); do \
         echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin eventflow \
    && rm -rf src benches target/release/.fingerprint/eventflow-* \
       target/release/deps/eventflow-* target/release/deps/libeventflow-*
COPY src src
COPY config config
COPY sdk sdk
COPY migrations migrations
COPY benches benches
RUN cargo build --release --locked --bin eventflow

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data eventflow && mkdir -p /data && chown eventflow /data
COPY --from=build /src/target/release/eventflow /usr/local/bin/eventflow
USER eventflow
WORKDIR /data
ENV EVENTFLOW__HTTP__ADDR=0.0.0.0:8080 \
    EVENTFLOW__DATA__DIR=/data
EXPOSE 8080
VOLUME /data
# The binary checks itself: the slim image needs no HTTP client.
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
    CMD ["eventflow", "healthcheck"]
ENTRYPOINT ["eventflow"]
CMD ["serve"]
