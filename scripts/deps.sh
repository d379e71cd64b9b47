#!/usr/bin/env bash
# Install the Debian packages amuse needs to build, test and prepare its default models.
# Installs only what is missing, so it is quick on a machine that already has everything.
# Extra package names may be given as arguments (the test suite adds its own).
set -euo pipefail

packages=(build-essential cmake pkg-config libopenblas-openmp-dev libcjson-dev libstb-dev libjpeg-dev zlib1g-dev
          libmicrohttpd-dev libsqlite3-dev libsodium-dev libpq-dev
          libsndfile1-dev libsamplerate0-dev libkissfft-dev libvorbis-dev libogg-dev
          openmpi-bin libopenmpi-dev dataset-fashion-mnist python3 openssl "$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "amuse: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
