/*
 * The loop: urt_run's value and errors, shutdown (cancelling what main left
 * behind), one loop per thread, calls made outside a loop, io_uring refused
 * by the kernel, and urt_strerror.  SEMANTICS 1.1, 1.2, 1.6, 5.5 and 6.
 *
 * Tasks record what they see with trace(); the test compares the whole trace
 * after urt_run() returns, so a failure never unwinds out of a fiber.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "harness.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static intptr_t noop(void *arg)
{
    (void)arg;
    return 0;
}

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

/* Yields once, then returns its argument. */
static intptr_t ret_arg_after_yield(void *arg)
{
    urt_yield();
    return (intptr_t)arg;
}

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

/* ---- 1.1: urt_run's result ------------------------------------------- */

static int some_object;

/* SEMANTICS 1.1: run returns 0 and stores main's value, whatever
 * pointer-sized value outside -4095..-1 it is. */
static void test_run_returns_main_value(void **state)
{
    (void)state;
    const intptr_t values[] = {0, 42, (intptr_t)&some_object, INTPTR_MAX, INTPTR_MIN, -4096};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        intptr_t v = 777;
        assert_int_equal(run_checked(ret_arg, (void *)values[i], &v), 0);
        assert_true(v == values[i]);
        v = 777;
        assert_int_equal(run_checked(ret_arg_after_yield, (void *)values[i], &v), 0);
        assert_true(v == values[i]);
    }
}

/* SEMANTICS 1.1, 1.6: run returns main's error (anything in -4095..-1). */
static void test_run_returns_main_error(void **state)
{
    (void)state;
    const int errs[] = {-EIO, -1, -4095, URT_ECANCELED, URT_ETIMEDOUT, -ENOMEM};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        intptr_t v = 0;
        assert_int_equal(run_checked(ret_arg, (void *)(intptr_t)errs[i], &v), errs[i]);
        assert_int_equal(run_checked(ret_arg_after_yield, (void *)(intptr_t)errs[i], NULL),
                         errs[i]);
    }
}

/* SEMANTICS 1.1: the value pointer may be NULL. */
static void test_run_accepts_null_value_pointer(void **state)
{
    (void)state;
    assert_int_equal(run_checked(ret_arg_after_yield, (void *)5, NULL), 0);
    assert_int_equal(run_checked(ret_arg_after_yield, (void *)(intptr_t)-EIO, NULL), -EIO);
}

/* urt_run: a NULL main is -EINVAL; nothing is stored, nothing leaks, and the
 * thread can run a loop right after. */
static void test_run_null_main_is_einval(void **state)
{
    (void)state;
    intptr_t v = 777;
    assert_int_equal(run_checked(NULL, NULL, &v), -EINVAL);
    assert_int_equal(v, 777);
    assert_int_equal(run_checked(NULL, NULL, NULL), -EINVAL);
    assert_int_equal(run_checked(ret_arg, (void *)3, &v), 0);
    assert_int_equal(v, 3);
}

static intptr_t inner_main(void *arg)
{
    (void)arg;
    trace("inner:ran");
    return 1;
}

static intptr_t nested_run_main(void *arg)
{
    (void)arg;
    intptr_t v = 777;
    int rc = urt_run(inner_main, NULL, &v);
    trace("main:nested run=%d v=%ld", rc, (long)v);
    urt_task t;
    trace("main:create=%d", urt_task_create(&t, ret_arg_after_yield, (void *)9));
    trace("main:sleep=%d", urt_sleep_ms(2));
    v = 0;
    rc = urt_task_await(t, &v);
    trace("main:await=%d v=%ld", rc, (long)v);
    return 4;
}

static intptr_t nested_in_child_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, nested_run_main, NULL) != 0) return -EIO;
    intptr_t v = 0;
    int rc = urt_task_await(t, &v);
    return rc ? rc : v;
}

/* SEMANTICS 1.1: urt_run from a task of a running loop (main or another
 * task) is -EBUSY, runs nothing, and the outer loop keeps working. */
static void test_run_inside_a_task_is_ebusy_and_loop_keeps_working(void **state)
{
    (void)state;
    intptr_t v = 0;
    assert_int_equal(run_checked(nested_run_main, NULL, &v), 0);
    assert_int_equal(v, 4);
    assert_trace("main:nested run=-16 v=777", "main:create=0", "main:sleep=0",
                 "main:await=0 v=9");
    trace_reset();
    v = 0;
    assert_int_equal(run_checked(nested_in_child_main, NULL, &v), 0);
    assert_int_equal(v, 4);
    assert_trace("main:nested run=-16 v=777", "main:create=0", "main:sleep=0",
                 "main:await=0 v=9");
}

static intptr_t numbered_main(void *arg)
{
    intptr_t n = (intptr_t)arg;
    urt_task t;
    trace("run %ld:start", (long)n);
    if (urt_task_create(&t, ret_arg_after_yield, (void *)(n * 10)) != 0) return -EIO;
    trace("run %ld:sleep=%d", (long)n, urt_sleep_ms(1));
    intptr_t v = 0;
    int rc = urt_task_await(t, &v);
    trace("run %ld:await=%d v=%ld", (long)n, rc, (long)v);
    return n;
}

/* SEMANTICS 1.1: the same thread can run loops one after another; each is
 * a fresh loop. */
static void test_loops_run_one_after_another_on_a_thread(void **state)
{
    (void)state;
    for (intptr_t n = 1; n <= 3; n++) {
        intptr_t v = 0;
        assert_int_equal(run_checked(numbered_main, (void *)n, &v), 0);
        assert_int_equal(v, n);
    }
    assert_trace("run 1:start", "run 1:sleep=0", "run 1:await=0 v=10", "run 2:start",
                 "run 2:sleep=0", "run 2:await=0 v=20", "run 3:start", "run 3:sleep=0",
                 "run 3:await=0 v=30");
}

/* ---- one loop per thread --------------------------------------------- */

struct loop_thread {
    int idx;
    _Atomic int *mine, *other; /* handshake steps, one per thread */
    _Atomic int *other_ended;  /* the other thread's urt_run has returned */
    pthread_barrier_t *barrier;
    char ev[12][40];
    int nev;
    int rc;
    intptr_t value;
    _Atomic int ended;
};

/* trace() for one thread's loop: the shared trace is not thread-safe. */
static void tev(struct loop_thread *lt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tev(struct loop_thread *lt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (lt->nev < 12) vsnprintf(lt->ev[lt->nev++], sizeof lt->ev[0], fmt, ap);
    va_end(ap);
}

static intptr_t thread_sub(void *arg)
{
    urt_sleep_ms(3);
    return (intptr_t)arg;
}

/* Steps 1..3: publish my step, then sleep in 1 ms slices until the other
 * thread's loop has reached it.  If the loops were not independent (one
 * blocked while the other runs, one ring shared) this would never finish.
 * The bound is in time, and generous: under valgrind, which runs one thread
 * at a time, the other loop may get no turn for seconds. */
static intptr_t thread_main(void *arg)
{
    struct loop_thread *lt = arg;
    urt_task sub;
    tev(lt, "create=%d", urt_task_create(&sub, thread_sub, (void *)(intptr_t)(7 + lt->idx)));
    for (int step = 1; step <= 3; step++) {
        atomic_store(lt->mine, step);
        uint64_t deadline = urt_now() + 60 * URT_NS_PER_S;
        int rc = 0;
        while (atomic_load(lt->other) < step && !atomic_load(lt->other_ended) &&
               urt_now() < deadline && rc == 0)
            rc = urt_sleep_ms(1);
        tev(lt, "step %d %s", step, atomic_load(lt->other) >= step ? "met" : "timed out");
    }
    intptr_t v = 0;
    int rc = urt_task_await(sub, &v);
    tev(lt, "sub=%d v=%ld", rc, (long)v);
    return 100 + lt->idx;
}

static void *loop_thread_fn(void *arg)
{
    struct loop_thread *lt = arg;
    pthread_barrier_wait(lt->barrier);
    lt->rc = urt_run(thread_main, lt, &lt->value);
    atomic_store(&lt->ended, 1);
    return NULL;
}

static void run_two_loop_threads(struct loop_thread lt[2])
{
    static _Atomic int steps[2];
    pthread_barrier_t barrier;
    pthread_t th[2];
    pthread_barrier_init(&barrier, NULL, 2);
    atomic_store(&steps[0], 0);
    atomic_store(&steps[1], 0);
    memset(lt, 0, 2 * sizeof lt[0]);
    for (int i = 0; i < 2; i++) {
        lt[i].idx = i;
        lt[i].mine = &steps[i];
        lt[i].other = &steps[1 - i];
        lt[i].other_ended = &lt[1 - i].ended;
        lt[i].barrier = &barrier;
        lt[i].rc = 1;
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, loop_thread_fn, &lt[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
}

/* SEMANTICS 1.1: a loop per thread.  Two threads run urt_run at the same
 * time; their tasks sleep in turn, each loop waiting for the other to make
 * progress; both finish with their own value, and nothing leaks. */
static void test_each_thread_runs_its_own_loop(void **state)
{
    (void)state;
    struct loop_thread lt[2];
    if (mappings_are_comparable()) /* else valgrind: slow, and not needed */
        run_two_loop_threads(lt); /* warms up the thread stacks and arenas */
    int fds = count_open_fds();
    struct mappings_before maps = mappings_before_run();
    run_two_loop_threads(lt);
    assert_int_equal(count_open_fds(), fds);
    assert_true(mappings_given_back(&maps));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lt[i].rc, 0);
        assert_int_equal(lt[i].value, 100 + i);
        char sub[40];
        snprintf(sub, sizeof sub, "sub=0 v=%d", 7 + i);
        const char *expected[] = {"create=0", "step 1 met", "step 2 met", "step 3 met", sub};
        assert_int_equal(lt[i].nev, 5);
        for (int e = 0; e < 5; e++) assert_string_equal(lt[i].ev[e], expected[e]);
    }
}

/* ---- 1.2: main returns while tasks are alive ------------------------- */

static uint64_t cleanup_took;

/* Sleeps 10 s; on cancellation records it, sleeps 20 ms more to clean up
 * (a sleep that must work normally), records that, returns the code. */
static intptr_t sleeper_with_cleanup(void *arg)
{
    const char *name = arg;
    trace("%s:sleep", name);
    int rc = urt_sleep_s(10);
    trace("%s:sleep=%d", name, rc);
    uint64_t t0 = urt_now();
    int rc2 = urt_sleep_ms(20);
    cleanup_took = urt_now() - t0;
    trace("%s:cleanup sleep=%d", name, rc2);
    return rc;
}

static intptr_t leaves_sleeper_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, sleeper_with_cleanup, "S") != 0) return -EIO;
    trace("main:yield=%d", urt_yield());
    trace("main:return");
    return 5;
}

/* SEMANTICS 1.2: when main returns, a sleeping task gets URT_ECANCELED at its
 * sleep at once (not after 10 s); run waits while it handles it (a 20 ms
 * sleep that lasts its full time) and returns main's value afterwards. */
static void test_main_return_cancels_sleeping_task_and_waits_for_cleanup(void **state)
{
    (void)state;
    intptr_t v = 0;
    cleanup_took = 0;
    uint64_t t0 = mono_ns();
    assert_int_equal(run_checked(leaves_sleeper_main, NULL, &v), 0);
    uint64_t took = mono_ns() - t0;
    assert_int_equal(v, 5);
    assert_trace("S:sleep", "main:yield=0", "main:return", "S:sleep=-4001",
                 "S:cleanup sleep=0");
    assert_true(cleanup_took >= 20 * URT_NS_PER_MS);
    assert_true(took >= 20 * URT_NS_PER_MS);
    assert_true(took < URT_NS_PER_S);
}

static intptr_t endless_yielder(void *arg)
{
    (void)arg;
    int rc, n = 0;
    trace("Y:start");
    while ((rc = urt_yield()) == 0) n++;
    trace("Y:yield=%d after %s", rc, n > 0 ? "some" : "none");
    trace("Y:yield again=%d", urt_yield());
    return rc;
}

static intptr_t leaves_yielder_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, endless_yielder, NULL) != 0) return -EIO;
    for (int i = 0; i < 3; i++) urt_yield();
    trace("main:return");
    return 0;
}

/* SEMANTICS 1.2: a task that only yields is cancelled at its yield when
 * main returns, and may still yield once more while handling it. */
static void test_main_return_cancels_yielding_task(void **state)
{
    (void)state;
    assert_int_equal(run_checked(leaves_yielder_main, NULL, NULL), 0);
    assert_trace("Y:start", "main:return", "Y:yield=-4001 after some", "Y:yield again=0");
}

static urt_task awaited_b;

static intptr_t awaiting_a(void *arg)
{
    (void)arg;
    trace("A:await B");
    trace("A:await=%d", urt_task_await(awaited_b, NULL));
    return 0;
}

static intptr_t plain_sleeper(void *arg)
{
    trace("%s:sleep", (const char *)arg);
    int rc = urt_sleep_s(10);
    trace("%s:sleep=%d", (const char *)arg, rc);
    return rc;
}

static intptr_t leaves_awaiter_main(void *arg)
{
    (void)arg;
    urt_task a;
    if (urt_task_create(&awaited_b, plain_sleeper, "B") != 0) return -EIO;
    if (urt_task_create(&a, awaiting_a, NULL) != 0) return -EIO;
    trace("main:yield=%d", urt_yield());
    trace("main:return");
    return 0;
}

/* SEMANTICS 1.2: a task blocked in await is cancelled too; it gets the
 * outcome of the task it awaits (cancelled as well). */
static void test_main_return_cancels_awaiting_task(void **state)
{
    (void)state;
    uint64_t t0 = mono_ns();
    assert_int_equal(run_checked(leaves_awaiter_main, NULL, NULL), 0);
    assert_true(mono_ns() - t0 < URT_NS_PER_S);
    assert_trace("B:sleep", "A:await B", "main:yield=0", "main:return", "B:sleep=-4001",
                 "A:await=-4001");
}

static intptr_t body_recorder(void *arg)
{
    trace("%s:body", (const char *)arg);
    return 0;
}

static intptr_t leaves_unstarted_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, body_recorder, "T") != 0) return -EIO;
    if (urt_task_create(NULL, body_recorder, "D") != 0) return -EIO;
    trace("main:return");
    return 8;
}

/* SEMANTICS 1.2, 3.4: tasks that never ran (with a handle, or detached) are
 * cancelled when main returns and never run their body. */
static void test_main_return_never_runs_tasks_that_never_started(void **state)
{
    (void)state;
    intptr_t v = 0;
    assert_int_equal(run_checked(leaves_unstarted_main, NULL, &v), 0);
    assert_int_equal(v, 8);
    assert_trace("main:return");
}

static intptr_t leaves_detached_main(void *arg)
{
    (void)arg;
    if (urt_task_create(NULL, sleeper_with_cleanup, "D") != 0) return -EIO;
    trace("main:yield=%d", urt_yield());
    trace("main:return");
    return -EIO;
}

/* SEMANTICS 1.2: a detached task (NULL handle pointer) is cancelled too and
 * run waits for its cleanup; main's error is still what run returns. */
static void test_main_return_cancels_detached_task(void **state)
{
    (void)state;
    cleanup_took = 0;
    assert_int_equal(run_checked(leaves_detached_main, NULL, NULL), -EIO);
    assert_trace("D:sleep", "main:yield=0", "main:return", "D:sleep=-4001",
                 "D:cleanup sleep=0");
    assert_true(cleanup_took >= 20 * URT_NS_PER_MS);
}

/* Sleeps 10 s; on cancellation sleeps (arg) ms to clean up, then records. */
static intptr_t slow_cleanup(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    int rc = urt_sleep_s(10);
    if (rc != URT_ECANCELED) trace("cleanup %ld: sleep=%d", (long)ms, rc);
    rc = urt_sleep_ms((uint64_t)ms);
    trace("cleanup %ld ms done=%d", (long)ms, rc);
    return 0;
}

static intptr_t leaves_many_main(void *arg)
{
    (void)arg;
    /* Created longest first, so that the order of the cleanups is the order
     * of their durations, not of creation or of cancellation. */
    static const intptr_t ms[] = {120, 0, 80, 40};
    for (int i = 0; i < 4; i++) {
        urt_task t;
        if (urt_task_create(i % 2 ? NULL : &t, slow_cleanup, (void *)ms[i]) != 0) return -EIO;
    }
    urt_yield(); /* they all start sleeping */
    if (urt_task_create(NULL, body_recorder, "never") != 0) return -EIO;
    trace("main:return");
    return 0;
}

/* SEMANTICS 1.2: with several tasks alive, run waits until every one has
 * finished its cleanup, however long each takes. */
static void test_main_return_waits_for_every_task_cleanup(void **state)
{
    (void)state;
    uint64_t t0 = mono_ns();
    assert_int_equal(run_checked(leaves_many_main, NULL, NULL), 0);
    uint64_t took = mono_ns() - t0;
    assert_trace("main:return", "cleanup 0 ms done=0", "cleanup 40 ms done=0",
                 "cleanup 80 ms done=0", "cleanup 120 ms done=0");
    assert_true(took >= 120 * URT_NS_PER_MS);
    assert_true(took < URT_NS_PER_S);
}

/* ---- SEMANTICS 6: calls outside a loop ------------------------------- */

struct outside_calls {
    int sleep, yield, create, create_detached, create_opts, await, cancel, release, done,
        cancelled, result, gather;
    uint64_t current;
    const char *name;
    int body_ran;
};

static _Atomic int outside_body_ran;

static intptr_t outside_body(void *arg)
{
    (void)arg;
    atomic_store(&outside_body_ran, 1);
    return 0;
}

static void make_outside_calls(struct outside_calls *c, urt_task h)
{
    urt_task t = URT_TASK_NONE;
    intptr_t v = 0;
    c->sleep = urt_sleep_ms(1);
    c->yield = urt_yield();
    c->create = urt_task_create(&t, outside_body, NULL);
    c->create_detached = urt_task_create(NULL, outside_body, NULL);
    c->create_opts = urt_task_create_opts(&t, outside_body, NULL, NULL);
    c->await = urt_task_await(h, &v);
    c->cancel = urt_task_cancel(h);
    c->done = urt_task_done(h);
    c->cancelled = urt_task_cancelled(h);
    c->result = urt_task_result(h, &v);
    c->gather = urt_gather(&h, 1, 0, &v, NULL);
    c->current = urt_task_current().id;
    c->name = urt_task_name(h);
    c->release = urt_task_release(h);
}

static void assert_all_enoloop(const struct outside_calls *c)
{
    assert_int_equal(c->sleep, URT_ENOLOOP);
    assert_int_equal(c->yield, URT_ENOLOOP);
    assert_int_equal(c->create, URT_ENOLOOP);
    assert_int_equal(c->create_detached, URT_ENOLOOP);
    assert_int_equal(c->create_opts, URT_ENOLOOP);
    assert_int_equal(c->await, URT_ENOLOOP);
    assert_int_equal(c->cancel, URT_ENOLOOP);
    assert_int_equal(c->done, URT_ENOLOOP);
    assert_int_equal(c->cancelled, URT_ENOLOOP);
    assert_int_equal(c->result, URT_ENOLOOP);
    assert_int_equal(c->gather, URT_ENOLOOP);
    assert_int_equal(c->release, URT_ENOLOOP);
    assert_int_equal(c->current, 0);
    assert_null(c->name);
}

static urt_task kept_handle;

static intptr_t keep_current_main(void *arg)
{
    (void)arg;
    kept_handle = urt_task_current();
    return 0;
}

static void *outside_thread_fn(void *arg)
{
    make_outside_calls(arg, kept_handle);
    return NULL;
}

/* SEMANTICS 6, urt.h: on a thread with no loop (after a run has ended on
 * it, or on a thread that never ran one) every call gives URT_ENOLOOP,
 * urt_task_current gives URT_TASK_NONE, and no task body ever runs. */
static void test_calls_outside_a_loop_give_enoloop(void **state)
{
    (void)state;
    struct outside_calls c;
    assert_int_equal(run_checked(keep_current_main, NULL, NULL), 0);
    atomic_store(&outside_body_ran, 0);
    memset(&c, 0x55, sizeof c);
    make_outside_calls(&c, kept_handle);
    assert_all_enoloop(&c);
    memset(&c, 0x55, sizeof c);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, outside_thread_fn, &c), 0);
    pthread_join(th, NULL);
    assert_all_enoloop(&c);
    /* The calls really are refused: a later run does not run those bodies. */
    assert_int_equal(run_checked(noop, NULL, NULL), 0);
    assert_int_equal(atomic_load(&outside_body_ran), 0);
}

static struct outside_calls other_thread_calls;
static _Atomic int other_thread_finished;
static urt_task other_thread_target;

static void *other_thread_fn(void *arg)
{
    (void)arg;
    make_outside_calls(&other_thread_calls, other_thread_target);
    atomic_store(&other_thread_finished, 1);
    return NULL;
}

/* Sleeps until the other thread is done with its calls; a cancellation
 * that got through would end the sleeps with URT_ECANCELED. */
static intptr_t target_sleeps_until_thread_done(void *arg)
{
    int rc = 0;
    while (rc == 0 && !atomic_load(&other_thread_finished)) rc = urt_sleep_ms(1);
    if (rc == 0) rc = urt_sleep_ms(1);
    trace("target:sleep=%d", rc);
    return (intptr_t)arg;
}

static intptr_t spawns_thread_main(void *arg)
{
    (void)arg;
    pthread_t th;
    if (urt_task_create(&other_thread_target, target_sleeps_until_thread_done, (void *)6) != 0)
        return -EIO;
    urt_yield(); /* the target sleeps */
    if (pthread_create(&th, NULL, other_thread_fn, NULL) != 0) return -EIO;
    uint64_t deadline = urt_now() + 60 * URT_NS_PER_S; /* valgrind: see above */
    while (!atomic_load(&other_thread_finished) && urt_now() < deadline) urt_sleep_ms(1);
    pthread_join(th, NULL);
    intptr_t v = 0;
    int rc = urt_task_await(other_thread_target, &v);
    trace("main:thread %s", atomic_load(&other_thread_finished) ? "finished" : "stuck");
    trace("main:await target=%d v=%ld", rc, (long)v);
    trace("main:yield=%d", urt_yield());
    return 0;
}

static void *no_thread_work(void *arg)
{
    return arg;
}

/* SEMANTICS 6: another thread calling while a loop runs on the main thread
 * gets URT_ENOLOOP for everything, even with a live handle of that loop:
 * its cancel and release do nothing, its creates run nothing. */
static void test_calls_from_another_thread_give_enoloop(void **state)
{
    (void)state;
    /* A first thread puts a stack in glibc's cache, where it stays: the run
     * below would otherwise seem to leave a mapping behind. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, no_thread_work, NULL), 0);
    pthread_join(th, NULL);
    atomic_store(&other_thread_finished, 0);
    atomic_store(&outside_body_ran, 0);
    memset(&other_thread_calls, 0x55, sizeof other_thread_calls);
    assert_int_equal(run_checked(spawns_thread_main, NULL, NULL), 0);
    assert_all_enoloop(&other_thread_calls);
    assert_int_equal(atomic_load(&outside_body_ran), 0);
    assert_trace("target:sleep=0", "main:thread finished", "main:await target=0 v=6",
                 "main:yield=0");
}

/* ---- SEMANTICS 5.5: io_uring cannot be set up ------------------------- */

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

struct child_report {
    int installed;
    int rc, rc_again, sleep_after;
    int main_ran;
    int fds_before, fds_after, maps_before, maps_after;
};

static int seccomp_main_ran;

static intptr_t seccomp_main(void *arg)
{
    (void)arg;
    seccomp_main_ran = 1;
    return 0;
}

/* Makes io_uring_setup fail with errno err for this process, with the
 * kernel's own seccomp mechanism (what a container's default profile does). */
static int deny_io_uring_setup(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Runs urt_run in a forked child whose io_uring_setup fails with err;
 * returns the child's report and everything it wrote to stdout/stderr. */
static void run_without_io_uring(int err, struct child_report *rep, char *out, size_t outsz)
{
    int rep_pipe[2], out_pipe[2];
    assert_int_equal(pipe2(rep_pipe, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out_pipe, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct child_report r = {0};
        close(rep_pipe[0]);
        close(out_pipe[0]);
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(out_pipe[1], STDERR_FILENO);
        r.installed = deny_io_uring_setup(err) == 0;
        r.fds_before = count_open_fds();
        r.maps_before = count_mappings();
        intptr_t v = 777;
        r.rc = urt_run(seccomp_main, NULL, &v);
        r.fds_after = count_open_fds();
        r.maps_after = count_mappings();
        r.rc_again = urt_run(seccomp_main, NULL, &v); /* not -EBUSY: nothing left half set up */
        r.sleep_after = urt_sleep(0);
        r.main_ran = seccomp_main_ran || v != 777;
        if (write(rep_pipe[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(2);
        _exit(0);
    }
    close(rep_pipe[1]);
    close(out_pipe[1]);
    size_t got = 0;
    for (ssize_t n; (n = read(out_pipe[0], out + got, outsz - 1 - got)) > 0;) got += (size_t)n;
    out[got] = '\0';
    if (got) print_error("child printed: %s\n", out);
    memset(rep, 0, sizeof *rep);
    assert_int_equal(read(rep_pipe[0], rep, sizeof *rep), sizeof *rep);
    close(rep_pipe[0]);
    close(out_pipe[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void check_run_without_io_uring(int err)
{
    struct child_report r;
    char out[4096];
    run_without_io_uring(err, &r, out, sizeof out);
    assert_int_equal(r.installed, 1);
    assert_int_equal(r.rc, -err);
    assert_int_equal(r.rc_again, -err);
    assert_int_equal(r.sleep_after, URT_ENOLOOP);
    assert_int_equal(r.main_ran, 0);
    assert_int_equal(r.fds_after, r.fds_before);
    if (mappings_are_comparable()) assert_true(r.maps_after <= r.maps_before);
    assert_string_equal(out, "");
}

/* SEMANTICS 5.5: a seccomp profile denying io_uring_setup with EPERM makes
 * urt_run return -EPERM: no crash, nothing printed, main not run, nothing
 * left behind. */
static void test_run_without_io_uring_eperm_returns_eperm_silently(void **state)
{
    (void)state;
    check_run_without_io_uring(EPERM);
}

/* SEMANTICS 5.5: the same when io_uring_setup is hidden (ENOSYS, as on a
 * kernel without io_uring): -ENOSYS. */
static void test_run_without_io_uring_enosys_returns_enosys_silently(void **state)
{
    (void)state;
    check_run_without_io_uring(ENOSYS);
}

/* ---- SEMANTICS 1.6, 6: nothing a task does wrong takes the loop down -- */

static intptr_t fails_after_sleep(void *arg)
{
    urt_sleep_ms(1);
    return (intptr_t)arg;
}

static intptr_t wrongdoing_main(void *arg)
{
    (void)arg;
    urt_task f, c, ok, t;
    intptr_t v = 0;
    /* A failing task, awaited and detached. */
    if (urt_task_create(&f, fails_after_sleep, (void *)(intptr_t)-EIO) != 0) return -EIO;
    if (urt_task_create(NULL, fails_after_sleep, (void *)(intptr_t)-ENOMEM) != 0) return -EIO;
    trace("await failing=%d", urt_task_await(f, NULL));
    /* A cancelled task. */
    if (urt_task_create(&c, plain_sleeper, "C") != 0) return -EIO;
    urt_yield();
    trace("cancel=%d", urt_task_cancel(c));
    trace("await cancelled=%d", urt_task_await(c, NULL));
    /* Bad calls. */
    urt_task_opts big = {.name = NULL, .stack_size = (size_t)URT_STACK_MAX * 2};
    trace("NULL fn=%d", urt_task_create(&t, NULL, NULL));
    trace("bad opts=%d", urt_task_create_opts(&t, noop, NULL, &big));
    trace("await garbage=%d", urt_task_await((urt_task){0x123456789abcdefull, 1}, NULL));
    trace("await self=%d", urt_task_await(urt_task_current(), NULL));
    trace("release=%d", urt_task_release(f));
    trace("release twice=%d", urt_task_release(f));
    trace("gather NULL=%d", urt_gather(NULL, 1, 0, NULL, NULL));
    /* The loop still runs other tasks: create, sleep, await. */
    if (urt_task_create(&ok, fails_after_sleep, (void *)31) != 0) return -EIO;
    trace("sleep=%d", urt_sleep_ms(2));
    int rc = urt_task_await(ok, &v);
    trace("await ok=%d v=%ld", rc, (long)v);
    return 99;
}

/* SEMANTICS 1.6, 6: a task failing, a task cancelled, bad calls (NULL fn,
 * out-of-range option, garbage handle, await self, double release, NULL
 * tasks array) each give their code, and the loop goes on running tasks. */
static void test_nothing_a_task_does_wrong_takes_the_loop_down(void **state)
{
    (void)state;
    intptr_t v = 0;
    assert_int_equal(run_checked(wrongdoing_main, NULL, &v), 0);
    assert_int_equal(v, 99);
    assert_trace("await failing=-5", "C:sleep", "cancel=1", "C:sleep=-4001",
                 "await cancelled=-4001", "NULL fn=-22", "bad opts=-22",
                 "await garbage=-4003", "await self=-35", "release=0",
                 "release twice=-4003", "gather NULL=-22", "sleep=0", "await ok=0 v=31");
}

/* ---- urt_strerror ---------------------------------------------------- */

/* urt.h: urt_strerror names each of urt's own codes with a distinct,
 * non-empty text (different from every errno text), all valid at once. */
static void test_strerror_names_every_urt_code(void **state)
{
    (void)state;
    const int codes[] = {URT_ECANCELED, URT_ETIMEDOUT, URT_EBADTASK, URT_ENOLOOP,
                         URT_ESTACKLIMIT};
    const char *s[5];
    for (int i = 0; i < 5; i++) s[i] = urt_strerror(codes[i]);
    for (int i = 0; i < 5; i++) {
        assert_non_null(s[i]);
        assert_true(s[i][0] != '\0');
        for (int j = 0; j < i; j++) assert_string_not_equal(s[i], s[j]);
        assert_string_not_equal(s[i], urt_strerror(-EINVAL));
        assert_string_not_equal(s[i], urt_strerror(-4050)); /* unassigned */
    }
    /* Still the same texts after other calls: static, not a shared buffer. */
    char copy[256];
    snprintf(copy, sizeof copy, "%s", s[0]);
    urt_strerror(-4050);
    urt_strerror(-EIO);
    assert_string_equal(s[0], copy);
}

/* urt.h: plain errno codes (negative) get the C library's strerror text. */
static void test_strerror_gives_errno_text(void **state)
{
    (void)state;
    const int errs[] = {EINVAL, ENOMEM, EBUSY, EDEADLK, EPERM, ENOSYS, EAGAIN, EIO, ECANCELED};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        const char *s = urt_strerror(-errs[i]);
        assert_non_null(s);
        assert_string_equal(s, strerror(errs[i]));
    }
}

/* urt.h: never NULL, never empty, for any int at all. */
static void test_strerror_is_never_null(void **state)
{
    (void)state;
    const int odd[] = {0, 1, 22, 4001, INT_MAX, INT_MIN, INT_MIN + 1, -4096, -4095, -5000,
                       -100000};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *s = urt_strerror(odd[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
    }
    for (int e = -4200; e <= 200; e++) {
        const char *s = urt_strerror(e);
        assert_non_null(s);
        assert_true(s[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup(name, reset)
        T(test_run_returns_main_value),
        T(test_run_returns_main_error),
        T(test_run_accepts_null_value_pointer),
        T(test_run_null_main_is_einval),
        T(test_run_inside_a_task_is_ebusy_and_loop_keeps_working),
        T(test_loops_run_one_after_another_on_a_thread),
        T(test_each_thread_runs_its_own_loop),
        T(test_main_return_cancels_sleeping_task_and_waits_for_cleanup),
        T(test_main_return_cancels_yielding_task),
        T(test_main_return_cancels_awaiting_task),
        T(test_main_return_never_runs_tasks_that_never_started),
        T(test_main_return_cancels_detached_task),
        T(test_main_return_waits_for_every_task_cleanup),
        T(test_calls_outside_a_loop_give_enoloop),
        T(test_calls_from_another_thread_give_enoloop),
        T(test_run_without_io_uring_eperm_returns_eperm_silently),
        T(test_run_without_io_uring_enosys_returns_enosys_silently),
        T(test_nothing_a_task_does_wrong_takes_the_loop_down),
        T(test_strerror_names_every_urt_code),
        T(test_strerror_gives_errno_text),
        T(test_strerror_is_never_null),
#undef T
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
