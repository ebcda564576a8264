/*
 * Event, Lock, Semaphore, BoundedSemaphore, Condition (SEMANTICS 4, and 6
 * for bad input): exact wake-up orders, FIFO handoff without barging,
 * timeouts, cancellation of every waiting call, the lost-wakeup cases
 * (a cancelled waiter never swallows what was meant for another), every
 * documented error code, and no SQE nor suspension on the uncontended
 * paths.
 *
 * Tasks record what they see with trace(); each test compares the whole
 * trace after urt_run() returns.  Checks inside tasks use EXPECT (never
 * cmocka's asserts, which would longjmp across fiber stacks).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define NO_WAITERS(prim) ((prim)._waiters._head == NULL && (prim)._waiters._tail == NULL)

/* trace() of two calls' results, made in the order written (a call's
 * arguments are evaluated in no set order). */
#define TRACE2(fmt, first, second)           \
    do {                                     \
        int first_ = (first);                \
        int second_ = (second);              \
        trace(fmt, first_, second_);         \
    } while (0)

/* Records "<name> run". */
static intptr_t rec(void *arg)
{
    trace("%s run", (const char *)arg);
    return 0;
}

/* ---- actors: tasks that use one primitive and say what they saw ---------- */

struct actor {
    const char *name;
    urt_event *e;
    urt_lock *l;
    urt_sem *s;
    urt_cond *c;
    int pre;             /* yields before asking */
    int hold;            /* yields while holding (lock, permit) */
    bool trace_hold;     /* record what those yields return */
    uint64_t timeout_ms; /* 0: wait without a timeout */
    int *inside;         /* semaphore: tasks holding a permit now ... */
    int *most_inside;    /* ... and the most there ever were */
};

static uint64_t timeout_of(const struct actor *a)
{
    return a->timeout_ms ? spaced_ms(a->timeout_ms) * URT_NS_PER_MS : URT_NO_TIMEOUT;
}

static void hold(const struct actor *a)
{
    for (int i = 0; i < a->hold; i++) {
        int rc = urt_yield();
        if (a->trace_hold)
            trace("%s yield %d", a->name, rc);
        else
            EXPECT_EQ(rc, 0);
    }
}

/* "<name> wait", then "<name> woke <rc>". */
static intptr_t event_waiter(void *arg)
{
    struct actor *a = arg;
    yields(a->pre);
    trace("%s wait", a->name);
    int rc = urt_event_wait_timeout(a->e, timeout_of(a));
    trace("%s woke %d", a->name, rc);
    hold(a);
    return 0;
}

/* "<name> acquire", "<name> got <rc>", and if it got the lock, holds it and
 * "<name> release <rc>". */
static intptr_t lock_user(void *arg)
{
    struct actor *a = arg;
    yields(a->pre);
    trace("%s acquire", a->name);
    int rc = urt_lock_acquire_timeout(a->l, timeout_of(a));
    trace("%s got %d", a->name, rc);
    if (rc) return rc;
    EXPECT_EQ(urt_lock_locked(a->l), 1);
    hold(a);
    trace("%s release %d", a->name, urt_lock_release(a->l));
    return 0;
}

/* "<name> acq", "<name> in" once it has a permit (or "<name> got <rc>"
 * when it failed), "<name> out" before it gives the permit back. */
static intptr_t sem_user(void *arg)
{
    struct actor *a = arg;
    yields(a->pre);
    trace("%s acq", a->name);
    int rc = urt_sem_acquire_timeout(a->s, timeout_of(a));
    if (rc) {
        trace("%s got %d", a->name, rc);
        return rc;
    }
    trace("%s in", a->name);
    if (a->inside && ++*a->inside > *a->most_inside) *a->most_inside = *a->inside;
    hold(a);
    trace("%s out", a->name);
    if (a->inside) --*a->inside;
    EXPECT_EQ(urt_sem_release(a->s), 0);
    return 0;
}

/* Takes the condition's lock, "<name> wait", waits, "<name> woke <rc>
 * locked <0|1>", releases. */
static intptr_t cond_waiter(void *arg)
{
    struct actor *a = arg;
    yields(a->pre);
    EXPECT_EQ(urt_cond_acquire(a->c), 0);
    trace("%s wait", a->name);
    int rc = urt_cond_wait_timeout(a->c, timeout_of(a));
    trace("%s woke %d locked %d", a->name, rc, urt_cond_locked(a->c));
    hold(a);
    EXPECT_EQ(urt_cond_release(a->c), 0);
    return 0;
}

static void spawn(urt_task *t, urt_fn fn, struct actor *a)
{
    EXPECT_EQ(urt_task_create(t, fn, a), 0);
}

static void await_all(urt_task *t, size_t n)
{
    for (size_t i = 0; i < n; i++) EXPECT_EQ(await_within(t[i], 5000, NULL), 0);
}

/* ---- Event --------------------------------------------------------------- */

static intptr_t main_event_set_first(void *arg)
{
    (void)arg;
    urt_event e;
    EXPECT_EQ(urt_event_init(&e), 0);
    EXPECT_EQ(urt_event_is_set(&e), 0);
    urt_task x;
    EXPECT_EQ(urt_task_create(&x, rec, "X"), 0);
    EXPECT_EQ(urt_event_set(&e), 0);
    EXPECT_EQ(urt_event_set(&e), 0); /* setting a set event does nothing */
    EXPECT_EQ(urt_event_is_set(&e), 1);
    trace("wait %d", urt_event_wait(&e));
    trace("wait_timeout 0: %d", urt_event_wait_timeout(&e, 0));
    /* A pending cancellation is not delivered by a wait that need not
     * suspend, as with await of a finished task: the next yield gets it. */
    EXPECT_EQ(urt_task_cancel(urt_task_current()), 1);
    trace("wait cancel pending %d", urt_event_wait(&e));
    trace("yield %d", urt_yield());
    EXPECT_EQ(await_within(x, 5000, NULL), 0);
    return 0;
}

/* Event.wait on a set event returns 0 at once without suspending: X,
 * created before, runs only at the yield. */
static void test_event_wait_on_set_event_returns_at_once_without_suspending(void **state)
{
    (void)state;
    run_main(main_event_set_first, NULL);
    assert_trace("wait 0", "wait_timeout 0: 0", "wait cancel pending 0", "X run", "yield -4001");
}

static intptr_t main_event_wakes_all(void *arg)
{
    (void)arg;
    urt_event e;
    urt_event_init(&e);
    /* They begin to wait in the order b, c, a. */
    struct actor a[3] = {{.name = "a", .e = &e, .pre = 2},
                         {.name = "b", .e = &e, .pre = 0},
                         {.name = "c", .e = &e, .pre = 1}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) spawn(&t[i], event_waiter, &a[i]);
    yields(4);
    trace("set %d", urt_event_set(&e));
    /* Cleared before they run: they were woken, they return 0. */
    TRACE2("clear %d is_set %d", urt_event_clear(&e), urt_event_is_set(&e));
    EXPECT(NO_WAITERS(e));
    await_all(t, 3);
    return 0;
}

/* Event.set wakes every waiter, in the order they began to wait; they run
 * after the setter suspends, and return 0 though the event was cleared
 * again meanwhile. */
static void test_event_set_wakes_every_waiter_in_wait_order(void **state)
{
    (void)state;
    run_main(main_event_wakes_all, NULL);
    assert_trace("b wait", "c wait", "a wait", "set 0", "clear 0 is_set 0", "b woke 0", "c woke 0",
                 "a woke 0");
}

static intptr_t main_event_clear(void *arg)
{
    (void)arg;
    urt_event e;
    urt_event_init(&e);
    urt_event_set(&e);
    urt_event_clear(&e);
    EXPECT_EQ(urt_event_is_set(&e), 0);
    struct actor d = {.name = "d", .e = &e};
    urt_task t;
    spawn(&t, event_waiter, &d);
    yields(3);
    trace("d done %d", urt_task_done(t));
    trace("set %d", urt_event_set(&e));
    await_all(&t, 1);
    return 0;
}

/* After Event.clear, wait waits again until the next set. */
static void test_event_clear_makes_wait_wait_for_next_set(void **state)
{
    (void)state;
    run_main(main_event_clear, NULL);
    assert_trace("d wait", "d done 0", "set 0", "d woke 0");
}

static intptr_t setter_after_10ms(void *arg)
{
    urt_sleep_ms(spaced_ms(10));
    trace("setter set %d", urt_event_set(arg));
    return 0;
}

static intptr_t main_event_timeout(void *arg)
{
    (void)arg;
    urt_event e;
    urt_event_init(&e);
    urt_task x;
    EXPECT_EQ(urt_task_create(&x, rec, "X"), 0);
    trace("timeout 0: %d", urt_event_wait_timeout(&e, 0)); /* X has not run */
    uint64_t t0 = urt_now(), ms = spaced_ms(20);
    int rc = urt_event_wait_timeout(&e, ms * URT_NS_PER_MS);
    uint64_t took = urt_now() - t0;
    trace("timeout %d", rc);
    EXPECT(took >= ms * URT_NS_PER_MS);
    EXPECT(took < 5 * URT_NS_PER_S);
    EXPECT(NO_WAITERS(e));
    /* Set before the deadline: 0, long before it. */
    urt_task s;
    EXPECT_EQ(urt_task_create(&s, setter_after_10ms, &e), 0);
    t0 = urt_now();
    trace("set in time %d", urt_event_wait_timeout(&e, 10 * URT_NS_PER_S));
    EXPECT(urt_now() - t0 < 5 * URT_NS_PER_S);
    EXPECT_EQ(await_within(s, 5000, NULL), 0);
    EXPECT_EQ(await_within(x, 5000, NULL), 0);
    return 0;
}

/* Event.wait_timeout: 0 gives URT_ETIMEDOUT at once without suspending;
 * otherwise never before the timeout, and the waiter leaves the list; a
 * set in time ends it with 0. */
static void test_event_wait_timeout_expires_never_early(void **state)
{
    (void)state;
    run_main(main_event_timeout, NULL);
    assert_trace("timeout 0: -4002", "X run", "timeout -4002", "setter set 0", "set in time 0");
}

static intptr_t main_event_cancel(void *arg)
{
    (void)arg;
    urt_event e;
    urt_event_init(&e);
    struct actor a[3] = {{.name = "a", .e = &e},
                         {.name = "b", .e = &e},
                         {.name = "c", .e = &e, .hold = 1, .trace_hold = true}};
    urt_task t[3];
    for (int i = 0; i < 2; i++) spawn(&t[i], event_waiter, &a[i]);
    yields(2);
    trace("cancel a %d", urt_task_cancel(t[0]));
    yields(2);
    trace("set %d", urt_event_set(&e));
    await_all(t, 2);
    /* Woken and cancelled in the same turn: the wake-up wins, the
     * cancellation comes at c's next suspension point. */
    urt_event_clear(&e);
    spawn(&t[2], event_waiter, &a[2]);
    yields(2);
    urt_event_set(&e);
    trace("cancel c %d", urt_task_cancel(t[2]));
    await_all(&t[2], 1);
    return 0;
}

/* Cancelling a task in Event.wait: it gets URT_ECANCELED and the set goes
 * to the others; woken then cancelled before it ran, it gets 0. */
static void test_event_wait_cancelled(void **state)
{
    (void)state;
    run_main(main_event_cancel, NULL);
    assert_trace("a wait", "b wait", "cancel a 1", "a woke -4001", "set 0", "b woke 0", "c wait",
                 "cancel c 1", "c woke 0", "c yield -4001");
}

/* ---- Lock ---------------------------------------------------------------- */

static intptr_t main_lock_fifo(void *arg)
{
    (void)arg;
    urt_lock l;
    EXPECT_EQ(urt_lock_init(&l), 0);
    EXPECT_EQ(urt_lock_acquire(&l), 0);
    /* They ask in the order b, c, a, and hold the lock across yields. */
    struct actor a[3] = {{.name = "a", .l = &l, .pre = 2, .hold = 2},
                         {.name = "b", .l = &l, .pre = 0, .hold = 2},
                         {.name = "c", .l = &l, .pre = 1, .hold = 2}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) spawn(&t[i], lock_user, &a[i]);
    yields(4);
    trace("release %d", urt_lock_release(&l));
    await_all(t, 3);
    EXPECT_EQ(urt_lock_locked(&l), 0);
    return 0;
}

/* Lock is FIFO: three waiters get it in the order they asked, each in turn
 * holding it alone across suspensions. */
static void test_lock_fifo_order_among_three_waiters(void **state)
{
    (void)state;
    run_main(main_lock_fifo, NULL);
    assert_trace("b acquire", "c acquire", "a acquire", "release 0", "b got 0", "b release 0",
                 "c got 0", "c release 0", "a got 0", "a release 0");
}

static intptr_t main_lock_handoff(void *arg)
{
    (void)arg;
    urt_lock l;
    urt_lock_init(&l);
    EXPECT_EQ(urt_lock_acquire(&l), 0);
    struct actor w = {.name = "W", .l = &l}, b = {.name = "B", .l = &l};
    urt_task t[2];
    spawn(&t[0], lock_user, &w);
    yields(1);
    /* W is handed the lock: it stays locked, and nobody can take it
     * before W has run. */
    TRACE2("release %d locked %d", urt_lock_release(&l), urt_lock_locked(&l));
    trace("try %d", urt_lock_try_acquire(&l));
    trace("timeout 0: %d", urt_lock_acquire_timeout(&l, 0));
    spawn(&t[1], lock_user, &b);
    trace("main acquire");
    int rc = urt_lock_acquire(&l);
    trace("main got %d", rc);
    trace("main release %d", urt_lock_release(&l));
    await_all(t, 2);
    return 0;
}

/* Lock.release hands the lock to the first waiter: neither the releaser
 * (try_acquire, acquire with timeout 0, acquire) nor a task that asks
 * after the release can take it first. */
static void test_lock_release_hands_lock_to_waiter_without_barging(void **state)
{
    (void)state;
    run_main(main_lock_handoff, NULL);
    assert_trace("W acquire", "release 0 locked 1", "try -16", "timeout 0: -4002", "main acquire",
                 "W got 0", "W release 0", "B acquire", "main got 0", "main release 0", "B got 0",
                 "B release 0");
}

static intptr_t main_lock_lost_wakeup(void *arg)
{
    (void)arg;
    urt_lock l;
    urt_lock_init(&l);
    urt_task t[2];

    /* B cancelled while it waits, then the release: C gets the lock. */
    EXPECT_EQ(urt_lock_acquire(&l), 0);
    struct actor b = {.name = "B", .l = &l}, c = {.name = "C", .l = &l};
    spawn(&t[0], lock_user, &b);
    spawn(&t[1], lock_user, &c);
    yields(2);
    trace("cancel B %d", urt_task_cancel(t[0]));
    trace("release %d", urt_lock_release(&l));
    EXPECT_EQ(await_within(t[0], 5000, NULL), URT_ECANCELED);
    EXPECT_EQ(await_within(t[1], 5000, NULL), 0);
    EXPECT_EQ(urt_lock_locked(&l), 0);

    /* The release first, then B cancelled before it ran: B owns the lock
     * (the cancellation comes at its next yield), releases it, C gets it. */
    EXPECT_EQ(urt_lock_acquire(&l), 0);
    struct actor b2 = {.name = "B2", .l = &l, .hold = 1, .trace_hold = true};
    struct actor c2 = {.name = "C2", .l = &l};
    spawn(&t[0], lock_user, &b2);
    spawn(&t[1], lock_user, &c2);
    yields(2);
    trace("release %d", urt_lock_release(&l));
    trace("cancel B2 %d", urt_task_cancel(t[0]));
    await_all(t, 2);
    EXPECT_EQ(urt_lock_locked(&l), 0);
    EXPECT(NO_WAITERS(l));
    return 0;
}

/* Lost wake-up: lock held by main, B and C wait.  B cancelled then the
 * release: C gets the lock.  The release then B cancelled: B has the lock
 * and passes it to C when it releases.  Either way C is not left waiting. */
static void test_lock_cancelled_waiter_never_swallows_the_release(void **state)
{
    (void)state;
    run_main(main_lock_lost_wakeup, NULL);
    assert_trace("B acquire", "C acquire", "cancel B 1", "release 0", "B got -4001", "C got 0",
                 "C release 0", "B2 acquire", "C2 acquire", "release 0", "cancel B2 1", "B2 got 0",
                 "B2 yield -4001", "B2 release 0", "C2 got 0", "C2 release 0");
}

static intptr_t main_lock_timeout(void *arg)
{
    (void)arg;
    urt_lock l;
    urt_lock_init(&l);
    EXPECT_EQ(urt_lock_acquire(&l), 0);
    struct actor w = {.name = "W", .l = &l, .timeout_ms = 20};
    urt_task t;
    spawn(&t, lock_user, &w);
    uint64_t t0 = urt_now();
    EXPECT_EQ(await_within(t, 5000, NULL), URT_ETIMEDOUT);
    EXPECT(urt_now() - t0 >= spaced_ms(20) * URT_NS_PER_MS);
    EXPECT(NO_WAITERS(l));
    /* Nobody waits any more: the release unlocks. */
    TRACE2("release %d locked %d", urt_lock_release(&l), urt_lock_locked(&l));
    return 0;
}

/* Lock.acquire_timeout on a held lock gives URT_ETIMEDOUT, never before the
 * timeout, and leaves the queue. */
static void test_lock_acquire_timeout_expires_and_leaves_the_queue(void **state)
{
    (void)state;
    run_main(main_lock_timeout, NULL);
    assert_trace("W acquire", "W got -4002", "release 0 locked 0");
}

static intptr_t releaser(void *arg)
{
    trace("X release %d", urt_lock_release(arg));
    return 0;
}

static intptr_t main_lock_errors(void *arg)
{
    (void)arg;
    urt_lock l;
    urt_lock_init(&l);
    trace("release unlocked %d", urt_lock_release(&l));
    EXPECT_EQ(urt_lock_try_acquire(&l), 0);
    trace("try held %d", urt_lock_try_acquire(&l));
    /* asyncio's Lock has no owner: another task may release it. */
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, releaser, &l), 0);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    trace("locked %d", urt_lock_locked(&l));
    trace("release again %d", urt_lock_release(&l));
    return 0;
}

/* Releasing an unlocked Lock is -EPERM (asyncio's RuntimeError); any task
 * may release a held one; try_acquire of a held one is -EBUSY. */
static void test_lock_release_unlocked_is_eperm_and_any_task_may_release(void **state)
{
    (void)state;
    run_main(main_lock_errors, NULL);
    assert_trace("release unlocked -1", "try held -16", "X release 0", "locked 0",
                 "release again -1");
}

/* ---- Semaphore ----------------------------------------------------------- */

static intptr_t main_sem_five(void *arg)
{
    (void)arg;
    urt_sem s;
    EXPECT_EQ(urt_sem_init(&s, 2), 0);
    int inside = 0, most = 0;
    struct actor a[5];
    static const char *names[] = {"0", "1", "2", "3", "4"};
    urt_task t[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (struct actor){.name = names[i], .s = &s, .hold = 2, .inside = &inside,
                              .most_inside = &most};
        spawn(&t[i], sem_user, &a[i]);
    }
    EXPECT_EQ(urt_gather(t, 5, 0, NULL, NULL), 0);
    for (int i = 0; i < 5; i++) urt_task_release(t[i]);
    EXPECT_EQ(most, 2);
    EXPECT_EQ(urt_sem_value(&s), 2);
    EXPECT_EQ(urt_sem_locked(&s), 0);
    return 0;
}

/* Semaphore(2) and five tasks: two inside at a time, never more; each
 * release hands its permit to the longest waiter. */
static void test_sem_two_permits_five_tasks_in_exact_order(void **state)
{
    (void)state;
    run_main(main_sem_five, NULL);
    assert_trace("0 acq", "0 in", "1 acq", "1 in", "2 acq", "3 acq", "4 acq", "0 out", "1 out",
                 "2 in", "3 in", "2 out", "3 out", "4 in", "4 out");
}

static intptr_t main_sem_bounded(void *arg)
{
    (void)arg;
    urt_sem s;
    EXPECT_EQ(urt_sem_init_bounded(&s, 1), 0);
    TRACE2("over %d value %d", urt_sem_release(&s), urt_sem_value(&s));
    EXPECT_EQ(urt_sem_acquire(&s), 0);
    trace("locked %d", urt_sem_locked(&s));
    trace("release %d", urt_sem_release(&s));
    TRACE2("over %d value %d", urt_sem_release(&s), urt_sem_value(&s));
    /* BoundedSemaphore(0) refuses every release. */
    EXPECT_EQ(urt_sem_init_bounded(&s, 0), 0);
    trace("bound 0: %d", urt_sem_release(&s));
    /* An unbounded one goes above its initial value, up to INT_MAX. */
    EXPECT_EQ(urt_sem_init(&s, 1), 0);
    TRACE2("unbounded %d value %d", urt_sem_release(&s), urt_sem_value(&s));
    EXPECT_EQ(urt_sem_init(&s, INT_MAX), 0);
    trace("at INT_MAX %d", urt_sem_release(&s));
    TRACE2("negative %d %d", urt_sem_init(&s, -1), urt_sem_init_bounded(&s, -1));
    return 0;
}

/* BoundedSemaphore: a release above the initial value is -EOVERFLOW
 * (asyncio's ValueError) and changes nothing; a Semaphore only stops at
 * INT_MAX; a negative initial value is -EINVAL. */
static void test_bounded_sem_over_release_is_eoverflow(void **state)
{
    (void)state;
    run_main(main_sem_bounded, NULL);
    assert_trace("over -75 value 1", "locked 1", "release 0", "over -75 value 1", "bound 0: -75",
                 "unbounded 0 value 2", "at INT_MAX -75", "negative -22 -22");
}

static intptr_t main_sem_lost_wakeup(void *arg)
{
    (void)arg;
    urt_sem s;
    urt_sem_init(&s, 1);
    urt_task t[2];

    /* B cancelled while it waits, then the release: C gets the permit. */
    EXPECT_EQ(urt_sem_acquire(&s), 0);
    struct actor b = {.name = "B", .s = &s}, c = {.name = "C", .s = &s};
    spawn(&t[0], sem_user, &b);
    spawn(&t[1], sem_user, &c);
    yields(2);
    trace("cancel B %d", urt_task_cancel(t[0]));
    trace("release %d", urt_sem_release(&s));
    EXPECT_EQ(await_within(t[0], 5000, NULL), URT_ECANCELED);
    EXPECT_EQ(await_within(t[1], 5000, NULL), 0);
    EXPECT_EQ(urt_sem_value(&s), 1);

    /* The release first, then B cancelled before it ran: B has the permit
     * and gives it back; C gets it. */
    EXPECT_EQ(urt_sem_acquire(&s), 0);
    struct actor b2 = {.name = "B2", .s = &s, .hold = 1, .trace_hold = true};
    struct actor c2 = {.name = "C2", .s = &s};
    spawn(&t[0], sem_user, &b2);
    spawn(&t[1], sem_user, &c2);
    yields(2);
    TRACE2("release %d value %d", urt_sem_release(&s), urt_sem_value(&s));
    trace("cancel B2 %d", urt_task_cancel(t[0]));
    await_all(t, 2);
    EXPECT_EQ(urt_sem_value(&s), 1);
    EXPECT(NO_WAITERS(s));
    return 0;
}

/* Lost wake-up, Semaphore(1): as for the Lock, a cancelled waiter never
 * takes the permit meant for C. */
static void test_sem_cancelled_waiter_never_swallows_the_release(void **state)
{
    (void)state;
    run_main(main_sem_lost_wakeup, NULL);
    assert_trace("B acq", "C acq", "cancel B 1", "release 0", "B got -4001", "C in", "C out",
                 "B2 acq", "C2 acq", "release 0 value 0", "cancel B2 1", "B2 in", "B2 yield -4001",
                 "B2 out", "C2 in", "C2 out");
}

static intptr_t main_sem_handoff_timeout(void *arg)
{
    (void)arg;
    urt_sem s;
    urt_sem_init(&s, 0);
    TRACE2("try %d locked %d", urt_sem_try_acquire(&s), urt_sem_locked(&s));
    trace("timeout 0: %d", urt_sem_acquire_timeout(&s, 0));
    uint64_t t0 = urt_now(), ms = spaced_ms(20);
    trace("timeout %d", urt_sem_acquire_timeout(&s, ms * URT_NS_PER_MS));
    EXPECT(urt_now() - t0 >= ms * URT_NS_PER_MS);
    EXPECT(NO_WAITERS(s));
    struct actor w = {.name = "W", .s = &s};
    urt_task t;
    spawn(&t, sem_user, &w);
    yields(1);
    /* The permit goes to W, not to the count: nobody can take it first. */
    TRACE2("release %d value %d", urt_sem_release(&s), urt_sem_value(&s));
    trace("try %d", urt_sem_try_acquire(&s));
    await_all(&t, 1);
    trace("value %d", urt_sem_value(&s));
    return 0;
}

/* Semaphore: try_acquire with no permit is -EBUSY; acquire_timeout gives
 * URT_ETIMEDOUT (at once for 0, never early otherwise); release with a
 * waiter hands it the permit without passing it through the count. */
static void test_sem_timeout_and_release_hands_permit_to_waiter(void **state)
{
    (void)state;
    run_main(main_sem_handoff_timeout, NULL);
    assert_trace("try -16 locked 1", "timeout 0: -4002", "timeout -4002", "W acq",
                 "release 0 value 0", "try -16", "W in", "W out", "value 1");
}

/* ---- Condition ----------------------------------------------------------- */

static intptr_t main_cond_notify_n(void *arg)
{
    (void)arg;
    urt_cond c;
    EXPECT_EQ(urt_cond_init(&c, NULL), 0);
    struct actor a[3] = {{.name = "a", .c = &c, .pre = 1},
                         {.name = "b", .c = &c, .pre = 2},
                         {.name = "c", .c = &c, .pre = 0}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) spawn(&t[i], cond_waiter, &a[i]);
    yields(4);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("notify 1: %d", urt_cond_notify(&c, 1));
    EXPECT_EQ(urt_cond_release(&c), 0);
    yields(3);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("notify 5: %d", urt_cond_notify(&c, 5)); /* more than wait */
    trace("notify nobody: %d", urt_cond_notify(&c, 1));
    EXPECT_EQ(urt_cond_release(&c), 0);
    await_all(t, 3);
    return 0;
}

/* Condition.notify(n) wakes the n longest-waiting tasks, in the order they
 * began to wait, and no other; each returns 0 holding the lock. */
static void test_cond_notify_n_wakes_longest_waiting_in_order(void **state)
{
    (void)state;
    run_main(main_cond_notify_n, NULL);
    assert_trace("c wait", "a wait", "b wait", "notify 1: 0", "c woke 0 locked 1", "notify 5: 0",
                 "notify nobody: 0", "a woke 0 locked 1", "b woke 0 locked 1");
}

static intptr_t main_cond_notify_all(void *arg)
{
    (void)arg;
    urt_lock l;
    urt_lock_init(&l);
    urt_cond c;
    EXPECT_EQ(urt_cond_init(&c, &l), 0); /* over a lock of the caller's */
    struct actor a[3] = {{.name = "a", .c = &c, .hold = 1},
                         {.name = "b", .c = &c, .hold = 1},
                         {.name = "c", .c = &c, .hold = 1}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) spawn(&t[i], cond_waiter, &a[i]);
    yields(3);
    EXPECT_EQ(urt_lock_acquire(&l), 0);
    EXPECT_EQ(urt_cond_locked(&c), 1);
    trace("notify_all %d", urt_cond_notify_all(&c));
    /* They are woken but cannot return before they have the lock. */
    yields(3);
    trace("release %d", urt_lock_release(&l));
    await_all(t, 3);
    EXPECT(NO_WAITERS(c));
    EXPECT(NO_WAITERS(l));
    return 0;
}

/* Condition.notify_all wakes every waiter; each returns only once it holds
 * the lock again, one after another in the order they waited. */
static void test_cond_notify_all_wakes_all_in_order_each_with_the_lock(void **state)
{
    (void)state;
    run_main(main_cond_notify_all, NULL);
    assert_trace("a wait", "b wait", "c wait", "notify_all 0", "release 0", "a woke 0 locked 1",
                 "b woke 0 locked 1", "c woke 0 locked 1");
}

struct counter {
    urt_cond *c;
    int n, need;
};

static int enough(void *arg)
{
    struct counter *k = arg;
    trace("pred %d locked %d", k->n, urt_cond_locked(k->c));
    return k->n >= k->need ? k->n : 0;
}

static int fails(void *arg)
{
    (void)arg;
    return -EIO;
}

static intptr_t consumer(void *arg)
{
    struct counter *k = arg;
    EXPECT_EQ(urt_cond_acquire(k->c), 0);
    int rc = urt_cond_wait_for(k->c, enough, k);
    trace("consumer %d locked %d", rc, urt_cond_locked(k->c));
    EXPECT_EQ(urt_cond_release(k->c), 0);
    return 0;
}

static intptr_t main_cond_wait_for(void *arg)
{
    (void)arg;
    urt_cond c;
    urt_cond_init(&c, NULL);
    struct counter k = {.c = &c, .need = 3};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, consumer, &k), 0);
    for (int i = 0; i < 4; i++) {
        yields(2);
        EXPECT_EQ(urt_cond_acquire(&c), 0);
        k.n++;
        EXPECT_EQ(urt_cond_notify_all(&c), 0);
        EXPECT_EQ(urt_cond_release(&c), 0);
    }
    EXPECT_EQ(await_within(t, 5000, NULL), 0);

    /* True at once: no suspension (X runs only at the yield). */
    urt_task x;
    EXPECT_EQ(urt_task_create(&x, rec, "X"), 0);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("at once %d", urt_cond_wait_for(&c, enough, &k));
    trace("fails %d", urt_cond_wait_for(&c, fails, NULL));
    k.need = 100;
    uint64_t t0 = urt_now(), ms = spaced_ms(20);
    trace("timeout %d", urt_cond_wait_for_timeout(&c, enough, &k, ms * URT_NS_PER_MS));
    EXPECT(urt_now() - t0 >= ms * URT_NS_PER_MS);
    trace("timeout 0: %d", urt_cond_wait_for_timeout(&c, enough, &k, 0));
    EXPECT_EQ(urt_cond_locked(&c), 1);
    EXPECT_EQ(urt_cond_release(&c), 0);
    EXPECT_EQ(await_within(x, 5000, NULL), 0);
    return 0;
}

/* Condition.wait_for checks the predicate, with the lock held, before the
 * first wait and after each notification, and returns its value once true;
 * true at once returns without suspending; a failing predicate's error is
 * returned; the timeout covers the whole wait. */
static void test_cond_wait_for_checks_predicate_after_each_notify(void **state)
{
    (void)state;
    run_main(main_cond_wait_for, NULL);
    assert_trace("pred 0 locked 1", "pred 1 locked 1", "pred 2 locked 1", "pred 3 locked 1",
                 "consumer 3 locked 1", "pred 4 locked 1", "at once 4", "fails -5",
                 "pred 4 locked 1", "X run", "timeout -4002", "pred 4 locked 1",
                 "timeout 0: -4002");
}

static intptr_t main_cond_cancel_reacquires(void *arg)
{
    (void)arg;
    urt_cond c;
    urt_cond_init(&c, NULL);
    struct actor w = {.name = "W", .c = &c, .hold = 1, .trace_hold = true};
    urt_task t;
    spawn(&t, cond_waiter, &w);
    yields(1);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("cancel %d", urt_task_cancel(t));
    yields(3); /* W, woken, now waits for the lock */
    trace("cancel again %d", urt_task_cancel(t));
    yields(3); /* ... and keeps waiting for it */
    trace("release %d", urt_cond_release(&c));
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT_EQ(urt_cond_locked(&c), 0);
    return 0;
}

/* A task cancelled in Condition.wait re-acquires the lock before it
 * returns URT_ECANCELED, through a second cancellation too (asyncio); both
 * are used up, its next yield returns 0. */
static void test_cond_wait_reacquires_lock_when_cancelled(void **state)
{
    (void)state;
    run_main(main_cond_cancel_reacquires, NULL);
    assert_trace("W wait", "cancel 1", "cancel again 1", "release 0", "W woke -4001 locked 1",
                 "W yield 0");
}

static intptr_t main_cond_timeout_reacquires(void *arg)
{
    (void)arg;
    urt_cond c;
    urt_cond_init(&c, NULL);
    struct actor w = {.name = "W", .c = &c, .timeout_ms = 20};
    urt_task t;
    uint64_t t0 = urt_now();
    spawn(&t, cond_waiter, &w);
    yields(1);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(60)), 0); /* W's timeout passes meanwhile */
    trace("release %d", urt_cond_release(&c));
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT(urt_now() - t0 >= spaced_ms(60) * URT_NS_PER_MS);
    /* With timeout 0: nothing waits, the lock is never let go. */
    urt_task x;
    EXPECT_EQ(urt_task_create(&x, rec, "X"), 0);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    TRACE2("timeout 0: %d locked %d", urt_cond_wait_timeout(&c, 0), urt_cond_locked(&c));
    EXPECT_EQ(urt_cond_release(&c), 0);
    EXPECT_EQ(await_within(x, 5000, NULL), 0);
    return 0;
}

/* Condition.wait_timeout: when the timeout passes the task still waits
 * for the lock, then returns URT_ETIMEDOUT holding it. */
static void test_cond_wait_reacquires_lock_when_timed_out(void **state)
{
    (void)state;
    run_main(main_cond_timeout_reacquires, NULL);
    assert_trace("W wait", "release 0", "W woke -4002 locked 1", "timeout 0: -4002 locked 1",
                 "X run");
}

static intptr_t main_cond_lost_wakeup(void *arg)
{
    (void)arg;
    urt_cond c;
    urt_cond_init(&c, NULL);
    urt_task t[3];

    /* A notified, then cancelled before it ran. */
    struct actor a = {.name = "A", .c = &c}, b = {.name = "B", .c = &c};
    spawn(&t[0], cond_waiter, &a);
    spawn(&t[1], cond_waiter, &b);
    yields(2);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("notify %d", urt_cond_notify(&c, 1));
    trace("cancel A %d", urt_task_cancel(t[0]));
    EXPECT_EQ(urt_cond_release(&c), 0);
    await_all(t, 2);

    /* A notified, then cancelled while it waits for the lock. */
    struct actor a2 = {.name = "A2", .c = &c}, b2 = {.name = "B2", .c = &c};
    spawn(&t[0], cond_waiter, &a2);
    spawn(&t[1], cond_waiter, &b2);
    yields(2);
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("notify %d", urt_cond_notify(&c, 1));
    yields(2);
    trace("cancel A2 %d", urt_task_cancel(t[0]));
    EXPECT_EQ(urt_cond_release(&c), 0);
    await_all(t, 2);
    EXPECT(NO_WAITERS(c));
    return 0;
}

/* Lost wake-up, Condition: a notified waiter cancelled before it has the
 * lock back returns URT_ECANCELED (holding the lock) and passes the
 * notification to the next waiter, as in CPython 3.13, whether the cancel
 * came before it ran or while it waited for the lock. */
static void test_cond_notified_waiter_cancelled_passes_notification_on(void **state)
{
    (void)state;
    run_main(main_cond_lost_wakeup, NULL);
    assert_trace("A wait", "B wait", "notify 0", "cancel A 1", "A woke -4001 locked 1",
                 "B woke 0 locked 1", "A2 wait", "B2 wait", "notify 0", "cancel A2 1",
                 "A2 woke -4001 locked 1", "B2 woke 0 locked 1");
}

static intptr_t main_cond_no_spurious(void *arg)
{
    (void)arg;
    urt_cond c;
    urt_cond_init(&c, NULL);
    struct actor a[3] = {{.name = "A", .c = &c}, {.name = "B", .c = &c}, {.name = "C", .c = &c}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) spawn(&t[i], cond_waiter, &a[i]);
    yields(3);
    trace("cancel A %d", urt_task_cancel(t[0]));
    EXPECT_EQ(await_within(t[0], 5000, NULL), 0);
    yields(3);
    TRACE2("B done %d C done %d", urt_task_done(t[1]), urt_task_done(t[2]));
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("notify %d", urt_cond_notify(&c, 1));
    EXPECT_EQ(urt_cond_release(&c), 0);
    yields(3);
    trace("C done %d", urt_task_done(t[2]));
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("notify %d", urt_cond_notify(&c, 1));
    EXPECT_EQ(urt_cond_release(&c), 0);
    await_all(&t[1], 2);
    return 0;
}

/* A waiter cancelled before any notification took none, so it passes none
 * on (no spurious wakeup, unlike CPython): B and C stay waiting until the
 * notifications meant for them. */
static void test_cond_cancelled_unnotified_waiter_wakes_nobody(void **state)
{
    (void)state;
    run_main(main_cond_no_spurious, NULL);
    assert_trace("A wait", "B wait", "C wait", "cancel A 1", "A woke -4001 locked 1",
                 "B done 0 C done 0", "notify 0", "B woke 0 locked 1", "C done 0", "notify 0",
                 "C woke 0 locked 1");
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static intptr_t main_cond_errors(void *arg)
{
    (void)arg;
    urt_cond c;
    urt_cond_init(&c, NULL);
    trace("wait %d", urt_cond_wait(&c));
    trace("wait_timeout %d", urt_cond_wait_timeout(&c, URT_NS_PER_S));
    trace("wait_for %d", urt_cond_wait_for(&c, never, NULL));
    trace("notify %d", urt_cond_notify(&c, 1));
    trace("notify_all %d", urt_cond_notify_all(&c));
    trace("release %d", urt_cond_release(&c));
    EXPECT_EQ(urt_cond_acquire(&c), 0);
    trace("null pred %d", urt_cond_wait_for(&c, NULL, NULL));
    EXPECT_EQ(urt_cond_release(&c), 0);
    return 0;
}

/* Condition.wait, wait_for and notify without the lock are -EPERM
 * (asyncio's RuntimeError), as is releasing it unheld; a NULL predicate is
 * -EINVAL. */
static void test_cond_calls_without_the_lock_are_eperm(void **state)
{
    (void)state;
    run_main(main_cond_errors, NULL);
    assert_trace("wait -1", "wait_timeout -1", "wait_for -1", "notify -1", "notify_all -1",
                 "release -1", "null pred -22");
}

/* ---- cancellation of every waiting call ---------------------------------- */

enum wait_kind {
    W_EVENT, W_EVENT_T, W_LOCK, W_LOCK_T, W_SEM, W_SEM_T, W_COND, W_COND_T, W_WAIT_FOR,
    W_WAIT_FOR_T, W_KINDS
};
static const char *const kind_names[W_KINDS] = {
    "event_wait", "event_wait_timeout", "lock_acquire", "lock_acquire_timeout", "sem_acquire",
    "sem_acquire_timeout", "cond_wait", "cond_wait_timeout", "cond_wait_for",
    "cond_wait_for_timeout"};

struct prims {
    urt_event e;
    urt_lock l;
    urt_sem s;
    urt_cond c;
    enum wait_kind kind;
    bool self_cancel; /* cancel itself before the call */
};

/* Makes the call of p->kind; every one would wait (10 s for the timeouts). */
static int call_kind(struct prims *p)
{
    uint64_t ten_s = 10 * URT_NS_PER_S;
    switch (p->kind) {
    case W_EVENT: return urt_event_wait(&p->e);
    case W_EVENT_T: return urt_event_wait_timeout(&p->e, ten_s);
    case W_LOCK: return urt_lock_acquire(&p->l);
    case W_LOCK_T: return urt_lock_acquire_timeout(&p->l, ten_s);
    case W_SEM: return urt_sem_acquire(&p->s);
    case W_SEM_T: return urt_sem_acquire_timeout(&p->s, ten_s);
    case W_COND: return urt_cond_wait(&p->c);
    case W_COND_T: return urt_cond_wait_timeout(&p->c, ten_s);
    case W_WAIT_FOR: return urt_cond_wait_for(&p->c, never, NULL);
    case W_WAIT_FOR_T: return urt_cond_wait_for_timeout(&p->c, never, NULL, ten_s);
    default: return -EINVAL;
    }
}

static bool is_cond(enum wait_kind k)
{
    return k >= W_COND;
}

static intptr_t kind_waiter(void *arg)
{
    struct prims *p = arg;
    if (is_cond(p->kind)) EXPECT_EQ(urt_cond_acquire(&p->c), 0);
    if (p->self_cancel) EXPECT_EQ(urt_task_cancel(urt_task_current()), 1);
    int rc = call_kind(p);
    if (is_cond(p->kind)) {
        EXPECT_EQ(urt_cond_locked(&p->c), 1);
        EXPECT_EQ(urt_cond_release(&p->c), 0);
    }
    return rc;
}

static intptr_t main_cancel_every_wait(void *arg)
{
    (void)arg;
    for (int self = 0; self < 2; self++) {
        for (enum wait_kind k = 0; k < W_KINDS; k++) {
            struct prims p = {.kind = k, .self_cancel = self};
            urt_event_init(&p.e);
            urt_lock_init(&p.l);
            urt_sem_init(&p.s, 0);
            urt_cond_init(&p.c, NULL);
            EXPECT_EQ(urt_lock_acquire(&p.l), 0); /* held: acquire waits */
            urt_task t;
            EXPECT_EQ(urt_task_create(&t, kind_waiter, &p), 0);
            uint64_t t0 = urt_now();
            yields(2);
            int done = urt_task_done(t);
            if (!self) urt_task_cancel(t);
            int rc = await_within(t, 5000, NULL);
            trace("%s%s %d done before %d", self ? "pending " : "", kind_names[k], rc, done);
            EXPECT(urt_now() - t0 < 5 * URT_NS_PER_S);
            /* Nothing is left queued, and nothing was taken. */
            EXPECT(NO_WAITERS(p.e) && NO_WAITERS(p.l) && NO_WAITERS(p.s) && NO_WAITERS(p.c));
            EXPECT(NO_WAITERS(p.c._own));
            EXPECT_EQ(urt_cond_locked(&p.c), 0);
            EXPECT_EQ(urt_sem_value(&p.s), 0);
            EXPECT_EQ(urt_lock_release(&p.l), 0);
            EXPECT_EQ(urt_lock_locked(&p.l), 0);
        }
    }
    return 0;
}

/* Every call that waits, cancelled while it waits, returns URT_ECANCELED
 * promptly (long before its 10 s timeout), and leaves no waiter behind; a
 * cancellation pending when the call is made is delivered by it instead of
 * waiting (the task was done after two yields). */
static void test_every_waiting_call_returns_ecanceled_when_cancelled(void **state)
{
    (void)state;
    run_main(main_cancel_every_wait, NULL);
    assert_trace("event_wait -4001 done before 0", "event_wait_timeout -4001 done before 0",
                 "lock_acquire -4001 done before 0", "lock_acquire_timeout -4001 done before 0",
                 "sem_acquire -4001 done before 0", "sem_acquire_timeout -4001 done before 0",
                 "cond_wait -4001 done before 0", "cond_wait_timeout -4001 done before 0",
                 "cond_wait_for -4001 done before 0", "cond_wait_for_timeout -4001 done before 0",
                 "pending event_wait -4001 done before 1",
                 "pending event_wait_timeout -4001 done before 1",
                 "pending lock_acquire -4001 done before 1",
                 "pending lock_acquire_timeout -4001 done before 1",
                 "pending sem_acquire -4001 done before 1",
                 "pending sem_acquire_timeout -4001 done before 1",
                 "pending cond_wait -4001 done before 1",
                 "pending cond_wait_timeout -4001 done before 1",
                 "pending cond_wait_for -4001 done before 1",
                 "pending cond_wait_for_timeout -4001 done before 1");
}

/* ---- no SQE, no suspension on the uncontended paths ---------------------- */

static intptr_t main_uncontended(void *arg)
{
    (void)arg;
    size_t n = small_scale() ? 2000 : 100000;
    struct urt_loop *loop = urt__loop;
    urt_lock l;
    urt_sem s;
    urt_event e;
    urt_cond c;
    urt_lock_init(&l);
    urt_sem_init(&s, 1);
    urt_event_init(&e);
    urt_cond_init(&c, NULL);
    urt_task x;
    EXPECT_EQ(urt_task_create(&x, rec, "X"), 0);
    unsigned sqes = loop->ring.sq.sqe_tail;
    size_t inflight = loop->inflight;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ok = urt_lock_acquire(&l) == 0 && urt_lock_release(&l) == 0 &&
             urt_lock_acquire_timeout(&l, URT_NS_PER_S) == 0 && urt_lock_release(&l) == 0 &&
             urt_sem_acquire(&s) == 0 && urt_sem_release(&s) == 0 &&
             urt_sem_acquire_timeout(&s, URT_NS_PER_S) == 0 && urt_sem_release(&s) == 0 &&
             urt_event_set(&e) == 0 && urt_event_wait(&e) == 0 &&
             urt_event_wait_timeout(&e, URT_NS_PER_S) == 0 && urt_event_clear(&e) == 0 &&
             urt_cond_acquire(&c) == 0 && urt_cond_notify_all(&c) == 0 &&
             urt_cond_release(&c) == 0;
    }
    EXPECT(ok);
    EXPECT_EQ(loop->ring.sq.sqe_tail, sqes);
    EXPECT_EQ(loop->inflight, inflight);
    trace("after the rounds");
    EXPECT_EQ(await_within(x, 5000, NULL), 0);
    return 0;
}

/* Uncontended Lock and Semaphore acquire/release, Event set/wait/clear and
 * notify with nobody waiting prepare no SQE (the ring's SQ tail does not
 * move) and never suspend (X, created before, runs only afterwards). */
static void test_uncontended_calls_cost_no_sqe_and_never_suspend(void **state)
{
    (void)state;
    run_main(main_uncontended, NULL);
    assert_trace("after the rounds", "X run");
}

/* ---- bad input ----------------------------------------------------------- */

/* Outside a running loop every call that can wait or wake is URT_ENOLOOP;
 * init and the getters need no loop. */
static void test_sync_calls_outside_a_loop_are_enoloop(void **state)
{
    (void)state;
    urt_event e;
    urt_lock l;
    urt_sem s;
    urt_cond c;
    assert_int_equal(urt_event_init(&e), 0);
    assert_int_equal(urt_lock_init(&l), 0);
    assert_int_equal(urt_sem_init(&s, 1), 0);
    assert_int_equal(urt_cond_init(&c, &l), 0);
    assert_int_equal(urt_event_set(&e), URT_ENOLOOP);
    assert_int_equal(urt_event_clear(&e), URT_ENOLOOP);
    assert_int_equal(urt_event_wait(&e), URT_ENOLOOP);
    assert_int_equal(urt_event_wait_timeout(&e, 0), URT_ENOLOOP);
    assert_int_equal(urt_lock_acquire(&l), URT_ENOLOOP);
    assert_int_equal(urt_lock_acquire_timeout(&l, 0), URT_ENOLOOP);
    assert_int_equal(urt_lock_try_acquire(&l), URT_ENOLOOP);
    assert_int_equal(urt_lock_release(&l), URT_ENOLOOP);
    assert_int_equal(urt_sem_acquire(&s), URT_ENOLOOP);
    assert_int_equal(urt_sem_acquire_timeout(&s, 0), URT_ENOLOOP);
    assert_int_equal(urt_sem_try_acquire(&s), URT_ENOLOOP);
    assert_int_equal(urt_sem_release(&s), URT_ENOLOOP);
    assert_int_equal(urt_cond_acquire(&c), URT_ENOLOOP);
    assert_int_equal(urt_cond_release(&c), URT_ENOLOOP);
    assert_int_equal(urt_cond_wait(&c), URT_ENOLOOP);
    assert_int_equal(urt_cond_wait_timeout(&c, 0), URT_ENOLOOP);
    assert_int_equal(urt_cond_wait_for(&c, never, NULL), URT_ENOLOOP);
    assert_int_equal(urt_cond_wait_for_timeout(&c, never, NULL, 0), URT_ENOLOOP);
    assert_int_equal(urt_cond_notify(&c, 1), URT_ENOLOOP);
    assert_int_equal(urt_cond_notify_all(&c), URT_ENOLOOP);
    assert_int_equal(urt_event_is_set(&e), 0);
    assert_int_equal(urt_lock_locked(&l), 0);
    assert_int_equal(urt_sem_locked(&s), 0);
    assert_int_equal(urt_sem_value(&s), 1);
    assert_int_equal(urt_cond_locked(&c), 0);
}

static intptr_t main_null(void *arg)
{
    (void)arg;
    int rcs[] = {
        urt_event_init(NULL), urt_event_set(NULL), urt_event_clear(NULL), urt_event_is_set(NULL),
        urt_event_wait(NULL), urt_event_wait_timeout(NULL, 0), urt_lock_init(NULL),
        urt_lock_acquire(NULL), urt_lock_acquire_timeout(NULL, 0), urt_lock_try_acquire(NULL),
        urt_lock_release(NULL), urt_lock_locked(NULL), urt_sem_init(NULL, 1),
        urt_sem_init_bounded(NULL, 1), urt_sem_acquire(NULL), urt_sem_acquire_timeout(NULL, 0),
        urt_sem_try_acquire(NULL), urt_sem_release(NULL), urt_sem_locked(NULL),
        urt_sem_value(NULL), urt_cond_init(NULL, NULL), urt_cond_acquire(NULL),
        urt_cond_release(NULL), urt_cond_locked(NULL), urt_cond_wait(NULL),
        urt_cond_wait_timeout(NULL, 0), urt_cond_wait_for(NULL, never, NULL),
        urt_cond_wait_for_timeout(NULL, never, NULL, 0), urt_cond_notify(NULL, 1),
        urt_cond_notify_all(NULL),
    };
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
        if (rcs[i] != -EINVAL) note_failure("call %zu on NULL gave %d, not -EINVAL", i, rcs[i]);
    trace("%zu calls", sizeof rcs / sizeof rcs[0]);
    return 0;
}

/* Every call given a NULL object is -EINVAL (inside a loop). */
static void test_sync_calls_on_null_are_einval(void **state)
{
    (void)state;
    run_main(main_null, NULL);
    assert_trace("30 calls");
}

/* ---- another loop's waiters ---------------------------------------------- */

/* Loop A (a thread of its own) has a task parked on each primitive; loop B,
 * meanwhile, may neither wake them nor queue behind them. */
static struct {
    urt_event e;
    urt_lock l;
    urt_sem s;
    urt_cond c;
    int parked, checked; /* handshakes between the threads */
    int results[8];
} xl;

static intptr_t xl_waiter(void *arg)
{
    switch ((intptr_t)arg) {
    case 0: return urt_event_wait(&xl.e);
    case 1: return urt_lock_acquire(&xl.l);
    case 2: return urt_sem_acquire(&xl.s);
    default:
        EXPECT_EQ(urt_cond_acquire(&xl.c), 0);
        int rc = urt_cond_wait(&xl.c);
        EXPECT_EQ(urt_cond_release(&xl.c), 0);
        return rc;
    }
}

static intptr_t xl_main_a(void *arg)
{
    (void)arg;
    urt_task t[4];
    EXPECT_EQ(urt_lock_acquire(&xl.l), 0);
    for (intptr_t i = 0; i < 4; i++) EXPECT_EQ(urt_task_create(&t[i], xl_waiter, (void *)i), 0);
    yields(2);
    __atomic_store_n(&xl.parked, 1, __ATOMIC_RELEASE);
    /* Loop A blocks its thread on purpose: its waiters stay parked. */
    while (!__atomic_load_n(&xl.checked, __ATOMIC_ACQUIRE)) usleep(1000);
    EXPECT_EQ(urt_event_set(&xl.e), 0);
    EXPECT_EQ(urt_lock_release(&xl.l), 0);
    EXPECT_EQ(urt_sem_release(&xl.s), 0);
    EXPECT_EQ(urt_cond_acquire(&xl.c), 0);
    EXPECT_EQ(urt_cond_notify(&xl.c, 1), 0);
    EXPECT_EQ(urt_cond_release(&xl.c), 0);
    for (int i = 0; i < 4; i++) EXPECT_EQ(await_within(t[i], 5000, NULL), 0);
    EXPECT_EQ(urt_lock_release(&xl.l), 0);
    return 0;
}

static void *xl_thread(void *arg)
{
    (void)arg;
    intptr_t v = -1;
    int rc = urt_run(xl_main_a, NULL, &v);
    return (void *)(intptr_t)(rc == 0 && v == 0);
}

static intptr_t xl_main_b(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&xl.parked, __ATOMIC_ACQUIRE)) usleep(1000);
    int *r = xl.results;
    /* With timeouts, so that a missing check fails the test instead of
     * leaving B parked among A's tasks for good. */
    uint64_t t = 100 * URT_NS_PER_MS;
    r[0] = urt_event_set(&xl.e);
    r[1] = urt_event_wait_timeout(&xl.e, t);
    r[2] = urt_lock_release(&xl.l);
    r[3] = urt_lock_acquire_timeout(&xl.l, t);
    r[4] = urt_sem_release(&xl.s);
    r[5] = urt_sem_acquire_timeout(&xl.s, t);
    /* A's condition's lock is free, so B may take it; but waiting or
     * notifying would join or wake A's task. */
    EXPECT_EQ(urt_cond_acquire(&xl.c), 0);
    r[6] = urt_cond_wait_timeout(&xl.c, t);
    r[7] = urt_cond_notify(&xl.c, 1);
    EXPECT_EQ(urt_cond_release(&xl.c), 0);
    __atomic_store_n(&xl.checked, 1, __ATOMIC_RELEASE);
    return 0;
}

/* A primitive with waiters of loop A refuses loop B's calls that would
 * wake them or queue behind them with -EXDEV, and changes nothing: A's
 * own calls then work. */
static void test_sync_waiters_of_another_loop_are_exdev(void **state)
{
    (void)state;
    urt_event_init(&xl.e);
    urt_lock_init(&xl.l);
    urt_sem_init(&xl.s, 0);
    urt_cond_init(&xl.c, NULL);
    task_failure[0] = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, xl_thread, NULL), 0);
    intptr_t v = -1;
    int rc = urt_run(xl_main_b, NULL, &v);
    void *ok = NULL;
    assert_int_equal(pthread_join(th, &ok), 0);
    assert_int_equal(rc, 0);
    assert_true(ok != NULL);
    assert_no_task_failure();
    for (int i = 0; i < 8; i++) assert_int_equal(xl.results[i], -EXDEV);
}

/* ---- runner -------------------------------------------------------------- */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    urt_lock l;
    urt_lock_init(&l);
    urt_lock_acquire(&l);
    urt_lock_acquire_timeout(&l, URT_NS_PER_MS);
    return urt_sleep_ms(1);
}

/* run_checked compares mappings before and after a run; the allocator maps
 * its arenas on first use, so one run happens before the tests. */
static int warm_up(void **state)
{
    (void)state;
    return urt_run(warm_up_main, NULL, NULL) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_wait_on_set_event_returns_at_once_without_suspending),
        cmocka_unit_test(test_event_set_wakes_every_waiter_in_wait_order),
        cmocka_unit_test(test_event_clear_makes_wait_wait_for_next_set),
        cmocka_unit_test(test_event_wait_timeout_expires_never_early),
        cmocka_unit_test(test_event_wait_cancelled),
        cmocka_unit_test(test_lock_fifo_order_among_three_waiters),
        cmocka_unit_test(test_lock_release_hands_lock_to_waiter_without_barging),
        cmocka_unit_test(test_lock_cancelled_waiter_never_swallows_the_release),
        cmocka_unit_test(test_lock_acquire_timeout_expires_and_leaves_the_queue),
        cmocka_unit_test(test_lock_release_unlocked_is_eperm_and_any_task_may_release),
        cmocka_unit_test(test_sem_two_permits_five_tasks_in_exact_order),
        cmocka_unit_test(test_bounded_sem_over_release_is_eoverflow),
        cmocka_unit_test(test_sem_cancelled_waiter_never_swallows_the_release),
        cmocka_unit_test(test_sem_timeout_and_release_hands_permit_to_waiter),
        cmocka_unit_test(test_cond_notify_n_wakes_longest_waiting_in_order),
        cmocka_unit_test(test_cond_notify_all_wakes_all_in_order_each_with_the_lock),
        cmocka_unit_test(test_cond_wait_for_checks_predicate_after_each_notify),
        cmocka_unit_test(test_cond_wait_reacquires_lock_when_cancelled),
        cmocka_unit_test(test_cond_wait_reacquires_lock_when_timed_out),
        cmocka_unit_test(test_cond_notified_waiter_cancelled_passes_notification_on),
        cmocka_unit_test(test_cond_cancelled_unnotified_waiter_wakes_nobody),
        cmocka_unit_test(test_cond_calls_without_the_lock_are_eperm),
        cmocka_unit_test(test_every_waiting_call_returns_ecanceled_when_cancelled),
        cmocka_unit_test(test_uncontended_calls_cost_no_sqe_and_never_suspend),
        cmocka_unit_test(test_sync_calls_outside_a_loop_are_enoloop),
        cmocka_unit_test(test_sync_calls_on_null_are_einval),
        cmocka_unit_test(test_sync_waiters_of_another_loop_are_exdev),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
