# vane: vane-proxy and vane-control in one image (Debian 12, non-root).
#   docker build -t ghcr.io/vane-dev/vane:0.1.0 .
#   docker run --rm ghcr.io/vane-dev/vane:0.1.0 vane-proxy --help
# The Kubernetes manifests in k8s/ run `vane-proxy ...` and `vane-control ...`
# from it. tests/integration/k8s_test.cpp checks this file offline (files it
# copies exist, packages are Debian 12's, the runtime packages hold every
# shared library the binaries load).

# --- build: the same packages and script as a developer's machine ---------
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libboost1.81-all-dev libssl-dev libyaml-cpp-dev libre2-dev libfmt-dev libnghttp2-dev libmimalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY common/ common/
COPY filters/ filters/
COPY proxy/ proxy/
COPY control/ control/
COPY k8s/base/proxy/proxy-container.yaml k8s/base/proxy/
COPY demo/ demo/
COPY scripts/build.sh scripts/
RUN VANE_BUILD_TYPE=Release bash scripts/build.sh build-release -DVANE_BUILD_TESTS=OFF -DVANE_BUILD_BENCH=OFF \
 && strip build-release/proxy/vane-proxy build-release/control/vane-control

# --- runtime: the two binaries, their shared libraries, CA certificates ----
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libre2-9 libyaml-cpp0.7 libfmt9 libssl3 libnghttp2-14 libmimalloc2.0 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build-release/proxy/vane-proxy /usr/local/bin/vane-proxy
COPY --from=build /src/build-release/control/vane-control /usr/local/bin/vane-control
USER 65532:65532
EXPOSE 8080 9901 9902
ENTRYPOINT []
CMD ["vane-proxy", "--help"]
