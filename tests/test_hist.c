/*
 * test_hist.c - the benchmark suite's latency histogram (bench/hist.h).
 * Every latency make bench reports comes through it, so its arithmetic is
 * tested like the runtime's: exact buckets for small values, every value
 * within its bucket's bounds, the 0.8% precision the header promises, and
 * percentiles that never understate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../bench/hist.h"

static struct hist h;

/* Values below 2^HIST_SUB_BITS have a bucket each. */
static void test_small_values_are_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < HIST_SUB; v++) {
        assert_int_equal(hist_index(v), v);
        assert_int_equal(hist_upper(hist_index(v)), v);
    }
}

/* Buckets tile the line: each value is at most its bucket's upper edge and
 * above the previous bucket's, and no bucket is wider than 1/128 of its
 * values (the header's 0.8%). */
static void test_buckets_tile_values_within_their_precision(void **state)
{
    (void)state;
    const uint64_t probes[] = {128, 129, 255, 256, 1000, 4095, 4096, 65537, 1000000,
                               123456789, 1ull << 40, (1ull << 40) + 12345, UINT64_MAX / 3,
                               UINT64_MAX};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        uint64_t v = probes[i];
        unsigned b = hist_index(v);
        assert_true(b < HIST_BUCKETS);
        assert_true(v <= hist_upper(b));
        assert_true(hist_upper(b - 1) < v);
        uint64_t width = hist_upper(b) - hist_upper(b - 1);
        assert_true(width <= hist_upper(b) / HIST_SUB + 1);
    }
    for (uint64_t v = 1; v < 3000000; v += 7) {
        unsigned b = hist_index(v);
        assert_true(v <= hist_upper(b) && hist_upper(b - 1) < v);
    }
}

/* 1..10,000 once each: the median is 5,000 and p99 9,900, each reported as
 * its bucket's upper edge, so at or above the true value and within 0.8%;
 * p100 is the maximum itself. */
static void test_percentiles_are_upper_edges_within_precision(void **state)
{
    (void)state;
    hist_init(&h);
    for (uint64_t v = 1; v <= 10000; v++) hist_record(&h, v);
    assert_int_equal(h.count, 10000);
    const struct { double p; uint64_t exact; } cases[] = {{50, 5000}, {99, 9900}, {99.9, 9990}};
    for (size_t i = 0; i < 3; i++) {
        uint64_t got = hist_percentile(&h, cases[i].p);
        assert_true(got >= cases[i].exact);
        assert_true(got <= cases[i].exact + cases[i].exact / HIST_SUB);
    }
    assert_int_equal(hist_percentile(&h, 100), 10000);
}

/* An empty histogram reports 0; one value is every percentile; merging two
 * is recording both. */
static void test_empty_single_and_merged(void **state)
{
    (void)state;
    hist_init(&h);
    assert_int_equal(hist_percentile(&h, 50), 0);
    hist_record(&h, 777);
    assert_int_equal(hist_percentile(&h, 1), 777);
    assert_int_equal(hist_percentile(&h, 99.9), 777);
    static struct hist other;
    hist_init(&other);
    for (int i = 0; i < 99; i++) hist_record(&other, 10);
    hist_merge(&h, &other);
    assert_int_equal(h.count, 100);
    assert_int_equal(h.max, 777);
    assert_int_equal(hist_percentile(&h, 99), 10);
    assert_int_equal(hist_percentile(&h, 100), 777);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_buckets_tile_values_within_their_precision),
        cmocka_unit_test(test_percentiles_are_upper_edges_within_precision),
        cmocka_unit_test(test_empty_single_and_merged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
