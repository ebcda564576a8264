"""The asyncio twin of bench/core.c: the same measurements, the same counts,
the same metric names, so that bench/run.sh can put them side by side.

The yield bench uses fewer switches than core.c (M / 10) because asyncio
needs microseconds per switch where urt needs nanoseconds; the per-switch
figure does not depend on the count.  QUICK=1 shrinks the counts as in core.c.
"""

import asyncio
import os
import resource
import sys
import time

REPS = 3

N_SPAWN = 100_000
M_YIELD = 100_000
N_SLEEP = 100_000
SLEEP_S = 1.0
if os.environ.get("QUICK", "") not in ("", "0"):
    N_SPAWN, M_YIELD, N_SLEEP, SLEEP_S = 2000, 2000, 1000, 0.1


def row(metric, value, unit, note=""):
    print(f"| {metric} | {value:.1f} | {unit} | {note} |")
    sys.stdout.flush()


def maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def trivial(i):
    return i


async def spawn_one_at_a_time():
    best = None
    for _ in range(REPS):
        t0 = time.monotonic_ns()
        for i in range(N_SPAWN):
            assert await asyncio.create_task(trivial(i)) == i
        per = (time.monotonic_ns() - t0) / N_SPAWN
        best = per if best is None else min(best, per)
    return best


async def spawn_main(gather):
    best = None
    for _ in range(REPS):
        t0 = time.monotonic_ns()
        tasks = [asyncio.create_task(trivial(i)) for i in range(N_SPAWN)]
        if gather:
            values = await asyncio.gather(*tasks)
            assert values == list(range(N_SPAWN))
        else:
            for i, t in enumerate(tasks):
                assert await t == i
        del tasks
        per = (time.monotonic_ns() - t0) / N_SPAWN
        best = per if best is None else min(best, per)
    return best


async def yielder():
    for _ in range(M_YIELD):
        await asyncio.sleep(0)


async def yield_main():
    best = None
    for _ in range(REPS):
        tasks = [asyncio.create_task(yielder()) for _ in range(2)]
        t0 = time.monotonic_ns()
        await asyncio.gather(*tasks)
        per = (time.monotonic_ns() - t0) / (2 * M_YIELD)
        best = per if best is None else min(best, per)
    return best


worst_late_ns = 0


async def sleeper():
    global worst_late_ns
    t0 = time.monotonic_ns()
    await asyncio.sleep(SLEEP_S)
    late = time.monotonic_ns() - t0 - int(SLEEP_S * 1e9)
    worst_late_ns = max(worst_late_ns, late)


async def sleep_main():
    rss0 = maxrss_kib()
    t0 = time.monotonic_ns()
    tasks = [asyncio.create_task(sleeper()) for _ in range(N_SLEEP)]
    created = time.monotonic_ns() - t0
    await asyncio.gather(*tasks)
    wall = time.monotonic_ns() - t0
    rss1 = maxrss_kib()
    return created, wall, rss0, rss1


def main():
    print(f"asyncio core bench (Python {sys.version.split()[0]}): spawn N={N_SPAWN}, "
          f"yield M={M_YIELD} per task, sleep S={N_SLEEP} x {SLEEP_S:.1f} s, best of {REPS}")
    print()
    print("| metric | value | unit | note |")
    print("|---|---:|---|---|")

    # First, as in core.c: ru_maxrss is a high-water mark.
    created, wall, rss0, rss1 = asyncio.run(sleep_main())
    note = f"S={N_SLEEP}, {SLEEP_S:.1f} s"
    row("sleep: create", created / N_SLEEP, "ns/task", note)
    row("sleep: wall", wall / 1e6, "ms", note)
    row("sleep: overshoot", (wall - SLEEP_S * 1e9) / 1e6, "ms", "wall - sleep")
    row("sleep: worst lateness", worst_late_ns / 1e6, "ms", "one task, woke - deadline")
    row("sleep: peak RSS", (rss1 - rss0) * 1024 / N_SLEEP, "bytes/task", "ru_maxrss delta / S")

    row("spawn+await, one at a time", asyncio.run(spawn_one_at_a_time()), "ns/task",
        f"N={N_SPAWN}, 1 alive")
    row("spawn+await", asyncio.run(spawn_main(False)), "ns/task", f"N={N_SPAWN} alive, then awaited")
    row("spawn+gather", asyncio.run(spawn_main(True)), "ns/task", f"N={N_SPAWN} alive, one gather")
    row("yield switch", asyncio.run(yield_main()), "ns/switch", f"2 tasks x M={M_YIELD}")


if __name__ == "__main__":
    main()
