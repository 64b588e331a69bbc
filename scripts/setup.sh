#!/usr/bin/env bash
# Installs what vane needs to build and test, from Debian 12 packages only.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config
  libboost1.81-all-dev libssl-dev libyaml-cpp-dev libre2-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
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
