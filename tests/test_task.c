/*
 * Tasks: creation order, await, cancellation, handle lifetime, names,
 * options.  SEMANTICS 1.3, 1.4, 3.1, 3.2, 3.4 and 6, and the "Task handles"
 * paragraph of urt.h.
 *
 * Tasks record what they see (return codes included) with trace(); the test
 * compares the whole trace after urt_run() returns, so that a failure never
 * has to unwind out of a fiber and the message shows the real order.
 */
#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include "harness.h"

/* Awaits t and records the code and value; the value is read after the
 * await (C leaves the order of a call's arguments unspecified). */
#define TRACE_AWAIT(fmt, t)                 \
    do {                                    \
        intptr_t v_ = 0;                    \
        int rc_ = urt_task_await((t), &v_); \
        trace(fmt, rc_, (long)v_);          \
    } while (0)

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Records "<name>:run" and returns 0. */
static intptr_t rec(void *arg)
{
    trace("%s:run", (const char *)arg);
    return 0;
}

/* Returns its argument, without suspending. */
static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t noop(void *arg)
{
    (void)arg;
    return 0;
}

/* Warms the allocator up so that run_checked() sees a steady mapping count. */
static int warm_up(void **state)
{
    (void)state;
    urt_run(noop, NULL, NULL);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    trace_reset();
    return 0;
}

/* ---- 1.3: create_task ----------------------------------------------- */

static intptr_t create_then_suspend_main(void *arg)
{
    (void)arg;
    urt_task t, u;
    trace("main:create T=%d", urt_task_create(&t, rec, "T"));
    trace("main:before yield");
    trace("main:yield=%d", urt_yield());
    trace("main:create U=%d", urt_task_create(&u, rec, "U"));
    trace("main:before sleep");
    trace("main:sleep=%d", urt_sleep_ms(1));
    trace("main:await T=%d", urt_task_await(t, NULL));
    trace("main:await U=%d", urt_task_await(u, NULL));
    return 0;
}

/* SEMANTICS 1.3: create_task returns at once; the task first runs when the
 * caller suspends (a yield, a sleep). */
static void test_create_task_does_not_run_until_caller_suspends(void **state)
{
    (void)state;
    assert_int_equal(run_checked(create_then_suspend_main, NULL, NULL), 0);
    assert_trace("main:create T=0", "main:before yield", "T:run", "main:yield=0",
                 "main:create U=0", "main:before sleep", "U:run", "main:sleep=0",
                 "main:await T=0", "main:await U=0");
}

static intptr_t fifo_main(void *arg)
{
    (void)arg;
    static const char *names[] = {"T0", "T1", "T2", "T3", "T4"};
    urt_task t[5];
    for (int i = 0; i < 5; i++)
        if (urt_task_create(&t[i], rec, (void *)names[i]) != 0) return -EIO;
    trace("main:created");
    trace("main:await T4=%d", urt_task_await(t[4], NULL));
    return 0;
}

/* SEMANTICS 1.3: tasks created one after another start in creation order. */
static void test_tasks_start_in_creation_order(void **state)
{
    (void)state;
    assert_int_equal(run_checked(fifo_main, NULL, NULL), 0);
    assert_trace("main:created", "T0:run", "T1:run", "T2:run", "T3:run", "T4:run",
                 "main:await T4=0");
}

/* ---- 1.4: await ------------------------------------------------------ */

static int value_target;

static intptr_t await_value_main(void *arg)
{
    (void)arg;
    const intptr_t values[] = {
        42, 0, (intptr_t)&value_target, INTPTR_MAX, INTPTR_MIN,
        -4096, /* just below urt's error range: a value, not an error */
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        urt_task t;
        if (urt_task_create(&t, ret_arg, (void *)values[i]) != 0) return -EIO;
        intptr_t v = 12345;
        int rc = urt_task_await(t, &v);
        trace("await[%zu]=%d %s", i, rc, v == values[i] ? "same" : "differs");
        trace("await NULL=%d", urt_task_await(t, NULL));
    }
    return 0;
}

/* SEMANTICS 1.4: awaiting a task gives its value, whatever pointer-sized
 * value that is outside -4095..-1. */
static void test_await_gives_task_value(void **state)
{
    (void)state;
    assert_int_equal(run_checked(await_value_main, NULL, NULL), 0);
    assert_trace("await[0]=0 same", "await NULL=0", "await[1]=0 same", "await NULL=0",
                 "await[2]=0 same", "await NULL=0", "await[3]=0 same", "await NULL=0",
                 "await[4]=0 same", "await NULL=0", "await[5]=0 same", "await NULL=0");
}

static intptr_t fail_after_yield(void *arg)
{
    urt_yield();
    return (intptr_t)arg;
}

static intptr_t await_error_main(void *arg)
{
    (void)arg;
    const intptr_t errs[] = {-EIO, -1, -4095, URT_ETIMEDOUT, -EDEADLK};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        urt_task t;
        if (urt_task_create(&t, fail_after_yield, (void *)errs[i]) != 0) return -EIO;
        trace("await[%zu]=%d", i, urt_task_await(t, NULL));
        trace("cancelled=%d", urt_task_cancelled(t));
    }
    return 0;
}

/* SEMANTICS 1.4, 1.6: a task fails by returning an error; the error reaches
 * whoever awaits it, and is not mistaken for a cancellation. */
static void test_await_gives_task_error(void **state)
{
    (void)state;
    assert_int_equal(run_checked(await_error_main, NULL, NULL), 0);
    assert_trace("await[0]=-5", "cancelled=0", "await[1]=-1", "cancelled=0",
                 "await[2]=-4095", "cancelled=0", "await[3]=-4002", "cancelled=0",
                 "await[4]=-35", "cancelled=0");
}

static intptr_t await_done_main(void *arg)
{
    (void)arg;
    urt_task t, late;
    if (urt_task_create(&t, ret_arg, (void *)42) != 0) return -EIO;
    TRACE_AWAIT("main:await T=%d v=%ld", t);
    trace("main:done=%d", urt_task_done(t));
    if (urt_task_create(&late, rec, "L") != 0) return -EIO;
    TRACE_AWAIT("main:await T again=%d v=%ld", t);
    trace("main:yield=%d", urt_yield());
    return 0;
}

/* SEMANTICS 1.4: awaiting a finished task returns at once, without yielding:
 * a task created just before does not start yet. */
static void test_await_finished_task_returns_without_yielding(void **state)
{
    (void)state;
    assert_int_equal(run_checked(await_done_main, NULL, NULL), 0);
    assert_trace("main:await T=0 v=42", "main:done=1", "main:await T again=0 v=42",
                 "L:run", "main:yield=0");
}

static urt_task shared_target;

static intptr_t target_sleeps_then_returns(void *arg)
{
    trace("target:start");
    urt_sleep_ms(20);
    trace("target:end");
    return (intptr_t)arg;
}

/* Yields arg times before awaiting shared_target. */
static intptr_t late_awaiter(void *arg)
{
    static const char *names[] = {"a", "b", "c"};
    intptr_t yields = (intptr_t)arg;
    const char *name = names[yields];
    for (intptr_t i = 0; i < yields; i++) urt_yield();
    trace("%s:await", name);
    intptr_t v = -1;
    int rc = urt_task_await(shared_target, &v);
    trace("%s:got %d v=%ld", name, rc, (long)(rc == 0 ? v : 0));
    return 0;
}

static intptr_t many_awaiters_main(void *arg)
{
    urt_task w[3];
    if (urt_task_create(&shared_target, target_sleeps_then_returns, arg) != 0) return -EIO;
    /* Created c, b, a; they start awaiting in the order a, b, c. */
    for (intptr_t i = 2; i >= 0; i--)
        if (urt_task_create(&w[2 - i], late_awaiter, (void *)i) != 0) return -EIO;
    for (int i = 0; i < 3; i++) urt_task_await(w[i], NULL);
    return 0;
}

/* SEMANTICS 1.4: several tasks may await the same task; all get its value,
 * woken in the order they started awaiting (here the reverse of their
 * creation order). */
static void test_several_awaiters_all_get_value_in_order_they_awaited(void **state)
{
    (void)state;
    assert_int_equal(run_checked(many_awaiters_main, (void *)7, NULL), 0);
    assert_trace("target:start", "a:await", "b:await", "c:await", "target:end",
                 "a:got 0 v=7", "b:got 0 v=7", "c:got 0 v=7");
}

/* SEMANTICS 1.4, 1.6: the same with a failing task: every awaiter gets the
 * error. */
static void test_several_awaiters_all_get_error(void **state)
{
    (void)state;
    assert_int_equal(run_checked(many_awaiters_main, (void *)(intptr_t)-EPIPE, NULL), 0);
    assert_trace("target:start", "a:await", "b:await", "c:await", "target:end",
                 "a:got -32 v=0", "b:got -32 v=0", "c:got -32 v=0");
}

static intptr_t await_self_task(void *arg)
{
    trace("%s:await self=%d", (const char *)arg, urt_task_await(urt_task_current(), NULL));
    trace("%s:sleep=%d", (const char *)arg, urt_sleep_ms(1));
    return 5;
}

static intptr_t await_self_main(void *arg)
{
    (void)arg;
    urt_task t;
    trace("main:await self=%d", urt_task_await(urt_task_current(), NULL));
    if (urt_task_create(&t, await_self_task, "T") != 0) return -EIO;
    TRACE_AWAIT("main:await T=%d v=%ld", t);
    return 0;
}

/* SEMANTICS 1.4: a task awaiting itself gets -EDEADLK (main or not), and
 * carries on. */
static void test_await_self_is_edeadlk(void **state)
{
    (void)state;
    assert_int_equal(run_checked(await_self_main, NULL, NULL), 0);
    assert_trace("main:await self=-35", "T:await self=-35", "T:sleep=0", "main:await T=0 v=5");
}

static urt_task cyc_a, cyc_b, cyc_main;

static intptr_t cyc_a_fn(void *arg)
{
    (void)arg;
    intptr_t v = 0;
    trace("A:await B");
    int rc = urt_task_await(cyc_b, &v);
    trace("A:got %d v=%ld", rc, (long)v);
    return 1;
}

static intptr_t cyc_b_fn(void *arg)
{
    (void)arg;
    trace("B:await A");
    trace("B:got %d", urt_task_await(cyc_a, NULL));
    return 9;
}

static intptr_t cycle2_main(void *arg)
{
    (void)arg;
    if (urt_task_create(&cyc_a, cyc_a_fn, NULL) != 0) return -EIO;
    if (urt_task_create(&cyc_b, cyc_b_fn, NULL) != 0) return -EIO;
    TRACE_AWAIT("main:await A=%d v=%ld", cyc_a);
    /* The loop is still usable: a new task runs and sleeps. */
    urt_task t;
    if (urt_task_create(&t, target_sleeps_then_returns, (void *)3) != 0) return -EIO;
    TRACE_AWAIT("main:await T=%d v=%ld", t);
    return 0;
}

/* SEMANTICS 1.4: A awaits B, B awaits A: B's await closes the cycle and gets
 * -EDEADLK at once; A then gets B's value; the loop goes on. */
static void test_await_cycle_is_edeadlk_for_task_closing_it(void **state)
{
    (void)state;
    assert_int_equal(run_checked(cycle2_main, NULL, NULL), 0);
    assert_trace("A:await B", "B:await A", "B:got -35", "A:got 0 v=9", "main:await A=0 v=1",
                 "target:start", "target:end", "main:await T=0 v=3");
}

static intptr_t cyc3_b_fn(void *arg)
{
    (void)arg;
    trace("B:await main");
    trace("B:got %d", urt_task_await(cyc_main, NULL));
    return 9;
}

static intptr_t cycle3_main(void *arg)
{
    (void)arg;
    cyc_main = urt_task_current();
    if (urt_task_create(&cyc_a, cyc_a_fn, NULL) != 0) return -EIO;
    if (urt_task_create(&cyc_b, cyc3_b_fn, NULL) != 0) return -EIO;
    trace("main:await A");
    TRACE_AWAIT("main:got %d v=%ld", cyc_a);
    trace("main:sleep=%d", urt_sleep_ms(1));
    return 0;
}

/* SEMANTICS 1.4: a longer cycle, main -> A -> B -> main, is found too (not
 * only a task awaiting its own awaiter). */
static void test_await_cycle_of_three_is_edeadlk(void **state)
{
    (void)state;
    assert_int_equal(run_checked(cycle3_main, NULL, NULL), 0);
    assert_trace("main:await A", "A:await B", "B:await main", "B:got -35", "A:got 0 v=9",
                 "main:got 0 v=1", "main:sleep=0");
}

/* ---- 3: cancellation ------------------------------------------------- */

static intptr_t not_started_main(void *arg)
{
    (void)arg;
    urt_task t, w;
    if (urt_task_create(&t, rec, "T") != 0) return -EIO;
    trace("main:cancel=%d", urt_task_cancel(t));
    trace("main:cancel again=%d", urt_task_cancel(t));
    /* Another task awaits it too. */
    shared_target = t;
    if (urt_task_create(&w, late_awaiter, (void *)0) != 0) return -EIO;
    urt_task_await(w, NULL);
    trace("main:await=%d", urt_task_await(t, NULL));
    trace("main:done=%d cancelled=%d", urt_task_done(t), urt_task_cancelled(t));
    intptr_t v = 0;
    trace("main:result=%d", urt_task_result(t, &v));
    trace("main:cancel done=%d", urt_task_cancel(t));
    return 0;
}

/* SEMANTICS 3.4: a task cancelled before it ever ran never runs its body;
 * cancel says "requested" (1) each time until it has ended; its awaiters get
 * URT_ECANCELED and it counts as cancelled. */
static void test_cancel_before_start_never_runs_body(void **state)
{
    (void)state;
    assert_int_equal(run_checked(not_started_main, NULL, NULL), 0);
    assert_trace("main:cancel=1", "main:cancel again=1", "a:await", "a:got -4001 v=0",
                 "main:await=-4001", "main:done=1 cancelled=1", "main:result=-4001",
                 "main:cancel done=0");
}

static intptr_t cancel_finished_main(void *arg)
{
    (void)arg;
    urt_task ok, bad;
    if (urt_task_create(&ok, ret_arg, (void *)8) != 0) return -EIO;
    if (urt_task_create(&bad, ret_arg, (void *)(intptr_t)-EIO) != 0) return -EIO;
    urt_task_await(ok, NULL);
    urt_task_await(bad, NULL);
    trace("cancel ok=%d bad=%d", urt_task_cancel(ok), urt_task_cancel(bad));
    trace("cancelled ok=%d bad=%d", urt_task_cancelled(ok), urt_task_cancelled(bad));
    intptr_t v = 0;
    int rc = urt_task_result(ok, &v);
    trace("result ok=%d v=%ld bad=%d", rc, (long)v, urt_task_result(bad, NULL));
    v = 0;
    rc = urt_task_await(ok, &v);
    trace("await ok=%d v=%ld bad=%d", rc, (long)v, urt_task_await(bad, NULL));
    trace("sleep=%d", urt_sleep_ms(1)); /* and no cancellation went astray */
    return 0;
}

/* SEMANTICS 3.2: cancelling a finished task does nothing and says so (0). */
static void test_cancel_finished_task_returns_0_and_changes_nothing(void **state)
{
    (void)state;
    assert_int_equal(run_checked(cancel_finished_main, NULL, NULL), 0);
    assert_trace("cancel ok=0 bad=0", "cancelled ok=0 bad=0", "result ok=0 v=8 bad=-5",
                 "await ok=0 v=8 bad=-5", "sleep=0");
}

static intptr_t sleeper_10s(void *arg)
{
    (void)arg;
    trace("T:sleep");
    int rc = urt_sleep_s(10);
    trace("T:sleep=%d", rc);
    return rc;
}

static intptr_t cancel_sleeping_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, sleeper_10s, NULL) != 0) return -EIO;
    urt_sleep_ms(10);
    uint64_t t0 = urt_now();
    trace("main:cancel=%d", urt_task_cancel(t));
    trace("main:done=%d cancelled=%d", urt_task_done(t), urt_task_cancelled(t));
    trace("main:await=%d", urt_task_await(t, NULL));
    uint64_t took = urt_now() - t0;
    trace("main:woken %s", took < URT_NS_PER_S ? "early" : "late");
    trace("main:done=%d cancelled=%d", urt_task_done(t), urt_task_cancelled(t));
    return 0;
}

/* SEMANTICS 3.1, 3.4: a sleeping task cancelled gets URT_ECANCELED from its
 * sleep, long before the sleep would have ended (10 s sleep cancelled after
 * 10 ms); it counts as cancelled only once it has ended. */
static void test_cancel_sleeping_task_wakes_it_early_with_ecanceled(void **state)
{
    (void)state;
    uint64_t t0 = mono_ns();
    assert_int_equal(run_checked(cancel_sleeping_main, NULL, NULL), 0);
    assert_true(mono_ns() - t0 < 1000000000ull);
    assert_trace("T:sleep", "main:cancel=1", "main:done=0 cancelled=0", "T:sleep=-4001",
                 "main:await=-4001", "main:woken early", "main:done=1 cancelled=1");
}

static intptr_t yielder(void *arg)
{
    (void)arg;
    trace("T:start");
    trace("T:yield=%d", urt_yield());
    trace("T:yield=%d", urt_yield());
    return 3;
}

static intptr_t cancel_ready_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, yielder, NULL) != 0) return -EIO;
    trace("main:yield=%d", urt_yield()); /* T starts, yields back */
    trace("main:cancel=%d", urt_task_cancel(t));
    TRACE_AWAIT("main:await=%d v=%ld", t);
    trace("main:cancelled=%d", urt_task_cancelled(t));
    return 0;
}

/* SEMANTICS 3.1: a task that is ready (it yielded) sees the cancellation at
 * that yield, handles it (its next yield works), and the value it returns is
 * what its awaiter gets; it does not count as cancelled. */
static void test_cancel_ready_task_sees_ecanceled_at_its_yield(void **state)
{
    (void)state;
    assert_int_equal(run_checked(cancel_ready_main, NULL, NULL), 0);
    assert_trace("T:start", "main:yield=0", "main:cancel=1", "T:yield=-4001", "T:yield=0",
                 "main:await=0 v=3", "main:cancelled=0");
}

static intptr_t self_canceller(void *arg)
{
    (void)arg;
    trace("T:cancel self=%d", urt_task_cancel(urt_task_current()));
    trace("T:still running");
    trace("T:yield=%d", urt_yield());
    trace("T:sleep=%d", urt_sleep_ms(1));
    trace("T:cancel self=%d", urt_task_cancel(urt_task_current()));
    uint64_t t0 = urt_now();
    int rc = urt_sleep_s(10);
    trace("T:sleep 10s=%d %s", rc, urt_now() - t0 < URT_NS_PER_S ? "early" : "late");
    return 12;
}

static intptr_t self_cancel_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, self_canceller, NULL) != 0) return -EIO;
    TRACE_AWAIT("main:await=%d v=%ld", t);
    trace("main:cancelled=%d", urt_task_cancelled(t));
    return 0;
}

/* SEMANTICS 3.1: a task cancelling itself goes on running and sees
 * URT_ECANCELED at its next suspension point (a yield, a sleep), once. */
static void test_task_cancelling_itself_sees_ecanceled_at_next_suspension(void **state)
{
    (void)state;
    assert_int_equal(run_checked(self_cancel_main, NULL, NULL), 0);
    assert_trace("T:cancel self=1", "T:still running", "T:yield=-4001", "T:sleep=0",
                 "T:cancel self=1", "T:sleep 10s=-4001 early", "main:await=0 v=12",
                 "main:cancelled=0");
}

static intptr_t handler_task(void *arg)
{
    (void)arg;
    trace("T:sleep=%d", urt_sleep_s(10));
    uint64_t t0 = urt_now();
    int rc = urt_sleep_ms(20);
    trace("T:sleep 20ms=%d %s", rc, urt_now() - t0 >= 20 * URT_NS_PER_MS ? "full" : "short");
    trace("T:yield=%d", urt_yield());
    urt_task sub;
    if (urt_task_create(&sub, ret_arg, (void *)5) != 0) return -EIO;
    intptr_t v = 0;
    rc = urt_task_await(sub, &v);
    trace("T:await sub=%d v=%ld", rc, (long)v);
    return 77;
}

static intptr_t handle_and_go_on_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, handler_task, NULL) != 0) return -EIO;
    trace("main:yield=%d", urt_yield());
    trace("main:cancel=%d", urt_task_cancel(t));
    trace("main:cancelled=%d", urt_task_cancelled(t));
    TRACE_AWAIT("main:await=%d v=%ld", t);
    trace("main:done=%d cancelled=%d", urt_task_done(t), urt_task_cancelled(t));
    return 0;
}

/* SEMANTICS 3.1: a cancelled task may handle the cancellation and go on: its
 * later sleeps last their full time, it can create and await tasks, and what
 * it returns is what its awaiter gets (it is then not "cancelled"). */
static void test_cancelled_task_may_handle_it_and_go_on(void **state)
{
    (void)state;
    assert_int_equal(run_checked(handle_and_go_on_main, NULL, NULL), 0);
    assert_trace("main:yield=0", "main:cancel=1", "main:cancelled=0", "T:sleep=-4001",
                 "T:sleep 20ms=0 full", "T:yield=0", "T:await sub=0 v=5", "main:await=0 v=77",
                 "main:done=1 cancelled=0");
}

static urt_task inner_b;

static intptr_t inner_b_fn(void *arg)
{
    int rc = urt_sleep_s(10);
    trace("B:sleep=%d", rc);
    /* arg != NULL: B handles the cancellation and returns 55. */
    return arg ? 55 : rc;
}

static intptr_t outer_a_fn(void *arg)
{
    (void)arg;
    intptr_t v = 0;
    trace("A:await B");
    int rc = urt_task_await(inner_b, &v);
    trace("A:await=%d v=%ld", rc, (long)(rc == 0 ? v : 0));
    if (rc != 0) return rc;
    trace("A:sleep=%d", urt_sleep_ms(1));
    return 1;
}

static intptr_t cancel_awaiter_main(void *arg)
{
    urt_task a;
    if (urt_task_create(&inner_b, inner_b_fn, arg) != 0) return -EIO;
    if (urt_task_create(&a, outer_a_fn, NULL) != 0) return -EIO;
    trace("main:sleep=%d", urt_sleep_ms(5));
    uint64_t t0 = urt_now();
    trace("main:cancel A=%d", urt_task_cancel(a));
    intptr_t v = 0;
    int rc = urt_task_await(a, &v);
    trace("main:await A=%d v=%ld %s", rc, (long)(rc == 0 ? v : 0),
          urt_now() - t0 < URT_NS_PER_S ? "early" : "late");
    trace("main:cancelled A=%d B=%d", urt_task_cancelled(a), urt_task_cancelled(inner_b));
    return 0;
}

/* SEMANTICS 3.1 and urt_task_await (asyncio): cancelling a task blocked in
 * await cancels the awaited task; the awaiter gets the awaited task's
 * outcome, here a value (B handled it), and goes on normally. */
static void test_cancel_awaiting_task_cancels_awaited_and_gets_its_value(void **state)
{
    (void)state;
    assert_int_equal(run_checked(cancel_awaiter_main, (void *)1, NULL), 0);
    assert_trace("A:await B", "main:sleep=0", "main:cancel A=1", "B:sleep=-4001",
                 "A:await=0 v=55", "A:sleep=0", "main:await A=0 v=1 early",
                 "main:cancelled A=0 B=0");
}

/* SEMANTICS 3.1, 3.4: the same where B ends cancelled: A's await gives
 * URT_ECANCELED, A returns it, and both count as cancelled. */
static void test_cancel_awaiting_task_when_awaited_ends_cancelled(void **state)
{
    (void)state;
    assert_int_equal(run_checked(cancel_awaiter_main, NULL, NULL), 0);
    assert_trace("A:await B", "main:sleep=0", "main:cancel A=1", "B:sleep=-4001",
                 "A:await=-4001 v=0", "main:await A=-4001 v=0 early",
                 "main:cancelled A=1 B=1");
}

static intptr_t self_cancel_then_await(void *arg)
{
    (void)arg;
    if (urt_task_create(&inner_b, inner_b_fn, (void *)1) != 0) return -EIO;
    trace("A:yield=%d", urt_yield()); /* B starts its sleep */
    trace("A:cancel self=%d", urt_task_cancel(urt_task_current()));
    uint64_t t0 = urt_now();
    intptr_t v = 0;
    int rc = urt_task_await(inner_b, &v);
    trace("A:await B=%d v=%ld %s", rc, (long)v, urt_now() - t0 < URT_NS_PER_S ? "early" : "late");
    trace("A:sleep=%d", urt_sleep_ms(1));
    /* Awaiting a finished task does not suspend, so it does not deliver a
     * pending cancellation: the next real suspension point does. */
    trace("A:cancel self=%d", urt_task_cancel(urt_task_current()));
    v = 0;
    rc = urt_task_await(inner_b, &v);
    trace("A:await finished B=%d v=%ld", rc, (long)v);
    trace("A:yield=%d", urt_yield());
    return 1;
}

static intptr_t pending_cancel_await_main(void *arg)
{
    (void)arg;
    urt_task a;
    if (urt_task_create(&a, self_cancel_then_await, NULL) != 0) return -EIO;
    TRACE_AWAIT("main:await A=%d v=%ld", a);
    trace("main:cancelled A=%d B=%d", urt_task_cancelled(a), urt_task_cancelled(inner_b));
    return 0;
}

/* SEMANTICS 3.1 and urt_task_await (asyncio): a task cancelled while running
 * that then awaits a task hands the cancellation to that task, and gets its
 * outcome (here a value: B handled it); the cancellation is then spent. */
static void test_pending_cancellation_is_handed_to_the_awaited_task(void **state)
{
    (void)state;
    assert_int_equal(run_checked(pending_cancel_await_main, NULL, NULL), 0);
    assert_trace("A:yield=0", "A:cancel self=1", "B:sleep=-4001", "A:await B=0 v=55 early",
                 "A:sleep=0",
                 "A:cancel self=1", "A:await finished B=0 v=55", "A:yield=-4001",
                 "main:await A=0 v=1", "main:cancelled A=0 B=0");
}

/* ---- handle lifetime (urt.h "Task handles"), SEMANTICS 6 ------------- */

/* Every call taking a handle, in a fixed order. */
static void trace_all_calls(const char *what, urt_task t)
{
    intptr_t v = 0;
    int aw = urt_task_await(t, &v);
    int ca = urt_task_cancel(t);
    int dn = urt_task_done(t);
    int cd = urt_task_cancelled(t);
    int rs = urt_task_result(t, &v);
    const char *nm = urt_task_name(t);
    trace("%s: await=%d cancel=%d done=%d", what, aw, ca, dn);
    trace("%s: cancelled=%d result=%d name=%s", what, cd, rs, nm ? "set" : "NULL");
    trace("%s: release=%d", what, urt_task_release(t));
}

static intptr_t released_main(void *arg)
{
    (void)arg;
    urt_task t, s;
    if (urt_task_create(&t, ret_arg, (void *)3) != 0) return -EIO;
    urt_task_await(t, NULL);
    trace("release=%d", urt_task_release(t));
    trace_all_calls("finished", t);
    /* Released while it still sleeps: the handle is dead at once. */
    if (urt_task_create(&s, sleeper_10s, NULL) != 0) return -EIO;
    urt_yield();
    trace("release=%d", urt_task_release(s));
    trace_all_calls("sleeping", s);
    return 0;
}

/* Handle lifetime: every call with a released handle gives URT_EBADTASK
 * (name gives NULL), whether the task had finished or still runs. */
static void test_released_handle_gives_ebadtask(void **state)
{
    (void)state;
    assert_int_equal(run_checked(released_main, NULL, NULL), 0);
    assert_trace("release=0", "finished: await=-4003 cancel=-4003 done=-4003",
                 "finished: cancelled=-4003 result=-4003 name=NULL", "finished: release=-4003",
                 "T:sleep", "release=0", "sleeping: await=-4003 cancel=-4003 done=-4003",
                 "sleeping: cancelled=-4003 result=-4003 name=NULL", "sleeping: release=-4003",
                 /* main returned: the detached sleeper is cancelled */
                 "T:sleep=-4001");
}

static intptr_t garbage_main(void *arg)
{
    (void)arg;
    trace_all_calls("zero", URT_TASK_NONE);
    trace_all_calls("garbage", (urt_task){0xdeadbeefcafef00dull, 1});
    trace_all_calls("ones", (urt_task){UINT64_MAX, UINT64_MAX});
    trace("main:sleep=%d", urt_sleep_ms(1));
    return 0;
}

/* SEMANTICS 6: a zero or garbage handle gives URT_EBADTASK, and the loop goes
 * on. */
static void test_zero_and_garbage_handles_give_ebadtask(void **state)
{
    (void)state;
    assert_int_equal(run_checked(garbage_main, NULL, NULL), 0);
    assert_trace("zero: await=-4003 cancel=-4003 done=-4003",
                 "zero: cancelled=-4003 result=-4003 name=NULL", "zero: release=-4003",
                 "garbage: await=-4003 cancel=-4003 done=-4003",
                 "garbage: cancelled=-4003 result=-4003 name=NULL", "garbage: release=-4003",
                 "ones: await=-4003 cancel=-4003 done=-4003",
                 "ones: cancelled=-4003 result=-4003 name=NULL", "ones: release=-4003",
                 "main:sleep=0");
}

#define OLD_N 4
#define NEW_N 16
static urt_task old_handles[OLD_N + 1];

static intptr_t sleep_then_return(void *arg)
{
    urt_sleep_ms(2);
    return (intptr_t)arg;
}

static intptr_t first_run_main(void *arg)
{
    (void)arg;
    old_handles[OLD_N] = urt_task_current();
    for (int i = 0; i < OLD_N; i++)
        if (urt_task_create(&old_handles[i], ret_arg, (void *)(intptr_t)i) != 0) return -EIO;
    for (int i = 0; i < OLD_N; i++) urt_task_await(old_handles[i], NULL);
    /* Keep two handles of tasks still alive when main returns. */
    if (urt_task_create(&old_handles[0], sleeper_10s, NULL) != 0) return -EIO;
    urt_yield();
    if (urt_task_create(&old_handles[1], rec, "never") != 0) return -EIO;
    return 0;
}

static intptr_t second_run_main(void *arg)
{
    (void)arg;
    urt_task t[NEW_N];
    int collisions = 0;
    for (int i = 0; i < NEW_N; i++)
        if (urt_task_create(&t[i], sleep_then_return, (void *)(intptr_t)(100 + i)) != 0)
            return -EIO;
    for (int i = 0; i < NEW_N; i++)
        for (int j = 0; j <= OLD_N; j++) collisions += t[i].id == old_handles[j].id;
    if (urt_task_current().id == old_handles[OLD_N].id) collisions++;
    trace("collisions=%d", collisions);
    int bad = 0;
    for (int j = 0; j <= OLD_N; j++) {
        intptr_t v = 0;
        bad += urt_task_cancel(old_handles[j]) != URT_EBADTASK;
        bad += urt_task_release(old_handles[j]) != URT_EBADTASK;
        bad += urt_task_done(old_handles[j]) != URT_EBADTASK;
        bad += urt_task_cancelled(old_handles[j]) != URT_EBADTASK;
        bad += urt_task_result(old_handles[j], &v) != URT_EBADTASK;
        bad += urt_task_name(old_handles[j]) != NULL;
        bad += urt_task_await(old_handles[j], &v) != URT_EBADTASK;
    }
    trace("old handles not EBADTASK=%d", bad);
    /* None of the new tasks was cancelled or released by the old handles. */
    int wrong = 0;
    for (int i = 0; i < NEW_N; i++) {
        intptr_t v = 0;
        wrong += urt_task_await(t[i], &v) != 0 || v != 100 + i;
    }
    trace("new tasks wrong=%d", wrong);
    return 0;
}

/* Handle lifetime: a handle from a run that has ended gives URT_EBADTASK in a
 * later run on the same thread, and never names one of its tasks. */
static void test_handle_from_ended_run_gives_ebadtask(void **state)
{
    (void)state;
    assert_int_equal(run_checked(first_run_main, NULL, NULL), 0);
    assert_trace("T:sleep", "T:sleep=-4001");
    trace_reset();
    assert_int_equal(run_checked(second_run_main, NULL, NULL), 0);
    assert_trace("collisions=0", "old handles not EBADTASK=0", "new tasks wrong=0");
}

static intptr_t reuse_main(void *arg)
{
    (void)arg;
    urt_task old, t[NEW_N];
    if (urt_task_create(&old, ret_arg, (void *)1) != 0) return -EIO;
    urt_task_await(old, NULL);
    urt_task_release(old);
    int collisions = 0, wrong = 0;
    for (int i = 0; i < NEW_N; i++) {
        if (urt_task_create(&t[i], sleep_then_return, (void *)(intptr_t)(100 + i)) != 0)
            return -EIO;
        collisions += t[i].id == old.id;
    }
    trace("collisions=%d", collisions);
    trace("old: cancel=%d done=%d release=%d", urt_task_cancel(old), urt_task_done(old),
          urt_task_release(old));
    for (int i = 0; i < NEW_N; i++) {
        intptr_t v = 0;
        wrong += urt_task_await(t[i], &v) != 0 || v != 100 + i;
        urt_task_release(t[i]);
    }
    trace("new tasks wrong=%d", wrong);
    return 0;
}

/* Handle lifetime: once released, a handle never comes to name another task,
 * even when the new task reuses the old one's slot. */
static void test_released_handle_never_names_a_new_task(void **state)
{
    (void)state;
    assert_int_equal(run_checked(reuse_main, NULL, NULL), 0);
    assert_trace("collisions=0", "old: cancel=-4003 done=-4003 release=-4003",
                 "new tasks wrong=0");
}

static urt_task reused_old;

static intptr_t slot_reuse_main(void *arg)
{
    (void)arg;
    long n = (1L << 24) + 16, collisions = 0, stale_valid = 0;
    if (urt_task_create(&reused_old, ret_arg, NULL) != 0) return -EIO;
    urt_task_await(reused_old, NULL);
    urt_task_release(reused_old);
    for (long i = 0; i < n; i++) {
        urt_task t;
        if (urt_task_create(&t, ret_arg, (void *)7) != 0) return -EIO;
        collisions += t.id == reused_old.id;
        stale_valid += urt_task_done(reused_old) != URT_EBADTASK;
        urt_task_await(t, NULL);
        urt_task_release(t);
    }
    trace("collisions=%ld stale handle valid=%ld", collisions, stale_valid);
    return 0;
}

/* Handle lifetime, "a handle can never come to name another task": not even
 * after its slot has been reused 2^24 times (a service creating 100,000
 * tasks a second gets there in under three minutes).  Too slow for
 * valgrind: skipped under URT_TEST_SMALL, where the count cannot shrink. */
static void test_released_handle_never_names_a_task_after_many_reuses(void **state)
{
    (void)state;
    if (small_scale()) skip();
    assert_int_equal(run_checked(slot_reuse_main, NULL, NULL), 0);
    assert_trace("collisions=0 stale handle valid=0");
}

static urt_task old_run_main, old_run_task;

static intptr_t keep_handles_main(void *arg)
{
    (void)arg;
    old_run_main = urt_task_current();
    if (urt_task_create(&old_run_task, ret_arg, (void *)1) != 0) return -EIO;
    return urt_task_await(old_run_task, NULL);
}

static intptr_t check_old_handles_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, ret_arg, (void *)2) != 0) return -EIO;
    trace("same ids: main=%d task=%d", urt_task_current().id == old_run_main.id,
          t.id == old_run_task.id);
    int dn = urt_task_done(old_run_main), ca = urt_task_cancel(old_run_main);
    trace("old main: done=%d cancel=%d", dn, ca);
    dn = urt_task_done(old_run_task);
    ca = urt_task_cancel(old_run_task);
    trace("old task: done=%d cancel=%d", dn, ca);
    trace("main:sleep=%d", urt_sleep_ms(1)); /* not cancelled through the old handle */
    TRACE_AWAIT("main:await new=%d v=%ld", t);
    return 0;
}

/* Handle lifetime: a handle from an ended run stays invalid however many
 * runs came in between: 65,536 of them (about 10 s) wrap a 16-bit loop tag.
 * Skipped under URT_TEST_SMALL, as above. */
static void test_handle_from_65536_runs_ago_gives_ebadtask(void **state)
{
    (void)state;
    if (small_scale()) skip();
    assert_int_equal(run_checked(keep_handles_main, NULL, NULL), 0);
    for (int i = 0; i < 65535; i++) assert_int_equal(urt_run(noop, NULL, NULL), 0);
    assert_int_equal(run_checked(check_old_handles_main, NULL, NULL), 0);
    assert_trace("same ids: main=0 task=0", "old main: done=-4003 cancel=-4003",
                 "old task: done=-4003 cancel=-4003", "main:sleep=0", "main:await new=0 v=2");
}

static intptr_t sleeps_and_records(void *arg)
{
    trace("%s:start", (const char *)arg);
    int rc = urt_sleep_ms(5);
    trace("%s:end sleep=%d", (const char *)arg, rc);
    return 0;
}

static intptr_t release_running_main(void *arg)
{
    (void)arg;
    urt_task a, b;
    if (urt_task_create(&a, sleeps_and_records, "A") != 0) return -EIO;
    trace("main:release A=%d", urt_task_release(a)); /* before it started */
    if (urt_task_create(&b, sleeps_and_records, "B") != 0) return -EIO;
    if (urt_task_create(NULL, sleeps_and_records, "D") != 0) return -EIO; /* detached */
    trace("main:yield=%d", urt_yield());
    trace("main:release B=%d", urt_task_release(b)); /* while it sleeps */
    trace("main:sleep=%d", urt_sleep_ms(50));
    return 0;
}

/* Handle lifetime: releasing a task (before it starts or while it sleeps)
 * does not stop it, and a task created with a NULL handle pointer
 * (detached) runs too: each still records its events. */
static void test_releasing_task_does_not_stop_it(void **state)
{
    (void)state;
    assert_int_equal(run_checked(release_running_main, NULL, NULL), 0);
    assert_trace("main:release A=0", "A:start", "B:start", "D:start", "main:yield=0",
                 "main:release B=0", "A:end sleep=0", "B:end sleep=0", "D:end sleep=0",
                 "main:sleep=0");
}

static int forgotten_ran;

static intptr_t count_and_yield(void *arg)
{
    (void)arg;
    forgotten_ran++;
    urt_yield();
    return forgotten_ran;
}

static intptr_t forget_main(void *arg)
{
    (void)arg;
    int n = small_scale() ? 100 : 1000;
    for (int i = 0; i < n; i++) {
        urt_task t;
        if (urt_task_create(&t, count_and_yield, NULL) != 0) return -EIO;
        if (i % 3 == 0 && urt_task_create(NULL, count_and_yield, NULL) != 0) return -EIO;
        if (i % 10 == 0) urt_yield();
    }
    urt_sleep_ms(1);
    return n;
}

/* Handle lifetime: handles never released (finished tasks, detached ones,
 * tasks cut off when main returns) are reclaimed by urt_run; run_checked and
 * the ASan/valgrind builds prove nothing leaks. */
static void test_forgotten_handles_leak_nothing(void **state)
{
    (void)state;
    int n = small_scale() ? 100 : 1000;
    intptr_t v = 0;
    forgotten_ran = 0;
    assert_int_equal(run_checked(forget_main, NULL, &v), 0);
    assert_int_equal(v, n);
    assert_int_equal(forgotten_ran, n + (n + 2) / 3);
}

/* ---- result, done, name, current ------------------------------------- */

static intptr_t result_main(void *arg)
{
    (void)arg;
    urt_task t, f;
    intptr_t v = -1;
    if (urt_task_create(&t, target_sleeps_then_returns, (void *)21) != 0) return -EIO;
    if (urt_task_create(&f, fail_after_yield, (void *)(intptr_t)-ENOENT) != 0) return -EIO;
    int rc = urt_task_result(t, &v);
    trace("not started: result=%d v=%ld done=%d", rc, (long)v, urt_task_done(t));
    urt_yield();
    rc = urt_task_result(t, &v);
    trace("sleeping: result=%d v=%ld done=%d", rc, (long)v, urt_task_done(t));
    urt_task_await(t, NULL);
    rc = urt_task_result(t, &v);
    trace("finished: result=%d v=%ld done=%d", rc, (long)v, urt_task_done(t));
    trace("failed: result=%d done=%d", urt_task_result(f, NULL), urt_task_done(f));
    trace("NULL value: result=%d", urt_task_result(t, NULL));
    return 0;
}

/* urt_task_result / urt_task_done: -EAGAIN and 0 until the task has finished
 * (not started, sleeping), then its value or error and 1. */
static void test_task_result_is_eagain_until_done_then_outcome(void **state)
{
    (void)state;
    assert_int_equal(run_checked(result_main, NULL, NULL), 0);
    assert_trace("not started: result=-11 v=-1 done=0", "target:start",
                 "sleeping: result=-11 v=-1 done=0", "target:end",
                 "finished: result=0 v=21 done=1", "failed: result=-2 done=1",
                 "NULL value: result=0");
}

#define NAMED_N 5
static char names_seen[NAMED_N + 1][64];

static intptr_t names_main(void *arg)
{
    (void)arg;
    urt_task t[NAMED_N];
    const char *n = urt_task_name(urt_task_current());
    snprintf(names_seen[0], sizeof names_seen[0], "%s", n ? n : "(null)");
    for (int i = 0; i < NAMED_N; i++) {
        if (urt_task_create(&t[i], ret_arg, NULL) != 0) return -EIO;
        if (i == 2) urt_task_await(t[i], NULL); /* finished tasks keep names */
        n = urt_task_name(t[i]);
        snprintf(names_seen[i + 1], sizeof names_seen[i + 1], "%s", n ? n : "(null)");
    }
    for (int i = 0; i < NAMED_N; i++) urt_task_await(t[i], NULL);
    return 0;
}

/* "Task-N" with N a decimal number >= 1, no leading zero; returns N or -1. */
static long task_number(const char *name)
{
    if (strncmp(name, "Task-", 5) != 0) return -1;
    const char *d = name + 5;
    if (*d < '1' || *d > '9') return -1;
    char *end;
    long n = strtol(d, &end, 10);
    return *end ? -1 : n;
}

/* urt_task_opts.name: without a name a task is "Task-N", numbered from 1 as
 * in asyncio: every name is Task-<number>, distinct, increasing in creation
 * order (main included). */
static void test_default_task_names_are_task_n_distinct_and_increasing(void **state)
{
    (void)state;
    for (int run = 0; run < 2; run++) {
        assert_int_equal(run_checked(names_main, NULL, NULL), 0);
        long prev = 0;
        for (int i = 0; i <= NAMED_N; i++) {
            long n = task_number(names_seen[i]);
            if (n <= prev) print_error("names: %s after Task-%ld\n", names_seen[i], prev);
            assert_true(n > prev);
            prev = n;
        }
    }
}

static char custom_seen[4][64];
static urt_task current_seen;

static intptr_t record_current(void *arg)
{
    (void)arg;
    current_seen = urt_task_current();
    const char *n = urt_task_name(current_seen);
    snprintf(custom_seen[3], sizeof custom_seen[3], "%s", n ? n : "(null)");
    return 0;
}

static intptr_t custom_name_main(void *arg)
{
    (void)arg;
    char buf[64];
    urt_task t[3];
    const char *n;
    strcpy(buf, "reader");
    urt_task_opts o = {.name = buf, .stack_size = 0};
    if (urt_task_create_opts(&t[0], record_current, NULL, &o) != 0) return -EIO;
    memset(buf, 'x', sizeof buf - 1); /* the name was copied */
    buf[sizeof buf - 1] = '\0';
    if (urt_task_create_opts(&t[1], ret_arg, NULL, &o) != 0) return -EIO; /* 63 chars */
    strcpy(buf, "exactly-thirty-one-characters-!");
    if (urt_task_create_opts(&t[2], ret_arg, NULL, &o) != 0) return -EIO;
    for (int i = 0; i < 3; i++) {
        n = urt_task_name(t[i]);
        snprintf(custom_seen[i], sizeof custom_seen[i], "%s", n ? n : "(null)");
    }
    for (int i = 0; i < 3; i++) urt_task_await(t[i], NULL);
    return 0;
}

/* urt_task_opts.name is copied, and kept up to URT_TASK_NAME_MAX - 1 chars;
 * longer names are truncated.  The task sees its own name through
 * urt_task_current. */
static void test_custom_task_name_is_copied_and_truncated(void **state)
{
    (void)state;
    assert_int_equal(strlen("exactly-thirty-one-characters-!"), URT_TASK_NAME_MAX - 1);
    assert_int_equal(run_checked(custom_name_main, NULL, NULL), 0);
    assert_string_equal(custom_seen[0], "reader");
    char xs[URT_TASK_NAME_MAX];
    memset(xs, 'x', URT_TASK_NAME_MAX - 1);
    xs[URT_TASK_NAME_MAX - 1] = '\0';
    assert_string_equal(custom_seen[1], xs);
    assert_string_equal(custom_seen[2], "exactly-thirty-one-characters-!");
    assert_string_equal(custom_seen[3], "reader");
}

static char empty_seen[64];

static intptr_t empty_name_main(void *arg)
{
    (void)arg;
    urt_task t;
    urt_task_opts o = {.name = "", .stack_size = 0};
    if (urt_task_create_opts(&t, ret_arg, NULL, &o) != 0) return -EIO;
    const char *n = urt_task_name(t);
    snprintf(empty_seen, sizeof empty_seen, "%s", n ? n : "(null)");
    return urt_task_await(t, NULL);
}

/* urt_task_opts.name: only a NULL name means "Task-N"; an empty name is a
 * name like any other, and kept (as asyncio keeps name=""). */
static void test_empty_custom_task_name_is_kept(void **state)
{
    (void)state;
    strcpy(empty_seen, "unset");
    assert_int_equal(run_checked(empty_name_main, NULL, NULL), 0);
    assert_string_equal(empty_seen, "");
}

static urt_task created_handles[3];
static uint64_t current_ids[3];

static intptr_t current_task_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    current_ids[i] = urt_task_current().id;
    urt_yield(); /* and still itself after a switch */
    if (urt_task_current().id != current_ids[i]) current_ids[i] = 0;
    return 0;
}

static intptr_t current_main(void *arg)
{
    (void)arg;
    uint64_t me = urt_task_current().id;
    for (intptr_t i = 0; i < 3; i++)
        if (urt_task_create(&created_handles[i], current_task_fn, (void *)i) != 0) return -EIO;
    for (int i = 0; i < 3; i++) urt_task_await(created_handles[i], NULL);
    return urt_task_current().id == me && me != 0 ? 1 : -EIO;
}

/* urt_task_current: inside a task it is the handle its creator got (same
 * id); outside any task it is URT_TASK_NONE. */
static void test_task_current_is_creator_handle_inside_and_none_outside(void **state)
{
    (void)state;
    intptr_t v = 0;
    assert_int_equal(urt_task_current().id, 0);
    assert_int_equal(run_checked(current_main, NULL, &v), 0);
    assert_int_equal(v, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_not_equal(created_handles[i].id, 0);
        assert_int_equal(current_ids[i], created_handles[i].id);
    }
    assert_int_not_equal(created_handles[0].id, created_handles[1].id);
    assert_int_equal(urt_task_current().id, 0);
}

/* ---- options, bad arguments ------------------------------------------ */

/* Touches n bytes of its stack, so that a stack smaller than asked faults. */
static intptr_t use_stack(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    volatile char *buf = __builtin_alloca(n);
    for (size_t i = 0; i < n; i += 512) buf[i] = (char)i;
    urt_yield(); /* switch away and back with the big frame live */
    long sum = 0;
    for (size_t i = 0; i < n; i += 512) sum += buf[i] == (char)i;
    return sum == (long)((n + 511) / 512) ? 1 : -EIO;
}

static intptr_t options_main(void *arg)
{
    (void)arg;
    urt_task t = URT_TASK_NONE;
    urt_task_opts big = {.name = NULL, .stack_size = (size_t)URT_STACK_MAX + 1};
    urt_task_opts huge = {.name = NULL, .stack_size = SIZE_MAX};
    urt_task_opts tiny = {.name = "tiny", .stack_size = 1};
    urt_task_opts mib = {.name = "mib", .stack_size = 1u << 20};
    forgotten_ran = 0;
    trace("max+1=%d", urt_task_create_opts(&t, count_and_yield, NULL, &big));
    trace("SIZE_MAX=%d", urt_task_create_opts(&t, count_and_yield, NULL, &huge));
    trace("NULL fn=%d", urt_task_create(&t, NULL, NULL));
    trace("NULL fn opts=%d", urt_task_create_opts(&t, NULL, NULL, &mib));
    trace("NULL fn detached=%d", urt_task_create(NULL, NULL, NULL));
    int rc = urt_yield();
    trace("yield=%d ran=%d", rc, forgotten_ran);
    /* In range: 1 byte is rounded up to URT_STACK_MIN; 1 MiB is usable. */
    trace("tiny=%d", urt_task_create_opts(&t, use_stack, (void *)(uintptr_t)(4 * 1024), &tiny));
    TRACE_AWAIT("tiny await=%d v=%ld", t);
    trace("mib=%d", urt_task_create_opts(&t, use_stack, (void *)(uintptr_t)(768 * 1024), &mib));
    TRACE_AWAIT("mib await=%d v=%ld", t);
    trace("null opts=%d", urt_task_create_opts(&t, ret_arg, (void *)6, NULL));
    TRACE_AWAIT("null opts await=%d v=%ld", t);
    return 0;
}

/* SEMANTICS 6, urt_task_create: a stack larger than URT_STACK_MAX or a NULL
 * fn gives -EINVAL and creates nothing; in-range options work (a tiny size
 * is rounded up, a 1 MiB stack really holds 768 KiB of frame). */
static void test_create_with_bad_options_or_null_fn_is_einval(void **state)
{
    (void)state;
    assert_int_equal(run_checked(options_main, NULL, NULL), 0);
    assert_trace("max+1=-22", "SIZE_MAX=-22", "NULL fn=-22", "NULL fn opts=-22",
                 "NULL fn detached=-22", "yield=0 ran=0", "tiny=0", "tiny await=0 v=1",
                 "mib=0", "mib await=0 v=1", "null opts=0", "null opts await=0 v=6");
}

/* ---- scale ----------------------------------------------------------- */

static intptr_t chain_n;
static intptr_t chain_deepest;

static intptr_t chain_link(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    if (depth > chain_deepest) chain_deepest = depth;
    if (depth == chain_n) return 1000000;
    urt_task next;
    int rc = urt_task_create(&next, chain_link, (void *)(depth + 1));
    if (rc != 0) return rc;
    intptr_t v = 0;
    rc = urt_task_await(next, &v);
    if (rc != 0) return rc;
    if (depth % 2) urt_task_release(next); /* half released, half forgotten */
    return v + 1;
}

static intptr_t chain_main(void *arg)
{
    (void)arg;
    urt_task first;
    int rc = urt_task_create(&first, chain_link, (void *)1);
    if (rc != 0) return rc;
    intptr_t v = 0;
    rc = urt_task_await(first, &v);
    return rc != 0 ? rc : v;
}

/* SEMANTICS 1.4 at scale: a chain of 10,000 tasks (1,000 under
 * URT_TEST_SMALL), each creating the next and awaiting it; the last one's
 * value comes back through every await. */
static void test_chain_of_tasks_each_awaiting_the_next_propagates_value(void **state)
{
    (void)state;
    chain_n = small_scale() ? 1000 : 10000;
    intptr_t v = 0;
    chain_deepest = 0;
    assert_int_equal(run_checked(chain_main, NULL, &v), 0);
    assert_int_equal(chain_deepest, chain_n);
    assert_int_equal(v, 1000000 + chain_n - 1);
}

/* ---- cancellation counts (Task.cancelling / uncancel) -------------- */

static intptr_t sleeper(void *arg)
{
    (void)arg;
    int rc = urt_sleep_s(10);
    trace(rc ? "sleeper %d" : "slept %d", rc);
    return rc;
}

static intptr_t fails_now(void *arg)
{
    (void)arg;
    return -EIO;
}

static intptr_t cancels_arg(void *arg)
{
    EXPECT_EQ(urt_task_cancel(*(urt_task *)arg), 1);
    return 0;
}

static intptr_t cancel_counts_main(void *arg)
{
    (void)arg;
    urt_task me = urt_task_current(), t, t2, c;
    trace("cancelling %d", urt_task_cancelling(me));
    /* Each request counts; ending does not take them back, uncancel does. */
    EXPECT_EQ(urt_task_create(&t, sleeper, NULL), 0);
    EXPECT_EQ(urt_yield(), 0);
    EXPECT_EQ(urt_task_cancel(t), 1);
    EXPECT_EQ(urt_task_cancel(t), 1);
    trace("t cancelling %d", urt_task_cancelling(t));
    trace("await t %d", urt_task_await(t, NULL));
    int done_count = urt_task_cancelling(t), left[3];
    for (int i = 0; i < 3; i++) left[i] = urt_task_uncancel(t);
    trace("t cancelling done %d uncancel %d %d %d", done_count, left[0], left[1], left[2]);
    EXPECT_EQ(urt_task_release(t), 0);
    /* Back at 0, a cancellation not seen yet is dropped. */
    EXPECT_EQ(urt_task_cancel(me), 1);
    int self_count = urt_task_cancelling(me);
    trace("self %d uncancel %d", self_count, urt_task_uncancel(me));
    trace("slept %d", urt_sleep_ms(1));
    /* ... also one asked before the task first ran: it runs. */
    EXPECT_EQ(urt_task_create(&t2, sleeper, NULL), 0);
    EXPECT_EQ(urt_task_cancel(t2), 1);
    EXPECT_EQ(urt_task_uncancel(t2), 0);
    EXPECT_EQ(urt_yield(), 0);
    EXPECT_EQ(urt_task_cancel(t2), 1);
    trace("await t2 %d", urt_task_await(t2, NULL));
    EXPECT_EQ(urt_task_release(t2), 0);
    /* A cancellation handled and kept counts on: a group whose child
     * fails cancels the task again (urt_group_exit); taken back, not. */
    for (int unc = 0; unc <= 1; unc++) {
        EXPECT_EQ(urt_task_create(&c, cancels_arg, &me), 0);
        if (urt_sleep_ms(10) == URT_ECANCELED) trace("caught");
        if (unc) trace("uncancel %d", urt_task_uncancel(me));
        urt_group g;
        EXPECT_EQ(urt_group_enter(&g), 0);
        EXPECT_EQ(urt_group_spawn(&g, NULL, fails_now, NULL), 0);
        if (urt_group_exit(&g, NULL, 0, NULL) == -EIO) trace("group failed");
        trace("slept %d", urt_sleep_ms(1));
        trace("cancelling %d", urt_task_cancelling(me));
        if (!unc) urt_task_uncancel(me);
        EXPECT_EQ(urt_task_await(c, NULL), 0);
        EXPECT_EQ(urt_task_release(c), 0);
    }
    return 0;
}

/* urt_task_cancelling / urt_task_uncancel: what asyncio's Task.cancelling()
 * and Task.uncancel() (Python 3.13's) give in the same program, line for
 * line. */
static void test_cancel_requests_are_counted_and_taken_back(void **state)
{
    (void)state;
    run_main(cancel_counts_main, NULL);
    assert_trace("cancelling 0", "t cancelling 2", "sleeper -4001", "await t -4001",
                 "t cancelling done 2 uncancel 1 0 0", "self 1 uncancel 0", "slept 0",
                 "sleeper -4001", "await t2 -4001", "caught", "group failed", "slept -4001",
                 "cancelling 1", "caught", "uncancel 0", "group failed", "slept 0",
                 "cancelling 0");
}

static intptr_t bad_handle_counts_main(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_task_cancelling(URT_TASK_NONE), URT_EBADTASK);
    EXPECT_EQ(urt_task_uncancel(URT_TASK_NONE), URT_EBADTASK);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, noop, NULL), 0);
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    EXPECT_EQ(urt_task_cancelling(t), URT_EBADTASK);
    EXPECT_EQ(urt_task_uncancel(t), URT_EBADTASK);
    return 0;
}

static void test_cancel_counts_refuse_bad_handles(void **state)
{
    (void)state;
    assert_int_equal(urt_task_cancelling(URT_TASK_NONE), URT_ENOLOOP);
    assert_int_equal(urt_task_uncancel(URT_TASK_NONE), URT_ENOLOOP);
    run_main(bad_handle_counts_main, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup(name, reset)
        T(test_create_task_does_not_run_until_caller_suspends),
        T(test_tasks_start_in_creation_order),
        T(test_await_gives_task_value),
        T(test_await_gives_task_error),
        T(test_await_finished_task_returns_without_yielding),
        T(test_several_awaiters_all_get_value_in_order_they_awaited),
        T(test_several_awaiters_all_get_error),
        T(test_await_self_is_edeadlk),
        T(test_await_cycle_is_edeadlk_for_task_closing_it),
        T(test_await_cycle_of_three_is_edeadlk),
        T(test_cancel_before_start_never_runs_body),
        T(test_cancel_finished_task_returns_0_and_changes_nothing),
        T(test_cancel_sleeping_task_wakes_it_early_with_ecanceled),
        T(test_cancel_ready_task_sees_ecanceled_at_its_yield),
        T(test_task_cancelling_itself_sees_ecanceled_at_next_suspension),
        T(test_cancelled_task_may_handle_it_and_go_on),
        T(test_cancel_awaiting_task_cancels_awaited_and_gets_its_value),
        T(test_cancel_awaiting_task_when_awaited_ends_cancelled),
        T(test_pending_cancellation_is_handed_to_the_awaited_task),
        T(test_released_handle_gives_ebadtask),
        T(test_zero_and_garbage_handles_give_ebadtask),
        T(test_handle_from_ended_run_gives_ebadtask),
        T(test_released_handle_never_names_a_new_task),
        T(test_released_handle_never_names_a_task_after_many_reuses),
        T(test_handle_from_65536_runs_ago_gives_ebadtask),
        T(test_releasing_task_does_not_stop_it),
        T(test_forgotten_handles_leak_nothing),
        T(test_task_result_is_eagain_until_done_then_outcome),
        T(test_default_task_names_are_task_n_distinct_and_increasing),
        T(test_custom_task_name_is_copied_and_truncated),
        T(test_empty_custom_task_name_is_kept),
        T(test_task_current_is_creator_handle_inside_and_none_outside),
        T(test_create_with_bad_options_or_null_fn_is_einval),
        T(test_chain_of_tasks_each_awaiting_the_next_propagates_value),
        T(test_cancel_requests_are_counted_and_taken_back),
        T(test_cancel_counts_refuse_bad_handles),
#undef T
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
