/*
 * Fibers and their stacks (SEMANTICS 6 and the header's stack options):
 * legal deep recursion works, an overflow hits the guard page and stops
 * the process with a message naming the task, many tasks can be alive at
 * once (with MADV_GUARD_INSTALL and with the mprotect fallback), and stacks
 * are reused rather than mapped anew for every task.
 *
 * Checks made inside tasks never call cmocka's assert macros (a longjmp
 * out of a fiber would wreck the loop); they record the first failure and
 * the test asserts none was recorded after urt_run returns.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- legal deep recursion ---- */

/* Recurses until the frames below top span `want` bytes, each frame
 * holding 1 KiB that it fills and checks again on the way back: 0, or
 * -EFAULT if a frame was overwritten. */
static __attribute__((noinline)) int dig(uintptr_t top, size_t want, unsigned depth,
                                         uintptr_t *deepest)
{
    volatile unsigned char buf[1024];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(depth * 7 + i);
    /* The frame address, not &buf: under ASan's fake stacks buf may live
     * on the heap. */
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (here < *deepest) *deepest = here;
    int rc = 0;
    if (top - here < want) rc = dig(top, want, depth + 1, deepest);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != (unsigned char)(depth * 7 + i)) rc = -EFAULT;
    return rc;
}

struct dig_job {
    size_t want;
    size_t used; /* bytes of stack the recursion really spanned */
};

static intptr_t dig_fn(void *arg)
{
    struct dig_job *j = arg;
    uintptr_t top = (uintptr_t)__builtin_frame_address(0);
    uintptr_t deepest = top;
    int rc = dig(top, j->want, 0, &deepest);
    j->used = top - deepest;
    return rc;
}

struct dig_case {
    size_t stack_size; /* 0: default */
    size_t want;
};

static intptr_t main_dig(void *arg)
{
    const struct dig_case *c = arg;
    struct dig_job j = {.want = c->want};
    urt_task_opts opts = {.name = "digger", .stack_size = c->stack_size};
    urt_task t;
    EXPECT_EQ(urt_task_create_opts(&t, dig_fn, &j, &opts), 0);
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT(j.used >= c->want);
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

/* SEMANTICS 6 / header: the default stack is URT_STACK_DEFAULT (128 KiB)
 * usable; 64 KiB of recursion inside a task works, frames intact. */
static void test_default_stack_allows_64k_of_recursion(void **state)
{
    (void)state;
    struct dig_case c = {0, 64 * 1024};
    run_main(main_dig, &c);
}

/* Header: urt_task_opts.stack_size = 1 MiB gives a task that can use
 * 900 KiB. */
static void test_stack_size_option_allows_900k_of_recursion(void **state)
{
    (void)state;
    struct dig_case c = {1024 * 1024, 900 * 1024};
    run_main(main_dig, &c);
}

/* Header: stack_size is rounded up to a power of two: 70,000 bytes asked
 * gives 128 KiB usable, so 96 KiB of recursion fits. */
static void test_stack_size_option_rounds_up_to_power_of_two(void **state)
{
    (void)state;
    struct dig_case c = {70000, 96 * 1024};
    run_main(main_dig, &c);
}

static intptr_t nothing_fn(void *arg)
{
    (void)arg;
    return 0;
}

static intptr_t main_bad_stack_size(void *arg)
{
    (void)arg;
    urt_task t = URT_TASK_NONE;
    urt_task_opts opts = {.stack_size = (size_t)URT_STACK_MAX + 1};
    EXPECT_EQ(urt_task_create_opts(&t, nothing_fn, NULL, &opts), -EINVAL);
    opts.stack_size = SIZE_MAX;
    EXPECT_EQ(urt_task_create_opts(&t, nothing_fn, NULL, &opts), -EINVAL);
    EXPECT_EQ(t.id, 0);
    /* the loop still works, and URT_STACK_MAX itself is allowed */
    opts.stack_size = URT_STACK_MAX;
    EXPECT_EQ(urt_task_create_opts(&t, nothing_fn, NULL, &opts), 0);
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    return 0;
}

/* SEMANTICS 6 / header: a stack size above URT_STACK_MAX is out of range:
 * -EINVAL, no task, the loop goes on. */
static void test_stack_size_above_max_is_einval(void **state)
{
    (void)state;
    run_main(main_bad_stack_size, NULL);
}

/* ---- stack overflow ---- */

static volatile int never_true;

/* Unbounded recursion the compiler cannot turn into a loop: each frame
 * keeps volatile locals live across the call. */
static __attribute__((noinline)) int overflow(int depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = (char)depth;
    if (never_true == 12345) return buf[0];
    return overflow(depth + 1) + buf[0] + buf[sizeof buf - 1];
}

struct overflow_case {
    const char *name;  /* NULL: default name */
    size_t stack_size; /* 0: default */
    bool mprotect_guards; /* URT_FEATURES_OFF=guard_install in the child */
};

static intptr_t overflower_fn(void *arg)
{
    (void)arg;
    return overflow(0);
}

static intptr_t main_overflow(void *arg)
{
    const struct overflow_case *c = arg;
    urt_task_opts opts = {.name = c->name, .stack_size = c->stack_size};
    urt_task t;
    if (!c->name) {
        /* urt_task_name() formats a default name into the task, so asking
         * the overflower its own name would hide a handler that cannot name
         * a task never asked.  Ask a sibling created just before instead:
         * names are numbered in creation order, as in asyncio. */
        urt_task sibling;
        if (urt_task_create(&sibling, nothing_fn, NULL) == 0) {
            const char *name = urt_task_name(sibling);
            unsigned k = 0;
            if (name && sscanf(name, "Task-%u", &k) == 1) dprintf(2, "name=Task-%u\n", k + 1);
        }
    }
    if (urt_task_create_opts(&t, overflower_fn, NULL, &opts) == 0)
        urt_task_await(t, NULL);
    return 0;
}

/* Runs the overflow in a child process (before any urt_run in it) and
 * returns its stderr; *status gets its wait status. */
static char *overflow_in_child(const struct overflow_case *c, int *status)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        if (c->mprotect_guards) setenv("URT_FEATURES_OFF", "guard_install", 1);
        urt_run(main_overflow, (void *)c, NULL);
        _exit(0); /* the overflow was not caught: the parent sees exit 0 */
    }
    close(fds[1]);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (;;) {
        if (len + 1 == cap) {
            char *bigger = realloc(out, cap *= 2);
            assert_non_null(bigger);
            out = bigger;
        }
        ssize_t r = read(fds[0], out + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    out[len] = 0;
    close(fds[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    return out;
}

/* The child must die abnormally; with our handler, by SIGSEGV after
 * printing exactly `urt: task "NAME" overflowed its stack (SIZE bytes)\n`.
 * Under ASan, ASan's own stack-overflow report is accepted instead. */
static void check_overflow_report(const char *out, int status, const char *name, size_t size)
{
    char expected[128];
    snprintf(expected, sizeof expected, "urt: task \"%s\" overflowed its stack (%zu bytes)\n",
             name, size);
    bool ours = strstr(out, expected) != NULL;
    bool by_segv = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
    if (UNDER_ASAN && !ours && strstr(out, "stack-overflow")) {
        if (!(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))) {
            print_error("child did not die abnormally (status %#x)\n", status);
            fail();
        }
        return;
    }
    if (!ours || !by_segv) {
        print_error("expected death by SIGSEGV with \"%s\"\n", expected);
        if (WIFSIGNALED(status))
            print_error("child died by signal %d\n", WTERMSIG(status));
        else
            print_error("child exited with %d\n", WEXITSTATUS(status));
        print_error("child stderr:\n%s\n", out);
        fail();
    }
}

/* SEMANTICS 6: a fiber that overflows its stack hits a guard page and the
 * process stops with a message naming the task, by SIGSEGV. */
static void test_stack_overflow_kills_process_with_message_naming_task(void **state)
{
    (void)state;
    struct overflow_case c = {.name = "overflower"};
    int status;
    char *out = overflow_in_child(&c, &status);
    check_overflow_report(out, status, "overflower", URT_STACK_DEFAULT);
    free(out);
}

/* SEMANTICS 6: the message gives the task's own stack size. */
static void test_stack_overflow_message_gives_task_stack_size(void **state)
{
    (void)state;
    struct overflow_case c = {.name = "small-stack", .stack_size = 32 * 1024};
    int status;
    char *out = overflow_in_child(&c, &status);
    check_overflow_report(out, status, "small-stack", 32 * 1024);
    free(out);
}

/* SEMANTICS 6 + 5.4: with MADV_GUARD_INSTALL masked off, the mprotect'ed
 * guard page catches the overflow the same way. */
static void test_stack_overflow_caught_with_mprotect_guards(void **state)
{
    (void)state;
    struct overflow_case c = {.name = "overflower", .mprotect_guards = true};
    int status;
    char *out = overflow_in_child(&c, &status);
    check_overflow_report(out, status, "overflower", URT_STACK_DEFAULT);
    free(out);
}

/* SEMANTICS 6: a task with the default name ("Task-N") is named too, also
 * when nothing asked for its name before (the runtime formats it lazily). */
static void test_stack_overflow_message_names_task_with_default_name(void **state)
{
    (void)state;
    struct overflow_case c = {.name = NULL};
    int status;
    char *out = overflow_in_child(&c, &status);
    const char *p = strstr(out, "name=");
    assert_non_null(p);
    char name[URT_TASK_NAME_MAX + 1] = "";
    int k = 0;
    assert_int_equal(sscanf(p, "name=%32[^\n]%n", name, &k), 1);
    int num = 0;
    assert_int_equal(sscanf(name, "Task-%d", &num), 1);
    assert_true(num >= 1);
    check_overflow_report(out, status, name, URT_STACK_DEFAULT);
    free(out);
}

/* ---- many live tasks ---- */

struct live {
    size_t n;
    size_t started, alive, max_alive;
    bool released;
    size_t sleep_errors;
    int maps_before, maps_during; /* count_mappings() before creating, all alive */
};

static struct live live;

static intptr_t live_fn(void *arg)
{
    live.started++;
    if (++live.alive > live.max_alive) live.max_alive = live.alive;
    /* Keep sleeping 20 ms until main has seen every task start, so all of
     * them are alive at once however long creating them took. */
    do
        live.sleep_errors += urt_sleep_ms(20) != 0;
    while (!live.released);
    live.alive--;
    return (intptr_t)arg;
}

static intptr_t main_live(void *arg)
{
    (void)arg;
    size_t n = live.n;
    urt_task *t = calloc(n, sizeof *t);
    intptr_t *v = calloc(n, sizeof *v);
    EXPECT(t && v);
    if (!t || !v) goto out;
    live.maps_before = count_mappings();
    for (size_t i = 0; i < n; i++) {
        int rc = urt_task_create(&t[i], live_fn, (void *)(intptr_t)i);
        if (rc) {
            EXPECT_EQ(rc, 0);
            n = i;
            break;
        }
    }
    while (live.started < n) EXPECT_EQ(urt_yield(), 0);
    live.maps_during = count_mappings();
    live.released = true;
    EXPECT_EQ(urt_gather(t, n, 0, v, NULL), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        wrong += v[i] != (intptr_t)i;
        wrong += urt_task_release(t[i]) != 0;
    }
    EXPECT_EQ(wrong, 0);
out:
    free(t);
    free(v);
    return 0;
}

/* Whether this kernel has MADV_GUARD_INSTALL (Linux 6.13). */
static bool kernel_has_guard_install(void)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    bool ok = madvise(p, page, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(p, 2 * page);
    return ok;
}

static void run_live(size_t n)
{
    live = (struct live){.n = n};
    live = (struct live){.n = n};
    run_main(main_live, NULL);
    assert_int_equal(live.started, n);
    assert_int_equal(live.max_alive, n);
    assert_int_equal(live.alive, 0);
    assert_int_equal(live.sleep_errors, 0);
}

static int maps_grown(void) { return live.maps_during - live.maps_before; }

/* SEMANTICS 1.2 / 6: 20,000 tasks alive at once, each on its own guarded
 * stack, work and leave no mapping behind (1,000 under URT_TEST_SMALL). */
static void test_many_live_tasks_work_and_leak_no_mapping(void **state)
{
    (void)state;
    size_t n = small_scale() ? 1000 : 20000;
    run_live(n);
    /* With MADV_GUARD_INSTALL the guards are page-table markers: a slab of
     * stacks stays one mapping (the header's URT_ESTACKLIMIT note). */
    if (kernel_has_guard_install()) {
        if (maps_grown() >= (int)(n / 4))
            print_error("%zu stacks took %d mappings\n", n, maps_grown());
        assert_true(maps_grown() < (int)(n / 4));
    }
}

/* Same with the guards installed one madvise per stack instead of in
 * batches of process_madvise (URT_FEATURES_OFF=guard_batch: the path of
 * Linux 6.13, and of any kernel that refuses the batch). */
static void test_many_live_tasks_with_guards_one_by_one(void **state)
{
    (void)state;
    size_t n = small_scale() ? 1000 : 20000;
    assert_int_equal(setenv("URT_FEATURES_OFF", "guard_batch", 1), 0);
    run_live(n);
    unsetenv("URT_FEATURES_OFF");
    if (kernel_has_guard_install()) assert_true(maps_grown() < (int)(n / 4));
}

/* Same with MADV_GUARD_INSTALL masked off (SEMANTICS 5.4: the fallback, one
 * mprotect'ed guard page per stack, must give the same result): 5,000
 * tasks (500 under URT_TEST_SMALL). */
static void test_many_live_tasks_with_mprotect_guards(void **state)
{
    (void)state;
    size_t n = small_scale() ? 500 : 5000;
    assert_int_equal(setenv("URT_FEATURES_OFF", "guard_install", 1), 0);
    run_live(n);
    unsetenv("URT_FEATURES_OFF");
    /* The variable was honoured: each mprotect'ed guard splits its slab,
     * so every stack costs a mapping of its own. */
    if (maps_grown() < (int)n) print_error("%zu stacks took %d mappings\n", n, maps_grown());
    assert_true(maps_grown() >= (int)n);
}

/* ---- stacks are reused ---- */

struct reuse {
    size_t n;
    int maps_early, maps_end;
    long vm_early, vm_end; /* kB of address space */
};

/* Adjacent anonymous mappings with the same flags merge into one line of
 * /proc/self/maps, so a runtime that mapped a new slab for every stack
 * could keep the count flat; the address space it takes cannot. */
static long vm_size_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static intptr_t index_fn(void *arg) { return (intptr_t)arg; }

static intptr_t main_reuse(void *arg)
{
    struct reuse *r = arg;
    size_t wrong = 0;
    for (size_t i = 0; i < r->n; i++) {
        urt_task t;
        int rc = urt_task_create(&t, index_fn, (void *)(intptr_t)i);
        if (rc) {
            EXPECT_EQ(rc, 0);
            break;
        }
        intptr_t v = -1;
        wrong += urt_task_await(t, &v) != 0;
        wrong += v != (intptr_t)i;
        wrong += urt_task_release(t) != 0;
        if (i == 1000) {
            r->maps_early = count_mappings();
            r->vm_early = vm_size_kb();
        }
    }
    r->maps_end = count_mappings();
    r->vm_end = vm_size_kb();
    EXPECT_EQ(wrong, 0);
    return 0;
}

/* SEMANTICS 1.2 / 6: 100,000 short tasks created and finished one after
 * another reuse their stacks: the mapping count at the end is the one seen
 * after the first 1,000 tasks, and the address space has not grown by more
 * than 1 MiB (10,000 tasks under URT_TEST_SMALL). */
static void test_finished_tasks_stacks_are_reused(void **state)
{
    (void)state;
    struct reuse r = {.n = small_scale() ? 10000 : 100000};
    run_main(main_reuse, &r);
    if (r.maps_end != r.maps_early)
        print_error("mappings after 1,000 tasks: %d, after %zu: %d\n", r.maps_early, r.n,
                    r.maps_end);
    assert_int_equal(r.maps_end, r.maps_early);
    if (r.vm_end != r.vm_early)
        print_error("address space after 1,000 tasks: %ld kB, after %zu: %ld kB\n", r.vm_early,
                    r.n, r.vm_end);
    /* A little slack for the allocator (and valgrind's own arenas, which
     * share the process); a stack not reused costs 144 KiB of address
     * space, so 9,000 of them cannot hide in it. */
    assert_true(r.vm_early > 0);
    assert_true(r.vm_end - r.vm_early <= 1024);
}

/* urt_task_create: a stack is a task's only from its first run to its end.
 * 20,000 tasks created before any of them runs, each finishing before the
 * next starts, need one stack between them: the address space grows by far
 * less than the 20,000 x 144 KiB (2.8 GiB) a stack each would take, and
 * every one of them ran and gave its value. */
struct burst {
    size_t n;
    long vm_before, vm_after;
    size_t wrong;
};

static intptr_t main_burst(void *arg)
{
    struct burst *b = arg;
    urt_task *tasks = malloc(b->n * sizeof *tasks);
    intptr_t *values = malloc(b->n * sizeof *values);
    if (!tasks || !values) {
        free(tasks);
        free(values);
        return -ENOMEM;
    }
    b->vm_before = vm_size_kb();
    size_t created = 0;
    while (created < b->n && urt_task_create(&tasks[created], index_fn, (void *)created) == 0)
        created++;
    EXPECT_EQ(created, b->n);
    EXPECT_EQ(urt_gather(tasks, created, 0, values, NULL), 0);
    b->vm_after = vm_size_kb();
    for (size_t i = 0; i < created; i++) {
        b->wrong += values[i] != (intptr_t)i;
        urt_task_release(tasks[i]);
    }
    free(tasks);
    free(values);
    return 0;
}

static void test_tasks_created_at_once_share_stacks_when_run_one_by_one(void **state)
{
    (void)state;
    struct burst b = {.n = 20000};
    run_main(main_burst, &b);
    assert_int_equal(b.wrong, 0);
    assert_true(b.vm_before > 0);
    /* Control blocks, handles and values: about 4 MiB; the slack is for the
     * allocator and valgrind's arenas. */
    if (b.vm_after - b.vm_before > 64 * 1024)
        print_error("address space grew by %ld kB\n", b.vm_after - b.vm_before);
    assert_true(b.vm_after - b.vm_before <= 64 * 1024);
}

/* urt.h, URT_STACK_MIN: urt's own work on a suspending task's stack (the
 * scheduler, reaping, the first run of the next task, a new slab of
 * stacks) fits in what a task with the smallest stack leaves it when it
 * suspends with 8 KiB of its own frames in use.  64 such tasks, each
 * suspending in a yield, a sleep and a pipe round trip, in a ring of 2
 * entries so that preparing an SQE submits and reaps too. */
static int small_pipe[2];

static intptr_t deep_small_task(void *arg)
{
    volatile char mine[8 * 1024];
    memset((char *)mine, (int)(intptr_t)arg, sizeof mine);
    if (urt_yield() || urt_sleep_us(10)) return -EIO;
    char byte = (char)(intptr_t)arg;
    if (urt_write(small_pipe[1], &byte, 1) != 1) return -EIO;
    if (urt_read(small_pipe[0], &byte, 1) != 1) return -EIO;
    return mine[sizeof mine - 1] == (char)(intptr_t)arg ? 0 : -EPROTO;
}

static intptr_t main_small_stacks(void *arg)
{
    (void)arg;
    urt_task tasks[64];
    int errors[64];
    urt_task_opts opts = {.stack_size = URT_STACK_MIN};
    for (int i = 0; i < 64; i++)
        EXPECT_EQ(urt_task_create_opts(&tasks[i], deep_small_task, (void *)(intptr_t)(i + 1), &opts), 0);
    EXPECT_EQ(urt_gather(tasks, 64, URT_RETURN_EXCEPTIONS, NULL, errors), 0);
    for (int i = 0; i < 64; i++) EXPECT_EQ(errors[i], 0);
    return 0;
}

static void test_smallest_stack_leaves_8k_to_the_task(void **state)
{
    (void)state;
    /* ASan's frames and redzones are several times larger. */
    if (UNDER_ASAN) skip();
    /* Resolve the library's functions first: lazy binding's first call is
     * the dynamic linker's own stack use, which the header warns about. */
    char byte = 0;
    assert_int_equal(pipe(small_pipe), 0);
    assert_int_equal(write(small_pipe[1], &byte, 1), 1);
    assert_int_equal(read(small_pipe[0], &byte, 1), 1);
    memset(&byte, 0, 1);
    assert_int_equal(setenv("URT_RING_ENTRIES", "2", 1), 0);
    run_main(main_small_stacks, NULL);
    unsetenv("URT_RING_ENTRIES");
    close(small_pipe[0]);
    close(small_pipe[1]);
}

/* A task that ends hands its stack to the next task when that one has never
 * run and wants the same size (loop.c, urt__exit_task); otherwise the next
 * gets its own stack before this one goes back to the pool.  Both paths, in
 * a mix of sizes, of tasks that end at once and tasks that yield first: each
 * finds its locals intact and gives its value, and a task started on a
 * handed-on stack gets the guard of its own size (the overflow tests). */
static intptr_t mixed_task(void *arg)
{
    intptr_t i = (intptr_t)arg;
    volatile intptr_t mine[64];
    for (int k = 0; k < 64; k++) mine[k] = i * 64 + k;
    if (i % 3 == 0 && urt_yield() != 0) return -EIO;
    for (int k = 0; k < 64; k++)
        if (mine[k] != i * 64 + k) return -EPROTO;
    return i;
}

static intptr_t main_mixed(void *arg)
{
    (void)arg;
    enum { N = 600 };
    urt_task tasks[N];
    intptr_t values[N];
    static const size_t sizes[] = {0, URT_STACK_MIN, 0, 0, 64 * 1024, URT_STACK_MIN};
    for (intptr_t i = 0; i < N; i++) {
        urt_task_opts opts = {.stack_size = sizes[i % 6]};
        EXPECT_EQ(urt_task_create_opts(&tasks[i], mixed_task, (void *)i, &opts), 0);
    }
    EXPECT_EQ(urt_gather(tasks, N, 0, values, NULL), 0);
    for (intptr_t i = 0; i < N; i++) EXPECT_EQ(values[i], i);
    return 0;
}

static void test_tasks_of_mixed_stack_sizes_started_in_turn_keep_their_frames(void **state)
{
    (void)state;
    run_main(main_mixed, NULL);
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

/* ---- the map-count limit ----
 * Without MADV_GUARD_INSTALL every guard page splits a mapping, and the
 * kernel caps a process's mappings at vm.max_map_count.  A task gets its
 * stack when it first runs, so creating tasks never hits the cap; a task
 * that cannot have a stack then ends, without running, with the documented
 * URT_ESTACKLIMIT (not ENOMEM or a crash), and the loop goes on working
 * once stacks are free again. */

static intptr_t sleep_briefly(void *arg)
{
    (void)arg;
    return urt_sleep_ms(10);
}

struct limit_run {
    size_t created, ran, refused, other;
    int gathered, after_create, after_await;
};

static intptr_t main_until_stack_limit(void *arg)
{
    struct limit_run *r = arg;
    size_t cap = 200000; /* far above what 65,530 mappings allow */
    urt_task *tasks = malloc(cap * sizeof *tasks);
    int *errors = malloc(cap * sizeof *errors);
    if (!tasks || !errors) {
        free(tasks);
        free(errors);
        return -ENOMEM;
    }
    while (r->created < cap && urt_task_create(&tasks[r->created], sleep_briefly, NULL) == 0)
        r->created++;
    r->gathered = urt_gather(tasks, r->created, URT_RETURN_EXCEPTIONS, NULL, errors);
    for (size_t i = 0; i < r->created; i++) {
        if (errors[i] == 0)
            r->ran++;
        else if (errors[i] == URT_ESTACKLIMIT)
            r->refused++;
        else
            r->other++;
        urt_task_release(tasks[i]);
    }
    free(tasks);
    free(errors);
    urt_task again;
    r->after_create = urt_task_create(&again, sleep_briefly, NULL);
    r->after_await = r->after_create ? r->after_create : urt_task_await(again, NULL);
    return 0;
}

static void test_stack_limit_with_mprotect_guards_is_estacklimit(void **state)
{
    (void)state;
    /* ASan's and valgrind's own allocators need new mappings too, and abort
     * when the cap is reached before ours is: only the plain build can show
     * what the runtime does there. */
    if (UNDER_ASAN || small_scale()) skip();
    long max_map_count = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max_map_count) != 1) max_map_count = 0;
        fclose(f);
    }
    if (max_map_count <= 0 || max_map_count > 300000) skip(); /* raised: too many to try */
    struct limit_run r = {0};
    assert_int_equal(setenv("URT_FEATURES_OFF", "guard_install", 1), 0);
    int rc = run_checked(main_until_stack_limit, &r, NULL);
    unsetenv("URT_FEATURES_OFF");
    assert_int_equal(rc, 0);
    assert_int_equal(r.created, 200000);
    assert_int_equal(r.gathered, 0);
    /* Two mappings per guarded stack: half the cap, less what else is
     * mapped, ran; every other task was refused its stack, nothing else. */
    assert_in_range(r.ran, (size_t)max_map_count / 4, (size_t)max_map_count / 2);
    assert_int_equal(r.refused, r.created - r.ran);
    assert_int_equal(r.other, 0);
    assert_int_equal(r.after_create, 0);
    assert_int_equal(r.after_await, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_stack_allows_64k_of_recursion),
        cmocka_unit_test(test_stack_size_option_allows_900k_of_recursion),
        cmocka_unit_test(test_stack_size_option_rounds_up_to_power_of_two),
        cmocka_unit_test(test_stack_size_above_max_is_einval),
        cmocka_unit_test(test_stack_overflow_kills_process_with_message_naming_task),
        cmocka_unit_test(test_stack_overflow_message_gives_task_stack_size),
        cmocka_unit_test(test_stack_overflow_caught_with_mprotect_guards),
        cmocka_unit_test(test_stack_overflow_message_names_task_with_default_name),
        cmocka_unit_test(test_many_live_tasks_work_and_leak_no_mapping),
        cmocka_unit_test(test_many_live_tasks_with_guards_one_by_one),
        cmocka_unit_test(test_many_live_tasks_with_mprotect_guards),
        cmocka_unit_test(test_finished_tasks_stacks_are_reused),
        cmocka_unit_test(test_tasks_created_at_once_share_stacks_when_run_one_by_one),
        cmocka_unit_test(test_tasks_of_mixed_stack_sizes_started_in_turn_keep_their_frames),
        cmocka_unit_test(test_stack_limit_with_mprotect_guards_is_estacklimit),
        cmocka_unit_test(test_smallest_stack_leaves_8k_to_the_task),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
