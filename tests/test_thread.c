/*
 * Work on threads (urt.h "Threads"; SEMANTICS 3 and 4): urt_to_thread,
 * urt_to_thread_discard, urt_thread_pool_limit, urt_getaddrinfo and
 * urt_tcp_connect with a host name.
 *
 *   - a blocking call runs on a worker thread while other tasks run, and
 *     its value or error reaches the caller;
 *   - many calls from many tasks at once all complete, with the pool never
 *     above its limit; lowering the limit retires threads, raising it adds
 *     them; each loop starts with the default;
 *   - a cancelled caller returns at once while its job runs on, and the
 *     job's result is discarded safely (with the discard callback freeing
 *     it); a job not started when its caller is cancelled never runs; a
 *     value handed over in the same instant as a cancellation wins;
 *   - the loop's end waits for a running job and leaves no thread behind;
 *   - workers block every signal;
 *   - names resolve through /etc/hosts only ("localhost"), and a .invalid
 *     name fails (RFC 6761: never resolves; it fails fast here, from the
 *     resolver's own rules, without a DNS query that could hang);
 *   - every documented error code.
 *
 * The same binary runs under ThreadSanitizer (make test-tsan): the waits
 * below use atomics and the API's own ordering, never plain shared
 * variables, so a race report is the library's.  Checks inside tasks use
 * EXPECT (cmocka's asserts must not longjmp across fibers).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h" /* a task's state, the loop's features */

#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

/* ---- helpers ---------------------------------------------------------- */

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static pid_t thread_id(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static uint64_t ms_since(uint64_t t0)
{
    return (urt_now() - t0) / URT_NS_PER_MS;
}

/* Blocks the calling thread (a worker) for ms. */
static void block_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* On a worker: waits, blocking, until *flag is set or ms pass. */
static bool block_until(atomic_int *flag, unsigned ms)
{
    for (unsigned i = 0; i < ms && !atomic_load(flag); i++) block_ms(1);
    return atomic_load(flag) != 0;
}

/* In a task: sleeps 1 ms at a time until *v >= want or ms pass. */
static bool sleep_until(atomic_int *v, int want, uint64_t ms)
{
    uint64_t t0 = urt_now();
    while (atomic_load(v) < want && ms_since(t0) < ms) urt_sleep_ms(1);
    return atomic_load(v) >= want;
}

/* In a task, without suspending: spins until *v >= want or ms pass.  The
 * thread yields the CPU (not the task its loop): valgrind runs one thread
 * at a time, and hands over mostly where a thread blocks or yields. */
static bool spin_until(atomic_int *v, int want, uint64_t ms)
{
    uint64_t t0 = urt_now();
    while (atomic_load(v) < want && ms_since(t0) < ms) sched_yield();
    return atomic_load(v) >= want;
}

/* The state of a task of the running loop (internal.h), to see when the
 * loop has woken it without running it yet. */
static int task_state(urt_task t)
{
    struct urt__task *p = urt__task_lookup(urt__loop, t);
    return p ? p->state : -1;
}

/* ---- a blocking call runs while other tasks make progress ------------ */

struct ticker {
    atomic_int stop;
    int ticks;
    uint64_t at[256];
};

static intptr_t ticker_fn(void *arg)
{
    struct ticker *k = arg;
    while (!atomic_load(&k->stop) && k->ticks < 256) {
        if (urt_sleep_ms(5) != 0) break;
        k->at[k->ticks++] = urt_now();
    }
    return 0;
}

static atomic_int sleeper_tid;

static intptr_t sleep_50ms(void *arg)
{
    atomic_store(&sleeper_tid, thread_id());
    block_ms(50);
    return (intptr_t)arg;
}

static intptr_t main_blocking_call(void *arg)
{
    (void)arg;
    struct ticker k = {.ticks = 0};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, ticker_fn, &k), 0);
    EXPECT_EQ(urt_yield(), 0); /* the ticker is asleep */
    uint64_t t0 = urt_now();
    intptr_t v = 0;
    EXPECT_EQ(urt_to_thread(sleep_50ms, (void *)7, &v), 0);
    uint64_t t1 = urt_now();
    EXPECT_EQ(v, 7);
    EXPECT((t1 - t0) >= 50 * URT_NS_PER_MS);
    EXPECT((t1 - t0) < 5 * URT_NS_PER_S);
    int during = 0;
    for (int i = 0; i < k.ticks; i++) during += k.at[i] > t0 && k.at[i] < t1;
    EXPECT(during >= 2); /* ~10 at 5 ms each; 2 proves the loop ran */
    EXPECT(atomic_load(&sleeper_tid) != thread_id());
    atomic_store(&k.stop, 1);
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    urt_task_release(t);
    return 0;
}

/* A 50 ms blocking call suspends only its caller: the ticker ticks while
 * it runs, on another thread, and the call returns after >= 50 ms. */
static void test_blocking_call_runs_while_other_tasks_progress(void **state)
{
    (void)state;
    run_main(main_blocking_call, NULL);
}

/* ---- values and errors ------------------------------------------------- */

static intptr_t return_arg(void *arg)
{
    return (intptr_t)arg;
}

static char some_object[8];

static intptr_t main_values(void *arg)
{
    (void)arg;
    intptr_t v = 0;
    EXPECT_EQ(urt_to_thread(return_arg, (void *)42, &v), 0);
    EXPECT_EQ(v, 42);
    EXPECT_EQ(urt_to_thread(return_arg, some_object, &v), 0);
    EXPECT_EQ(v, (intptr_t)some_object);
    EXPECT_EQ(urt_to_thread(return_arg, (void *)0, &v), 0);
    EXPECT_EQ(v, 0);
    v = 99;
    EXPECT_EQ(urt_to_thread(return_arg, (void *)(intptr_t)-EIO, &v), -EIO);
    EXPECT_EQ(v, 99); /* untouched on error */
    EXPECT_EQ(urt_to_thread(return_arg, (void *)(intptr_t)-4095, &v), -4095);
    EXPECT_EQ(urt_to_thread(return_arg, (void *)5, NULL), 0);
    /* The discard form hands fn's outcome over the same way. */
    EXPECT_EQ(urt_to_thread_discard(return_arg, (void *)43, NULL, &v), 0);
    EXPECT_EQ(v, 43);
    EXPECT_EQ(urt_to_thread_discard(return_arg, (void *)(intptr_t)-EPIPE, NULL, &v), -EPIPE);
    return 0;
}

/* fn's value (any non-error, pointers too) and its error reach the caller
 * by the task convention. */
static void test_value_and_error_reach_caller(void **state)
{
    (void)state;
    run_main(main_values, NULL);
}

/* ---- many calls, bounded pool ----------------------------------------- */

#define MANY_LIMIT 4

struct many {
    atomic_int running, max_running;
    atomic_int tids[64];
    atomic_int ntids;
    int calls_per_task;
    int wrong;
};

struct many_call {
    struct many *m;
    int x;
};

static void note_tid(struct many *m)
{
    int me = thread_id();
    int n = atomic_load(&m->ntids);
    for (int i = 0; i < n && i < 64; i++)
        if (atomic_load(&m->tids[i]) == me) return;
    int i = atomic_fetch_add(&m->ntids, 1);
    if (i < 64) atomic_store(&m->tids[i], me);
}

static intptr_t many_fn(void *arg)
{
    struct many_call *c = arg;
    struct many *m = c->m;
    int now = atomic_fetch_add(&m->running, 1) + 1;
    for (int seen = atomic_load(&m->max_running); now > seen;)
        if (atomic_compare_exchange_weak(&m->max_running, &seen, now)) break;
    note_tid(m);
    struct timespec ts = {0, 50 * 1000}; /* long enough to overlap */
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&m->running, 1);
    return (intptr_t)c->x * 3 + 1;
}

static intptr_t many_task(void *arg)
{
    struct many *m = arg;
    for (int i = 0; i < m->calls_per_task; i++) {
        struct many_call c = {m, i * 7 + (int)(intptr_t)urt_task_current().id % 13};
        intptr_t v = -1;
        int rc = urt_to_thread(many_fn, &c, &v);
        if (rc != 0 || v != (intptr_t)c.x * 3 + 1) m->wrong++;
    }
    return 0;
}

static intptr_t main_many(void *arg)
{
    (void)arg;
    int base = count_threads();
    int tasks = 100;
    struct many m = {.calls_per_task = (small_scale() ? 1000 : 10000) / tasks};
    EXPECT(urt_thread_pool_limit(MANY_LIMIT) > 0);
    urt_task t[100];
    for (int i = 0; i < tasks; i++) EXPECT_EQ(urt_task_create(&t[i], many_task, &m), 0);
    int most = 0;
    for (int done = 0; !done;) {
        int n = count_threads() - base;
        if (n > most) most = n;
        done = 1;
        for (int i = 0; i < tasks; i++) done &= urt_task_done(t[i]) == 1;
        if (!done) urt_sleep_ms(2);
    }
    EXPECT_EQ(urt_gather(t, (size_t)tasks, 0, NULL, NULL), 0);
    for (int i = 0; i < tasks; i++) urt_task_release(t[i]);
    EXPECT_EQ(m.wrong, 0);
    EXPECT(atomic_load(&m.max_running) <= MANY_LIMIT);
    EXPECT(atomic_load(&m.max_running) >= 2); /* the jobs did overlap */
    EXPECT(atomic_load(&m.ntids) <= MANY_LIMIT);
    EXPECT(most <= MANY_LIMIT);
    return 0;
}

/* 10,000 calls (1,000 under valgrind) from 100 tasks at once: every result
 * right, never more than the limit running at once, on more threads, or
 * alive in the process. */
static void test_many_calls_complete_within_pool_limit(void **state)
{
    (void)state;
    run_main(main_many, NULL);
}

/* ---- urt_thread_pool_limit ---------------------------------------------- */

struct gate {
    atomic_int running, max_running, started, open, finished;
};

static intptr_t gate_fn(void *arg)
{
    struct gate *g = arg;
    int now = atomic_fetch_add(&g->running, 1) + 1;
    for (int seen = atomic_load(&g->max_running); now > seen;)
        if (atomic_compare_exchange_weak(&g->max_running, &seen, now)) break;
    atomic_fetch_add(&g->started, 1);
    block_until(&g->open, 5000);
    atomic_fetch_sub(&g->running, 1);
    atomic_fetch_add(&g->finished, 1);
    return 0;
}

static intptr_t gate_task(void *arg)
{
    return urt_to_thread(gate_fn, arg, NULL);
}

static void spawn_n(urt_task *t, int n, urt_fn fn, void *arg)
{
    for (int i = 0; i < n; i++) EXPECT_EQ(urt_task_create(&t[i], fn, arg), 0);
}

static void await_all(urt_task *t, int n)
{
    for (int i = 0; i < n; i++) EXPECT_EQ(await_within(t[i], 10000, NULL), 0);
}

static unsigned expected_default(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus + 4 < 32 ? (unsigned)cpus + 4 : 32;
}

static intptr_t main_limit(void *arg)
{
    int pass = (int)(intptr_t)arg;
    int base = count_threads();
    /* A loop starts with asyncio's default, also after one that set it. */
    EXPECT_EQ(urt_thread_pool_limit(0), expected_default());
    if (pass == 1) return 0;
    EXPECT_EQ(urt_thread_pool_limit(2), expected_default());
    EXPECT_EQ(urt_thread_pool_limit(0), 2);
    EXPECT_EQ(urt_thread_pool_limit(URT_THREAD_POOL_MAX + 1), -EINVAL);
    EXPECT_EQ(urt_thread_pool_limit(0), 2);

    /* Six jobs that each wait until released: two run, four queue. */
    struct gate g = {0};
    urt_task t[6];
    spawn_n(t, 6, gate_task, &g);
    EXPECT(sleep_until(&g.started, 2, 5000));
    urt_sleep_ms(spaced_ms(20));
    EXPECT_EQ(atomic_load(&g.started), 2);
    EXPECT_EQ(count_threads() - base, 2);
    /* Raising the limit starts threads for the queued jobs at once. */
    EXPECT_EQ(urt_thread_pool_limit(4), 2);
    EXPECT(sleep_until(&g.started, 4, 5000));
    urt_sleep_ms(spaced_ms(20));
    EXPECT_EQ(atomic_load(&g.started), 4);
    EXPECT_EQ(count_threads() - base, 4);
    /* Lowering it: the busy threads finish their jobs, then all but one
     * leave, and the two queued jobs run one at a time. */
    EXPECT_EQ(urt_thread_pool_limit(1), 4);
    atomic_store(&g.max_running, 0);
    atomic_store(&g.open, 1);
    await_all(t, 6);
    EXPECT_EQ(atomic_load(&g.finished), 6);
    EXPECT(atomic_load(&g.max_running) <= 4);
    atomic_store(&g.max_running, 0);
    /* After their jobs, three of the four threads leave. */
    uint64_t t0 = urt_now();
    while (count_threads() - base > 1 && ms_since(t0) < 5000) urt_sleep_ms(1);
    EXPECT_EQ(count_threads() - base, 1);

    /* From now on one at a time. */
    struct gate h = {.open = 1};
    spawn_n(t, 6, gate_task, &h);
    await_all(t, 6);
    EXPECT_EQ(atomic_load(&h.max_running), 1);
    EXPECT_EQ(atomic_load(&h.finished), 6);
    return 0;
}

/* The limit: the default is min(32, CPUs + 4); 0 reads it; a value above
 * URT_THREAD_POOL_MAX is -EINVAL; raising starts threads for queued jobs,
 * lowering retires threads once their jobs are done; a new loop has the
 * default again. */
static void test_thread_pool_limit_bounds_raises_and_lowers(void **state)
{
    (void)state;
    run_main(main_limit, (void *)0);
    run_main(main_limit, (void *)1);
}

/* ---- cancellation ------------------------------------------------------ */

struct job {
    atomic_int started, release, finished;
    bool alloc; /* held_fn returns a heap object, else 5 */
};

static atomic_int discards;
static atomic_long discarded_result;

/* Waits until released; returns a heap object if asked to. */
static intptr_t held_fn(void *arg)
{
    struct job *j = arg;
    atomic_store(&j->started, 1);
    block_until(&j->release, 10000);
    intptr_t result = 5;
    if (j->alloc) {
        char *p = malloc(64);
        if (p) strcpy(p, "result of an abandoned job");
        result = (intptr_t)p;
    }
    atomic_store(&j->finished, 1);
    return result;
}

/* Frees what an abandoned held_fn returned, and the job.  The job is not
 * freed here: the test still reads its flags. */
static void held_discard(intptr_t result, void *arg)
{
    (void)arg;
    atomic_store(&discarded_result, (long)result);
    if (!URT_IS_ERROR(result)) free((void *)result);
    atomic_fetch_add(&discards, 1);
}

struct caller {
    struct job *job;
    bool discard;
    int rc;
    uint64_t returned_at;
};

static intptr_t held_caller(void *arg)
{
    struct caller *c = arg;
    intptr_t v = 0;
    c->rc = c->discard ? urt_to_thread_discard(held_fn, c->job, held_discard, &v)
                       : urt_to_thread(held_fn, c->job, &v);
    c->returned_at = urt_now();
    if (c->rc == 0 && c->job->alloc) free((void *)v);
    return c->rc;
}

static intptr_t main_cancel_running(void *arg)
{
    bool with_discard = arg != NULL;
    atomic_store(&discards, 0);
    struct job *j = calloc(1, sizeof *j);
    /* Without discard an abandoned result is dropped: nothing to free. */
    j->alloc = with_discard;
    struct caller c = {.job = j, .discard = with_discard};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, held_caller, &c), 0);
    EXPECT(sleep_until(&j->started, 1, 5000));
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_task_cancel(t), 1);
    EXPECT_EQ(urt_task_await(t, NULL), URT_ECANCELED);
    EXPECT_EQ(c.rc, URT_ECANCELED);
    /* At once: the job is still running, held by us. */
    EXPECT(c.returned_at - t0 < 2 * URT_NS_PER_S);
    EXPECT_EQ(atomic_load(&j->finished), 0);
    EXPECT_EQ(atomic_load(&discards), 0);
    urt_task_release(t);
    /* Let it finish: its result goes to discard, or nowhere. */
    atomic_store(&j->release, 1);
    EXPECT(sleep_until(&j->finished, 1, 5000));
    if (with_discard) {
        EXPECT(sleep_until(&discards, 1, 5000));
        long result = atomic_load(&discarded_result);
        EXPECT(!URT_IS_ERROR(result));
    }
    urt_sleep_ms(spaced_ms(10));
    EXPECT_EQ(atomic_load(&discards), with_discard ? 1 : 0);
    free(j);
    return 0;
}

/* Cancelling a task that waits on a running job returns URT_ECANCELED at
 * once while the job runs on; when the job ends its result goes to the
 * discard callback, exactly once (freed there: ASan and valgrind see a leak
 * or a double free), or is dropped without touching the caller's frame. */
static void test_cancel_of_waiting_task_returns_at_once_and_job_runs_on(void **state)
{
    (void)state;
    run_main(main_cancel_running, (void *)1);
    run_main(main_cancel_running, NULL);
}

static atomic_int queued_ran;

static intptr_t queued_fn(void *arg)
{
    (void)arg;
    atomic_store(&queued_ran, 1);
    return 0;
}

static intptr_t queued_caller(void *arg)
{
    return urt_to_thread_discard(queued_fn, arg, held_discard, NULL);
}

static intptr_t main_cancel_queued(void *arg)
{
    (void)arg;
    atomic_store(&queued_ran, 0);
    atomic_store(&discards, 0);
    EXPECT(urt_thread_pool_limit(1) > 0);
    struct job *j = calloc(1, sizeof *j);
    struct caller c = {.job = j, .discard = false};
    urt_task busy, queued;
    EXPECT_EQ(urt_task_create(&busy, held_caller, &c), 0);
    EXPECT(sleep_until(&j->started, 1, 5000));
    EXPECT_EQ(urt_task_create(&queued, queued_caller, (void *)0x1234), 0);
    yields(3); /* it waits behind the busy job */
    EXPECT_EQ(task_state(queued), URT__WAITING);
    EXPECT_EQ(urt_task_cancel(queued), 1);
    EXPECT_EQ(urt_task_await(queued, NULL), URT_ECANCELED);
    /* Never ran: discard had it back at once, with the wait's code. */
    EXPECT_EQ(atomic_load(&discards), 1);
    EXPECT_EQ(atomic_load(&discarded_result), URT_ECANCELED);
    atomic_store(&j->release, 1);
    EXPECT_EQ(await_within(busy, 5000, NULL), 0);
    urt_task_release(queued);
    /* The thread is free; had the job stayed queued it would run now. */
    EXPECT_EQ(urt_to_thread(return_arg, (void *)1, NULL), 0);
    urt_sleep_ms(spaced_ms(10));
    EXPECT_EQ(atomic_load(&queued_ran), 0);
    free(j);
    return 0;
}

/* A job whose caller is cancelled before a thread took it is removed from
 * the queue and never runs. */
static void test_queued_job_of_cancelled_task_never_runs(void **state)
{
    (void)state;
    run_main(main_cancel_queued, NULL);
}

struct race {
    struct job job;
    urt_task waiter;
    atomic_int fn_done;
};

static intptr_t quick_fn(void *arg)
{
    struct race *r = arg;
    block_until(&r->job.release, 10000);
    atomic_store(&r->fn_done, 1);
    return 77;
}

static intptr_t race_waiter(void *arg)
{
    struct race *r = arg;
    intptr_t v = 0;
    int rc = urt_to_thread(quick_fn, r, &v);
    trace("waiter rc=%d v=%ld", rc, (long)v);
    trace("next yield=%d", urt_yield());
    return 0;
}

static intptr_t main_value_wins(void *arg)
{
    (void)arg;
    struct race r = {0};
    EXPECT_EQ(urt_task_create(&r.waiter, race_waiter, &r), 0);
    yields(1);
    atomic_store(&r.job.release, 1);
    /* Yield until the loop has handed the value over (the waiter is ready,
     * not yet run), then cancel: the value wins. */
    uint64_t t0 = urt_now();
    while (task_state(r.waiter) == URT__WAITING && ms_since(t0) < 5000) urt_yield();
    EXPECT_EQ(task_state(r.waiter), URT__READY);
    EXPECT_EQ(urt_task_cancel(r.waiter), 1);
    EXPECT_EQ(await_within(r.waiter, 5000, NULL), 0);
    return 0;
}

/* A result handed to the task in the same instant as a cancellation wins:
 * the call returns it, and the cancellation comes at the next suspension
 * point. */
static void test_value_handed_over_wins_over_cancellation_in_same_instant(void **state)
{
    (void)state;
    run_main(main_value_wins, NULL);
    assert_trace("waiter rc=0 v=77", "next yield=-4001");
}

/* For results that are no pointer. */
static void count_discard(intptr_t result, void *arg)
{
    (void)arg;
    atomic_store(&discarded_result, (long)result);
    atomic_fetch_add(&discards, 1);
}

static intptr_t race_discard_waiter(void *arg)
{
    struct race *r = arg;
    return urt_to_thread_discard(quick_fn, r, count_discard, NULL);
}

static intptr_t main_cancel_then_done(void *arg)
{
    (void)arg;
    atomic_store(&discards, 0);
    struct race r = {0};
    EXPECT_EQ(urt_task_create(&r.waiter, race_discard_waiter, &r), 0);
    yields(1);
    /* Cancelled (ready to run with URT_ECANCELED), then its job ends and
     * the loop reaps the completion before the task has run. */
    EXPECT_EQ(urt_task_cancel(r.waiter), 1);
    atomic_store(&r.job.release, 1);
    EXPECT(spin_until(&r.fn_done, 1, 5000));
    atomic_int never = 0;
    spin_until(&never, 1, 20); /* the worker's eventfd write lands */
    EXPECT_EQ(await_within(r.waiter, 5000, NULL), URT_ECANCELED);
    EXPECT(sleep_until(&discards, 1, 5000));
    EXPECT_EQ(atomic_load(&discarded_result), 77);
    urt_sleep_ms(spaced_ms(10));
    EXPECT_EQ(atomic_load(&discards), 1);
    return 0;
}

/* Cancelled, and its job finishes before the cancelled task runs again:
 * the task returns URT_ECANCELED and discard gets the result once. */
static void test_job_ending_after_cancel_before_task_resumes_is_discarded_once(void **state)
{
    (void)state;
    run_main(main_cancel_then_done, NULL);
}

static atomic_int pending_ran;

static intptr_t pending_fn(void *arg)
{
    (void)arg;
    atomic_store(&pending_ran, 1);
    return 0;
}

static intptr_t main_pending_cancel(void *arg)
{
    (void)arg;
    atomic_store(&discards, 0);
    urt_task self = urt_task_current();
    EXPECT_EQ(urt_task_cancel(self), 1);
    EXPECT_EQ(urt_to_thread_discard(pending_fn, NULL, held_discard, NULL), URT_ECANCELED);
    EXPECT_EQ(atomic_load(&discards), 1);
    EXPECT_EQ(atomic_load(&discarded_result), URT_ECANCELED);
    EXPECT_EQ(urt_task_cancel(self), 1);
    EXPECT_EQ(urt_to_thread(pending_fn, NULL, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_to_thread(pending_fn, NULL, NULL), 0); /* delivered once */
    return 0;
}

/* A cancellation pending when the call is made is delivered there, and the
 * job is never made. */
static void test_pending_cancellation_is_delivered_before_the_job_starts(void **state)
{
    (void)state;
    atomic_store(&pending_ran, 0);
    run_main(main_pending_cancel, NULL);
    assert_int_equal(atomic_load(&pending_ran), 1); /* by the last call only */
}

/* ---- the loop's end ---------------------------------------------------- */

static atomic_int end_finished;

static intptr_t end_fn(void *arg)
{
    atomic_int *started = arg;
    atomic_store(started, 1);
    block_ms(100);
    atomic_store(&end_finished, 1);
    return 0;
}

static intptr_t end_caller(void *arg)
{
    return urt_to_thread(end_fn, arg, NULL);
}

static atomic_int end_started;

static intptr_t main_end(void *arg)
{
    (void)arg;
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, end_caller, &end_started), 0);
    /* Other threads in use meanwhile, so that there are several to join. */
    struct gate g = {.open = 1};
    urt_task more[3];
    spawn_n(more, 3, gate_task, &g);
    await_all(more, 3);
    EXPECT(sleep_until(&end_started, 1, 5000));
    return 0; /* t is cancelled; its job runs on */
}

/* When main returns with a job running, urt_run waits for the job to end
 * (a thread cannot be killed) and joins every worker thread. */
static void test_loop_end_waits_for_running_job_and_leaves_no_thread(void **state)
{
    (void)state;
    int before = count_threads();
    atomic_store(&end_finished, 0);
    atomic_store(&end_started, 0);
    uint64_t t0 = urt_now();
    run_main(main_end, NULL);
    assert_int_equal(atomic_load(&end_finished), 1);
    assert_true(urt_now() - t0 >= 100 * URT_NS_PER_MS);
    assert_int_equal(count_threads(), before);
}

/* ---- signals ----------------------------------------------------------- */

static intptr_t mask_fn(void *arg)
{
    (void)arg;
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    int blocked = 0;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE, SIGCHLD, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) blocked += sigismember(&set, sigs[i]) == 1;
    return blocked;
}

static intptr_t main_signals(void *arg)
{
    (void)arg;
    intptr_t v = 0;
    EXPECT_EQ(urt_to_thread(mask_fn, NULL, &v), 0);
    EXPECT_EQ(v, 8);
    /* The loop's thread keeps its own mask: only SIGPIPE is the loop's. */
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    EXPECT_EQ(sigismember(&set, SIGINT), 0);
    EXPECT_EQ(sigismember(&set, SIGUSR1), 0);
    return 0;
}

/* Worker threads block every signal; the loop's thread's mask is as it
 * was. */
static void test_worker_threads_block_every_signal(void **state)
{
    (void)state;
    run_main(main_signals, NULL);
}

/* ---- the eventfd read's fallback --------------------------------------- */

static intptr_t main_readv(void *arg)
{
    (void)arg;
    EXPECT(!urt__has_op(urt__loop, IORING_OP_READ));
    intptr_t v = 0;
    for (int i = 0; i < 20; i++) {
        EXPECT_EQ(urt_to_thread(return_arg, (void *)(intptr_t)i, &v), 0);
        EXPECT_EQ(v, i);
    }
    return 0;
}

/* With IORING_OP_READ masked off (URT_FEATURES_OFF=op_read), the pool's
 * eventfd is read with READV, with the same results. */
static void test_completions_arrive_with_read_masked_off(void **state)
{
    (void)state;
    setenv("URT_FEATURES_OFF", "op_read", 1);
    run_main(main_readv, NULL);
    unsetenv("URT_FEATURES_OFF");
}

/* ---- getaddrinfo --------------------------------------------------------- */

static intptr_t main_gai(void *arg)
{
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = (void *)1;
    EXPECT_EQ(urt_getaddrinfo("localhost", "8080", &hints, &res), 0);
    EXPECT(res != NULL);
    if (res && res != (void *)1) {
        EXPECT_EQ(res->ai_family, AF_INET);
        EXPECT_EQ(res->ai_socktype, SOCK_STREAM);
        const struct sockaddr_in *in = (const struct sockaddr_in *)res->ai_addr;
        EXPECT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
        EXPECT_EQ(ntohs(in->sin_port), 8080);
        freeaddrinfo(res);
    }
    /* No hints, numeric host: one entry per socket type. */
    EXPECT_EQ(urt_getaddrinfo("127.0.0.1", NULL, NULL, &res), 0);
    if (res) freeaddrinfo(res);

    /* .invalid never resolves (RFC 6761). */
    uint64_t t0 = urt_now();
    res = (void *)1;
    EXPECT_EQ(urt_getaddrinfo("nonexistent.invalid", "80", &hints, &res), -ENOENT);
    EXPECT(res == NULL);
    EXPECT(ms_since(t0) < 10000);
    EXPECT_EQ(urt_getaddrinfo(NULL, NULL, &hints, &res), -ENOENT);
    EXPECT_EQ(urt_getaddrinfo("localhost", "no-such-service", &hints, &res), -EPROTONOSUPPORT);
    struct addrinfo bad = hints;
    bad.ai_family = 12345;
    EXPECT_EQ(urt_getaddrinfo("localhost", "80", &bad, &res), -EAFNOSUPPORT);
    bad = hints;
    bad.ai_socktype = 12345;
    EXPECT_EQ(urt_getaddrinfo("localhost", "80", &bad, &res), -ESOCKTNOSUPPORT);
    bad = hints;
    bad.ai_flags = 0x7fff0000;
    EXPECT_EQ(urt_getaddrinfo("localhost", "80", &bad, &res), -EINVAL);
    bad = hints;
    bad.ai_flags = AI_NUMERICHOST;
    EXPECT_EQ(urt_getaddrinfo("localhost", "80", &bad, &res), -ENOENT);
    EXPECT_EQ(urt_getaddrinfo("localhost", "80", &hints, NULL), -EFAULT);
    return 0;
}

/* getaddrinfo of "localhost" (from /etc/hosts) gives 127.0.0.1 and the
 * port; a .invalid name, and every other getaddrinfo failure we can cause
 * without a network, gives its documented code. */
static void test_getaddrinfo_resolves_localhost_and_maps_errors(void **state)
{
    (void)state;
    run_main(main_gai, NULL);
}

struct gai_call {
    char node[32];
    int rc;
};

static intptr_t gai_caller(void *arg)
{
    struct gai_call *c = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    c->rc = urt_getaddrinfo(c->node, "80", &hints, &res);
    if (c->rc == 0) freeaddrinfo(res);
    /* The strings were copied: this frame may be gone before the job. */
    memset(c->node, 'X', sizeof c->node - 1);
    return c->rc;
}

static intptr_t main_gai_cancel(void *arg)
{
    (void)arg;
    /* Cancelled at every point of the call: before a thread took the job,
     * while getaddrinfo runs, after it returned. */
    for (int i = 0; i < 40; i++) {
        struct gai_call *c = calloc(1, sizeof *c);
        strcpy(c->node, "localhost");
        urt_task t;
        EXPECT_EQ(urt_task_create(&t, gai_caller, c), 0);
        for (int k = 0; k < i % 8; k++) urt_yield();
        if (i % 3 == 2) urt_sleep_ms(1);
        urt_task_cancel(t);
        int rc = await_within(t, 5000, NULL);
        EXPECT(rc == 0 || rc == URT_ECANCELED);
        free(c);
    }
    return 0;
}

/* A cancelled urt_getaddrinfo leaks nothing and touches no freed memory,
 * whenever the cancellation comes (the list is freed by the discard). */
static void test_cancelled_getaddrinfo_frees_its_result(void **state)
{
    (void)state;
    run_main(main_gai_cancel, NULL);
}

/* ---- urt_tcp_connect with a host name ---------------------------------- */

static int listener_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return -1;
    return ntohs(a.sin_port);
}

static intptr_t main_connect_name(void *arg)
{
    (void)arg;
    int lfd = urt_tcp_listen("127.0.0.1:0", 8);
    EXPECT(lfd >= 0);
    char hostport[64];
    snprintf(hostport, sizeof hostport, "localhost:%d", listener_port(lfd));
    int fd = urt_tcp_connect(hostport);
    EXPECT(fd >= 0);
    if (fd >= 0) {
        int afd = urt_accept_timeout(lfd, NULL, NULL, 0, 5 * URT_NS_PER_S);
        EXPECT(afd >= 0);
        EXPECT_EQ(urt_send(fd, "x", 1, 0), 1);
        char b = 0;
        if (afd >= 0) EXPECT_EQ(urt_recv_timeout(afd, &b, 1, 0, 5 * URT_NS_PER_S), 1);
        EXPECT_EQ(b, 'x');
        if (afd >= 0) urt_close(afd);
        urt_close(fd);
    }
    fd = urt_tcp_connect_timeout(hostport, 5 * URT_NS_PER_S);
    EXPECT(fd >= 0);
    if (fd >= 0) urt_close(fd);
    urt_close(lfd);
    /* Nobody listens there any more: every address refuses. */
    EXPECT_EQ(urt_tcp_connect(hostport), -ECONNREFUSED);
    EXPECT_EQ(urt_tcp_connect("nonexistent.invalid:80"), -ENOENT);
    /* Not a name: colons outside brackets, or a name in brackets. */
    EXPECT_EQ(urt_tcp_connect("fe80::zz:80"), -EINVAL);
    EXPECT_EQ(urt_tcp_connect("[localhost]:80"), -EINVAL);
    EXPECT_EQ(urt_tcp_connect("localhost:"), -EINVAL);
    EXPECT_EQ(urt_tcp_connect("localhost:70000"), -EINVAL);
    /* Listening takes addresses only. */
    EXPECT_EQ(urt_tcp_listen("localhost:0", 8), -EINVAL);
    return 0;
}

/* urt_tcp_connect("localhost:PORT") resolves the name on the pool and
 * connects to our listener on 127.0.0.1; a refused port, a name that does
 * not resolve and malformed names give their codes. */
static void test_tcp_connect_resolves_host_name(void **state)
{
    (void)state;
    run_main(main_connect_name, NULL);
}

static intptr_t main_connect_timeout(void *arg)
{
    (void)arg;
    int lfd = urt_tcp_listen("127.0.0.1:0", 8);
    EXPECT(lfd >= 0);
    char hostport[64];
    snprintf(hostport, sizeof hostport, "localhost:%d", listener_port(lfd));
    /* The only thread is busy: resolution waits in the queue, and the
     * timeout covers that wait. */
    EXPECT(urt_thread_pool_limit(1) > 0);
    struct job *j = calloc(1, sizeof *j);
    struct caller c = {.job = j};
    urt_task busy;
    EXPECT_EQ(urt_task_create(&busy, held_caller, &c), 0);
    EXPECT(sleep_until(&j->started, 1, 5000));
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_tcp_connect_timeout(hostport, 30 * URT_NS_PER_MS), URT_ETIMEDOUT);
    EXPECT(urt_now() - t0 >= 30 * URT_NS_PER_MS);
    atomic_store(&j->release, 1);
    EXPECT_EQ(await_within(busy, 5000, NULL), 0);
    int fd = urt_tcp_connect_timeout(hostport, 5 * URT_NS_PER_S);
    EXPECT(fd >= 0);
    if (fd >= 0) urt_close(fd);
    urt_close(lfd);
    free(j);
    return 0;
}

/* urt_tcp_connect_timeout's timeout covers the name's resolution. */
static void test_tcp_connect_timeout_covers_resolution(void **state)
{
    (void)state;
    run_main(main_connect_timeout, NULL);
}

/* ---- errors ------------------------------------------------------------ */

static intptr_t main_errors(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_to_thread(NULL, NULL, NULL), -EINVAL);
    EXPECT_EQ(urt_to_thread_discard(NULL, NULL, held_discard, NULL), -EINVAL);
    return 0;
}

/* -EINVAL for a NULL fn, URT_ENOLOOP outside a loop. */
static void test_bad_arguments_and_no_loop_are_errors(void **state)
{
    (void)state;
    run_main(main_errors, NULL);
    struct addrinfo *res;
    assert_int_equal(urt_to_thread(return_arg, NULL, NULL), URT_ENOLOOP);
    assert_int_equal(urt_to_thread_discard(return_arg, NULL, NULL, NULL), URT_ENOLOOP);
    assert_int_equal(urt_thread_pool_limit(2), URT_ENOLOOP);
    assert_int_equal(urt_getaddrinfo("localhost", "80", NULL, &res), URT_ENOLOOP);
}

static intptr_t main_emfile(void *arg)
{
    (void)arg;
    struct rlimit old;
    EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* The lowest free fd becomes the limit: no fd can be had. */
    int lowest = dup(0);
    EXPECT(lowest >= 0);
    close(lowest);
    struct rlimit low = {(rlim_t)lowest, old.rlim_max};
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc = urt_to_thread(return_arg, NULL, NULL);
    int rc2 = urt_thread_pool_limit(3);
    setrlimit(RLIMIT_NOFILE, &old);
    EXPECT_EQ(rc, -EMFILE);
    EXPECT_EQ(rc2, -EMFILE);
    /* Nothing was left half made: it works now. */
    EXPECT_EQ(urt_to_thread(return_arg, NULL, NULL), 0);
    return 0;
}

/* The pool's eventfd cannot be made (RLIMIT_NOFILE): -EMFILE, and the next
 * call, with fds to spare, works. */
static void test_pool_without_fd_is_emfile(void **state)
{
    (void)state;
    run_main(main_emfile, NULL);
}

/* The address space the process has now, from /proc/self/status. */
static rlim_t address_space(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[128];
    unsigned long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lu kB", &kb) == 1) break;
    fclose(f);
    return (rlim_t)kb * 1024;
}

static intptr_t main_eagain(void *arg)
{
    (void)arg;
    EXPECT_EQ(urt_thread_pool_limit(0), expected_default()); /* the pool exists */
    struct rlimit old;
    EXPECT_EQ(getrlimit(RLIMIT_AS, &old), 0);
    /* 1 MiB more than now: no room for a thread's stack. */
    struct rlimit low = {address_space() + (1u << 20), old.rlim_max};
    EXPECT_EQ(setrlimit(RLIMIT_AS, &low), 0);
    int rc = urt_to_thread(return_arg, NULL, NULL);
    setrlimit(RLIMIT_AS, &old);
    EXPECT_EQ(rc, -EAGAIN);
    EXPECT_EQ(urt_to_thread(return_arg, (void *)3, NULL), 0);
    return 0;
}

/* No thread can be started and the pool has none: -EAGAIN, the job is
 * dropped, and the pool works once threads can be had again. */
static void test_no_thread_startable_is_eagain(void **state)
{
    (void)state;
    /* The sanitizers' and valgrind's allocators map memory as they go. */
    if (UNDER_ASAN || UNDER_TSAN || RUNNING_ON_VALGRIND) skip();
    run_main(main_eagain, NULL);
}

/* ---- warm-up ------------------------------------------------------------ */

#define WARM_THREADS 16

static intptr_t warm_fn(void *arg)
{
    atomic_int *running = arg;
    atomic_fetch_add(running, 1);
    /* All at once, so that glibc makes an arena per thread now. */
    for (int i = 0; i < 5000 && atomic_load(running) < WARM_THREADS; i++) block_ms(1);
    free(malloc(100));
    struct addrinfo *res;
    if (getaddrinfo("localhost", "80", NULL, &res) == 0) freeaddrinfo(res);
    return 0;
}

static intptr_t warm_task(void *arg)
{
    return urt_to_thread(warm_fn, arg, NULL);
}

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    atomic_int running = 0;
    urt_thread_pool_limit(WARM_THREADS);
    urt_task t[WARM_THREADS];
    for (int i = 0; i < WARM_THREADS; i++) urt_task_create(&t[i], warm_task, &running);
    urt_gather(t, WARM_THREADS, 0, NULL, NULL);
    return 0;
}

/* glibc keeps, for the life of the process, what threads made it map: a
 * malloc arena per concurrent thread, a cache of 40 MiB of thread stacks,
 * the NSS modules getaddrinfo loads.  A run that uses threads for the
 * first time would look as if it left mappings behind; this run makes
 * them first, with more threads than any test uses. */
static int warm_up(void **state)
{
    (void)state;
    return urt_run(warm_up_main, NULL, NULL) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking_call_runs_while_other_tasks_progress),
        cmocka_unit_test(test_value_and_error_reach_caller),
        cmocka_unit_test(test_many_calls_complete_within_pool_limit),
        cmocka_unit_test(test_thread_pool_limit_bounds_raises_and_lowers),
        cmocka_unit_test(test_cancel_of_waiting_task_returns_at_once_and_job_runs_on),
        cmocka_unit_test(test_queued_job_of_cancelled_task_never_runs),
        cmocka_unit_test(test_value_handed_over_wins_over_cancellation_in_same_instant),
        cmocka_unit_test(test_job_ending_after_cancel_before_task_resumes_is_discarded_once),
        cmocka_unit_test(test_pending_cancellation_is_delivered_before_the_job_starts),
        cmocka_unit_test(test_loop_end_waits_for_running_job_and_leaves_no_thread),
        cmocka_unit_test(test_worker_threads_block_every_signal),
        cmocka_unit_test(test_completions_arrive_with_read_masked_off),
        cmocka_unit_test(test_getaddrinfo_resolves_localhost_and_maps_errors),
        cmocka_unit_test(test_cancelled_getaddrinfo_frees_its_result),
        cmocka_unit_test(test_tcp_connect_resolves_host_name),
        cmocka_unit_test(test_tcp_connect_timeout_covers_resolution),
        cmocka_unit_test(test_bad_arguments_and_no_loop_are_errors),
        cmocka_unit_test(test_pool_without_fd_is_emfile),
        cmocka_unit_test(test_no_thread_startable_is_eagain),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
