# difftest program c_deadline_passed_with_cancel_outstanding (seed 1108, differed until the C side asked urt_task_cancelling; settle_gather=1 settle_group=1 py_wait_for=0 without=-).
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
    Q[:] = [asyncio.Queue(m) for m in [2]]
    P("t0 start")
    P("t0 create t1")
    h[1] = asyncio.create_task(t1_fn())
    kids.append(1)
    cut_1 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(2)) as tm_1:
                P("t0 event 1")
                exc, v = await wait(h[1])
                P("t0 awaited t1 -> " + outcome_of(exc, v))
                if isinstance(exc, asyncio.CancelledError):
                    raise asyncio.CancelledError()
                if newly_expired(tm_1):
                    P("t0 deadline passed")
                    raise asyncio.CancelledError()
                P("t0 event 2")
            P("t0 timeout#1 -> ok expired=%d" % tm_1.expired())
        except TimeoutError:
            P("t0 timeout#1 -> timeout")
        except asyncio.CancelledError:
            P("t0 timeout#1 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_1 = True
    if cut_1:
        P("t0 caught cancel")
    P("t0 event 3")
    exc, v = await wait(h[1])
    P("t0 awaited t1 -> " + outcome_of(exc, v))
    if isinstance(exc, asyncio.CancelledError):
        P("t0 caught cancel")
    try:
        r = "%d" % Q[0].get_nowait()
    except asyncio.QueueEmpty:
        r = "empty"
    P("t0 q0 try_get -> " + r)
    c = False
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t0 caught cancel")
    else:
        P("t0 yielded")
    exc, v = await wait(wait_for(h[1], deadline(20)))
    P("t0 wait_for t1 -> " + outcome_of(exc, v))
    if isinstance(exc, asyncio.CancelledError):
        P("t0 caught cancel")
    exc, v = await wait(wait_for(h[1], deadline(26)))
    P("t0 wait_for t1 -> " + outcome_of(exc, v))
    if isinstance(exc, asyncio.CancelledError):
        P("t0 caught cancel")
    await cleanup(0, kids, False)
    P("t0 return 0")
    return 0


async def t1_fn():
    kids = []
    P("t1 start")
    c = False
    try:
        await sleep_until(4)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t1 caught cancel")
    else:
        P("t1 slept")
    cut_1 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(13)) as tm_1:
                P("t1 create t2")
                h[2] = asyncio.create_task(t2_fn())
                kids.append(2)
                exc, v = await wait(wait_for(h[2], deadline(11)))
                P("t1 wait_for t2 -> " + outcome_of(exc, v))
                if isinstance(exc, asyncio.CancelledError):
                    raise asyncio.CancelledError()
                if newly_expired(tm_1):
                    P("t1 deadline passed")
                    raise asyncio.CancelledError()
                c = False
                try:
                    await sleep_until(21)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t1 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t1 slept")
                if newly_expired(tm_1):
                    P("t1 deadline passed")
                    raise asyncio.CancelledError()
                c = False
                try:
                    await sleep_until(27)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t1 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t1 slept")
                if newly_expired(tm_1):
                    P("t1 deadline passed")
                    raise asyncio.CancelledError()
            P("t1 timeout#1 -> ok expired=%d" % tm_1.expired())
        except TimeoutError:
            P("t1 timeout#1 -> timeout")
        except asyncio.CancelledError:
            P("t1 timeout#1 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_1 = True
    if cut_1:
        P("t1 caught cancel")
    c = False
    try:
        await sleep_until(31)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t1 caught cancel")
    else:
        P("t1 slept")
    await cleanup(1, kids, False)
    P("t1 fail 46")
    raise Fail(46, 1)


async def t2_fn():
    kids = []
    P("t2 start")
    c = False
    try:
        r = await q_put(Q[0], 100, deadline(6))
    except asyncio.CancelledError:
        c = True
        r = "cancelled"
    P("t2 q0 put 100 -> %s" % r)
    if c:
        P("t2 caught cancel")
    c = False
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 yielded")
    c = False
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 yielded")
    c = False
    try:
        await sleep_until(9)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 slept")
    cut_1 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(12)) as tm_1:
                P("t2 event 1")
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
    cut_2 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(17)) as tm_2:
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t2 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t2 yielded")
                if newly_expired(tm_2):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
                try:
                    async with asyncio.timeout_at(deadline(15)) as tm_3:
                        P("t2 event 2")
                        c = False
                        try:
                            await sleep_until(18)
                        except asyncio.CancelledError:
                            c = True
                        if c:
                            P("t2 cut")
                            raise asyncio.CancelledError()
                        else:
                            P("t2 slept")
                        if newly_expired(tm_2, tm_3):
                            P("t2 deadline passed")
                            raise asyncio.CancelledError()
                        c = False
                        try:
                            await asyncio.sleep(0)
                        except asyncio.CancelledError:
                            c = True
                        if c:
                            P("t2 cut")
                            raise asyncio.CancelledError()
                        else:
                            P("t2 yielded")
                        if newly_expired(tm_2, tm_3):
                            P("t2 deadline passed")
                            raise asyncio.CancelledError()
                        c = False
                        try:
                            await sleep_until(19)
                        except asyncio.CancelledError:
                            c = True
                        if c:
                            P("t2 cut")
                            raise asyncio.CancelledError()
                        else:
                            P("t2 slept")
                        if newly_expired(tm_2, tm_3):
                            P("t2 deadline passed")
                            raise asyncio.CancelledError()
                    P("t2 timeout#3 -> ok expired=%d" % tm_3.expired())
                except TimeoutError:
                    P("t2 timeout#3 -> timeout")
                except asyncio.CancelledError:
                    P("t2 timeout#3 -> cancelled")
                    raise
                if newly_expired(tm_2):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t2 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t2 yielded")
                if newly_expired(tm_2):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
            P("t2 timeout#2 -> ok expired=%d" % tm_2.expired())
        except TimeoutError:
            P("t2 timeout#2 -> timeout")
        except asyncio.CancelledError:
            P("t2 timeout#2 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_2 = True
    if cut_2:
        P("t2 caught cancel")
    c = False
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 yielded")
    c = False
    try:
        await sleep_until(22)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 slept")
    c = False
    try:
        await sleep_until(23)
    except asyncio.CancelledError:
        c = True
    if c:
        P("t2 caught cancel")
    else:
        P("t2 slept")
    cut_4 = False
    try:
        try:
            async with asyncio.timeout_at(deadline(25)) as tm_4:
                c = False
                try:
                    await sleep_until(30)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t2 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t2 slept")
                if newly_expired(tm_4):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
                c = False
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    c = True
                if c:
                    P("t2 cut")
                    raise asyncio.CancelledError()
                else:
                    P("t2 yielded")
                if newly_expired(tm_4):
                    P("t2 deadline passed")
                    raise asyncio.CancelledError()
            P("t2 timeout#4 -> ok expired=%d" % tm_4.expired())
        except TimeoutError:
            P("t2 timeout#4 -> timeout")
        except asyncio.CancelledError:
            P("t2 timeout#4 -> cancelled")
            raise
    except asyncio.CancelledError:
        cut_4 = True
    if cut_4:
        P("t2 caught cancel")
    await cleanup(2, kids, False)
    P("t2 fail 17")
    raise Fail(17, 2)

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
