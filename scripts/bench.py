#!/usr/bin/env python3
"""Runs urt's benchmark suite: every workload with urt and with each peer
runtime, in one run, and reports each peer's figures as ratios to urt's.

    make bench                  build everything, then run this (about 10 min)
    make bench QUICK=1          the smoke check: a few seconds per workload
    python3 scripts/bench.py    run it directly, from anywhere

Every peer program speaks the protocol in bench/README.md: it is run as
`PROGRAM WORKLOAD ARGS...`, prints `RESULT name value` lines on stdout,
exits 3 after `UNSUPPORTED workload` for a workload it does not implement,
and prints `SKIP workload reason` for one it cannot run here.

A full run writes bench/results/latest.md (the report, also printed on
stdout), bench/results/latest.json (every run's command, exit status and
figures) and PNG plots in bench/results/.  QUICK=1 writes build/bench/quick.md,
quick.json and its plots to build/bench/ instead (it never touches the
committed results), and checks only that each program ran and printed every
figure it should: the numbers of a few-second run on a shared machine say
nothing about speed.  Both modes end with the line
`bench: N passed, M failed` and exit 1 if M > 0.

Environment:
    QUICK=1                  smoke-check sizes, one run per figure
    RUNS=N                   runs per figure (default 3, QUICK 1); each figure
                             is the median of its runs
    BENCH_PEERS_OVERRIDE=F   a JSON file of peer commands to run instead of
                             the built ones (same as --peers F): a fake peer
                             is how this script is tested without the real ones
Options: --peers FILE, --only PEER[,PEER...], --workloads NAME[,NAME...]
(names as in the tables: spawn switch sleepers timer file echo).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import json
import math
import os
import re
import resource
import selectors
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent

# The Python peers run under Debian's interpreter, the one python3-uvloop is
# installed for, rather than whatever python3 comes first on PATH.
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"

# ---------------------------------------------------------------------------
# What runs: the peers, the workloads and their sizes.  Each size is a pair
# (full run, QUICK run).
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    name: str
    command: tuple[str, ...]       # run from the repository root
    families: tuple[str, ...] = ()  # workload families it takes part in; () = all
    python: bool = False           # asyncio-class speed: smaller task counts

    def runs(self, family: str) -> bool:
        return not self.families or family in self.families


PEERS = [
    Peer("urt", ("build/bench/urt",)),
    # The same server with multishot receive (read-ahead) turned off: how much
    # of urt's echo figure that one feature is.
    Peer("urt (no read-ahead)",
         ("env", "URT_FEATURES_OFF=recv_multishot", "build/bench/urt"), ("echo",)),
    Peer("liburing", ("build/bench/liburing",)),
    Peer("epoll", ("build/bench/epoll",)),
    Peer("libuv", ("build/bench/libuv",)),
    Peer("Go", ("build/bench/go-peer",)),
    Peer("Tokio", ("build/bench/tokio-peer",)),
    Peer("uvloop", (SYSTEM_PYTHON, "bench/asyncio_peer.py", "--uvloop"), python=True),
    Peer("asyncio", (SYSTEM_PYTHON, "bench/asyncio_peer.py"), python=True),
]
LOADGEN = ("build/bench/loadgen",)

# Python needs ~100x C's time per task, so asyncio and uvloop get smaller
# counts; the figures compared are per task or per switch either way.
SPAWN_N, SPAWN_N_PYTHON = (1_000_000, 10_000), (100_000, 10_000)
SWITCH_N, SWITCH_N_PYTHON = (1_000_000, 10_000), (200_000, 10_000)
SLEEPERS = ((100_000, 1000), (1_000, 50))   # (N, MS)
TIMER = ((10_000, 1), (100, 1))             # (N, MS)
FILE_TASKS = 64
FILE_SECONDS = (2, 1)
FILE_SIZE = (1 << 30, 64 << 20)
ECHO_SECONDS = ((1.5, 0.5), (0.3, 0.1))     # loadgen (-d, -w)
OPEN_LOOP_RATE = (20_000, 2_000)            # requests/s offered in all
# Unmeasured load on each server before its first measured run, each round.
ECHO_WARM_UP = (1, 0.2)
RUNS_DEFAULT = 3
TIMEOUT = (120, 30)                         # seconds any one program may run
LISTEN_TIMEOUT = 10                         # for the server's "listening on"
STOP_TIMEOUT = 5                            # for its exit after SIGTERM
DRAIN_KEEP = 1 << 20                        # bytes of a server's stdout kept

# Core 0 runs the runtime under test (one core per runtime, as their
# single-threaded designs assume), core 1 the load generator.
SERVER_CORE, LOADGEN_CORE = 0, 1


@dataclass
class Config:
    quick: bool
    runs: int
    timeout: float
    data_file: Path
    taskset: bool
    hyperfine: bool
    tmp: Path
    loadgen: tuple[str, ...]

    def pick(self, pair):
        return pair[1] if self.quick else pair[0]

    def pin(self, core: int) -> list[str]:
        return ["taskset", "-c", str(core)] if self.taskset else []


def arg(x) -> str:
    """A number as a command-line argument: 3 -> "3", 0.5 -> "0.5"."""
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Workload:
    """One single-process workload: one cell per peer."""
    name: str                  # the cell's name, as the smoke check prints it
    family: str                # what Peer.families and --workloads name
    argv: Callable[[Peer, Config], list[str]]
    results: tuple[str, ...]   # every RESULT it must print (bench/README.md)
    hyperfine: bool = False    # whole-process time measured by hyperfine too
    one_run: bool = False      # its own statistic is over many samples
    warm_file: bool = False    # the data file must be in the page cache


def file_argv(direct: int):
    return lambda p, c: ["file", str(c.data_file.relative_to(ROOT)), arg(FILE_TASKS),
                         arg(c.pick(FILE_SECONDS)), str(direct)]


WORKLOADS = [
    Workload("spawn", "spawn",
             lambda p, c: ["spawn", arg(c.pick(SPAWN_N_PYTHON if p.python else SPAWN_N))],
             ("spawn_ns_per_task", "peak_rss_kib"), hyperfine=True),
    Workload("switch", "switch",
             lambda p, c: ["switch", arg(c.pick(SWITCH_N_PYTHON if p.python else SWITCH_N))],
             ("switch_ns",)),
    Workload("sleepers", "sleepers",
             lambda p, c: ["sleepers", *map(arg, c.pick(SLEEPERS))],
             ("sleepers_overshoot_ms", "sleepers_rss_per_task_bytes"), hyperfine=True),
    # One run: its percentiles are already over N sleeps.
    Workload("timer", "timer",
             lambda p, c: ["timer", *map(arg, c.pick(TIMER))],
             ("timer_p50_us", "timer_p99_us", "timer_p999_us"), one_run=True),
    Workload("file", "file", file_argv(0),
             ("file_reads_per_s", "file_p99_us"), warm_file=True),
    Workload("file O_DIRECT", "file", file_argv(1),
             ("file_reads_per_s", "file_p99_us")),
]

ECHO_RESULTS = ("echo_rps", "echo_p50_us", "echo_p99_us", "echo_p999_us",
                "echo_errors", "server_cpu_ns_per_req", "server_cpu_pct")


@dataclass(frozen=True)
class EchoConfig:
    """One load generator configuration, run against every echo server."""
    name: str
    args: Callable[[Config], list[str]]
    results: tuple[str, ...] = ECHO_RESULTS


ECHO_CONFIGS = [
    EchoConfig("echo 1 conn", lambda c: ["-c", "1"]),
    EchoConfig("echo 64 conns", lambda c: ["-c", "64"]),
    EchoConfig("echo 1000 conns", lambda c: ["-c", "1000"]),
    EchoConfig("echo 64 conns pipelined", lambda c: ["-c", "64", "-p", "16"]),
    EchoConfig("echo open loop", lambda c: ["-c", "64", "-r", arg(c.pick(OPEN_LOOP_RATE))],
               results=ECHO_RESULTS + ("offered_rps",)),
]
# The server's own cell: it started, said where it listens, and exited 0 on
# SIGTERM.
ECHO_SERVER = "echo-server"

# ---------------------------------------------------------------------------
# What is shown: one table per workload.  A column is one figure of one cell.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    cell: str                     # Workload.name or EchoConfig.name
    figure: str                   # a RESULT name, or "wall_ms" (hyperfine's)
    header: str
    higher_is_better: bool = False
    size_dependent: bool = False  # no ratio between runs of different sizes


@dataclass(frozen=True)
class Table:
    title: str
    about: str
    columns: tuple[Column, ...]


WALL = "wall_ms"
TABLES = [
    Table("spawn", "N trivial tasks created, then each awaited in creation order.  In the "
          "full run asyncio and uvloop create fewer tasks (Python takes ~100× as long per "
          "task): the time per task compares across N; peak RSS and wall time do not, "
          "and have no ratio for them.", (
        Column("spawn", "spawn_ns_per_task", "ns per task (create + await)"),
        Column("spawn", "peak_rss_kib", "peak RSS (KiB)", size_dependent=True),
        Column("spawn", WALL, "process wall time (ms)", size_dependent=True))),
    Table("switch", "Two tasks handing control back and forth N times (fewer for asyncio "
          "and uvloop in the full run: the time per switch does not depend on N).", (
        Column("switch", "switch_ns", "ns per switch"),)),
    Table("sleepers", "N tasks each sleeping MS ms, all at once, then gathered.", (
        Column("sleepers", "sleepers_overshoot_ms", "overshoot (ms)"),
        Column("sleepers", "sleepers_rss_per_task_bytes", "RSS per task (bytes)"),
        Column("sleepers", WALL, "process wall time (ms)", size_dependent=True))),
    Table("timer", "One task sleeping MS ms N times in a row: how late each wake-up is. "
          "One run per peer: the percentiles are over its N samples.", (
        Column("timer", "timer_p50_us", "p50 overshoot (µs)"),
        Column("timer", "timer_p99_us", "p99 overshoot (µs)"),
        Column("timer", "timer_p999_us", "p99.9 overshoot (µs)"))),
    Table("file", f"{FILE_TASKS} tasks each doing random 4 KiB reads of one file, "
          "cached in the page cache and with O_DIRECT.", (
        Column("file", "file_reads_per_s", "cached reads/s", higher_is_better=True),
        Column("file", "file_p99_us", "cached p99 (µs)"),
        Column("file O_DIRECT", "file_reads_per_s", "O_DIRECT reads/s", higher_is_better=True),
        Column("file O_DIRECT", "file_p99_us", "O_DIRECT p99 (µs)"))),
    Table("echo: requests/s", "Closed loop: each connection sends 64 bytes and waits "
          "for them back; pipelined keeps 16 requests in flight per connection.", (
        Column("echo 1 conn", "echo_rps", "1 conn", higher_is_better=True),
        Column("echo 64 conns", "echo_rps", "64 conns", higher_is_better=True),
        Column("echo 1000 conns", "echo_rps", "1000 conns", higher_is_better=True),
        Column("echo 64 conns pipelined", "echo_rps", "64 conns pipelined ×16",
               higher_is_better=True))),
    Table("echo: latency", "Round-trip latency in the closed loop (µs).", (
        Column("echo 64 conns", "echo_p50_us", "64 conns p50"),
        Column("echo 64 conns", "echo_p99_us", "64 conns p99"),
        Column("echo 64 conns", "echo_p999_us", "64 conns p99.9"),
        Column("echo 1000 conns", "echo_p50_us", "1000 conns p50"),
        Column("echo 1000 conns", "echo_p99_us", "1000 conns p99"),
        Column("echo 1000 conns", "echo_p999_us", "1000 conns p99.9"))),
    Table("echo: open loop", "64 connections sending a fixed total rate on a schedule; "
          "latency counts from when each request was due, so a server that falls "
          "behind is charged for it.  The figure of interest is the server's CPU "
          "time per request at the same load.", (
        Column("echo open loop", "echo_rps", "answered req/s", higher_is_better=True),
        Column("echo open loop", "server_cpu_ns_per_req", "server CPU ns/request"),
        Column("echo open loop", "server_cpu_pct", "server CPU %"),
        Column("echo open loop", "echo_p50_us", "p50 (µs)"),
        Column("echo open loop", "echo_p99_us", "p99 (µs)"),
        Column("echo open loop", "echo_p999_us", "p99.9 (µs)"))),
]

# ---------------------------------------------------------------------------
# Running programs.  Every child gets its own process group, so a timeout or
# an interrupt can kill it with everything it started (hyperfine's shell and
# the program under it), and every live child is registered so that nothing
# outlives this script.
# ---------------------------------------------------------------------------

_live: set[subprocess.Popen] = set()
_started = time.monotonic()


def progress(msg: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {msg}", file=sys.stderr, flush=True)


def spawn(cmd: list[str], **kw) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **kw)
    _live.add(proc)
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    _live.discard(proc)


def kill_all() -> None:
    for proc in list(_live):
        kill_group(proc)


@dataclass
class RunRecord:
    """One run of one program: what the JSON keeps for every run."""
    command: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    wall_s: float | None = None
    error: str = ""            # why it did not run to an exit status

    def kept(self) -> dict:
        """For the JSON: a program that floods its output must not flood it."""
        return {**dataclasses.asdict(self), "stdout": clip(self.stdout),
                "stderr": clip(self.stderr)}


def clip(text: str, limit: int = 16384) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters left out ...]\n{text[-half:]}"


def run_program(cmd: list[str], timeout: float) -> RunRecord:
    rec = RunRecord(shlex.join(cmd))
    t0 = time.monotonic()
    try:
        proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     errors="replace")
    except OSError as e:
        rec.error = f"cannot run: {e}"
        return rec
    try:
        rec.stdout, rec.stderr = proc.communicate(timeout=timeout)
        rec.exit_code = proc.returncode
    except subprocess.TimeoutExpired:
        rec.error = f"timed out after {timeout:g} s"
    finally:
        if proc.poll() is None:
            kill_group(proc)
        _live.discard(proc)
    rec.wall_s = time.monotonic() - t0
    return rec


# hyperfine 1.15 (Debian 12): --runs, --warmup, --ignore-failure, --shell,
# --prepare, --export-json and --style all exist.  The benchmarked command
# runs under `sh -c` (hyperfine's default shell mode, whose startup time it
# measures and subtracts) because its output must be appended to a file;
# --prepare writes a marker before each run so the file splits per run.
# hyperfine has no timeout of its own, so each run goes under coreutils'
# `timeout`: without it one hung run would hold the whole suite for RUNS
# timeouts.  Its fork and exec (well under a millisecond) is in every peer's
# process wall time alike.
RUN_MARK = "#bench.py run"
TIMED_OUT = 124   # timeout(1)'s exit status when it had to stop the program


def run_hyperfine(cmd: list[str], runs: int, cfg: Config, tag: str) -> list[RunRecord]:
    out, err, js = (cfg.tmp / f"{tag}.{ext}" for ext in ("out", "err", "json"))
    for f in (out, err):
        f.write_text("")
    q = shlex.quote
    limit = ["timeout", "-k", "5", arg(cfg.timeout)] if shutil.which("timeout") else []
    shell_cmd = f"{shlex.join(limit + cmd)} >> {q(str(out))} 2>> {q(str(err))}"
    prepare = f"echo '{RUN_MARK}' >> {q(str(out))}; echo '{RUN_MARK}' >> {q(str(err))}"
    hf = ["hyperfine", "--runs", str(runs), "--warmup", "0", "--ignore-failure",
          "--style", "basic", "--shell", "sh", "--prepare", prepare,
          "--export-json", str(js), shell_cmd]
    outer = run_program(hf, timeout=runs * cfg.timeout + 30)
    if outer.error or outer.exit_code != 0:
        failed = RunRecord(shell_cmd, stdout=out.read_text(errors="replace"),
                           stderr=err.read_text(errors="replace") + outer.stderr)
        failed.error = outer.error or f"hyperfine exited {outer.exit_code}: {last_line(outer.stderr)}"
        return [failed]
    result = json.loads(js.read_text())["results"][0]
    outs = split_runs(out.read_text(errors="replace"))
    errs = split_runs(err.read_text(errors="replace"))
    records = [RunRecord(shell_cmd, code, outs[i] if i < len(outs) else "",
                         errs[i] if i < len(errs) else "", wall)
               for i, (code, wall) in enumerate(zip(result["exit_codes"], result["times"]))]
    for rec in records:
        if limit and rec.exit_code in (TIMED_OUT, 128 + signal.SIGKILL):
            rec.error = f"timed out after {cfg.timeout:g} s"
        elif rec.exit_code is not None and rec.exit_code > 128:
            rec.exit_code = 128 - rec.exit_code   # the shell's 128+N: killed by signal N
    return records


def split_runs(text: str) -> list[str]:
    return text.split(RUN_MARK + "\n")[1:]


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""


# ---------------------------------------------------------------------------
# Judging runs and cells.
# ---------------------------------------------------------------------------

OK, NA, SKIPPED, FAILED = "ok", "n/a", "skipped", "failed"


@dataclass
class Cell:
    """One peer's result for one workload (or one echo configuration)."""
    peer: str
    workload: str
    argv: list[str]
    status: str = OK
    reason: str = ""
    figures: dict[str, float] = field(default_factory=dict)   # medians over runs
    runs: list[dict] = field(default_factory=list)

    def fail(self, reason: str) -> "Cell":
        self.status, self.reason = FAILED, reason
        return self


def parse_output(text: str) -> tuple[dict[str, float], bool, str | None]:
    """RESULT figures, whether UNSUPPORTED was said, and a SKIP reason."""
    figures, unsupported, skip = {}, False, None
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "RESULT":
            try:
                figures[words[1]] = float(words[2])
            except ValueError:
                pass
        elif words[:1] == ["UNSUPPORTED"]:
            unsupported = True
        elif words[:1] == ["SKIP"]:
            skip = " ".join(words[2:]) or "no reason given"
    return figures, unsupported, skip


def judge(rec: RunRecord, expected: tuple[str, ...]) -> tuple[str, str, dict[str, float]]:
    """One run's status, reason and figures, by bench/README.md's protocol."""
    if rec.error:
        return FAILED, rec.error, {}
    figures, unsupported, skip = parse_output(rec.stdout)
    if rec.exit_code == 3 and unsupported:
        return NA, "", {}
    if rec.exit_code != 0:
        why = last_line(rec.stderr) or last_line(rec.stdout)
        return FAILED, describe_exit(rec.exit_code) + (f": {why}" if why else ""), {}
    if skip is not None:
        return SKIPPED, skip, {}
    missing = [name for name in expected if name not in figures]
    if missing:
        return FAILED, "no RESULT " + ", ".join(missing), {}
    if figures.get("echo_errors", 0) > 0:
        return FAILED, f"{figures['echo_errors']:g} echo errors", {}
    if rec.wall_s is not None:
        figures[WALL] = rec.wall_s * 1000
    return OK, "", figures


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:   # Popen's way of saying "killed by a signal"
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def settle(cell: Cell, records: list[RunRecord], expected: tuple[str, ...]) -> None:
    """Judges the runs into the cell: its figures are the runs' medians; the
    first run that is not ok decides the cell."""
    for i, rec in enumerate(records):
        status, reason, figures = judge(rec, expected)
        cell.runs.append({**rec.kept(), "status": status, "reason": reason,
                          "figures": figures})
        if status != OK:
            cell.status = status
            cell.reason = reason if len(records) == 1 or status != FAILED \
                else f"run {i + 1} of {len(records)}: {reason}"
            return
    names = set.intersection(*(set(r["figures"]) for r in cell.runs))
    cell.figures = {n: statistics.median(r["figures"][n] for r in cell.runs) for n in names}


def missing_program(command: tuple[str, ...]) -> str | None:
    """The program (or script) a peer command runs, if it is not there:
    a peer not built yet is a failure of each of its cells, not a crash."""
    words = list(command)
    while words and (words[0] == "env" or re.fullmatch(r"\w+=.*", words[0])):
        words.pop(0)
    if not words:
        return "(empty command)"
    prog = words[0]
    if not (os.access(ROOT / prog, os.X_OK) if "/" in prog else shutil.which(prog)):
        return prog
    if Path(prog).name.startswith("python"):
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        if script and not (ROOT / script).exists():
            return script
    return None


# ---------------------------------------------------------------------------
# The single-process workloads.
# ---------------------------------------------------------------------------

def run_workload(peer: Peer, wl: Workload, cfg: Config) -> Cell:
    cell = Cell(peer.name, wl.name, wl.argv(peer, cfg))
    missing = missing_program(peer.command)
    if missing:
        return cell.fail(f"{missing} not found (not built?)")
    cmd = cfg.pin(SERVER_CORE) + list(peer.command) + cell.argv
    runs = 1 if wl.one_run else cfg.runs
    if wl.hyperfine and cfg.hyperfine:
        tag = re.sub(r"\W+", "_", f"{wl.name}-{peer.name}")
        records = run_hyperfine(cmd, runs, cfg, tag)
    else:
        records = []
        for _ in range(runs):
            records.append(run_program(cmd, cfg.timeout))
            if judge(records[-1], wl.results)[0] != OK:
                break   # a failure, n/a or skip will not change on a rerun
    settle(cell, records, wl.results)
    return cell


def prepare_data_file(cfg: Config) -> None:
    """The file workload's file: random bytes (so no layer can compress or
    dedupe it), on the disk under build/ rather than a tmpfs so O_DIRECT can
    work, made once and reused while its size is right."""
    size = cfg.pick(FILE_SIZE)
    path = cfg.data_file
    if path.exists() and path.stat().st_size == size:
        return
    progress(f"writing {size >> 20} MiB of random bytes to {path.relative_to(ROOT)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    with open(part, "wb") as f:
        chunk = 8 << 20
        for _ in range(size // chunk):
            f.write(os.urandom(chunk))
    part.rename(path)


def warm_data_file(cfg: Config) -> None:
    """Reads the file once, so the cached variant reads the page cache."""
    with open(cfg.data_file, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


# ---------------------------------------------------------------------------
# The echo workload: one server per peer, every load configuration against it.
# ---------------------------------------------------------------------------

class EchoServer:
    """A peer's echo server, pinned to its core, for the life of a `with`.
    Whatever happens inside, it is stopped on the way out."""

    def __init__(self, cmd: list[str], stderr_path: Path):
        self.cmd = cmd
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen | None = None
        self.stdout: list[bytes] = []
        self.drain: threading.Thread | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            kill_group(self.proc)
        _live.discard(self.proc)

    def start(self) -> tuple[str | None, RunRecord]:
        """Starts the server; returns its HOST:PORT, or None and why not."""
        rec = RunRecord(shlex.join(self.cmd))
        with open(self.stderr_path, "wb") as err:
            try:
                self.proc = spawn(self.cmd, stdout=subprocess.PIPE, stderr=err, bufsize=0)
            except OSError as e:
                rec.error = f"cannot run: {e}"
                return None, rec
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + LISTEN_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                m = re.search(rb"^listening on (\S+:\d+)\r?\n", buf, re.M)
                if m:
                    break
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    rec.error = f"no 'listening on' line within {LISTEN_TIMEOUT} s"
                    break
                data = os.read(fd, 65536)
                buf += data
                if not data:   # the server exited before listening
                    rec.exit_code = self.proc.wait()
                    break
        self.stdout.append(buf)
        rec.stdout = buf.decode(errors="replace")
        if not m:
            rec.stderr = self.stderr_path.read_text(errors="replace")
            return None, rec
        # The server's later output must not fill the pipe and block it.
        self.drain = threading.Thread(target=self._drain, args=(fd,), daemon=True)
        self.drain.start()
        return m.group(1).decode(), rec

    def _drain(self, fd: int) -> None:
        kept = 0
        while data := os.read(fd, 65536):
            if kept < DRAIN_KEEP:   # past that, read only to keep the pipe empty
                self.stdout.append(data)
                kept += len(data)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> RunRecord:
        """SIGTERM, then up to STOP_TIMEOUT s for a clean exit 0."""
        rec = RunRecord(shlex.join(self.cmd))
        if not self.alive():
            rec.error = f"it had exited during the load runs ({describe_exit(self.proc.wait())})"
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
                rec.error = f"still running {STOP_TIMEOUT} s after SIGTERM (killed)"
        if self.drain:
            self.drain.join(timeout=2)
        if not (self.drain and self.drain.is_alive()):
            self.proc.stdout.close()
        rec.exit_code = self.proc.wait()
        _live.discard(self.proc)
        rec.stdout = b"".join(self.stdout).decode(errors="replace")
        rec.stderr = self.stderr_path.read_text(errors="replace")
        return rec


@dataclass
class EchoPeer:
    """One echo server's cells, filled round by round."""
    peer: Peer
    server: Cell
    cells: list[Cell]
    records: list[list[RunRecord]]   # per configuration, one per round
    stops: list[RunRecord] = field(default_factory=list)


def run_echo(peers: list[Peer], cfg: Config, configs: list[EchoConfig]) -> list[Cell]:
    """Every echo server, in rounds: each round starts each peer's server in
    turn and runs each configuration once against it.  On a shared machine
    whose speed drifts from minute to minute, the runs of one peer taken
    back to back would all land in the same fast or slow minute; spread
    over the rounds, the drift falls on every peer alike, and the medians
    compare."""
    server_argv = ["echo-server", "127.0.0.1:0"]
    entries = []
    for peer in peers:
        if not peer.runs("echo"):
            continue
        entries.append(EchoPeer(peer, Cell(peer.name, ECHO_SERVER, server_argv),
                                [Cell(peer.name, ec.name, ec.args(cfg)) for ec in configs],
                                [[] for _ in configs]))
    loadgen_missing = missing_program(cfg.loadgen)
    for round_no in range(cfg.runs):
        for e in entries:
            if e.server.status == OK:
                echo_round(e, cfg, configs, round_no, server_argv, loadgen_missing)
    cells = []
    for e in entries:
        for ec, cell, records in zip(configs, e.cells, e.records):
            if cell.status == OK:
                settle(cell, records, ec.results)
        for stop in e.stops:
            status, reason, _ = judge(stop, ())
            e.server.runs.append({**stop.kept(), "status": status, "reason": reason})
            if status != OK and e.server.status == OK:
                e.server.fail(reason if stop.error else f"on SIGTERM: {reason}")
        cells += [e.server] + e.cells
    return cells


def echo_round(e: EchoPeer, cfg: Config, configs: list[EchoConfig], round_no: int,
               server_argv: list[str], loadgen_missing: str | None) -> None:
    """One round of one peer: its server started and warmed up, each
    configuration not yet failed loaded once, the server stopped."""
    missing = missing_program(e.peer.command)
    if missing:
        for cell in [e.server] + e.cells:
            cell.fail(f"{missing} not found (not built?)")
        return
    cmd = cfg.pin(SERVER_CORE) + list(e.peer.command) + server_argv
    tag = re.sub(r"\W+", "_", e.peer.name)
    with EchoServer(cmd, cfg.tmp / f"server-{tag}.err") as server:
        addr, rec = server.start()
        if addr is None:
            status, reason, _ = judge(rec, ())
            if status == OK:   # exit 0 without ever listening
                status, reason = FAILED, "exited 0 without a 'listening on' line"
            for cell in [e.server] + e.cells:
                cell.status, cell.reason = status, reason
            e.server.runs.append(rec.kept())
            return
        progress(f"echo round {round_no + 1}: {e.peer.name} listening on {addr}")
        # A server process's first seconds under load can be far slower than
        # the rest (asyncio's: a quarter of its speed), and which
        # configuration comes first changes from round to round: every
        # round starts with the same unmeasured load.
        if not loadgen_missing:
            warm = cfg.pin(LOADGEN_CORE) + list(cfg.loadgen) + [
                "-a", addr, "-c", "64", "-d", arg(cfg.pick(ECHO_WARM_UP)), "-w", "0"]
            run_program(warm, cfg.timeout)
        for ec, cell, records in zip(configs, e.cells, e.records):
            if cell.status != OK:
                continue
            if loadgen_missing:
                cell.fail(f"{loadgen_missing} not found (not built?)")
            elif not server.alive():
                cell.fail("the server had exited")
            else:
                progress(f"echo round {round_no + 1}: {e.peer.name}, {ec.name.removeprefix('echo ')}")
                rec = run_loadgen(ec, cell.argv, addr, server.proc.pid, cfg)
                records.append(rec)
                if judge(rec, ec.results)[0] != OK:
                    settle(cell, records, ec.results)   # fails the cell with its reason
        e.stops.append(server.stop())


def run_loadgen(ec: EchoConfig, argv: list[str], addr: str, pid: int, cfg: Config) -> RunRecord:
    seconds, warmup = cfg.pick(ECHO_SECONDS)
    cmd = cfg.pin(LOADGEN_CORE) + list(cfg.loadgen) + [
        "-a", addr, *argv, "-d", arg(seconds), "-w", arg(warmup), "-P", str(pid)]
    return run_program(cmd, cfg.timeout)


# ---------------------------------------------------------------------------
# The machine, for the top of the report.
# ---------------------------------------------------------------------------

def output_of(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (r.stdout.strip() or r.stderr.strip()).splitlines()
    return text[0].strip() if r.returncode == 0 and text else "not found"


def read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def tokio_version() -> str:
    lock = read_text(str(ROOT / "bench/tokio/Cargo.lock"))
    m = re.search(r'name = "tokio"\nversion = "([^"]+)"', lock)
    if m:
        return m.group(1) + " (Cargo.lock)"
    dirs = sorted(glob.glob("/usr/share/cargo/registry/tokio-[0-9]*"))
    return Path(dirs[-1]).name.removeprefix("tokio-") + " (Debian crate)" if dirs else "not found"


def machine() -> dict[str, str]:
    cpuinfo = read_text("/proc/cpuinfo")
    models = re.findall(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    meminfo = re.search(r"^MemTotal:\s*(\d+) kB", read_text("/proc/meminfo"), re.M)
    distro = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', read_text("/etc/os-release"), re.M)
    go = output_of(["go", "version"]).split()
    return {
        "CPU": f"{models[0] if models else 'unknown'} × {len(models) or os.cpu_count()}",
        "memory": f"{int(meminfo.group(1)) / (1 << 20):.1f} GiB" if meminfo else "unknown",
        "kernel": os.uname().release,
        "distribution": distro.group(1) if distro else "unknown",
        "liburing": output_of(["pkg-config", "--modversion", "liburing"]),
        "libuv": output_of(["pkg-config", "--modversion", "libuv"]),
        "gcc": output_of(["gcc", "-dumpfullversion"]),
        "Go": go[2].removeprefix("go") if len(go) > 2 else "not found",
        "rustc": output_of(["rustc", "--version"]).removeprefix("rustc "),
        "Tokio": tokio_version(),
        "Python (asyncio, uvloop)": output_of([SYSTEM_PYTHON, "--version"]).removeprefix("Python "),
        "uvloop": output_of([SYSTEM_PYTHON, "-c", "import uvloop; print(uvloop.__version__)"]),
        "hyperfine": output_of(["hyperfine", "--version"]).removeprefix("hyperfine "),
    }


# ---------------------------------------------------------------------------
# The report.
# ---------------------------------------------------------------------------

def fmt_num(v: float) -> str:
    """Three significant digits; thousands separators from 1,000 up."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    r = float(f"{v:.3g}")
    return f"{r:,.0f}" if abs(r) >= 1000 else f"{r:g}"


def advantage(peer: float, urt: float, higher_is_better: bool) -> float | None:
    """urt's advantage: above 1, urt is better; below 1, the peer is."""
    if peer <= 0 or urt <= 0:
        return None
    return urt / peer if higher_is_better else peer / urt


class Notes:
    """The numbered notes at the end of the report.  A peer with the same
    note in several places (a program not built) gets one note naming them."""

    def __init__(self):
        self.where: dict[tuple[str, str], list[str]] = {}   # (peer, text) -> cells

    def ref(self, peer: str, cell: str, text: str) -> str:
        cells = self.where.setdefault((peer, text), [])
        if cell not in cells:
            cells.append(cell)
        return f"[^{list(self.where).index((peer, text)) + 1}]"

    def render(self) -> list[str]:
        return [f"[^{i}]: {peer} ({', '.join(cells)}): {text}"
                for i, ((peer, text), cells) in enumerate(self.where.items(), 1)]


def fmt_cell(cell: Cell | None, col: Column, urt: Cell | None, notes: Notes) -> str:
    if cell is None:
        return ""
    if cell.status == NA:
        return "n/a"
    if cell.status in (SKIPPED, FAILED):
        word = "skipped" if cell.status == SKIPPED else "FAILED"
        return word + notes.ref(cell.peer, cell.workload, f"{word}: {cell.reason}")
    value = cell.figures.get(col.figure)
    if value is None:
        return "—"
    text = fmt_num(value)
    if urt is None or cell is urt or urt.status != OK or col.figure not in urt.figures:
        return text
    if col.size_dependent and cell.argv != urt.argv:
        return text + notes.ref(
            cell.peer, cell.workload, f"run as `{shlex.join(cell.argv)}`, urt as "
            f"`{shlex.join(urt.argv)}`: the figures that grow with the size have no ratio.")
    r = advantage(value, urt.figures[col.figure], col.higher_is_better)
    return f"{text} ({fmt_num(r)}×)" if r is not None else text


def render_table(table: Table, cells: dict, peers: list[Peer], notes: Notes) -> list[str]:
    names = dict.fromkeys(c.cell for c in table.columns)
    rows = [p for p in peers if any((p.name, n) in cells for n in names)]
    if not rows:
        return []
    lines = [f"## {table.title}", "", table.about, ""]
    # The arguments each cell was run with, urt's first, then any that differ.
    for name in names:
        by_argv: dict[str, list[str]] = {}
        for p in rows:
            if (p.name, name) in cells:
                by_argv.setdefault(shlex.join(cells[p.name, name].argv), []).append(p.name)
        parts = [f"`{a}`" + (f" ({', '.join(ps)})" if len(by_argv) > 1 else "")
                 for a, ps in by_argv.items()]
        lines.append(f"- {name}: " + "; ".join(parts))
    lines += ["", "| peer | " + " | ".join(c.header for c in table.columns) + " |",
              "|---|" + "---:|" * len(table.columns)]
    for p in rows:
        row = [fmt_cell(cells.get((p.name, c.cell)), c, cells.get(("urt", c.cell)), notes)
               for c in table.columns]
        lines.append(f"| {p.name} | " + " | ".join(row) + " |")
    return lines + [""]


# The summary at the top of the report (and in the README): one row per
# headline figure, one column per peer, so each target can be read off one
# row.  (row label, cell, figure, higher is better)
SUMMARY = [
    ("spawn+await (ns/task)", "spawn", "spawn_ns_per_task", False),
    ("switch (ns)", "switch", "switch_ns", False),
    ("sleepers: overshoot past the sleep (ms)", "sleepers", "sleepers_overshoot_ms", False),
    ("sleepers: RSS per task (bytes)", "sleepers", "sleepers_rss_per_task_bytes", False),
    ("timer, 1 ms: p99 overshoot (µs)", "timer", "timer_p99_us", False),
    ("echo, 64 conns (req/s)", "echo 64 conns", "echo_rps", True),
    ("echo, 1000 conns (req/s)", "echo 1000 conns", "echo_rps", True),
    ("echo, 64 conns: p99 (µs)", "echo 64 conns", "echo_p99_us", False),
    ("echo, 1000 conns: p99 (µs)", "echo 1000 conns", "echo_p99_us", False),
    ("echo at a fixed rate: server CPU (ns/req)", "echo open loop", "server_cpu_ns_per_req", False),
    ("file, cached (reads/s)", "file", "file_reads_per_s", True),
    ("file, O_DIRECT (reads/s)", "file O_DIRECT", "file_reads_per_s", True),
]


def render_summary(cells: dict, peers: list[Peer], notes: Notes) -> list[str]:
    shown = [p for p in peers if any((p.name, c) in cells for _, c, _, _ in SUMMARY)]
    if not shown:
        return []
    lines = ["## Summary", "", "The headline figure of each workload; the tables below "
             "have the rest.  –: the peer does not implement it.", "",
             "| | " + " | ".join(p.name for p in shown) + " |",
             "|---|" + "---:|" * len(shown)]
    for label, name, figure, higher in SUMMARY:
        col = Column(name, figure, label, higher)
        row = []
        for p in shown:
            cell = cells.get((p.name, name))
            text = fmt_cell(cell, col, cells.get(("urt", name)), notes)
            row.append("–" if text in ("", "n/a") else f"**{text}**" if p.name == "urt" else text)
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return lines + [""]


def render_report(cells: dict, peers: list[Peer], cfg: Config, info: dict[str, str],
                  started: datetime.datetime, elapsed: float, plots: list[Path]) -> str:
    notes = Notes()
    out = ["# urt beside its peers" + (" (QUICK smoke run: not a measurement)" if cfg.quick else ""),
           "", f"Run on {started:%Y-%m-%d %H:%M %Z}, in {elapsed:.0f} s, by `scripts/bench.py` "
           f"(bench/README.md says what each program does).", "",
           "| machine | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    pinning = (f"the runtime under test on core {SERVER_CORE} and the load generator on core "
               f"{LOADGEN_CORE} (`taskset`)" if cfg.taskset
               else "nothing: taskset was not found, so every program ran unpinned")
    timing = ("spawn and sleepers also timed whole-process by hyperfine (its median; "
              "shell start-up subtracted)" if cfg.hyperfine
              else "hyperfine was not found: process wall times are this script's own "
                   "timing of each run")
    out += ["", f"- Runs: each figure is the median of RUNS = {cfg.runs} runs, except timer "
            "(1 run).  The echo runs go in rounds, every server once per round, so "
            "that the machine's drift from minute to minute falls on every peer alike.",
            f"- Pinned: {pinning}.", f"- {timing[0].upper()}{timing[1:]}.", "",
            "**Ratios.** Each cell is `value (r×)`, where r is urt's advantage: "
            "peer / urt for lower-is-better figures (time, latency, memory, CPU per "
            "request) and urt / peer for higher-is-better ones (requests/s, reads/s). "
            "So r > 1 means urt is better, r < 1 that the peer is.  The urt row has "
            "no ratio.  n/a: the peer does not implement the workload.", ""]
    out += render_summary(cells, peers, notes)
    for table in TABLES:
        out += render_table(table, cells, peers, notes)
    if plots:
        out += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    out += notes.render()
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Plots (gnuplot): clustered bars, one series per peer.
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Plot:
    file: str
    title: str
    ylabel: str
    clusters: tuple[tuple[str, str, str], ...]   # (label, cell, figure)
    log_y: bool = False


PLOTS = [
    Plot("echo_throughput.png", "echo: requests/s by connection count (closed loop)",
         "requests/s", (("1 conn", "echo 1 conn", "echo_rps"),
                        ("64 conns", "echo 64 conns", "echo_rps"),
                        ("1000 conns", "echo 1000 conns", "echo_rps"))),
    Plot("echo_latency.png", "echo: latency at 64 connections (closed loop)",
         "latency (µs, log scale)", (("p50", "echo 64 conns", "echo_p50_us"),
                                     ("p99", "echo 64 conns", "echo_p99_us"),
                                     ("p99.9", "echo 64 conns", "echo_p999_us")), log_y=True),
    Plot("timer.png", "timer: overshoot past a 1 ms sleep", "overshoot (µs, log scale)",
         (("p50", "timer", "timer_p50_us"), ("p99", "timer", "timer_p99_us"),
          ("p99.9", "timer", "timer_p999_us")), log_y=True),
]


# One colour per peer, by its place in the peer list, the same in every plot:
# gnuplot's default cycle has only 8, and the suite has 9 peers.
COLOURS = ("#d62728", "#ff9896", "#1f77b4", "#aec7e8", "#2ca02c", "#17becf",
           "#8c564b", "#9467bd", "#c5b0d5", "#7f7f7f", "#bcbd22", "#e377c2")


def colour_index(peer: Peer, peers: list[Peer]) -> int:
    names = [p.name for p in PEERS]
    return names.index(peer.name) if peer.name in names else len(names) + peers.index(peer)


def png_terminal() -> str | None:
    """pngcairo if this gnuplot has it (gnuplot-nox may not), else libgd's png."""
    r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    names = re.findall(r"^\s*(\w+)\s", r.stdout + r.stderr, re.M)
    for term in ("pngcairo", "png"):
        if term in names:
            return term
    return None


def draw_plots(cells: dict, peers: list[Peer], cfg: Config, out_dir: Path) -> list[Path]:
    if shutil.which("gnuplot") is None:
        progress("gnuplot not found: no plots (apt-get install gnuplot-nox)")
        return []
    term = png_terminal()
    if term is None:
        progress("gnuplot has no PNG terminal: no plots")
        return []
    drawn = []
    for plot in PLOTS:
        series = [(colour_index(p, peers), p.name) for p in peers
                  if any(cells.get((p.name, c)) and cells[p.name, c].status == OK
                         and f in cells[p.name, c].figures for _, c, f in plot.clusters)]
        if not series:
            continue
        data = cfg.tmp / (plot.file + ".tsv")
        rows = ["cluster\t" + "\t".join(name for _, name in series)]
        for label, c, f in plot.clusters:
            vals = []
            for _, name in series:
                cell = cells.get((name, c))
                v = cell.figures.get(f) if cell and cell.status == OK else None
                # A log scale cannot show 0: such a bar is left out.
                vals.append("?" if v is None or (plot.log_y and v <= 0) else repr(v))
            rows.append(label + "\t" + "\t".join(vals))
        data.write_text("\n".join(rows) + "\n")
        target = out_dir / plot.file
        target.unlink(missing_ok=True)   # so a stale plot cannot pass for this run's
        script = cfg.tmp / (plot.file + ".gp")
        script.write_text("\n".join([
            f"set terminal {term} size 1100,600" + (" font ',11'" if term == "pngcairo" else ""),
            f"set output {gp_str(str(target))}",
            "set encoding utf8",
            "set datafile separator '\\t'",
            "set datafile missing '?'",
            "set style data histograms",
            "set style histogram clustered gap 1",
            "set style fill solid 0.85 border -1",
            "set key outside right top noenhanced",
            "set grid ytics mytics",
            # Just the clusters, without a bar's worth of empty axis each side.
            f"set xrange [-0.6:{len(plot.clusters) - 0.4}]",
            f"set title {gp_str(plot.title)} noenhanced",
            f"set ylabel {gp_str(plot.ylabel)} noenhanced",
            "set format y '%.0f'" if not plot.log_y else "set logscale y",
            "set yrange [0:*]" if not plot.log_y else "set yrange [*:*]",
            "colours = " + gp_str(" ".join(COLOURS[i % len(COLOURS)] for i, _ in series)),
            f"plot for [i=2:{len(series) + 1}] {gp_str(str(data))} "
            "using i:xtic(1) title columnheader(i) linecolor rgb word(colours, i - 1)",
        ]) + "\n")
        r = subprocess.run(["gnuplot", str(script)], capture_output=True, text=True)
        if r.returncode != 0 or not target.exists():
            progress(f"gnuplot failed on {plot.file}: {last_line(r.stderr)}")
            continue
        drawn.append(target)
    return drawn


def gp_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------

def load_peers(path: str) -> tuple[list[Peer], tuple[str, ...]]:
    """Peers from a JSON file: {"peers": {NAME: [command...] or {"command":
    [...], "workloads": [family...], "python": bool}}, "loadgen": [...]}.
    A peer named like a built-in one keeps that one's workloads and sizes."""
    data = json.loads(Path(path).read_text())
    specs = data.get("peers", data)
    builtin = {p.name: p for p in PEERS}
    peers = []
    for name, spec in specs.items():
        spec = {"command": spec} if isinstance(spec, list) else spec
        base = builtin.get(name, Peer(name, ()))
        peers.append(Peer(name, tuple(spec["command"]),
                          tuple(spec.get("workloads", base.families)),
                          bool(spec.get("python", base.python))))
    return peers, tuple(data.get("loadgen", LOADGEN))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.environ.get("BENCH_PEERS_OVERRIDE"),
                    help="JSON file of peer commands to run instead of the built ones")
    ap.add_argument("--only", help="comma-separated peer names to run")
    ap.add_argument("--workloads", help="comma-separated families: "
                    "spawn,switch,sleepers,timer,file,echo")
    return ap.parse_args()


def make_config(tmp: Path, loadgen: tuple[str, ...]) -> Config:
    quick = os.environ.get("QUICK", "") not in ("", "0")
    runs = int(os.environ.get("RUNS") or (1 if quick else RUNS_DEFAULT))
    if runs < 1:
        sys.exit("bench: RUNS must be at least 1")
    size = FILE_SIZE[1] if quick else FILE_SIZE[0]
    return Config(quick=quick, runs=runs, timeout=TIMEOUT[1] if quick else TIMEOUT[0],
                  data_file=ROOT / "build/bench/data" / f"random-{size >> 20}MiB",
                  taskset=shutil.which("taskset") is not None,
                  hyperfine=shutil.which("hyperfine") is not None, tmp=tmp,
                  loadgen=loadgen)


def raise_fd_limit() -> None:
    """1000 connections need more than a default 1024 descriptors in both
    the server and the load generator; children inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def run_all(peers: list[Peer], families: set[str] | None, cfg: Config) -> list[Cell]:
    chosen = [wl for wl in WORKLOADS if families is None or wl.family in families]
    cells = []
    if any(wl.family == "file" for wl in chosen):
        prepare_data_file(cfg)
    for wl in chosen:
        if wl.warm_file:
            warm_data_file(cfg)
        for peer in peers:
            if peer.runs(wl.family):
                progress(f"{wl.name}: {peer.name}")
                cells.append(run_workload(peer, wl, cfg))
    if families is None or "echo" in families:
        cells += run_echo(peers, cfg, ECHO_CONFIGS)
    return cells


def main() -> int:
    args = parse_args()
    peers, loadgen = load_peers(args.peers) if args.peers else (PEERS, LOADGEN)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        if unknown := wanted - {p.name for p in peers}:
            sys.exit(f"bench: no peer {', '.join(sorted(unknown))}; "
                     f"the peers are: {', '.join(p.name for p in peers)}")
        peers = [p for p in peers if p.name in wanted]
    families = None
    if args.workloads:
        families = {w.strip() for w in args.workloads.split(",")}
        known = {wl.family for wl in WORKLOADS} | {"echo"}
        if unknown := families - known:
            sys.exit(f"bench: no workload {', '.join(sorted(unknown))}; "
                     f"they are: {', '.join(sorted(known))}")
    # A SIGTERM (from make, or a CI timeout) unwinds like Ctrl-C, through the
    # finally that kills every child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_fd_limit()
    started = datetime.datetime.now().astimezone()
    with tempfile.TemporaryDirectory(prefix="urt-bench-") as tmp:
        cfg = make_config(Path(tmp), loadgen)
        mode = "QUICK smoke check" if cfg.quick else f"full run, RUNS={cfg.runs}"
        progress(f"bench: {mode}, {len(peers)} peers")
        if not cfg.taskset:
            progress("taskset not found: running everything unpinned")
        if not cfg.hyperfine:
            progress("hyperfine not found: timing each run here instead")
        try:
            cells = run_all(peers, families, cfg)
        except KeyboardInterrupt:
            print("bench: interrupted", file=sys.stderr)
            return 130
        finally:
            kill_all()
        elapsed = time.monotonic() - _started
        return report(cells, peers, cfg, started, elapsed)


def report(cells: list[Cell], peers: list[Peer], cfg: Config,
           started: datetime.datetime, elapsed: float) -> int:
    out_dir = ROOT / ("build/bench" if cfg.quick else "bench/results")
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / ("quick.md" if cfg.quick else "latest.md")
    by_key = {(c.peer, c.workload): c for c in cells}
    info = machine()
    plots = draw_plots(by_key, peers, cfg, out_dir)
    md = render_report(by_key, peers, cfg, info, started, elapsed, plots)
    md_path.write_text(md)
    md_path.with_suffix(".json").write_text(json.dumps({
        "mode": "quick" if cfg.quick else "full", "runs": cfg.runs,
        "started": started.isoformat(), "elapsed_s": round(elapsed, 1),
        "pinned": cfg.taskset, "hyperfine": cfg.hyperfine, "machine": info,
        "peers": [dataclasses.asdict(p) for p in peers], "loadgen": list(cfg.loadgen),
        "cells": [dataclasses.asdict(c) for c in cells]}, indent=1) + "\n")
    progress(f"wrote {md_path.relative_to(ROOT)}, {md_path.with_suffix('.json').name}"
             + (", " + ", ".join(p.name for p in plots) if plots else ""))

    counted = [c for c in cells if c.status in (OK, FAILED)]
    failed = [c for c in counted if c.status == FAILED]
    if not cfg.quick:
        print(md)
    for c in counted if cfg.quick else failed:
        print(f"  ok    {c.peer} {c.workload}" if c.status == OK
              else f"  FAIL  {c.peer} {c.workload}: {c.reason}")
    progress(f"total {time.monotonic() - _started:.1f} s")
    print(f"bench: {len(counted) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
