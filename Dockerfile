# syntax=docker/dockerfile:1
# pipeline-responder container image (see deploy/README.md).
#
#   docker build -t pipeline-responder:$(git rev-parse --short HEAD) .
#
# Build stage: the release binary, from the locked dependency set.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pipeline-responder \
 && install -D -m 0755 target/release/pipeline-responder /out/pipeline-responder

# Runtime stage: glibc and CA certificates only (no shell, no package manager), as a non-root
# user. Nothing is written to the root filesystem, so the task can run it read-only; the
# embedded store (one task) needs a volume at /var/lib/pipeline-responder, the DynamoDB store
# (several tasks, what the deploy kit's stack configures) needs none.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/pipeline-responder /usr/local/bin/pipeline-responder
COPY config/pipeline-responder.toml /etc/pipeline-responder/pipeline-responder.toml
ENV PIPELINE_RESPONDER_CONFIG=/etc/pipeline-responder/pipeline-responder.toml
# glibc keeps up to 8 malloc arenas per core and gives little back after a burst; two arenas
# held the RSS after 10,000 incidents at a third (docs/benchmarks.md, "Footprint").
ENV MALLOC_ARENA_MAX=2
USER 10001:10001
EXPOSE 9090
# Liveness without curl or a shell: the binary's own probe (exit 0 on HTTP 2xx).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/pipeline-responder", "probe", "http://127.0.0.1:9090/healthz"]
# Exec form: the daemon is PID 1 and receives ECS's SIGTERM itself (it drains within
# daemon.shutdown_grace_secs, under the task's 30 s stopTimeout).
ENTRYPOINT ["/usr/local/bin/pipeline-responder"]
CMD ["run"]
