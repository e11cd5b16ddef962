#!/usr/bin/env bash
# corral run vs runc run vs crun run on one busybox bundle, in one run:
# start-up medians (alternating runtimes round by round) and containers per
# second at concurrency 32, with ratios against crun. As root:
#
#   bash benches/peers.sh [ROUNDS] [BATCH]
#
# crun 1.8 refuses this project's hybrid cgroup hosts unless it sees no
# cgroup2 mount, so everything runs inside `unshare -m` after unmounting
# /sys/fs/cgroup/unified there; the host's mounts are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-200}
batch=${2:-200}
bash scripts/setup.sh
cargo build --release -q -p corral-cli
work=$(mktemp -d /tmp/corral-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/"{proc,sys,dev,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/bundle/rootfs/bin/$applet"
done
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
del c["linux"]["resources"]
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
json.dump(c, open(path, "w"))
PY
unshare -m --propagation slave sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
  python3 benches/peers.py "$work" "$rounds" "$batch" \
  corral="$PWD/target/release/corral" crun="$(command -v crun)" runc="$(command -v runc)"
