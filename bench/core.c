/*
 * core.c - the simple benchmark of urt's core: what a task, a switch and a
 * sleeping task cost.  bench/core_asyncio.py measures the same things with
 * Python's asyncio; bench/run.sh runs both and prints them side by side.
 *
 *   spawn+await       create N trivial tasks, then await each one in turn
 *   spawn+gather      create N trivial tasks, then one urt_gather() of all
 *   yield switch      two tasks urt_yield() to each other M times each;
 *                     time per task-to-task switch through the scheduler
 *   sleep 1s: ...     S tasks each sleep 1 s at once, gathered: wall time,
 *                     overshoot past 1 s, worst task's lateness, and peak RSS
 *                     growth (getrusage ru_maxrss) per task
 *
 * The sleep bench runs first: ru_maxrss is a high-water mark, and the spawn
 * benches, run before it, would raise it.  spawn and yield report the best of
 * REPS runs, all inside one loop so that its caches are warm, as they are in
 * a program that has been running for a while.
 *
 * QUICK=1 in the environment shrinks every count (and the sleep to 100 ms)
 * for a smoke test.  The output is a Markdown table; bench/run.sh relies on
 * the metric names in its first column being the same as the Python twin's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "urt.h"

#define REPS 3

static size_t n_spawn = 100000;    /* tasks per spawn bench */
static size_t m_yield = 1000000;   /* yields per task in the switch bench */
static size_t n_sleep = 100000;    /* tasks in the sleep bench */
static uint64_t sleep_ns = URT_NS_PER_S;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * URT_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int failures;

static void row(const char *metric, double value, const char *unit, const char *note)
{
    printf("| %s | %.1f | %s | %s |\n", metric, value, unit, note);
}

static void row_error(const char *metric, int err)
{
    printf("| %s | error | %s | |\n", metric, urt_strerror(err));
    failures++;
}

static intptr_t trivial(void *arg)
{
    return (intptr_t)arg;
}

/* ---- spawn ---------------------------------------------------------- */

enum spawn_mode { AWAIT_EACH, GATHER_ALL, ONE_AT_A_TIME };

struct spawn {
    enum spawn_mode mode;
    double best_ns;  /* per task, best of REPS */
};

/* One task alive at a time: what a spawn and an await cost by themselves,
 * with the stack and control block coming back warm from the pool. */
static int spawn_one_at_a_time(uint64_t *elapsed)
{
    uint64_t t0 = now_ns();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_spawn; i++) {
        urt_task t;
        intptr_t v;
        rc = urt_task_create(&t, trivial, (void *)(intptr_t)i);
        if (rc < 0)
            break;
        rc = urt_task_await(t, &v);
        if (rc == 0 && v != (intptr_t)i)
            rc = -EPROTO;
        urt_task_release(t);
    }
    *elapsed = now_ns() - t0;
    return rc;
}

static int spawn_once(urt_task *tasks, intptr_t *values, enum spawn_mode mode, uint64_t *elapsed)
{
    if (mode == ONE_AT_A_TIME)
        return spawn_one_at_a_time(elapsed);
    int gather = mode == GATHER_ALL;
    uint64_t t0 = now_ns();
    size_t created = 0;
    int rc = 0;
    for (; created < n_spawn; created++) {
        rc = urt_task_create(&tasks[created], trivial, (void *)(intptr_t)created);
        if (rc < 0)
            break;
    }
    if (rc == 0 && gather) {
        rc = urt_gather(tasks, n_spawn, 0, values, NULL);
        for (size_t i = 0; rc == 0 && i < n_spawn; i++)
            if (values[i] != (intptr_t)i)
                rc = -EPROTO;
    } else if (rc == 0) {
        for (size_t i = 0; i < n_spawn; i++) {
            intptr_t v;
            rc = urt_task_await(tasks[i], &v);
            if (rc == 0 && v != (intptr_t)i)
                rc = -EPROTO;
            if (rc < 0)
                break;
        }
    }
    for (size_t i = 0; i < created; i++)
        urt_task_release(tasks[i]);
    *elapsed = now_ns() - t0;
    return rc;
}

static intptr_t spawn_main(void *arg)
{
    struct spawn *s = arg;
    urt_task *tasks = malloc(n_spawn * sizeof *tasks);
    intptr_t *values = malloc(n_spawn * sizeof *values);
    int rc = tasks && values ? 0 : -ENOMEM;
    s->best_ns = 0;
    for (int r = 0; rc == 0 && r < REPS; r++) {
        uint64_t elapsed;
        rc = spawn_once(tasks, values, s->mode, &elapsed);
        double per = (double)elapsed / (double)n_spawn;
        if (r == 0 || per < s->best_ns)
            s->best_ns = per;
    }
    free(tasks);
    free(values);
    return rc;
}

/* ---- yield ---------------------------------------------------------- */

static intptr_t yielder(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < m_yield; i++) {
        int rc = urt_yield();
        if (rc < 0)
            return rc;
    }
    return 0;
}

static intptr_t yield_main(void *arg)
{
    double *best_ns = arg;
    for (int r = 0; r < REPS; r++) {
        urt_task t[2];
        int rc = urt_task_create(&t[0], yielder, NULL);
        if (rc < 0)
            return rc;
        rc = urt_task_create(&t[1], yielder, NULL);
        if (rc < 0)
            return rc;
        uint64_t t0 = now_ns();
        rc = urt_gather(t, 2, 0, NULL, NULL);
        uint64_t elapsed = now_ns() - t0;
        urt_task_release(t[0]);
        urt_task_release(t[1]);
        if (rc < 0)
            return rc;
        /* Each yield hands the CPU from one task to the other. */
        double per = (double)elapsed / (2.0 * (double)m_yield);
        if (r == 0 || per < *best_ns)
            *best_ns = per;
    }
    return 0;
}

/* ---- sleep ---------------------------------------------------------- */

struct sleep_result {
    uint64_t create_ns, wall_ns, worst_late_ns;
    long rss_before_kib, rss_after_kib;
};

static struct sleep_result sr;

static intptr_t sleeper(void *arg)
{
    (void)arg;
    uint64_t t0 = now_ns();
    int rc = urt_sleep(sleep_ns);
    if (rc < 0)
        return rc;
    uint64_t late = now_ns() - t0 - sleep_ns;
    if (late > sr.worst_late_ns)
        sr.worst_late_ns = late;
    return 0;
}

static intptr_t sleep_main(void *arg)
{
    (void)arg;
    urt_task *tasks = malloc(n_sleep * sizeof *tasks);
    if (!tasks)
        return -ENOMEM;
    sr.rss_before_kib = maxrss_kib();
    uint64_t t0 = now_ns();
    size_t created = 0;
    int rc = 0;
    for (; created < n_sleep; created++) {
        rc = urt_task_create(&tasks[created], sleeper, NULL);
        if (rc < 0)
            break;
    }
    sr.create_ns = now_ns() - t0;
    if (rc == 0)
        rc = urt_gather(tasks, n_sleep, 0, NULL, NULL);
    sr.wall_ns = now_ns() - t0;
    sr.rss_after_kib = maxrss_kib();
    for (size_t i = 0; i < created; i++)
        urt_task_release(tasks[i]);
    free(tasks);
    return rc;
}

int main(void)
{
    const char *quick = getenv("QUICK");
    if (quick && *quick && strcmp(quick, "0") != 0) {
        n_spawn = 2000;
        m_yield = 20000;
        n_sleep = 1000;
        sleep_ns = 100 * URT_NS_PER_MS;
    }

    printf("urt core bench: spawn N=%zu, yield M=%zu per task, sleep S=%zu x %.1f s, best of %d\n\n",
           n_spawn, m_yield, n_sleep, (double)sleep_ns / 1e9, REPS);
    puts("| metric | value | unit | note |");
    puts("|---|---:|---|---|");
    fflush(stdout);

    char note[64];
    snprintf(note, sizeof note, "S=%zu, %.1f s", n_sleep, (double)sleep_ns / 1e9);
    int rc = urt_run(sleep_main, NULL, NULL);
    if (rc < 0) {
        row_error("sleep: wall", rc);
    } else {
        double over_ms = ((double)sr.wall_ns - (double)sleep_ns) / 1e6;
        double rss = (double)(sr.rss_after_kib - sr.rss_before_kib) * 1024.0 / (double)n_sleep;
        row("sleep: create", (double)sr.create_ns / (double)n_sleep, "ns/task", note);
        row("sleep: wall", (double)sr.wall_ns / 1e6, "ms", note);
        row("sleep: overshoot", over_ms, "ms", "wall - sleep");
        row("sleep: worst lateness", (double)sr.worst_late_ns / 1e6, "ms", "one task, woke - deadline");
        row("sleep: peak RSS", rss, "bytes/task", "ru_maxrss delta / S");
    }
    fflush(stdout);

    static const struct {
        enum spawn_mode mode;
        const char *metric, *note;
    } spawns[] = {
        {ONE_AT_A_TIME, "spawn+await, one at a time", "N=%zu, 1 alive"},
        {AWAIT_EACH, "spawn+await", "N=%zu alive, then awaited"},
        {GATHER_ALL, "spawn+gather", "N=%zu alive, one gather"},
    };
    for (size_t i = 0; i < sizeof spawns / sizeof spawns[0]; i++) {
        struct spawn sp = {.mode = spawns[i].mode};
        snprintf(note, sizeof note, spawns[i].note, n_spawn);
        rc = urt_run(spawn_main, &sp, NULL);
        if (rc < 0)
            row_error(spawns[i].metric, rc);
        else
            row(spawns[i].metric, sp.best_ns, "ns/task", note);
        fflush(stdout);
    }

    double switch_ns = 0;
    snprintf(note, sizeof note, "2 tasks x M=%zu", m_yield);
    rc = urt_run(yield_main, &switch_ns, NULL);
    if (rc < 0)
        row_error("yield switch", rc);
    else
        row("yield switch", switch_ns, "ns/switch", note);

    return failures ? 1 : 0;
}
