# Images of the collector and the volunteer, each with its binary as the entrypoint:
#
#   docker buildx build --platform linux/amd64,linux/arm64 --target collector \
#       -t REGISTRY/k8s-usage-collector:TAG --push .
#   docker buildx build --platform linux/amd64,linux/arm64 --target volunteer \
#       -t REGISTRY/k8s-usage-volunteer:TAG --push .
#
# The build runs the cargo commands the benchmarks measure (bench/run.sh, bench/volunteer.sh): the
# collector with `--release`, the volunteer with its size-optimised `volunteer` profile, both
# `--locked`. CI (.ci/run) runs these two cargo commands, taken from this file, after the tests.
# Other platforms build under emulation (QEMU, as buildx sets up), slowly but without a
# cross-compiler. The runtime is distroless/cc: glibc for bundled SQLite, ring and mimalloc, no
# shell, and the non-root user 65532.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p collector \
 && cargo build --locked --profile volunteer -p volunteer \
 && mkdir -p /out/data \
 && cp target/release/collector target/volunteer/volunteer /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS volunteer
COPY --from=build /out/volunteer /usr/local/bin/volunteer
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/volunteer"]

FROM gcr.io/distroless/cc-debian12:nonroot AS collector
COPY --from=build /out/collector /usr/local/bin/collector
# The embedded store; mount a volume here (the StatefulSet's volumeClaimTemplate does).
COPY --from=build --chown=65532:65532 /out/data /var/lib/collector
ENV COLLECTOR_DATA_DIR=/var/lib/collector \
    COLLECTOR_LISTEN=0.0.0.0:8080
USER 65532:65532
EXPOSE 8080 9090
VOLUME ["/var/lib/collector"]
ENTRYPOINT ["/usr/local/bin/collector"]
