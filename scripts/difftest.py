#!/usr/bin/env python3
"""difftest.py - differential tester: urt (C) against asyncio (Python).

Usage: scripts/difftest.py [-n COUNT] [-s SEED] [-k] [--out DIR]

For each seed SEED, SEED+1, ... SEED+COUNT-1 it generates a random task
program, writes it as DIR/prog_SEED.c (against urt) and DIR/prog_SEED.py
(against asyncio), builds the C one against build/liburt.a (after one
`make -s lib`), runs both (10 s timeout each) and compares stdout and exit
status.  One line per program: "ok seed N", or "DIFF seed N" followed by a
unified diff of the two traces (--- asyncio, +++ urt).  Last line:
"difftest: P passed, F failed"; exit status 1 if anything failed.

-k: the default already keeps going after a failure; -k is accepted and is a
no-op (so that scripts can pass it either way).

Program model.  Task 0 is main; tasks 1..N (N <= 6) are each created exactly
once by a task with a lower index.  A task body is a straight line of steps:
  sleep      sleep until an absolute slot (multiple of UNIT = 20 ms from the
             start of main); every sleep step of the program has a slot of its
             own, so no two timers are ever due in the same unit.  A task that
             reaches a sleep after its slot has passed just yields (in both).
  yield      urt_yield() / asyncio.sleep(0)
  print      a labelled event
  create tJ  urt_task_create / asyncio.create_task of a child
  await tJ   of a child created earlier by the same task
  cancel tJ  of such a child
  gather     of 1..3 such children, default mode or return_exceptions
and ends returning a value (0..99) or failing with a code (1..50: a negative
return in C, `raise Fail(code)` in Python).  Before returning a task awaits
every child it created (in creation order), so when main returns nothing is
left alive and asyncio.run / urt_run have nothing to cancel.

Cancellation.  Every point where the C code sees URT_ECANCELED (sleep, yield,
await or gather giving "cancelled") is exactly a point where the Python code
catches CancelledError.  There a task either goes on ("caught cancel",
tasks drawn as resilient) or prints "cancelled", cancels and awaits its
unfinished children, and ends cancelled (returns URT_ECANCELED / raises
CancelledError).

gather: asyncio's gather reaches its awaiter one or two loop iterations
after the children finished (and suspends even when they all have), urt's
returns at once / wakes the awaiter directly, so the gatherer's next print
can land before or after other ready tasks' prints.  By default each gather
is therefore followed by a "settle" sleep to a sub-slot of the gathering
task's own (UNIT*(5+idx)/20 into a unit, 5 ms or more from
the unit's edges) before its result is printed, so
that this known difference does not mask others.  --raw-gather turns the
settle off and shows the difference.

Timing: the order rests on timers landing in their 20 ms units, so a
heavily loaded machine (a stall of 5 ms or more) can reorder a trace.  A
program whose traces differ is run again, up to 3 tries in all; one that
agrees on a retry counts as passed and is flagged "(flaky ...)".

Determinism: only one timer fires per 20 ms unit, cancels are issued from
the bursts of other units, so within a unit everything follows from one
wake-up through FIFO order of the ready queue.
"""
import argparse
import difflib
import os
import random
import subprocess
import sys

UNIT_MS = 20
SETTLE = True  # --raw-gather sets it False
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Task:
    def __init__(self, idx):
        self.idx = idx
        self.steps = []
        self.children = []
        self.resilient = False
        self.end = ('return', 0)


def generate(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 6)
    tasks = [Task(i) for i in range(n + 1)]
    for j in range(1, n + 1):
        p = rng.randrange(0, j)
        tasks[p].children.append(j)
    nsleeps = 0
    for t in tasks:
        # main is always resilient: it never ends cancelled
        t.resilient = t.idx == 0 or rng.random() < 0.3
        if t.idx > 0:
            t.end = ('return', rng.randint(0, 99)) if rng.random() < 0.6 \
                else ('fail', rng.randint(1, 50))
        todo = list(t.children)
        made = []
        nsteps = rng.randint(2, 9)
        ev = 0
        for _ in range(nsteps):
            kinds = ['sleep', 'sleep', 'yield', 'print']
            if todo:
                kinds += ['create'] * 3
            if made:
                kinds += ['await', 'await', 'cancel', 'gather', 'gather']
            k = rng.choice(kinds)
            if k == 'sleep':
                t.steps.append(['sleep', None])
                nsleeps += 1
            elif k == 'yield':
                t.steps.append(['yield'])
            elif k == 'print':
                ev += 1
                t.steps.append(['print', ev])
            elif k == 'create':
                j = todo.pop(0)
                made.append(j)
                t.steps.append(['create', j])
            elif k == 'await':
                t.steps.append(['await', rng.choice(made)])
            elif k == 'cancel':
                t.steps.append(['cancel', rng.choice(made)])
            else:
                m = rng.randint(1, min(3, len(made)))
                t.steps.append(['gather', rng.sample(made, m),
                                rng.random() < 0.5])
        for j in todo:
            t.steps.append(['create', j])
    # distinct slots for all sleeps, increasing within each task
    slots = rng.sample(range(1, 2 * nsleeps + 2), nsleeps)
    pos = 0
    for t in tasks:
        mine = [s for s in t.steps if s[0] == 'sleep']
        for s, v in zip(mine, sorted(slots[pos:pos + len(mine)])):
            s[1] = v
        pos += len(mine)
    return tasks


# ---------------------------------------------------------------- C side

C_HEAD = r'''#include <stdio.h>
#include <stdint.h>
#include "urt.h"

#define UNIT (%dull * URT_NS_PER_MS)
static uint64_t t0;
static urt_task h[%d];

static int sleep_until(int slot)
{
    uint64_t dl = t0 + (uint64_t)slot * UNIT, now = urt_now();
    if (now >= dl)
        return urt_yield();
    return urt_sleep(dl - now);
}

/* Sleep to this task's own sub-slot (UNIT * (5 + me) / 20 into a unit), the
 * next one not yet passed: used after a gather (see --raw-gather). */
static int settle(int me)
{
    uint64_t now = urt_now() - t0, u = now / UNIT;
    uint64_t dl = u * UNIT + UNIT * (5 + me) / 20;
    if (now + UNIT / 32 >= dl)
        dl += UNIT;
    return urt_sleep(t0 + dl - urt_now());
}

static void outcome(char *buf, size_t n, int rc, intptr_t v)
{
    if (rc == 0)
        snprintf(buf, n, "value %%ld", (long)v);
    else if (rc == URT_ECANCELED)
        snprintf(buf, n, "cancelled");
    else
        snprintf(buf, n, "error %%d", -rc);
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
        outcome(b, sizeof b, rc, v);
        printf("t%%d cleanup t%%d -> %%s\n", me, kids[i], b);
        fflush(stdout);
    }
}

#define P(...) do { printf(__VA_ARGS__); fflush(stdout); } while (0)
'''


def c_cancel_path(t, ind):
    me = t.idx
    if t.resilient:
        return [ind + f'P("t{me} caught cancel\\n");']
    return [ind + f'P("t{me} cancelled\\n");',
            ind + f'cleanup({me}, kids, nk, 1);',
            ind + 'return URT_ECANCELED;']


def emit_c(tasks):
    out = [C_HEAD % (UNIT_MS, len(tasks))]
    for t in reversed(tasks):
        out.append(f'static intptr_t t{t.idx}_fn(void *arg);')
    for t in tasks:
        me = t.idx
        L = [f'static intptr_t t{me}_fn(void *arg)', '{',
             '    (void)arg;',
             f'    int kids[{max(1, len(t.children))}], nk = 0, rc = 0;',
             '    intptr_t v = 0;', '    char b[256];',
             '    (void)rc; (void)v; (void)b; (void)kids;']
        if me == 0:
            L.append('    t0 = urt_now();')
        L.append(f'    P("t{me} start\\n");')
        for s in t.steps:
            k = s[0]
            if k in ('sleep', 'yield'):
                call = f'sleep_until({s[1]})' if k == 'sleep' else 'urt_yield()'
                word = 'slept' if k == 'sleep' else 'yielded'
                L.append(f'    rc = {call};')
                L.append('    if (rc == URT_ECANCELED) {')
                L += c_cancel_path(t, '        ')
                L.append(f'    }} else P("t{me} {word}\\n");')
            elif k == 'print':
                L.append(f'    P("t{me} event {s[1]}\\n");')
            elif k == 'create':
                L.append(f'    P("t{me} create t{s[1]}\\n");')
                L.append(f'    urt_task_create(&h[{s[1]}], t{s[1]}_fn, NULL);')
                L.append(f'    kids[nk++] = {s[1]};')
            elif k == 'cancel':
                L.append(f'    P("t{me} cancel t{s[1]} -> %d\\n", '
                         f'urt_task_cancel(h[{s[1]}]));')
            elif k == 'await':
                L.append(f'    v = 0; rc = urt_task_await(h[{s[1]}], &v);')
                L.append('    outcome(b, sizeof b, rc, v);')
                L.append(f'    P("t{me} awaited t{s[1]} -> %s\\n", b);')
                L.append('    if (rc == URT_ECANCELED) {')
                L += c_cancel_path(t, '        ')
                L.append('    }')
            elif k == 'gather':
                js, rex = s[1], s[2]
                m = len(js)
                names = ','.join(f't{j}' for j in js)
                L.append('    {')
                L.append(f'        urt_task g[{m}] = {{' +
                         ', '.join(f'h[{j}]' for j in js) + '};')
                L.append(f'        intptr_t vals[{m}] = {{0}}; int errs[{m}] = {{0}};')
                L.append(f'        rc = urt_gather(g, {m}, {"URT_RETURN_EXCEPTIONS" if rex else "0"}, vals, errs);')
                if SETTLE:
                    L.append(f'        int rs = settle({me});')
                L.append('        if (rc == 0) {')
                L.append('            int o = snprintf(b, sizeof b, "[");')
                L.append(f'            for (int i = 0; i < {m}; i++) {{')
                L.append('                const char *sep = i ? ", " : "";')
                if rex:
                    L.append('                if (errs[i] == URT_ECANCELED) o += snprintf(b + o, sizeof b - o, "%scancelled", sep);')
                    L.append('                else if (errs[i]) o += snprintf(b + o, sizeof b - o, "%serr %d", sep, -errs[i]);')
                    L.append('                else o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);')
                else:
                    L.append('                o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);')
                L.append('            }')
                L.append('            snprintf(b + o, sizeof b - o, "]");')
                L.append('        } else outcome(b, sizeof b, rc, 0);')
                L.append(f'        P("t{me} gather{"_rex" if rex else ""} {names} -> %s\\n", b);')
                if SETTLE:
                    L.append('        if (rs == URT_ECANCELED) rc = rs;')
                L.append('    }')
                L.append('    if (rc == URT_ECANCELED) {')
                L += c_cancel_path(t, '        ')
                L.append('    }')
        L.append(f'    cleanup({me}, kids, nk, 0);')
        if t.end[0] == 'return':
            L.append(f'    P("t{me} return {t.end[1]}\\n");')
            L.append(f'    return {t.end[1]};')
        else:
            L.append(f'    P("t{me} fail {t.end[1]}\\n");')
            L.append(f'    return -{t.end[1]};')
        L.append('}')
        out.append('\n'.join(L))
    out.append(r'''int main(void)
{
    intptr_t v = 0;
    int rc = urt_run(t0_fn, NULL, &v);
    if (rc != 0) {
        printf("urt_run -> %d\n", rc);
        return 1;
    }
    printf("main -> %ld\n", (long)v);
    return 0;
}''')
    return '\n\n'.join(out) + '\n'


# ---------------------------------------------------------- Python side

PY_HEAD = '''import asyncio

UNIT = %r
t0 = 0.0
h = {}


class Fail(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def P(s):
    print(s, flush=True)


async def sleep_until(slot):
    d = t0 + slot * UNIT - asyncio.get_running_loop().time()
    await asyncio.sleep(d if d > 0 else 0)


def outcome_of(exc, v):
    if exc is None:
        return "value %%d" %% v
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "error %%d" %% exc.code


async def wait(t):
    try:
        return None, await t
    except asyncio.CancelledError as e:
        return e, None
    except Fail as e:
        return e, None


async def settle(me):
    loop = asyncio.get_running_loop()
    now = loop.time() - t0
    u = int(now // UNIT)
    dl = u * UNIT + UNIT * (5 + me) / 20
    if now + UNIT / 32 >= dl:
        dl += UNIT
    try:
        await asyncio.sleep(t0 + dl - loop.time())
    except asyncio.CancelledError as e:
        return e
    return None


async def cleanup(me, kids, cancel):
    if cancel:
        for k in kids:
            if not h[k].done():
                h[k].cancel()
    for k in kids:
        exc, v = await wait(h[k])
        P("t%%d cleanup t%%d -> %%s" %% (me, k, outcome_of(exc, v)))
'''


def py_cancel_path(t, ind):
    me = t.idx
    if t.resilient:
        return [ind + f'P("t{me} caught cancel")']
    return [ind + f'P("t{me} cancelled")',
            ind + f'await cleanup({me}, kids, True)',
            ind + 'raise asyncio.CancelledError()']


def emit_py(tasks):
    out = [PY_HEAD % (UNIT_MS / 1000)]
    for t in tasks:
        me = t.idx
        L = [f'async def t{me}_fn():', '    kids = []']
        if me == 0:
            L += ['    global t0', '    t0 = asyncio.get_running_loop().time()']
        L.append(f'    P("t{me} start")')
        for s in t.steps:
            k = s[0]
            if k in ('sleep', 'yield'):
                call = f'sleep_until({s[1]})' if k == 'sleep' else 'asyncio.sleep(0)'
                word = 'slept' if k == 'sleep' else 'yielded'
                L += ['    c = False', '    try:', f'        await {call}',
                      '    except asyncio.CancelledError:', '        c = True',
                      '    if c:']
                L += py_cancel_path(t, '        ')
                L += ['    else:', f'        P("t{me} {word}")']
            elif k == 'print':
                L.append(f'    P("t{me} event {s[1]}")')
            elif k == 'create':
                L.append(f'    P("t{me} create t{s[1]}")')
                L.append(f'    h[{s[1]}] = asyncio.create_task(t{s[1]}_fn())')
                L.append(f'    kids.append({s[1]})')
            elif k == 'cancel':
                L.append(f'    P("t{me} cancel t{s[1]} -> %d" % h[{s[1]}].cancel())')
            elif k == 'await':
                L.append(f'    exc, v = await wait(h[{s[1]}])')
                L.append(f'    P("t{me} awaited t{s[1]} -> " + outcome_of(exc, v))')
                L.append('    if isinstance(exc, asyncio.CancelledError):')
                L += py_cancel_path(t, '        ')
            elif k == 'gather':
                js, rex = s[1], s[2]
                names = ','.join(f't{j}' for j in js)
                args = ', '.join(f'h[{j}]' for j in js)
                L.append(f'    exc, v = await wait(asyncio.gather({args}'
                         f'{", return_exceptions=True" if rex else ""}))')
                if SETTLE:
                    L.append(f'    rs = await settle({me})')
                L.append('    if exc is None:')
                L.append('        items = []')
                L.append('        for r in v:')
                L.append('            if isinstance(r, asyncio.CancelledError):')
                L.append('                items.append("cancelled")')
                L.append('            elif isinstance(r, Fail):')
                L.append('                items.append("err %d" % r.code)')
                L.append('            else:')
                L.append('                items.append("%d" % r)')
                L.append('        b = "[" + ", ".join(items) + "]"')
                L.append('    else:')
                L.append('        b = outcome_of(exc, None)')
                L.append(f'    P("t{me} gather{"_rex" if rex else ""} {names} -> " + b)')
                if SETTLE:
                    L.append('    if rs is not None: exc = rs')
                L.append('    if isinstance(exc, asyncio.CancelledError):')
                L += py_cancel_path(t, '        ')
        L.append(f'    await cleanup({me}, kids, False)')
        if t.end[0] == 'return':
            L.append(f'    P("t{me} return {t.end[1]}")')
            L.append(f'    return {t.end[1]}')
        else:
            L.append(f'    P("t{me} fail {t.end[1]}")')
            L.append(f'    raise Fail({t.end[1]})')
        out.append('\n'.join(L))
    out.append('print("main -> %d" % asyncio.run(t0_fn()), flush=True)')
    return '\n\n\n'.join(out) + '\n'


# -------------------------------------------------------------- driver

def run(cmd, timeout=10):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        return 'timeout', out, ''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-n', type=int, default=50)
    ap.add_argument('-s', type=int, default=1)
    ap.add_argument('-k', action='store_true', help='keep going (the default)')
    ap.add_argument('--out', default=os.path.join('build', 'difftest'))
    ap.add_argument('--raw-gather', action='store_true',
                    help='print a gather result as soon as it returns')
    a = ap.parse_args()
    global SETTLE
    SETTLE = not a.raw_gather
    os.chdir(ROOT)
    subprocess.run(['make', '-s', 'lib'], check=True)
    if not os.path.exists('build/liburt.a'):
        sys.exit('difftest: build/liburt.a missing')
    libs = subprocess.run(['pkg-config', '--libs', 'liburing'], capture_output=True,
                          text=True, check=True).stdout.split()
    os.makedirs(a.out, exist_ok=True)
    passed = failed = flaky = 0
    for seed in range(a.s, a.s + a.n):
        tasks = generate(seed)
        cpath = os.path.join(a.out, f'prog_{seed}.c')
        ppath = os.path.join(a.out, f'prog_{seed}.py')
        exe = os.path.join(a.out, f'prog_{seed}')
        with open(cpath, 'w') as f:
            f.write(emit_c(tasks))
        with open(ppath, 'w') as f:
            f.write(emit_py(tasks))
        b = subprocess.run(['cc', '-std=gnu11', '-O1', '-Iinclude', cpath,
                            'build/liburt.a'] + libs + ['-lpthread', '-o', exe],
                           capture_output=True, text=True)
        if b.returncode != 0:
            print(f'DIFF seed {seed} (C build failed)\n{b.stderr}')
            failed += 1
            continue
        for attempt in range(3):
            prc, pout, perr = run([sys.executable, ppath])
            crc, cout, cerr = run([exe])
            pout += f'exit {prc}\n'
            cout += f'exit {crc}\n'
            if pout == cout:
                break
        if pout == cout:
            print(f'ok seed {seed}' + (f' (flaky: equal on try {attempt + 1})'
                                       if attempt else ''))
            flaky += bool(attempt)
            passed += 1
        else:
            print(f'DIFF seed {seed}')
            sys.stdout.writelines(difflib.unified_diff(
                pout.splitlines(True), cout.splitlines(True),
                'asyncio', 'urt'))
            for name, err in (('asyncio', perr), ('urt', cerr)):
                if err.strip():
                    print(f'[{name} stderr] ' + err.strip()[-2000:])
            failed += 1
        sys.stdout.flush()
    if flaky:
        print(f'difftest: {flaky} passed only on a retry (timing under load)')
    print(f'difftest: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
