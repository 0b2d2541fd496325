#!/usr/bin/env bash
# Installs the Debian 12 packages sockagent needs to build, test and run.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config dpkg-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libgtest-dev libgmock-dev libspdlog-dev libcli11-dev libyaml-cpp-dev libre2-dev nlohmann-json3-dev libpng-dev
  libxxhash-dev
  prometheus-cpp-dev grpc-proto openssl
  clang clang-format libclang-rt-14-dev netbase iproute2 python3
  python3-grpcio python3-protobuf python3-pytest python3-xxhash
  iperf3 socat
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
