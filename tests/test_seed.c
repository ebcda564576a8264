/*
 * The programs of seed-asyncio-notes.txt (examples/python/), written
 * with urt, must do what they do under asyncio (SEMANTICS, opening
 * paragraph: a Python programmer predicts the order of events).  Sleeps are
 * scaled from seconds to UNIT (20 ms); what the Python programs print is
 * recorded with trace() and compared exactly.
 *
 * Checks made inside tasks never call cmocka's assert macros (a longjmp
 * out of a fiber would wreck the loop); they record the first failure and
 * the test asserts none was recorded after urt_run returns.
 */
#include <errno.h>
#include <stdbool.h>

#include "harness.h"

#define UNIT (20 * URT_NS_PER_MS) /* one second of the seed's programs */

/* Runs main and returns urt_run's result, after checking no task recorded a
 * failure. */
static int run_seed(urt_fn fn, void *arg)
{
    trace_reset();
    task_failure[0] = 0;
    int rc = run_checked(fn, arg, NULL);
    assert_no_task_failure();
    return rc;
}

/* ---- create_task.py ---- */

/* async def task(): print("Task started"); await asyncio.sleep(2);
 *                   print("Task finished") */
static intptr_t seed_task(void *arg)
{
    (void)arg;
    trace("Task started");
    int rc = urt_sleep(2 * UNIT);
    if (rc) {
        trace("Task cancelled %d", rc);
        return rc;
    }
    trace("Task finished");
    return 0;
}

/* arg: how many UNITs main sleeps before it returns (the seed sleeps 3). */
static intptr_t seed_create_task_main(void *arg)
{
    unsigned units = *(unsigned *)arg;
    trace("Main started");
    EXPECT_EQ(urt_task_create(NULL, seed_task, NULL), 0); /* not kept, as in the seed */
    trace("Main continues running");
    if (units) EXPECT_EQ(urt_sleep(units * UNIT), 0);
    trace("Main finished");
    return 0;
}

/* SEMANTICS 1.3 (the seed's create_task example): the task starts only when
 * main suspends, runs concurrently, and finishes within main's sleep. */
static void test_seed_create_task_runs_when_main_suspends(void **state)
{
    (void)state;
    unsigned units = 3;
    assert_int_equal(run_seed(seed_create_task_main, &units), 0);
    assert_trace("Main started", "Main continues running", "Task started", "Task finished",
                 "Main finished");
}

/* SEMANTICS 1.2 + 3.4 (the seed's "Common Pitfall"): main returns without
 * keeping the loop alive; the task, which never ran, is cancelled and never
 * runs. */
static void test_seed_pitfall_task_never_run_is_cancelled_not_run(void **state)
{
    (void)state;
    unsigned units = 0;
    assert_int_equal(run_seed(seed_create_task_main, &units), 0);
    assert_trace("Main started", "Main continues running", "Main finished");
}

/* SEMANTICS 1.2: main returns while the task sleeps; the task is cancelled
 * (it sees URT_ECANCELED in its sleep) and urt_run waits for it. */
static void test_seed_pitfall_sleeping_task_is_cancelled_and_waited_for(void **state)
{
    (void)state;
    unsigned units = 1;
    assert_int_equal(run_seed(seed_create_task_main, &units), 0);
    assert_trace("Main started", "Main continues running", "Task started", "Main finished",
                 "Task cancelled -4001");
}

/* ---- gather.py and gather_exceptions.py ---- */

static const char *const done_text[] = {NULL, "Task 1 done", "Task 2 done", "Task 3 done"};

struct seed_n {
    int n;
    bool fails; /* gather_exceptions.py: task(2) raises before sleeping */
};

/* async def task(n): [if n == 2: raise ValueError]; await asyncio.sleep(n);
 *                    return f"Task {n} done" */
static intptr_t seed_task_n(void *arg)
{
    const struct seed_n *s = arg;
    if (s->fails && s->n == 2) return -EINVAL; /* ValueError */
    int rc = urt_sleep(s->n * UNIT);
    if (rc) {
        trace("Task %d cancelled %d", s->n, rc);
        return rc;
    }
    return (intptr_t)done_text[s->n];
}

/* Python's print(results): strings quoted, errors as their code. */
static void trace_results(const intptr_t *v, const int *e, size_t n)
{
    char line[TRACE_LEN] = "[";
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? ", " : "";
        if (e && e[i])
            len += snprintf(line + len, sizeof line - len, "%s%d", sep, e[i]);
        else
            len += snprintf(line + len, sizeof line - len, "%s'%s'", sep, (const char *)v[i]);
        if (len >= sizeof line) len = sizeof line - 1;
    }
    snprintf(line + len, sizeof line - len, "]");
    trace("%s", line);
}

struct gather_run {
    int order[3];
    bool fails;
    unsigned flags;
    uint64_t elapsed;
    int rc;
    struct seed_n s[3]; /* here, not on main's stack: tasks outlive main */
};

static intptr_t seed_gather_main(void *arg)
{
    struct gather_run *g = arg;
    struct seed_n *s = g->s;
    urt_task t[3];
    intptr_t v[3] = {0, 0, 0};
    int e[3] = {-1, -1, -1};
    uint64_t t0 = urt_now();
    for (int i = 0; i < 3; i++) {
        s[i] = (struct seed_n){g->order[i], g->fails};
        EXPECT_EQ(urt_task_create(&t[i], seed_task_n, &s[i]), 0);
    }
    g->rc = urt_gather(t, 3, g->flags, v, e);
    g->elapsed = urt_now() - t0;
    if (g->rc) {
        trace("gather failed %d", g->rc);
        /* "We never get results for task(1) or task(3)" */
        EXPECT_EQ(v[0], 0);
        EXPECT_EQ(v[2], 0);
        return g->rc; /* the program stops: the others are cancelled */
    }
    trace_results(v, g->flags & URT_RETURN_EXCEPTIONS ? e : NULL, 3);
    for (int i = 0; i < 3; i++) EXPECT_EQ(urt_task_release(t[i]), 0);
    return 0;
}

/* SEMANTICS 2.1 (gather.py): results in input order, not completion order;
 * the tasks run concurrently: the gather takes at least the longest sleep
 * (3 units) and less than their sum (6). */
static void test_seed_gather_results_in_input_order(void **state)
{
    (void)state;
    struct gather_run g = {.order = {2, 1, 3}};
    assert_int_equal(run_seed(seed_gather_main, &g), 0);
    assert_trace("['Task 2 done', 'Task 1 done', 'Task 3 done']");
    assert_true(g.elapsed >= 3 * UNIT);
    assert_true(g.elapsed < 6 * UNIT);
}

/* SEMANTICS 2.2 (gather_exceptions.py, no return_exceptions): task(2)'s
 * error stops gather at once; main fails with it, and the two tasks still
 * sleeping are cancelled when main returns (SEMANTICS 1.2). */
static void test_seed_gather_without_return_exceptions_fails_at_once(void **state)
{
    (void)state;
    struct gather_run g = {.order = {1, 2, 3}, .fails = true};
    assert_int_equal(run_seed(seed_gather_main, &g), -EINVAL);
    assert_int_equal(g.rc, -EINVAL);
    assert_true(g.elapsed < 1 * UNIT);
    /* The kernel may give back the two cancelled sleeps in either order. */
    assert_int_equal(trace_count, 3);
    assert_string_equal(trace_buf[0], "gather failed -22");
    bool one_then_three = !strcmp(trace_buf[1], "Task 1 cancelled -4001") &&
                          !strcmp(trace_buf[2], "Task 3 cancelled -4001");
    bool three_then_one = !strcmp(trace_buf[1], "Task 3 cancelled -4001") &&
                          !strcmp(trace_buf[2], "Task 1 cancelled -4001");
    if (!one_then_three && !three_then_one)
        fail_msg("got \"%s\", \"%s\"", trace_buf[1], trace_buf[2]);
}

/* SEMANTICS 2.3 (gather_exceptions.py --return-exceptions): the error takes
 * task(2)'s place, the others' results theirs; gather waited for task(3)
 * (3 units) but not for the sum of the sleeps (4). */
static void test_seed_gather_return_exceptions_keeps_error_in_place(void **state)
{
    (void)state;
    struct gather_run g = {.order = {1, 2, 3}, .fails = true, .flags = URT_RETURN_EXCEPTIONS};
    assert_int_equal(run_seed(seed_gather_main, &g), 0);
    assert_trace("['Task 1 done', -22, 'Task 3 done']");
    assert_true(g.elapsed >= 3 * UNIT);
    assert_true(g.elapsed < 4 * UNIT);
}

/* ---- runner ---- */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    urt_sleep_ms(1);
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
        cmocka_unit_test(test_seed_create_task_runs_when_main_suspends),
        cmocka_unit_test(test_seed_pitfall_task_never_run_is_cancelled_not_run),
        cmocka_unit_test(test_seed_pitfall_sleeping_task_is_cancelled_and_waited_for),
        cmocka_unit_test(test_seed_gather_results_in_input_order),
        cmocka_unit_test(test_seed_gather_without_return_exceptions_fails_at_once),
        cmocka_unit_test(test_seed_gather_return_exceptions_keeps_error_in_place),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
