/*
 * million_tasks.c - a million tasks alive at once, every one asleep on the
 * smallest stack urt gives (URT_STACK_MIN), then all cancelled: what one
 * sleeping task costs, and proof that nothing of them is left afterwards.
 *
 *   million_tasks [-n TASKS]      default 1000000
 *
 * Checks, each a "FAIL: ..." line on stderr and exit status 1 when it does
 * not hold:
 *   - every task was created, ran to its sleep, and urt_tasks counted all
 *     of them (plus main) alive at the same moment;
 *   - every cancel was requested (1), every task saw URT_ECANCELED from its
 *     sleep, and gather, urt_task_cancelled and the task's own count agree
 *     that each ended cancelled;
 *   - once the handles are released urt_tasks counts main alone, that is 0
 *     tasks besides it, before main returns;
 *   - after urt_run has returned the process's RSS is back within
 *     RSS_SLACK_KIB of what it was before urt_run (see there).
 * Then prints "figure: N sleeping tasks: peak RSS X KiB per task, all
 * cancelled and freed", X being (VmHWM - the RSS before the first task was
 * created) / N, with VmHWM read after the run.
 *
 * A user program, built like the examples: the public header only.  Under
 * AddressSanitizer (a smaller -n: ASan's shadow and quarantine make RSS say
 * nothing about urt) the RSS figures are printed but not checked; LSan's
 * report at exit is the leak check there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urt.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/*
 * How far above its RSS before urt_run the process may end.  After the run
 * urt has unmapped every stack slab and freed every control block, and we
 * have freed our arrays (mmap'd by malloc, so unmapped too) and asked glibc
 * to give its free heap pages back (malloc_trim), so that memory merely
 * cached by the allocator does not count while memory still allocated
 * does.  What is left is the pages of urt's, liburing's and libc's code
 * and data touched for the first time during the run, and heap pages that
 * hold a live chunk: about 200 KiB, whatever the count.  A control block
 * is a few hundred bytes (the figure's excess over one 4 KiB stack page),
 * so leaking one per task would leave some 30 MiB behind at 100,000 tasks
 * and 300 MiB at a million; 4 MiB catches a leak of 40 bytes per task at
 * 100,000 and of 4 at a million, with room for the rest.
 */
#define RSS_SLACK_KIB (4 * 1024)

/* The sleep the tasks are cancelled out of: long enough that none ends by
 * itself, however slow the machine. */
#define SLEEP_NS (3600 * URT_NS_PER_S)

struct state {
    size_t n;
    urt_task *tasks;
    int *errors;
    size_t asleep;    /* tasks that reached their sleep */
    size_t cancelled; /* tasks whose sleep returned URT_ECANCELED */
    size_t woke;      /* tasks whose sleep returned anything else */
    long baseline_kib, alive_kib, alive_pte_kib;
    double create_s, cancel_s;
    int failed;
};

static void fail(struct state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct state *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    st->failed = 1;
}

/* A line of /proc/self/status in KiB (VmRSS, VmHWM), or -1. */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t len = strlen(field);
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static double seconds_since(uint64_t t0)
{
    return (double)(urt_now() - t0) / 1e9;
}

static intptr_t sleeper(void *arg)
{
    struct state *st = arg;
    st->asleep++;
    int rc = urt_sleep(SLEEP_NS);
    if (rc == URT_ECANCELED)
        st->cancelled++;
    else
        st->woke++;
    return rc;
}

static intptr_t main_task(void *arg)
{
    struct state *st = arg;
    st->baseline_kib = status_kib("VmRSS");

    const urt_task_opts opts = {.stack_size = URT_STACK_MIN};
    uint64_t t0 = urt_now();
    size_t created = 0;
    for (; created < st->n; created++) {
        int rc = urt_task_create_opts(&st->tasks[created], sleeper, st, &opts);
        if (rc < 0) {
            fail(st, "task %zu of %zu not created: %s", created + 1, st->n, urt_strerror(rc));
            break;
        }
    }
    /* Ready tasks run in FIFO order behind the yielder, so one yield
     * normally brings every task to its sleep; the loop is for a scheduler
     * that would let fewer run per turn. */
    while (st->asleep < created) {
        int rc = urt_yield();
        if (rc < 0) {
            fail(st, "main's yield: %s", urt_strerror(rc));
            break;
        }
    }
    st->create_s = seconds_since(t0);
    size_t alive = urt_tasks(NULL, 0);
    st->alive_kib = status_kib("VmRSS");
    st->alive_pte_kib = status_kib("VmPTE");
    if (created == st->n && alive != st->n + 1)
        fail(st, "urt_tasks counts %zu tasks alive, expected %zu and main", alive, st->n);
    if (st->woke)
        fail(st, "%zu tasks woke before being cancelled", st->woke);

    t0 = urt_now();
    for (size_t i = 0; i < created; i++) {
        int rc = urt_task_cancel(st->tasks[i]);
        if (rc != 1) {
            fail(st, "cancel of task %zu returned %d, expected 1", i, rc);
            break;
        }
    }
    int rc = urt_gather(st->tasks, created, URT_RETURN_EXCEPTIONS, NULL, st->errors);
    st->cancel_s = seconds_since(t0);
    if (rc != 0)
        fail(st, "gather of the cancelled tasks: %s", urt_strerror(rc));
    size_t not_cancelled = 0, first = 0;
    for (size_t i = 0; i < created; i++) {
        if (st->errors[i] != URT_ECANCELED || urt_task_cancelled(st->tasks[i]) != 1) {
            if (!not_cancelled++)
                first = i;
        }
    }
    if (not_cancelled)
        fail(st, "%zu tasks did not end cancelled, the first task %zu (gather: %s)", not_cancelled,
             first, urt_strerror(st->errors[first]));
    if (st->cancelled != created)
        fail(st, "%zu tasks saw URT_ECANCELED from their sleep, expected %zu", st->cancelled,
             created);

    for (size_t i = 0; i < created; i++) {
        rc = urt_task_release(st->tasks[i]);
        if (rc != 0) {
            fail(st, "release of task %zu: %s", i, urt_strerror(rc));
            break;
        }
    }
    size_t left = urt_tasks(NULL, 0);
    if (left != 1)
        fail(st, "urt_tasks counts %zu tasks after the end of the others, expected main alone",
             left);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: million_tasks [-n TASKS]   (default 1000000)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct state st = {.n = 1000000};
    int opt;
    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n')
            usage();
        char *end;
        unsigned long v = strtoul(optarg, &end, 10);
        if (!*optarg || *end || v == 0 || v > 100000000ul)
            usage();
        st.n = v;
    }
    if (optind != argc)
        usage();

    long before_kib = status_kib("VmRSS");
    st.tasks = malloc(st.n * sizeof *st.tasks);
    st.errors = malloc(st.n * sizeof *st.errors);
    if (!st.tasks || !st.errors) {
        fprintf(stderr, "million_tasks: no memory for %zu handles\n", st.n);
        return 1;
    }
    /* Touched now, so that the baseline taken in main counts our arrays
     * and the per-task figure is what urt spends.  Not with zeros: the
     * compiler would make malloc and memset one calloc, which touches
     * nothing. */
    memset(st.tasks, 0xff, st.n * sizeof *st.tasks);
    memset(st.errors, 0xff, st.n * sizeof *st.errors);

    int rc = urt_run(main_task, &st, NULL);
    if (rc != 0)
        fail(&st, "urt_run: %s", urt_strerror(rc));
    free(st.tasks);
    free(st.errors);
    malloc_trim(0);
    long after_kib = status_kib("VmRSS");
    long hwm_kib = status_kib("VmHWM");

    double per_task = (double)(hwm_kib - st.baseline_kib) / (double)st.n;
    printf("tasks: %zu, created and asleep in %.2f s, cancelled and gathered in %.2f s\n", st.n,
           st.create_s, st.cancel_s);
    printf("RSS: %ld KiB before urt_run, %ld KiB in main before the first task, %ld KiB with all "
           "asleep, peak %ld KiB, %ld KiB after urt_run\n",
           before_kib, st.baseline_kib, st.alive_kib, hwm_kib, after_kib);
    /* Not in RSS, but memory all the same: the page tables of the stacks'
     * touched pages and of their guard markers. */
    printf("page tables with all asleep: %ld KiB, %.0f bytes per task\n", st.alive_pte_kib,
           (double)st.alive_pte_kib * 1024 / (double)st.n);
    if (!UNDER_ASAN && after_kib - before_kib > RSS_SLACK_KIB)
        fail(&st, "RSS after urt_run is %ld KiB above what it was before (at most %d allowed)",
             after_kib - before_kib, RSS_SLACK_KIB);
    if (st.failed)
        return 1;
    if (UNDER_ASAN)
        printf("asan: %zu sleeping tasks, all cancelled and freed (RSS not checked: it counts "
               "ASan's shadow; LSan checks for leaks at exit)\n",
               st.n);
    else
        printf("figure: %zu sleeping tasks: peak RSS %.2f KiB per task, all cancelled and freed\n",
               st.n, per_task);
    return 0;
}
