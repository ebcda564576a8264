# difftest program c_group_body_left_by_awaited_cancel (seed 101786 of make stress, differed until the C side aborted the group with urt_group_cancel; settle_gather=1 settle_group=1 py_wait_for=0 without=-).
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
    Q[:] = [asyncio.Queue(m) for m in []]
    P("t0 start")
    c = False
    try:
        await sleep_until(5)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t0 caught cancel")
    else:
        P("t0 slept")
    cut_1 = False
    try:
        P("t0 group#1 enter")
        gs_1 = []
        gcut_1 = gerr_1 = None
        try:
            async with TaskGroup() as g_1:
                P("t0 spawn t3")
                coro = t3_fn()
                try:
                    h[3] = g_1.create_task(coro)
                    gs_1.append(3)
                except RuntimeError:
                    coro.close()
                    P("t0 spawn t3 -> refused")
                try:
                    async with asyncio.timeout_at(deadline(17)) as tm_2:
                        P("t0 create t1")
                        h[1] = asyncio.create_task(t1_fn())
                        kids.append(1)
                        exc, v = await wait(wait_for(h[1], deadline(8)))
                        P("t0 wait_for t1 -> " + outcome_of(exc, v))
                        if isinstance(exc, asyncio.CancelledError):
                            raise asyncio.CancelledError()
                        if newly_expired(tm_2):
                            P("t0 deadline passed")
                            raise asyncio.CancelledError()
                    P("t0 timeout#2 -> ok expired=%d" % tm_2.expired())
                except TimeoutError:
                    P("t0 timeout#2 -> timeout")
                except asyncio.CancelledError:
                    P("t0 timeout#2 -> cancelled")
                    raise
        except BaseExceptionGroup as e:
            gerr_1 = e
        except asyncio.CancelledError as e:
            gcut_1 = e
        rs = await settle(0)
        if gerr_1 is not None:
            group_failed(0, 1, gerr_1, gs_1)
        elif gcut_1 is not None:
            P("t0 group#1 -> cancelled")
            raise gcut_1
        else:
            P("t0 group#1 -> ok")
        if rs is not None:
            raise rs
    except asyncio.CancelledError:
        cut_1 = True
    if cut_1:
        P("t0 caught cancel")
    cut_3 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(22)) as tm_3:
                P("t0 event 1")
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t0 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t0 yielded")
                if newly_expired(tm_3):
                    P("t0 deadline passed")
                    raise asyncio.CancelledError()
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t0 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t0 yielded")
                if newly_expired(tm_3):
                    P("t0 deadline passed")
                    raise asyncio.CancelledError()
            P("t0 timeout#3 -> ok expired=%d" % tm_3.expired())
        except TimeoutError:
            P("t0 timeout#3 -> timeout")
        except asyncio.CancelledError:
            P("t0 timeout#3 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_3 = True
    if cut_3:
        P("t0 caught cancel")
    await cleanup(0, kids, False)
    P("t0 return 0")
    return 0


async def t1_fn():
    kids = []
    P("t1 start")
    P("t1 create t2")
    h[2] = asyncio.create_task(t2_fn())
    kids.append(2)
    if 2 in h:
        P("t1 cancel t2 -> %d" % h[2].cancel())
    else:
        P("t1 cancel t2 -> none")
    exc, v = await wait(wait_for(h[2], deadline(18)))
    P("t1 wait_for t2 -> " + outcome_of(exc, v))
    if isinstance(exc, asyncio.CancelledError):
        P("t1 cancelled")
        await cleanup(1, kids, True)
        raise asyncio.CancelledError()
    await cleanup(1, kids, False)
    P("t1 return 44")
    return 44


async def t2_fn():
    kids = []
    P("t2 start")
    P("t2 event 1")
    cut_1 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(15)) as tm_1:
                c = False
                try:
                    await sleep_until(2)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t2 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t2 slept")
                if newly_expired(tm_1):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
                try:
                    async with asyncio.timeout_at(deadline(7)) as tm_2:
                        c = False
                        try:
                            await sleep_until(11)
                        except asyncio.CancelledError:
                            c = True
                        if c:
                            P("t2 cut")
                            raise asyncio.CancelledError()
                        else:
                            P("t2 slept")
                        if newly_expired(tm_1, tm_2):
                            P("t2 deadline passed")
                            raise asyncio.CancelledError()
                    P("t2 timeout#2 -> ok expired=%d" % tm_2.expired())
                except TimeoutError:
                    P("t2 timeout#2 -> timeout")
                except asyncio.CancelledError:
                    P("t2 timeout#2 -> cancelled")
                    raise
                if newly_expired(tm_1):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
                P("t2 event 2")
                c = False
                try:
                    await sleep_until(12)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t2 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t2 slept")
                if newly_expired(tm_1):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
            P("t2 timeout#1 -> ok expired=%d" % tm_1.expired())
        except TimeoutError:
            P("t2 timeout#1 -> timeout")
        except asyncio.CancelledError:
            P("t2 timeout#1 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_1 = True
    if cut_1:
        P("t2 caught cancel")
    c = False
    try:
        await sleep_until(16)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 slept")
    P("t2 event 3")
    await cleanup(2, kids, False)
    P("t2 fail 14")
    raise Fail(14, 2)


async def t3_fn():
    kids = []
    P("t3 start")
    c = False
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t3 cancelled")
        await cleanup(3, kids, True)
        raise asyncio.CancelledError()
    else:
        P("t3 yielded")
    P("t3 create t4")
    h[4] = asyncio.create_task(t4_fn())
    kids.append(4)
    exc, v = await wait(h[4])
    P("t3 awaited t4 -> " + outcome_of(exc, v))
    if isinstance(exc, asyncio.CancelledError):
        P("t3 cancelled")
        await cleanup(3, kids, True)
        raise asyncio.CancelledError()
    P("t3 event 1")
    exc, v = await wait(asyncio.gather(h[4]))
    rs = await settle(3)
    if exc is None:
        items = []
        for r in v:
            if isinstance(r, asyncio.CancelledError):
                items.append("cancelled")
            elif isinstance(r, Fail):
                items.append("err %d" % r.code)
            else:
                items.append("%d" % r)
        b = "[" + ", ".join(items) + "]"
    else:
        b = outcome_of(exc, None)
    P("t3 gather t4 -> " + b)
    if isinstance(exc, asyncio.CancelledError) or rs is not None:
        P("t3 cancelled")
        await cleanup(3, kids, True)
        raise asyncio.CancelledError()
    c = False
    try:
        await sleep_until(13)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t3 cancelled")
        await cleanup(3, kids, True)
        raise asyncio.CancelledError()
    else:
        P("t3 slept")
    P("t3 event 2")
    c = False
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t3 cancelled")
        await cleanup(3, kids, True)
        raise asyncio.CancelledError()
    else:
        P("t3 yielded")
    await cleanup(3, kids, False)
    if await settle(3) is not None:
        P("t3 cancelled")
        await cleanup(3, kids, True)
        raise asyncio.CancelledError()
    P("t3 fail 2")
    raise Fail(2, 3)


async def t4_fn():
    kids = []
    P("t4 start")
    c = False
    try:
        await sleep_until(3)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t4 cancelled")
        await cleanup(4, kids, True)
        raise asyncio.CancelledError()
    else:
        P("t4 slept")
    cut_1 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(20)) as tm_1:
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t4 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t4 yielded")
                if newly_expired(tm_1):
                    P("t4 deadline passed")
                    raise asyncio.CancelledError()
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t4 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t4 yielded")
                if newly_expired(tm_1):
                    P("t4 deadline passed")
                    raise asyncio.CancelledError()
            P("t4 timeout#1 -> ok expired=%d" % tm_1.expired())
        except TimeoutError:
            P("t4 timeout#1 -> timeout")
        except asyncio.CancelledError:
            P("t4 timeout#1 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_1 = True
    if cut_1:
        P("t4 cancelled")
        await cleanup(4, kids, True)
        raise asyncio.CancelledError()
    await cleanup(4, kids, False)
    P("t4 fail 31")
    raise Fail(31, 4)

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
