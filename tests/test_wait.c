/*
 * urt_wait (asyncio.wait) in each mode, with and without a timeout, and
 * as_completed (asyncio.as_completed): completion order, the overall
 * timeout, tasks that are never cancelled by the waiting, and every
 * documented error code.
 *
 * Checks inside tasks use EXPECT* (harness.h); see test_gather.c for why.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "harness.h"

/* A child: sleeps (spaced_ms), records its end, returns its result. */
struct job {
    const char *name;
    unsigned ms;
    intptr_t result;
    int slept;
};

#define JOB(name_, ms_, result_) {.name = (name_), .ms = (ms_), .result = (result_)}

static intptr_t job_fn(void *arg)
{
    struct job *j = arg;
    j->slept = urt_sleep_ms(spaced_ms(j->ms));
    intptr_t ret = j->slept ? j->slept : j->result;
    trace("%s end %ld", j->name, (long)ret);
    return ret;
}

static void create_jobs(urt_task *t, struct job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) EXPECT_EQ(urt_task_create(&t[i], job_fn, &jobs[i]), 0);
}

static void await_and_release(const urt_task *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        urt_task_await(t[i], NULL);
        EXPECT_EQ(urt_task_release(t[i]), 0);
    }
}

static void trace_done(const char *what, int rc, const unsigned char *done, size_t n)
{
    char flags[16] = {0};
    for (size_t i = 0; i < n && i < sizeof flags - 1; i++) flags[i] = done[i] ? '1' : '0';
    trace("%s %d %s", what, rc, flags);
}

/* ---- modes ---- */

static intptr_t main_modes(void *arg)
{
    (void)arg;
    urt_task t[3];
    unsigned char done[3];

    struct job all[3] = {JOB("a", 30, 1), JOB("b", 10, -EIO), JOB("c", 20, 3)};
    create_jobs(t, all, 3);
    trace_done("all", urt_wait(t, 3, URT_ALL_COMPLETED, URT_NO_TIMEOUT, done), done, 3);
    await_and_release(t, 3);

    struct job first[3] = {JOB("d", 30, 1), JOB("e", 10, 2), JOB("f", 20, 3)};
    create_jobs(t, first, 3);
    trace_done("first", urt_wait(t, 3, URT_FIRST_COMPLETED, URT_NO_TIMEOUT, done), done, 3);
    EXPECT_EQ(urt_task_done(t[0]), 0); /* the others run on */
    await_and_release(t, 3);
    EXPECT_EQ(first[0].slept, 0); /* never cancelled */

    struct job exc[3] = {JOB("g", 10, 1), JOB("h", 20, -EIO), JOB("i", 50, 3)};
    create_jobs(t, exc, 3);
    trace_done("exception", urt_wait(t, 3, URT_FIRST_EXCEPTION, URT_NO_TIMEOUT, done), done, 3);
    await_and_release(t, 3);

    /* No failure at all: FIRST_EXCEPTION waits for everything. */
    struct job none[2] = {JOB("j", 10, 1), JOB("k", 20, 2)};
    create_jobs(t, none, 2);
    trace_done("no exception", urt_wait(t, 2, URT_FIRST_EXCEPTION, URT_NO_TIMEOUT, done), done, 2);
    await_and_release(t, 2);
    return 0;
}

/* asyncio.wait: ALL_COMPLETED waits for every task and does not fail for
 * b's error; FIRST_COMPLETED returns at the first end and leaves the rest
 * running; FIRST_EXCEPTION returns at the first failure, or when all are
 * done if none fails. */
static void test_wait_each_mode(void **state)
{
    (void)state;
    run_main(main_modes, NULL);
    assert_trace("b end -5", "c end 3", "a end 1", "all 3 111",
                 "e end 2", "first 1 010", "f end 3", "d end 1",
                 "g end 1", "h end -5", "exception 2 110", "i end 3",
                 "j end 1", "k end 2", "no exception 2 11");
}

static intptr_t cancel_other(void *arg)
{
    urt_task *t = arg;
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    trace("cancelling x");
    EXPECT_EQ(urt_task_cancel(*t), 1);
    return 0;
}

static intptr_t main_cancelled_is_no_exception(void *arg)
{
    (void)arg;
    urt_task t[2], k;
    unsigned char done[2];
    struct job jobs[2] = {JOB("x", 1000, 1), JOB("y", 20, 2)};
    create_jobs(t, jobs, 2);
    EXPECT_EQ(urt_task_create(&k, cancel_other, &t[0]), 0);
    trace_done("wait", urt_wait(t, 2, URT_FIRST_EXCEPTION, URT_NO_TIMEOUT, done), done, 2);
    await_and_release(t, 2);
    await_and_release(&k, 1);
    return 0;
}

/* asyncio's FIRST_EXCEPTION does not count a cancelled task. */
static void test_wait_first_exception_ignores_a_cancelled_task(void **state)
{
    (void)state;
    run_main(main_cancelled_is_no_exception, NULL);
    assert_trace("cancelling x", "x end -4001", "y end 2", "wait 2 11");
}

/* ---- timeouts and cancellation ---- */

static intptr_t main_timeout(void *arg)
{
    (void)arg;
    urt_task t[2];
    unsigned char done[2];
    struct job jobs[2] = {JOB("a", 10, 1), JOB("b", 100, 2)};
    create_jobs(t, jobs, 2);
    uint64_t t0 = urt_now();
    int rc = urt_wait(t, 2, URT_ALL_COMPLETED, spaced_ms(40) * URT_NS_PER_MS, done);
    EXPECT(urt_now() - t0 >= spaced_ms(40) * URT_NS_PER_MS);
    trace_done("wait", rc, done, 2);
    EXPECT_EQ(urt_task_done(t[1]), 0);
    await_and_release(t, 2);
    EXPECT_EQ(jobs[1].slept, 0); /* b ran to its end */

    /* 0: look, do not wait; a task created just before does not run. */
    struct job quick[1] = {JOB("q", 0, 5)};
    create_jobs(t, quick, 1);
    rc = urt_wait(t, 1, URT_ALL_COMPLETED, 0, done);
    trace_done("look", rc, done, 1);
    await_and_release(t, 1);
    return 0;
}

/* asyncio.wait(timeout=...): what is done when the time is up, no error,
 * and the pending tasks are not cancelled. */
static void test_wait_timeout_reports_pending_without_cancelling(void **state)
{
    (void)state;
    run_main(main_timeout, NULL);
    assert_trace("a end 1", "wait 1 10", "b end 2", "look 0 0", "q end 5");
}

struct waiting {
    urt_task *tasks;
    int rc;
};

static intptr_t waits(void *arg)
{
    struct waiting *w = arg;
    w->rc = urt_wait(w->tasks, 2, URT_ALL_COMPLETED, URT_NO_TIMEOUT, NULL);
    trace("wait %d", w->rc);
    return 0;
}

static intptr_t main_cancelled_waiter(void *arg)
{
    (void)arg;
    urt_task t[2], w;
    struct job jobs[2] = {JOB("a", 20, 1), JOB("b", 30, 2)};
    create_jobs(t, jobs, 2);
    struct waiting ws = {t, 1};
    EXPECT_EQ(urt_task_create(&w, waits, &ws), 0);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    EXPECT_EQ(urt_task_cancel(w), 1);
    EXPECT_EQ(urt_task_await(w, NULL), 0);
    EXPECT_EQ(urt_task_release(w), 0);
    await_and_release(t, 2);
    EXPECT_EQ(jobs[0].slept, 0);
    EXPECT_EQ(jobs[1].slept, 0);

    /* A scope around the wait cuts it: that is the scope's timeout. */
    create_jobs(t, jobs, 2);
    urt_timeout scope;
    EXPECT_EQ(urt_timeout_enter(&scope, spaced_ms(5) * URT_NS_PER_MS), 0);
    trace("scoped wait %d", urt_wait(t, 2, URT_ALL_COMPLETED, URT_NO_TIMEOUT, NULL));
    trace("exit %d", urt_timeout_exit(&scope));
    await_and_release(t, 2);
    return 0;
}

/* Cancelling the waiting task ends its wait with URT_ECANCELED; the tasks
 * run on (asyncio.wait does not cancel them).  A timeout scope's deadline
 * is URT_ETIMEDOUT, not an early "what is done" report. */
static void test_wait_cancelled_waiter_leaves_the_tasks_running(void **state)
{
    (void)state;
    run_main(main_cancelled_waiter, NULL);
    assert_trace("wait -4001", "a end 1", "b end 2",
                 "scoped wait -4002", "exit -4002", "a end 1", "b end 2");
}

/* ---- bad input ---- */

static intptr_t main_errors(void *arg)
{
    (void)arg;
    urt_task t[1];
    struct job j[1] = {JOB("a", 1, 1)};
    create_jobs(t, j, 1);
    unsigned char done[2];
    EXPECT_EQ(urt_wait(NULL, 1, URT_ALL_COMPLETED, URT_NO_TIMEOUT, done), -EINVAL);
    EXPECT_EQ(urt_wait(t, 0, URT_ALL_COMPLETED, URT_NO_TIMEOUT, done), -EINVAL);
    EXPECT_EQ(urt_wait(t, 1, 3, URT_NO_TIMEOUT, done), -EINVAL);
    urt_task bad[2] = {t[0], URT_TASK_NONE};
    EXPECT_EQ(urt_wait(bad, 2, URT_ALL_COMPLETED, URT_NO_TIMEOUT, done), URT_EBADTASK);
    urt_task self[1] = {urt_task_current()};
    EXPECT_EQ(urt_wait(self, 1, URT_ALL_COMPLETED, URT_NO_TIMEOUT, done), -EDEADLK);
    EXPECT_EQ(urt_task_done(t[0]), 0); /* none of those waited */
    /* Done already: no suspension, and done may be NULL. */
    EXPECT_EQ(urt_task_await(t[0], NULL), 0);
    EXPECT_EQ(urt_wait(t, 1, URT_ALL_COMPLETED, URT_NO_TIMEOUT, NULL), 1);

    urt_as_completed it;
    urt_task next;
    EXPECT_EQ(urt_as_completed_init(NULL, t, 1, URT_NO_TIMEOUT), -EINVAL);
    EXPECT_EQ(urt_as_completed_init(&it, NULL, 1, URT_NO_TIMEOUT), -EINVAL);
    EXPECT_EQ(urt_as_completed_init(&it, bad, 2, URT_NO_TIMEOUT), 0);
    EXPECT_EQ(urt_as_completed_next(&it, NULL), -EINVAL);
    EXPECT_EQ(urt_as_completed_next(&it, &next), URT_EBADTASK);
    urt_as_completed_end(&it);
    urt_as_completed_end(NULL);
    EXPECT_EQ(urt_as_completed_init(&it, NULL, 0, URT_NO_TIMEOUT), 0);
    EXPECT_EQ(urt_as_completed_next(&it, &next), 0); /* nothing to give */
    urt_as_completed_end(&it);
    EXPECT_EQ(urt_task_release(t[0]), 0);
    return 0;
}

static void test_wait_and_as_completed_reject_bad_input(void **state)
{
    (void)state;
    run_main(main_errors, NULL);
    urt_task t = URT_TASK_NONE;
    urt_as_completed it;
    assert_int_equal(urt_wait(&t, 1, URT_ALL_COMPLETED, 0, NULL), URT_ENOLOOP);
    assert_int_equal(urt_as_completed_init(&it, &t, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_as_completed_next(&it, &t), URT_ENOLOOP);
}

/* ---- as_completed ---- */

static intptr_t main_as_completed(void *arg)
{
    (void)arg;
    urt_task t[4];
    struct job jobs[4] = {JOB("a", 30, 1), JOB("b", 10, -EIO), JOB("c", 20, 3), JOB("d", 0, 4)};
    create_jobs(t, jobs, 4);
    EXPECT_EQ(urt_yield(), 0); /* d is done before the iteration starts */
    urt_as_completed it;
    EXPECT_EQ(urt_as_completed_init(&it, t, 4, URT_NO_TIMEOUT), 0);
    urt_task next;
    int rc;
    while ((rc = urt_as_completed_next(&it, &next)) == 1) {
        intptr_t v = 0;
        int r = urt_task_result(next, &v);
        trace("got %s %d %ld", urt_task_name(next), r, (long)v);
    }
    trace("next %d", rc);
    EXPECT_EQ(urt_as_completed_next(&it, &next), 0);
    urt_as_completed_end(&it);
    await_and_release(t, 4);

    /* Several finished while the caller was busy: in finishing order. */
    struct job burst[3] = {JOB("e", 3, 5), JOB("f", 1, 6), JOB("g", 2, 7)};
    create_jobs(t, burst, 3);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(20)), 0);
    EXPECT_EQ(urt_as_completed_init(&it, t, 3, URT_NO_TIMEOUT), 0);
    while (urt_as_completed_next(&it, &next) == 1) trace("burst %s", urt_task_name(next));
    urt_as_completed_end(&it);
    await_and_release(t, 3);
    return 0;
}

/* asyncio.as_completed: tasks in the order they finish, whatever the input
 * order, including those finished before the iteration began. */
static void test_as_completed_gives_tasks_in_completion_order(void **state)
{
    (void)state;
    run_main(main_as_completed, NULL);
    assert_trace("d end 4", "got Task-5 0 4", "b end -5", "got Task-3 -5 0", "c end 3",
                 "got Task-4 0 3", "a end 1", "got Task-2 0 1", "next 0",
                 "f end 6", "g end 7", "e end 5", "burst Task-7", "burst Task-8", "burst Task-6");
}

static intptr_t main_as_completed_timeout(void *arg)
{
    (void)arg;
    urt_task t[2];
    struct job jobs[2] = {JOB("slow", 100, 1), JOB("fast", 10, 2)};
    create_jobs(t, jobs, 2);
    urt_as_completed it;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_as_completed_init(&it, t, 2, spaced_ms(40) * URT_NS_PER_MS), 0);
    urt_task next;
    EXPECT_EQ(urt_as_completed_next(&it, &next), 1);
    EXPECT(urt_task_equal(next, t[1]));
    trace("next %d", urt_as_completed_next(&it, &next));
    EXPECT(urt_now() - t0 >= spaced_ms(40) * URT_NS_PER_MS);
    EXPECT_EQ(urt_task_done(t[0]), 0); /* not cancelled: */
    EXPECT_EQ(urt_task_await(t[0], NULL), 0);
    /* ... and given once it has finished. */
    EXPECT_EQ(urt_as_completed_next(&it, &next), 1);
    EXPECT(urt_task_equal(next, t[0]));
    EXPECT_EQ(urt_as_completed_next(&it, &next), 0);
    urt_as_completed_end(&it);
    await_and_release(t, 2);
    return 0;
}

/* asyncio.as_completed(timeout=...): TimeoutError once the time is up; the
 * tasks left are not cancelled. */
static void test_as_completed_timeout_leaves_the_rest_running(void **state)
{
    (void)state;
    run_main(main_as_completed_timeout, NULL);
    assert_trace("fast end 2", "next -4002", "slow end 1");
}

/* The count urt_wait returns after waiting includes the tasks done before
 * the call once, not twice (found by the fuzzer: 3 of 2 tasks). */
static intptr_t main_count_after_waiting(void *arg)
{
    (void)arg;
    struct job jobs[2] = {JOB("early", 0, 1), JOB("late", 5, 2)};
    urt_task t[2];
    create_jobs(t, jobs, 2);
    while (urt_task_done(t[0]) != 1) EXPECT_EQ(urt_yield(), 0); /* late still sleeps */
    EXPECT_EQ(urt_task_done(t[1]), 0);
    unsigned char done[2] = {9, 9};
    EXPECT_EQ(urt_wait(t, 2, URT_ALL_COMPLETED, URT_NO_TIMEOUT, done), 2);
    EXPECT_EQ(done[0], 1);
    EXPECT_EQ(done[1], 1);
    await_and_release(t, 2);
    return 0;
}

static void test_wait_counts_tasks_done_before_the_call_once(void **state)
{
    (void)state;
    run_main(main_count_after_waiting, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_each_mode),
        cmocka_unit_test(test_wait_counts_tasks_done_before_the_call_once),
        cmocka_unit_test(test_wait_first_exception_ignores_a_cancelled_task),
        cmocka_unit_test(test_wait_timeout_reports_pending_without_cancelling),
        cmocka_unit_test(test_wait_cancelled_waiter_leaves_the_tasks_running),
        cmocka_unit_test(test_wait_and_as_completed_reject_bad_input),
        cmocka_unit_test(test_as_completed_gives_tasks_in_completion_order),
        cmocka_unit_test(test_as_completed_timeout_leaves_the_rest_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
