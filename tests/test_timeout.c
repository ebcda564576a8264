/*
 * Timeout scopes (asyncio.timeout), wait_for and shield: what a deadline
 * cuts and with which code, nested scopes, a cancellation from outside,
 * the cut that comes once, the cut a finished wait never sees, rescheduling,
 * many deadlines in their order, and every documented error code.
 *
 * Checks inside tasks use EXPECT* (harness.h); see test_gather.c for why.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"

#define MS URT_NS_PER_MS

static void spin_ns(uint64_t ns)
{
    uint64_t end = urt_now() + ns;
    while (urt_now() < end) {}
}

/* ---- a deadline cuts what the task waits on ---- */

static intptr_t main_cuts_sleep(void *arg)
{
    (void)arg;
    urt_timeout t;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(20) * MS), 0);
    EXPECT_EQ(urt_timeout_expired(&t), 0);
    EXPECT_EQ(urt_sleep_s(10), URT_ETIMEDOUT);
    uint64_t took = urt_now() - t0;
    EXPECT(took >= spaced_ms(20) * MS); /* never early */
    EXPECT(took < 5 * URT_NS_PER_S);
    EXPECT_EQ(urt_timeout_expired(&t), 1);
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    EXPECT_EQ(urt_timeout_expired(&t), 1); /* still known after the exit */

    /* A scope whose deadline does not pass changes nothing. */
    EXPECT_EQ(urt_timeout_enter(&t, 10 * URT_NS_PER_S), 0);
    EXPECT_EQ(urt_sleep_ms(1), 0);
    EXPECT_EQ(urt_timeout_exit(&t), 0);
    EXPECT_EQ(urt_timeout_expired(&t), 0);
    /* Nor does one without a deadline. */
    EXPECT_EQ(urt_timeout_enter(&t, URT_NO_TIMEOUT), 0);
    EXPECT_EQ(urt_timeout_when(&t), URT_NO_TIMEOUT);
    EXPECT_EQ(urt_sleep_ms(1), 0);
    EXPECT_EQ(urt_timeout_exit(&t), 0);
    return 0;
}

/* SEMANTICS 3.5: a timed-out scope returns the timeout code, not the
 * cancellation code, and not before its deadline. */
static void test_timeout_cuts_a_sleep_with_etimedout(void **state)
{
    (void)state;
    run_main(main_cuts_sleep, NULL);
}

static intptr_t main_cuts_read(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    char buf[8] = "xxxxxxx";
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(10) * MS), 0);
    EXPECT_EQ(urt_read(p[0], buf, sizeof buf), URT_ETIMEDOUT);
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    EXPECT_EQ(buf[0], 'x'); /* the kernel let go of it untouched */
    /* The read was really withdrawn: the next one gets the byte. */
    EXPECT_EQ(write(p[1], "a", 1), 1);
    EXPECT_EQ(urt_read(p[0], buf, sizeof buf), 1);
    EXPECT_EQ(buf[0], 'a');
    close(p[0]);
    close(p[1]);
    return 0;
}

/* SEMANTICS 3.3 + 3.5: an I/O call cut by a scope returns once the kernel
 * has let go of it, and nothing it would have read is lost. */
static void test_timeout_cuts_a_read_and_the_kernel_lets_go(void **state)
{
    (void)state;
    run_main(main_cuts_read, NULL);
}

static intptr_t sleeper(void *arg)
{
    int rc = urt_sleep_s(10);
    trace("%s slept %d", (const char *)arg, rc);
    return rc;
}

static intptr_t main_cuts_await(void *arg)
{
    (void)arg;
    urt_task child;
    EXPECT_EQ(urt_task_create(&child, sleeper, "child"), 0);
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(10) * MS), 0);
    int rc = urt_task_await(child, NULL);
    trace("await %d", rc);
    trace("exit %d", urt_timeout_exit(&t));
    EXPECT_EQ(urt_task_done(child), 1);
    EXPECT_EQ(urt_task_cancelled(child), 1);
    EXPECT_EQ(urt_task_release(child), 0);

    /* gather: every child cut, gather reports the timeout. */
    urt_task kids[2];
    EXPECT_EQ(urt_task_create(&kids[0], sleeper, "k0"), 0);
    EXPECT_EQ(urt_task_create(&kids[1], sleeper, "k1"), 0);
    int errors[2] = {1, 1};
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(10) * MS), 0);
    rc = urt_gather(kids, 2, URT_RETURN_EXCEPTIONS, NULL, errors);
    trace("gather %d", rc);
    trace("exit %d", urt_timeout_exit(&t));
    EXPECT_EQ(errors[0], URT_ECANCELED);
    EXPECT_EQ(errors[1], URT_ECANCELED);
    EXPECT_EQ(urt_task_release(kids[0]), 0);
    EXPECT_EQ(urt_task_release(kids[1]), 0);
    return 0;
}

/* asyncio: a deadline around `await task` cancels the task, waits for it,
 * and reports the timeout; the awaited task itself saw a cancellation. */
static void test_timeout_cuts_await_and_gather_by_cancelling_what_they_wait_for(void **state)
{
    (void)state;
    run_main(main_cuts_await, NULL);
    assert_trace("child slept -4001", "await -4002", "exit -4002",
                 "k0 slept -4001", "k1 slept -4001", "gather -4002", "exit -4002");
}

static intptr_t main_cuts_accept(void *arg)
{
    (void)arg;
    int fd = urt_tcp_listen("127.0.0.1:0", 4);
    EXPECT(fd >= 0);
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(10) * MS), 0);
    EXPECT_EQ(urt_accept(fd, NULL, NULL, 0), URT_ETIMEDOUT);
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    EXPECT_EQ(urt_close(fd), 0);
    return 0;
}

/* A task parked on a wait queue (here urt_accept's) is cut too. */
static void test_timeout_cuts_a_parked_wait(void **state)
{
    (void)state;
    run_main(main_cuts_accept, NULL);
}

/* ---- once ---- */

static intptr_t main_cut_once(void *arg)
{
    (void)arg;
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(5) * MS), 0);
    EXPECT_EQ(urt_sleep_s(10), URT_ETIMEDOUT);
    /* Handling it, the task may still wait inside the scope. */
    EXPECT_EQ(urt_sleep_ms(2), 0);
    EXPECT_EQ(urt_yield(), 0);
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    return 0;
}

/* asyncio cancels once: after the cut, the scope's code is not cut again. */
static void test_timeout_cuts_once(void **state)
{
    (void)state;
    run_main(main_cut_once, NULL);
}

static intptr_t main_running_past_deadline(void *arg)
{
    (void)arg;
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, 2 * MS), 0);
    spin_ns(10 * MS); /* no suspension point: nothing can be cut yet */
    EXPECT_EQ(urt_timeout_expired(&t), 0);
    EXPECT_EQ(urt_yield(), URT_ETIMEDOUT); /* the next one is */
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    return 0;
}

/* A deadline that passes while the task runs cuts its next suspension
 * point in the scope. */
static void test_timeout_passing_while_running_cuts_the_next_suspension(void **state)
{
    (void)state;
    run_main(main_running_past_deadline, NULL);
}

struct late_writer {
    int fd;
    uint64_t spin;
};

static intptr_t write_then_spin(void *arg)
{
    struct late_writer *w = arg;
    EXPECT_EQ(write(w->fd, "z", 1), 1);
    spin_ns(w->spin); /* past the reader's deadline, before any turn ends */
    return 0;
}

static intptr_t main_data_wins(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    struct late_writer w = {p[1], 10 * MS};
    EXPECT_EQ(urt_task_create(NULL, write_then_spin, &w), 0);
    urt_timeout t;
    char c = 0;
    EXPECT_EQ(urt_timeout_enter(&t, 2 * MS), 0);
    /* The byte and the deadline are seen at the same turn boundary. */
    EXPECT_EQ(urt_read(p[0], &c, 1), 1);
    EXPECT_EQ(c, 'z');
    EXPECT_EQ(urt_timeout_expired(&t), 1);
    /* The cut that was still to come goes with the scope... */
    EXPECT_EQ(urt_timeout_exit(&t), 0);
    /* ... and does not land on a wait outside it. */
    EXPECT_EQ(urt_sleep_ms(1), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Data wins: a read completing in the instant its scope's deadline passes
 * returns the data; the exit reports no timeout, the scope knows it
 * expired, and the undelivered cut is dropped. */
static void test_timeout_completed_wait_wins_and_the_cut_is_dropped_at_exit(void **state)
{
    (void)state;
    run_main(main_data_wins, NULL);
}

/* ---- nesting ---- */

static intptr_t main_nested(void *arg)
{
    (void)arg;
    urt_timeout outer, inner;
    /* The outer deadline is the earlier: it is the one that fired. */
    EXPECT_EQ(urt_timeout_enter(&outer, spaced_ms(10) * MS), 0);
    EXPECT_EQ(urt_timeout_enter(&inner, 10 * URT_NS_PER_S), 0);
    trace("sleep %d", urt_sleep_s(10));
    trace("inner exit %d expired %d", urt_timeout_exit(&inner), urt_timeout_expired(&inner));
    trace("outer exit %d expired %d", urt_timeout_exit(&outer), urt_timeout_expired(&outer));

    /* The inner one is the earlier. */
    EXPECT_EQ(urt_timeout_enter(&outer, 10 * URT_NS_PER_S), 0);
    EXPECT_EQ(urt_timeout_enter(&inner, spaced_ms(10) * MS), 0);
    trace("sleep %d", urt_sleep_s(10));
    trace("inner exit %d expired %d", urt_timeout_exit(&inner), urt_timeout_expired(&inner));
    trace("sleep %d", urt_sleep_ms(1)); /* in the outer scope, uncut */
    trace("outer exit %d expired %d", urt_timeout_exit(&outer), urt_timeout_expired(&outer));

    /* Both deadlines passed at once: the outer scope's cut is the one. */
    EXPECT_EQ(urt_timeout_enter(&outer, 1 * MS), 0);
    EXPECT_EQ(urt_timeout_enter(&inner, 1 * MS), 0);
    spin_ns(5 * MS);
    trace("yield %d", urt_yield());
    trace("inner exit %d expired %d", urt_timeout_exit(&inner), urt_timeout_expired(&inner));
    trace("outer exit %d expired %d", urt_timeout_exit(&outer), urt_timeout_expired(&outer));
    return 0;
}

/* asyncio: nested timeouts, the earliest deadline wins, and each scope
 * knows whether its own deadline fired. */
static void test_timeout_nested_earliest_wins_and_each_knows_its_own(void **state)
{
    (void)state;
    run_main(main_nested, NULL);
    assert_trace("sleep -4002", "inner exit 0 expired 0", "outer exit -4002 expired 1",
                 "sleep -4002", "inner exit -4002 expired 1", "sleep 0",
                 "outer exit 0 expired 0",
                 "yield -4002", "inner exit 0 expired 1", "outer exit -4002 expired 1");
}

/* ---- a cancellation from outside ---- */

struct scoped {
    uint64_t timeout_ns;
    int slept, exited, expired;
};

static intptr_t scoped_sleeper(void *arg)
{
    struct scoped *s = arg;
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, s->timeout_ns), 0);
    s->slept = urt_sleep_s(10);
    s->exited = urt_timeout_exit(&t);
    s->expired = urt_timeout_expired(&t);
    trace("slept %d exit %d", s->slept, s->exited);
    return s->slept;
}

static intptr_t main_cancel_inside(void *arg)
{
    (void)arg;
    struct scoped s = {.timeout_ns = 10 * URT_NS_PER_S};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, scoped_sleeper, &s), 0);
    EXPECT_EQ(urt_sleep_ms(2), 0);
    EXPECT_EQ(urt_task_cancel(t), 1);
    EXPECT_EQ(urt_task_await(t, NULL), URT_ECANCELED);
    EXPECT_EQ(s.expired, 0);

    /* Cancelled and past the deadline in the same instant: the
     * cancellation wins. */
    struct scoped both = {.timeout_ns = 1 * MS};
    EXPECT_EQ(urt_task_create(&t, scoped_sleeper, &both), 0);
    EXPECT_EQ(urt_yield(), 0); /* it enters the scope and sleeps */
    spin_ns(5 * MS);
    EXPECT_EQ(urt_task_cancel(t), 1);
    EXPECT_EQ(urt_task_await(t, NULL), URT_ECANCELED);
    EXPECT_EQ(both.expired, 1);
    return 0;
}

/* The issue: a task cancelled from outside while inside a scope reports
 * the cancellation, not a timeout, even when its deadline passed too. */
static void test_timeout_cancel_from_outside_reports_cancellation(void **state)
{
    (void)state;
    run_main(main_cancel_inside, NULL);
    assert_trace("slept -4001 exit 0", "slept -4001 exit 0");
}

/* ---- rescheduling, many deadlines ---- */

static intptr_t main_reschedule(void *arg)
{
    (void)arg;
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, URT_NO_TIMEOUT), 0);
    uint64_t t0 = urt_now();
    uint64_t deadline = t0 + spaced_ms(15) * MS;
    EXPECT_EQ(urt_timeout_reschedule(&t, deadline), 0);
    EXPECT_EQ(urt_timeout_when(&t), deadline);
    EXPECT_EQ(urt_sleep_s(10), URT_ETIMEDOUT);
    EXPECT(urt_now() >= deadline);
    EXPECT_EQ(urt_timeout_reschedule(&t, URT_NO_TIMEOUT), -EALREADY);
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);

    /* Pushed back, and taken away. */
    EXPECT_EQ(urt_timeout_enter(&t, 1 * MS), 0);
    EXPECT_EQ(urt_timeout_reschedule(&t, URT_NO_TIMEOUT), 0);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    EXPECT_EQ(urt_timeout_exit(&t), 0);
    EXPECT_EQ(urt_timeout_enter_at(&t, urt_now() + 1 * MS), 0);
    EXPECT_EQ(urt_timeout_reschedule(&t, urt_now() + 10 * URT_NS_PER_S), 0);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    EXPECT_EQ(urt_timeout_exit(&t), 0);

    /* A deadline already passed cuts the next wait. */
    EXPECT_EQ(urt_timeout_enter(&t, 0), 0);
    EXPECT_EQ(urt_sleep_s(10), URT_ETIMEDOUT);
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    return 0;
}

/* Timeout.reschedule, and asyncio.timeout(0). */
static void test_timeout_reschedule_and_zero(void **state)
{
    (void)state;
    run_main(main_reschedule, NULL);
}

#define MANY 1000

struct many {
    unsigned index;
    uint64_t deadline;
    unsigned *order;
    unsigned *next;
};

static intptr_t cut_in_order(void *arg)
{
    struct many *m = arg;
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter_at(&t, m->deadline), 0);
    EXPECT_EQ(urt_sleep_s(30), URT_ETIMEDOUT);
    EXPECT(urt_now() >= m->deadline);
    m->order[(*m->next)++] = m->index;
    EXPECT_EQ(urt_timeout_exit(&t), URT_ETIMEDOUT);
    return 0;
}

static intptr_t main_many(void *arg)
{
    (void)arg;
    static struct many m[MANY];
    static unsigned order[MANY];
    unsigned next = 0;
    uint64_t base = urt_now() + spaced_ms(20) * MS;
    for (unsigned i = 0; i < MANY; i++) {
        /* Created in an order unrelated to their deadlines, some equal. */
        unsigned rank = (i * 7919u) % MANY;
        m[i] = (struct many){.index = rank, .deadline = base + (rank / 2) * 20 * URT_NS_PER_US,
                             .order = order, .next = &next};
        EXPECT_EQ(urt_task_create(NULL, cut_in_order, &m[i]), 0);
    }
    while (next < MANY) EXPECT_EQ(urt_sleep_ms(5), 0);
    /* Cut in the order of their deadlines (pairs of ranks share one). */
    for (unsigned i = 1; i < MANY; i++) EXPECT(order[i - 1] / 2 <= order[i] / 2);
    return 0;
}

/* The loop's deadline heap: a thousand scopes of one loop are cut in the
 * order of their deadlines, each no earlier than its own. */
static void test_timeout_many_deadlines_fire_in_order(void **state)
{
    (void)state;
    run_main(main_many, NULL);
}

/* ---- mistakes ---- */

static intptr_t enter_and_return(void *arg)
{
    (void)arg;
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, 1 * MS), 0);
    return 0; /* without the exit */
}

static intptr_t exit_other(void *arg)
{
    EXPECT_EQ(urt_timeout_exit(arg), -EINVAL);
    return 0;
}

static intptr_t main_mistakes(void *arg)
{
    (void)arg;
    urt_timeout a, b, never = {0};
    EXPECT_EQ(urt_timeout_enter(NULL, 1), -EINVAL);
    EXPECT_EQ(urt_timeout_exit(NULL), -EINVAL);
    EXPECT_EQ(urt_timeout_exit(&never), -EINVAL);
    EXPECT_EQ(urt_timeout_reschedule(&never, 0), -EINVAL);
    EXPECT_EQ(urt_timeout_expired(NULL), -EINVAL);
    EXPECT_EQ(urt_timeout_enter(&a, 10 * URT_NS_PER_S), 0);
    EXPECT_EQ(urt_timeout_enter(&b, 10 * URT_NS_PER_S), 0);
    EXPECT_EQ(urt_timeout_exit(&a), -EINVAL); /* not the innermost */
    urt_task other;
    EXPECT_EQ(urt_task_create(&other, exit_other, &b), 0);
    EXPECT_EQ(urt_task_await(other, NULL), 0); /* another task's scope */
    EXPECT_EQ(urt_task_release(other), 0);
    EXPECT_EQ(urt_timeout_exit(&b), 0);
    EXPECT_EQ(urt_timeout_exit(&b), -EINVAL); /* twice */
    EXPECT_EQ(urt_timeout_exit(&a), 0);

    /* A task returning inside its scope: the scope goes with it, and its
     * deadline cuts nothing later. */
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, enter_and_return, NULL), 0);
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    EXPECT_EQ(urt_sleep_ms(5), 0);
    return 0;
}

/* Header: -EINVAL for what is not the calling task's innermost scope;
 * a scope left entered is dropped with its task. */
static void test_timeout_rejects_misuse(void **state)
{
    (void)state;
    run_main(main_mistakes, NULL);
    urt_timeout t = {0};
    assert_int_equal(urt_timeout_enter(&t, 1), URT_ENOLOOP);
    assert_int_equal(urt_timeout_exit(&t), URT_ENOLOOP);
    assert_int_equal(urt_timeout_reschedule(&t, 1), URT_ENOLOOP);
    assert_int_equal(urt_wait_for(URT_TASK_NONE, 1, NULL), URT_ENOLOOP);
    assert_int_equal(urt_shield(URT_TASK_NONE, NULL), URT_ENOLOOP);
}

/* ---- wait_for ---- */

static intptr_t returns_after(void *arg)
{
    EXPECT_EQ(urt_sleep_ms(spaced_ms((uintptr_t)arg)), 0);
    return 42;
}

static intptr_t handles_cancel(void *arg)
{
    (void)arg;
    int rc = urt_sleep_s(10);
    trace("handler slept %d", rc);
    return 7; /* swallows it */
}

static intptr_t main_wait_for(void *arg)
{
    (void)arg;
    urt_task t;
    intptr_t v = 0;
    EXPECT_EQ(urt_task_create(&t, returns_after, (void *)(uintptr_t)2), 0);
    EXPECT_EQ(urt_wait_for(t, 10 * URT_NS_PER_S, &v), 0);
    EXPECT_EQ(v, 42);
    v = 0;
    EXPECT_EQ(urt_wait_for(t, 0, &v), 0); /* finished: at once */
    EXPECT_EQ(v, 42);
    EXPECT_EQ(urt_task_release(t), 0);

    EXPECT_EQ(urt_task_create(&t, sleeper, "slow"), 0);
    uint64_t t0 = urt_now();
    int rc = urt_wait_for(t, spaced_ms(10) * MS, NULL);
    trace("wait_for %d", rc);
    EXPECT(urt_now() - t0 >= spaced_ms(10) * MS);
    EXPECT_EQ(urt_task_done(t), 1); /* cancelled AND waited for */
    EXPECT_EQ(urt_task_cancelled(t), 1);
    EXPECT_EQ(urt_task_release(t), 0);

    EXPECT_EQ(urt_task_create(&t, handles_cancel, NULL), 0);
    v = 0;
    rc = urt_wait_for(t, spaced_ms(5) * MS, &v);
    trace("wait_for %d value %ld", rc, (long)v);
    EXPECT_EQ(urt_task_release(t), 0);

    EXPECT_EQ(urt_wait_for(URT_TASK_NONE, 1, NULL), URT_EBADTASK);
    EXPECT_EQ(urt_wait_for(urt_task_current(), 1, NULL), -EDEADLK);
    return 0;
}

/* asyncio.wait_for: the value in time; on expiry the task is cancelled and
 * waited for, then the timeout; a task that swallows the cancellation
 * gives its value (Python 3.12's wait_for does the same). */
static void test_wait_for_values_timeout_and_a_task_that_handles_it(void **state)
{
    (void)state;
    run_main(main_wait_for, NULL);
    assert_trace("slow slept -4001", "wait_for -4002", "handler slept -4001",
                 "wait_for 0 value 7");
}

struct waiter_of {
    urt_task target;
    int rc;
};

static intptr_t wait_for_target(void *arg)
{
    struct waiter_of *w = arg;
    w->rc = urt_wait_for(w->target, 10 * URT_NS_PER_S, NULL);
    trace("wait_for %d", w->rc);
    return 0;
}

static intptr_t main_wait_for_cancelled(void *arg)
{
    (void)arg;
    struct waiter_of w;
    EXPECT_EQ(urt_task_create(&w.target, sleeper, "target"), 0);
    urt_task waiter;
    EXPECT_EQ(urt_task_create(&waiter, wait_for_target, &w), 0);
    EXPECT_EQ(urt_sleep_ms(2), 0);
    EXPECT_EQ(urt_task_cancel(waiter), 1);
    EXPECT_EQ(urt_task_await(waiter, NULL), 0);
    EXPECT_EQ(urt_task_cancelled(w.target), 1);
    EXPECT_EQ(urt_task_release(waiter), 0);
    EXPECT_EQ(urt_task_release(w.target), 0);
    return 0;
}

/* A cancelled wait_for cancels its task and reports the cancellation. */
static void test_wait_for_cancelled_caller_cancels_the_task(void **state)
{
    (void)state;
    run_main(main_wait_for_cancelled, NULL);
    assert_trace("target slept -4001", "wait_for -4001");
}

/* ---- shield ---- */

struct shielder {
    urt_task inner;
    uint64_t timeout_ns; /* 0: no scope */
};

static intptr_t shield_inner(void *arg)
{
    struct shielder *s = arg;
    urt_timeout t;
    if (s->timeout_ns) EXPECT_EQ(urt_timeout_enter(&t, s->timeout_ns), 0);
    intptr_t v = 0;
    int rc = urt_shield(s->inner, &v);
    trace("shield %d", rc);
    if (s->timeout_ns) trace("exit %d", urt_timeout_exit(&t));
    return rc;
}

static intptr_t main_shield(void *arg)
{
    (void)arg;
    struct shielder s = {0};
    EXPECT_EQ(urt_task_create(&s.inner, returns_after, (void *)(uintptr_t)10), 0);
    urt_task outer;
    EXPECT_EQ(urt_task_create(&outer, shield_inner, &s), 0);
    EXPECT_EQ(urt_sleep_ms(1), 0);
    EXPECT_EQ(urt_task_cancel(outer), 1);
    EXPECT_EQ(urt_task_await(outer, NULL), URT_ECANCELED);
    trace("outer done, inner done %d", urt_task_done(s.inner));
    intptr_t v = 0;
    EXPECT_EQ(urt_task_await(s.inner, &v), 0); /* it ran on */
    EXPECT_EQ(v, 42);
    EXPECT_EQ(urt_task_cancelled(s.inner), 0);
    EXPECT_EQ(urt_task_release(s.inner), 0);
    EXPECT_EQ(urt_task_release(outer), 0);

    /* A deadline of the shielding task does not reach the inner one. */
    s.timeout_ns = spaced_ms(2) * MS;
    EXPECT_EQ(urt_task_create(&s.inner, returns_after, (void *)(uintptr_t)10), 0);
    EXPECT_EQ(urt_task_create(&outer, shield_inner, &s), 0);
    EXPECT_EQ(urt_task_await(outer, NULL), URT_ETIMEDOUT);
    trace("inner done %d", urt_task_done(s.inner));
    EXPECT_EQ(urt_task_await(s.inner, &v), 0);
    EXPECT_EQ(urt_task_release(s.inner), 0);
    EXPECT_EQ(urt_task_release(outer), 0);

    /* The inner task cancelled itself: that reaches the shield. */
    s.timeout_ns = 0;
    EXPECT_EQ(urt_task_create(&s.inner, sleeper, "inner"), 0);
    EXPECT_EQ(urt_task_create(&outer, shield_inner, &s), 0);
    EXPECT_EQ(urt_sleep_ms(1), 0);
    EXPECT_EQ(urt_task_cancel(s.inner), 1);
    EXPECT_EQ(urt_task_await(outer, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_release(s.inner), 0);
    EXPECT_EQ(urt_task_release(outer), 0);

    EXPECT_EQ(urt_shield(URT_TASK_NONE, NULL), URT_EBADTASK);
    EXPECT_EQ(urt_shield(urt_task_current(), NULL), -EDEADLK);
    return 0;
}

/* asyncio.shield: cancelling (or timing out) the shielding task ends its
 * wait at once and leaves the inner task running; cancelling the inner
 * task itself reaches the shield. */
static void test_shield_protects_the_inner_task(void **state)
{
    (void)state;
    run_main(main_shield, NULL);
    assert_trace("shield -4001", "outer done, inner done 0",
                 "shield -4002", "exit -4002", "inner done 0",
                 "inner slept -4001", "shield -4001");
}

/* ---- a second deadline while the first's cut is in flight ---- */

static intptr_t absorbs_two_cuts(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++)
        trace(urt_sleep_ms(spaced_ms(100)) == URT_ECANCELED ? "child caught" : "child slept");
    return 7;
}

static intptr_t main_second_deadline_reaches_gather_child(void *arg)
{
    (void)arg;
    urt_task t;
    urt_timeout outer, inner;
    EXPECT_EQ(urt_task_create(&t, absorbs_two_cuts, NULL), 0);
    EXPECT_EQ(urt_timeout_enter(&outer, spaced_ms(50) * MS), 0);
    EXPECT_EQ(urt_timeout_enter(&inner, spaced_ms(10) * MS), 0);
    intptr_t v = 0;
    int rc = urt_gather(&t, 1, 0, &v, NULL);
    trace("gather %d", rc);
    trace("inner exit %d", urt_timeout_exit(&inner));
    trace("outer exit %d", urt_timeout_exit(&outer));
    EXPECT_EQ(urt_task_await(t, &v), 0);
    trace("result %ld", (long)v);
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

/* Each deadline that fires while the gather's cancellation is in flight
 * cancels its unfinished children again, as asyncio's Timeout calls
 * task.cancel() again and the gather passes it on: the child, which
 * handles both, sees both.  The Python twin prints "child caught" twice,
 * then "outer timeout" (the inner scope's exit sees the outer's
 * cancellation still counted).  Before, the second deadline stopped at
 * the gatherer. */
static void test_second_deadline_cancels_gather_children_again(void **state)
{
    (void)state;
    run_main(main_second_deadline_reaches_gather_child, NULL);
    assert_trace("child caught", "child caught", "gather -4002", "inner exit 0",
                 "outer exit -4002", "result 7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_cuts_a_sleep_with_etimedout),
        cmocka_unit_test(test_timeout_cuts_a_read_and_the_kernel_lets_go),
        cmocka_unit_test(test_timeout_cuts_await_and_gather_by_cancelling_what_they_wait_for),
        cmocka_unit_test(test_timeout_cuts_a_parked_wait),
        cmocka_unit_test(test_timeout_cuts_once),
        cmocka_unit_test(test_timeout_passing_while_running_cuts_the_next_suspension),
        cmocka_unit_test(test_timeout_completed_wait_wins_and_the_cut_is_dropped_at_exit),
        cmocka_unit_test(test_timeout_nested_earliest_wins_and_each_knows_its_own),
        cmocka_unit_test(test_timeout_cancel_from_outside_reports_cancellation),
        cmocka_unit_test(test_timeout_reschedule_and_zero),
        cmocka_unit_test(test_timeout_many_deadlines_fire_in_order),
        cmocka_unit_test(test_timeout_rejects_misuse),
        cmocka_unit_test(test_wait_for_values_timeout_and_a_task_that_handles_it),
        cmocka_unit_test(test_wait_for_cancelled_caller_cancels_the_task),
        cmocka_unit_test(test_shield_protects_the_inner_task),
        cmocka_unit_test(test_second_deadline_cancels_gather_children_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
