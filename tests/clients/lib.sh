# Shared by the real-client scenarios (podman.sh, containerd.sh): TAP-like
# checks, a private mount namespace, and the busybox image.
#
# A scenario prints `ok - NAME` or `not ok - NAME: why` per check and
# exits non-zero if any check failed or none ran: it never passes by
# skipping. Each client command runs under `timeout`, so a hang fails the
# check instead of the test run.

passed=0
failed=0

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

# expect NAME WANT GOT
expect() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "want '$2', got '$3'"; fi
}

# expect_contains NAME NEEDLE HAYSTACK
expect_contains() {
  case "$3" in
  *"$2"*) ok "$1" ;;
  *) not_ok "$1" "'$2' not in: $3" ;;
  esac
}

# t CMD...: the command under a 60 s hang guard (not a performance bound).
t() { timeout --kill-after=5 60 "$@"; }

finish() {
  echo "# $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# need CMD...: fails the scenario, naming what is missing.
need() {
  for c in "$@"; do
    command -v "$c" >/dev/null || {
      echo "not ok - $c is not installed (run scripts/setup.sh)"
      exit 1
    }
  done
}

# enter_private_ns SCRIPT ARGS...: re-runs the scenario in a private mount
# namespace with fresh tmpfs on /run and /dev/shm, so that the clients'
# compiled-in paths (the runtime's default --root, containerd's shim
# sockets in /run/containerd/s, podman's lock memory in /dev/shm) never
# touch the host's.
enter_private_ns() {
  if [ -z "${CORRAL_SCENARIO_NS:-}" ]; then
    export CORRAL_SCENARIO_NS=1
    exec unshare --mount --propagation private -- bash "$@"
  fi
  mount -t tmpfs -o mode=755 tmpfs /run || exit 1
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 1
}

# make_busybox_tar TARBALL: a rootfs of Debian's busybox-static (every
# applet a symlink), root in /etc/passwd, as a plain tar.
make_busybox_tar() {
  local dir
  dir=$(mktemp -d)
  mkdir -p "$dir"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$dir/bin/busybox"
  for a in $("$dir/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
  echo 'root:x:0:' >"$dir/etc/group"
  tar -C "$dir" -cf "$1" .
  rm -rf "$dir"
}

# cgroup_memory_limit PID: the memory limit of PID's cgroup, v1 or v2.
cgroup_memory_limit() {
  local rel
  if rel=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' "/proc/$1/cgroup" | cut -d: -f3) && [ -n "$rel" ]; then
    cat "/sys/fs/cgroup/memory$rel/memory.limit_in_bytes"
  else
    rel=$(grep '^0::' "/proc/$1/cgroup" | cut -d: -f3)
    cat "/sys/fs/cgroup$rel/memory.max"
  fi
}

# In-container command printing the container's own memory limit.
INSIDE_MEMORY_LIMIT='cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'

# A process that stops at once on SIGTERM (a shell as pid 1 has no
# default action for it).
SLEEPER='trap "exit 0" TERM; while :; do sleep 0.1; done'
