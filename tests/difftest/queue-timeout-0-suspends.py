# difftest program c_queue_timeout_0_suspends (seed 20, minimised; settle_gather=1 settle_group=1 py_wait_for=0 without=-).
# Replay: python3 THIS.py (see tests/difftest/README).
import asyncio
import sys

UNIT = 0.024
PY_WAIT_FOR = False
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
        return "value %d" % v
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "error %d" % exc.code


async def wait(aw):
    try:
        return None, await aw
    except (asyncio.CancelledError, TimeoutError, Fail) as e:
        return e, None


async def settle(me):
    loop = asyncio.get_running_loop()
    now = loop.time() - t0
    u = int(now // UNIT)
    dl = u * UNIT + (4 + 2 * me) / 1000
    if now + 0.001 >= dl:
        dl += UNIT
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
        P("t%d cleanup t%d -> %s" % (me, k, outcome_of(exc, v)))


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


def TaskGroup():
    g = asyncio.TaskGroup()
    g._tasks = _Tasks()
    return g


def group_failed(me, bid, eg, spawned):
    ex = list(eg.exceptions)
    def name(e):
        if isinstance(e, Fail):
            return "t%d err %d" % (e.who, e.code)
        return repr(e)
    first = ex[0]
    code = first.code if isinstance(first, Fail) else -1
    who = first.who if isinstance(first, Fail) else -1
    ordered = sorted(ex, key=lambda e: spawned.index(e.who) if isinstance(e, Fail) else 99)
    P("t%d group#%d -> failed err %d first t%d all [%s]" % (
        me, bid, code, who, ", ".join(name(e) for e in ordered)))



async def t0_fn():
    kids = []
    global t0
    t0 = now()
    EV[:] = [asyncio.Event() for _ in range(0)]
    Q[:] = [asyncio.Queue(m) for m in [2, 1]]
    P("t0 start")
    cut_1 = False
    try:
        P("t0 group#1 enter")
        gs_1 = []
        gcut = gerr = None
        try:
            async with TaskGroup() as g_1:
                P("t0 spawn t5")
                try:
                    h[5] = g_1.create_task(t5_fn())
                    gs_1.append(5)
                except RuntimeError:
                    P("t0 spawn t5 -> refused")
        except BaseExceptionGroup as e:
            gerr = e
        except asyncio.CancelledError as e:
            gcut = e
        rs = await settle(0)
        if gerr is not None:
            group_failed(0, 1, gerr, gs_1)
        elif gcut is not None:
            P("t0 group#1 -> cancelled")
            raise gcut
        else:
            P("t0 group#1 -> ok")
        if rs is not None:
            raise rs
    except asyncio.CancelledError:
        cut_1 = True
    if cut_1:
        P("t0 caught cancel")
    P("t0 create t4")
    h[4] = asyncio.create_task(t4_fn())
    kids.append(4)
    c = False
    try:
        r = await q_get(Q[1], deadline(1))
    except asyncio.CancelledError:
        c = True
        r = "cancelled"
    P("t0 q1 get -> %s" % r)
    if c:
        P("t0 caught cancel")
    await cleanup(0, kids, False)
    P("t0 return 0")
    return 0


async def t4_fn():
    kids = []
    P("t4 start")
    await cleanup(4, kids, False)
    P("t4 return 0")
    return 0


async def t5_fn():
    kids = []
    P("t5 start")
    c = False
    try:
        await sleep_until(2)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t5 cancelled")
        await cleanup(5, kids, True)
        raise asyncio.CancelledError()
    else:
        P("t5 slept")
    await cleanup(5, kids, False)
    P("t5 return 0")
    return 0

def run():
    try:
        v = asyncio.run(t0_fn())
        print("main -> %d" % v, flush=True)
    except BaseException as e:
        print("main raised %s" % type(e).__name__, flush=True)


if __name__ == "__main__":
    run()
