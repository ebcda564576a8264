/*
 * Shared by every test file: event traces compared against an expected
 * list, and a urt_run() wrapper that fails the test if the run left a file
 * descriptor or a memory mapping (a fiber stack, the ring) behind.
 */
#ifndef URT_TEST_HARNESS_H
#define URT_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <malloc.h>
#include <cmocka.h>
#include <valgrind/valgrind.h>

#include "urt.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* Checks made inside tasks: cmocka's asserts longjmp, which must not
 * cross fiber stacks, so a task records the first failed check and the
 * test asserts none after the run. */

static char task_failure[512];

static inline void expect_failed(const char *file, int line, const char *what,
                          long long got, long long want)
{
    if (!task_failure[0])
        snprintf(task_failure, sizeof task_failure,
                 "%s:%d: %s (got %lld, expected %lld)", file, line, what, got, want);
}
#define EXPECT_EQ(got, want)                                                   \
    do {                                                                       \
        long long got_ = (long long)(got), want_ = (long long)(want);          \
        if (got_ != want_)                                                     \
            expect_failed(__FILE__, __LINE__, #got " == " #want, got_, want_); \
    } while (0)
#define EXPECT(cond) EXPECT_EQ(!!(cond), 1)

static inline void assert_no_task_failure(void)
{
    if (task_failure[0]) {
        print_error("%s\n", task_failure);
        task_failure[0] = 0;
        fail();
    }
}

/* URT_TEST_SMALL (set by the valgrind tier) shrinks the scale tests. */
static inline bool small_scale(void)
{
    const char *s = getenv("URT_TEST_SMALL");
    return s && *s && strcmp(s, "0") != 0;
}

/* Tests that check the order in which sleeps end space them a few ms
 * apart, which is wide for a scheduler but not for valgrind: it runs code
 * 20-50 times slower, and starting a task there (a stack's first mapping,
 * code seen for the first time) can take longer than the gap.  Such sleeps
 * go through spaced_ms(), which widens them tenfold under valgrind. */
static inline uint64_t spaced_ms(uint64_t ms)
{
    return RUNNING_ON_VALGRIND ? ms * 10 : ms;
}

#define TRACE_MAX 256
#define TRACE_LEN 192

static char trace_buf[TRACE_MAX][TRACE_LEN];
static size_t trace_count;

static inline void trace_reset(void) { trace_count = 0; }

static inline void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void trace(const char *fmt, ...)
{
    assert_true(trace_count < TRACE_MAX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(trace_buf[trace_count++], TRACE_LEN, fmt, ap);
    va_end(ap);
}

/* Compares the trace with the expected events, printing both on mismatch so
 * a failure says what order things really happened in. */
static inline void assert_trace_list(const char *const *expected, size_t n)
{
    int same = trace_count == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(trace_buf[i], expected[i]) == 0;
    if (!same) {
        print_error("trace mismatch\n  expected:");
        for (size_t i = 0; i < n; i++) print_error(" %s", expected[i]);
        print_error("\n  got:     ");
        for (size_t i = 0; i < trace_count; i++) print_error(" %s", trace_buf[i]);
        print_error("\n");
        fail();
    }
}
#define assert_trace(...)                                                     \
    do {                                                                      \
        static const char *const expected_[] = {__VA_ARGS__};                 \
        assert_trace_list(expected_, sizeof expected_ / sizeof expected_[0]); \
    } while (0)

static inline int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static inline int count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    int n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The text of /proc/self/maps, malloc'd (free it), or NULL. */
static inline char *read_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return NULL;
    size_t len = 0, cap = 1 << 16;
    char *text = malloc(cap);
    for (size_t n; text && (n = fread(text + len, 1, cap - 1 - len, f)) > 0;) {
        len += n;
        if (cap - 1 - len == 0) {
            char *bigger = realloc(text, cap * 2);
            if (!bigger) free(text);
            text = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (text) text[len] = 0;
    return text;
}

/* When a run left mappings behind, says which: the lines of now whose
 * start address was not in before (a region that only grew is not new). */
static inline void print_new_mappings(const char *before)
{
    char *now = read_mappings();
    if (!before || !now) {
        free(now);
        return;
    }
    for (char *line = now, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end) break;
        *end = 0;
        const char *start_end = strchr(line, '-');
        size_t start = start_end ? (size_t)(start_end - line + 1) : strlen(line);
        bool old = false;
        for (const char *p = before; !old && p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            old = strncmp(p, line, start) == 0;
        if (!old) print_error("  new mapping: %s\n", line);
    }
    free(now);
}

/* glibc gives a thread that mallocs while another holds the main arena an
 * arena of its own, 64 MiB of address space mapped for good: the loop's
 * worker threads (a name lookup) would leave one behind now and then, and
 * the mapping checks would take it for urt's.  One arena for the whole
 * test process keeps the checks about urt's own stacks and rings. */
__attribute__((constructor)) static void harness_one_malloc_arena(void)
{
    mallopt(M_ARENA_MAX, 1);
}

/* ASan's, TSan's and valgrind's own allocators map memory as they go and keep it,
 * so the mapping count says something only in a plain build; there, every
 * fiber stack and ring must be gone after a run.  Under the sanitizers the
 * heap is checked by LeakSanitizer and memcheck instead. */
static inline int mappings_are_comparable(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return 0;
#endif
#endif
    return !RUNNING_ON_VALGRIND;
}

/* The mappings before a run, to show after it that the run left none. */
struct mappings_before {
    int count;
    char *text;
};

static inline struct mappings_before mappings_before_run(void)
{
    struct mappings_before m = {0};
    if (!mappings_are_comparable()) return m;
    /* Read first: a large copy would be a mapping of its own. */
    m.text = read_mappings();
    m.count = count_mappings();
    return m;
}

/* True if the run gave back every mapping (always where the count says
 * nothing); else names the ones it left.  Frees m's copy. */
static inline bool mappings_given_back(struct mappings_before *m)
{
    bool ok = true;
    if (mappings_are_comparable()) {
        int after = count_mappings();
        ok = after <= m->count;
        if (!ok) {
            print_error("mappings before %d, after %d\n", m->count, after);
            print_new_mappings(m->text);
        }
    }
    free(m->text);
    m->text = NULL;
    return ok;
}

/* urt_run() that also asserts the loop gave back every fd and mapping. */
static inline int run_checked(urt_fn fn, void *arg, intptr_t *value)
{
    int fds = count_open_fds();
    struct mappings_before maps = mappings_before_run();
    int rc = urt_run(fn, arg, value);
    assert_int_equal(count_open_fds(), fds);
    assert_true(mappings_given_back(&maps));
    return rc;
}

/* The usual test: fn runs as main of a fresh loop (trace and failure
 * record emptied first), must return 0, leave nothing behind, and have no
 * task record a failed check. */
static inline void run_main(urt_fn fn, void *arg)
{
    trace_reset();
    task_failure[0] = 0;
    intptr_t value = -1;
    assert_int_equal(run_checked(fn, arg, &value), 0);
    assert_int_equal(value, 0);
    assert_no_task_failure();
}

/* A byte pattern with no short period, one per stream (seed), so that a
 * lost, repeated, shifted or foreign chunk shows up at its first byte. */
static inline unsigned char pat(size_t i, unsigned seed)
{
    uint64_t z = ((uint64_t)i + seed * 0x100000001ull + 1) * 0x9E3779B97F4A7C15ull;
    z ^= z >> 29;
    return (unsigned char)(z >> 53);
}

/* p[0..len) = the pattern from byte from on. */
static inline void fill(unsigned char *p, size_t len, size_t from, unsigned seed)
{
    for (size_t i = 0; i < len; i++) p[i] = pat(from + i, seed);
}

/* Index of the first byte of p[0..len) that is not the pattern from byte
 * from on, or -1. */
static inline long mismatch(const unsigned char *p, size_t len, size_t from, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != pat(from + i, seed)) return (long)i;
    return -1;
}

/* ---- checks --------------------------------------------------------------- */

/* What a buffer is filled with before a call, so that a byte the call was
 * not to write (past its result, or after a cancellation) shows up. */
#define CANARY 0xA5

static inline bool all_canary(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != CANARY) return false;
    return true;
}

/* Records a failure in words when a number would not say enough; like
 * EXPECT, only the first failure is kept. */
static inline void note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void note_failure(const char *fmt, ...)
{
    if (task_failure[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(task_failure, sizeof task_failure, fmt, ap);
    va_end(ap);
}

/* ---- waiting on tasks ------------------------------------------------------ */

/* n suspension points, each of which must return 0 (no cancellation): lets
 * the other tasks run up to where they block. */
static inline void yields(int n)
{
    for (int i = 0; i < n; i++) EXPECT_EQ(urt_yield(), 0);
}

/* Awaits and releases t, but after ms fails the check and cancels it
 * (every 100 ms until it ends, since it may go on to wait again), so that
 * a lost operation, timeout or wake-up fails the test instead of hanging
 * it.  Returns what urt_task_await returned. */
static inline int await_within(urt_task t, uint64_t ms, intptr_t *value)
{
    uint64_t end = urt_now() + ms * URT_NS_PER_MS;
    while (urt_task_done(t) == 0 && urt_now() < end) urt_sleep_ms(1);
    if (urt_task_done(t) == 0) EXPECT_EQ(urt_task_done(t), 1); /* stuck */
    while (urt_task_done(t) == 0) {
        urt_task_cancel(t);
        urt_sleep_ms(100);
    }
    int rc = urt_task_await(t, value);
    urt_task_release(t);
    return rc;
}

#endif
