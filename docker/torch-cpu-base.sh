#!/usr/bin/env bash
# Builds berth/torch-cpu-base:dev — Debian 12 (minbase) with Debian's python3-torch and numpy — with
# debootstrap + docker import, because no image registry is reachable here. Skips when the image exists.
# OpenBLAS is included because python3-torch otherwise resolves BLAS to the reference libblas3, which
# makes CPU training about 10x slower.
# Usage: docker/torch-cpu-base.sh [--force]
set -euo pipefail
image="${BERTH_TORCH_BASE_IMAGE:-berth/torch-cpu-base:dev}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "torch-cpu-base: $image exists, skipping" >&2
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { echo "torch-cpu-base: debootstrap missing (apt-get install -y debootstrap)" >&2; exit 1; }

root="$(mktemp -d /var/tmp/berth-torch-root.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "torch-cpu-base: debootstrap into $root (takes a few minutes)" >&2
debootstrap --variant=minbase --include=python3-torch,python3-numpy,libopenblas0-pthread bookworm "$root" "$mirror" >&2
# apt's caches are 100s of MB of .debs the image never needs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "torch-cpu-base: importing as $image" >&2
tar -C "$root" -c . | docker import -c 'CMD ["python3"]' - "$image" >/dev/null
echo "torch-cpu-base: built $image" >&2
