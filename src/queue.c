/*
 * Queues: asyncio's Queue, LifoQueue and PriorityQueue for the tasks of one
 * loop, with task_done/join and Python 3.13's shutdown.
 *
 * Tasks wait on three wait queues (waitq.c): getters, putters, joiners.
 * Two invariants make hand-off simple and keep waiters in FIFO order:
 *
 *   - getters wait only while the queue is empty, so a put that finds a
 *     getter gives it the item directly, and never stores it;
 *   - putters wait only while the queue is full, so a get that frees a slot
 *     moves the first putter's item in at once, and the queue is full again.
 *
 * Either way the item changes hands in the waker's turn, while the waiter
 * is still on its wait queue: a waiter that has left (cancelled, timed out)
 * can no longer be given anything, and no try_put or try_get of a task that
 * runs before the woken one can overtake it.  asyncio instead wakes the
 * waiter and lets it retry, which both loses the FIFO order and needs the
 * "wake the next one if I was cancelled" dance its Queue has.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* An unbounded queue's first array; doubled when full. */
#define UNBOUNDED_CAP 16

/* A priority queue's heap entry: seq orders equal priorities by put. */
struct prio_entry {
    int64_t prio;
    uint64_t seq;
    void *item;
};

/* A task waiting on one of the queue's lists, on its stack.  The waker
 * reads a putter's item and priority, and tells a getter why it woke: an
 * item (parked.value) or shutdown (err). */
struct qwaiter {
    struct urt__parked parked;
    void *item;
    int64_t prio;
    int err;
};

static inline bool valid(const urt_queue *q)
{
    return q && q->_kind >= URT_QUEUE_FIFO && q->_kind <= URT_QUEUE_PRIORITY;
}

static inline size_t entry_size(int kind)
{
    return kind == URT_QUEUE_PRIORITY ? sizeof(struct prio_entry) : sizeof(void *);
}

static inline bool is_full(const urt_queue *q)
{
    return q->_maxsize && q->_len >= q->_maxsize;
}

static inline bool prio_before(const struct prio_entry *a, const struct prio_entry *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

/* ---- storage ----------------------------------------------------------- */

/* Stores item; the caller has made room. */
static void store(urt_queue *q, int64_t prio, void *item)
{
    if (q->_kind == URT_QUEUE_PRIORITY) {
        struct prio_entry *h = q->_buf;
        struct prio_entry e = {prio, q->_seq++, item};
        size_t i = q->_len;
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (!prio_before(&e, &h[parent])) break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = e;
    } else {
        void **ring = q->_buf;
        size_t i = q->_head + q->_len; /* LIFO keeps _head at 0 */
        ring[i >= q->_cap ? i - q->_cap : i] = item;
    }
    q->_len++;
}

/* Removes and returns the next item; the queue is not empty. */
static void *take(urt_queue *q)
{
    void *item;
    q->_len--;
    if (q->_kind == URT_QUEUE_FIFO) {
        void **ring = q->_buf;
        item = ring[q->_head];
        q->_head = q->_head + 1 == q->_cap ? 0 : q->_head + 1;
    } else if (q->_kind == URT_QUEUE_LIFO) {
        item = ((void **)q->_buf)[q->_len];
    } else {
        struct prio_entry *h = q->_buf;
        item = h[0].item;
        struct prio_entry last = h[q->_len];
        size_t n = q->_len, i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && prio_before(&h[c + 1], &h[c])) c++;
            if (!prio_before(&h[c], &last)) break;
            h[i] = h[c];
            i = c;
        }
        h[i] = last;
    }
    return item;
}

/* Doubles an unbounded queue's array.  A FIFO ring that wraps has its
 * wrapped front (slots 0 .. head+len-cap) moved up past the old end, where
 * the doubled array has room for all of it. */
__attribute__((noinline, cold)) static int grow(urt_queue *q)
{
    size_t es = entry_size(q->_kind);
    if (q->_cap > SIZE_MAX / 2 / es) return -ENOMEM;
    size_t cap = q->_cap * 2;
    void *buf = realloc(q->_buf, cap * es);
    if (!buf) return -ENOMEM;
    if (q->_kind == URT_QUEUE_FIFO && q->_head + q->_len > q->_cap) {
        void **ring = buf;
        memcpy(ring + q->_cap, ring, (q->_head + q->_len - q->_cap) * sizeof *ring);
    }
    q->_buf = buf;
    q->_cap = cap;
    return 0;
}

/* ---- waking ------------------------------------------------------------ */

static inline struct qwaiter *waiter_of(struct urt__parked *p)
{
    return container_of(p, struct qwaiter, parked);
}

/* A slot was freed: the first waiting putter's item takes it. */
static void admit_putter(struct urt_loop *loop, urt_queue *q)
{
    struct urt__parked *p = urt__waitq_of(&q->_putters)->head;
    if (!p) return;
    struct qwaiter *w = waiter_of(p);
    store(q, w->prio, w->item);
    q->_unfinished++;
    urt__wake(loop, p, 0);
}

/* Wakes every task on l, telling each err. */
static void wake_all(struct urt_loop *loop, urt_waitlist *l, int err)
{
    struct urt__waitq *wq = urt__waitq_of(l);
    while (wq->head) {
        struct urt__parked *p = wq->head;
        waiter_of(p)->err = err;
        urt__wake(loop, p, err);
    }
}

/* Parks the current task on l, unless the timeout is 0 (the header's "at
 * once": no trip through the loop) or a cancellation is pending. */
static inline int wait_on(struct urt_loop *loop, urt_waitlist *l, struct qwaiter *w,
                          uint64_t timeout_ns)
{
    if (timeout_ns == 0) return URT_ETIMEDOUT;
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    return urt__park(loop, urt__waitq_of(l), &w->parked, urt__deadline_of(timeout_ns));
}

/* The waits are out of line, so that the calls that need none carry no
 * waiter in their frame. */
__attribute__((noinline)) static int put_wait(struct urt_loop *loop, urt_queue *q,
                                              int64_t prio, void *item, uint64_t timeout_ns)
{
    struct qwaiter w = {.item = item, .prio = prio};
    int res = wait_on(loop, &q->_putters, &w, timeout_ns);
    /* Woken: a get moved the item in (0), or shutdown refused it. */
    return res ? res : w.err;
}

__attribute__((noinline)) static int get_wait(struct urt_loop *loop, urt_queue *q,
                                              void **item, uint64_t timeout_ns)
{
    struct qwaiter w = {.err = 0};
    int res = wait_on(loop, &q->_getters, &w, timeout_ns);
    if (res) return res;
    /* q may be gone by now (destroyed once we were off its list): what the
     * waker handed over is all there is to read. */
    if (w.err) return w.err;
    *item = (void *)w.parked.value;
    return 0;
}

__attribute__((noinline)) static int join_wait(struct urt_loop *loop, urt_queue *q,
                                               uint64_t timeout_ns)
{
    struct qwaiter w = {.err = 0};
    return wait_on(loop, &q->_joiners, &w, timeout_ns);
}

/* ---- init, destroy, queries -------------------------------------------- */

int urt_queue_init(urt_queue *q, int kind, size_t maxsize)
{
    if (!q) return -EINVAL;
    if (kind != URT_QUEUE_FIFO && kind != URT_QUEUE_LIFO && kind != URT_QUEUE_PRIORITY)
        return -EINVAL;
    /* A bounded queue gets all its slots now, so that no put on it (nor a
     * get moving a waiting putter's item in) can fail for want of memory. */
    size_t cap = maxsize ? maxsize : UNBOUNDED_CAP;
    size_t es = entry_size(kind);
    if (cap > SIZE_MAX / es) return -ENOMEM;
    void *buf = malloc(cap * es);
    if (!buf) return -ENOMEM;
    *q = (urt_queue){._buf = buf, ._cap = cap, ._maxsize = maxsize, ._kind = kind};
    q->_getters._what = "Queue.get";
    q->_putters._what = "Queue.put";
    q->_joiners._what = "Queue.join";
    return 0;
}

int urt_queue_destroy(urt_queue *q)
{
    if (!valid(q)) return -EINVAL;
    if (q->_getters._head || q->_putters._head || q->_joiners._head) return -EBUSY;
    free(q->_buf);
    *q = (urt_queue){0};
    return 0;
}

size_t urt_queue_size(const urt_queue *q)
{
    return valid(q) ? q->_len : 0;
}

int urt_queue_empty(const urt_queue *q)
{
    return urt_queue_size(q) == 0;
}

int urt_queue_full(const urt_queue *q)
{
    return valid(q) && is_full(q);
}

size_t urt_queue_maxsize(const urt_queue *q)
{
    return valid(q) ? q->_maxsize : 0;
}

/* ---- put ----------------------------------------------------------------- */

/* prio_given: a put_prio, which only a priority queue takes. */
static int put(urt_queue *q, int64_t prio, bool prio_given, void *item, uint64_t timeout_ns,
               bool may_wait)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!valid(q) || (prio_given && q->_kind != URT_QUEUE_PRIORITY)) return -EINVAL;
    if (q->_shutdown) return -ESHUTDOWN;
    struct urt__parked *getter = urt__waitq_of(&q->_getters)->head;
    if (getter) {
        q->_unfinished++;
        urt__wake(loop, getter, (intptr_t)item);
        return 0;
    }
    if (!is_full(q)) {
        int err;
        if (q->_len == q->_cap && (err = grow(q))) return err;
        store(q, prio, item);
        q->_unfinished++;
        return 0;
    }
    if (!may_wait) return -EAGAIN;
    return put_wait(loop, q, prio, item, timeout_ns);
}

int urt_queue_put(urt_queue *q, void *item)
{
    return put(q, 0, false, item, URT_NO_TIMEOUT, true);
}

int urt_queue_put_timeout(urt_queue *q, void *item, uint64_t timeout_ns)
{
    return put(q, 0, false, item, timeout_ns, true);
}

int urt_queue_try_put(urt_queue *q, void *item)
{
    return put(q, 0, false, item, 0, false);
}

int urt_queue_put_prio(urt_queue *q, int64_t priority, void *item)
{
    return put(q, priority, true, item, URT_NO_TIMEOUT, true);
}

int urt_queue_put_prio_timeout(urt_queue *q, int64_t priority, void *item,
                               uint64_t timeout_ns)
{
    return put(q, priority, true, item, timeout_ns, true);
}

int urt_queue_try_put_prio(urt_queue *q, int64_t priority, void *item)
{
    return put(q, priority, true, item, 0, false);
}

/* ---- get ----------------------------------------------------------------- */

static int get(urt_queue *q, void **item, uint64_t timeout_ns, bool may_wait)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!valid(q) || !item) return -EINVAL;
    if (q->_len) {
        *item = take(q);
        admit_putter(loop, q);
        return 0;
    }
    if (q->_shutdown) return -ESHUTDOWN;
    if (!may_wait) return -EAGAIN;
    return get_wait(loop, q, item, timeout_ns);
}

int urt_queue_get(urt_queue *q, void **item)
{
    return get(q, item, URT_NO_TIMEOUT, true);
}

int urt_queue_get_timeout(urt_queue *q, void **item, uint64_t timeout_ns)
{
    return get(q, item, timeout_ns, true);
}

int urt_queue_try_get(urt_queue *q, void **item)
{
    return get(q, item, 0, false);
}

/* ---- task_done, join, shutdown ------------------------------------------- */

int urt_queue_task_done(urt_queue *q)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!valid(q)) return -EINVAL;
    /* Unfinished items still in the queue have not been got. */
    if (q->_unfinished == q->_len) return -EOVERFLOW;
    if (--q->_unfinished == 0) wake_all(loop, &q->_joiners, 0);
    return 0;
}

static int join(urt_queue *q, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!valid(q)) return -EINVAL;
    if (q->_unfinished == 0) return 0;
    return join_wait(loop, q, timeout_ns);
}

int urt_queue_join(urt_queue *q)
{
    return join(q, URT_NO_TIMEOUT);
}

int urt_queue_join_timeout(urt_queue *q, uint64_t timeout_ns)
{
    return join(q, timeout_ns);
}

int urt_queue_shutdown(urt_queue *q, int immediate)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!valid(q)) return -EINVAL;
    q->_shutdown = 1;
    /* asyncio's order: joiners (released by the drop), getters, putters. */
    if (immediate && q->_len) {
        q->_unfinished -= q->_len;
        q->_len = 0;
        q->_head = 0;
        if (q->_unfinished == 0) wake_all(loop, &q->_joiners, 0);
    }
    wake_all(loop, &q->_getters, -ESHUTDOWN);
    wake_all(loop, &q->_putters, -ESHUTDOWN);
    return 0;
}
