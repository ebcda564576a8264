/*
 * Introspection: urt_tasks (asyncio.all_tasks), urt_task_describe,
 * urt_task_dump and urt_task_dump_on_signal, the "Introspection" part of
 * urt.h.
 *
 * Dumps go to a memfd that the test reads back and parses line by line:
 * each expected line is asserted whole, except the time left of a wait,
 * which is checked against bounds (never more than was asked).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

/* ---- helpers ---- */

static int new_memfd(void)
{
    int fd = memfd_create("urt-dump", MFD_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* The whole file, NUL-terminated, in buf (static: tasks have small
 * stacks).  Returns its length. */
static char file_buf[1 << 20];
static size_t read_file(int fd)
{
    size_t len = 0;
    ssize_t n;
    while ((n = pread(fd, file_buf + len, sizeof file_buf - 1 - len, (off_t)len)) > 0)
        len += (size_t)n;
    file_buf[len] = '\0';
    return len;
}

/* True when text holds line as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return true;
    return false;
}

/* The number after the line that starts with prefix, as in
 * "... sleep, 9998 ms left": -1 when there is no such line. */
static long long number_after(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; (p = strstr(p, prefix)); p++)
        if (p == text || p[-1] == '\n') return strtoll(p + n, NULL, 10);
    return -1;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static size_t count_lines(const char *text)
{
    return count_of(text, "\n");
}

/* Returns what the sleep returned: URT_ECANCELED when cancelled. */
static intptr_t sleep_ms_task(void *arg)
{
    return urt_sleep_ms((uint64_t)(uintptr_t)arg);
}

static intptr_t return_at_once(void *arg)
{
    (void)arg;
    return 0;
}

static intptr_t await_task(void *arg)
{
    return urt_task_await(*(urt_task *)arg, NULL);
}

/* ---- urt_tasks ---- */

static void expect_tasks(const urt_task *want, size_t n)
{
    urt_task got[16];
    EXPECT_EQ(urt_tasks(got, 16), n);
    for (size_t i = 0; i < n && i < 16; i++) EXPECT(urt_task_equal(got[i], want[i]));
}

static intptr_t main_tasks_order(void *arg)
{
    (void)arg;
    urt_task me = urt_task_current();
    urt_task a, b, c, d, e;
    EXPECT_EQ(urt_task_create(&a, sleep_ms_task, (void *)(uintptr_t)spaced_ms(20)), 0);
    EXPECT_EQ(urt_task_create(&b, return_at_once, NULL), 0);
    EXPECT_EQ(urt_task_create(&c, sleep_ms_task, (void *)(uintptr_t)10000), 0);
    EXPECT_EQ(urt_task_create(&d, sleep_ms_task, (void *)(uintptr_t)10000), 0);
    expect_tasks((urt_task[]){me, a, b, c, d}, 5);
    EXPECT_EQ(urt_tasks(NULL, 0), 5);

    /* The cap oldest, oldest first. */
    urt_task two[3] = {URT_TASK_NONE, URT_TASK_NONE, URT_TASK_NONE};
    EXPECT_EQ(urt_tasks(two, 2), 5);
    EXPECT(urt_task_equal(two[0], me));
    EXPECT(urt_task_equal(two[1], a));
    EXPECT(urt_task_equal(two[2], URT_TASK_NONE)); /* nothing past cap */

    /* b finished: gone, though its handle is still held. */
    EXPECT_EQ(urt_task_await(b, NULL), 0);
    expect_tasks((urt_task[]){me, a, c, d}, 4);
    /* Released, b's slot is taken by e, which is still listed last. */
    EXPECT_EQ(urt_task_release(b), 0);
    EXPECT_EQ(urt_task_create(&e, sleep_ms_task, (void *)(uintptr_t)10000), 0);
    expect_tasks((urt_task[]){me, a, c, d, e}, 5);
    urt_task four[4];
    EXPECT_EQ(urt_tasks(four, 4), 5); /* e is in an older slot, but younger */
    EXPECT(urt_task_equal(four[0], me) && urt_task_equal(four[1], a) &&
           urt_task_equal(four[2], c) && urt_task_equal(four[3], d));

    /* Detached, a is still listed, under a handle of its own that dies
     * with it. */
    EXPECT_EQ(urt_task_release(a), 0);
    urt_task got[16];
    EXPECT_EQ(urt_tasks(got, 16), 5);
    urt_task borrowed = got[1];
    EXPECT(!urt_task_equal(borrowed, a));
    EXPECT_EQ(urt_task_done(borrowed), 0);
    EXPECT_EQ(strcmp(urt_task_name(borrowed), "Task-2"), 0);
    EXPECT_EQ(urt_task_release(borrowed), URT_EBADTASK); /* released already */
    while (urt_tasks(NULL, 0) == 5) urt_sleep_ms(1);
    EXPECT_EQ(urt_task_done(borrowed), URT_EBADTASK);
    expect_tasks((urt_task[]){me, c, d, e}, 4);

    urt_task_cancel(c);
    urt_task_cancel(d);
    urt_task_cancel(e);
    EXPECT_EQ(urt_task_await(c, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_await(d, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_await(e, NULL), URT_ECANCELED);
    expect_tasks((urt_task[]){me}, 1);
    return 0;
}

/* asyncio.all_tasks: exactly the tasks not yet finished, by age, whatever
 * the slots they sit in. */
static void test_tasks_lists_live_tasks_oldest_first(void **state)
{
    (void)state;
    run_main(main_tasks_order, NULL);
}

static void test_tasks_outside_loop_is_zero(void **state)
{
    (void)state;
    urt_task t[2];
    assert_int_equal(urt_tasks(t, 2), 0);
    assert_int_equal(urt_tasks(NULL, 0), 0);
}

/* ---- the dump: every state and wait ---- */

struct scene {
    int pipe_r, pipe_w;
    int pipe2_r, pipe2_w;
    struct urt__waitq q;
    int parked_rc;
};

static intptr_t reader_task(void *arg)
{
    struct scene *s = arg;
    char c;
    return urt_read(s->pipe_r, &c, 1);
}

static intptr_t timed_reader_task(void *arg)
{
    struct scene *s = arg;
    char c;
    return urt_read_timeout(s->pipe2_r, &c, 1, 10000 * URT_NS_PER_MS);
}

static intptr_t parked_task(void *arg)
{
    struct scene *s = arg;
    struct urt__parked p;
    s->parked_rc = urt__park(urt__loop, &s->q, &p, urt__deadline_after(10000 * URT_NS_PER_MS));
    return s->parked_rc;
}

static intptr_t yielder_task(void *arg)
{
    (void)arg;
    while (urt_yield() == 0) {}
    return 0;
}

static intptr_t gatherer_task(void *arg)
{
    return urt_gather(arg, 3, 0, NULL, NULL);
}

static urt_task named(urt_fn fn, void *arg, const char *name)
{
    urt_task t = URT_TASK_NONE;
    EXPECT_EQ(urt_task_create_opts(&t, fn, arg, &(urt_task_opts){.name = name}), 0);
    return t;
}

/* The number after prefix must be a time left of at most max ms. */
static void expect_left(const char *text, const char *prefix, long long max)
{
    long long left = number_after(text, prefix);
    if (left < 1 || left > max) note_failure("%s: %lld ms left, want 1..%lld\n%s", prefix, left, max, text);
}

static intptr_t main_dump_states(void *arg)
{
    struct scene *s = arg;
    urt_task sleeper = named(sleep_ms_task, (void *)(uintptr_t)10000, "sleeper");   /* 2 */
    urt_task awaiter = named(await_task, &sleeper, "awaiter");                     /* 3 */
    urt_task done = named(return_at_once, NULL, "done");                           /* 4 */
    urt_task kids[3] = {done, sleeper, URT_TASK_NONE};
    kids[2] = named(sleep_ms_task, (void *)(uintptr_t)10000, "kid");               /* 5 */
    urt_task gatherer = named(gatherer_task, kids, "gatherer");                    /* 6 */
    urt_task reader = named(reader_task, s, "reader");                             /* 7 */
    urt_task timed = named(timed_reader_task, s, "timed");                         /* 8 */
    urt_task parked = named(parked_task, s, "parked");                             /* 9 */
    urt_task yielder = named(yielder_task, NULL, "yielder");                       /* 10 */
    yields(3);
    urt_task fresh = named(return_at_once, NULL, "bad\nname\"q");                  /* 11 */
    urt_task doomed;
    EXPECT_EQ(urt_task_create(&doomed, return_at_once, NULL), 0);                   /* 12 */
    EXPECT_EQ(urt_task_cancel(doomed), 1);

    int fd = new_memfd();
    EXPECT_EQ(urt_task_dump(fd), 0);
    read_file(fd);
    const char *text = file_buf;
    /* 11 live tasks: "done" has finished. */
    unsigned live, running, ready, waiting, inflight, background;
    int got = sscanf(text, "urt task dump: %u tasks (%u running, %u ready, %u waiting), %u SQEs "
                           "in flight (%u background)\n",
                     &live, &running, &ready, &waiting, &inflight, &background);
    EXPECT_EQ(got, 6);
    EXPECT_EQ(live, 11);
    EXPECT_EQ(running, 1);
    EXPECT_EQ(ready, 3);
    EXPECT_EQ(waiting, 7);
    EXPECT(inflight >= 5); /* two sleeps, two reads and a timeout, a park's timer */
    EXPECT_EQ(background, 0);
    EXPECT(has_line(text, "task 1 \"Task-1\" running"));
    expect_left(text, "task 2 \"sleeper\" waiting: sleep, ", 10000);
    EXPECT(has_line(text, "task 3 \"awaiter\" waiting: await task 2 \"sleeper\""));
    EXPECT_EQ(count_of(text, "\"done\""), 0);
    expect_left(text, "task 5 \"kid\" waiting: sleep, ", 10000);
    EXPECT(has_line(text, "task 6 \"gatherer\" waiting: gather of 3, 2 left"));
    char line[128];
    snprintf(line, sizeof line, "task 7 \"reader\" waiting: I/O on fd %d", s->pipe_r);
    EXPECT(has_line(text, line));
    snprintf(line, sizeof line, "task 8 \"timed\" waiting: I/O on fd %d, ", s->pipe2_r);
    expect_left(text, line, 10000);
    expect_left(text, "task 9 \"parked\" waiting: Test.wait, ", 10000);
    EXPECT(has_line(text, "task 10 \"yielder\" ready"));
    EXPECT(has_line(text, "task 11 \"bad?name'q\" new"));
    EXPECT(has_line(text, "task 12 \"Task-12\" new (cancel pending)"));
    /* Header, 11 tasks, the blank line that ends it. */
    EXPECT_EQ(count_lines(text), 13);
    EXPECT(strstr(text, "\n\n") == text + strlen(text) - 2);
    if (task_failure[0] == 0 && count_lines(text) != 13) note_failure("%s", text);

    /* urt_task_describe: the same line. */
    char buf[128];
    EXPECT_EQ(urt_task_describe(awaiter, buf, sizeof buf),
              (int)strlen("task 3 \"awaiter\" waiting: await task 2 \"sleeper\""));
    EXPECT_EQ(strcmp(buf, "task 3 \"awaiter\" waiting: await task 2 \"sleeper\""), 0);
    EXPECT(urt_task_describe(done, buf, sizeof buf) > 0);
    EXPECT_EQ(strcmp(buf, "task 4 \"done\" done"), 0);

    /* A wait kind this code has not heard of still makes a line. */
    struct urt__task *t = urt__task_lookup(urt__loop, sleeper);
    unsigned char kind = t->wait;
    t->wait = 250;
    EXPECT(urt_task_describe(sleeper, buf, sizeof buf) > 0);
    t->wait = kind;
    EXPECT_EQ(strcmp(buf, "task 2 \"sleeper\" waiting: wait kind 250"), 0);

    close(fd);
    /* Wake everything up, and check the park saw its cancellation. */
    EXPECT_EQ(write(s->pipe_w, "x", 1), 1);
    EXPECT_EQ(write(s->pipe2_w, "y", 1), 1);
    EXPECT_EQ(urt_task_await(reader, NULL), 0);
    EXPECT_EQ(urt_task_await(timed, NULL), 0);
    urt_task_cancel(sleeper);
    urt_task_cancel(kids[2]);
    urt_task_cancel(parked);
    urt_task_cancel(yielder);
    EXPECT_EQ(urt_task_await(parked, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_await(gatherer, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_await(awaiter, NULL), URT_ECANCELED);
    EXPECT_EQ(urt_task_await(yielder, NULL), 0);
    EXPECT_EQ(urt_task_await(fresh, NULL), 0);
    EXPECT_EQ(urt_task_await(doomed, NULL), URT_ECANCELED);
    return 0;
}

/* One line per live task, each with its state and what it waits on: a
 * sleep, an await, a gather, a read, a read with a deadline, a wait queue
 * with a deadline, a ready task, a new one, the running one. */
static void test_dump_names_each_task_state_and_wait(void **state)
{
    (void)state;
    struct scene s = {.q = {.what = "Test.wait"}};
    int p[2], p2[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(pipe2(p2, O_CLOEXEC), 0);
    s.pipe_r = p[0];
    s.pipe_w = p[1];
    s.pipe2_r = p2[0];
    s.pipe2_w = p2[1];
    run_main(main_dump_states, &s);
    assert_int_equal(s.parked_rc, URT_ECANCELED);
    close(p[0]);
    close(p[1]);
    close(p2[0]);
    close(p2[1]);
}

/* ---- the waits of wait, shield and task groups ---- */

static urt_task sleeping_child;

static intptr_t shield_task(void *arg)
{
    (void)arg;
    return urt_shield(sleeping_child, NULL);
}

static intptr_t wait_task(void *arg)
{
    (void)arg;
    return urt_wait(&sleeping_child, 1, URT_ALL_COMPLETED, URT_NO_TIMEOUT, NULL);
}

static intptr_t group_task(void *arg)
{
    urt_group g;
    EXPECT_EQ(urt_group_enter(&g), 0);
    EXPECT_EQ(urt_group_spawn(&g, NULL, sleep_ms_task, arg), 0);
    return urt_group_exit(&g, NULL, 0, NULL);
}

static intptr_t main_set_waits(void *arg)
{
    (void)arg;
    sleeping_child = named(sleep_ms_task, (void *)(uintptr_t)10000, "child");
    urt_task sh = named(shield_task, NULL, "sh");
    urt_task wt = named(wait_task, NULL, "wt");
    urt_task gr = named(group_task, (void *)(uintptr_t)10000, "gr");
    EXPECT_EQ(urt_sleep_ms(1), 0);
    char buf[128];
    EXPECT(urt_task_describe(sh, buf, sizeof buf) > 0);
    EXPECT_EQ(strcmp(buf, "task 3 \"sh\" waiting: shield of task 2 \"child\""), 0);
    EXPECT(urt_task_describe(wt, buf, sizeof buf) > 0);
    EXPECT_EQ(strcmp(buf, "task 4 \"wt\" waiting: wait of 1, 1 left"), 0);
    EXPECT(urt_task_describe(gr, buf, sizeof buf) > 0);
    EXPECT_EQ(strcmp(buf, "task 5 \"gr\" waiting: task group exit"), 0);
    urt_task all[4] = {sleeping_child, sh, wt, gr};
    for (int i = 0; i < 4; i++) urt_task_cancel(all[i]);
    for (int i = 0; i < 4; i++) EXPECT_EQ(urt_task_await(all[i], NULL), URT_ECANCELED);
    for (int i = 0; i < 4; i++) EXPECT_EQ(urt_task_release(all[i]), 0);
    return 0;
}

/* The dump names the waits of shield, urt_wait and a group's exit. */
static void test_dump_names_shield_wait_and_group(void **state)
{
    (void)state;
    run_main(main_set_waits, NULL);
}

/* ---- a dump from a small stack, longer than its buffer ---- */

#define MANY 200

static intptr_t small_stack_dumper(void *arg)
{
    int fd = *(int *)arg;
    return urt_task_dump(fd);
}

static intptr_t main_small_stack(void *arg)
{
    (void)arg;
    urt_task t[MANY];
    for (int i = 0; i < MANY; i++)
        EXPECT_EQ(urt_task_create(&t[i], sleep_ms_task, (void *)(uintptr_t)10000), 0);
    yields(1);
    int fd = new_memfd();
    urt_task dumper;
    EXPECT_EQ(urt_task_create_opts(&dumper, small_stack_dumper, &fd,
                                   &(urt_task_opts){.stack_size = URT_STACK_MIN, .name = "small"}),
              0);
    EXPECT_EQ(urt_task_await(dumper, NULL), 0);
    read_file(fd);
    /* Header, main, the dumper, MANY sleepers, the blank line. */
    EXPECT_EQ(count_lines(file_buf), MANY + 4);
    EXPECT(has_line(file_buf, "task 202 \"small\" running"));
    EXPECT(has_line(file_buf, "task 1 \"Task-1\" waiting: await task 202 \"small\""));
    for (int i = 0; i < MANY; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "task %d \"Task-%d\" waiting: sleep, ", i + 2, i + 2);
        expect_left(file_buf, prefix, 10000);
    }
    close(fd);
    for (int i = 0; i < MANY; i++) urt_task_cancel(t[i]);
    return 0;
}

/* Many times its 512-byte buffer, from a task on the smallest stack. */
static void test_dump_from_16k_stack_task(void **state)
{
    (void)state;
    run_main(main_small_stack, NULL);
}

/* ---- errors ---- */

static intptr_t main_dump_errors(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(urt_task_dump(-1), -EBADF);
    EXPECT_EQ(urt_task_dump(p[0]), -EBADF); /* not open for writing */
    int closed = dup(p[1]);
    close(closed);
    EXPECT_EQ(urt_task_dump(closed), -EBADF);
    close(p[0]);
    EXPECT_EQ(urt_task_dump(p[1]), -EPIPE); /* nobody reads: and no SIGPIPE */
    close(p[1]);

    char buf[8];
    memset(buf, 'x', sizeof buf);
    urt_task me = urt_task_current();
    int len = urt_task_describe(me, buf, sizeof buf);
    EXPECT_EQ(len, (int)strlen("task 1 \"Task-1\" running"));
    EXPECT_EQ(strcmp(buf, "task 1 "), 0); /* cut, NUL-terminated, as snprintf */
    EXPECT_EQ(urt_task_describe(me, NULL, 0), len);
    EXPECT_EQ(urt_task_describe(me, NULL, 1), -EFAULT);
    EXPECT_EQ(urt_task_describe(URT_TASK_NONE, buf, sizeof buf), URT_EBADTASK);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, return_at_once, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    EXPECT_EQ(urt_task_describe(t, buf, sizeof buf), URT_EBADTASK);
    return 0;
}

static void test_dump_and_describe_errors(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(urt_task_dump(2), URT_ENOLOOP);
    assert_int_equal(urt_task_describe(URT_TASK_NONE, buf, sizeof buf), URT_ENOLOOP);
    assert_int_equal(urt_task_dump_on_signal(SIGUSR1, 2), URT_ENOLOOP);
    run_main(main_dump_errors, NULL);
}

/* ---- the dump on a signal ---- */

/* Counts deliveries of SIGUSR1/SIGUSR2 to a handler: a signal that urt
 * gave back to the thread ends up here rather than killing the test. */
static volatile sig_atomic_t handled[2];

static void on_usr(int sig)
{
    handled[sig == SIGUSR2]++;
}

static struct sigaction saved_usr1, saved_usr2;

static void install_handlers(void)
{
    handled[0] = handled[1] = 0;
    struct sigaction sa = {.sa_handler = on_usr};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &saved_usr1);
    sigaction(SIGUSR2, &sa, &saved_usr2);
}

static void restore_handlers(void)
{
    sigaction(SIGUSR1, &saved_usr1, NULL);
    sigaction(SIGUSR2, &saved_usr2, NULL);
}

static bool blocked(int sig)
{
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    return sigismember(&now, sig);
}

static bool pending(int sig)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, sig);
}

/* Sleeps 1 ms at a time until fd holds n dumps; false after 5 s. */
static bool wait_dumps(int fd, size_t n)
{
    for (int i = 0; i < 5000; i++) {
        read_file(fd);
        if (count_of(file_buf, "urt task dump on signal") >= n) return true;
        urt_sleep_ms(1);
    }
    return false;
}

static intptr_t main_on_signal(void *arg)
{
    int fd = *(int *)arg;
    urt_task sleeper = named(sleep_ms_task, (void *)(uintptr_t)10000, "sleeper");
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    EXPECT(blocked(SIGUSR1));
    for (size_t i = 1; i <= 3; i++) {
        if (i == 2)
            kill(getpid(), SIGUSR1); /* to the process, not the thread */
        else
            raise(SIGUSR1);
        EXPECT(wait_dumps(fd, i));
        /* And no second one for the same signal. */
        yields(5);
        urt_sleep_ms(2);
        read_file(fd);
        EXPECT_EQ(count_of(file_buf, "urt task dump on signal"), i);
    }
    char header[64];
    snprintf(header, sizeof header, "urt task dump on signal %d: 2 tasks (", SIGUSR1);
    EXPECT(strncmp(file_buf, header, strlen(header)) == 0);
    EXPECT(strstr(file_buf, "(0 background)\n") != NULL); /* its own CQE is in */
    EXPECT(strstr(file_buf, "\ntask 1 \"Task-1\" waiting: sleep, ") != NULL);
    EXPECT(strstr(file_buf, "\ntask 2 \"sleeper\" waiting: sleep, ") != NULL);
    EXPECT_EQ(handled[0], 0);
    urt_task_cancel(sleeper);
    return 0;
}

/* One dump per signal, from the loop, whether the signal was sent to the
 * thread or to the process; at the end no fd, mask change or pending
 * signal is left behind. */
static void test_dump_on_signal_writes_one_dump_per_signal(void **state)
{
    (void)state;
    install_handlers();
    int fd = new_memfd();
    assert_false(blocked(SIGUSR1));
    run_main(main_on_signal, &fd); /* run_checked: no fd left open */
    assert_false(blocked(SIGUSR1));
    assert_false(pending(SIGUSR1));
    assert_int_equal(handled[0], 0);
    raise(SIGUSR1); /* the thread's again */
    assert_int_equal(handled[0], 1);
    restore_handlers();
    close(fd);
}

static intptr_t main_off_again(void *arg)
{
    int fd = *(int *)arg;
    int fds = count_open_fds();
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    EXPECT_EQ(count_open_fds(), fds + 2); /* the signalfd and our duplicate */
    raise(SIGUSR1);
    EXPECT(wait_dumps(fd, 1));

    EXPECT_EQ(urt_task_dump_on_signal(0, fd), 0);
    EXPECT(!blocked(SIGUSR1));
    yields(2); /* the poll's cancellation is in: the signalfd closes */
    EXPECT_EQ(count_open_fds(), fds);
    raise(SIGUSR1); /* the program's handler, no dump */
    EXPECT_EQ(handled[0], 1);
    urt_sleep_ms(2);
    read_file(fd);
    EXPECT_EQ(count_of(file_buf, "urt task dump on signal"), 1);

    /* On again, and off with fd -1; off twice does nothing. */
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    raise(SIGUSR1);
    EXPECT(wait_dumps(fd, 2));
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, -1), 0);
    EXPECT_EQ(urt_task_dump_on_signal(0, -1), 0);
    EXPECT(!blocked(SIGUSR1));
    yields(2);
    EXPECT_EQ(count_open_fds(), fds);

    /* On, off and on again before the cancelled poll's CQE could come. */
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    yields(1);
    EXPECT_EQ(urt_task_dump_on_signal(0, -1), 0);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    raise(SIGUSR1);
    EXPECT(wait_dumps(fd, 3));
    EXPECT_EQ(handled[0], 1);
    return 0;
}

/* signo 0 or fd -1 turns it off: the signal is the thread's again at once,
 * and urt's fds are closed. */
static void test_dump_on_signal_off_again(void **state)
{
    (void)state;
    install_handlers();
    int fd = new_memfd();
    run_main(main_off_again, &fd);
    assert_false(blocked(SIGUSR1));
    assert_int_equal(handled[0], 1);
    restore_handlers();
    close(fd);
}

static intptr_t main_replace(void *arg)
{
    int *fds = arg;
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fds[0]), 0);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR2, fds[1]), 0);
    EXPECT(!blocked(SIGUSR1));
    EXPECT(blocked(SIGUSR2));
    raise(SIGUSR2);
    EXPECT(wait_dumps(fds[1], 1));
    raise(SIGUSR1);
    EXPECT_EQ(handled[0], 1);
    /* The same signal, another fd. */
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR2, fds[0]), 0);
    raise(SIGUSR2);
    EXPECT(wait_dumps(fds[0], 1));
    read_file(fds[1]);
    EXPECT_EQ(count_of(file_buf, "urt task dump on signal"), 1);
    EXPECT_EQ(handled[1], 0);
    /* Replaced twice, still given back as it was before the first call. */
    EXPECT_EQ(urt_task_dump_on_signal(0, -1), 0);
    EXPECT(!blocked(SIGUSR2));
    return 0;
}

/* A second call replaces the first: the first signal is given back. */
static void test_dump_on_signal_second_call_replaces_first(void **state)
{
    (void)state;
    install_handlers();
    int fds[2] = {new_memfd(), new_memfd()};
    run_main(main_replace, fds);
    assert_false(blocked(SIGUSR1));
    assert_false(blocked(SIGUSR2));
    assert_int_equal(handled[0], 1);
    assert_int_equal(handled[1], 0);
    restore_handlers();
    close(fds[0]);
    close(fds[1]);
}

static intptr_t main_raise_and_return(void *arg)
{
    int fd = *(int *)arg;
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR2, fd), 0);
    raise(SIGUSR2);
    return 0; /* no suspension: the loop ends with it pending */
}

static intptr_t main_raise_and_turn_off(void *arg)
{
    int fd = *(int *)arg;
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR2, fd), 0);
    yields(2); /* its poll is in the kernel */
    raise(SIGUSR2);
    EXPECT_EQ(urt_task_dump_on_signal(0, -1), 0); /* before the loop reads it */
    EXPECT(!blocked(SIGUSR2));
    EXPECT(!pending(SIGUSR2));
    EXPECT_EQ(handled[1], 0);
    yields(2);
    read_file(fd);
    EXPECT_EQ(count_of(file_buf, "urt task dump"), 0);
    return 0;
}

/* A signal sent but not read yet when the dump is turned off is taken
 * without a dump: given back pending, it would do its default action. */
static void test_dump_on_signal_pending_when_turned_off_is_discarded(void **state)
{
    (void)state;
    install_handlers();
    int fd = new_memfd();
    run_main(main_raise_and_turn_off, &fd);
    assert_false(pending(SIGUSR2));
    assert_int_equal(handled[1], 0);
    restore_handlers();
    close(fd);
}

/* A signal that arrives as the loop ends does not do its default action
 * (or the program's handler) once the loop gives it back. */
static void test_dump_on_signal_pending_at_loop_end_is_discarded(void **state)
{
    (void)state;
    install_handlers();
    int fd = new_memfd();
    run_main(main_raise_and_return, &fd);
    assert_false(blocked(SIGUSR2));
    assert_false(pending(SIGUSR2));
    assert_int_equal(handled[1], 0);
    restore_handlers();
    close(fd);
}

static intptr_t main_keeps_mask(void *arg)
{
    int fd = *(int *)arg;
    EXPECT(blocked(SIGUSR2));
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR2, fd), 0);
    raise(SIGUSR2);
    EXPECT(wait_dumps(fd, 1));
    EXPECT_EQ(urt_task_dump_on_signal(0, -1), 0);
    EXPECT(blocked(SIGUSR2)); /* it was the thread's choice */
    raise(SIGUSR2);
    EXPECT(pending(SIGUSR2)); /* left for the thread's own sigwait */
    return 0;
}

/* A signal the thread had blocked stays blocked after, and one that comes
 * after urt let go of it is the thread's. */
static void test_dump_on_signal_leaves_a_blocked_signal_blocked(void **state)
{
    (void)state;
    install_handlers();
    sigset_t usr2, old;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, &old);
    int fd = new_memfd();
    run_main(main_keeps_mask, &fd);
    assert_true(blocked(SIGUSR2));
    assert_true(pending(SIGUSR2));
    int sig = 0;
    assert_int_equal(sigwait(&usr2, &sig), 0);
    assert_int_equal(sig, SIGUSR2);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(handled[1], 0);
    restore_handlers();
    close(fd);
}

struct parked_only {
    struct urt__waitq q;
};

static intptr_t main_park_forever(void *arg)
{
    struct parked_only *po = arg;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, fd), 0);
    close(fd);
    struct urt__parked p;
    /* Nothing can wake this: the loop must see that its signal's poll is
     * no reason to wait, and cancel. */
    return urt__park(urt__loop, &po->q, &p, 0);
}

/* The signal's SQE is in the background: it does not keep the loop alive. */
static void test_dump_on_signal_does_not_keep_loop_alive(void **state)
{
    (void)state;
    struct parked_only po = {.q = {.what = "nothing"}};
    alarm(30); /* should the loop wait forever */
    assert_int_equal(run_checked(main_park_forever, &po, NULL), URT_ECANCELED);
    alarm(0);
    assert_false(blocked(SIGUSR1));
}

static intptr_t main_signal_errors(void *arg)
{
    (void)arg;
    int fd = new_memfd();
    int sigs[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGPIPE,
                  -1, 4096, SIGRTMIN - 1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        EXPECT_EQ(urt_task_dump_on_signal(sigs[i], fd), -EINVAL);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, -2), -EBADF);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, 12345), -EBADF);
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(urt_task_dump_on_signal(SIGUSR1, ro), -EBADF);
    close(ro);
    /* Nothing of it stayed. */
    EXPECT(!blocked(SIGUSR1));
    EXPECT(!blocked(SIGKILL));
    close(fd);
    return 0;
}

static void test_dump_on_signal_errors(void **state)
{
    (void)state;
    run_main(main_signal_errors, NULL);
}

/* ---- runner ---- */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    return urt_sleep_ms(1);
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
        cmocka_unit_test(test_tasks_lists_live_tasks_oldest_first),
        cmocka_unit_test(test_tasks_outside_loop_is_zero),
        cmocka_unit_test(test_dump_names_each_task_state_and_wait),
        cmocka_unit_test(test_dump_names_shield_wait_and_group),
        cmocka_unit_test(test_dump_from_16k_stack_task),
        cmocka_unit_test(test_dump_and_describe_errors),
        cmocka_unit_test(test_dump_on_signal_writes_one_dump_per_signal),
        cmocka_unit_test(test_dump_on_signal_off_again),
        cmocka_unit_test(test_dump_on_signal_second_call_replaces_first),
        cmocka_unit_test(test_dump_on_signal_pending_when_turned_off_is_discarded),
        cmocka_unit_test(test_dump_on_signal_pending_at_loop_end_is_discarded),
        cmocka_unit_test(test_dump_on_signal_leaves_a_blocked_signal_blocked),
        cmocka_unit_test(test_dump_on_signal_does_not_keep_loop_alive),
        cmocka_unit_test(test_dump_on_signal_errors),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
