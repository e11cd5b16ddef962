#!/usr/bin/env bash
# Installs what corral's tests, examples and benches need on a fresh Debian
# machine (run as root): busybox-static for the busybox bundles, runc and
# crun as the peers the tests and benches compare against, bsdutils for
# `script` (a pty for terminal tests), hyperfine for the CLI comparisons,
# podman (with conmon) and containerd as the real clients the
# tests/clients scenarios drive corral and runc with, iproute2 (`ip`) for
# the veth pairs of the linux.netDevices tests.
set -euo pipefail
need=()
for pkg in busybox-static runc crun bsdutils hyperfine podman conmon containerd iproute2; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
