#!/usr/bin/env bash
# podman (Debian's, through conmon) driving the OCI runtime RUNTIME:
#   bash tests/clients/podman.sh RUNTIME
# Run against corral, and against runc as the control. Everything podman
# keeps (storage, run root, tmp dir, events) is in a temp dir, and /run
# and /dev/shm are private tmpfs (see enter_private_ns).
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 RUNTIME" >&2; exit 2; }
runtime=$(readlink -f "$(command -v "$1")")
enter_private_ns "$0" "$runtime"
need podman conmon script
name=$(basename "$runtime")
echo "# podman $(podman --version | awk '{print $3}') with $runtime"

T=$(mktemp -d /tmp/corral-podman.XXXXXX)
P=(podman --root "$T/root" --runroot "$T/runroot" --tmpdir "$T/tmp"
  --storage-driver vfs --cgroup-manager cgroupfs --events-backend file
  --runtime "$runtime")
cleanup() {
  t "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT

# podman raises nofile to 1048576 by default, above this machine's hard
# limit; without CAP_SYS_RESOURCE every runtime then fails to set it.
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 1024 ] && nofile=1024
nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
cat >"$T/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
# podman passes --log-format=json only to runtimes named here.
runtime_supports_json = ["$name", "runc", "crun"]
CONF
printf '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n' \
  "$T/runroot" "$T/root" >"$T/storage.conf"
export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf"

make_busybox_tar "$T/busybox.tar"
out=$(t "${P[@]}" import -q "$T/busybox.tar" localhost/corral-busybox:latest 2>&1)
[ $? -eq 0 ] || { not_ok "podman import" "$out"; finish; exit; }
ok "podman import of the busybox rootfs"
img=localhost/corral-busybox:latest

out=$(t "${P[@]}" run --rm "$img" echo hi 2>&1)
expect "run --rm prints hi" "hi" "$out"

# podman sends its default seccomp profile (hundreds of names, the
# x86_64/x86/x32 family): the runtime must compile and load it.
out=$(t "${P[@]}" run --rm "$img" sh -c 'grep "^Seccomp:" /proc/self/status' 2>&1)
expect "podman's default seccomp profile is loaded (filter mode)" "$(printf 'Seccomp:\t2')" "$out"

t "${P[@]}" run --rm "$img" sh -c 'exit 3' >/dev/null 2>&1
expect "run exits with the process's code" 3 $?

out=$(t "${P[@]}" run --rm "$img" /nonexistent 2>&1)
code=$?
expect "run of a missing command exits 127" 127 "$code"
expect_contains "the runtime's error reaches podman" /nonexistent "$out"

id=$(t "${P[@]}" run -d "$img" sh -c "$SLEEPER" 2>&1)
[ $? -eq 0 ] && ok "run -d" || not_ok "run -d" "$id"
out=$(t "${P[@]}" exec "$id" echo from-exec 2>&1)
expect "exec prints" from-exec "$out"
out=$(t "${P[@]}" exec "$id" sh -c 'grep "^Seccomp:" /proc/self/status' 2>&1)
expect "exec runs under the container's seccomp filter" "$(printf 'Seccomp:\t2')" "$out"
t "${P[@]}" exec "$id" sh -c 'exit 5' >/dev/null 2>&1
expect "exec exits with the process's code" 5 $?
out=$(t "${P[@]}" top "$id" 2>&1)
expect_contains "top lists the container's processes" "sleep" "$out"
t "${P[@]}" pause "$id" >/dev/null 2>&1
expect "pause" 0 $?
out=$(t "${P[@]}" inspect -f '{{.State.Status}}' "$id" 2>&1)
expect "podman sees it paused" paused "$out"
# podman keeps its own state; the runtime's must agree (default --root).
out=$(t "$runtime" state "$id" 2>&1)
expect_contains "the runtime's state says paused" '"status": "paused"' "$out"
t "${P[@]}" unpause "$id" >/dev/null 2>&1
expect "unpause" 0 $?
out=$(t "${P[@]}" inspect -f '{{.State.Status}}' "$id" 2>&1)
expect "running again" running "$out"
out=$(t "${P[@]}" stop -t 10 "$id" 2>&1)
expect "stop" "$id" "$out"
out=$(t "${P[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$id" 2>&1)
expect "stopped by SIGTERM, exit 0" "exited 0" "$out"
out=$(t "${P[@]}" rm "$id" 2>&1)
expect "rm" "$id" "$out"
out=$(t "$runtime" state "$id" 2>&1)
expect_contains "the runtime forgot it" "does not exist" "$out"

# conmon hands the runtime a console socket; drive podman under a pty.
# The pauses around `tty` dodge a podman/conmon race, seen with runc as
# well: output of a process that exits at once can be lost before the
# attach session forwards it.
out=$(t script -qec "${P[*]} run -it --rm $img sh -c 'sleep 0.2; tty; sleep 0.3; exit 4'" /dev/null </dev/null 2>&1)
code=$?
expect_contains "run -it gets a pty" /dev/pts/0 "$out"
expect "run -it exits with the process's code" 4 "$code"

id=$(t "${P[@]}" run -d --memory 64m "$img" sh -c "$SLEEPER" 2>&1)
out=$(t "${P[@]}" exec "$id" sh -c "$INSIDE_MEMORY_LIMIT" 2>&1)
expect "--memory 64m inside the container" 67108864 "$out"
pid=$(t "${P[@]}" inspect -f '{{.State.Pid}}' "$id" 2>&1)
out=$(cgroup_memory_limit "$pid" 2>&1)
expect "--memory 64m on the host" 67108864 "$out"
out=$(t script -qec "${P[*]} exec -it $id sh -c 'tty; sleep 0.3; exit 6'" /dev/null </dev/null 2>&1)
code=$?
expect_contains "exec -it gets a pty" /dev/pts/ "$out"
expect "exec -it exits with the process's code" 6 "$code"
t "${P[@]}" rm -f -t 0 "$id" >/dev/null 2>&1
expect "rm -f of a running container" 0 $?

finish
