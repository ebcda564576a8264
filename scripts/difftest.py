#!/usr/bin/env python3
"""difftest.py - differential tester: urt (C) against asyncio (Python).

Usage: scripts/difftest.py [-n COUNT] [-s SEED] [-k] [--out DIR] [options]

For each seed SEED .. SEED+COUNT-1 it generates a random task program and
emits it twice: DIR/prog_sSEED.c against urt and DIR/prog_sSEED.py against
asyncio.  Every C program is a translation unit of its own with one entry,
difftest_prog_sSEED(), that runs the program in its own urt_run; all of them
are compiled with a few `cc -c` invocations (one per core, objects are kept
and reused while the source is unchanged) and linked into one binary,
DIR/difftest-bin, which runs the programs named on its command line one
after another.  The Python side runs in `difftest.py --py-worker` processes,
each running its share of the programs one after another, each in a fresh
event loop (asyncio.run).  Programs mostly sleep, so several workers of each
side run at once (-j, default 8 per side).  Each run is watched: a program
that hangs for 20 s, or crashes, is reported and its worker restarted for the
programs after it.

Output: the regression corpus first (see below), one line each, then
"difftest: regressions R passed, F failed, K known"; then one line per
random program, "ok seed N", or "DIFF seed N" followed by a unified diff of
the two traces (--- asyncio, +++ urt).  Last line:
"difftest: P passed, F failed".  Exit status 1 if a random program or a
regression not marked known failed.  --figure FILE writes the one-line
figure "figure: difftest: N programs compared with asyncio, F differed".

Regression corpus.  tests/difftest/NAME.c and NAME.py are programs that
differed once, stored as emitted (so they keep running exactly as they were,
whatever the generator becomes); they run on every invocation before the
random ones.  NAME.known, if present, marks a difference that is understood
and not fixed yet (its text says why): such a program may go on differing
without failing the run, and is reported when it starts to agree.  --keep
adds every random program that still differs after its retries to the
corpus; --minimize SEED shrinks one differing program step by step while it
keeps differing (--keep stores the result).  See tests/difftest/README.

Program model.  Task 0 is main; tasks 1..N (N <= 7) are each made exactly
once by a task with a lower index, either as a plain task (create) or as a
child of one of its task groups (spawn).  A task body is a sequence of
steps; blocks (task groups and timeout scopes) nest up to two deep:
  sleep       sleep until an absolute slot (multiple of UNIT = 24 ms from
              the start of main).  A task that reaches a sleep after its
              slot has passed just yields (in both).
  yield       urt_yield() / asyncio.sleep(0)
  print       a labelled event
  create tJ   urt_task_create / asyncio.create_task of a plain child
  await tJ    of a plain child made earlier (and visible, see below)
  cancel tJ   of such a child, or of a group child spawned in the block
  gather      of 1..3 such children, default mode or return_exceptions;
              children gather their own children, so gathers nest
  wait_for tJ urt_wait_for / asyncio.wait_for with a deadline slot
  group       urt_group_enter ... urt_group_exit / async with TaskGroup:
              the body spawns the group's children (urt_group_spawn /
              tg.create_task) among other steps.  A failing child aborts
              the group (its siblings are cancelled, the owner cut); the
              exit's outcome is printed as "ok", as the propagating cut, or
              as "failed err E first tI all [tI err E, ...]": E is the
              exit's return code / the first exception of the
              ExceptionGroup, first is the earliest failure
              (urt_group_error[0] / exceptions[0]), all lists every
              failure in spawn order.
  timeout     a timeout scope with a deadline slot (urt_timeout_enter_at /
              asyncio.timeout_at) around a sub-sequence of steps
  ev_*        set, clear, is_set, and wait with a deadline slot
              (urt_event_wait_timeout / Event.wait in asyncio.timeout_at)
              on one of up to 2 shared events
  q_*         put, get (with deadline slots: urt_queue_put_timeout /
              Queue.put in asyncio.timeout_at ...), try_put, try_get
              (put_nowait, get_nowait) on one of up to 2 bounded FIFO
              queues (maxsize 1 or 2)
and ends returning a value (0..99) or failing with a code (1..50: a negative
return in C, `raise Fail(code)` in Python).  Before returning a task awaits
every plain child it made (in creation order), so when main returns nothing
is left alive and asyncio.run / urt_run have nothing to cancel.

Deadlines.  Every timed thing has a slot of its own: sleeps, wait_for's
deadline, a timeout scope's deadline, and each event or queue wait's own
deadline (every event and queue wait has one, which is what guarantees
that a program ends).  Slots increase along each task's steps; a scope's
deadline goes at a random place among the slots of its body.  A deadline
whose slot has passed when the call is reached is no deadline for a scope
or wait_for (URT_NO_TIMEOUT / None), and "do not wait" for an event or
queue wait (timeout 0 / is_set, put_nowait, get_nowait).

Cancellation.  Every point where the C code sees URT_ECANCELED (or the
URT_ETIMEDOUT of a timeout scope's cut) is exactly a point where the Python
code catches CancelledError.  Outside blocks a task either goes on
("caught cancel", tasks drawn as resilient) or prints "cancelled", cancels
and awaits its unfinished children, and ends cancelled.  Inside a block a
cut leaves the block as the exception would: C jumps to the block's exit
(urt_timeout_exit, urt_group_exit), Python lets CancelledError propagate;
a scope whose own deadline made the cut says "timeout" (URT_ETIMEDOUT from
its exit / TimeoutError), and the task goes on after it.  Since every cut
leaves the scope at once, a scope whose exit returns URT_ETIMEDOUT is the
one whose deadline made the cut that leaves it.  An event or queue
wait or a wait_for that ends by its own deadline says "timeout"
(URT_ETIMEDOUT while no enclosing scope's deadline passed / TimeoutError).

Documented differences, printed so that both sides agree:
 - urt_timeout_exit says whether the scope's deadline cut a wait inside
   it; asyncio.timeout raises only when CancelledError reaches its exit.
   They differ when the code handled the cut (an awaited task caught the
   cancellation and returned a value; a group's failures won).  So a scope
   that ends normally prints its expired() flag (urt_timeout_expired /
   Timeout.expired()), never the exit's code; and when a wait inside a
   scope returns normally although the scope's deadline passed meanwhile
   (the cut was absorbed), both sides leave the scope as if cut ("deadline
   passed"): Python by raising CancelledError, which the Timeout turns into
   TimeoutError; C by jumping to the exits, the scope that was seen expired
   saying "timeout".  A task group that such a jump leaves, or any other
   cut that Python raises through its body (an awaited task that ended
   cancelled, say), is aborted on the way out with urt_group_cancel, as
   TaskGroup.__aexit__ aborts when an exception passes.
 - Queue hand-off (urt hands the item to a waiting getter, asyncio wakes it
   to take the item) and primitives' "handed and cancelled in the same
   instant" (urt returns 0, asyncio raises CancelledError): these differ
   only while a woken task has not run yet.  Each queue has one producer
   and one consumer task, and each queue step is followed by a yield, so
   the woken task runs before the waker's next step; the tasks that wait on
   an event or a queue, and every task that awaits them (their ancestors),
   are never cancelled by a cancel step nor aborted by a failing group
   sibling (they are resilient, their groups have no failing child), so
   only deadlines, each in a unit of its own, cut their waits.
 - asyncio.TaskGroup keeps its children in a set, so it cancels them in the
   order of their addresses; urt cancels in spawn order.  The Python side
   gives each group an insertion-ordered set.

gather: asyncio's gather reaches its awaiter two loop passes after the
deciding child finished (and suspends even when they all have); urt's did
at once until it learnt to do the same (749c826), so the gatherer's next
print could land before or after other ready tasks' prints.  By default
each gather is therefore followed by a "settle" sleep to a sub-slot of the
gathering task's own (4 + 2*idx ms into the next unit) before its result is
printed, so that such a difference does not mask others; --raw-gather
turns the settle off and shows it (none is left).

Task groups had the same kind of difference, until urt learnt asyncio's
passes (urt.h, "Task groups"): asyncio's TaskGroup hears of a child's end
one pass later, in the child's done callback, so an exit reached in the
pass a child ended still waits (and wakes two passes later), and a failing
child aborts the group one pass later; and it passes a cancellation of an
owner waiting in its exit on to the children only when the owner runs, one
pass later (a child spawned just before has started by then).  By default
a group's exit is followed by a settle, a group child that is to fail
settles before it fails, and a cancel step whose target (or a descendant
of it) owns a group has a settle before and after it, as has a cancel path
that cancels such children, so that these start from a quiet moment;
--raw-group turns them off.

TaskGroup's exit: up to Python 3.12 it takes back the cancellation it
asked of its owner (when a child failed) before it waits for the
children, so one asked while the owner waits there is never taken back,
and a timeout scope around the group later reports a timeout as a
cancellation (CPython gh-116720).  3.13 moved that after the wait, and
since then an exit that raises the children's failures while the owner is
being cancelled from outside cancels the owner again, so that the outside
cancellation is not lost; urt follows 3.13.  On Python < 3.13 the Python
side uses an exit written to 3.13's rules (_CurrentTaskGroup; with
CPython gh-155433's too, from its main branch: an outside cancellation
caught in the wait is not dropped when the group's own is), and tasks
whose uncancel() drops a cancellation not delivered yet once the count is
back at 0, as 3.13's does (_CurrentTask, on the pure-Python Task): without
it, a timeout scope that takes back its deadline's cancellation would leave
the group's second one pending.

wait_for: Python 3.11's asyncio.wait_for is the pre-3.12 implementation
(a waiter future and a done callback: it wakes the caller two passes after
the task ends, cancels the task one pass after the deadline, and swallows
the caller's cancellation when the task has just finished); 3.12 made it
`async with timeout(): return await fut`, which is what urt_wait_for
follows.  On Python < 3.12 the Python side uses 3.12's definition;
--py-wait-for uses the interpreter's own asyncio.wait_for.

--without NAME,... leaves constructs out of the generated programs (gather,
group, timeout, wait_for, event, queue; group-in-timeout: no task group
inside a timeout scope; late-queue: a queue wait reached after its deadline
uses try_put / try_get instead of a timeout of 0; nested-deadlines: no
timeout scope or wait_for inside a timeout scope).  Nothing is left out
by default; leaving constructs out tells which one a difference comes
from.

Cancel counts.  When a wait inside a scope returns normally although the
scope's deadline passed, the Python side raises CancelledError, which the
Timeout turns into TimeoutError only if no other cancellation of the task
is outstanding (its cancelling() count is back where it was at the
scope's entry); else CancelledError goes on.  The C side asks the same of
urt_task_cancelling.

Open difference.  A task that returns while a cancellation waits for its
next suspension point ends with its value in urt (SEMANTICS 3.1), but
cancelled in asyncio (Task.__step cancels a coroutine that stops with
_must_cancel set); a task group's exit that cancels its owner again
(above), right before the task returns, shows it with --raw-group.

Timing: the order rests on timers landing in their 24 ms units, so a
heavily loaded machine (a stall of a few ms) can reorder a trace.  A
program whose traces differ is run again (alone with the other differing
ones, fewer at once), up to 3 tries in all; one that agrees on a retry
counts as passed and is flagged "(flaky ...)".
"""
import argparse
import difflib
import glob
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

UNIT_MS = 24
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, 'tests', 'difftest')
FEATURES = ('gather', 'group', 'timeout', 'wait_for', 'event', 'queue',
            'group-in-timeout', 'late-queue', 'nested-deadlines')
WATCHDOG_S = 20

# Markers framing each program's trace in a worker's output.
BEGIN, END, ABORT = '\x02', '\x03', '\x04'


class Options:
    """What the emitted code depends on besides the program itself."""

    def __init__(self, settle_gather=True, settle_group=True, py_wait_for=False,
                 without=()):
        self.settle_gather = settle_gather
        self.settle_group = settle_group
        self.py_wait_for = py_wait_for
        self.without = frozenset(without)

    def has(self, feature):
        return feature not in self.without

    def suffix(self):
        """Part of a corpus name: the options that change the emitted code."""
        s = ''
        if not self.settle_gather:
            s += '-rawgather'
        if not self.settle_group:
            s += '-rawgroup'
        if self.py_wait_for:
            s += '-pywaitfor'
        return s

    def describe(self):
        w = ','.join(sorted(self.without))
        return (f'settle_gather={int(self.settle_gather)} '
                f'settle_group={int(self.settle_group)} '
                f'py_wait_for={int(self.py_wait_for)} without={w or "-"}')


# ---------------------------------------------------------------- model

class Task:
    def __init__(self, idx):
        self.idx = idx
        self.parent = None
        self.via = 'plain'          # or 'group'
        self.gid = None             # which of the parent's groups
        self.plain_kids = []
        self.groups = {}            # gid -> [children], in spawn order
        self.resilient = False
        self.protected = False
        self.end = ('return', 0)
        self.sync = []              # event and queue steps still to place
        self.steps = []


class Program:
    def __init__(self, seed):
        self.seed = seed
        self.tasks = []
        self.nev = 0
        self.queues = []            # maxsize of each


def step(kind, **kw):
    kw['k'] = kind
    return kw


BLOCKS = ('group', 'timeout')
TIMED = ('sleep', 'wait_for', 'ev_wait', 'q_put', 'q_get')


def walk(steps):
    """Every step, blocks' bodies included, in program order."""
    for s in steps:
        yield s
        if s['k'] in BLOCKS:
            yield from walk(s['body'])


class Ctx:
    """Where a step is generated: what it may refer to."""

    def __init__(self, visible=(), in_group=False, spawned=None, depth=0,
                 in_timeout=False):
        self.visible = list(visible)    # plain children it may await
        self.in_group = in_group        # inside a group body, at any depth
        self.spawned = spawned          # the innermost group's children so far
        self.depth = depth
        self.in_timeout = in_timeout
        self.no_await = set()           # wait_for'd in a group body: may end cancelled


def generate(seed, opts):
    rng = random.Random(seed)
    prog = Program(seed)
    n = rng.randint(1, 7)
    tasks = [Task(i) for i in range(n + 1)]
    prog.tasks = tasks
    for j in range(1, n + 1):
        p = rng.randrange(0, j)
        tasks[j].parent = p
        if opts.has('group') and rng.random() < 0.35:
            tasks[j].via = 'group'
        else:
            tasks[p].plain_kids.append(j)
    for t in tasks:
        kids = [j for j in range(1, n + 1)
                if tasks[j].parent == t.idx and tasks[j].via == 'group']
        if kids:
            split = rng.randint(1, len(kids)) if len(kids) > 1 and rng.random() < 0.3 \
                else len(kids)
            for gid, part in enumerate((kids[:split], kids[split:])):
                if part:
                    t.groups[gid] = part
                    for j in part:
                        tasks[j].gid = gid

    # Shared objects.  The tasks that can be woken by a hand-off (an event's
    # waiters, a queue's producer and consumer) are protected, with their
    # ancestors: see "Documented differences" in the docstring.
    waiters = set()
    if opts.has('event') and rng.random() < 0.4:
        prog.nev = rng.randint(1, 2)
        for e in range(prog.nev):
            for w in rng.sample(range(n + 1), min(n + 1, rng.randint(1, 3))):
                for _ in range(rng.randint(1, 2)):
                    tasks[w].sync.append(step('ev_wait', e=e, slot=None))
                waiters.add(w)
            for s in rng.sample(range(n + 1), min(n + 1, rng.randint(1, 2))):
                tasks[s].sync.append(step('ev_set', e=e))
                if rng.random() < 0.3:
                    tasks[s].sync.append(step('ev_clear', e=e))
                if rng.random() < 0.3:
                    tasks[s].sync.append(step('ev_check', e=e))
    if opts.has('queue') and n >= 1 and rng.random() < 0.4:
        for q in range(rng.randint(1, 2)):
            prog.queues.append(rng.randint(1, 2))
            producer, consumer = rng.sample(range(n + 1), 2)
            for i in range(rng.randint(1, 3)):
                item = 100 * (q + 1) + i
                if rng.random() < 0.25:
                    tasks[producer].sync.append(step('q_tryput', q=q, item=item))
                else:
                    tasks[producer].sync.append(step('q_put', q=q, item=item, slot=None))
            for i in range(rng.randint(1, 3)):
                if rng.random() < 0.25:
                    tasks[consumer].sync.append(step('q_tryget', q=q))
                else:
                    tasks[consumer].sync.append(step('q_get', q=q, slot=None))
            waiters.update((producer, consumer))
    for t in tasks:
        # a random order that keeps each queue's steps together (a task
        # working one queue, then the other)
        rng.shuffle(t.sync)
        t.sync.sort(key=lambda s: s['q'] if 'q' in s else -1)
        if rng.random() < 0.5:
            t.sync.reverse()
    for w in waiters:
        i = w
        while i is not None:
            tasks[i].protected = True
            i = tasks[i].parent

    for t in tasks:
        t.resilient = t.idx == 0 or t.protected or rng.random() < 0.3
        if t.idx > 0:
            owner_protected = t.via == 'group' and tasks[t.parent].protected
            if rng.random() < 0.6 or owner_protected:
                t.end = ('return', rng.randint(0, 99))
            else:
                t.end = ('fail', rng.randint(1, 50))

    bids = [0]

    def new_bid():
        bids[0] += 1
        return bids[0]

    for t in tasks:
        bids[0] = 0
        state = {'plain': list(t.plain_kids), 'groups': dict(t.groups),
                 'sync': list(t.sync), 'ev': 0}
        ctx = Ctx()
        t.steps = gen_seq(rng, prog, t, state, ctx, rng.randint(2, 9), opts, new_bid)
        for gid in list(state['groups']):
            t.steps.append(make_group(rng, prog, t, state, ctx, gid, opts, new_bid, 0))
        for j in state['plain']:
            t.steps.append(step('create', j=j))
        for s in state['sync']:
            t.steps.append(s)
            if s['k'].startswith('q_'):
                t.steps.append(step('yield'))
        state['sync'] = []
    assign_slots(rng, prog)
    return prog


def make_group(rng, prog, t, state, ctx, gid, opts, new_bid, extra):
    kids = state['groups'].pop(gid)
    bid = new_bid()
    inner = Ctx(visible=(), in_group=True, spawned=[], depth=ctx.depth + 1,
                in_timeout=ctx.in_timeout)
    tokens = ['spawn'] * len(kids) + ['gen'] * extra
    rng.shuffle(tokens)
    body = []
    todo = list(kids)
    for tok in tokens:
        if tok == 'spawn':
            j = todo.pop(0)
            body.append(step('spawn', j=j, bid=bid))
            inner.spawned.append(j)
        else:
            body += gen_seq(rng, prog, t, state, inner, 1, opts, new_bid)
    return step('group', bid=bid, gid=gid, body=body)


def gen_seq(rng, prog, t, state, ctx, nsteps, opts, new_bid):
    tasks = prog.tasks
    steps = []
    for _ in range(nsteps):
        kinds = ['sleep', 'sleep', 'yield', 'print']
        if state['plain']:
            kinds += ['create'] * 3
        if state['groups'] and ctx.depth < 2 and \
                (not ctx.in_timeout or opts.has('group-in-timeout')):
            kinds += ['group'] * 3
        nested_ok = not ctx.in_timeout or opts.has('nested-deadlines')
        if opts.has('timeout') and ctx.depth < 2 and nested_ok:
            kinds += ['timeout']
        if state['sync']:
            kinds += ['sync'] * 3
        awaitable = [j for j in ctx.visible if j not in ctx.no_await]
        if awaitable:
            kinds += ['await', 'await']
            if opts.has('gather'):
                kinds += ['gather', 'gather']
            if opts.has('wait_for') and nested_ok:
                kinds += ['wait_for']
        # In a group body a plain child that may end cancelled is neither
        # cancelled nor awaited: Python's CancelledError would leave the body
        # as an exception and abort the group, where urt sees no cancellation
        # of the owner.
        cancellable = [] if ctx.in_group else \
            [j for j in ctx.visible if not tasks[j].protected]
        if ctx.spawned:
            cancellable += [j for j in ctx.spawned if not tasks[j].protected]
        if cancellable:
            kinds += ['cancel']
        k = rng.choice(kinds)
        if k == 'sleep':
            steps.append(step('sleep', slot=None))
        elif k == 'yield':
            steps.append(step('yield'))
        elif k == 'print':
            state['ev'] += 1
            steps.append(step('print', n=state['ev']))
        elif k == 'create':
            j = state['plain'].pop(0)
            ctx.visible.append(j)
            steps.append(step('create', j=j))
        elif k == 'group':
            gid = rng.choice(sorted(state['groups']))
            steps.append(make_group(rng, prog, t, state, ctx, gid, opts, new_bid,
                                    rng.randint(0, 3)))
        elif k == 'timeout':
            inner = Ctx(visible=ctx.visible, in_group=ctx.in_group, spawned=ctx.spawned,
                        depth=ctx.depth + 1, in_timeout=True)
            inner.no_await = set(ctx.no_await)
            bid = new_bid()
            body = gen_seq(rng, prog, t, state, inner, rng.randint(1, 4), opts, new_bid)
            if ctx.in_group:
                ctx.no_await |= inner.no_await
            steps.append(step('timeout', bid=bid, slot=None, body=body))
        elif k == 'sync':
            s = state['sync'].pop(0)
            steps.append(s)
            if s['k'].startswith('q_'):
                steps.append(step('yield'))
        elif k == 'await':
            steps.append(step('await', j=rng.choice(awaitable)))
        elif k == 'wait_for':
            j = rng.choice(awaitable)
            if ctx.in_group:
                ctx.no_await.add(j)
            steps.append(step('wait_for', j=j, slot=None))
        elif k == 'cancel':
            j = rng.choice(cancellable)
            steps.append(step('cancel', j=j))
        else:
            m = rng.randint(1, min(3, len(awaitable)))
            steps.append(step('gather', js=rng.sample(awaitable, m),
                              rex=rng.random() < 0.5))
    return steps


def timed_items(rng, steps):
    seq = []
    for s in steps:
        if s['k'] in TIMED:
            seq.append(s)
        elif s['k'] == 'group':
            seq += timed_items(rng, s['body'])
        elif s['k'] == 'timeout':
            inner = timed_items(rng, s['body'])
            pos = rng.randint(0, len(inner))
            seq += inner[:pos] + [s] + inner[pos:]
    return seq


def assign_slots(rng, prog):
    """Distinct slots for everything timed, increasing within each task."""
    per_task = [timed_items(rng, t.steps) for t in prog.tasks]
    total = sum(len(s) for s in per_task)
    slots = rng.sample(range(1, total * 3 // 2 + 2), total)
    pos = 0
    for seq in per_task:
        for s, v in zip(seq, sorted(slots[pos:pos + len(seq)])):
            s['slot'] = v
        pos += len(seq)


def subtree_has_group(prog, j):
    """Whether task j or one of its descendants owns a task group."""
    sub = {j}
    grew = True
    while grew:
        grew = False
        for t in prog.tasks:
            if t.parent in sub and t.idx not in sub:
                sub.add(t.idx)
                grew = True
    return any(prog.tasks[i].groups or any(s['k'] == 'group' for s in walk(prog.tasks[i].steps))
               for i in sub)


def program_length_ms(prog):
    top = max([s['slot'] for t in prog.tasks for s in walk(t.steps) if 'slot' in s] + [0])
    return (top + 2) * UNIT_MS


# ---------------------------------------------------------------- C side

C_HEAD = r'''/* difftest program %(tag)s (%(origin)s).
 * Replay: cc -std=gnu11 -Iinclude THIS.c build/liburt.a -luring -lpthread && ./a.out
 * (see tests/difftest/README). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "urt.h"

#define UNIT (%(unit)dull * URT_NS_PER_MS)
#define NTASKS %(ntasks)d
static uint64_t t0;
static urt_task h[NTASKS];
static int made[NTASKS];
static urt_event ev[%(nev)d];
static urt_queue qu[%(nq)d];

#define P(...) do { printf(__VA_ARGS__); fflush(stdout); } while (0)
#define IS_CUT(rc) ((rc) == URT_ECANCELED || (rc) == URT_ETIMEDOUT)

static int sleep_until(int slot)
{
    uint64_t dl = t0 + (uint64_t)slot * UNIT, now = urt_now();
    if (now >= dl)
        return urt_yield();
    return urt_sleep(dl - now);
}

/* A slot's absolute deadline, or 0 once it has passed. */
static uint64_t deadline(int slot)
{
    uint64_t dl = t0 + (uint64_t)slot * UNIT;
    return urt_now() >= dl ? 0 : dl;
}

static uint64_t until(uint64_t dl)
{
    uint64_t now = urt_now();
    return dl > now ? dl - now : 1;
}

/* Sleep to this task's own sub-slot (4 + 2 * me ms into a unit) of the next
 * unit: used after a gather or a group (see --raw-gather).  Never one of this
 * unit, which a settle that started this burst may be close to. */
static int settle(int me)
{
    uint64_t u = (urt_now() - t0) / UNIT;
    uint64_t dl = (u + 1) * UNIT + (4 + 2 * (uint64_t)me) * URT_NS_PER_MS;
    return urt_sleep(t0 + dl - urt_now());
}

/* bid if the scope is seen expired for the first time, else prev: nested
 * calls, innermost scope first, give the outermost one that newly expired. */
static int newly_expired(int bid, const urt_timeout *t, int *seen, int prev)
{
    if (*seen || urt_timeout_expired(t) != 1)
        return prev;
    *seen = 1;
    return bid;
}

static void outcome(char *buf, size_t n, int rc, intptr_t v, int cut)
{
    if (cut)
        snprintf(buf, n, "cancelled");
    else if (rc == 0)
        snprintf(buf, n, "value %%ld", (long)v);
    else if (rc == URT_ECANCELED)
        snprintf(buf, n, "cancelled");
    else if (rc == URT_ETIMEDOUT)
        snprintf(buf, n, "timeout");
    else
        snprintf(buf, n, "error %%d", -rc);
}

static const char *word(int rc, int cut)
{
    static char b[32];
    if (cut)
        return "cancelled";
    if (rc == 0)
        return "ok";
    if (rc == URT_ETIMEDOUT)
        return "timeout";
    snprintf(b, sizeof b, "error %%d", rc);
    return b;
}

static void cleanup(int me, const int *kids, int nk, int cancel)
{
    char b[64];
    if (cancel)
        for (int i = 0; i < nk; i++)
            if (urt_task_done(h[kids[i]]) == 0)
                urt_task_cancel(h[kids[i]]);
    for (int i = 0; i < nk; i++) {
        intptr_t v = 0;
        int rc = urt_task_await(h[kids[i]], &v);
        outcome(b, sizeof b, rc, v, 0);
        P("t%%d cleanup t%%d -> %%s\n", me, kids[i], b);
    }
}

/* A failed group's exit: its code, the earliest failure, then all of them in
 * spawn order. */
static void group_failed(int me, int bid, int rc, const urt_group_error *ge, size_t nge,
                         const int *gk)
{
    char b[256];
    size_t n = nge < 8 ? nge : 8, order[8];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && ge[order[j]].index < ge[order[j - 1]].index; j--) {
            size_t x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    int o = snprintf(b, sizeof b, "t%%d group#%%d -> failed err %%d first t%%d all [", me, bid,
                     -rc, n ? gk[ge[0].index] : -1);
    for (size_t i = 0; i < n; i++)
        o += snprintf(b + o, sizeof b - o, "%%st%%d err %%d", i ? ", " : "",
                      gk[ge[order[i]].index], -ge[order[i]].error);
    P("%%s]\n", b);
}
'''

C_RUN = r'''
int difftest_prog_%(tag)s(void)
{
    intptr_t v = 0;
    memset(h, 0, sizeof h);
    memset(made, 0, sizeof made);
    for (int i = 0; i < %(nev)d; i++)
        urt_event_init(&ev[i]);
%(queues)s
    int rc = urt_run(t0_fn, NULL, &v);
    for (int i = 0; i < %(nqueues)d; i++)
        urt_queue_destroy(&qu[i]);
    if (rc != 0)
        printf("urt_run -> %%d\n", rc);
    else
        printf("main -> %%ld\n", (long)v);
    fflush(stdout);
    return rc;
}

#ifndef DIFFTEST_BATCH
int main(void)
{
    return difftest_prog_%(tag)s() ? 1 : 0;
}
#endif
'''


class Emitter:
    """What both emitters share: the walk over one task's steps."""

    def __init__(self, prog, opts, t):
        self.prog, self.opts, self.t, self.me = prog, opts, t, t.idx
        self.L = []
        self.blocks = []        # enclosing blocks, innermost last: (kind, bid)

    def scopes(self):
        return [bid for kind, bid in self.blocks if kind == 'timeout']


class CEmitter(Emitter):
    def line(self, s, ind):
        self.L.append('    ' * ind + s)

    def cancel_path(self, ind):
        me = self.me
        if self.t.resilient:
            self.line(f'P("t{me} caught cancel\\n");', ind)
        else:
            self.line(f'P("t{me} cancelled\\n");', ind)
            if self.opts.settle_group and any(subtree_has_group(self.prog, j)
                                              for j in self.t.plain_kids):
                self.line(f'settle({me});', ind)
            self.line(f'cleanup({me}, kids, nk, 1);', ind)
            self.line('return URT_ECANCELED;', ind)

    def nx(self):
        expr = '0'
        for b in reversed(self.scopes()):
            expr = f'newly_expired({b}, &tm_{b}, &seen_{b}, {expr})'
        return expr

    def on_cut(self, code, ind, syn=0):
        """The step was cut: leave the innermost block, or handle it here."""
        if self.blocks:
            self.line(f'{{ cut = {code}; cut_syn = {syn}; goto out_{self.blocks[-1][1]}; }}', ind)
        else:
            self.line('{', ind)
            self.cancel_path(ind + 1)
            self.line('}', ind)

    def after_wait(self, ind):
        """A wait that was not cut, inside a scope whose deadline passed
        meanwhile: the cut was absorbed; leave as if cut (see docstring)."""
        if self.scopes():
            self.line('if (nx) {', ind)
            self.line(f'P("t{self.me} deadline passed\\n");', ind + 1)
            self.on_cut('URT_ETIMEDOUT', ind + 1, syn='nx')
            self.line('}', ind)

    def cut_expr(self, own_timeout):
        if own_timeout:
            return '(rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx))'
        return 'IS_CUT(rc)'

    def steps(self, steps, ind):
        for s in steps:
            getattr(self, 'do_' + s['k'])(s, ind)

    def do_sleep(self, s, ind):
        self.wait_simple(f'sleep_until({s["slot"]})', 'slept', ind)

    def do_yield(self, s, ind):
        self.wait_simple('urt_yield()', 'yielded', ind)

    def wait_simple(self, call, word, ind):
        me = self.me
        self.line(f'rc = {call};', ind)
        self.line(f'nx = {self.nx()};', ind)
        if self.blocks:
            self.line('if (IS_CUT(rc)) {', ind)
            self.line(f'P("t{me} cut\\n");', ind + 1)
            self.on_cut('rc', ind + 1)
            self.line('}', ind)
        else:
            self.line('if (rc == URT_ECANCELED) {', ind)
            self.cancel_path(ind + 1)
            self.line('}', ind)
        if word:
            self.line(f'else P("t{me} {word}\\n");', ind)
        self.after_wait(ind)

    def do_print(self, s, ind):
        self.line(f'P("t{self.me} event {s["n"]}\\n");', ind)

    def do_create(self, s, ind):
        j = s['j']
        self.line(f'P("t{self.me} create t{j}\\n");', ind)
        self.line(f'urt_task_create(&h[{j}], t{j}_fn, NULL);', ind)
        self.line(f'made[{j}] = 1;', ind)
        self.line(f'kids[nk++] = {j};', ind)

    def do_spawn(self, s, ind):
        j, bid, me = s['j'], s['bid'], self.me
        self.line(f'P("t{me} spawn t{j}\\n");', ind)
        self.line(f'rc = urt_group_spawn(&g_{bid}, &h[{j}], t{j}_fn, NULL);', ind)
        self.line(f'if (rc == 0) {{ made[{j}] = 1; gk_{bid}[ngk_{bid}++] = {j}; }}', ind)
        self.line(f'else P("t{me} spawn t{j} -> %s\\n", rc == -ESHUTDOWN ? "refused" : "error");',
                  ind)

    def do_cancel(self, s, ind):
        j = s['j']
        quiet = self.opts.settle_group and subtree_has_group(self.prog, j)
        if quiet:
            self.wait_simple(f'settle({self.me})', None, ind)
        self.line(f'if (made[{j}]) P("t{self.me} cancel t{j} -> %d\\n", '
                  f'urt_task_cancel(h[{j}]));', ind)
        self.line(f'else P("t{self.me} cancel t{j} -> none\\n");', ind)
        if quiet:
            self.wait_simple(f'settle({self.me})', None, ind)

    def do_await(self, s, ind):
        j = s['j']
        self.line(f'v = 0; rc = urt_task_await(h[{j}], &v);', ind)
        self.result_step(f'awaited t{j}', False, ind)

    def do_wait_for(self, s, ind):
        j = s['j']
        self.line(f'dl = deadline({s["slot"]}); v = 0;', ind)
        self.line(f'rc = urt_wait_for(h[{j}], dl ? until(dl) : URT_NO_TIMEOUT, &v);', ind)
        self.result_step(f'wait_for t{j}', True, ind)

    def result_step(self, what, own_timeout, ind):
        """await and wait_for: print the outcome; a cancelled outcome is a
        cut (as CancelledError reaching the Python code)."""
        me = self.me
        self.line(f'nx = {self.nx()};', ind)
        self.line(f'iscut = {self.cut_expr(own_timeout)};', ind)
        self.line('outcome(b, sizeof b, rc, v, iscut);', ind)
        self.line(f'P("t{me} {what} -> %s\\n", b);', ind)
        self.line('if (iscut)', ind)
        self.on_cut('rc', ind + 1)
        self.after_wait(ind)

    def do_gather(self, s, ind):
        js, rex, me = s['js'], s['rex'], self.me
        m = len(js)
        names = ','.join(f't{j}' for j in js)
        self.line('{', ind)
        i2 = ind + 1
        self.line(f'urt_task g[{m}] = {{' + ', '.join(f'h[{j}]' for j in js) + '};', i2)
        self.line(f'intptr_t vals[{m}] = {{0}}; int errs[{m}] = {{0}};', i2)
        flags = 'URT_RETURN_EXCEPTIONS' if rex else '0'
        self.line(f'rc = urt_gather(g, {m}, {flags}, vals, errs);', i2)
        self.line(f'rs = {"settle(" + str(me) + ")" if self.opts.settle_gather else "0"};', i2)
        self.line(f'nx = {self.nx()};', i2)
        self.line('iscut = IS_CUT(rc) || IS_CUT(rs);', i2)
        self.line('if (rc == 0) {', i2)
        self.line('int o = snprintf(b, sizeof b, "[");', i2 + 1)
        self.line(f'for (int i = 0; i < {m}; i++) {{', i2 + 1)
        self.line('const char *sep = i ? ", " : "";', i2 + 2)
        if rex:
            self.line('if (errs[i] == URT_ECANCELED) o += snprintf(b + o, sizeof b - o, '
                      '"%scancelled", sep);', i2 + 2)
            self.line('else if (errs[i]) o += snprintf(b + o, sizeof b - o, "%serr %d", sep, '
                      '-errs[i]);', i2 + 2)
            self.line('else o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);',
                      i2 + 2)
        else:
            self.line('o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);',
                      i2 + 2)
        self.line('}', i2 + 1)
        self.line('snprintf(b + o, sizeof b - o, "]");', i2 + 1)
        self.line('} else outcome(b, sizeof b, rc, 0, IS_CUT(rc));', i2)
        self.line(f'P("t{me} gather{"_rex" if rex else ""} {names} -> %s\\n", b);', i2)
        self.line('}', ind)
        self.line('if (iscut) {', ind)
        self.line('rc = IS_CUT(rc) ? rc : rs;', ind + 1)
        self.on_cut('rc', ind + 1)
        self.line('}', ind)
        self.after_wait(ind)

    def do_ev_set(self, s, ind):
        self.line(f'P("t{self.me} ev{s["e"]} set\\n"); urt_event_set(&ev[{s["e"]}]);', ind)

    def do_ev_clear(self, s, ind):
        self.line(f'P("t{self.me} ev{s["e"]} clear\\n"); urt_event_clear(&ev[{s["e"]}]);', ind)

    def do_ev_check(self, s, ind):
        self.line(f'P("t{self.me} ev{s["e"]} is_set -> %d\\n", urt_event_is_set(&ev[{s["e"]}]));',
                  ind)

    def sync_wait(self, call, what, ind, got=None):
        """An event or queue wait with a deadline of its own."""
        me = self.me
        self.line(f'dl = deadline({self.cur["slot"]});', ind)
        self.line(f'rc = {call};', ind)
        self.line(f'nx = {self.nx()};', ind)
        self.line(f'iscut = {self.cut_expr(True)};', ind)
        if got:
            self.line(f'if (rc == 0) P("t{me} {what} -> %ld\\n", (long)(intptr_t)it);', ind)
            self.line(f'else P("t{me} {what} -> %s\\n", word(rc, iscut));', ind)
        else:
            self.line(f'P("t{me} {what} -> %s\\n", word(rc, iscut));', ind)
        self.line('if (iscut)', ind)
        self.on_cut('rc', ind + 1)
        self.after_wait(ind)

    def do_ev_wait(self, s, ind):
        self.cur = s
        self.sync_wait(f'urt_event_wait_timeout(&ev[{s["e"]}], dl ? until(dl) : 0)',
                       f'ev{s["e"]} wait', ind)

    def do_q_put(self, s, ind):
        self.cur = s
        q, item = s['q'], s['item']
        if self.opts.has('late-queue'):
            call = f'urt_queue_put_timeout(&qu[{q}], (void *){item}, dl ? until(dl) : 0)'
        else:
            call = (f'(dl ? urt_queue_put_timeout(&qu[{q}], (void *){item}, until(dl)) : '
                    f'urt_queue_try_put(&qu[{q}], (void *){item}) == -EAGAIN ? URT_ETIMEDOUT : 0)')
        self.sync_wait(call, f'q{q} put {item}', ind)

    def do_q_get(self, s, ind):
        self.cur = s
        q = s['q']
        if self.opts.has('late-queue'):
            call = f'urt_queue_get_timeout(&qu[{q}], &it, dl ? until(dl) : 0)'
        else:
            call = (f'(dl ? urt_queue_get_timeout(&qu[{q}], &it, until(dl)) : '
                    f'urt_queue_try_get(&qu[{q}], &it) == -EAGAIN ? URT_ETIMEDOUT : 0)')
        self.sync_wait(call, f'q{q} get', ind, got=True)

    def do_q_tryput(self, s, ind):
        q, item = s['q'], s['item']
        self.line(f'rc = urt_queue_try_put(&qu[{q}], (void *){item});', ind)
        self.line(f'P("t{self.me} q{q} try_put {item} -> %s\\n", rc == 0 ? "ok" : '
                  f'rc == -EAGAIN ? "full" : "error");', ind)

    def do_q_tryget(self, s, ind):
        q = s['q']
        self.line(f'rc = urt_queue_try_get(&qu[{q}], &it);', ind)
        self.line(f'if (rc == 0) P("t{self.me} q{q} try_get -> %ld\\n", (long)(intptr_t)it);',
                  ind)
        self.line(f'else P("t{self.me} q{q} try_get -> %s\\n", rc == -EAGAIN ? "empty" : "error");',
                  ind)

    def block_end(self, ind):
        """After a block's exit: pass a cut on, or handle it at the top."""
        if self.blocks:
            self.line(f'if (cut) goto out_{self.blocks[-1][1]};', ind)
        else:
            self.line('if (cut) {', ind)
            self.line('cut = 0; cut_syn = 0;', ind + 1)
            self.cancel_path(ind + 1)
            self.line('}', ind)

    def do_timeout(self, s, ind):
        bid, me = s['bid'], self.me
        self.decls.append(f'urt_timeout tm_{bid}; int seen_{bid} = 0, cc_{bid} = 0;')
        self.line(f'dl = deadline({s["slot"]});', ind)
        self.line(f'urt_timeout_enter_at(&tm_{bid}, dl ? dl : URT_NO_TIMEOUT);', ind)
        self.line(f'seen_{bid} = 0; cc_{bid} = urt_task_cancelling(urt_task_current());', ind)
        self.blocks.append(('timeout', bid))
        self.steps(s['body'], ind)
        self.blocks.pop()
        self.line(f'out_{bid}:', ind)
        self.line(f'rc = urt_timeout_exit(&tm_{bid});', ind)
        self.line('if (!cut)', ind)
        self.line(f'P("t{me} timeout#{bid} -> ok expired=%d\\n", urt_timeout_expired(&tm_{bid}));',
                  ind + 1)
        # any cut leaves the scope at once, so its deadline made this one;
        # an absorbed cut (cut_syn) is the scope's that was seen expired,
        # a timeout unless a cancellation is still outstanding, as the
        # Timeout decides by the task's count
        self.line(f'else if ((cut_syn == {bid} && urt_task_cancelling(urt_task_current()) <= '
                  f'cc_{bid}) || (!cut_syn && rc == URT_ETIMEDOUT)) {{', ind)
        self.line(f'P("t{me} timeout#{bid} -> timeout\\n");', ind + 1)
        self.line('cut = 0; cut_syn = 0;', ind + 1)
        self.line('} else {', ind)
        self.line(f'P("t{me} timeout#{bid} -> cancelled\\n");', ind + 1)
        self.line(f'if (cut_syn == {bid}) {{ cut = URT_ECANCELED; cut_syn = 0; }}', ind + 1)
        self.line('}', ind)
        self.block_end(ind)
        self.line(f'nx = {self.nx()};', ind)
        self.after_wait(ind)

    def do_group(self, s, ind):
        bid, me = s['bid'], self.me
        self.decls.append(f'urt_group g_{bid}; int gk_{bid}[8], ngk_{bid} = 0;')
        self.line(f'P("t{me} group#{bid} enter\\n");', ind)
        self.line(f'urt_group_enter(&g_{bid}); ngk_{bid} = 0;', ind)
        self.blocks.append(('group', bid))
        self.steps(s['body'], ind)
        self.blocks.pop()
        self.line(f'out_{bid}:', ind)
        # a cut leaving the body is an exception passing __aexit__, which
        # aborts the group (see docstring); urt knows of it only when it
        # was a cancellation of the owner
        self.line(f'if (cut) urt_group_cancel(&g_{bid});', ind)
        self.line(f'rc = urt_group_exit(&g_{bid}, ge, 8, &nge);', ind)
        self.line(f'rs = {"settle(" + str(me) + ")" if self.opts.settle_group else "0"};', ind)
        self.line('if (URT_IS_ERROR(rc) && !IS_CUT(rc)) {', ind)
        self.line(f'group_failed({me}, {bid}, rc, ge, nge, gk_{bid});', ind + 1)
        self.line('cut = 0; cut_syn = 0;', ind + 1)
        self.line('} else if (cut || IS_CUT(rc)) {', ind)
        self.line(f'P("t{me} group#{bid} -> cancelled\\n");', ind + 1)
        self.line('if (!cut) { cut = rc; cut_syn = 0; }', ind + 1)
        self.line(f'}} else P("t{me} group#{bid} -> ok\\n");', ind)
        self.line('if (!cut && IS_CUT(rs)) { cut = rs; cut_syn = 0; }', ind)
        self.block_end(ind)
        self.line(f'nx = {self.nx()};', ind)
        self.after_wait(ind)

    def emit(self):
        t, me = self.t, self.me
        self.decls = []
        head = [f'static intptr_t t{me}_fn(void *arg)', '{', '    (void)arg;',
                f'    int kids[{max(1, len(t.plain_kids))}], nk = 0, rc = 0, rs = 0, '
                'cut = 0, cut_syn = 0, nx = 0, iscut = 0;',
                '    intptr_t v = 0;', '    uint64_t dl = 0;', '    void *it = NULL;',
                '    size_t nge = 0;', '    urt_group_error ge[8];', '    char b[256];']
        if me == 0:
            self.line('t0 = urt_now();', 1)
        self.line(f'P("t{me} start\\n");', 1)
        self.steps(t.steps, 1)
        self.line(f'cleanup({me}, kids, nk, 0);', 1)
        if t.end[0] == 'fail' and t.via == 'group' and self.opts.settle_group:
            # the abort starts from a quiet moment (see docstring): a
            # resilient task settles again after a cancellation
            if t.resilient:
                self.line(f'while (settle({me}) == URT_ECANCELED)', 1)
                self.line(f'P("t{me} caught cancel\\n");', 2)
            else:
                self.line(f'if (settle({me}) == URT_ECANCELED) {{', 1)
                self.cancel_path(2)
                self.line('}', 1)
        if t.end[0] == 'return':
            self.line(f'P("t{me} return {t.end[1]}\\n");', 1)
            self.line(f'return {t.end[1]};', 1)
        else:
            self.line(f'P("t{me} fail {t.end[1]}\\n");', 1)
            self.line(f'return -{t.end[1]};', 1)
        tail = ['    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;',
                '    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge;']
        return '\n'.join(head + ['    ' + d for d in self.decls] + tail + self.L + ['}'])


def emit_c(prog, opts, tag, origin):
    tasks = prog.tasks
    out = [C_HEAD % dict(tag=tag, origin=origin, unit=UNIT_MS, ntasks=len(tasks),
                         nev=max(1, prog.nev), nq=max(1, len(prog.queues)))]
    live = [t for t in tasks if t.parent != -1]
    out.append('\n'.join(f'static intptr_t t{t.idx}_fn(void *arg);' for t in reversed(live)))
    for t in live:
        out.append(CEmitter(prog, opts, t).emit())
    queues = '\n'.join(f'    urt_queue_init(&qu[{i}], URT_QUEUE_FIFO, {m});'
                       for i, m in enumerate(prog.queues))
    out.append(C_RUN % dict(tag=tag, nev=prog.nev, queues=queues, nqueues=len(prog.queues)))
    return '\n\n'.join(out) + '\n'


# ---------------------------------------------------------- Python side

PY_HEAD = '''# difftest program %(tag)s (%(origin)s).
# Replay: python3 THIS.py (see tests/difftest/README).
import asyncio
import sys

UNIT = %(unit)r
PY_WAIT_FOR = %(py_wait_for)r
t0 = 0.0
h = {}
EV = []
Q = []


class Fail(Exception):
    def __init__(self, code, who):
        super().__init__(code)
        self.code = code
        self.who = who


def P(s):
    print(s, flush=True)


def now():
    return asyncio.get_running_loop().time()


async def sleep_until(slot):
    d = t0 + slot * UNIT - now()
    await asyncio.sleep(d if d > 0 else 0)


def deadline(slot):
    """A slot's deadline, or None once it has passed."""
    dl = t0 + slot * UNIT
    return None if now() >= dl else dl


def outcome_of(exc, v):
    if exc is None:
        return "value %%d" %% v
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "error %%d" %% exc.code


async def wait(aw):
    try:
        return None, await aw
    except (asyncio.CancelledError, TimeoutError, Fail) as e:
        return e, None


async def settle(me):
    loop = asyncio.get_running_loop()
    u = int((loop.time() - t0) // UNIT)
    dl = (u + 1) * UNIT + (4 + 2 * me) / 1000
    try:
        await asyncio.sleep(t0 + dl - loop.time())
    except asyncio.CancelledError as e:
        return e
    return None


async def settle_wait(me):
    e = await settle(me)
    if e is not None:
        raise e


def newly_expired(*tms):
    """True the first time one of the scopes is seen expired."""
    r = False
    for tm in tms:
        if not getattr(tm, "seen", False) and tm.expired():
            tm.seen = True
            r = True
    return r


async def cleanup(me, kids, cancel):
    if cancel:
        for k in kids:
            if not h[k].done():
                h[k].cancel()
    for k in kids:
        exc, v = await wait(h[k])
        P("t%%d cleanup t%%d -> %%s" %% (me, k, outcome_of(exc, v)))


if sys.version_info >= (3, 12) or PY_WAIT_FOR:
    _wait_for = asyncio.wait_for
else:
    async def _wait_for(aw, timeout):
        # Python 3.12's asyncio.wait_for (see difftest.py's docstring)
        async with asyncio.timeout(timeout):
            return await aw


async def wait_for(aw, when):
    return await _wait_for(aw, None if when is None else max(when - now(), 1e-6))


async def ev_wait(e, when):
    if when is None:
        return "ok" if e.is_set() else "timeout"
    try:
        async with asyncio.timeout_at(when):
            await e.wait()
        return "ok"
    except TimeoutError:
        return "timeout"


async def q_put(q, item, when):
    if when is None:
        try:
            q.put_nowait(item)
            return "ok"
        except asyncio.QueueFull:
            return "timeout"
    try:
        async with asyncio.timeout_at(when):
            await q.put(item)
        return "ok"
    except TimeoutError:
        return "timeout"


async def q_get(q, when):
    if when is None:
        try:
            return q.get_nowait()
        except asyncio.QueueEmpty:
            return "timeout"
    try:
        async with asyncio.timeout_at(when):
            return await q.get()
    except TimeoutError:
        return "timeout"


class _Tasks(dict):
    """An insertion-ordered set: TaskGroup cancels its children in spawn
    order, as urt does, instead of a set's address order."""

    def add(self, t):
        self[t] = None

    def discard(self, t):
        self.pop(t, None)


class _CurrentTaskGroup(asyncio.TaskGroup):
    """TaskGroup's exit as Python 3.13 and later have it, where the cancel
    count of the owner is set right after the wait for the children (see
    difftest.py's docstring)."""

    async def __aexit__(self, et, exc, tb):
        self._exiting = True
        cancelled = et is not None and issubclass(et, asyncio.CancelledError)
        propagate = exc if cancelled else None
        if et is not None and not self._aborting:
            self._abort()
        pending = None
        while self._tasks:
            if self._on_completed_fut is None:
                self._on_completed_fut = self._loop.create_future()
            try:
                await self._on_completed_fut
            except asyncio.CancelledError as e:
                pending = e
                if not self._aborting:
                    propagate = e
                    self._abort()
            self._on_completed_fut = None
        if self._parent_cancel_requested:
            if self._parent_task.uncancel() == 0:
                propagate = None
            elif propagate is None:
                propagate = pending
        if propagate is not None and not self._errors:
            raise propagate
        if et is not None and not cancelled:
            self._errors.append(exc)
        if self._errors:
            if self._parent_task.cancelling():
                self._parent_task.uncancel()
                self._parent_task.cancel()
            raise BaseExceptionGroup('unhandled errors in a TaskGroup', self._errors)
        return True


def TaskGroup():
    g = asyncio.TaskGroup() if sys.version_info >= (3, 13) else _CurrentTaskGroup()
    g._tasks = _Tasks()
    return g


def group_failed(me, bid, eg, spawned):
    ex = list(eg.exceptions)
    def name(e):
        if isinstance(e, Fail):
            return "t%%d err %%d" %% (e.who, e.code)
        return repr(e)
    first = ex[0]
    code = first.code if isinstance(first, Fail) else -1
    who = first.who if isinstance(first, Fail) else -1
    ordered = sorted(ex, key=lambda e: spawned.index(e.who) if isinstance(e, Fail) else 99)
    P("t%%d group#%%d -> failed err %%d first t%%d all [%%s]" %% (
        me, bid, code, who, ", ".join(name(e) for e in ordered)))
'''

PY_RUN = '''

class _CurrentTask(asyncio.tasks._PyTask):
    """Task.uncancel() as Python 3.13 and later have it: the count back at
    0 also drops a cancellation not delivered yet."""

    def uncancel(self):
        n = super().uncancel()
        if n == 0:
            self._must_cancel = False
        return n


def run():
    try:
        with asyncio.Runner() as r:
            if sys.version_info < (3, 13):
                r.get_loop().set_task_factory(
                    lambda loop, coro, **kw: _CurrentTask(coro, loop=loop, **kw))
            v = r.run(t0_fn())
        print("main -> %d" % v, flush=True)
    except BaseException as e:
        print("main raised %s" % type(e).__name__, flush=True)


if __name__ == "__main__":
    run()
'''


class PyEmitter(Emitter):
    def line(self, s, ind):
        self.L.append('    ' * ind + s)

    def cancel_path(self, ind):
        me = self.me
        if self.t.resilient:
            self.line(f'P("t{me} caught cancel")', ind)
        else:
            self.line(f'P("t{me} cancelled")', ind)
            if self.opts.settle_group and any(subtree_has_group(self.prog, j)
                                              for j in self.t.plain_kids):
                self.line(f'await settle({me})', ind)
            self.line(f'await cleanup({me}, kids, True)', ind)
            self.line('raise asyncio.CancelledError()', ind)

    def nx(self):
        sc = self.scopes()
        if not sc:
            return 'False'
        return 'newly_expired(' + ', '.join(f'tm_{b}' for b in sc) + ')'

    def on_cut(self, ind):
        if self.blocks:
            self.line('raise asyncio.CancelledError()', ind)
        else:
            self.cancel_path(ind)

    def after_wait(self, ind):
        if self.scopes():
            self.line(f'if {self.nx()}:', ind)
            self.line(f'P("t{self.me} deadline passed")', ind + 1)
            self.line('raise asyncio.CancelledError()', ind + 1)

    def steps(self, steps, ind):
        for s in steps:
            getattr(self, 'do_' + s['k'])(s, ind)

    def do_sleep(self, s, ind):
        self.wait_simple(f'sleep_until({s["slot"]})', 'slept', ind)

    def do_yield(self, s, ind):
        self.wait_simple('asyncio.sleep(0)', 'yielded', ind)

    def wait_simple(self, call, word, ind):
        me = self.me
        self.line('c = False', ind)
        self.line('try:', ind)
        self.line(f'await {call}', ind + 1)
        self.line('except asyncio.CancelledError:', ind)
        self.line('c = True', ind + 1)
        self.line('if c:', ind)
        if self.blocks:
            self.line(f'P("t{me} cut")', ind + 1)
        self.on_cut(ind + 1)
        if word:
            self.line('else:', ind)
            self.line(f'P("t{me} {word}")', ind + 1)
        self.after_wait(ind)

    def do_print(self, s, ind):
        self.line(f'P("t{self.me} event {s["n"]}")', ind)

    def do_create(self, s, ind):
        j = s['j']
        self.line(f'P("t{self.me} create t{j}")', ind)
        self.line(f'h[{j}] = asyncio.create_task(t{j}_fn())', ind)
        self.line(f'kids.append({j})', ind)

    def do_spawn(self, s, ind):
        j, bid, me = s['j'], s['bid'], self.me
        self.line(f'P("t{me} spawn t{j}")', ind)
        self.line(f'coro = t{j}_fn()', ind)
        self.line('try:', ind)
        self.line(f'h[{j}] = g_{bid}.create_task(coro)', ind + 1)
        self.line(f'gs_{bid}.append({j})', ind + 1)
        self.line('except RuntimeError:', ind)
        self.line('coro.close()', ind + 1)
        self.line(f'P("t{me} spawn t{j} -> refused")', ind + 1)

    def do_cancel(self, s, ind):
        j = s['j']
        quiet = self.opts.settle_group and subtree_has_group(self.prog, j)
        if quiet:
            self.wait_simple(f'settle_wait({self.me})', None, ind)
        self.cancel_line(j, ind)
        if quiet:
            self.wait_simple(f'settle_wait({self.me})', None, ind)

    def cancel_line(self, j, ind):
        self.line(f'if {j} in h:', ind)
        self.line(f'P("t{self.me} cancel t{j} -> %d" % h[{j}].cancel())', ind + 1)
        self.line('else:', ind)
        self.line(f'P("t{self.me} cancel t{j} -> none")', ind + 1)

    def result_step(self, aw, what, ind):
        self.line(f'exc, v = await wait({aw})', ind)
        self.line(f'P("t{self.me} {what} -> " + outcome_of(exc, v))', ind)
        self.line('if isinstance(exc, asyncio.CancelledError):', ind)
        self.on_cut(ind + 1)
        self.after_wait(ind)

    def do_await(self, s, ind):
        self.result_step(f'h[{s["j"]}]', f'awaited t{s["j"]}', ind)

    def do_wait_for(self, s, ind):
        self.result_step(f'wait_for(h[{s["j"]}], deadline({s["slot"]}))',
                         f'wait_for t{s["j"]}', ind)

    def do_gather(self, s, ind):
        js, rex, me = s['js'], s['rex'], self.me
        names = ','.join(f't{j}' for j in js)
        args = ', '.join(f'h[{j}]' for j in js)
        self.line(f'exc, v = await wait(asyncio.gather({args}'
                  f'{", return_exceptions=True" if rex else ""}))', ind)
        self.line(f'rs = {"await settle(" + str(me) + ")" if self.opts.settle_gather else "None"}',
                  ind)
        self.line('if exc is None:', ind)
        self.line('items = []', ind + 1)
        self.line('for r in v:', ind + 1)
        self.line('if isinstance(r, asyncio.CancelledError):', ind + 2)
        self.line('items.append("cancelled")', ind + 3)
        self.line('elif isinstance(r, Fail):', ind + 2)
        self.line('items.append("err %d" % r.code)', ind + 3)
        self.line('else:', ind + 2)
        self.line('items.append("%d" % r)', ind + 3)
        self.line('b = "[" + ", ".join(items) + "]"', ind + 1)
        self.line('else:', ind)
        self.line('b = outcome_of(exc, None)', ind + 1)
        self.line(f'P("t{me} gather{"_rex" if rex else ""} {names} -> " + b)', ind)
        self.line('if isinstance(exc, asyncio.CancelledError) or rs is not None:', ind)
        self.on_cut(ind + 1)
        self.after_wait(ind)

    def do_ev_set(self, s, ind):
        self.line(f'P("t{self.me} ev{s["e"]} set"); EV[{s["e"]}].set()', ind)

    def do_ev_clear(self, s, ind):
        self.line(f'P("t{self.me} ev{s["e"]} clear"); EV[{s["e"]}].clear()', ind)

    def do_ev_check(self, s, ind):
        self.line(f'P("t{self.me} ev{s["e"]} is_set -> %d" % EV[{s["e"]}].is_set())', ind)

    def sync_wait(self, call, what, ind):
        self.line('c = False', ind)
        self.line('try:', ind)
        self.line(f'r = await {call}', ind + 1)
        self.line('except asyncio.CancelledError:', ind)
        self.line('c = True', ind + 1)
        self.line('r = "cancelled"', ind + 1)
        self.line(f'P("t{self.me} {what} -> %s" % r)', ind)
        self.line('if c:', ind)
        self.on_cut(ind + 1)
        self.after_wait(ind)

    def do_ev_wait(self, s, ind):
        self.sync_wait(f'ev_wait(EV[{s["e"]}], deadline({s["slot"]}))',
                       f'ev{s["e"]} wait', ind)

    def do_q_put(self, s, ind):
        self.sync_wait(f'q_put(Q[{s["q"]}], {s["item"]}, deadline({s["slot"]}))',
                       f'q{s["q"]} put {s["item"]}', ind)

    def do_q_get(self, s, ind):
        self.sync_wait(f'q_get(Q[{s["q"]}], deadline({s["slot"]}))', f'q{s["q"]} get', ind)

    def do_q_tryput(self, s, ind):
        q, item = s['q'], s['item']
        self.line('try:', ind)
        self.line(f'Q[{q}].put_nowait({item})', ind + 1)
        self.line('r = "ok"', ind + 1)
        self.line('except asyncio.QueueFull:', ind)
        self.line('r = "full"', ind + 1)
        self.line(f'P("t{self.me} q{q} try_put {item} -> " + r)', ind)

    def do_q_tryget(self, s, ind):
        q = s['q']
        self.line('try:', ind)
        self.line(f'r = "%d" % Q[{q}].get_nowait()', ind + 1)
        self.line('except asyncio.QueueEmpty:', ind)
        self.line('r = "empty"', ind + 1)
        self.line(f'P("t{self.me} q{q} try_get -> " + r)', ind)

    def outermost(self, ind, bid):
        """An outermost block: a cut that leaves it is handled here."""
        self.line(f'cut_{bid} = False', ind)
        self.line('try:', ind)
        return ind + 1

    def outermost_end(self, ind, bid):
        self.line('except asyncio.CancelledError:', ind)
        self.line(f'cut_{bid} = True', ind + 1)
        self.line(f'if cut_{bid}:', ind)
        self.cancel_path(ind + 1)

    def do_timeout(self, s, ind):
        bid, me = s['bid'], self.me
        top = not self.blocks
        if top:
            ind = self.outermost(ind, bid)
        self.line('try:', ind)
        self.line(f'async with asyncio.timeout_at(deadline({s["slot"]})) as tm_{bid}:', ind + 1)
        self.blocks.append(('timeout', bid))
        n0 = len(self.L)
        self.steps(s['body'], ind + 2)
        if len(self.L) == n0:
            self.line('pass', ind + 2)
        self.blocks.pop()
        self.line(f'P("t{me} timeout#{bid} -> ok expired=%d" % tm_{bid}.expired())', ind + 1)
        self.line('except TimeoutError:', ind)
        self.line(f'P("t{me} timeout#{bid} -> timeout")', ind + 1)
        self.line('except asyncio.CancelledError:', ind)
        self.line(f'P("t{me} timeout#{bid} -> cancelled")', ind + 1)
        self.line('raise', ind + 1)
        self.after_wait(ind)
        if top:
            self.outermost_end(ind - 1, bid)

    def do_group(self, s, ind):
        bid, me = s['bid'], self.me
        top = not self.blocks
        if top:
            ind = self.outermost(ind, bid)
        self.line(f'P("t{me} group#{bid} enter")', ind)
        self.line(f'gs_{bid} = []', ind)
        self.line(f'gcut_{bid} = gerr_{bid} = None', ind)
        self.line('try:', ind)
        self.line(f'async with TaskGroup() as g_{bid}:', ind + 1)
        self.blocks.append(('group', bid))
        n0 = len(self.L)
        self.steps(s['body'], ind + 2)
        if len(self.L) == n0:
            self.line('pass', ind + 2)
        self.blocks.pop()
        self.line('except BaseExceptionGroup as e:', ind)
        self.line(f'gerr_{bid} = e', ind + 1)
        self.line('except asyncio.CancelledError as e:', ind)
        self.line(f'gcut_{bid} = e', ind + 1)
        self.line(f'rs = {"await settle(" + str(me) + ")" if self.opts.settle_group else "None"}',
                  ind)
        self.line(f'if gerr_{bid} is not None:', ind)
        self.line(f'group_failed({me}, {bid}, gerr_{bid}, gs_{bid})', ind + 1)
        self.line(f'elif gcut_{bid} is not None:', ind)
        self.line(f'P("t{me} group#{bid} -> cancelled")', ind + 1)
        self.line(f'raise gcut_{bid}', ind + 1)
        self.line('else:', ind)
        self.line(f'P("t{me} group#{bid} -> ok")', ind + 1)
        self.line('if rs is not None:', ind)
        self.line('raise rs', ind + 1)
        self.after_wait(ind)
        if top:
            self.outermost_end(ind - 1, bid)

    def emit(self):
        t, me = self.t, self.me
        head = [f'async def t{me}_fn():', '    kids = []']
        if me == 0:
            head += ['    global t0', '    t0 = now()',
                     f'    EV[:] = [asyncio.Event() for _ in range({self.prog.nev})]',
                     '    Q[:] = [asyncio.Queue(m) for m in '
                     f'{list(self.prog.queues)!r}]']
        self.line(f'P("t{me} start")', 1)
        self.steps(t.steps, 1)
        self.line(f'await cleanup({me}, kids, False)', 1)
        if t.end[0] == 'fail' and t.via == 'group' and self.opts.settle_group:
            if t.resilient:
                self.line(f'while await settle({me}) is not None:', 1)
                self.line(f'P("t{me} caught cancel")', 2)
            else:
                self.line(f'if await settle({me}) is not None:', 1)
                self.cancel_path(2)
        if t.end[0] == 'return':
            self.line(f'P("t{me} return {t.end[1]}")', 1)
            self.line(f'return {t.end[1]}', 1)
        else:
            self.line(f'P("t{me} fail {t.end[1]}")', 1)
            self.line(f'raise Fail({t.end[1]}, {me})', 1)
        return '\n'.join(head + self.L)


def emit_py(prog, opts, tag, origin):
    out = [PY_HEAD % dict(tag=tag, origin=origin, unit=UNIT_MS / 1000,
                          py_wait_for=opts.py_wait_for)]
    for t in prog.tasks:
        if t.parent != -1:
            out.append(PyEmitter(prog, opts, t).emit())
    return '\n\n\n'.join(out) + PY_RUN


# ------------------------------------------------------------- workers

def py_worker(paths):
    """--py-worker TAG=FILE...: run each Python program in turn, framed by
    markers."""
    def on_alarm(signum, frame):
        os.write(1, f'\n{ABORT} timeout\n'.encode())
        os._exit(124)
    signal.signal(signal.SIGALRM, on_alarm)
    for arg in paths:
        tag, path = arg.split('=', 1)
        sys.stdout.write(f'{BEGIN} {tag}\n')
        sys.stdout.flush()
        with open(path) as f:
            code = compile(f.read(), path, 'exec')
        ns = {'__name__': 'difftest_program', '__file__': path}
        signal.alarm(WATCHDOG_S)
        try:
            exec(code, ns)
            ns['run']()
        except BaseException as e:   # a broken program is a result too
            print(f'worker: {type(e).__name__}: {e}', flush=True)
        signal.alarm(0)
        sys.stdout.write(f'{END}\n')
        sys.stdout.flush()
    return 0


C_MAIN = r'''/* Runs the difftest programs named on the command line, one after another,
 * each framed by markers; a watchdog ends the process if one hangs. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

%(decls)s

static const struct {
    const char *tag;
    int (*run)(void);
} progs[] = {
%(table)s
};

static void on_alarm(int sig)
{
    static const char msg[] = "\n\004 timeout\n";
    (void)sig;
    (void)!write(1, msg, sizeof msg - 1);
    _exit(124);
}

int main(int argc, char **argv)
{
    signal(SIGALRM, on_alarm);
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        while (k < sizeof progs / sizeof progs[0] && strcmp(progs[k].tag, argv[i]))
            k++;
        printf("\002 %%s\n", argv[i]);
        fflush(stdout);
        if (k == sizeof progs / sizeof progs[0]) {
            printf("no such program\n");
        } else {
            alarm(%(watchdog)d);
            progs[k].run();
            alarm(0);
        }
        printf("\003\n");
        fflush(stdout);
    }
    return 0;
}
'''


# -------------------------------------------------------------- driver

class Prog:
    """One program to compare: where its two sources are."""

    def __init__(self, tag, cpath, pypath, label, length_ms, known=None):
        self.tag, self.cpath, self.pypath = tag, cpath, pypath
        self.label, self.length_ms, self.known = label, length_ms, known
        self.traces = {}


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, 'w') as f:
        f.write(text)


def liburing_libs():
    r = subprocess.run(['pkg-config', '--libs', 'liburing'], capture_output=True, text=True)
    return r.stdout.split() if r.returncode == 0 else ['-luring']


def build(progs, out, jobs, name='difftest-bin'):
    """Compiles every program's C file (reusing objects whose source did not
    change) with one cc per core, and links them into one binary."""
    objdir = os.path.join(out, 'obj')
    os.makedirs(objdir, exist_ok=True)
    todo = []
    for p in progs:
        obj = os.path.join(objdir, p.tag + '.o')
        src = os.path.join(objdir, p.tag + '.c')
        # compiled from a copy named after the tag: cc -c names objects by source
        with open(p.cpath) as f:
            write_if_changed(src, f.read())
        if not os.path.exists(obj) or os.path.getmtime(obj) < os.path.getmtime(src):
            todo.append(p.tag + '.c')
    failed = set()
    if todo:
        chunks = [todo[i::jobs] for i in range(min(jobs, len(todo)))]
        cmd = ['cc', '-std=gnu11', '-O0', '-w', '-DDIFFTEST_BATCH', '-I' + os.path.join(ROOT, 'include'),
               '-c']
        procs = [subprocess.Popen(cmd + c, cwd=objdir, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for c in chunks]
        for pr, c in zip(procs, chunks):
            msg = pr.communicate()[0]
            if pr.returncode:
                for src in c:
                    obj = os.path.join(objdir, src[:-2] + '.o')
                    if not os.path.exists(obj) or \
                            os.path.getmtime(obj) < os.path.getmtime(os.path.join(objdir, src)):
                        failed.add(src[:-2])
                sys.stdout.write(msg[-3000:])
    ok = [p for p in progs if p.tag not in failed]
    decls = '\n'.join(f'int difftest_prog_{p.tag}(void);' for p in ok)
    table = '\n'.join(f'    {{"{p.tag}", difftest_prog_{p.tag}}},' for p in ok)
    main_c = os.path.join(objdir, name + '-main.c')
    write_if_changed(main_c, C_MAIN % dict(decls=decls, table=table, watchdog=WATCHDOG_S))
    exe = os.path.join(out, name)
    r = subprocess.run(['cc', '-std=gnu11', '-O0', '-o', exe, main_c] +
                       [os.path.join(objdir, p.tag + '.o') for p in ok] +
                       [os.path.join(ROOT, 'build', 'liburt.a')] + liburing_libs() + ['-lpthread'],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit('difftest: link failed\n' + r.stderr[-3000:])
    return exe, failed


def parse_records(text):
    """{tag: trace} for the programs a worker finished, and the tag it was
    in when it stopped (None if none)."""
    done, cur, buf = {}, None, []
    for ln in text.splitlines(True):
        if ln.startswith(BEGIN + ' '):
            cur, buf = ln[2:].strip(), []
        elif ln.startswith(END) and cur is not None:
            done[cur] = ''.join(buf)
            cur = None
        elif ln.startswith(ABORT):
            buf.append('[' + ln[1:].strip() + ']\n')
        elif cur is not None:
            buf.append(ln)
    return done, (cur, ''.join(buf)) if cur is not None else None


def run_side(side, progs, exe, out, jobs):
    """Runs progs on one side in `jobs` workers at once; returns {tag: trace}.
    A worker that stops early is restarted for the programs after the one
    it stopped in, which gets what it printed and why it stopped."""
    shares = [[] for _ in range(min(jobs, len(progs)) or 1)]
    loads = [0] * len(shares)
    for p in sorted(progs, key=lambda p: -p.length_ms):
        i = loads.index(min(loads))
        shares[i].append(p)
        loads[i] += p.length_ms
    queue = [s for s in shares if s]
    results = {}
    running = []
    serial = 0
    while queue or running:
        while queue and len(running) < jobs:
            share = queue.pop(0)
            serial += 1
            logf = os.path.join(out, f'{side}-worker-{serial}.out')
            if side == 'c':
                cmd = [exe] + [p.tag for p in share]
            else:
                cmd = [sys.executable, os.path.abspath(__file__), '--py-worker'] + \
                      [f'{p.tag}={p.pypath}' for p in share]
            f = open(logf, 'w')
            # stderr apart: a warning must not land in a trace
            e = open(logf + '.err', 'w')
            pr = subprocess.Popen(cmd, stdout=f, stderr=e, cwd=out)
            e.close()
            running.append((pr, f, logf, share))
        time.sleep(0.05)
        for item in list(running):
            pr, f, logf, share = item
            if pr.poll() is None:
                continue
            running.remove(item)
            f.close()
            with open(logf, errors='replace') as g:
                done, stopped = parse_records(g.read())
            results.update(done)
            rest = [p for p in share if p.tag not in done]
            if rest:
                if stopped:
                    tag, partial = stopped
                    why = 'timeout' if pr.returncode == 124 else f'exit {pr.returncode}'
                    with open(logf + '.err', errors='replace') as g:
                        err = g.read()[-1000:]
                    results[tag] = partial + f'[{side} worker stopped: {why}]\n' + \
                        (f'[stderr] {err}\n' if err.strip() else '')
                    rest = [p for p in rest if p.tag != tag]
                else:
                    for p in rest:
                        results[p.tag] = f'[{side} worker exit {pr.returncode}]\n'
                    rest = []
                if rest:
                    queue.append(rest)
            os.unlink(logf)
            os.unlink(logf + '.err')
    return results


def compare(progs, exe, out, jobs):
    """Runs both sides of every program at once; fills p.traces."""
    res = {}
    th = [threading.Thread(target=lambda s=s: res.__setitem__(s, run_side(s, progs, exe, out, jobs)))
          for s in ('c', 'py')]
    for x in th:
        x.start()
    for x in th:
        x.join()
    for p in progs:
        p.traces = {'py': res['py'].get(p.tag, '[missing]\n'), 'c': res['c'].get(p.tag, '[missing]\n')}
    return [p for p in progs if p.traces['py'] != p.traces['c']]


def run_all(progs, exe, out, jobs, tries=3):
    """Compares, then runs the ones that differ again, up to tries in all.
    Returns {tag: try on which it agreed, or None}."""
    agreed = {}
    todo = progs
    for attempt in range(tries):
        if not todo:
            break
        diff = compare(todo, exe, out, jobs if attempt == 0 else max(1, jobs // 3))
        for p in todo:
            if p not in diff:
                agreed[p.tag] = attempt + 1
        todo = diff
    for p in todo:
        agreed[p.tag] = None
    return agreed


def show_diff(p):
    sys.stdout.writelines(difflib.unified_diff(
        p.traces['py'].splitlines(True), p.traces['c'].splitlines(True), 'asyncio', 'urt'))


def make_random(seeds, opts, out):
    progs = []
    for seed in seeds:
        model = generate(seed, opts)
        tag = f's{seed}'
        origin = f'seed {seed}, {opts.describe()}'
        cpath = os.path.join(out, f'prog_{tag}.c')
        pypath = os.path.join(out, f'prog_{tag}.py')
        write_if_changed(cpath, emit_c(model, opts, tag, origin))
        write_if_changed(pypath, emit_py(model, opts, tag, origin))
        progs.append(Prog(tag, cpath, pypath, f'seed {seed}', program_length_ms(model)))
    return progs


ENTRY_RE = re.compile(r'^int difftest_prog_(\w+)\(void\)', re.M)


def corpus_programs():
    progs = []
    for cpath in sorted(glob.glob(os.path.join(CORPUS, '*.c'))):
        name = os.path.basename(cpath)[:-2]
        pypath = cpath[:-2] + '.py'
        if not os.path.exists(pypath):
            continue
        with open(cpath) as f:
            m = ENTRY_RE.search(f.read())
        if not m:
            print(f'difftest: {cpath}: no difftest_prog_ entry, skipped')
            continue
        known = None
        if os.path.exists(cpath[:-2] + '.known'):
            with open(cpath[:-2] + '.known') as f:
                known = f.read().strip() or 'known difference'
        progs.append(Prog(m.group(1), cpath, pypath, f'regression {name}', 4000, known))
    return progs


def corpus_name_for(tag):
    return 'c_' + re.sub(r'\W', '_', tag)


def keep(model, opts, name, why):
    """Stores a program in the corpus; returns its name (None if an equal
    program is there already)."""
    os.makedirs(CORPUS, exist_ok=True)
    origin = f'{why}; {opts.describe()}'

    def body(text):
        """The program without its names, to recognise it under another."""
        return re.sub(r'difftest program \S+ \(.*\)|difftest_prog_\w+', '', text)
    digest = hashlib.sha1(body(emit_c(model, opts, 'x', origin)).encode()).hexdigest()
    for other in glob.glob(os.path.join(CORPUS, '*.c')):
        with open(other) as f:
            if hashlib.sha1(body(f.read()).encode()).hexdigest() == digest:
                return None
    base = os.path.join(CORPUS, name)
    n = 2
    while os.path.exists(base + '.c'):
        base = os.path.join(CORPUS, f'{name}-{n}')
        n += 1
    name = os.path.basename(base)
    tag = corpus_name_for(name)
    with open(base + '.c', 'w') as f:
        f.write(emit_c(model, opts, tag, origin))
    with open(base + '.py', 'w') as f:
        f.write(emit_py(model, opts, tag, origin))
    return name


# ------------------------------------------------------------ minimise

def remove_task(model, j):
    """Removes task j, its descendants and every step naming one of them."""
    gone = {j}
    changed = True
    while changed:
        changed = False
        for t in model.tasks:
            if t.idx not in gone and t.parent in gone:
                gone.add(t.idx)
                changed = True

    def prune(steps):
        out = []
        for s in steps:
            k = s['k']
            if k in ('create', 'spawn', 'await', 'cancel', 'wait_for') and s['j'] in gone:
                continue
            if k == 'gather':
                js = [x for x in s['js'] if x not in gone]
                if not js:
                    continue
                s = dict(s, js=js)
            if k in BLOCKS:
                s = dict(s, body=prune(s['body']))
            out.append(s)
        return out
    for t in model.tasks:
        if t.idx not in gone:
            t.steps = prune(t.steps)
            t.plain_kids = [x for x in t.plain_kids if x not in gone]
    # renumbering would change every slot's owner: the removed tasks stay,
    # empty and never made
    for g in gone:
        model.tasks[g].steps = []
        model.tasks[g].parent = -1


def candidates(model):
    """Smaller variants of model, biggest cuts first."""
    import copy
    m = copy.deepcopy(model)
    compact_slots(m)
    if program_length_ms(m) < program_length_ms(model):
        yield 'compact slots', m
    for t in model.tasks[1:]:
        if t.parent != -1:
            m = copy.deepcopy(model)
            remove_task(m, t.idx)
            yield f'drop t{t.idx}', m
    for t in model.tasks:
        paths = []

        def collect(steps, path):
            for i, s in enumerate(steps):
                paths.append(path + [i])
                if s['k'] in BLOCKS:
                    collect(s['body'], path + [i])
        collect(t.steps, [])
        for path in paths:
            m = copy.deepcopy(model)
            steps = m.tasks[t.idx].steps
            for i in path[:-1]:
                steps = steps[i]['body']
            s = steps[path[-1]]
            if s['k'] in ('create', 'spawn'):
                continue
            if s['k'] == 'timeout':
                steps[path[-1]:path[-1] + 1] = s['body']
                yield f't{t.idx} unwrap timeout#{s["bid"]}', m
                m = copy.deepcopy(model)
                steps = m.tasks[t.idx].steps
                for i in path[:-1]:
                    steps = steps[i]['body']
                s = steps[path[-1]]
            if s['k'] == 'group' and any(x['k'] == 'spawn' for x in walk(s['body'])):
                continue
            del steps[path[-1]]
            yield f't{t.idx} drop {s["k"]}', m
        if t.idx and t.end != ('return', 0):
            m = copy.deepcopy(model)
            m.tasks[t.idx].end = ('return', 0)
            yield f't{t.idx} returns 0', m
        if t.idx and t.resilient and not t.protected:
            m = copy.deepcopy(model)
            m.tasks[t.idx].resilient = False
            yield f't{t.idx} not resilient', m


def compact_slots(model):
    """The same order of slots without the empty units between them."""
    used = sorted({s['slot'] for t in model.tasks for s in walk(t.steps) if 'slot' in s})
    rank = {v: i + 1 for i, v in enumerate(used)}
    for t in model.tasks:
        for s in walk(t.steps):
            if 'slot' in s:
                s['slot'] = rank[s['slot']]


def differs(model, opts, out, runs=2):
    """True if the program's traces differ on every one of runs tries."""
    tag = 'min'
    cpath = os.path.join(out, 'min.c')
    pypath = os.path.join(out, 'min.py')
    with open(cpath, 'w') as f:
        f.write(emit_c(model, opts, tag, 'minimising').replace(
            '#ifndef DIFFTEST_BATCH', '#if 1'))
    with open(pypath, 'w') as f:
        f.write(emit_py(model, opts, tag, 'minimising'))
    exe = os.path.join(out, 'min')
    r = subprocess.run(['cc', '-std=gnu11', '-O0', '-w', '-I' + os.path.join(ROOT, 'include'),
                        cpath, os.path.join(ROOT, 'build', 'liburt.a')] + liburing_libs() +
                       ['-lpthread', '-o', exe], capture_output=True, text=True)
    if r.returncode:
        return False
    for _ in range(runs):
        pc = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
        pp = subprocess.Popen([sys.executable, pypath], stdout=subprocess.PIPE, text=True)
        try:
            co = pc.communicate(timeout=WATCHDOG_S)[0]
            po = pp.communicate(timeout=WATCHDOG_S)[0]
        except subprocess.TimeoutExpired:
            pc.kill()
            pp.kill()
            return False
        ends = ('main -> ', 'urt_run -> ', 'main raised ')
        if co == po or not (co.splitlines() or [''])[-1].startswith(ends) or \
                not (po.splitlines() or [''])[-1].startswith(ends):
            return False
        last = (po, co)
    differs.last = last
    return True


def minimise(seed, opts, out):
    model = generate(seed, opts)
    if not differs(model, opts, out, runs=3):
        print(f'difftest: seed {seed} does not differ (3 runs)')
        return None
    # One run per candidate; a pass resumes where the last success was, as
    # the candidates before it failed already.
    start, progress = 0, False
    while True:
        cands = list(candidates(model))
        for i in range(start, len(cands)):
            what, m = cands[i]
            if differs(m, opts, out, runs=1):
                print(f'minimise: {what}')
                sys.stdout.flush()
                model, start, progress = m, i, True
                break
        else:
            if not progress:
                break
            start, progress = 0, False
    differs(model, opts, out, runs=3)
    po, co = differs.last
    print('minimal program: ' + os.path.join(out, 'min.c') + ', ' + os.path.join(out, 'min.py'))
    sys.stdout.writelines(difflib.unified_diff(po.splitlines(True), co.splitlines(True),
                                               'asyncio', 'urt'))
    return model


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--py-worker':
        return py_worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-n', type=int, default=50, help='random programs (default 50)')
    ap.add_argument('-s', type=int, default=1, help='first seed (default 1)')
    ap.add_argument('-k', action='store_true', help='keep going (the default; a no-op)')
    ap.add_argument('--out', default=os.path.join('build', 'difftest'))
    ap.add_argument('-j', type=int, default=8, help='workers per side at once (default 8)')
    ap.add_argument('--raw-gather', action='store_true',
                    help='print a gather result as soon as it returns')
    ap.add_argument('--raw-group', action='store_true',
                    help='no settle around task groups')
    ap.add_argument('--py-wait-for', action='store_true',
                    help="the interpreter's own asyncio.wait_for, also on 3.11")
    ap.add_argument('--without', default='',
                    help='constructs to leave out: ' + ','.join(FEATURES))
    ap.add_argument('--keep', action='store_true',
                    help='add programs that differ to tests/difftest')
    ap.add_argument('--minimize', '--minimise', type=int, metavar='SEED',
                    help='shrink the program of SEED while it differs')
    ap.add_argument('--name', help='with --minimize --keep: the corpus name to keep it as')
    ap.add_argument('--no-regressions', action='store_true',
                    help='skip the corpus of tests/difftest')
    ap.add_argument('--figure', metavar='FILE', help='write the stress-summary figure line')
    a = ap.parse_args()
    without = {w for w in a.without.split(',') if w}
    if without - set(FEATURES):
        ap.error('unknown --without: ' + ','.join(sorted(without - set(FEATURES))))
    opts = Options(settle_gather=not a.raw_gather, settle_group=not a.raw_group,
                   py_wait_for=a.py_wait_for, without=without)
    os.chdir(ROOT)
    subprocess.run(['make', '-s', 'lib'], check=True)
    if not os.path.exists('build/liburt.a'):
        sys.exit('difftest: build/liburt.a missing')
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)

    if a.minimize is not None:
        model = minimise(a.minimize, opts, out)
        if model and a.keep:
            name = keep(model, opts, a.name or f'min-s{a.minimize}{opts.suffix()}',
                        f'seed {a.minimize}, minimised')
            print(f'difftest: kept as tests/difftest/{name}' if name else
                  'difftest: already in tests/difftest')
        return 0 if model else 1

    regress = [] if a.no_regressions else corpus_programs()
    randoms = make_random(range(a.s, a.s + a.n), opts, out)
    exe, broken = build(regress + randoms, out, max(1, os.cpu_count() or 1))
    runnable = [p for p in regress + randoms if p.tag not in broken]
    # a known difference is expected to stay: one try tells whether it did
    agreed = run_all([p for p in runnable if not p.known], exe, out, a.j)
    agreed.update(run_all([p for p in runnable if p.known], exe, out, a.j, tries=1))

    status = 0
    counts = {'passed': 0, 'failed': 0, 'known': 0}
    for p in regress:
        ok = agreed.get(p.tag)
        if p.tag in broken:
            print(f'DIFF {p.label} (C build failed)')
            counts['failed'] += 1
        elif ok and p.known:
            print(f'ok {p.label} (marked known, but agrees now: remove its .known file)')
            counts['passed'] += 1
        elif ok:
            print(f'ok {p.label}' + (f' (flaky: equal on try {ok})' if ok > 1 else ''))
            counts['passed'] += 1
        elif p.known:
            why = p.known.splitlines()[0]
            print(f'known {p.label}: ' + (why if len(why) < 90 else why[:87] + '...'))
            counts['known'] += 1
        else:
            print(f'DIFF {p.label}')
            show_diff(p)
            counts['failed'] += 1
    if regress:
        print(f'difftest: regressions {counts["passed"]} passed, {counts["failed"]} failed, '
              f'{counts["known"]} known')
        if counts['failed']:
            status = 1

    passed = failed = flaky = 0
    seeds = dict((p.tag, p) for p in randoms)
    for seed in range(a.s, a.s + a.n):
        p = seeds[f's{seed}']
        ok = agreed.get(p.tag)
        if p.tag in broken:
            print(f'DIFF seed {seed} (C build failed)')
            failed += 1
        elif ok:
            print(f'ok seed {seed}' + (f' (flaky: equal on try {ok})' if ok > 1 else ''))
            flaky += ok > 1
            passed += 1
        else:
            print(f'DIFF seed {seed}')
            show_diff(p)
            failed += 1
            if a.keep:
                name = keep(generate(seed, opts), opts, f's{seed}{opts.suffix()}',
                            f'seed {seed}')
                if name:
                    print(f'difftest: kept as tests/difftest/{name}')
        sys.stdout.flush()
    if flaky:
        print(f'difftest: {flaky} passed only on a retry (timing under load)')
    print(f'difftest: {passed} passed, {failed} failed')
    if a.figure:
        with open(a.figure, 'w') as f:
            f.write(f'figure: difftest: {passed + failed} programs compared with asyncio, '
                    f'{failed} differed\n')
    return 1 if failed or status else 0


if __name__ == '__main__':
    sys.exit(main())
