"""The Python asyncio peer of urt's benchmark suite, and with --uvloop the
uvloop one: the same code on both event loops, so the gap between the two
rows is the loop and nothing else.

    /usr/bin/python3 bench/asyncio_peer.py [--uvloop] WORKLOAD ARGS...

bench/README.md defines the workloads, their arguments and the RESULT lines.
Everything here is written the way asyncio users write it (create_task,
gather, asyncio.sleep, a Protocol server, the default executor for files),
not tuned past that: the point of the peer is what a user who picks asyncio
gets.  The garbage collector stays on for the same reason.

Run it with /usr/bin/python3: that is the interpreter Debian's python3-uvloop
is built for, and a pyenv python3 earlier on PATH may lack it.
"""

import asyncio
import errno
import mmap
import os
import random
import resource
import signal
import socket
import sys
import time

UNSUPPORTED = 3
USAGE = 2

# The file workload reads 4 KiB blocks at 4 KiB-aligned offsets; O_DIRECT
# needs the buffer, the offset and the length aligned, and 4 KiB covers every
# logical block size a Linux file system uses today.
BLOCK = 4096
# Each task's offsets come from its own seeded generator so runs are
# repeatable and tasks do not read the same sequence.
FILE_SEED = 0x5EED


class Failure(Exception):
    """A wrong answer from the code under test: the run's figures mean
    nothing, so main() reports it and exits 1 (SystemExit from inside a task
    would also exit 1, but drags a traceback through asyncio's shutdown)."""


def result(name, value):
    print(f"RESULT {name} {value:.3f}", flush=True)


def maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def usage(msg):
    print(f"asyncio_peer: {msg}", file=sys.stderr)
    sys.exit(USAGE)


def count(s):
    """A count argument: decimal and at least 1, like bench_count() in C."""
    try:
        v = int(s, 10)
    except ValueError:
        v = 0
    if v < 1:
        usage(f"not a positive count: {s!r}")
    return v


def percentile(sorted_values, p):
    """Exact percentile with the rank rule of hist_percentile() in hist.h, so
    the figure means the same as the C peers' (there without bucket
    rounding)."""
    rank = max(1, int(len(sorted_values) * p / 100.0 + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- spawn -----------------------------------------------------------------

async def trivial(i):
    return i


async def spawn_pass(n):
    tasks = [asyncio.create_task(trivial(i)) for i in range(n)]
    for i, t in enumerate(tasks):
        if await t != i:
            raise Failure(f"spawn: task {i} returned {t.result()!r}")


async def spawn(n):
    # The warm-up grows the heap and the loop's ready deque to their working
    # size, so the timed pass measures tasks and not first-touch page faults.
    await spawn_pass(n)
    t0 = time.monotonic_ns()
    await spawn_pass(n)
    elapsed = time.monotonic_ns() - t0
    result("spawn_ns_per_task", elapsed / n)
    result("peak_rss_kib", maxrss_kib())


# --- switch ----------------------------------------------------------------

async def yielder(times):
    # sleep(0) is asyncio's documented way to yield to the loop: a bare
    # yield, with no timer behind it.
    for _ in range(times):
        await asyncio.sleep(0)


async def switch(n):
    # Two tasks strictly alternate through the ready queue, so each yield is
    # one hand-over to the other task; an odd N gives the first one more.
    tasks = [asyncio.create_task(yielder((n + 1) // 2)),
             asyncio.create_task(yielder(n // 2))]
    t0 = time.monotonic_ns()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic_ns() - t0
    result("switch_ns", elapsed / n)


# --- sleepers --------------------------------------------------------------

async def sleepers(n, ms):
    # ru_maxrss is a high-water mark, so "before" must be taken here, after
    # the interpreter and the loop exist and before any task does.
    rss0 = maxrss_kib()
    t0 = time.monotonic_ns()
    tasks = [asyncio.create_task(asyncio.sleep(ms / 1000)) for _ in range(n)]
    await asyncio.gather(*tasks)
    elapsed = time.monotonic_ns() - t0
    rss1 = maxrss_kib()
    result("sleepers_overshoot_ms", elapsed / 1e6 - ms)
    result("sleepers_rss_per_task_bytes", (rss1 - rss0) * 1024 / n)


# --- timer -----------------------------------------------------------------

async def timer(n, ms):
    delay = ms / 1000
    want_ns = ms * 1_000_000
    samples = []
    for _ in range(n):
        t0 = time.monotonic_ns()
        await asyncio.sleep(delay)
        samples.append(time.monotonic_ns() - t0 - want_ns)
    early = sum(1 for s in samples if s < 0)
    if early:
        # libuv's timers (uvloop's) count in whole milliseconds from a
        # cached loop time, so a sleep can end before MS has passed.  The C
        # peers' histograms hold unsigned overshoots, so an early wake counts
        # as 0 here too; this line keeps it from going unseen.
        print(f"timer: {early} of {n} sleeps ended early, by up to "
              f"{-min(samples) / 1000:.1f} us", file=sys.stderr)
    samples = sorted(max(0, s) for s in samples)
    result("timer_p50_us", percentile(samples, 50) / 1000)
    result("timer_p99_us", percentile(samples, 99) / 1000)
    result("timer_p999_us", percentile(samples, 99.9) / 1000)


# --- echo-server -----------------------------------------------------------

class Echo(asyncio.Protocol):
    """The echo uvloop's own benchmarks measure: a Protocol writing back from
    data_received.  StreamReader/StreamWriter would be the friendlier API but
    add a buffer copy and a task wake-up per read, so they are slower and
    would measure the streams layer rather than the loop."""

    def __init__(self, live):
        self.live = live
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.live.add(transport)
        # Both loops already set TCP_NODELAY on TCP transports (checked with
        # Python 3.11 and uvloop 0.17); setting it again costs one syscall per
        # connection and keeps Nagle out of the latency figures whatever
        # versions run this.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        self.live.discard(self.transport)
        self.transport = None


async def echo_server(host, port):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Signal handlers on the loop turn SIGTERM and SIGINT into an orderly
    # stop instead of a KeyboardInterrupt traceback and a non-zero exit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    live = set()
    # asyncio's default backlog of 100 would drop SYNs when a load generator
    # opens hundreds of connections at once, which would measure the backlog
    # and not the loop; the C peers listen with SOMAXCONN.
    server = await loop.create_server(lambda: Echo(live), host, port,
                                      backlog=socket.SOMAXCONN)
    name = server.sockets[0].getsockname()
    print(f"listening on {name[0]}:{name[1]}", flush=True)
    await stop.wait()
    server.close()
    # On 3.11 wait_closed() does not wait for open connections; aborting them
    # makes the exit prompt even with a load generator still connected.
    for transport in list(live):
        transport.abort()
    await server.wait_closed()


# --- file ------------------------------------------------------------------

def read_exact(fd, buf, offset):
    """The blocking read an executor thread runs for O_DIRECT: preadv into
    the task's page-aligned buffer."""
    return os.preadv(fd, [buf], offset)


async def file_reader(loop, fd, blocks, index, deadline_ns, direct, lat):
    rng = random.Random(FILE_SEED + index)
    # An anonymous mmap is page-aligned, which O_DIRECT needs and a bytes
    # object cannot promise; each task has its own, its reads being
    # concurrent.
    buf = mmap.mmap(-1, BLOCK) if direct else None
    while time.monotonic_ns() < deadline_ns:
        offset = rng.randrange(blocks) * BLOCK
        t0 = time.monotonic_ns()
        # asyncio has no asynchronous file I/O: the idiomatic way is to hand
        # the blocking call to the default executor's thread pool
        # (min(32, cpus + 4) threads), as aiofiles also does underneath.
        if direct:
            got = await loop.run_in_executor(None, read_exact, fd, buf, offset)
        else:
            got = len(await loop.run_in_executor(None, os.pread, fd, BLOCK, offset))
        lat.append(time.monotonic_ns() - t0)
        if got != BLOCK:
            raise Failure(f"file: short read at {offset}: {got} bytes")


def open_file(path, direct):
    """Open PATH, and for DIRECT prove with one read that O_DIRECT works: some
    file systems refuse it at open, others only at the first read."""
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    except OSError as e:
        if direct and e.errno == errno.EINVAL:
            return None
        raise
    if direct:
        probe = mmap.mmap(-1, BLOCK)
        try:
            os.preadv(fd, [probe], 0)
        except OSError as e:
            os.close(fd)
            if e.errno == errno.EINVAL:
                return None
            raise
        finally:
            probe.close()
    return fd


async def file_bench(path, tasks, seconds, direct):
    fd = open_file(path, direct)
    if fd is None:
        print("SKIP file O_DIRECT not supported here", flush=True)
        return
    try:
        blocks = os.fstat(fd).st_size // BLOCK
        if blocks == 0:
            raise Failure(f"file: {path} is smaller than {BLOCK} bytes")
        loop = asyncio.get_running_loop()
        lat = []
        t0 = time.monotonic_ns()
        deadline = t0 + int(seconds * 1e9)
        await asyncio.gather(*(
            asyncio.create_task(
                file_reader(loop, fd, blocks, i, deadline, direct, lat))
            for i in range(tasks)))
        elapsed = time.monotonic_ns() - t0
    finally:
        os.close(fd)
    lat.sort()
    result("file_reads_per_s", len(lat) / (elapsed / 1e9))
    result("file_p99_us", percentile(lat, 99) / 1000)


# --- main ------------------------------------------------------------------

def parse(workload, args):
    """The coroutine for WORKLOAD ARGS, or None for a workload not here."""
    def need(k):
        if len(args) != k:
            usage(f"{workload} takes {k} argument(s), got {len(args)}")

    if workload == "spawn":
        need(1)
        return spawn(count(args[0]))
    if workload == "switch":
        need(1)
        return switch(count(args[0]))
    if workload == "sleepers":
        need(2)
        return sleepers(count(args[0]), count(args[1]))
    if workload == "timer":
        need(2)
        return timer(count(args[0]), count(args[1]))
    if workload == "echo-server":
        need(1)
        host, sep, port = args[0].rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            usage(f"not HOST:PORT: {args[0]!r}")
        return echo_server(host, int(port))
    if workload == "file":
        need(4)
        if args[3] not in ("0", "1"):
            usage(f"DIRECT must be 0 or 1, not {args[3]!r}")
        return file_bench(args[0], count(args[1]), count(args[2]), args[3] == "1")
    return None


def main(argv):
    use_uvloop = len(argv) > 0 and argv[0] == "--uvloop"
    if use_uvloop:
        argv = argv[1:]
    if not argv:
        usage("usage: asyncio_peer.py [--uvloop] WORKLOAD ARGS...")
    workload, args = argv[0], argv[1:]

    loop_factory = None
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            print(f"SKIP {workload} uvloop not installed", flush=True)
            return 0
        loop_factory = uvloop.new_event_loop

    coro = parse(workload, args)
    if coro is None:
        print(f"UNSUPPORTED {workload}", flush=True)
        return UNSUPPORTED
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(coro)
    except Failure as e:
        print(f"asyncio_peer: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
