#!/usr/bin/env bash
# Builds berth/fixture:dev — busybox-static imported as an image — so tests never pull from a registry.
set -euo pipefail
image=berth/fixture:dev
docker image inspect "$image" >/dev/null 2>&1 && exit 0
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "berth: busybox-static is missing — install it with: apt-get install -y busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/results" "$root/etc"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "berth: built $image" >&2
