/*
 * Task groups (asyncio.TaskGroup): the exit waits for every child; the
 * first failure cancels the other children and cuts the owner's code; every
 * failure is reported in order; cancellations of the owner, timeouts around
 * the group, children spawning siblings, nesting, and misuse.
 *
 * Checks inside tasks use EXPECT* (harness.h); see test_gather.c for why.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "harness.h"

#define MS URT_NS_PER_MS

/* A child: sleeps, then returns result; if the sleep is cut it returns
 * on_cancel (0: the cancellation itself). */
struct job {
    const char *name;
    unsigned ms;
    intptr_t result;
    intptr_t on_cancel;
};

#define JOB(name_, ms_, result_) {.name = (name_), .ms = (ms_), .result = (result_)}

static intptr_t job_fn(void *arg)
{
    struct job *j = arg;
    int rc = urt_sleep_ms(spaced_ms(j->ms));
    intptr_t ret = rc ? (j->on_cancel ? j->on_cancel : rc) : j->result;
    trace("%s end %ld", j->name, (long)ret);
    return ret;
}

static void trace_exit(int rc, const urt_group_error *e, size_t n)
{
    char buf[128];
    int len = snprintf(buf, sizeof buf, "exit %d:", rc);
    for (size_t i = 0; i < n && len < (int)sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, " %zu=%d", e[i].index, e[i].error);
    trace("%s", buf);
}

/* ---- success ---- */

static intptr_t main_all_succeed(void *arg)
{
    (void)arg;
    struct job jobs[3] = {JOB("a", 20, 1), JOB("b", 5, 2), JOB("c", 10, 3)};
    urt_group g;
    urt_task b;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[0]), 0);
    EXPECT_EQ(urt_group_spawn(&g, &b, job_fn, &jobs[1]), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[2]), 0);
    trace("body slept %d", urt_sleep_ms(spaced_ms(1)));
    size_t n = 99;
    urt_group_error e[4];
    int rc = urt_group_exit(&g, e, 4, &n);
    trace_exit(rc, e, n);
    EXPECT_EQ(n, 0);
    intptr_t v = 0;
    EXPECT_EQ(urt_task_result(b, &v), 0); /* a handle asked for stays ours */
    EXPECT_EQ(v, 2);
    EXPECT_EQ(urt_task_release(b), 0);
    return 0;
}

/* TaskGroup: the exit returns once every child has ended. */
static void test_group_exit_waits_for_every_child(void **state)
{
    (void)state;
    run_main(main_all_succeed, NULL);
    assert_trace("body slept 0", "b end 2", "c end 3", "a end 1", "exit 0:");
}

/* ---- failure ---- */

static intptr_t main_first_failure(void *arg)
{
    (void)arg;
    struct job jobs[3] = {JOB("a", 10000, 1), JOB("b", 10, -EIO), JOB("c", 10000, 3)};
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    for (int i = 0; i < 3; i++) EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[i]), 0);
    uint64_t t0 = urt_now();
    trace("body slept %d", urt_sleep_s(10));
    /* Cut once: the owner may wait again inside the group. */
    trace("body slept %d", urt_sleep_ms(1));
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[0]), -ESHUTDOWN);
    urt_group_error e[4];
    size_t n = 0;
    int rc = urt_group_exit(&g, e, 4, &n);
    trace_exit(rc, e, n);
    EXPECT_EQ(n, 1);
    EXPECT(urt_now() - t0 < 5 * URT_NS_PER_S);
    return 0;
}

/* TaskGroup: the first failure cancels the other children (in spawn order)
 * and the body; the exit returns it.  The siblings' cancellations are not
 * failures. */
static void test_group_first_failure_cancels_children_and_body(void **state)
{
    (void)state;
    run_main(main_first_failure, NULL);
    assert_trace("b end -5", "a end -4001", "c end -4001", "body slept -4001", "body slept 0",
                 "exit -5: 1=-5");
}

static intptr_t main_every_failure(void *arg)
{
    (void)arg;
    struct job jobs[4] = {JOB("a", 10000, 1), JOB("b", 10, -EIO), JOB("c", 10000, 3),
                          JOB("d", 10000, 4)};
    jobs[0].on_cancel = -EPIPE;  /* fails while handling the cancellation */
    jobs[3].on_cancel = -ENOENT;
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    for (int i = 0; i < 4; i++) EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[i]), 0);
    urt_group_error e[2];
    size_t n = 0;
    int rc = urt_group_exit(&g, e, 2, &n);
    trace_exit(rc, e, 2);
    EXPECT_EQ(n, 3); /* more than fit */
    return 0;
}

/* The issue: every child error is reported, in the order they happened,
 * not just the first; the count says how many did not fit. */
static void test_group_reports_every_failure_in_order(void **state)
{
    (void)state;
    run_main(main_every_failure, NULL);
    assert_trace("b end -5", "a end -32", "c end -4001", "d end -2", "exit -5: 1=-5 0=-32");
}

static intptr_t cancel_after(void *arg)
{
    urt_task *t = arg;
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    trace("cancel child");
    EXPECT_EQ(urt_task_cancel(*t), 1);
    return 0;
}

static intptr_t main_cancelled_child(void *arg)
{
    (void)arg;
    struct job jobs[2] = {JOB("a", 10000, 1), JOB("b", 20, 2)};
    urt_group g;
    urt_task a;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, &a, job_fn, &jobs[0]), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[1]), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, cancel_after, &a), 0);
    trace_exit(urt_group_exit(&g, NULL, 0, NULL), NULL, 0);
    EXPECT_EQ(urt_task_release(a), 0);
    return 0;
}

/* A child cancelled by someone else is no failure: b runs to its end. */
static void test_group_cancelled_child_is_no_failure(void **state)
{
    (void)state;
    run_main(main_cancelled_child, NULL);
    assert_trace("cancel child", "a end -4001", "b end 2", "exit 0:");
}

/* ---- cancelling the owner ---- */

struct owner {
    bool wait_in_body;
    int rc;
};

static intptr_t owner_fn(void *arg)
{
    struct owner *o = arg;
    static struct job jobs[2] = {JOB("a", 10000, 1), JOB("b", 10000, 2)};
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    for (int i = 0; i < 2; i++) EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[i]), 0);
    if (o->wait_in_body) trace("body slept %d", urt_sleep_s(10));
    o->rc = urt_group_exit(&g, NULL, 0, NULL);
    trace("exit %d", o->rc);
    return o->rc;
}

static intptr_t main_cancel_owner(void *arg)
{
    (void)arg;
    for (int in_body = 1; in_body >= 0; in_body--) {
        struct owner o = {.wait_in_body = in_body};
        urt_task t;
        EXPECT_EQ(urt_task_create(&t, owner_fn, &o), 0);
        EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
        trace("cancel owner");
        EXPECT_EQ(urt_task_cancel(t), 1);
        EXPECT_EQ(urt_task_await(t, NULL), URT_ECANCELED);
        EXPECT_EQ(urt_task_release(t), 0);
    }
    return 0;
}

/* TaskGroup: the owner cancelled, in its body or waiting in the exit: the
 * children are cancelled, the exit waits for them and reports the
 * cancellation. */
static void test_group_cancelled_owner_cancels_children(void **state)
{
    (void)state;
    run_main(main_cancel_owner, NULL);
    assert_trace("cancel owner", "body slept -4001", "a end -4001", "b end -4001", "exit -4001",
                 "cancel owner", "a end -4001", "b end -4001", "exit -4001");
}

static intptr_t main_timeout_around(void *arg)
{
    (void)arg;
    struct job jobs[2] = {JOB("a", 10000, 1), JOB("b", 10000, 2)};
    urt_timeout t;
    urt_group g;
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(10) * MS), 0);
    EXPECT_EQ(urt_group_enter(&g), 0);
    for (int i = 0; i < 2; i++) EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[i]), 0);
    EXPECT_EQ(urt_timeout_exit(&t), -EINVAL); /* the group is innermost */
    trace("group exit %d", urt_group_exit(&g, NULL, 0, NULL));
    trace("scope exit %d", urt_timeout_exit(&t));
    return 0;
}

/* A timeout scope around a group: its deadline cancels the children, and
 * the exits report the timeout. */
static void test_group_inside_a_timeout_scope(void **state)
{
    (void)state;
    run_main(main_timeout_around, NULL);
    assert_trace("a end -4001", "b end -4001", "group exit -4002", "scope exit -4002");
}

/* The deadline of a scope around the group cuts the owner's own code
 * inside it (not its wait in the exit): the children are cancelled all the
 * same, as asyncio.TaskGroup sees the CancelledError pass.  Found by the
 * difftest: the exit waited for the children and returned 0. */
static intptr_t main_timeout_cuts_body(void *arg)
{
    (void)arg;
    struct job a = JOB("a", 10000, 1);
    urt_timeout t;
    urt_group g;
    EXPECT_EQ(urt_timeout_enter(&t, spaced_ms(10) * MS), 0);
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &a), 0);
    trace("body slept %d", urt_sleep_ms(10000));
    trace("group exit %d", urt_group_exit(&g, NULL, 0, NULL));
    trace("scope exit %d", urt_timeout_exit(&t));
    return 0;
}

static void test_group_timeout_cutting_the_body_cancels_children(void **state)
{
    (void)state;
    run_main(main_timeout_cuts_body, NULL);
    assert_trace("body slept -4002", "a end -4001", "group exit -4002", "scope exit -4002");
}

static intptr_t absorbs_cancel(void *arg)
{
    (void)arg;
    int rc = urt_sleep_ms(10000);
    trace("absorbed %d", rc);
    return 7;
}

static intptr_t cancels_main_later(void *arg)
{
    urt_task *owner = arg;
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    EXPECT_EQ(urt_task_cancel(*owner), 1); /* requested */
    return 0;
}

/* The owner is cancelled while it awaits a task that handles the
 * cancellation and returns a value: the owner never sees URT_ECANCELED,
 * so the group was not cancelled and exits normally, as in asyncio.
 * Found by the difftest: the exit cancelled the children. */
static intptr_t main_absorbed_cancel(void *arg)
{
    (void)arg;
    struct job shorter = JOB("short", 30, 1);
    urt_task me = urt_task_current(), canceller, absorber;
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &shorter), 0);
    EXPECT_EQ(urt_task_create(&absorber, absorbs_cancel, NULL), 0);
    EXPECT_EQ(urt_task_create(&canceller, cancels_main_later, &me), 0);
    intptr_t v = 0;
    int rc = urt_task_await(absorber, &v);
    trace("await %d gives %ld", rc, (long)v);
    trace("group exit %d", urt_group_exit(&g, NULL, 0, NULL));
    EXPECT_EQ(urt_task_await(canceller, NULL), 0);
    EXPECT_EQ(urt_task_release(canceller), 0);
    EXPECT_EQ(urt_task_release(absorber), 0);
    urt_task_release(me);
    return 0;
}

static void test_group_cancel_the_owner_absorbed_is_no_cancel(void **state)
{
    (void)state;
    run_main(main_absorbed_cancel, NULL);
    assert_trace("absorbed -4001", "await 0 gives 7", "short end 1", "group exit 0");
}

static intptr_t ticks(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 5; i++) {
        trace("tick %d", i);
        EXPECT_EQ(urt_yield(), 0);
    }
    return 0;
}

static intptr_t yields_then_ends(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_yield(), 0);
    trace("child ends");
    return 0;
}

/* The exit returns two passes after the last child ends, as asyncio's
 * (the child's done callback, then the future __aexit__ awaits): the
 * Python twin prints tick 1, tick 2, child ends, tick 3, tick 4, exit. */
static intptr_t main_exit_passes(void *arg)
{
    (void)arg;
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, ticks, NULL), 0);
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, yields_then_ends, NULL), 0);
    EXPECT_EQ(urt_group_exit(&g, NULL, 0, NULL), 0);
    trace("exit");
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

static void test_group_exit_returns_in_asyncio_pass(void **state)
{
    (void)state;
    run_main(main_exit_passes, NULL);
    assert_trace("tick 1", "tick 2", "child ends", "tick 3", "tick 4", "exit", "tick 5");
}

/* A task outside the group spawns into it after its last child ended,
 * while the owner, woken in the exit, has not run yet: the exit waits for
 * that child too, and that child may end before the owner runs, without
 * waking it twice.  Found by the fuzzer (a use after free of the group). */
static urt_group *late_group;
static urt_task first_child;

static intptr_t ends_at_once(void *arg)
{
    trace("%s ends", (const char *)arg);
    return 0;
}

static intptr_t spawns_late(void *arg)
{
    (void)arg;
    while (urt_task_done(first_child) != 1) EXPECT_EQ(urt_yield(), 0);
    EXPECT_EQ(urt_group_spawn(late_group, NULL, ends_at_once, "late"), 0);
    return 0;
}

static intptr_t main_late_spawn(void *arg)
{
    (void)arg;
    urt_group g;
    late_group = &g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, &first_child, ends_at_once, "first"), 0);
    urt_task spawner;
    EXPECT_EQ(urt_task_create(&spawner, spawns_late, NULL), 0);
    trace("exit %d", urt_group_exit(&g, NULL, 0, NULL));
    EXPECT_EQ(urt_task_await(spawner, NULL), 0);
    EXPECT_EQ(urt_task_release(spawner), 0);
    EXPECT_EQ(urt_task_release(first_child), 0);
    return 0;
}

static void test_group_exit_waits_for_a_child_spawned_after_the_last_ended(void **state)
{
    (void)state;
    run_main(main_late_spawn, NULL);
    assert_trace("first ends", "late ends", "exit 0");
}

/* ---- the passes asyncio.TaskGroup takes ---- */

static intptr_t starts_then_sleeps(void *arg)
{
    trace("%s start", ((struct job *)arg)->name);
    return job_fn(arg);
}

static urt_group *exit_group;
static urt_task exit_owner;

static intptr_t spawns_then_cancels_owner(void *arg)
{
    (void)arg;
    static struct job late = JOB("late", 10000, 2);
    EXPECT_EQ(urt_group_spawn(exit_group, NULL, starts_then_sleeps, &late), 0);
    EXPECT_EQ(urt_task_cancel(exit_owner), 1);
    return 0;
}

static intptr_t main_cancel_in_exit(void *arg)
{
    (void)arg;
    struct job a = JOB("a", 10000, 1);
    urt_group g;
    urt_task helper;
    exit_group = &g;
    exit_owner = urt_task_current();
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &a), 0);
    EXPECT_EQ(urt_task_create(&helper, spawns_then_cancels_owner, NULL), 0);
    trace("exit %d", urt_group_exit(&g, NULL, 0, NULL));
    EXPECT_EQ(urt_task_await(helper, NULL), 0);
    EXPECT_EQ(urt_task_release(helper), 0);
    EXPECT_EQ(urt_task_release(exit_owner), 0);
    return 0;
}

/* The owner cancelled while it waits in the exit cancels the children
 * when it next runs, as TaskGroup.__aexit__ does when it catches the
 * CancelledError: a child spawned in the same step as the cancel starts
 * first.  The Python twin prints the same four lines; before, "late"
 * was cancelled before it ever ran.  Found by the difftest. */
static void test_group_cancel_in_exit_reaches_children_when_owner_runs(void **state)
{
    (void)state;
    run_main(main_cancel_in_exit, NULL);
    assert_trace("late start", "a end -4001", "late end -4001", "exit -4001");
}

static intptr_t main_exit_in_the_pass_a_child_ended(void *arg)
{
    (void)arg;
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, ticks, NULL), 0);
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, ends_at_once, "child"), 0);
    EXPECT_EQ(urt_yield(), 0); /* the child runs and ends first */
    EXPECT_EQ(urt_group_exit(&g, NULL, 0, NULL), 0);
    trace("exit");
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

/* The exit reached in the pass its last child ended still waits: the
 * group learns of the end in the next pass, and the exit returns in the
 * one after, as the Python twin prints.  Before, it returned at once,
 * between tick 1 and tick 2. */
static void test_group_exit_in_the_pass_a_child_ended_waits(void **state)
{
    (void)state;
    run_main(main_exit_in_the_pass_a_child_ended, NULL);
    assert_trace("tick 1", "child ends", "tick 2", "tick 3", "exit", "tick 4", "tick 5");
}

static intptr_t fails_at_once(void *arg)
{
    (void)arg;
    trace("f fails");
    return -EIO;
}

static intptr_t spawns_after_failure(void *arg)
{
    static struct job t = JOB("t", 10000, 3), s = JOB("s", 10000, 2);
    trace("s spawns %d", urt_group_spawn(arg, NULL, starts_then_sleeps, &t));
    return job_fn(&s);
}

static intptr_t main_failure_learned_later(void *arg)
{
    (void)arg;
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, fails_at_once, NULL), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, spawns_after_failure, &g), 0);
    trace("body slept %d", urt_sleep_s(10));
    urt_group_error e[2];
    size_t n = 0;
    int rc = urt_group_exit(&g, e, 2, &n);
    trace_exit(rc, e, n);
    return 0;
}

/* A group learns that a child ended one pass later, in asyncio's done
 * callback (_on_task_done): a sibling that runs in the pass the failure
 * happened still spawns, and the abort then cancels that new child before
 * it ever ran.  The Python twin prints the same; before, the spawn was
 * refused with -ESHUTDOWN. */
static void test_group_learns_of_a_failure_one_pass_later(void **state)
{
    (void)state;
    run_main(main_failure_learned_later, NULL);
    assert_trace("f fails", "s spawns 0", "s end -4001", "body slept -4001", "exit -5: 0=-5");
}

static intptr_t slow_to_cancel(void *arg)
{
    (void)arg;
    if (urt_sleep_s(10) == URT_ECANCELED) EXPECT_EQ(urt_sleep_ms(spaced_ms(20)), 0);
    trace("b end");
    return URT_ECANCELED;
}

static intptr_t cancels_owner_soon(void *arg)
{
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    trace("cancel owner");
    EXPECT_EQ(urt_task_cancel(*(urt_task *)arg), 1);
    return 0;
}

static intptr_t main_failure_keeps_outside_cancel(void *arg)
{
    bool cancel_owner = *(bool *)arg;
    urt_task me = urt_task_current(), canceller;
    if (cancel_owner) EXPECT_EQ(urt_task_create(&canceller, cancels_owner_soon, &me), 0);
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, fails_at_once, NULL), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, slow_to_cancel, NULL), 0);
    trace("exit %d", urt_group_exit(&g, NULL, 0, NULL));
    trace("slept %d", urt_sleep_ms(1));
    trace("slept %d", urt_sleep_ms(1));
    if (cancel_owner) {
        EXPECT_EQ(urt_task_await(canceller, NULL), 0);
        EXPECT_EQ(urt_task_release(canceller), 0);
    }
    urt_task_release(me);
    return 0;
}

/* The children's failure wins over a cancellation of the owner from
 * outside (here while it waits in the exit), but that cancellation is not
 * lost: the owner's next suspension point gets it, once, as with asyncio's
 * TaskGroup since Python 3.13, whose twin prints the same.  Without one
 * from outside, the group's own abort is spent in the exit. */
static void test_group_failure_keeps_a_cancellation_from_outside(void **state)
{
    (void)state;
    bool cancel_owner = true;
    run_main(main_failure_keeps_outside_cancel, &cancel_owner);
    assert_trace("f fails", "cancel owner", "b end", "exit -5", "slept -4001", "slept 0");
    cancel_owner = false;
    run_main(main_failure_keeps_outside_cancel, &cancel_owner);
    assert_trace("f fails", "b end", "exit -5", "slept 0", "slept 0");
}

static urt_group *cancel_group;

static intptr_t cancels_group_soon(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    trace("cancel group %d", urt_group_cancel(cancel_group));
    trace("again %d", urt_group_cancel(cancel_group));
    return 0;
}

static intptr_t main_group_cancel(void *arg)
{
    bool from_child = *(bool *)arg;
    struct job jobs[2] = {JOB("a", 10000, 1), JOB("b", 10000, 2)};
    urt_group g;
    cancel_group = &g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    for (int i = 0; i < 2; i++) EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[i]), 0);
    if (from_child) {
        EXPECT_EQ(urt_group_spawn(&g, NULL, cancels_group_soon, NULL), 0);
    } else {
        EXPECT_EQ(urt_yield(), 0); /* the children start */
        trace("cancel group %d", urt_group_cancel(&g));
        trace("body slept %d", urt_sleep_ms(1));
        trace("body slept %d", urt_sleep_ms(1));
    }
    trace("exit %d", urt_group_exit(&g, NULL, 0, NULL));
    EXPECT_EQ(urt_group_cancel(&g), -EINVAL); /* exited */
    urt_task me = urt_task_current();
    trace("cancelling %d", urt_task_cancelling(me));
    trace("slept %d", urt_sleep_ms(1));
    return 0;
}

/* urt_group_cancel, from the owner's body or from a child while the owner
 * waits in the exit: the children are cancelled, the body's next wait is
 * cut once, and the exit returns 0, leaving no cancellation behind, as
 * TaskGroup.cancel() of Python 3.14.  Its twin (3.14's cancel() written
 * out, on the difftest's 3.13 TaskGroup, since this machine has 3.11)
 * prints the same lines, the children in a set's order. */
static void test_group_cancel_aborts_without_an_error(void **state)
{
    (void)state;
    bool from_child = false;
    run_main(main_group_cancel, &from_child);
    assert_trace("cancel group 0", "a end -4001", "b end -4001", "body slept -4001",
                 "body slept 0", "exit 0", "cancelling 0", "slept 0");
    from_child = true;
    run_main(main_group_cancel, &from_child);
    assert_trace("cancel group 0", "again 0", "a end -4001", "b end -4001", "exit 0",
                 "cancelling 0", "slept 0");
}

/* ---- children spawning, nesting ---- */

static urt_group *shared_group;

static intptr_t spawns_sibling(void *arg)
{
    static struct job late = JOB("late", 10, 9);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0); /* the owner is in the exit by now */
    EXPECT_EQ(urt_group_spawn(shared_group, NULL, job_fn, &late), 0);
    trace("%s spawned", (const char *)arg);
    return 0;
}

static intptr_t inner_group(void *arg)
{
    (void)arg;
    static struct job jobs[2] = {JOB("x", 5, 1), JOB("y", 10, -EIO)};
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    for (int i = 0; i < 2; i++) EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &jobs[i]), 0);
    int rc = urt_group_exit(&g, NULL, 0, NULL);
    trace("inner exit %d", rc);
    return rc;
}

static intptr_t main_spawning(void *arg)
{
    (void)arg;
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    shared_group = &g;
    EXPECT_EQ(urt_group_spawn(&g, NULL, spawns_sibling, "s"), 0);
    trace_exit(urt_group_exit(&g, NULL, 0, NULL), NULL, 0);

    /* A child that runs a group of its own and fails with its failure. */
    struct job slow = JOB("slow", 10000, 1);
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, inner_group, NULL), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &slow), 0);
    urt_group_error e[2];
    size_t n = 0;
    int rc = urt_group_exit(&g, e, 2, &n);
    trace_exit(rc, e, n);
    return 0;
}

/* Children may spawn into their group while the owner waits in the exit
 * (asyncio allows it), and groups nest: an inner group's failure fails
 * its owner, a child of the outer group, which aborts the outer one. */
static void test_group_children_spawn_and_groups_nest(void **state)
{
    (void)state;
    run_main(main_spawning, NULL);
    assert_trace("s spawned", "late end 9", "exit 0:",
                 "x end 1", "y end -5", "inner exit -5", "slow end -4001", "exit -5: 0=-5");
}

/* ---- misuse ---- */

static intptr_t exit_from_other(void *arg)
{
    EXPECT_EQ(urt_group_exit(arg, NULL, 0, NULL), -EINVAL);
    return 0;
}

static intptr_t leaves_group_open(void *arg)
{
    static struct job forever = JOB("orphan", 10000, 1);
    (void)arg;
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, &forever), 0);
    EXPECT_EQ(urt_yield(), 0); /* the child starts its sleep */
    return 0;                  /* without the exit */
}

static intptr_t main_misuse(void *arg)
{
    (void)arg;
    urt_group g, never = {0};
    urt_group_error e[1];
    EXPECT_EQ(urt_group_enter(NULL), -EINVAL);
    EXPECT_EQ(urt_group_exit(&never, NULL, 0, NULL), -EINVAL);
    EXPECT_EQ(urt_group_spawn(&never, NULL, job_fn, NULL), -EINVAL);
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, NULL, NULL), -EINVAL);
    EXPECT_EQ(urt_group_exit(&g, NULL, 1, NULL), -EINVAL);
    urt_timeout t;
    EXPECT_EQ(urt_timeout_enter(&t, URT_NO_TIMEOUT), 0);
    EXPECT_EQ(urt_group_exit(&g, e, 1, NULL), -EINVAL); /* not innermost */
    EXPECT_EQ(urt_timeout_exit(&t), 0);
    urt_task other;
    EXPECT_EQ(urt_task_create(&other, exit_from_other, &g), 0);
    EXPECT_EQ(urt_task_await(other, NULL), 0);
    EXPECT_EQ(urt_task_release(other), 0);
    EXPECT_EQ(urt_group_exit(&g, e, 1, NULL), 0);
    EXPECT_EQ(urt_group_exit(&g, e, 1, NULL), -EINVAL); /* twice */
    EXPECT_EQ(urt_group_spawn(&g, NULL, job_fn, NULL), -EINVAL); /* exited */

    /* A task that returns inside its group: the children are cancelled. */
    urt_task t2;
    EXPECT_EQ(urt_task_create(&t2, leaves_group_open, NULL), 0);
    EXPECT_EQ(urt_task_await(t2, NULL), 0);
    EXPECT_EQ(urt_task_release(t2), 0);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    trace("main done");
    return 0;
}

static void test_group_rejects_misuse(void **state)
{
    (void)state;
    run_main(main_misuse, NULL);
    assert_trace("orphan end -4001", "main done");
    urt_group g = {0};
    assert_int_equal(urt_group_enter(&g), URT_ENOLOOP);
    assert_int_equal(urt_group_spawn(&g, NULL, job_fn, NULL), URT_ENOLOOP);
    assert_int_equal(urt_group_exit(&g, NULL, 0, NULL), URT_ENOLOOP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_exit_waits_for_every_child),
        cmocka_unit_test(test_group_first_failure_cancels_children_and_body),
        cmocka_unit_test(test_group_reports_every_failure_in_order),
        cmocka_unit_test(test_group_cancelled_child_is_no_failure),
        cmocka_unit_test(test_group_cancelled_owner_cancels_children),
        cmocka_unit_test(test_group_inside_a_timeout_scope),
        cmocka_unit_test(test_group_timeout_cutting_the_body_cancels_children),
        cmocka_unit_test(test_group_cancel_the_owner_absorbed_is_no_cancel),
        cmocka_unit_test(test_group_exit_returns_in_asyncio_pass),
        cmocka_unit_test(test_group_exit_waits_for_a_child_spawned_after_the_last_ended),
        cmocka_unit_test(test_group_cancel_in_exit_reaches_children_when_owner_runs),
        cmocka_unit_test(test_group_learns_of_a_failure_one_pass_later),
        cmocka_unit_test(test_group_exit_in_the_pass_a_child_ended_waits),
        cmocka_unit_test(test_group_failure_keeps_a_cancellation_from_outside),
        cmocka_unit_test(test_group_cancel_aborts_without_an_error),
        cmocka_unit_test(test_group_children_spawn_and_groups_nest),
        cmocka_unit_test(test_group_rejects_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
