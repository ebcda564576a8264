/*
 * urt_gather (SEMANTICS 2, and 6 for bad input): values in input order, the
 * first failure returned at once without cancelling the others,
 * URT_RETURN_EXCEPTIONS, cancelled children, cancelling the gatherer, and
 * every documented error code.
 *
 * Checks made inside tasks never call cmocka's assert macros: a failed
 * assertion longjmps, and jumping from a fiber's stack out of urt_run would
 * leave the loop half torn down and every later test failing for the wrong
 * reason.  They record the first failure (EXPECT*) and the test asserts none
 * was recorded once urt_run has returned.
 */
#include <errno.h>
#include <stdbool.h>

#include "harness.h"

/* Sentinels: a slot gather must not have written still holds these. */
#define UNSET_VALUE ((intptr_t)0x5eed5eed)
#define UNSET_ERROR 12345

/* ---- a child task: sleeps, then returns a value or an error ---- */

struct job {
    const char *name; /* NULL: record nothing */
    unsigned ms;      /* how long to sleep first (spaced_ms); 0: do not suspend */
    intptr_t result;  /* value or error returned after the sleep */
    int slept;        /* what urt_sleep returned */
    bool ran;
};

#define JOB(name_, ms_, result_) {.name = (name_), .ms = (ms_), .result = (result_)}

/* Records "<name> end <returned>".  A cancelled sleep ends the job with
 * URT_ECANCELED, which is what it returns. */
static intptr_t job_fn(void *arg)
{
    struct job *j = arg;
    j->ran = true;
    intptr_t ret = j->result;
    if (j->ms) {
        j->slept = urt_sleep_ms(spaced_ms(j->ms));
        if (j->slept) ret = j->slept;
    }
    if (j->name) trace("%s end %ld", j->name, (long)ret);
    return ret;
}

static void create_jobs(urt_task *t, struct job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        EXPECT_EQ(urt_task_create(&t[i], job_fn, &jobs[i]), 0);
}

static void release_all(const urt_task *t, size_t n)
{
    for (size_t i = 0; i < n; i++) EXPECT_EQ(urt_task_release(t[i]), 0);
}

static void unset(intptr_t *values, int *errors, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (values) values[i] = UNSET_VALUE;
        if (errors) errors[i] = UNSET_ERROR;
    }
}

/* ---- 2.1 input order ---- */

static intptr_t main_input_order(void *arg)
{
    (void)arg;
    struct job jobs[3] = {JOB("a", 30, 100), JOB("b", 10, 200), JOB("c", 20, 300)};
    urt_task t[3];
    intptr_t v[3];
    unset(v, NULL, 3);
    create_jobs(t, jobs, 3);
    int rc = urt_gather(t, 3, 0, v, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(v[0], 100);
    EXPECT_EQ(v[1], 200);
    EXPECT_EQ(v[2], 300);
    release_all(t, 3);
    return 0;
}

/* SEMANTICS 2.1: values[i] belongs to tasks[i], though b and c finish
 * before a. */
static void test_gather_keeps_input_order(void **state)
{
    (void)state;
    run_main(main_input_order, NULL);
    assert_trace("b end 200", "c end 300", "a end 100", "gather 0");
}

/* ---- 2.2 default mode: first error at once, the others run on ---- */

static intptr_t main_first_error(void *arg)
{
    (void)arg;
    struct job jobs[3] = {JOB("a", 10, 1), JOB("b", 20, -EIO), JOB("c", 100, 3)};
    urt_task t[3];
    intptr_t v[3];
    unset(v, NULL, 3);
    create_jobs(t, jobs, 3);
    int rc = urt_gather(t, 3, 0, v, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(rc, -EIO);
    /* c was not waited for, and not cancelled. */
    EXPECT_EQ(urt_task_done(t[2]), 0);
    intptr_t cv = 0;
    EXPECT_EQ(urt_task_await(t[2], &cv), 0);
    EXPECT_EQ(cv, 3);
    EXPECT_EQ(jobs[2].slept, 0);
    EXPECT_EQ(urt_task_cancelled(t[2]), 0);
    EXPECT_EQ(urt_task_await(t[1], NULL), -EIO);
    release_all(t, 3);
    return 0;
}

/* SEMANTICS 2.2: gather returns b's error at 20 ms, before c (100 ms) ends;
 * c is not cancelled: it ends later with its own value. */
static void test_gather_returns_first_error_at_once_without_cancelling_others(void **state)
{
    (void)state;
    run_main(main_first_error, NULL);
    assert_trace("a end 1", "b end -5", "gather -5", "c end 3");
}

static intptr_t main_filled_on_failure(void *arg)
{
    (void)arg;
    /* d succeeds before the failure, a after it, c fails too. */
    struct job jobs[4] = {JOB("a", 60, 1), JOB("b", 20, -EPIPE), JOB("c", 40, -EIO), JOB("d", 5, 4)};
    urt_task t[4];
    intptr_t v[4];
    unset(v, NULL, 4);
    create_jobs(t, jobs, 4);
    int rc = urt_gather(t, 4, 0, v, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(v[0], UNSET_VALUE); /* not finished yet */
    EXPECT_EQ(v[1], UNSET_VALUE); /* failed */
    EXPECT_EQ(v[2], UNSET_VALUE); /* not finished yet */
    EXPECT_EQ(v[3], 4);           /* had already succeeded */
    EXPECT_EQ(urt_task_await(t[0], NULL), 0);
    EXPECT_EQ(urt_task_await(t[2], NULL), -EIO);
    /* The later values did not land in v after gather returned. */
    EXPECT_EQ(v[0], UNSET_VALUE);
    release_all(t, 4);
    return 0;
}

/* SEMANTICS 2.2 (header: "values[i] is set only for the tasks that had
 * already succeeded"). */
static void test_gather_failure_fills_values_of_tasks_already_succeeded(void **state)
{
    (void)state;
    run_main(main_filled_on_failure, NULL);
    assert_trace("d end 4", "b end -32", "gather -32", "c end -5", "a end 1");
}

static intptr_t main_earliest_failure(void *arg)
{
    (void)arg;
    /* Input order a, b, c; failure order in time c, a. */
    struct job jobs[3] = {JOB("a", 30, -EIO), JOB("b", 50, 2), JOB("c", 10, -EPIPE)};
    urt_task t[3];
    create_jobs(t, jobs, 3);
    int rc = urt_gather(t, 3, 0, NULL, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(rc, -EPIPE);
    EXPECT_EQ(urt_task_await(t[0], NULL), -EIO);
    EXPECT_EQ(urt_task_await(t[1], NULL), 0);
    release_all(t, 3);

    /* A task that failed before gather was called failed earliest. */
    struct job late[2] = {JOB("x", 10, -EIO), JOB("y", 0, -ENOENT)};
    create_jobs(t, late, 2);
    EXPECT_EQ(urt_yield(), 0); /* y fails, x starts sleeping */
    trace("main yielded");
    rc = urt_gather(t, 2, 0, NULL, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(rc, -ENOENT);
    EXPECT_EQ(urt_task_await(t[0], NULL), -EIO);
    release_all(t, 2);

    /* Both failed before gather was called: then, as in asyncio (whose
     * done callbacks for them run in input order), the first in input
     * order, not the earlier in time.  w is created (so runs and fails)
     * first but comes second in the input.  Found by the difftest. */
    struct job both[2] = {JOB("v", 0, -EIO), JOB("w", 0, -ENOENT)};
    EXPECT_EQ(urt_task_create(&t[1], job_fn, &both[1]), 0);
    EXPECT_EQ(urt_task_create(&t[0], job_fn, &both[0]), 0);
    EXPECT_EQ(urt_yield(), 0);
    rc = urt_gather(t, 2, 0, NULL, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(rc, -EIO);
    release_all(t, 2);
    return 0;
}

/* SEMANTICS 2.2 / header: with several failures the earliest in time is
 * returned, not the first in input order (of those that failed before the
 * call, the first in input order). */
static void test_gather_returns_earliest_failure_in_time(void **state)
{
    (void)state;
    run_main(main_earliest_failure, NULL);
    assert_trace("c end -32", "gather -32", "a end -5", "b end 2",
                 "y end -2", "main yielded", "gather -2", "x end -5",
                 "w end -2", "v end -5", "gather -5");
}

/* ---- 2.3 return_exceptions ---- */

static intptr_t main_return_exceptions(void *arg)
{
    (void)arg;
    struct job jobs[5] = {JOB("a", 30, 1),
                          JOB("b", 10, -EIO),
                          JOB("c", 20, 3),
                          JOB("d", 5, URT_ETIMEDOUT),
                          JOB("e", 0, 5)};
    urt_task t[5];
    intptr_t v[5];
    int e[5];
    unset(v, e, 5);
    create_jobs(t, jobs, 5);
    int rc = urt_gather(t, 5, URT_RETURN_EXCEPTIONS, v, e);
    trace("gather %d", rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(e[0], 0);
    EXPECT_EQ(e[1], -EIO);
    EXPECT_EQ(e[2], 0);
    EXPECT_EQ(e[3], URT_ETIMEDOUT);
    EXPECT_EQ(e[4], 0);
    EXPECT_EQ(v[0], 1);
    EXPECT_EQ(v[2], 3);
    EXPECT_EQ(v[4], 5);
    for (int i = 0; i < 5; i++) EXPECT_EQ(urt_task_done(t[i]), 1);
    release_all(t, 5);

    /* Every child failing is still not a failure of gather. */
    struct job bad[2] = {JOB("f", 5, -EPERM), JOB("g", 0, -ENOMEM)};
    unset(v, e, 5);
    create_jobs(t, bad, 2);
    rc = urt_gather(t, 2, URT_RETURN_EXCEPTIONS, v, e);
    trace("gather %d", rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(e[0], -EPERM);
    EXPECT_EQ(e[1], -ENOMEM);
    release_all(t, 2);
    return 0;
}

/* SEMANTICS 2.3: waits for all (gather is the last event), errors[] in
 * place and in input order, values for the successes, returns 0. */
static void test_gather_return_exceptions_waits_for_all_and_fills_errors_in_place(void **state)
{
    (void)state;
    run_main(main_return_exceptions, NULL);
    assert_trace("e end 5", "d end -4002", "b end -5", "c end 3", "a end 1", "gather 0",
                 "g end -12", "f end -1", "gather 0");
}

static intptr_t main_values_null(void *arg)
{
    (void)arg;
    struct job jobs[2] = {JOB("a", 10, 1), JOB("b", 0, 2)};
    urt_task t[2];
    create_jobs(t, jobs, 2);
    int rc = urt_gather(t, 2, 0, NULL, NULL);
    trace("gather %d", rc);
    release_all(t, 2);

    struct job mixed[2] = {JOB("c", 10, 3), JOB("d", 0, -EIO)};
    int e[2];
    unset(NULL, e, 2);
    create_jobs(t, mixed, 2);
    rc = urt_gather(t, 2, URT_RETURN_EXCEPTIONS, NULL, e);
    trace("gather %d", rc);
    EXPECT_EQ(e[0], 0);
    EXPECT_EQ(e[1], -EIO);
    release_all(t, 2);

    create_jobs(t, mixed, 2);
    rc = urt_gather(t, 2, 0, NULL, NULL);
    trace("gather %d", rc);
    EXPECT_EQ(urt_task_await(t[0], NULL), 0);
    release_all(t, 2);
    return 0;
}

/* Header: "values may be NULL when the values are not wanted", in both
 * modes and on failure. */
static void test_gather_allows_null_values(void **state)
{
    (void)state;
    run_main(main_values_null, NULL);
    assert_trace("b end 2", "a end 1", "gather 0",
                 "d end -5", "c end 3", "gather 0",
                 "d end -5", "gather -5", "c end 3");
}

static intptr_t main_duplicates(void *arg)
{
    (void)arg;
    struct job jobs[2] = {JOB("a", 10, 1), JOB("b", 5, -EIO)};
    urt_task t[2];
    create_jobs(t, jobs, 2);
    urt_task twice[3] = {t[0], t[0], t[0]};
    intptr_t v[4];
    int e[4];
    unset(v, e, 4);
    trace("gather %d", urt_gather(twice, 3, 0, v, NULL));
    EXPECT_EQ(v[0], 1);
    EXPECT_EQ(v[1], 1);
    EXPECT_EQ(v[2], 1);
    urt_task mixed[4] = {t[1], t[0], t[1], t[0]};
    unset(v, e, 4);
    trace("gather %d", urt_gather(mixed, 4, URT_RETURN_EXCEPTIONS, v, e));
    EXPECT_EQ(e[0], -EIO);
    EXPECT_EQ(e[1], 0);
    EXPECT_EQ(e[2], -EIO);
    EXPECT_EQ(e[3], 0);
    EXPECT_EQ(v[1], 1);
    EXPECT_EQ(v[3], 1);
    release_all(t, 2);
    return 0;
}

/* SEMANTICS 2.1 (as asyncio.gather(t, t)): a task given more than once
 * fills every place it is given in. */
static void test_gather_same_task_twice_fills_each_place(void **state)
{
    (void)state;
    run_main(main_duplicates, NULL);
    assert_trace("b end -5", "a end 1", "gather 0", "gather 0");
}

/* ---- 2.4 a cancelled child is a failed child ---- */

struct canceller {
    urt_task target;
    unsigned ms;
};

static intptr_t canceller_fn(void *arg)
{
    struct canceller *k = arg;
    EXPECT_EQ(urt_sleep_ms(spaced_ms(k->ms)), 0);
    trace("k cancels %d", urt_task_cancel(k->target));
    return 0;
}

static intptr_t main_cancelled_child(void *arg)
{
    unsigned flags = *(unsigned *)arg;
    struct job jobs[3] = {JOB("a", 50, 1), JOB("b", 10000, 2), JOB("c", 30, 3)};
    urt_task t[3], k;
    intptr_t v[3];
    int e[3];
    unset(v, e, 3);
    create_jobs(t, jobs, 3);
    struct canceller kc = {t[1], 10};
    EXPECT_EQ(urt_task_create(&k, canceller_fn, &kc), 0);
    uint64_t t0 = urt_now();
    int rc = urt_gather(t, 3, flags, v, e);
    trace("gather %d", rc);
    /* gather itself was not cancelled: the caller sleeps normally. */
    rc = urt_sleep_ms(1);
    trace("main slept %d", rc);
    EXPECT(urt_now() - t0 < 5 * URT_NS_PER_S); /* b's 10 s sleep was cut */
    EXPECT_EQ(urt_task_cancelled(urt_task_current()), 0);
    EXPECT_EQ(urt_task_await(t[0], NULL), 0);
    EXPECT_EQ(urt_task_await(t[2], NULL), 0);
    EXPECT_EQ(urt_task_await(t[1], NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_cancelled(t[1]), 1);
    EXPECT_EQ(jobs[1].slept, URT_ECANCELED);
    if (flags & URT_RETURN_EXCEPTIONS) {
        EXPECT_EQ(e[0], 0);
        EXPECT_EQ(e[1], URT_ECANCELED);
        EXPECT_EQ(e[2], 0);
        EXPECT_EQ(v[0], 1);
        EXPECT_EQ(v[2], 3);
    } else {
        EXPECT_EQ(v[0], UNSET_VALUE);
        EXPECT_EQ(v[1], UNSET_VALUE);
        EXPECT_EQ(v[2], UNSET_VALUE);
    }
    EXPECT_EQ(urt_task_await(k, NULL), 0);
    release_all(t, 3);
    EXPECT_EQ(urt_task_release(k), 0);
    return 0;
}

/* SEMANTICS 2.4 + 2.3: errors[1] is URT_ECANCELED; gather returns 0 after
 * all; the gathering task is not cancelled. */
static void test_gather_return_exceptions_reports_cancelled_child_as_ecanceled(void **state)
{
    (void)state;
    unsigned flags = URT_RETURN_EXCEPTIONS;
    run_main(main_cancelled_child, &flags);
    assert_trace("k cancels 1", "b end -4001", "c end 3", "a end 1", "gather 0",
                 "main slept 0");
}

/* SEMANTICS 2.4 + 2.2: the cancelled child is the first failure, returned
 * at once as URT_ECANCELED; the gatherer is not cancelled (it sleeps
 * normally) and the others run on. */
static void test_gather_returns_ecanceled_for_cancelled_child_without_being_cancelled(void **state)
{
    (void)state;
    unsigned flags = 0;
    run_main(main_cancelled_child, &flags);
    assert_trace("k cancels 1", "b end -4001", "gather -4001", "main slept 0", "c end 3",
                 "a end 1");
}

static intptr_t main_cancelled_before_running(void *arg)
{
    unsigned flags = *(unsigned *)arg;
    struct job jobs[2] = {JOB("a", 10, 1), JOB("b", 0, 2)};
    urt_task t[2];
    intptr_t v[2];
    int e[2];
    unset(v, e, 2);
    create_jobs(t, jobs, 2);
    EXPECT_EQ(urt_task_cancel(t[1]), 1);
    int rc = urt_gather(t, 2, flags, v, e);
    trace("gather %d", rc);
    EXPECT_EQ(urt_task_await(t[0], NULL), 0);
    EXPECT(!jobs[1].ran); /* SEMANTICS 3.4 */
    EXPECT_EQ(urt_task_cancelled(t[1]), 1);
    if (flags & URT_RETURN_EXCEPTIONS) {
        EXPECT_EQ(e[0], 0);
        EXPECT_EQ(e[1], URT_ECANCELED);
        EXPECT_EQ(v[0], 1);
    } else {
        EXPECT_EQ(rc, URT_ECANCELED);
    }
    release_all(t, 2);
    return 0;
}

/* SEMANTICS 2.4 + 3.4: a child cancelled before it ever ran is a failed
 * child (URT_ECANCELED) whose body never runs; in the default mode gather
 * returns that at once, before a ends. */
static void test_gather_counts_child_cancelled_before_running_as_failed(void **state)
{
    (void)state;
    unsigned flags = 0;
    run_main(main_cancelled_before_running, &flags);
    assert_trace("gather -4001", "a end 1");
    flags = URT_RETURN_EXCEPTIONS;
    run_main(main_cancelled_before_running, &flags);
    assert_trace("a end 1", "gather 0");
}

/* ---- 2.5 cancelling the gatherer cancels the children ---- */

struct gatherer {
    const urt_task *tasks;
    size_t n;
    unsigned flags;
    intptr_t values[8];
    int errors[8];
    int rc;
};

static intptr_t gatherer_fn(void *arg)
{
    struct gatherer *g = arg;
    g->rc = urt_gather(g->tasks, g->n, g->flags, g->values, g->errors);
    trace("G gather %d", g->rc);
    return g->rc;
}

static intptr_t main_cancel_gatherer(void *arg)
{
    unsigned flags = *(unsigned *)arg;
    struct job jobs[3] = {JOB("c1", 5, 1), JOB("c2", 10000, 2), JOB("c3", 10000, 3)};
    urt_task t[3], g;
    struct gatherer gs = {.tasks = t, .n = 3, .flags = flags};
    unset(gs.values, gs.errors, 8);
    create_jobs(t, jobs, 3);
    EXPECT_EQ(urt_task_create(&g, gatherer_fn, &gs), 0);
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_sleep_ms(spaced_ms(20)), 0);
    trace("main cancels G");
    EXPECT_EQ(urt_task_cancel(g), 1);
    EXPECT_EQ(urt_task_await(g, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_cancelled(g), 1);
    EXPECT_EQ(gs.rc, URT_ECANCELED);
    /* c1 had finished: untouched.  c2 and c3 saw the cancellation. */
    intptr_t v = 0;
    EXPECT_EQ(urt_task_await(t[0], &v), 0);
    EXPECT_EQ(v, 1);
    EXPECT_EQ(urt_task_cancelled(t[0]), 0);
    EXPECT_EQ(urt_task_await(t[1], NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_await(t[2], NULL), URT_ECANCELED);
    EXPECT_EQ(jobs[1].slept, URT_ECANCELED);
    EXPECT_EQ(jobs[2].slept, URT_ECANCELED);
    EXPECT(urt_now() - t0 < 5 * URT_NS_PER_S);
    release_all(t, 3);
    EXPECT_EQ(urt_task_release(g), 0);
    return 0;
}

/* The trace after "main cancels G" holds c2's, c3's and G's ends; the order
 * in which the kernel gives back the two cancelled sleeps is not ours to
 * promise, so those two may come either way.  Returns G's position. */
static size_t check_cancel_gatherer_trace(void)
{
    assert_int_equal(trace_count, 5);
    assert_string_equal(trace_buf[0], "c1 end 1");
    assert_string_equal(trace_buf[1], "main cancels G");
    int c2 = 0, c3 = 0, g = 0;
    size_t g_at = 0;
    for (size_t i = 2; i < 5; i++) {
        if (!strcmp(trace_buf[i], "c2 end -4001")) c2++;
        else if (!strcmp(trace_buf[i], "c3 end -4001")) c3++;
        else if (!strcmp(trace_buf[i], "G gather -4001")) g++, g_at = i;
        else fail_msg("unexpected event \"%s\"", trace_buf[i]);
    }
    assert_true(c2 == 1 && c3 == 1 && g == 1);
    return g_at;
}

/* SEMANTICS 2.5: cancelling the task waiting in gather cancels every child
 * not yet done (they see URT_ECANCELED); gather returns URT_ECANCELED.  In
 * the default mode it may return as soon as the first child ends. */
static void test_gather_cancelling_gatherer_cancels_unfinished_children(void **state)
{
    (void)state;
    unsigned flags = 0;
    run_main(main_cancel_gatherer, &flags);
    assert_true(check_cancel_gatherer_trace() >= 3);
}

/* SEMANTICS 2.5 + 2.3: with URT_RETURN_EXCEPTIONS, gather returns
 * URT_ECANCELED only once every child has ended. */
static void test_gather_return_exceptions_cancelled_gatherer_waits_for_children(void **state)
{
    (void)state;
    unsigned flags = URT_RETURN_EXCEPTIONS;
    run_main(main_cancel_gatherer, &flags);
    assert_int_equal(check_cancel_gatherer_trace(), 4);
}

/* ---- 2.6 zero tasks ---- */

static intptr_t main_zero(void *arg)
{
    (void)arg;
    struct job j = JOB("t", 0, 9);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, job_fn, &j), 0);
    intptr_t v[1];
    int e[1];
    unset(v, e, 1);
    trace("gather %d", urt_gather(&t, 0, 0, v, e));
    trace("gather %d", urt_gather(&t, 0, URT_RETURN_EXCEPTIONS, v, e));
    trace("gather %d", urt_gather(NULL, 0, 0, NULL, NULL));
    EXPECT_EQ(v[0], UNSET_VALUE);
    EXPECT_EQ(e[0], UNSET_ERROR);
    EXPECT(!j.ran); /* no suspension happened */
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

/* SEMANTICS 2.6: n = 0 returns 0 at once, fills nothing and does not yield
 * (the task created just before has not run). */
static void test_gather_of_zero_tasks_returns_at_once(void **state)
{
    (void)state;
    run_main(main_zero, NULL);
    assert_trace("gather 0", "gather 0", "gather 0", "t end 9");
}

/* ---- already finished ---- */

static intptr_t yielding_four_times(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 4; i++) {
        trace("t %d", i);
        EXPECT_EQ(urt_yield(), 0);
    }
    return 0;
}

static intptr_t main_finished(void *arg)
{
    (void)arg;
    struct job jobs[3] = {JOB("a", 0, 1), JOB("b", 0, -EIO), JOB("c", 0, 3)};
    urt_task t[3];
    create_jobs(t, jobs, 3);
    EXPECT_EQ(urt_yield(), 0);
    urt_task lt;
    EXPECT_EQ(urt_task_create(&lt, yielding_four_times, NULL), 0);

    urt_task ok[2] = {t[0], t[2]};
    intptr_t v[3];
    int e[3];
    unset(v, e, 3);
    trace("gather %d", urt_gather(ok, 2, 0, v, NULL));
    EXPECT_EQ(v[0], 1);
    EXPECT_EQ(v[1], 3);
    unset(v, e, 3);
    trace("gather %d", urt_gather(t, 3, URT_RETURN_EXCEPTIONS, v, e));
    EXPECT_EQ(e[0], 0);
    EXPECT_EQ(e[1], -EIO);
    EXPECT_EQ(e[2], 0);
    EXPECT_EQ(v[0], 1);
    EXPECT_EQ(v[2], 3);
    trace("gather %d", urt_gather(t, 3, 0, NULL, NULL));
    EXPECT_EQ(urt_task_await(lt, NULL), 0);
    release_all(t, 3);
    EXPECT_EQ(urt_task_release(lt), 0);
    return 0;
}

/* Every task already finished, yet gather suspends for two passes, as
 * asyncio's does: its done callbacks take one and its awaiter the next,
 * so a task ready beside it runs twice before gather returns.  The Python
 * twin prints t 1, t 2, gather, t 3, t 4, gather. */
static void test_gather_of_finished_tasks_suspends_two_passes_as_asyncio(void **state)
{
    (void)state;
    run_main(main_finished, NULL);
    assert_trace("a end 1", "b end -5", "c end 3", "t 1", "t 2", "gather 0", "t 3", "t 4",
                 "gather 0", "gather -5");
}

/* ---- bad input (SEMANTICS 6): a clear code, nothing waited for, and the
 * loop still works afterwards ---- */

static urt_task stale_handle; /* a handle of a loop that has ended */

static intptr_t main_keep_handle(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_task_create(&stale_handle, job_fn, &(struct job)JOB(NULL, 0, 1)), 0);
    EXPECT_EQ(urt_task_await(stale_handle, NULL), 0);
    return 0;
}

enum bad_case {
    BAD_NULL_TASKS,
    BAD_NULL_ERRORS,
    BAD_FLAGS,
    BAD_HANDLE,
    BAD_OWN_HANDLE,
};

/* p sleeps 30 ms: a bad call that waited for it would find it done. */
static intptr_t main_bad_call(void *arg)
{
    enum bad_case which = *(enum bad_case *)arg;
    struct job pj = JOB("p", 30, 7);
    struct job qj = JOB(NULL, 0, 8);
    urt_task p, q;
    EXPECT_EQ(urt_task_create(&p, job_fn, &pj), 0);
    intptr_t v[3];
    int e[3];
    unset(v, e, 3);
    switch (which) {
    case BAD_NULL_TASKS:
        trace("%d", urt_gather(NULL, 1, 0, v, NULL));
        trace("%d", urt_gather(NULL, 2, URT_RETURN_EXCEPTIONS, v, e));
        break;
    case BAD_NULL_ERRORS:
        trace("%d", urt_gather(&p, 1, URT_RETURN_EXCEPTIONS, v, NULL));
        trace("%d", urt_gather(&p, 1, URT_RETURN_EXCEPTIONS, NULL, NULL));
        break;
    case BAD_FLAGS:
        trace("%d", urt_gather(&p, 1, 0x2u, v, e));
        trace("%d", urt_gather(&p, 1, URT_RETURN_EXCEPTIONS | 0x100u, v, e));
        trace("%d", urt_gather(&p, 1, 0x80000000u, v, e));
        break;
    case BAD_HANDLE: {
        EXPECT_EQ(urt_task_create(&q, job_fn, &qj), 0);
        EXPECT_EQ(urt_task_release(q), 0);
        urt_task released[2] = {p, q};
        trace("%d", urt_gather(released, 2, 0, v, NULL));
        urt_task none[2] = {p, URT_TASK_NONE};
        trace("%d", urt_gather(none, 2, URT_RETURN_EXCEPTIONS, v, e));
        urt_task stale[2] = {p, stale_handle};
        trace("%d", urt_gather(stale, 2, 0, v, NULL));
        urt_task first[2] = {q, p};
        trace("%d", urt_gather(first, 2, 0, v, NULL));
        break;
    }
    case BAD_OWN_HANDLE: {
        urt_task self[2] = {p, urt_task_current()};
        trace("%d", urt_gather(self, 2, 0, v, NULL));
        trace("%d", urt_gather(self, 2, URT_RETURN_EXCEPTIONS, v, e));
        trace("%d", urt_gather(self + 1, 1, 0, v, NULL));
        break;
    }
    }
    /* Nothing was waited for, nothing was filled. */
    EXPECT_EQ(urt_task_done(p), 0);
    EXPECT_EQ(v[0], UNSET_VALUE);
    EXPECT_EQ(v[1], UNSET_VALUE);
    EXPECT_EQ(e[0], UNSET_ERROR);
    EXPECT_EQ(e[1], UNSET_ERROR);
    /* The loop still works. */
    int rc = urt_gather(&p, 1, 0, v, NULL);
    trace("gather %d %ld", rc, (long)v[0]);
    EXPECT_EQ(urt_task_release(p), 0);
    return 0;
}

static void run_bad(enum bad_case which)
{
    run_main(main_bad_call, &which);
}

/* SEMANTICS 6, header: tasks NULL with n > 0 is -EINVAL (-22). */
static void test_gather_rejects_null_tasks(void **state)
{
    (void)state;
    run_bad(BAD_NULL_TASKS);
    assert_trace("-22", "-22", "p end 7", "gather 0 7");
}

/* SEMANTICS 6, header: errors NULL with URT_RETURN_EXCEPTIONS is -EINVAL. */
static void test_gather_rejects_null_errors_with_return_exceptions(void **state)
{
    (void)state;
    run_bad(BAD_NULL_ERRORS);
    assert_trace("-22", "-22", "p end 7", "gather 0 7");
}

/* SEMANTICS 6, header: unknown flag bits are -EINVAL. */
static void test_gather_rejects_unknown_flags(void **state)
{
    (void)state;
    run_bad(BAD_FLAGS);
    assert_trace("-22", "-22", "-22", "p end 7", "gather 0 7");
}

/* SEMANTICS 6, header: a released, null or stale handle among the tasks is
 * URT_EBADTASK (-4003), with nothing waited for. */
static void test_gather_rejects_invalid_handle_without_waiting(void **state)
{
    (void)state;
    run_main(main_keep_handle, NULL);
    run_bad(BAD_HANDLE);
    assert_trace("-4003", "-4003", "-4003", "-4003", "p end 7", "gather 0 7");
}

/* SEMANTICS 6, header: the caller among the tasks is -EDEADLK (-35). */
static void test_gather_rejects_own_handle(void **state)
{
    (void)state;
    run_bad(BAD_OWN_HANDLE);
    assert_trace("-35", "-35", "-35", "p end 7", "gather 0 7");
}

static urt_task cycle_a, cycle_b;

static intptr_t cycle_a_fn(void *arg)
{
    (void)arg;
    intptr_t v = UNSET_VALUE;
    int rc = urt_gather(&cycle_b, 1, 0, &v, NULL);
    trace("A gather %d %ld", rc, (long)v);
    return 0;
}

static intptr_t cycle_b_fn(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_yield(), 0); /* let A start waiting on B */
    int e = UNSET_ERROR;
    int rc = urt_gather(&cycle_a, 1, URT_RETURN_EXCEPTIONS, NULL, &e);
    trace("B gather %d", rc);
    EXPECT_EQ(e, UNSET_ERROR);
    return 5;
}

static intptr_t main_cycle(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_task_create(&cycle_a, cycle_a_fn, NULL), 0);
    EXPECT_EQ(urt_task_create(&cycle_b, cycle_b_fn, NULL), 0);
    EXPECT_EQ(urt_task_await(cycle_a, NULL), 0);
    EXPECT_EQ(urt_task_await(cycle_b, NULL), 0);
    EXPECT_EQ(urt_task_release(cycle_a), 0);
    EXPECT_EQ(urt_task_release(cycle_b), 0);
    return 0;
}

/* Header: waiting that would close a cycle of tasks waiting on each other
 * is -EDEADLK; the loop and the other waiter go on. */
static void test_gather_rejects_await_cycle(void **state)
{
    (void)state;
    run_main(main_cycle, NULL);
    assert_trace("B gather -35", "A gather 0 5");
}

/* Header: outside a running loop urt_gather is URT_ENOLOOP. */
static void test_gather_outside_loop_is_enoloop(void **state)
{
    (void)state;
    urt_task t = {1, 1};
    intptr_t v = UNSET_VALUE;
    assert_int_equal(urt_gather(&t, 1, 0, &v, NULL), URT_ENOLOOP);
    assert_int_equal(v, UNSET_VALUE);
}

/* ---- scale ---- */

static intptr_t index_fn(void *arg) { return (intptr_t)arg; }

static intptr_t main_scale(void *arg)
{
    size_t n = *(size_t *)arg;
    urt_task *t = calloc(n, sizeof *t);
    intptr_t *v = malloc(n * sizeof *v);
    EXPECT(t && v);
    if (!t || !v) goto out;
    for (size_t i = 0; i < n; i++) {
        v[i] = UNSET_VALUE;
        int rc = urt_task_create(&t[i], index_fn, (void *)(intptr_t)i);
        if (rc) {
            EXPECT_EQ(rc, 0);
            n = i;
            break;
        }
    }
    EXPECT_EQ(urt_gather(t, n, 0, v, NULL), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += v[i] != (intptr_t)i;
    EXPECT_EQ(wrong, 0);
    for (size_t i = 0; i < n; i++) wrong += urt_task_release(t[i]) != 0;
    EXPECT_EQ(wrong, 0);
out:
    free(t);
    free(v);
    return 0;
}

/* SEMANTICS 2.1 at scale: 100,000 tasks in one gather, every value in its
 * place (2,000 under URT_TEST_SMALL). */
static void test_gather_keeps_input_order_for_100k_tasks(void **state)
{
    (void)state;
    size_t n = small_scale() ? 2000 : 100000;
    run_main(main_scale, &n);
}

/* ---- runner ---- */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    urt_task t;
    if (urt_task_create(&t, job_fn, &(struct job)JOB(NULL, 1, 0)) == 0) urt_gather(&t, 1, 0, NULL, NULL);
    return 0;
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
        cmocka_unit_test(test_gather_keeps_input_order),
        cmocka_unit_test(test_gather_returns_first_error_at_once_without_cancelling_others),
        cmocka_unit_test(test_gather_failure_fills_values_of_tasks_already_succeeded),
        cmocka_unit_test(test_gather_returns_earliest_failure_in_time),
        cmocka_unit_test(test_gather_return_exceptions_waits_for_all_and_fills_errors_in_place),
        cmocka_unit_test(test_gather_allows_null_values),
        cmocka_unit_test(test_gather_same_task_twice_fills_each_place),
        cmocka_unit_test(test_gather_return_exceptions_reports_cancelled_child_as_ecanceled),
        cmocka_unit_test(test_gather_returns_ecanceled_for_cancelled_child_without_being_cancelled),
        cmocka_unit_test(test_gather_counts_child_cancelled_before_running_as_failed),
        cmocka_unit_test(test_gather_cancelling_gatherer_cancels_unfinished_children),
        cmocka_unit_test(test_gather_return_exceptions_cancelled_gatherer_waits_for_children),
        cmocka_unit_test(test_gather_of_zero_tasks_returns_at_once),
        cmocka_unit_test(test_gather_of_finished_tasks_suspends_two_passes_as_asyncio),
        cmocka_unit_test(test_gather_rejects_null_tasks),
        cmocka_unit_test(test_gather_rejects_null_errors_with_return_exceptions),
        cmocka_unit_test(test_gather_rejects_unknown_flags),
        cmocka_unit_test(test_gather_rejects_invalid_handle_without_waiting),
        cmocka_unit_test(test_gather_rejects_own_handle),
        cmocka_unit_test(test_gather_rejects_await_cycle),
        cmocka_unit_test(test_gather_outside_loop_is_enoloop),
        cmocka_unit_test(test_gather_keeps_input_order_for_100k_tasks),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
