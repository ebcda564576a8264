/*
 * Time (SEMANTICS 1.5 and 3.1): sleeps never end early, sleep(0) is a
 * yield to the back of the ready queue, sleepers wake in deadline order, a
 * cancelled sleep ends at once, and many sleepers at once cost little.
 *
 * Checks made inside tasks never call cmocka's assert macros (a longjmp
 * out of a fiber would wreck the loop); they record the first failure and
 * the test asserts none was recorded after urt_run returns.
 */
#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include "harness.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * URT_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- 1.5 sleep(d) never returns before d ---- */

/* Generous: a loaded machine or valgrind may wake us late, never early. */
#define LATE_NS (500 * URT_NS_PER_MS)

static void check_slept(int rc, uint64_t d, uint64_t u0, uint64_t u1, uint64_t c0, uint64_t c1)
{
    EXPECT_EQ(rc, 0);
    EXPECT(u1 - u0 >= d);
    EXPECT(c1 - c0 >= d);
    EXPECT(u1 - u0 < d + LATE_NS);
    EXPECT(c1 - c0 < d + LATE_NS);
}

static intptr_t main_sleep_durations(void *arg)
{
    (void)arg;
    static const uint64_t ds[] = {1 * URT_NS_PER_MS, 5 * URT_NS_PER_MS, 20 * URT_NS_PER_MS};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        for (int rep = 0; rep < 3; rep++) {
            uint64_t c0 = mono_ns(), u0 = urt_now();
            int rc = urt_sleep(ds[i]);
            uint64_t u1 = urt_now(), c1 = mono_ns();
            check_slept(rc, ds[i], u0, u1, c0, c1);
        }
    }
    /* The helpers scale their argument. */
    uint64_t c0 = mono_ns(), u0 = urt_now();
    int rc = urt_sleep_us(3000);
    uint64_t u1 = urt_now(), c1 = mono_ns();
    check_slept(rc, 3 * URT_NS_PER_MS, u0, u1, c0, c1);
    c0 = mono_ns(), u0 = urt_now();
    rc = urt_sleep_ms(7);
    u1 = urt_now(), c1 = mono_ns();
    check_slept(rc, 7 * URT_NS_PER_MS, u0, u1, c0, c1);
    c0 = mono_ns(), u0 = urt_now();
    rc = urt_sleep_s(1);
    u1 = urt_now(), c1 = mono_ns();
    check_slept(rc, URT_NS_PER_S, u0, u1, c0, c1);
    return 0;
}

/* SEMANTICS 1.5: sleep(d) never returns before d has passed, measured both
 * with urt_now and with CLOCK_MONOTONIC, for 1, 5 and 20 ms and through
 * urt_sleep_us/ms/s. */
static void test_sleep_never_returns_before_duration(void **state)
{
    (void)state;
    run_main(main_sleep_durations, NULL);
}

static intptr_t main_now(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        uint64_t c0 = mono_ns();
        uint64_t u = urt_now();
        uint64_t c1 = mono_ns();
        EXPECT(c0 <= u && u <= c1);
    }
    return 0;
}

/* Header: urt_now is nanoseconds of CLOCK_MONOTONIC (the clock sleeps are
 * measured on, SEMANTICS 1.5). */
static void test_now_reads_clock_monotonic(void **state)
{
    (void)state;
    run_main(main_now, NULL);
}

/* ---- 1.5 sleep(0) is a yield ---- */

static int (*yield_fn)(void);

static int sleep_zero(void) { return urt_sleep(0); }

static intptr_t yc_fn(void *arg)
{
    (void)arg;
    trace("C1");
    return 0;
}

static intptr_t ya_fn(void *arg)
{
    (void)arg;
    trace("A1");
    EXPECT_EQ(yield_fn(), 0);
    trace("A2");
    return 0;
}

static intptr_t yb_fn(void *arg)
{
    (void)arg;
    trace("B1");
    EXPECT_EQ(urt_task_create(NULL, yc_fn, NULL), 0);
    EXPECT_EQ(yield_fn(), 0);
    trace("B2");
    return 0;
}

/* Ready queue, front first:
 *   main yields             A B main
 *   A: A1, yields           B main A
 *   B: B1, creates C, yields main A C B
 *   main: main2, yields     A C B main
 *   A: A2 / C: C1 / B: B2 / main: main3 */
static intptr_t main_yield_order(void *arg)
{
    yield_fn = arg ? sleep_zero : urt_yield;
    trace("main1");
    urt_task a, b;
    EXPECT_EQ(urt_task_create(&a, ya_fn, NULL), 0);
    EXPECT_EQ(urt_task_create(&b, yb_fn, NULL), 0);
    EXPECT_EQ(yield_fn(), 0);
    trace("main2");
    EXPECT_EQ(yield_fn(), 0);
    trace("main3");
    EXPECT_EQ(urt_task_done(a), 1);
    EXPECT_EQ(urt_task_done(b), 1);
    EXPECT_EQ(urt_task_release(a), 0);
    EXPECT_EQ(urt_task_release(b), 0);
    return 0;
}

/* SEMANTICS 1.5: a yield puts the caller behind every task that became
 * ready before it, including the ones it created just before. */
static void test_yield_goes_behind_every_task_ready_before_it(void **state)
{
    (void)state;
    run_main(main_yield_order, NULL);
    assert_trace("main1", "A1", "B1", "main2", "A2", "C1", "B2", "main3");
}

/* SEMANTICS 1.5 / header: urt_sleep(0) is urt_yield(): the same program
 * with sleep(0) instead of yield gives the same interleaving. */
static void test_sleep_zero_is_yield(void **state)
{
    (void)state;
    run_main(main_yield_order, (void *)1);
    assert_trace("main1", "A1", "B1", "main2", "A2", "C1", "B2", "main3");
}

#define ALTERNATIONS 10

static intptr_t pingpong_fn(void *arg)
{
    const char *name = arg;
    for (int i = 0; i < ALTERNATIONS; i++) {
        trace("%s%d", name, i);
        EXPECT_EQ(urt_yield(), 0);
    }
    return 0;
}

static intptr_t main_pingpong(void *arg)
{
    (void)arg;
    urt_task t[2];
    EXPECT_EQ(urt_task_create(&t[0], pingpong_fn, "A"), 0);
    EXPECT_EQ(urt_task_create(&t[1], pingpong_fn, "B"), 0);
    EXPECT_EQ(urt_gather(t, 2, 0, NULL, NULL), 0);
    EXPECT_EQ(urt_task_release(t[0]), 0);
    EXPECT_EQ(urt_task_release(t[1]), 0);
    return 0;
}

/* SEMANTICS 1.5: two tasks yielding back and forth alternate strictly. */
static void test_two_yielding_tasks_alternate_strictly(void **state)
{
    (void)state;
    run_main(main_pingpong, NULL);
    char expected[2 * ALTERNATIONS][8];
    const char *list[2 * ALTERNATIONS];
    for (int i = 0; i < ALTERNATIONS; i++) {
        snprintf(expected[2 * i], sizeof expected[0], "A%d", i);
        snprintf(expected[2 * i + 1], sizeof expected[0], "B%d", i);
        list[2 * i] = expected[2 * i];
        list[2 * i + 1] = expected[2 * i + 1];
    }
    assert_trace_list(list, 2 * ALTERNATIONS);
}

/* ---- sleepers wake in deadline order ---- */

static intptr_t sleeper_fn(void *arg)
{
    unsigned ms = (unsigned)(uintptr_t)arg;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_sleep_ms(ms), 0);
    EXPECT(urt_now() - t0 >= ms * URT_NS_PER_MS);
    trace("%u", ms);
    return 0;
}

static intptr_t main_deadline_order(void *arg)
{
    (void)arg;
    static const unsigned ms[] = {50, 10, 40, 20, 60, 30};
    enum { N = sizeof ms / sizeof ms[0] };
    urt_task t[N];
    for (int i = 0; i < N; i++)
        EXPECT_EQ(urt_task_create(&t[i], sleeper_fn, (void *)(uintptr_t)ms[i]), 0);
    EXPECT_EQ(urt_gather(t, N, 0, NULL, NULL), 0);
    for (int i = 0; i < N; i++) EXPECT_EQ(urt_task_release(t[i]), 0);
    return 0;
}

/* SEMANTICS 1.5: sleepers with distinct durations wake in deadline order,
 * whatever order they were created in. */
static void test_sleepers_wake_in_deadline_order(void **state)
{
    (void)state;
    run_main(main_deadline_order, NULL);
    assert_trace("10", "20", "30", "40", "50", "60");
}

/* ---- 3.1 a cancelled sleep ends at once ---- */

struct long_sleeper {
    uint64_t ns;
    int rc;
    bool go_on; /* handle the cancellation and sleep again */
    int rc_after;
};

static intptr_t long_sleeper_fn(void *arg)
{
    struct long_sleeper *s = arg;
    s->rc = urt_sleep(s->ns);
    trace("slept %d", s->rc);
    if (!s->go_on) return s->rc;
    s->rc_after = urt_sleep_ms(1);
    trace("slept again %d", s->rc_after);
    return 42;
}

static intptr_t main_cancel_sleep(void *arg)
{
    struct long_sleeper *s = arg;
    urt_task t;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_task_create(&t, long_sleeper_fn, s), 0);
    EXPECT_EQ(urt_sleep_ms(5), 0);
    EXPECT_EQ(urt_task_done(t), 0);
    trace("cancel %d", urt_task_cancel(t));
    intptr_t v = 0;
    int rc = urt_task_await(t, &v);
    uint64_t elapsed = urt_now() - t0;
    EXPECT(elapsed >= 5 * URT_NS_PER_MS);
    EXPECT(elapsed < URT_NS_PER_S);
    EXPECT_EQ(s->rc, URT_ECANCELED);
    if (s->go_on) {
        EXPECT_EQ(rc, 0);
        EXPECT_EQ(v, 42);
        EXPECT_EQ(urt_task_cancelled(t), 0);
    } else {
        EXPECT_EQ(rc, URT_ECANCELED);
        EXPECT_EQ(urt_task_cancelled(t), 1);
    }
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

/* SEMANTICS 3.1: a task sleeping 10 s and cancelled after 5 ms gets
 * URT_ECANCELED from its sleep at once (the run takes well under 1 s). */
static void test_cancelled_sleep_returns_ecanceled_quickly(void **state)
{
    (void)state;
    struct long_sleeper s = {.ns = 10 * URT_NS_PER_S};
    run_main(main_cancel_sleep, &s);
    assert_trace("cancel 1", "slept -4001");
}

/* SEMANTICS 3.1: the cancelled task may handle it and go on; its next
 * sleep is a normal one and its value is what its awaiter gets. */
static void test_cancelled_sleeper_may_handle_it_and_go_on(void **state)
{
    (void)state;
    struct long_sleeper s = {.ns = 10 * URT_NS_PER_S, .go_on = true};
    run_main(main_cancel_sleep, &s);
    assert_trace("cancel 1", "slept -4001", "slept again 0");
    assert_int_equal(s.rc_after, 0);
}

/* Header: the helpers saturate, and a duration so long that now + d would
 * overflow must not wrap into the past and end the sleep at once. */
static void test_sleep_of_huge_duration_does_not_wrap(void **state)
{
    (void)state;
    struct long_sleeper s = {.ns = UINT64_MAX};
    run_main(main_cancel_sleep, &s);
    assert_trace("cancel 1", "slept -4001");
    s = (struct long_sleeper){.ns = UINT64_MAX - 1000};
    run_main(main_cancel_sleep, &s);
    assert_trace("cancel 1", "slept -4001");
    s = (struct long_sleeper){.ns = (uint64_t)INT64_MAX + 1};
    run_main(main_cancel_sleep, &s);
    assert_trace("cancel 1", "slept -4001");
}

/* Header / SEMANTICS 6: outside a running loop, sleep and yield are
 * URT_ENOLOOP. */
static void test_sleep_and_yield_outside_loop_are_enoloop(void **state)
{
    (void)state;
    assert_int_equal(urt_sleep(1000), URT_ENOLOOP);
    assert_int_equal(urt_sleep(0), URT_ENOLOOP);
    assert_int_equal(urt_yield(), URT_ENOLOOP);
    assert_int_equal(urt_sleep_ms(1), URT_ENOLOOP);
    /* and a loop started afterwards is not disturbed by them */
    run_main(main_yield_order, NULL);
    assert_trace("main1", "A1", "B1", "main2", "A2", "C1", "B2", "main3");
}

/* ---- many sleepers ---- */

struct many {
    size_t n;
    size_t early;   /* woke before their deadline */
    size_t failed;  /* sleep returned an error */
};

static struct many many;

static intptr_t many_fn(void *arg)
{
    (void)arg;
    uint64_t t0 = urt_now();
    int rc = urt_sleep_ms(50);
    uint64_t t1 = urt_now();
    many.failed += rc != 0;
    many.early += t1 - t0 < 50 * URT_NS_PER_MS;
    return (intptr_t)(t1 - t0);
}

static intptr_t main_many_sleepers(void *arg)
{
    (void)arg;
    size_t n = many.n;
    urt_task *t = calloc(n, sizeof *t);
    intptr_t *v = calloc(n, sizeof *v);
    EXPECT(t && v);
    if (!t || !v) goto out;
    uint64_t t0 = urt_now();
    for (size_t i = 0; i < n; i++) {
        int rc = urt_task_create(&t[i], many_fn, NULL);
        if (rc) {
            EXPECT_EQ(rc, 0);
            n = i;
            break;
        }
    }
    EXPECT_EQ(urt_gather(t, n, 0, v, NULL), 0);
    uint64_t elapsed = urt_now() - t0;
    EXPECT(elapsed >= 50 * URT_NS_PER_MS);
    EXPECT(elapsed < 2 * URT_NS_PER_S);
    size_t short_values = 0, bad_release = 0;
    for (size_t i = 0; i < n; i++) {
        short_values += v[i] < (intptr_t)(50 * URT_NS_PER_MS);
        bad_release += urt_task_release(t[i]) != 0;
    }
    EXPECT_EQ(short_values, 0);
    EXPECT_EQ(bad_release, 0);
out:
    free(t);
    free(v);
    return 0;
}

/* SEMANTICS 1.5 at scale: 10,000 tasks sleeping 50 ms at once each wake no
 * earlier than their deadline, and the lot takes < 2 s (500 under
 * URT_TEST_SMALL). */
static void test_many_sleepers_each_wake_no_earlier_than_deadline(void **state)
{
    (void)state;
    many = (struct many){.n = small_scale() ? 500 : 10000};
    many = (struct many){.n = many.n};
    run_main(main_many_sleepers, NULL);
    assert_int_equal(many.failed, 0);
    assert_int_equal(many.early, 0);
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
        cmocka_unit_test(test_sleep_never_returns_before_duration),
        cmocka_unit_test(test_now_reads_clock_monotonic),
        cmocka_unit_test(test_yield_goes_behind_every_task_ready_before_it),
        cmocka_unit_test(test_sleep_zero_is_yield),
        cmocka_unit_test(test_two_yielding_tasks_alternate_strictly),
        cmocka_unit_test(test_sleepers_wake_in_deadline_order),
        cmocka_unit_test(test_cancelled_sleep_returns_ecanceled_quickly),
        cmocka_unit_test(test_cancelled_sleeper_may_handle_it_and_go_on),
        cmocka_unit_test(test_sleep_of_huge_duration_does_not_wrap),
        cmocka_unit_test(test_sleep_and_yield_outside_loop_are_enoloop),
        cmocka_unit_test(test_many_sleepers_each_wake_no_earlier_than_deadline),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
