# The eventflow service: a release build on Debian, run as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY sdk sdk
COPY migrations migrations
COPY benches benches
COPY tests tests
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
ENTRYPOINT ["eventflow"]
CMD ["serve"]
