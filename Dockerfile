# outboxd's container image.
#
#   docker build -t outboxd .
#   docker run --rm -e OUTBOXD_DATABASE_URL=postgresql://outboxd@db/iam outboxd migrate
#   docker run -d -e OUTBOXD_DATABASE_URL=postgresql://outboxd@db/iam -p 9187:9187 outboxd
#
# Both stages use Debian bookworm and Debian's packages only. tests/image/check_runtime_packages.sh
# (ctest: image_packages_test) holds the two package lists below to the binary the test suite
# builds: every library `ldd` finds must come from a runtime package, and every package of
# scripts/lib/deps.sh the daemon's build reads must be in the build stage.

# ---- build: compiler, CMake, Ninja and the -dev packages -------------------------------------
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake ninja-build g++ pkg-config \
        libpq-dev libboost1.81-dev libboost-program-options1.81-dev libboost-url1.81-dev \
        libsimdjson-dev \
        prometheus-cpp-dev libssl-dev libfmt-dev libspdlog-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore lets in only what the build reads (CMakeLists.txt, cmake/, daemon/, include/, sql/)
# and the health check script.
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOXD_BUILD_TESTS=OFF \
 && cmake --build /build --target outboxd \
 && strip --strip-debug -o /outboxd /build/outboxd

# ---- runtime: the shared libraries outboxd links, and the CA certificates for https ----------
FROM debian:bookworm-slim
# libc6, libgcc-s1 and libstdc++6 are already in bookworm-slim; they are named because the binary
# links them directly. ca-certificates: https endpoints are verified against the system's CAs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libc6 libgcc-s1 libstdc++6 \
        libpq5 libssl3 libboost-program-options1.81.0 libboost-url1.81.0 libfmt9 libspdlog1.10 \
        libsimdjson14 \
        libprometheus-cpp-core1.0 \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric id, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN groupadd --system --gid 10001 outboxd \
 && useradd --system --uid 10001 --gid outboxd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin outboxd
COPY --from=build /outboxd /usr/local/bin/outboxd
COPY scripts/container-healthcheck.sh /usr/local/bin/outboxd-healthcheck
# The daemon's default admin address is 127.0.0.1:9187, which nothing outside the container can
# reach: probes and Prometheus need every interface. Migrate and the admin commands ignore it.
ENV OUTBOXD_ADMIN_ADDRESS=0.0.0.0:9187
EXPOSE 9187
USER 10001:10001
# bash alone (slim has no curl or wget): GET /healthz on the admin server, 200 or unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/outboxd-healthcheck"]
ENTRYPOINT ["/usr/local/bin/outboxd"]
CMD ["run"]
