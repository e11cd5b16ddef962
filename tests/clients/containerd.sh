#!/usr/bin/env bash
# containerd (Debian's daemon and its io.containerd.runc.v2 shim, driven
# by ctr) with the OCI runtime RUNTIME:
#   bash tests/clients/containerd.sh RUNTIME
# Run against corral, and against runc as the control. The daemon runs on
# a private socket, root and state in a temp dir; /run is a private tmpfs
# (the shim's sockets go to the compiled-in /run/containerd/s).
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 RUNTIME" >&2; exit 2; }
runtime=$(readlink -f "$(command -v "$1")")
enter_private_ns "$0" "$runtime"
need containerd ctr containerd-shim-runc-v2 script sha256sum
echo "# containerd $(containerd --version | awk '{print $3}') with $runtime"

T=$(mktemp -d /tmp/corral-containerd.XXXXXX)
daemon=
# The namespace names the containers' parent cgroup: one per run.
ns=corral-test-$$
CTR=(ctr --address "$T/containerd.sock" --namespace "$ns")
cleanup() {
  if [ -n "$daemon" ]; then
    for task in $("${CTR[@]}" task ls -q 2>/dev/null); do
      t "${CTR[@]}" task kill -a -s KILL "$task" >/dev/null 2>&1
      t "${CTR[@]}" task delete -f "$task" >/dev/null 2>&1
    done
    for c in $("${CTR[@]}" container ls -q 2>/dev/null); do
      t "${CTR[@]}" container delete "$c" >/dev/null 2>&1
    done
    kill "$daemon" && wait "$daemon"
  fi
  rmdir /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# A docker-archive image: manifest.json, the config, one layer.
make_image() {
  local dir=$T/image layer config
  mkdir -p "$dir"
  make_busybox_tar "$dir/layer.tar"
  layer=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  cat >"$dir/config.tmp" <<JSON
{"architecture":"$(dpkg --print-architecture)","os":"linux","config":{"Cmd":["sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created_by":"corral tests/clients"}]}
JSON
  config=$(sha256sum "$dir/config.tmp" | cut -d' ' -f1)
  mv "$dir/config.tmp" "$dir/$config.json"
  echo "[{\"Config\":\"$config.json\",\"RepoTags\":[\"localhost/corral-busybox:latest\"],\"Layers\":[\"layer.tar\"]}]" >"$dir/manifest.json"
  tar -C "$dir" -cf "$T/image.tar" manifest.json "$config.json" layer.tar
}

# wait_stopped TASK: until ctr lists it STOPPED (5 s at most).
wait_stopped() {
  for _ in $(seq 100); do
    [ "$(t "${CTR[@]}" task ls 2>&1 | awk -v id="$1" '$1 == id {print $3}')" = STOPPED ] && return
    sleep 0.05
  done
}

cat >"$T/config.toml" <<CONF
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
CONF
containerd --config "$T/config.toml" --root "$T/root" --state "$T/state" \
  --address "$T/containerd.sock" >"$T/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$T/containerd.sock" ] && break; sleep 0.05; done
t "${CTR[@]}" version >/dev/null 2>&1 || { not_ok "containerd starts" "$(tail -5 "$T/containerd.log")"; finish; exit; }
ok "containerd starts on a private socket"

make_image
out=$(t "${CTR[@]}" image import --snapshotter native "$T/image.tar" 2>&1)
[ $? -eq 0 ] && ok "ctr image import of a docker archive" || not_ok "ctr image import" "$out"
img=localhost/corral-busybox:latest
R=(--snapshotter native --runc-binary "$runtime" --runc-root "$T/runtime-root")

out=$(t "${CTR[@]}" run --rm "${R[@]}" "$img" c1 echo hi 2>&1)
expect "ctr run --rm prints hi" hi "$out"

t "${CTR[@]}" run --rm "${R[@]}" "$img" c2 sh -c 'exit 3' >/dev/null 2>&1
expect "ctr run exits with the process's code" 3 $?

out=$(t script -qec "${CTR[*]} run --rm -t ${R[*]} $img c3 sh -c 'tty; exit 4'" /dev/null </dev/null 2>&1)
code=$?
expect_contains "ctr run -t gets a pty" /dev/pts/0 "$out"
expect "ctr run -t exits with the process's code" 4 "$code"

# ctr's default spec mounts no cgroupfs: look from the host.
t "${CTR[@]}" run -d --memory-limit 67108864 "${R[@]}" "$img" c4 sh -c "$SLEEPER" >/dev/null 2>&1
pid=$(t "${CTR[@]}" task ls 2>&1 | awk '$1 == "c4" {print $2}')
out=$(cgroup_memory_limit "$pid" 2>&1)
expect "--memory-limit on the host" 67108864 "$out"
t "${CTR[@]}" task kill -s KILL c4 >/dev/null 2>&1
wait_stopped c4
t "${CTR[@]}" task delete c4 >/dev/null 2>&1
t "${CTR[@]}" container delete c4 >/dev/null 2>&1

out=$(t "${CTR[@]}" run -d "${R[@]}" "$img" c5 sh -c "$SLEEPER" 2>&1)
[ $? -eq 0 ] && ok "ctr run -d" || not_ok "ctr run -d" "$out"
out=$(t "${CTR[@]}" task exec --exec-id e1 c5 echo from-exec 2>&1)
expect "ctr task exec prints" from-exec "$out"
t "${CTR[@]}" task exec --exec-id e2 c5 sh -c 'exit 5' >/dev/null 2>&1
expect "ctr task exec exits with the process's code" 5 $?
out=$(t "${CTR[@]}" task ps c5 2>&1)
[ "$(echo "$out" | wc -l)" -ge 2 ] && ok "ctr task ps lists pids" || not_ok "ctr task ps" "$out"
t "${CTR[@]}" task pause c5 >/dev/null 2>&1
out=$(t "${CTR[@]}" task ls 2>&1 | awk '$1 == "c5" {print $3}')
expect "ctr task pause" PAUSED "$out"
t "${CTR[@]}" task resume c5 >/dev/null 2>&1
out=$(t "${CTR[@]}" task ls 2>&1 | awk '$1 == "c5" {print $3}')
expect "ctr task resume" RUNNING "$out"
t "${CTR[@]}" task kill -s TERM c5 >/dev/null 2>&1
expect "ctr task kill -s TERM" 0 $?
wait_stopped c5
out=$(t "${CTR[@]}" task delete c5 2>&1)
expect "stopped by SIGTERM, task deleted" "" "$out"

# kill --all: a second process started by exec dies with the init.
t "${CTR[@]}" run -d "${R[@]}" "$img" c6 sleep 1000 >/dev/null 2>&1
t "${CTR[@]}" task exec -d --exec-id e3 c6 sleep 1000 >/dev/null 2>&1
n=$(t "${CTR[@]}" task ps c6 2>/dev/null | tail -n +2 | wc -l)
expect "two processes before kill --all" 2 "$n"
t "${CTR[@]}" task kill -a -s KILL c6 >/dev/null 2>&1
expect "ctr task kill --all -s KILL" 0 $?
wait_stopped c6
out=$(t "${CTR[@]}" task delete c6 2>&1)
expect_contains "killed by SIGKILL" "137" "$out"
t "${CTR[@]}" container delete c5 c6 >/dev/null 2>&1
expect "ctr container delete" 0 $?

finish
