# idgraph as a container: built in one stage, run from a slim one as an unprivileged user.
#   docker build -t idgraph .
#   docker run -p 8080:8080 -e IDGRAPH_ISSUER=https://id.example.com \
#     -e DATABASE_URL=postgres://idgraph:secret@db:5432/idgraph idgraph
# See "Deploying" in the README for the settings a production deployment changes.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The manifests first, so that the dependency downloads are cached in their own layer (the
# dependencies are still compiled with the code).
COPY Cargo.toml Cargo.lock build.rs ./
COPY migrations/Cargo.toml migrations/Cargo.toml
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p src migrations/src bench/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && touch migrations/src/lib.rs && echo 'fn main() {}' > bench/src/main.rs \
 && cargo fetch --locked
COPY . .
RUN cargo build --release --locked --bin idgraph \
 && install -D target/release/idgraph /out/idgraph

FROM debian:bookworm-slim
# curl answers the health check; ca-certificates lets idgraph reach TLS databases.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/idgraph --create-home idgraph
COPY --from=build /out/idgraph /usr/local/bin/idgraph
USER idgraph
WORKDIR /var/lib/idgraph
# Listen on every interface inside the container; SQLite (the default) keeps its file in the
# working directory, which a volume should hold. Production uses PostgreSQL (DATABASE_URL).
ENV IDGRAPH_BIND=0.0.0.0:8080 \
    IDGRAPH_LOG_FORMAT=json \
    DATABASE_URL=sqlite:///var/lib/idgraph/idgraph.db?mode=rwc
VOLUME ["/var/lib/idgraph"]
EXPOSE 8080
# The check asks the port set above; change both together.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl --fail --silent --show-error http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["idgraph"]
CMD ["serve"]
