/*
 * Event, Lock, Semaphore and Condition: asyncio's primitives on wait
 * queues (waitq.c).
 *
 * Each primitive is a state word and a list of parked tasks.  What a waker
 * gives out (the lock, a permit, a notification, the event) it hands to the
 * first task still parked, through urt__wake, at the moment it gives it:
 * the state never shows a free lock or permit while tasks wait.  That is
 * what keeps the queue FIFO (a task calling acquire after a release cannot
 * take what was handed on), and what keeps a wake-up from being lost: a
 * task that leaves the queue (cancelled, timed out) was handed nothing, and
 * a task that was handed something returns it.
 *
 * Nothing here prepares an SQE except urt__park, for a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>

#include "internal.h"

/* ---- shared by every primitive ---------------------------------------- */

static void list_init(urt_waitlist *w, const char *what)
{
    *w = (urt_waitlist){._what = what};
}

static inline bool has_waiters(const urt_waitlist *w)
{
    return w->_head != NULL;
}

static inline struct urt__parked *first_waiter(urt_waitlist *w)
{
    return urt__waitq_of(w)->head;
}

/* A waker may make the parked tasks ready only from their own loop: on
 * another, they would join a foreign ready queue. */
static inline bool foreign_waiters(struct urt_loop *loop, const urt_waitlist *w,
                                   void *const *owner)
{
    return has_waiters(w) && *owner != (void *)loop;
}

/* Records the loop of the first task to queue on w, and refuses a task of
 * another loop while those of the first still wait. */
static int join(struct urt_loop *loop, const urt_waitlist *w, void **owner)
{
    if (!has_waiters(w))
        *owner = loop;
    else if (*owner != (void *)loop)
        return -EXDEV;
    return 0;
}

/* The waiting part of every acquire and wait.  deadline 0: none. */
static int park(struct urt_loop *loop, urt_waitlist *w, uint64_t deadline)
{
    struct urt__parked p;
    return urt__park(loop, urt__waitq_of(w), &p, deadline);
}

/* What every call that is about to wait does first: a timeout of 0 does
 * not wait, another loop's waiters are refused, and a cancellation that
 * came while the task ran is delivered instead of waiting.  Returns 1 to
 * go on and wait, or the code to return. */
static int before_wait(struct urt_loop *loop, const urt_waitlist *w, void **owner,
                       uint64_t timeout_ns)
{
    if (timeout_ns == 0) return URT_ETIMEDOUT;
    int err = join(loop, w, owner);
    if (err) return err;
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    return 1;
}

/* ---- Event ------------------------------------------------------------ */

int urt_event_init(urt_event *e)
{
    if (!e) return -EINVAL;
    list_init(&e->_waiters, "Event.wait");
    e->_loop = NULL;
    e->_set = 0;
    return 0;
}

int urt_event_set(urt_event *e)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!e) return -EINVAL;
    if (foreign_waiters(loop, &e->_waiters, &e->_loop)) return -EXDEV;
    e->_set = 1;
    for (struct urt__parked *p; (p = first_waiter(&e->_waiters));) urt__wake(loop, p, 0);
    return 0;
}

int urt_event_clear(urt_event *e)
{
    if (!urt__running()) return URT_ENOLOOP;
    if (!e) return -EINVAL;
    e->_set = 0;
    return 0;
}

int urt_event_is_set(const urt_event *e)
{
    if (!e) return -EINVAL;
    return e->_set;
}

int urt_event_wait_timeout(urt_event *e, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!e) return -EINVAL;
    if (e->_set) return 0;
    int go = before_wait(loop, &e->_waiters, &e->_loop, timeout_ns);
    if (go != 1) return go;
    return park(loop, &e->_waiters, urt__deadline_of(timeout_ns));
}

int urt_event_wait(urt_event *e)
{
    return urt_event_wait_timeout(e, URT_NO_TIMEOUT);
}

/* ---- Lock ------------------------------------------------------------- */

int urt_lock_init(urt_lock *l)
{
    if (!l) return -EINVAL;
    list_init(&l->_waiters, "Lock.acquire");
    l->_loop = NULL;
    l->_locked = 0;
    return 0;
}

int urt_lock_acquire_timeout(urt_lock *l, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!l) return -EINVAL;
    if (!l->_locked) {
        l->_locked = 1;
        return 0;
    }
    int go = before_wait(loop, &l->_waiters, &l->_loop, timeout_ns);
    if (go != 1) return go;
    /* Woken means handed the lock: _locked stayed set for us. */
    return park(loop, &l->_waiters, urt__deadline_of(timeout_ns));
}

int urt_lock_acquire(urt_lock *l)
{
    return urt_lock_acquire_timeout(l, URT_NO_TIMEOUT);
}

int urt_lock_try_acquire(urt_lock *l)
{
    if (!urt__running()) return URT_ENOLOOP;
    if (!l) return -EINVAL;
    if (l->_locked) return -EBUSY;
    l->_locked = 1;
    return 0;
}

/* Hands the lock to its first waiter, or unlocks it.  The caller has
 * checked that it is held and that the waiters are of this loop. */
static void lock_pass(struct urt_loop *loop, urt_lock *l)
{
    struct urt__parked *p = first_waiter(&l->_waiters);
    if (p)
        urt__wake(loop, p, 0);
    else
        l->_locked = 0;
}

int urt_lock_release(urt_lock *l)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!l) return -EINVAL;
    if (!l->_locked) return -EPERM;
    if (foreign_waiters(loop, &l->_waiters, &l->_loop)) return -EXDEV;
    lock_pass(loop, l);
    return 0;
}

int urt_lock_locked(const urt_lock *l)
{
    if (!l) return -EINVAL;
    return l->_locked;
}

/* ---- Semaphore -------------------------------------------------------- */

static int sem_init(urt_sem *s, int value, int bound, const char *what)
{
    if (!s || value < 0) return -EINVAL;
    list_init(&s->_waiters, what);
    s->_loop = NULL;
    s->_value = value;
    s->_bound = bound;
    return 0;
}

int urt_sem_init(urt_sem *s, int value)
{
    return sem_init(s, value, -1, "Semaphore.acquire");
}

int urt_sem_init_bounded(urt_sem *s, int value)
{
    return sem_init(s, value, value, "BoundedSemaphore.acquire");
}

int urt_sem_acquire_timeout(urt_sem *s, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!s) return -EINVAL;
    if (s->_value > 0) {
        s->_value--;
        return 0;
    }
    int go = before_wait(loop, &s->_waiters, &s->_loop, timeout_ns);
    if (go != 1) return go;
    /* Woken means handed a permit that never went back to the count. */
    return park(loop, &s->_waiters, urt__deadline_of(timeout_ns));
}

int urt_sem_acquire(urt_sem *s)
{
    return urt_sem_acquire_timeout(s, URT_NO_TIMEOUT);
}

int urt_sem_try_acquire(urt_sem *s)
{
    if (!urt__running()) return URT_ENOLOOP;
    if (!s) return -EINVAL;
    if (s->_value == 0) return -EBUSY;
    s->_value--;
    return 0;
}

int urt_sem_release(urt_sem *s)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!s) return -EINVAL;
    /* Permits handed to waiters are not in _value, so this is asyncio's
     * test: the count may not pass the bound, whoever holds what. */
    if (s->_bound >= 0 ? s->_value >= s->_bound : s->_value == INT_MAX) return -EOVERFLOW;
    if (foreign_waiters(loop, &s->_waiters, &s->_loop)) return -EXDEV;
    struct urt__parked *p = first_waiter(&s->_waiters);
    if (p)
        urt__wake(loop, p, 0);
    else
        s->_value++;
    return 0;
}

int urt_sem_locked(const urt_sem *s)
{
    if (!s) return -EINVAL;
    return s->_value == 0;
}

int urt_sem_value(const urt_sem *s)
{
    if (!s) return -EINVAL;
    return s->_value;
}

/* ---- Condition -------------------------------------------------------- */

int urt_cond_init(urt_cond *c, urt_lock *lock)
{
    if (!c) return -EINVAL;
    list_init(&c->_waiters, "Condition.wait");
    c->_loop = NULL;
    urt_lock_init(&c->_own);
    c->_lock = lock ? lock : &c->_own;
    return 0;
}

/* c's lock, or NULL, for the lock calls to report on (they check the loop
 * first, as every call does). */
static inline urt_lock *lock_of(const urt_cond *c)
{
    return c ? c->_lock : NULL;
}

int urt_cond_acquire(urt_cond *c)
{
    return urt_lock_acquire(lock_of(c));
}

int urt_cond_release(urt_cond *c)
{
    return urt_lock_release(lock_of(c));
}

int urt_cond_locked(const urt_cond *c)
{
    return urt_lock_locked(lock_of(c));
}

/* Wakes up to n parked waiters of c, the first first. */
static void notify(struct urt_loop *loop, urt_cond *c, size_t n)
{
    for (struct urt__parked *p; n && (p = first_waiter(&c->_waiters)); n--)
        urt__wake(loop, p, 0);
}

/* Takes l back for a waiter of c, through any number of cancellations
 * (asyncio's wait re-acquires in a loop that swallows CancelledError):
 * each one puts the task at the back of the lock's queue, as it does in
 * asyncio.  Returns 0, or the code of the last cancellation seen. */
static int reacquire(struct urt_loop *loop, urt_lock *l)
{
    int err = 0;
    while (l->_locked) {
        if (!has_waiters(&l->_waiters)) l->_loop = loop;
        int res = park(loop, &l->_waiters, 0);
        if (res == 0) return err; /* handed the lock */
        err = res;
    }
    l->_locked = 1;
    return err;
}

/*
 * Condition.wait with an absolute deadline (0: none), for a caller that has
 * checked the loop, c and that the lock is held.
 *
 * A notification wakes the parked task through urt__wake, so park's 0 says
 * that this task took one.  If a cancellation or timeout reaches it
 * after that and before it has the lock back, it returns the code and
 * gives the notification to the next waiter (CPython 3.13 notifies one
 * after any error in wait, notified or not, which may wake a task for
 * nothing; here only a notification really taken is passed on).
 */
static int cond_wait(struct urt_loop *loop, urt_cond *c, uint64_t deadline)
{
    urt_lock *l = c->_lock;
    int err = join(loop, &c->_waiters, &c->_loop);
    if (err) return err;
    if (foreign_waiters(loop, &l->_waiters, &l->_loop)) return -EXDEV;
    struct urt__task *self = loop->current;
    /* Cancelled before waiting: the lock is kept rather than released and
     * taken back, which no other task could tell apart from a wait whose
     * cancellation came at once, since none ran in between. */
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);

    lock_pass(loop, l);
    int res = park(loop, &c->_waiters, deadline);
    err = reacquire(loop, l);
    if (res != 0) return err ? err : res;
    if (!err && !self->cancel_pending) return 0;
    notify(loop, c, 1);
    /* Cancelled after the notification, before the task resumed: delivered
     * now, with the lock held, as the last suspension point of wait. */
    return err ? err : urt__deliver_pending_cancel(loop, self);
}

/* The checks shared by wait, wait_for and notify.  Returns 0 to go on. */
static int cond_check(struct urt_loop *loop, const urt_cond *c)
{
    if (!loop) return URT_ENOLOOP;
    if (!c) return -EINVAL;
    if (!c->_lock->_locked) return -EPERM;
    return 0;
}

int urt_cond_wait_timeout(urt_cond *c, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    int err = cond_check(loop, c);
    if (err) return err;
    if (timeout_ns == 0) return URT_ETIMEDOUT;
    return cond_wait(loop, c, urt__deadline_of(timeout_ns));
}

int urt_cond_wait(urt_cond *c)
{
    return urt_cond_wait_timeout(c, URT_NO_TIMEOUT);
}

int urt_cond_wait_for_timeout(urt_cond *c, urt_pred_fn pred, void *arg, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    int err = cond_check(loop, c);
    if (err) return err;
    if (!pred) return -EINVAL;
    uint64_t deadline = urt__deadline_of(timeout_ns);
    for (;;) {
        int ok = pred(arg);
        if (ok) return ok;
        if (timeout_ns == 0) return URT_ETIMEDOUT;
        err = cond_wait(loop, c, deadline);
        if (err) return err;
    }
}

int urt_cond_wait_for(urt_cond *c, urt_pred_fn pred, void *arg)
{
    return urt_cond_wait_for_timeout(c, pred, arg, URT_NO_TIMEOUT);
}

int urt_cond_notify(urt_cond *c, size_t n)
{
    struct urt_loop *loop = urt__running();
    int err = cond_check(loop, c);
    if (err) return err;
    if (foreign_waiters(loop, &c->_waiters, &c->_loop)) return -EXDEV;
    notify(loop, c, n);
    return 0;
}

int urt_cond_notify_all(urt_cond *c)
{
    return urt_cond_notify(c, SIZE_MAX);
}
