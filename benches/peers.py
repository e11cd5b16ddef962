"""Times `<runtime> run` of one bundle for several runtimes: start-up
latency (runtimes alternate round by round, each round in a new shuffled
order, so drift and each other's kernel clean-up hit all alike) and
throughput at concurrency 32. Processes are started with posix_spawn, which
adds the same small cost to every runtime. Prints medians and ratios
against crun. Called by peers.sh, which prepares the bundle."""

import os
import random
import statistics
import sys
import time

work, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runtimes = dict(arg.split("=", 1) for arg in sys.argv[4:])
bundle = os.path.join(work, "bundle")
devnull = os.open(os.devnull, os.O_RDWR)
counter = 0


def spawn(name):
    global counter
    counter += 1
    root = os.path.join(work, "root-" + name)
    argv = [runtimes[name], "--root", root, "run", "--bundle", bundle, f"{name}-{os.getpid()}-{counter}"]
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
    return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)


def run_once(name):
    t = time.perf_counter_ns()
    pid = spawn(name)
    _, status = os.waitpid(pid, 0)
    took = time.perf_counter_ns() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} run failed: status {status}")
    return took


def throughput(name, total, concurrency=32):
    live, done, failed = set(), 0, 0
    t = time.perf_counter_ns()
    started = 0
    while done < total:
        while started < total and len(live) < concurrency:
            live.add(spawn(name))
            started += 1
        pid, status = os.wait()
        live.discard(pid)
        done += 1
        failed += os.waitstatus_to_exitcode(status) != 0
    secs = (time.perf_counter_ns() - t) / 1e9
    return total / secs, failed


names = list(runtimes)
for name in names:  # warm caches
    run_once(name)
samples = {name: [] for name in names}
shuffle = random.Random(1)
order = list(names)
for r in range(rounds):
    # A new order each round, so each runtime follows each other one about
    # equally often: one that always came right after another would meet
    # that one's kernel clean-up every time. (A rotating order does not do
    # this: it keeps the cyclic sequence, so with three runtimes each one
    # always followed the same other.)
    shuffle.shuffle(order)
    for name in order:
        samples[name].append(run_once(name))
med = {name: statistics.median(s) / 1e6 for name, s in samples.items()}
base = med.get("crun")
print(f"start-up, median of {rounds} alternating runs (ms):")
for name in names:
    ratio = f"  {med[name] / base:.2f}x crun" if base else ""
    print(f"  {name:8} {med[name]:7.2f}{ratio}")
rates = {name: throughput(name, batch) for name in names}
print(f"throughput, {batch} containers at concurrency 32 (containers/s):")
for name in names:
    rate, failed = rates[name]
    ratio = f"  {rate / rates['crun'][0]:.2f}x crun" if "crun" in rates else ""
    print(f"  {name:8} {rate:7.0f}  failures {failed}{ratio}")
