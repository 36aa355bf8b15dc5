#!/usr/bin/env bash
# Installs and starts the system parts berth needs on one Debian 12 machine:
# redis-server, the Docker engine (docker.io), busybox-static, Debian's PyTorch and debootstrap.
# Idempotent; safe to run on every test/demo invocation. Needs root (or sudo) to install.
set -euo pipefail

need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1 || need_pkgs+=(python3-torch python3-numpy)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# Only to validate docker-compose.yml in the tests (`docker-compose config`).
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
# The dashboard's browser test (test/web.test.ts) drives Debian's Chromium with playwright-core.
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
# Without an optimised BLAS, Debian's torch trains about 10x slower on CPU.
[ -e /usr/lib/x86_64-linux-gnu/openblas-pthread ] || need_pkgs+=(libopenblas0-pthread)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "berth: missing system packages: ${need_pkgs[*]} — install them with: sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "berth: installing ${need_pkgs[*]} (apt-get)…" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# The stand-in GPU hook lets a machine without a GPU accept DeviceRequests (tests only prove
# which devices a container was given); see shared/reference/machine.md. A dockerd that we started
# without it is restarted with it; a real NVIDIA Container Toolkit is never shadowed.
# It is installed to a fixed folder, so clones in different places agree on the dockerd they need.
hook_dir=""
if [ "${BERTH_GPU_STANDIN:-}" = 1 ] && ! command -v nvidia-container-runtime-hook >/dev/null 2>&1; then
  hook_dir=/usr/local/libexec/berth-gpu-standin
  if ! cmp -s "$(dirname "$0")/../test/support/gpu-hook/nvidia-container-runtime-hook" "$hook_dir/nvidia-container-runtime-hook"; then
    install -D -m 0755 "$(dirname "$0")/../test/support/gpu-hook/nvidia-container-runtime-hook" "$hook_dir/nvidia-container-runtime-hook"
  fi
fi
if [ -n "$hook_dir" ] && pid="$(pidof dockerd)" && ! tr '\0' '\n' </proc/"${pid%% *}"/environ | grep -q "^PATH=$hook_dir:"; then
  echo "berth: restarting dockerd with the stand-in GPU hook ($hook_dir)…" >&2
  kill "${pid%% *}"
  for _ in $(seq 1 60); do pidof dockerd >/dev/null || break; sleep 0.5; done
fi

# The Docker engine: start our own dockerd when none answers.
if ! docker version >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "berth: the Docker engine is not running — start it with: sudo dockerd &" >&2
    exit 1
  fi
  echo "berth: starting dockerd…" >&2
  path="$PATH"; [ -n "$hook_dir" ] && path="$hook_dir:$PATH"
  # setsid: dockerd outlives the shell (and process group) that started it.
  PATH="$path" setsid nohup dockerd --host unix:///var/run/docker.sock >/var/log/berth-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { echo "berth: dockerd did not start; see /var/log/berth-dockerd.log" >&2; exit 1; }
fi
