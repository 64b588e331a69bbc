#!/usr/bin/env bash
# Installs what vane needs to build and test, from Debian 12 packages only.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config
  libboost1.81-all-dev libssl-dev libyaml-cpp-dev libre2-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libnghttp2-dev nghttp2-client python3-h2 python3-grpcio
  libmimalloc-dev
  curl procps openssl
  prometheus
  nginx haproxy apache2-utils
  clang-format
)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# HTTP/2: nghttp2 with the rapid-reset and CONTINUATION-flood fixes (Debian's
# 1.52.0-1+deb12u3 or later); an older one installed earlier is upgraded.
need="1.52.0-1+deb12u3"
have=$(dpkg-query -W -f='${Version}' libnghttp2-dev 2>/dev/null || true)
if ! dpkg --compare-versions "$have" ge "$need"; then
  echo "setup: libnghttp2-dev $have is older than $need: upgrading"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends libnghttp2-dev libnghttp2-14
  have=$(dpkg-query -W -f='${Version}' libnghttp2-dev)
  dpkg --compare-versions "$have" ge "$need" || { echo "setup: libnghttp2-dev $have < $need" >&2; exit 1; }
fi
