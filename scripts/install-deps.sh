#!/usr/bin/env bash
# scripts/install-deps.sh - install what building and testing libp2p.h needs on Debian/Ubuntu.
# Idempotent: only missing packages are installed. Run as root (or with sudo available).
#   build:  gcc/g++, make, python3, libsodium-dev, libbearssl-dev, nanopb, libnanopb-dev, libsecp256k1-dev
#   tests:  clang + libclang-rt (fuzzing, sanitizers), libhiredis-dev + redis-server (test-plans harness),
#           python3-protobuf (nanopb generator), gnuplot (bench charts),
#           iproute2 + iptables (the NAT test bed in network namespaces, tests/netns/)
#   peers:  go, cargo, node/npm are expected from the machine; scripts/install-peers.sh builds the peers.
set -euo pipefail
pkgs=(build-essential g++ make python3 pkg-config libsodium-dev libbearssl-dev nanopb libnanopb-dev
      libsecp256k1-dev libhiredis-dev redis-server clang libclang-rt-14-dev python3-protobuf iproute2 iptables \
      gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: all packages present"; exit 0; fi
echo "install-deps: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
