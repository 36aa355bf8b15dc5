#!/usr/bin/env bash
# Builds the offline CPU trainer image berth/bert-cpu:dev: the torch base (once, see torch-cpu-base.sh),
# then the payload as a thin layer on top. Idempotent; seconds when the base image exists.
# Usage: docker/build-bert-cpu-image.sh [--force-base]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
image="${BERTH_BERT_CPU_IMAGE:-berth/bert-cpu:dev}"
base="${BERTH_TORCH_BASE_IMAGE:-berth/torch-cpu-base:dev}"

if ! docker version >/dev/null 2>&1; then
  "$repo/scripts/setup-system.sh"
fi
BERTH_TORCH_BASE_IMAGE="$base" "$here/torch-cpu-base.sh" ${1:+--force}
# The payload folder is the build context, so the repo's node_modules never reach the daemon.
docker build --pull=false --build-arg "BASE=$base" -t "$image" \
  -f "$here/bert-cpu.Dockerfile" "$repo/payloads/bert"
echo "built $image" >&2
