/*
 * The I/O core (urt.h "I/O"; SEMANTICS 3.3, 3.5, 5 and 6) on real pipes:
 * poll, cancellation and timeouts that leave the caller's buffer and the
 * data alone, data winning over a cancellation of the same instant,
 * urt_close cancelling what is in flight on its fd, O_NONBLOCK fds, whole
 * transfers, a ring too small for the work given to it, and bad input.
 *
 * Most tests run once per feature mask (URT_KERNEL=5.6, 5.10, and the
 * opcodes READ/WRITE/CLOSE... masked off) so that every fallback path of the
 * runtime runs on this kernel too; each masked run first checks, through
 * the loop's feature table, that the mask took effect.
 *
 * Checks made inside tasks never call cmocka's assert macros (a longjmp
 * out of a fiber would wreck the loop); they record the first failure and
 * the test asserts none was recorded after urt_run returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "masks.h"

/* ---- feature masks ----------------------------------------------------- */

static const struct mask masks[] = {
    {NULL, NULL, {IORING_OP_NOP}, 0},
    /* The oldest kernel urt supports: READ/WRITE/CLOSE/OPENAT/STATX are
     * there (5.6); SHUTDOWN, RENAMEAT, UNLINKAT (5.11), MKDIRAT (5.15) and
     * SOCKET (5.19) are not, nor the ring's newer modes (COOP_TASKRUN,
     * SINGLE_ISSUER, DEFER_TASKRUN) or cancel-by-fd (5.19): urt_close
     * cancels op by op. */
    {"URT_KERNEL", "5.6",
     {IORING_OP_SHUTDOWN, IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT,
      IORING_OP_SOCKET},
     5},
    {"URT_KERNEL", "5.10",
     {IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT, IORING_OP_SOCKET},
     4},
    /* 5.6 still has every opcode the pipe and file calls use; only these
     * names make the READV/WRITEV and close(2) fallbacks run. */
    {"URT_FEATURES_OFF",
     "op_read,op_write,op_close,op_openat,op_statx,op_renameat,op_unlinkat,op_mkdirat",
     {IORING_OP_READ, IORING_OP_WRITE, IORING_OP_CLOSE, IORING_OP_OPENAT, IORING_OP_STATX,
      IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT},
     8},
};
#define NMASKS (sizeof masks / sizeof masks[0])

/* Called first by every masked task: the run really uses the mask (and the
 * unmasked run really has the opcodes, or it would test nothing new). */
static void check_mask(void)
{
    const struct mask *m;
    const struct urt_loop *loop = mask_loop_checked(&masks[0], &m);
    if (!loop) return;
    if (!m->var && !getenv("URT_KERNEL") && !getenv("URT_FEATURES_OFF")) {
        EXPECT_EQ(urt__has_op(loop, IORING_OP_READ), 1);
        EXPECT_EQ(urt__has_op(loop, IORING_OP_WRITE), 1);
        EXPECT_EQ(urt__has_op(loop, IORING_OP_CLOSE), 1);
    }
}

static void run_one(const struct mask *m, urt_fn fn, void *arg)
{
    run_masked(m, fn, arg);
}

static void run_main_plain(urt_fn fn, void *arg)
{
    run_one(&masks[0], fn, arg);
}

/* ---- helpers ------------------------------------------------------------- */

static bool all_bytes(const unsigned char *p, size_t len, unsigned char c)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != c) return false;
    return true;
}

static const char *code(long long r)
{
    static char other[8][32];
    static unsigned next;
    switch (r) {
    case URT_ECANCELED: return "ECANCELED";
    case URT_ETIMEDOUT: return "ETIMEDOUT";
    case URT_ENOLOOP: return "ENOLOOP";
    case -EBADF: return "EBADF";
    case -EAGAIN: return "EAGAIN";
    case -EPIPE: return "EPIPE";
    case -ENODATA: return "ENODATA";
    default: {
        char *s = other[next++ % 8];
        snprintf(s, sizeof other[0], "%lld", r);
        return s;
    }
    }
}

/* Runs body as a task and waits for it at most 10 s: a runtime that lost
 * a timeout then fails the test instead of hanging it. */
static intptr_t guarded(urt_fn body)
{
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, body, NULL), 0);
    EXPECT_EQ(await_within(t, 10000, NULL), 0);
    return 0;
}

/* How long an operation that should end at once may take on this shared
 * machine, under valgrind too. */
#define PROMPT_NS (500 * URT_NS_PER_MS)

/* poll(2) on a pipe's write end reports POLLERR once nothing holds the
 * read end any more: no fd, and no operation in the kernel either. */
static bool readers_gone(int wfd)
{
    struct pollfd p = {.fd = wfd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/* Bytes waiting in a pipe, asked of the kernel without urt. */
static int pipe_bytes(int fd)
{
    int n = -1;
    return ioctl(fd, FIONREAD, &n) == 0 ? n : -errno;
}

/* Reads whatever the pipe holds with read(2): at most cap bytes. */
static size_t drain(int fd, unsigned char *buf, size_t cap)
{
    int n = pipe_bytes(fd);
    if (n <= 0) return 0;
    ssize_t r = read(fd, buf, (size_t)n < cap ? (size_t)n : cap);
    return r > 0 ? (size_t)r : 0;
}

/* ---- urt_poll ------------------------------------------------------------ */

struct poller {
    int fd;
    short events;
    int res;
};

static intptr_t poller_fn(void *arg)
{
    struct poller *p = arg;
    trace("P polls");
    p->res = urt_poll(p->fd, p->events);
    trace("P got %s", p->res == POLLIN ? "POLLIN" : code(p->res));
    return 0;
}

static intptr_t ticker_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        trace("T tick %d", i);
        EXPECT_EQ(urt_yield(), 0);
    }
    return 0;
}

static intptr_t main_poll_waits(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct poller pl = {.fd = p[0], .events = POLLIN};
    urt_task tp, tt;
    EXPECT_EQ(urt_task_create(&tp, poller_fn, &pl), 0);
    EXPECT_EQ(urt_task_create(&tt, ticker_fn, NULL), 0);
    trace("main sleeps");
    EXPECT_EQ(urt_sleep_ms(20), 0);
    trace("main writes");
    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_EQ(await_within(tp, 5000, NULL), 0);
    EXPECT_EQ(await_within(tt, 5000, NULL), 0);
    EXPECT_EQ(pl.res, POLLIN);
    /* The write end of an empty pipe is ready for writing at once. */
    EXPECT_EQ(urt_poll(p[1], POLLOUT), POLLOUT);
    /* Poll only reports readiness: the byte is still there. */
    char c = 0;
    EXPECT_EQ(urt_read(p[0], &c, 1), 1);
    EXPECT_EQ(c, 'x');
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header (urt_poll): blocks until the fd is ready and returns the ready
 * events; meanwhile other tasks run (SEMANTICS 1.3: a suspension point).
 * The ticker's three turns come between the poll and its result. */
static void test_poll_waits_until_readable_while_others_run(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        run_one(&masks[m], main_poll_waits, NULL);
        assert_trace("main sleeps", "P polls", "T tick 0", "T tick 1", "T tick 2", "main writes",
                     "P got POLLIN");
    }
}

static intptr_t main_poll_timeout_body(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_poll_timeout(p[0], POLLIN, 30 * URT_NS_PER_MS), URT_ETIMEDOUT);
    uint64_t took = urt_now() - t0;
    EXPECT(took >= 30 * URT_NS_PER_MS);
    EXPECT(took < 30 * URT_NS_PER_MS + PROMPT_NS);
    /* 0: give up at once unless ready. */
    t0 = urt_now();
    EXPECT_EQ(urt_poll_timeout(p[0], POLLIN, 0), URT_ETIMEDOUT);
    EXPECT(urt_now() - t0 < PROMPT_NS);
    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_EQ(urt_poll_timeout(p[0], POLLIN, 0), POLLIN);
    EXPECT_EQ(urt_poll_timeout(p[0], POLLIN, 30 * URT_NS_PER_MS), POLLIN);
    close(p[0]);
    close(p[1]);
    return 0;
}

static intptr_t main_poll_timeout(void *arg)
{
    (void)arg;
    check_mask();
    return guarded(main_poll_timeout_body);
}

/* Header (urt_poll_timeout; SEMANTICS 3.5): an fd that stays unready gives
 * URT_ETIMEDOUT, never before the timeout; a ready one gives its events
 * even with a timeout of 0. */
static void test_poll_timeout_returns_etimedout_after_timeout(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_poll_timeout, NULL);
}

static intptr_t main_poll_bad_fd(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    int closed = p[0];
    close(p[0]);
    close(p[1]);
    EXPECT_EQ(urt_poll(-1, POLLIN), -EBADF);
    EXPECT_EQ(urt_poll(closed, POLLIN), -EBADF);
    EXPECT_EQ(urt_poll_timeout(closed, POLLIN, 10 * URT_NS_PER_MS), -EBADF);
    return 0;
}

/* Header (urt_poll): a bad fd gives -EBADF (the header lists no POLLNVAL
 * mask: poll(2) would report one, io_uring's POLL_ADD fails the lookup). */
static void test_poll_bad_fd_is_ebadf(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_poll_bad_fd, NULL);
}

/* Virtual memory of the process, in KiB (VmSize). */
static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

static long vm_growth_kib;

static intptr_t main_huge_fd(void *arg)
{
    (void)arg;
    char c;
    long before = vm_size_kib();
    EXPECT_EQ(urt_poll(INT_MAX, POLLIN), -EBADF);
    EXPECT_EQ(urt_read(INT_MAX - 1, &c, 1), -EBADF);
    EXPECT_EQ(urt_close(INT_MAX), -EBADF);
    vm_growth_kib = vm_size_kib() - before;
    return 0;
}

/* SEMANTICS 6: a bad fd is a clear error, whatever its number.  An fd
 * number near INT_MAX cannot be open (RLIMIT_NOFILE is far lower), so it
 * must cost no memory in urt's per-fd bookkeeping: the process may not
 * grow by gigabytes (or abort, under ASan) to say -EBADF.  Last in the
 * list, since under ASan the failure it guards against aborts the run. */
static void test_huge_fd_number_is_ebadf_without_huge_allocation(void **state)
{
    (void)state;
    run_main_plain(main_huge_fd, NULL);
    if (vm_growth_kib > 1024 * 1024) print_error("VmSize grew by %ld KiB\n", vm_growth_kib);
    assert_true(vm_growth_kib < 1024 * 1024);
}

/* ---- cancellation and timeouts leave buffer and data alone (3.3) ---- */

#define MSG 64

struct reader {
    int fd;
    uint64_t timeout; /* URT_NO_TIMEOUT: urt_read */
    int wait_turns;   /* main's yields before it acts */
    unsigned char buf[MSG];
    ssize_t res;
    uint64_t took;
};

static intptr_t reader_fn(void *arg)
{
    struct reader *r = arg;
    trace("R reads");
    uint64_t t0 = urt_now();
    r->res = r->timeout == URT_NO_TIMEOUT ? urt_read(r->fd, r->buf, sizeof r->buf)
                                          : urt_read_timeout(r->fd, r->buf, sizeof r->buf, r->timeout);
    r->took = urt_now() - t0;
    trace("R got %s", code(r->res));
    return 0;
}

/* After the read ended without data: nothing reached the buffer, and all
 * the data written afterwards goes to the next read.  The sleep gives an
 * operation the runtime failed to stop the time to steal the data. */
static void check_untouched_then_next_read_gets_all(struct reader *r, int wfd)
{
    trace("main writes");
    unsigned char msg[MSG], got[2 * MSG];
    fill(msg, MSG, 0, 1);
    EXPECT_EQ(write(wfd, msg, MSG), MSG);
    EXPECT_EQ(urt_sleep_ms(10), 0);
    EXPECT(all_bytes(r->buf, sizeof r->buf, CANARY));
    memset(got, 0, sizeof got);
    EXPECT_EQ(urt_read_timeout(r->fd, got, sizeof got, 2 * URT_NS_PER_S), MSG);
    EXPECT_EQ(mismatch(got, MSG, 0, 1), -1);
}

static intptr_t main_cancel_read(void *arg)
{
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct reader *r = calloc(1, sizeof *r); /* outlives the reader's stack */
    r->fd = p[0];
    r->timeout = URT_NO_TIMEOUT;
    memset(r->buf, CANARY, sizeof r->buf);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, reader_fn, r), 0);
    yields((int)(intptr_t)arg);
    trace("main cancels");
    EXPECT_EQ(urt_task_cancel(t), 1);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT_EQ(r->res, URT_ECANCELED);
    check_untouched_then_next_read_gets_all(r, p[1]);
    free(r);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* SEMANTICS 3.3, header "Cancellation": a task cancelled in urt_read gets
 * URT_ECANCELED, and once it has, the kernel no longer touches its buffer
 * (the canary survives data written afterwards) and nothing is lost (the
 * next read gets every byte).  Run with the cancel requested after one
 * yield of main (the read's SQE is prepared, not yet submitted) and after
 * three (it is in the kernel, waiting on the empty pipe). */
static void test_cancelled_read_leaves_buffer_untouched_and_data_for_next_read(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        for (intptr_t turns = 1; turns <= 3; turns += 2) {
            run_one(&masks[m], main_cancel_read, (void *)turns);
            assert_trace("R reads", "main cancels", "R got ECANCELED", "main writes");
        }
    }
}

static intptr_t main_timed_out_read(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct reader *r = calloc(1, sizeof *r);
    r->fd = p[0];
    r->timeout = 30 * URT_NS_PER_MS;
    memset(r->buf, CANARY, sizeof r->buf);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, reader_fn, r), 0);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT_EQ(r->res, URT_ETIMEDOUT);
    EXPECT(r->took >= 30 * URT_NS_PER_MS);
    EXPECT(r->took < 30 * URT_NS_PER_MS + PROMPT_NS);
    check_untouched_then_next_read_gets_all(r, p[1]);
    free(r);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* SEMANTICS 3.5 (a timeout is a cancellation with another code), header
 * "Deadlines": urt_read_timeout on an empty pipe gives URT_ETIMEDOUT no
 * sooner than its timeout, with the same guarantees as 3.3. */
static void test_timed_out_read_leaves_buffer_untouched_and_data_for_next_read(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        run_one(&masks[m], main_timed_out_read, NULL);
        assert_trace("R reads", "R got ETIMEDOUT", "main writes");
    }
}

struct winner {
    int fd;
    unsigned char buf[MSG];
    ssize_t res;
    int yield1, yield2;
};

static intptr_t data_reader_fn(void *arg)
{
    struct winner *w = arg;
    trace("R reads");
    w->res = urt_read(w->fd, w->buf, sizeof w->buf);
    trace("R got %s", code(w->res));
    w->yield1 = urt_yield();
    trace("R yield %s", code(w->yield1));
    w->yield2 = urt_yield(); /* a cancellation is delivered once */
    trace("R yield %s", code(w->yield2));
    return 7;
}

enum race {
    /* main yields once: the reader's READ is prepared, not yet submitted.
     * main writes MSG bytes with write(2), then cancels the reader: the
     * cancel request goes to the kernel behind the READ, which finds the
     * data and completes at once; the cancel finds nothing left. */
    RACE_UNSUBMITTED = 1,
    /* main yields three times: the READ waits in the kernel on the empty
     * pipe.  main writes, then yields once more: at the start of that turn
     * the loop reaps the READ's completion and queues the reader behind
     * main, which yielded first, so main runs first and cancels a reader
     * whose operation has ended but who has not resumed yet. */
    RACE_COMPLETED,
    /* As RACE_COMPLETED, but main cancels right after write(2).  Whether
     * the kernel has completed the READ by then is its business (at once
     * with task work run on the way back from write(2); not before the
     * loop asks, with DEFER_TASKRUN), so either outcome is right, as long
     * as nothing is lost or read twice. */
    RACE_SAME_INSTANT,
};

static intptr_t main_data_wins(void *arg)
{
    enum race race = (enum race)(intptr_t)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct winner *w = calloc(1, sizeof *w);
    w->fd = p[0];
    memset(w->buf, CANARY, sizeof w->buf);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, data_reader_fn, w), 0);
    yields(race == RACE_UNSUBMITTED ? 1 : 3);
    trace("main writes and cancels");
    unsigned char msg[MSG];
    fill(msg, MSG, 0, 2);
    EXPECT_EQ(write(p[1], msg, MSG), MSG);
    if (race == RACE_COMPLETED) yields(1);
    EXPECT_EQ(urt_task_cancel(t), 1);
    intptr_t v = 0;
    EXPECT_EQ(urt_task_await(t, &v), 0);
    EXPECT_EQ(v, 7);
    EXPECT_EQ(urt_task_cancelled(t), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    unsigned char extra[2 * MSG];
    if (race != RACE_SAME_INSTANT || w->res == MSG) {
        /* Data won: the read has it, the cancellation came at the next
         * suspension point, and the pipe is empty (nothing read twice). */
        EXPECT_EQ(w->res, MSG);
        EXPECT_EQ(mismatch(w->buf, MSG, 0, 2), -1);
        EXPECT_EQ(w->yield1, URT_ECANCELED);
        EXPECT_EQ(w->yield2, 0);
        EXPECT_EQ(pipe_bytes(p[0]), 0);
    } else {
        /* The cancel won: the buffer is untouched and every byte is still
         * in the pipe for the next read. */
        EXPECT_EQ(w->res, URT_ECANCELED);
        EXPECT(all_bytes(w->buf, sizeof w->buf, CANARY));
        EXPECT_EQ(w->yield1, 0);
        EXPECT_EQ(pipe_bytes(p[0]), MSG);
        EXPECT_EQ(drain(p[0], extra, sizeof extra), MSG);
        EXPECT_EQ(mismatch(extra, MSG, 0, 2), -1);
    }
    free(w);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header "Cancellation": "If the operation completed in the same instant,
 * data wins: the call returns its result, and the cancellation comes at
 * the task's next suspension point."  Three orders of write and cancel in
 * one turn of main, explained at enum race. */
static void test_read_completed_when_cancelled_returns_data_then_cancels(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        for (intptr_t race = RACE_UNSUBMITTED; race <= RACE_SAME_INSTANT; race++) {
            run_one(&masks[m], main_data_wins, (void *)race);
            if (race == RACE_SAME_INSTANT && strcmp(trace_buf[2], "R got 64") != 0) {
                assert_trace("R reads", "main writes and cancels", "R got ECANCELED",
                             "R yield 0", "R yield 0");
                continue;
            }
            assert_trace("R reads", "main writes and cancels", "R got 64", "R yield ECANCELED",
                         "R yield 0");
        }
    }
}

/* ---- urt_close cancels what is in flight ------------------------------- */

struct closing {
    int rfd, wfd;
    unsigned char buf[16];
    ssize_t read_res;
    int poll_res;
};

static intptr_t close_reader_fn(void *arg)
{
    struct closing *c = arg;
    trace("A reads");
    c->read_res = urt_read(c->rfd, c->buf, sizeof c->buf);
    trace("A got %s", code(c->read_res));
    return 0;
}

static intptr_t close_poller_fn(void *arg)
{
    struct closing *c = arg;
    trace("P polls");
    c->poll_res = urt_poll(c->rfd, POLLIN);
    trace("P got %s", code(c->poll_res));
    return 0;
}

struct fresh {
    int fd;
    char buf[32];
    ssize_t res;
};

static intptr_t fresh_reader_fn(void *arg)
{
    struct fresh *f = arg;
    f->res = urt_read_timeout(f->fd, f->buf, sizeof f->buf, 2 * URT_NS_PER_S);
    return 0;
}

static intptr_t main_close_cancels(void *arg)
{
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct closing *c = calloc(1, sizeof *c);
    c->rfd = p[0];
    c->wfd = p[1];
    memset(c->buf, CANARY, sizeof c->buf);
    urt_task a, pt;
    EXPECT_EQ(urt_task_create(&a, close_reader_fn, c), 0);
    EXPECT_EQ(urt_task_create(&pt, close_poller_fn, c), 0);
    yields((int)(intptr_t)arg);
    trace("main closes");
    int rc = urt_close(p[0]);
    trace("main closed %d", rc);
    EXPECT_EQ(rc, 0);
    /* When close returns, no operation holds the read end any more: the
     * pipe has no reader, which poll(2) on the write end reports. */
    EXPECT(readers_gone(p[1]));
    /* The number is free and the next pipe takes it (lowest free fd). */
    int q[2];
    EXPECT_EQ(pipe2(q, O_CLOEXEC), 0);
    EXPECT_EQ(q[0], p[0]);
    EXPECT_EQ(write(q[1], "fresh data", 10), 10);
    struct fresh f = {.fd = q[0]};
    urt_task ft;
    EXPECT_EQ(urt_task_create(&ft, fresh_reader_fn, &f), 0);
    EXPECT_EQ(await_within(ft, 5000, NULL), 0);
    EXPECT_EQ(f.res, 10);
    EXPECT_EQ(memcmp(f.buf, "fresh data", 10), 0);
    EXPECT_EQ(await_within(a, 5000, NULL), 0);
    EXPECT_EQ(await_within(pt, 5000, NULL), 0);
    EXPECT_EQ(c->read_res, -EBADF);
    EXPECT_EQ(c->poll_res, -EBADF);
    EXPECT(all_bytes(c->buf, sizeof c->buf, CANARY));
    free(c);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    return 0;
}

/* Header (urt_close): operations in flight on the fd (a read and a poll,
 * in two tasks) are cancelled and return -EBADF, and the fd is closed only
 * once the kernel has let go of each: when urt_close returns 0 the pipe has
 * no reader left, and a new pipe that gets the same fd number at once is
 * not read by the old operations (its data reaches a new reader intact).
 * The trace shows close returning after the tasks it cut short have seen
 * their -EBADF (the order the runtime guarantees since 37f27e3). 
 * With one yield the read's SQE is still unsubmitted when close is called
 * (submitted later it would name the new pipe); with three it is waiting
 * in the kernel. */
static void test_close_cancels_inflight_ops_before_the_fd_number_is_reused(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        for (intptr_t turns = 1; turns <= 3; turns += 2) {
            run_one(&masks[m], main_close_cancels, (void *)turns);
            /* A and P in the order their ops' completions came, both
             * before close returns. */
            if (trace_count == 6 && strcmp(trace_buf[3], "P got EBADF") == 0)
                assert_trace("A reads", "P polls", "main closes", "P got EBADF", "A got EBADF",
                             "main closed 0");
            else
                assert_trace("A reads", "P polls", "main closes", "A got EBADF", "P got EBADF",
                             "main closed 0");
        }
    }
}

struct closer {
    int fd;
    int rc, fcntl_errno, yield_rc;
    ssize_t read_res;
    urt_task self;
};

static intptr_t closer_reader_fn(void *arg)
{
    struct closer *c = arg;
    char b;
    trace("A reads");
    c->read_res = urt_read(c->fd, &b, 1);
    trace("A got %s", code(c->read_res));
    return 0;
}

static intptr_t closer_fn(void *arg)
{
    struct closer *c = arg;
    trace("B closes");
    c->rc = urt_close(c->fd);
    errno = 0;
    c->fcntl_errno = fcntl(c->fd, F_GETFD) == -1 ? errno : 0;
    trace("B closed %d", c->rc);
    c->yield_rc = urt_yield();
    trace("B yield %s", code(c->yield_rc));
    return 0;
}

static intptr_t canceller_fn(void *arg)
{
    struct closer *c = arg;
    trace("C cancels");
    EXPECT_EQ(urt_task_cancel(c->self), 1);
    return 0;
}

/*
 * A, B and C start in one turn.  A's read is in flight when B calls
 * urt_close: close cancels it, then waits behind A (whose read must see its
 * -EBADF first).  Meanwhile C, still in the same turn, cancels B.  The
 * close goes on regardless and returns 0 with the fd really closed, and B
 * gets URT_ECANCELED at its next suspension point, the yield.
 */
static intptr_t main_close_not_cancellable(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct closer c = {.fd = p[0]};
    urt_task a, cc;
    EXPECT_EQ(urt_task_create(&a, closer_reader_fn, &c), 0);
    EXPECT_EQ(urt_task_create(&c.self, closer_fn, &c), 0);
    EXPECT_EQ(urt_task_create(&cc, canceller_fn, &c), 0);
    EXPECT_EQ(await_within(c.self, 5000, NULL), 0);
    EXPECT_EQ(await_within(cc, 5000, NULL), 0);
    EXPECT_EQ(await_within(a, 5000, NULL), 0);
    EXPECT_EQ(c.read_res, -EBADF);
    EXPECT_EQ(c.rc, 0);
    EXPECT_EQ(c.fcntl_errno, EBADF);
    EXPECT_EQ(c.yield_rc, URT_ECANCELED);
    close(p[1]);
    return 0;
}

/* Header (urt_close): "Always closes: a cancellation that arrives meanwhile
 * is kept for the next suspension point." */
static void test_close_always_closes_and_keeps_cancellation_for_next_point(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        run_one(&masks[m], main_close_not_cancellable, NULL);
        assert_trace("A reads", "B closes", "C cancels", "A got EBADF", "B closed 0",
                     "B yield ECANCELED");
    }
}

struct late {
    int rfd, wfd;
    ssize_t a_res, d_res;
    int close_rc;
    bool readers_gone_at_close;
};

static intptr_t late_a_fn(void *arg)
{
    struct late *l = arg;
    char b;
    trace("A reads");
    l->a_res = urt_read(l->rfd, &b, 1);
    trace("A got %s", code(l->a_res));
    return 0;
}

static intptr_t late_b_fn(void *arg)
{
    struct late *l = arg;
    trace("B closes");
    l->close_rc = urt_close(l->rfd);
    l->readers_gone_at_close = readers_gone(l->wfd);
    trace("B closed %d", l->close_rc);
    return 0;
}

static intptr_t late_d_fn(void *arg)
{
    struct late *l = arg;
    char b;
    trace("D reads");
    l->d_res = urt_read(l->rfd, &b, 1);
    trace("D got %s", code(l->d_res));
    return 0;
}

/*
 * A, B and D start in one turn: A's read is in flight, B's urt_close
 * cancels it and waits for A to see its -EBADF; D, running while B waits,
 * starts a read on the fd, which is still open.  That read is in flight
 * when the fd is closed, so it too must end (-EBADF, as the close's own
 * reading of "in flight ... in any task"), and when close returns no
 * operation may hold the pipe's read end.
 */
static intptr_t main_close_late_op(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct late l = {.rfd = p[0], .wfd = p[1], .a_res = 1, .d_res = 1};
    urt_task a, b, d;
    EXPECT_EQ(urt_task_create(&a, late_a_fn, &l), 0);
    EXPECT_EQ(urt_task_create(&b, late_b_fn, &l), 0);
    EXPECT_EQ(urt_task_create(&d, late_d_fn, &l), 0);
    EXPECT_EQ(await_within(b, 5000, NULL), 0);
    EXPECT_EQ(await_within(a, 5000, NULL), 0);
    EXPECT_EQ(await_within(d, 2000, NULL), 0);
    EXPECT_EQ(l.close_rc, 0);
    EXPECT_EQ(l.a_res, -EBADF);
    EXPECT_EQ(l.d_res, -EBADF);
    EXPECT(l.readers_gone_at_close);
    close(p[1]);
    return 0;
}

/* Header (urt_close): "Operations still in flight on it (in any task) are
 * cancelled first and return -EBADF, and the fd is closed only once the
 * kernel has let go of each", including one another task started while
 * the close was waiting for the first ones. */
static void test_close_also_cancels_an_op_started_while_it_waits(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_close_late_op, NULL);
}

/* ---- O_NONBLOCK fds ------------------------------------------------------ */

struct nb {
    int fd;
    char buf[16];
    ssize_t res;
    size_t done;
    const unsigned char *payload;
    size_t len;
};

static intptr_t nb_reader_fn(void *arg)
{
    struct nb *n = arg;
    trace("R reads");
    n->res = urt_read(n->fd, n->buf, sizeof n->buf);
    trace("R got %s", code(n->res));
    return 0;
}

static intptr_t main_nonblock_read(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    struct nb n = {.fd = p[0]};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, nb_reader_fn, &n), 0);
    EXPECT_EQ(urt_sleep_ms(20), 0);
    trace("main writes");
    EXPECT_EQ(write(p[1], "hello", 5), 5);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT_EQ(n.res, 5);
    EXPECT_EQ(memcmp(n.buf, "hello", 5), 0);
    /* The flag is the caller's: urt leaves it set. */
    EXPECT(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header "Non-blocking fds": urt_read on an empty O_NONBLOCK pipe waits
 * for data instead of returning -EAGAIN. */
static void test_nonblocking_pipe_read_waits_for_data(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        run_one(&masks[m], main_nonblock_read, NULL);
        assert_trace("R reads", "main writes", "R got 5");
    }
}

#define NB_PAYLOAD (256u * 1024u)

static intptr_t nb_writer_fn(void *arg)
{
    struct nb *n = arg;
    trace("W writes");
    n->res = urt_write(n->fd, n->payload, 1000);
    trace("W wrote %s", code(n->res));
    if (n->res <= 0) return 0;
    ssize_t r = urt_write_all(n->fd, n->payload + n->res, n->len - (size_t)n->res, &n->done);
    EXPECT_EQ(r, (ssize_t)(n->len - (size_t)n->res));
    EXPECT_EQ(n->done, n->len - (size_t)n->res);
    trace("W wrote all");
    return 0;
}

static intptr_t main_nonblock_write(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    /* One page of pipe, filled up. */
    EXPECT(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
    size_t filled = 0;
    unsigned char chunk[512];
    for (;;) {
        fill(chunk, sizeof chunk, filled, 3);
        ssize_t w = write(p[1], chunk, sizeof chunk);
        if (w < 0) break;
        filled += (size_t)w;
    }
    EXPECT_EQ(errno, EAGAIN);
    EXPECT(filled > 0);
    unsigned char *payload = malloc(NB_PAYLOAD), *got = malloc(NB_PAYLOAD + filled);
    fill(payload, NB_PAYLOAD, 0, 4);
    struct nb n = {.fd = p[1], .payload = payload, .len = NB_PAYLOAD};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, nb_writer_fn, &n), 0);
    EXPECT_EQ(urt_sleep_ms(20), 0);
    trace("main drains");
    size_t done = 0;
    EXPECT_EQ(urt_read_exactly(p[0], got, filled + NB_PAYLOAD, &done), (ssize_t)(filled + NB_PAYLOAD));
    EXPECT_EQ(done, filled + NB_PAYLOAD);
    EXPECT_EQ(mismatch(got, filled, 0, 3), -1);
    EXPECT_EQ(mismatch(got + filled, NB_PAYLOAD, 0, 4), -1);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT_EQ(n.res, 1000);
    /* Every byte arrived once: nothing more is in the pipe. */
    EXPECT_EQ(pipe_bytes(p[0]), 0);
    free(payload);
    free(got);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header "Non-blocking fds": urt_write into a full O_NONBLOCK pipe waits
 * until the reader makes room (the trace shows it returns only after main
 * starts draining), and urt_write_all then moves 256 KiB through a one-page
 * pipe: every byte arrives, once, in order. */
static void test_nonblocking_pipe_write_waits_until_drained(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) {
        run_one(&masks[m], main_nonblock_write, NULL);
        assert_trace("W writes", "main drains", "W wrote 1000", "W wrote all");
    }
}

/* ---- whole transfers ----------------------------------------------------- */

#define BIG (4u * 1024u * 1024u)

struct xfer {
    int fd;
    unsigned char *buf;
    size_t len;
    ssize_t res;
    size_t done;
};

static intptr_t big_writer_fn(void *arg)
{
    struct xfer *x = arg;
    x->res = urt_write_all(x->fd, x->buf, x->len, &x->done);
    EXPECT_EQ(urt_close(x->fd), 0); /* end of file for the reader */
    return 0;
}

static intptr_t main_big_pipe_body(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    unsigned char *src = malloc(BIG), *dst = malloc(BIG);
    fill(src, BIG, 0, 5);
    memset(dst, 0, BIG);
    struct xfer w = {.fd = p[1], .buf = src, .len = BIG, .done = 12345};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, big_writer_fn, &w), 0);
    /* Odd sizes, none a multiple of the pipe's pages. */
    static const size_t sizes[] = {1, 3, 7, 4093, 65537, 131071, 999983, 12289};
    size_t off = 0;
    for (unsigned i = 0; off < BIG; i++) {
        size_t want = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (want > BIG - off) want = BIG - off;
        size_t done = 0;
        ssize_t r = urt_read_exactly(p[0], dst + off, want, &done);
        EXPECT_EQ(r, (ssize_t)want);
        EXPECT_EQ(done, want);
        if (r != (ssize_t)want) break;
        off += want;
    }
    EXPECT_EQ(off, BIG);
    EXPECT_EQ(mismatch(dst, BIG, 0, 5), -1);
    EXPECT_EQ(await_within(t, 10000, NULL), 0);
    EXPECT_EQ(w.res, BIG);
    EXPECT_EQ(w.done, BIG);
    /* The writer has closed: nothing more, and read_exactly says so. */
    size_t done = 99;
    EXPECT_EQ(urt_read_exactly(p[0], dst, 10, &done), -ENODATA);
    EXPECT_EQ(done, 0);
    free(src);
    free(dst);
    close(p[0]);
    return 0;
}

static intptr_t main_big_pipe(void *arg)
{
    (void)arg;
    check_mask();
    return guarded(main_big_pipe_body);
}

/* Header (urt_read_exactly, urt_write_all; SEMANTICS 6): 4 MiB through a
 * pipe, written whole and read in odd-sized exact chunks, arrives byte for
 * byte; both report the whole length in *done. */
static void test_read_exactly_and_write_all_move_4mib_intact(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_big_pipe, NULL);
}

static intptr_t early_closer_fn(void *arg)
{
    struct xfer *x = arg;
    x->res = urt_write_all(x->fd, x->buf, x->len, &x->done);
    EXPECT_EQ(urt_sleep_ms(5), 0);
    EXPECT_EQ(urt_close(x->fd), 0);
    return 0;
}

static intptr_t main_read_exactly_short_body(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    unsigned char src[1000], dst[4096];
    fill(src, sizeof src, 0, 6);
    memset(dst, CANARY, sizeof dst);
    struct xfer w = {.fd = p[1], .buf = src, .len = sizeof src};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, early_closer_fn, &w), 0);
    size_t done = 0;
    EXPECT_EQ(urt_read_exactly(p[0], dst, sizeof dst, &done), -ENODATA);
    EXPECT_EQ(done, sizeof src);
    EXPECT_EQ(mismatch(dst, sizeof src, 0, 6), -1);
    EXPECT(all_bytes(dst + sizeof src, sizeof dst - sizeof src, CANARY));
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    EXPECT_EQ(w.res, sizeof src);
    /* done may be NULL. */
    EXPECT_EQ(urt_read_exactly(p[0], dst, 1, NULL), -ENODATA);
    close(p[0]);
    return 0;
}

static intptr_t main_read_exactly_short(void *arg)
{
    (void)arg;
    check_mask();
    return guarded(main_read_exactly_short_body);
}

/* Header (urt_read_exactly): when the writer closes before len bytes came,
 * -ENODATA, and *done is the count that really arrived (1000 of 4096), the
 * bytes being in place and the rest of the buffer untouched. */
static void test_read_exactly_gives_enodata_and_bytes_received_when_writer_closes(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_read_exactly_short, NULL);
}

static intptr_t slow_writer_fn(void *arg)
{
    struct xfer *x = arg;
    EXPECT_EQ(urt_write_all(x->fd, x->buf, 100, NULL), 100);
    EXPECT_EQ(urt_sleep_ms(150), 0); /* well after the reader's 40 ms */
    EXPECT_EQ(urt_write_all(x->fd, x->buf + 100, 100, NULL), 100);
    return 0;
}

static intptr_t trickle_fn(void *arg)
{
    struct xfer *x = arg;
    for (size_t off = 0; off < x->len; off += 10) {
        if (urt_sleep_ms(20) != 0) break;
        if (urt_write_all(x->fd, x->buf + off, 10, NULL) != 10) break;
    }
    return 0;
}

static intptr_t main_transfer_timeouts_body(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    unsigned char src[200], dst[200];
    fill(src, sizeof src, 0, 7);
    memset(dst, 0, sizeof dst);
    struct xfer w = {.fd = p[1], .buf = src};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, slow_writer_fn, &w), 0);
    size_t done = 0;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_read_exactly_timeout(p[0], dst, 200, &done, 40 * URT_NS_PER_MS), URT_ETIMEDOUT);
    uint64_t took = urt_now() - t0;
    EXPECT(took >= 40 * URT_NS_PER_MS);
    EXPECT(took < 40 * URT_NS_PER_MS + PROMPT_NS);
    EXPECT_EQ(done, 100);
    /* A retry from *done neither loses nor repeats a byte. */
    EXPECT_EQ(urt_read_exactly_timeout(p[0], dst + done, 200 - done, &done, 5 * URT_NS_PER_S), 100);
    EXPECT_EQ(done, 100);
    EXPECT_EQ(mismatch(dst, 200, 0, 7), -1);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);

    /* The timeout covers the whole transfer, not each read: 10 bytes
     * every 20 ms never leave a read waiting 100 ms, yet 200 bytes take
     * 400 ms, so it ends at 100 ms with what had come. */
    fill(src, sizeof src, 0, 10);
    struct xfer tr = {.fd = p[1], .buf = src, .len = sizeof src};
    EXPECT_EQ(urt_task_create(&t, trickle_fn, &tr), 0);
    done = 0;
    t0 = urt_now();
    EXPECT_EQ(urt_read_exactly_timeout(p[0], dst, 200, &done, 100 * URT_NS_PER_MS), URT_ETIMEDOUT);
    took = urt_now() - t0;
    EXPECT(took >= 100 * URT_NS_PER_MS);
    EXPECT(took < 300 * URT_NS_PER_MS);
    EXPECT(done >= 10 && done < 200);
    EXPECT_EQ(mismatch(dst, done, 0, 10), -1);
    EXPECT_EQ(urt_task_cancel(t), 1);
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
    while (drain(p[0], dst, sizeof dst) > 0) continue;

    /* write_all_timeout into a one-page pipe nobody drains: it stops at
     * the deadline, and *done is exactly what the pipe holds. */
    EXPECT(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
    enum { BIGW = 64 * 1024 };
    unsigned char *big = malloc(BIGW), *back = malloc(BIGW);
    fill(big, BIGW, 0, 8);
    done = 0;
    t0 = urt_now();
    EXPECT_EQ(urt_write_all_timeout(p[1], big, BIGW, &done, 40 * URT_NS_PER_MS), URT_ETIMEDOUT);
    took = urt_now() - t0;
    EXPECT(took >= 40 * URT_NS_PER_MS);
    EXPECT(took < 40 * URT_NS_PER_MS + PROMPT_NS);
    EXPECT(done > 0 && done < BIGW);
    EXPECT_EQ(pipe_bytes(p[0]), (int)done);
    size_t got = drain(p[0], back, BIGW);
    EXPECT_EQ(got, done);
    EXPECT_EQ(mismatch(back, got, 0, 8), -1);
    free(big);
    free(back);
    close(p[0]);
    close(p[1]);
    return 0;
}

static intptr_t main_transfer_timeouts(void *arg)
{
    (void)arg;
    check_mask();
    return guarded(main_transfer_timeouts_body);
}

/* Header (whole transfers): the timeout covers the whole transfer; when it
 * passes they return URT_ETIMEDOUT and *done is the count really moved, so
 * that a retry from there neither loses nor repeats a byte. */
static void test_whole_transfer_timeouts_report_bytes_moved(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_transfer_timeouts, NULL);
}

static intptr_t main_zero_timeout_body(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    char buf[16];
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_read_timeout(p[0], buf, sizeof buf, 0), URT_ETIMEDOUT);
    EXPECT(urt_now() - t0 < PROMPT_NS);
    EXPECT_EQ(urt_write_timeout(p[1], "abc", 3, 0), 3);
    EXPECT_EQ(urt_read_timeout(p[0], buf, sizeof buf, 0), 3);
    EXPECT_EQ(memcmp(buf, "abc", 3), 0);
    size_t done = 9;
    EXPECT_EQ(urt_read_exactly_timeout(p[0], buf, 1, &done, 0), URT_ETIMEDOUT);
    EXPECT_EQ(done, 0);
    EXPECT_EQ(urt_write_all_timeout(p[1], "defg", 4, &done, 0), 4);
    EXPECT_EQ(done, 4);
    EXPECT_EQ(urt_read_exactly_timeout(p[0], buf, 4, &done, 0), 4);
    EXPECT_EQ(memcmp(buf, "defg", 4), 0);
    /* URT_NO_TIMEOUT is no timeout, not a deadline in the past. */
    EXPECT_EQ(urt_write_timeout(p[1], "h", 1, URT_NO_TIMEOUT), 1);
    EXPECT_EQ(urt_read_timeout(p[0], buf, sizeof buf, URT_NO_TIMEOUT), 1);
    close(p[0]);
    close(p[1]);
    return 0;
}

static intptr_t main_zero_timeout(void *arg)
{
    (void)arg;
    check_mask();
    return guarded(main_zero_timeout_body);
}

/* Header "Deadlines": a timeout of 0 gives up at once on an empty pipe
 * (URT_ETIMEDOUT) and returns the data when it is there. */
static void test_zero_timeout_gives_up_at_once_unless_data_is_there(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_zero_timeout, NULL);
}

static intptr_t main_vectored_pipe(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    unsigned char src[300], dst[300];
    fill(src, sizeof src, 0, 9);
    memset(dst, CANARY, sizeof dst);
    struct iovec out[3] = {{src, 10}, {src + 10, 0}, {src + 10, 290}};
    EXPECT_EQ(urt_writev(p[1], out, 3), 300);
    struct iovec in[3] = {{dst, 1}, {dst + 1, 200}, {dst + 201, 99}};
    EXPECT_EQ(urt_readv(p[0], in, 3), 300);
    EXPECT_EQ(mismatch(dst, 300, 0, 9), -1);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header (urt_readv, urt_writev): scatter and gather over a pipe fill the
 * iovecs in order (the vectored opcodes are also the fallback for READ and
 * WRITE). */
static void test_readv_writev_on_pipe_keep_iovec_order(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_vectored_pipe, NULL);
}

/* ---- SIGPIPE --------------------------------------------------------------- */

static intptr_t main_epipe(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    EXPECT_EQ(urt_write(p[1], "x", 1), -EPIPE);
    size_t done = 9;
    EXPECT_EQ(urt_write_all(p[1], "xy", 2, &done), -EPIPE);
    EXPECT_EQ(done, 0);
    close(p[1]);
    return 0;
}

/* Header "I/O": calls return what the kernel returned "and never raising
 * SIGPIPE".  Writing to a pipe without reader gives -EPIPE with SIGPIPE at
 * its default disposition (which would kill the process): run in a child,
 * which must exit normally. */
static void test_write_to_pipe_without_reader_is_epipe_without_sigpipe(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        task_failure[0] = 0;
        int rc = urt_run(main_epipe, NULL, NULL);
        if (task_failure[0]) fprintf(stderr, "%s\n", task_failure);
        _exit(rc == 0 && !task_failure[0] ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) print_error("child killed by signal %d\n", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- a tiny ring ----------------------------------------------------------- */

/* A run with a ring of the given size (URT_RING_ENTRIES: SQ of n, CQ of
 * 2n), which must give back every fd; the variable is unset before
 * anything is asserted. */
static void run_with_ring(const char *entries, urt_fn fn)
{
    trace_reset();
    task_failure[0] = 0;
    setenv("URT_RING_ENTRIES", entries, 1);
    int fds = count_open_fds();
    int rc = urt_run(fn, NULL, NULL);
    int fds_after = count_open_fds();
    unsetenv("URT_RING_ENTRIES");
    assert_no_task_failure();
    assert_int_equal(rc, 0);
    assert_int_equal(fds_after, fds);
}

struct tiny {
    int rfd;
    int index;
    int phase; /* 0: data already there; 1: data comes later; 2: none comes */
    int outcome;
};

static int tiny_done;

static intptr_t tiny_reader_fn(void *arg)
{
    struct tiny *t = arg;
    char buf[32], want[16];
    snprintf(want, sizeof want, "task %010d", t->index);
    uint64_t timeout = t->phase == 2 ? 20 * URT_NS_PER_MS : 30 * URT_NS_PER_S;
    ssize_t r = urt_read_timeout(t->rfd, buf, sizeof buf, timeout);
    if (t->phase == 2) {
        EXPECT_EQ(r, URT_ETIMEDOUT);
    } else {
        EXPECT_EQ(r, 16);
        EXPECT(r == 16 && memcmp(buf, want, 16) == 0);
    }
    EXPECT_EQ(urt_sleep_ms(1 + t->index % 3), 0);
    tiny_done++;
    return 0;
}

static intptr_t tiny_sleeper_fn(void *arg)
{
    uint64_t ns = (uint64_t)(uintptr_t)arg;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_sleep(ns), 0);
    EXPECT(urt_now() - t0 >= ns);
    return 0;
}

static void tiny_write_all(int n, int (*fds)[2])
{
    for (int i = 0; i < n; i++) {
        char msg[17];
        snprintf(msg, sizeof msg, "task %010d", i);
        EXPECT_EQ(write(fds[i][1], msg, 16), 16);
    }
}

static intptr_t main_tiny_ring(void *arg)
{
    (void)arg;
    int n = small_scale() ? 100 : 1000;
    int (*fds)[2] = calloc((size_t)n, sizeof *fds);
    struct tiny *ts = calloc((size_t)n, sizeof *ts);
    urt_task *tasks = calloc((size_t)(2 * n), sizeof *tasks);
    for (int i = 0; i < n; i++) EXPECT_EQ(pipe2(fds[i], O_CLOEXEC), 0);
    for (int phase = 0; phase < 3; phase++) {
        tiny_done = 0;
        if (phase == 0) tiny_write_all(n, fds);
        for (int i = 0; i < n; i++) {
            ts[i] = (struct tiny){.rfd = fds[i][0], .index = i, .phase = phase};
            EXPECT_EQ(urt_task_create(&tasks[i], tiny_reader_fn, &ts[i]), 0);
            uint64_t ns = (uint64_t)(1 + i % 7) * URT_NS_PER_MS;
            EXPECT_EQ(urt_task_create(&tasks[n + i], tiny_sleeper_fn, (void *)(uintptr_t)ns), 0);
        }
        if (phase == 1) {
            /* Every read is in the kernel; the data then arrives all at
             * once, n completions for a CQ of 8. */
            EXPECT_EQ(urt_sleep_ms(50), 0);
            tiny_write_all(n, fds);
        }
        /* A read whose timeout were split from it (submitted in another
         * batch) would never time out: wait a while, then free any reader
         * still stuck so that the test fails instead of hanging. */
        uint64_t end = urt_now() + 10 * URT_NS_PER_S;
        while (tiny_done < n && urt_now() < end) EXPECT_EQ(urt_sleep_ms(5), 0);
        EXPECT_EQ(tiny_done, n);
        if (tiny_done < n) tiny_write_all(n, fds);
        EXPECT_EQ(urt_gather(tasks, (size_t)(2 * n), 0, NULL, NULL), 0);
        for (int i = 0; i < 2 * n; i++) EXPECT_EQ(urt_task_release(tasks[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    free(fds);
    free(ts);
    free(tasks);
    return 0;
}

/* SEMANTICS 5.3: with a ring of 4 SQEs and 8 CQEs, 1,000 tasks each doing a
 * timed read (a READ and its LINK_TIMEOUT, which must go to the kernel in
 * the same batch) beside 1,000 sleepers all complete correctly: with the
 * data already there, with all the data arriving at once (CQ overflow), and
 * with no data at all (every read times out: a pair split by a flush would
 * lose its timeout and hang). */
static void test_tiny_ring_loses_no_operation_and_never_splits_a_linked_pair(void **state)
{
    (void)state;
    run_with_ring("4", main_tiny_ring);
}

static int sleeps_done;

static intptr_t counted_sleeper_fn(void *arg)
{
    uint64_t ns = (uint64_t)(uintptr_t)arg;
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_sleep(ns), 0);
    EXPECT(urt_now() - t0 >= ns);
    sleeps_done++;
    return 0;
}

static intptr_t main_many_sleeps(void *arg)
{
    (void)arg;
    int n = small_scale() ? 200 : 2000;
    sleeps_done = 0;
    for (int i = 0; i < n; i++)
        EXPECT_EQ(urt_task_create(NULL, counted_sleeper_fn,
                                  (void *)(uintptr_t)((5 + i % 4) * URT_NS_PER_MS)), 0);
    uint64_t end = urt_now() + 10 * URT_NS_PER_S;
    while (sleeps_done < n && urt_now() < end) EXPECT_EQ(urt_sleep_ms(5), 0);
    EXPECT_EQ(sleeps_done, n);
    return 0;
}

/* SEMANTICS 5.3: 2,000 concurrent sleeps through a ring of 2 SQEs and 4
 * CQEs all end, none early. */
static void test_tiny_ring_runs_2000_concurrent_sleeps(void **state)
{
    (void)state;
    run_with_ring("2", main_many_sleeps);
}

/* ---- outside a loop, bad input --------------------------------------------- */

/* Header: "Calls made outside a task return URT_ENOLOOP."  Given valid
 * arguments, so that only the missing loop can be the reason; and the fd
 * urt_close was given is still open afterwards. */
static void test_io_calls_outside_a_loop_are_enoloop(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], "abcd", 4), 4);
    char buf[4];
    size_t done = 7;
    struct iovec iov = {buf, sizeof buf};
    assert_int_equal(urt_poll(p[0], POLLIN), URT_ENOLOOP);
    assert_int_equal(urt_poll_timeout(p[0], POLLIN, 0), URT_ENOLOOP);
    assert_int_equal(urt_read(p[0], buf, 1), URT_ENOLOOP);
    assert_int_equal(urt_read_timeout(p[0], buf, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_write(p[1], "x", 1), URT_ENOLOOP);
    assert_int_equal(urt_write_timeout(p[1], "x", 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_readv(p[0], &iov, 1), URT_ENOLOOP);
    assert_int_equal(urt_writev(p[1], &iov, 1), URT_ENOLOOP);
    assert_int_equal(urt_pread(p[0], buf, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_pwrite(p[1], "x", 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_preadv(p[0], &iov, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_pwritev(p[1], &iov, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_read_exactly(p[0], buf, 1, &done), URT_ENOLOOP);
    assert_int_equal(done, 0);
    done = 7;
    assert_int_equal(urt_read_exactly_timeout(p[0], buf, 1, &done, 0), URT_ENOLOOP);
    assert_int_equal(done, 0);
    done = 7;
    assert_int_equal(urt_write_all(p[1], "x", 1, &done), URT_ENOLOOP);
    assert_int_equal(done, 0);
    done = 7;
    assert_int_equal(urt_write_all_timeout(p[1], "x", 1, &done, 0), URT_ENOLOOP);
    assert_int_equal(done, 0);
    assert_int_equal(urt_send_all(p[1], "x", 1, NULL), URT_ENOLOOP);
    assert_int_equal(urt_send_all_timeout(p[1], "x", 1, NULL, 0), URT_ENOLOOP);
    assert_int_equal(urt_close(p[0]), URT_ENOLOOP);
    /* Nothing happened: the fd is open and the data all there. */
    assert_int_equal(fcntl(p[0], F_GETFD), FD_CLOEXEC);
    assert_int_equal(read(p[0], buf, sizeof buf), 4);
    assert_memory_equal(buf, "abcd", 4);
    close(p[0]);
    close(p[1]);
}

static intptr_t main_bad_fd(void *arg)
{
    (void)arg;
    check_mask();
    char buf[8];
    struct iovec iov = {buf, sizeof buf};
    EXPECT_EQ(urt_read(-1, buf, 1), -EBADF);
    EXPECT_EQ(urt_write(-1, "x", 1), -EBADF);
    EXPECT_EQ(urt_poll(-1, POLLIN), -EBADF);
    EXPECT_EQ(urt_close(-1), -EBADF);
    EXPECT_EQ(urt_read_timeout(-1, buf, 1, 0), -EBADF);
    EXPECT_EQ(urt_readv(-1, &iov, 1), -EBADF);
    EXPECT_EQ(urt_pwrite(-1, "x", 1, 0), -EBADF);
    /* A closed fd: the kernel's answer passes through. */
    int q[2];
    EXPECT_EQ(pipe2(q, O_CLOEXEC), 0);
    close(q[0]);
    close(q[1]);
    EXPECT_EQ(urt_read(q[0], buf, 1), -EBADF);
    EXPECT_EQ(urt_write(q[1], "x", 1), -EBADF);
    EXPECT_EQ(urt_poll(q[0], POLLIN), -EBADF);
    EXPECT_EQ(urt_close(q[0]), -EBADF);
    /* urt_close twice: the second one finds nothing. */
    EXPECT_EQ(pipe2(q, O_CLOEXEC), 0);
    EXPECT_EQ(urt_close(q[0]), 0);
    EXPECT_EQ(urt_close(q[0]), -EBADF);
    /* The wrong end of a pipe. */
    EXPECT_EQ(urt_read(q[1], buf, 1), -EBADF);
    EXPECT_EQ(urt_close(q[1]), 0);
    EXPECT_EQ(pipe2(q, O_CLOEXEC), 0);
    EXPECT_EQ(urt_write(q[0], "x", 1), -EBADF);
    /* The loop is still usable. */
    EXPECT_EQ(urt_write(q[1], "ok", 2), 2);
    EXPECT_EQ(urt_read(q[0], buf, sizeof buf), 2);
    EXPECT_EQ(memcmp(buf, "ok", 2), 0);
    close(q[0]);
    close(q[1]);
    return 0;
}

/* SEMANTICS 6 and header (urt_close: "-errno (as close(2))"): fd -1, a
 * closed fd, an fd closed twice and the wrong end of a pipe give -EBADF
 * from every call, and the loop stays usable. */
static void test_bad_or_closed_fd_is_ebadf(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_bad_fd, NULL);
}

static intptr_t main_zero_length(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    char buf[8];
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_read(p[0], buf, 0), 0);
    EXPECT_EQ(urt_read(p[0], NULL, 0), 0);
    EXPECT_EQ(urt_write(p[1], buf, 0), 0);
    EXPECT_EQ(urt_readv(p[0], NULL, 0), 0);
    size_t done = 9;
    EXPECT_EQ(urt_read_exactly(p[0], buf, 0, &done), 0);
    EXPECT_EQ(done, 0);
    done = 9;
    EXPECT_EQ(urt_write_all(p[1], NULL, 0, &done), 0);
    EXPECT_EQ(done, 0);
    EXPECT(urt_now() - t0 < PROMPT_NS);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* As read(2): a read of length 0 on an empty pipe returns 0 at once,
 * without waiting for data; so do the other zero-length transfers. */
static void test_zero_length_transfers_return_0_at_once(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_zero_length, NULL);
}

static intptr_t main_null_buffer(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(urt_read(p[0], NULL, 1), -EFAULT);
    EXPECT_EQ(urt_write(p[1], NULL, 1), -EFAULT);
    EXPECT_EQ(urt_read_timeout(p[0], NULL, 1, 0), -EFAULT);
    /* As readv(2)/writev(2): a NULL vector with a count is -EFAULT. */
    EXPECT_EQ(urt_readv(p[0], NULL, 1), -EFAULT);
    EXPECT_EQ(urt_writev(p[1], NULL, 1), -EFAULT);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* SEMANTICS 6: a NULL buffer with a length is -EFAULT (as the system
 * calls), never a crash and never a 0 that looks like end of file. */
static void test_null_buffer_with_length_is_efault(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_null_buffer, NULL);
}

static intptr_t main_null_buffer_whole(void *arg)
{
    (void)arg;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    size_t done = 9;
    EXPECT_EQ(urt_read_exactly(p[0], NULL, 1, &done), -EFAULT);
    EXPECT_EQ(done, 0);
    done = 9;
    EXPECT_EQ(urt_write_all(p[1], NULL, 1, &done), -EFAULT);
    EXPECT_EQ(done, 0);
    EXPECT_EQ(urt_read_exactly_timeout(p[0], NULL, 1, NULL, 0), -EFAULT);
    EXPECT_EQ(urt_write_all_timeout(p[1], NULL, 1, NULL, 0), -EFAULT);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* SEMANTICS 6, for the whole-transfer helpers: a NULL buffer with a length
 * is -EFAULT with *done = 0.  (Pointer arithmetic on NULL is undefined:
 * UBSan stops the process, so this test runs near the end.) */
static void test_whole_transfer_with_null_buffer_is_efault(void **state)
{
    (void)state;
    run_main_plain(main_null_buffer_whole, NULL);
}

static intptr_t main_out_of_range(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    char buf[8];
    struct iovec iov = {buf, sizeof buf};
    EXPECT_EQ(urt_readv(p[0], &iov, -1), -EINVAL);
    EXPECT_EQ(urt_writev(p[1], &iov, -1), -EINVAL);
    EXPECT_EQ(urt_readv(p[0], &iov, IOV_MAX + 1), -EINVAL);
    EXPECT_EQ(urt_writev(p[1], &iov, IOV_MAX + 1), -EINVAL);
    EXPECT_EQ(urt_preadv(p[0], &iov, -1, 0), -EINVAL);
    EXPECT_EQ(urt_pwritev(p[1], &iov, IOV_MAX + 1, 0), -EINVAL);
    /* An offset past what off_t holds. */
    EXPECT_EQ(urt_pread(p[0], buf, 1, (uint64_t)INT64_MAX + 1), -EINVAL);
    EXPECT_EQ(urt_pwrite(p[1], buf, 1, UINT64_MAX), -EINVAL);
    EXPECT_EQ(urt_preadv(p[0], &iov, 1, UINT64_MAX), -EINVAL);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* SEMANTICS 6 ("a count out of range"): iovcnt outside [0, IOV_MAX] and an
 * offset above INT64_MAX are -EINVAL, as readv(2) and pread(2) say. */
static void test_iovcnt_or_offset_out_of_range_is_einval(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_out_of_range, NULL);
}

static intptr_t main_positional_pipe(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    char buf[8] = {0};
    struct iovec iov = {buf, 1};
    EXPECT_EQ(write(p[1], "abc", 3), 3);
    /* Any offset: the stream's next bytes, in order. */
    EXPECT_EQ(urt_pread(p[0], buf, 1, 0), 1);
    EXPECT_EQ(buf[0], 'a');
    EXPECT_EQ(urt_pread(p[0], buf, 1, 1000), 1);
    EXPECT_EQ(buf[0], 'b');
    EXPECT_EQ(urt_preadv(p[0], &iov, 1, 7), 1);
    EXPECT_EQ(buf[0], 'c');
    EXPECT_EQ(urt_pwrite(p[1], "d", 1, 0), 1);
    EXPECT_EQ(urt_pwrite(p[1], "e", 1, 12345), 1);
    iov.iov_base = "f";
    EXPECT_EQ(urt_pwritev(p[1], &iov, 1, 3), 1);
    EXPECT_EQ(urt_read_timeout(p[0], buf, sizeof buf, 0), 3);
    EXPECT_EQ(memcmp(buf, "def", 3), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header (reads and writes): "on a pipe, socket or other stream the p-
 * forms ignore the offset, as io_uring does" (where pread(2) would say
 * -ESPIPE): on a pipe they read and write the stream in order. */
static void test_positional_io_on_pipe_ignores_offset(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], main_positional_pipe, NULL);
}

/* ---- main ------------------------------------------------------------------ */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    urt_write(p[1], "x", 1);
    char c;
    urt_read(p[0], &c, 1);
    urt_close(p[0]);
    urt_close(p[1]);
    return 0;
}

/* run_checked compares mappings before and after a run; the allocator maps
 * its arenas on first use, so one run happens before the tests.  The tiny
 * ring test keeps 2,000 pipe fds open at once. */
static int warm_up(void **state)
{
    (void)state;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return urt_run(warm_up_main, NULL, NULL) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_waits_until_readable_while_others_run),
        cmocka_unit_test(test_poll_timeout_returns_etimedout_after_timeout),
        cmocka_unit_test(test_poll_bad_fd_is_ebadf),
        cmocka_unit_test(test_cancelled_read_leaves_buffer_untouched_and_data_for_next_read),
        cmocka_unit_test(test_timed_out_read_leaves_buffer_untouched_and_data_for_next_read),
        cmocka_unit_test(test_read_completed_when_cancelled_returns_data_then_cancels),
        cmocka_unit_test(test_close_cancels_inflight_ops_before_the_fd_number_is_reused),
        cmocka_unit_test(test_close_always_closes_and_keeps_cancellation_for_next_point),
        cmocka_unit_test(test_close_also_cancels_an_op_started_while_it_waits),
        cmocka_unit_test(test_nonblocking_pipe_read_waits_for_data),
        cmocka_unit_test(test_nonblocking_pipe_write_waits_until_drained),
        cmocka_unit_test(test_read_exactly_and_write_all_move_4mib_intact),
        cmocka_unit_test(test_read_exactly_gives_enodata_and_bytes_received_when_writer_closes),
        cmocka_unit_test(test_whole_transfer_timeouts_report_bytes_moved),
        cmocka_unit_test(test_zero_timeout_gives_up_at_once_unless_data_is_there),
        cmocka_unit_test(test_readv_writev_on_pipe_keep_iovec_order),
        cmocka_unit_test(test_write_to_pipe_without_reader_is_epipe_without_sigpipe),
        cmocka_unit_test(test_tiny_ring_loses_no_operation_and_never_splits_a_linked_pair),
        cmocka_unit_test(test_tiny_ring_runs_2000_concurrent_sleeps),
        cmocka_unit_test(test_io_calls_outside_a_loop_are_enoloop),
        cmocka_unit_test(test_bad_or_closed_fd_is_ebadf),
        cmocka_unit_test(test_zero_length_transfers_return_0_at_once),
        cmocka_unit_test(test_null_buffer_with_length_is_efault),
        cmocka_unit_test(test_iovcnt_or_offset_out_of_range_is_einval),
        cmocka_unit_test(test_positional_io_on_pipe_ignores_offset),
        cmocka_unit_test(test_whole_transfer_with_null_buffer_is_efault),
        cmocka_unit_test(test_huge_fd_number_is_ebadf_without_huge_allocation),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
