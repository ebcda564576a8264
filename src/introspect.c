/*
 * Introspection: the loop's tasks, one task described in a line, and a dump
 * of every live task, on demand or on a signal (Go's goroutine dump on
 * SIGQUIT).
 *
 * Everything here follows the slot table and loop->current, never fibers:
 * a fiber may run several tasks one after another, and a task that has not
 * run yet has none.
 *
 * A dump must work when things are bad: memory short, a task with a 16 KiB
 * stack, a loop that is stuck.  So it allocates nothing, formats by hand
 * (no stdio: vfprintf wants kilobytes of stack and may allocate) into a
 * small buffer that is flushed with write(2) as it fills, and never suspends.
 *
 * The signal's side.  The signal is blocked on the loop's thread and read
 * from a signalfd, in the loop: a poll on the signalfd is a background SQE
 * (it does not keep the loop alive), and its completion handler reads the
 * signals with read(2) and writes one dump each.  A poll rather than a read
 * SQE: a signalfd returns the signals pending for the thread that reads it,
 * and a read io_uring cannot do without waiting is handed, on kernels whose
 * signalfd lacks non-blocking reads, to an io-wq worker thread, which would
 * never see a signal sent to the loop's thread (raise, pthread_kill) and
 * would hold a worker for as long as none comes.  A poll is re-checked on
 * the submitting thread, and the read(2) is made there too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

/* ---- output: a buffer flushed to an fd, or a string as snprintf's ------ */

struct sink {
    char *buf;
    size_t cap;
    size_t len;
    size_t total; /* what the output would be, whatever fit */
    int fd;       /* -1: fill buf as snprintf does */
    int err;      /* the first write error: nothing more is written */
};

/* write(2) until done.  Not a suspension point: it blocks, as a log write
 * does.  -EAGAIN from an O_NONBLOCK fd ends the dump rather than spin. */
static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void sink_flush(struct sink *s)
{
    if (s->fd >= 0 && s->len && !s->err) s->err = write_all(s->fd, s->buf, s->len);
    s->len = 0;
}

static void put_char(struct sink *s, char c)
{
    s->total++;
    if (s->fd < 0) {
        if (s->len + 1 < s->cap) s->buf[s->len++] = c;
        return;
    }
    if (s->len == s->cap) sink_flush(s);
    s->buf[s->len++] = c;
}

static void put_str(struct sink *s, const char *str)
{
    while (*str) put_char(s, *str++);
}

static void put_u64(struct sink *s, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) put_char(s, digits[--n]);
}

static void put_int(struct sink *s, long long v)
{
    if (v < 0) {
        put_char(s, '-');
        put_u64(s, -(uint64_t)v);
    } else {
        put_u64(s, (uint64_t)v);
    }
}

/* A name in quotes, on one line: a name is the program's, and may hold a
 * newline or a quote that would make the dump unreadable by a script. */
static void put_name(struct sink *s, const struct urt__task *t)
{
    put_char(s, '"');
    if (t->has_name) {
        for (const char *p = t->name; *p; p++) {
            unsigned char c = (unsigned char)*p;
            put_char(s, c < 0x20 || c == 0x7f ? '?' : c == '"' ? '\'' : (char)c);
        }
    } else {
        put_str(s, "Task-");
        put_u64(s, t->number);
    }
    put_char(s, '"');
}

/* ", N ms left" for an absolute deadline in a timespec (0: none). */
static void put_left(struct sink *s, const struct __kernel_timespec *ts, uint64_t now)
{
    uint64_t deadline = (uint64_t)ts->tv_sec * URT_NS_PER_S + (uint64_t)ts->tv_nsec;
    if (!deadline) return;
    uint64_t left = deadline > now ? deadline - now : 0;
    put_str(s, ", ");
    if (left >= 100 * URT_NS_PER_S) {
        put_u64(s, left / URT_NS_PER_S);
        put_str(s, " s left");
    } else {
        /* Rounded up: a wait with 0.3 ms to go is not over. */
        put_u64(s, (left + URT_NS_PER_MS - 1) / URT_NS_PER_MS);
        put_str(s, " ms left");
    }
}

/* The fd a task in urt_close waits to drain, or -1. */
static int drain_fd(const struct urt_loop *loop, const struct urt__task *t)
{
    for (size_t fd = 0; fd < loop->fds_cap; fd++)
        if (loop->fds[fd].closer == t) return (int)fd;
    return -1;
}

static void put_wait(struct sink *s, const struct urt_loop *loop, const struct urt__task *t,
                     uint64_t now)
{
    switch (t->wait) {
    case URT__WAIT_OP: {
        const struct urt__op *op = t->waiting_on.op;
        if (op->is_timeout) {
            put_str(s, "sleep");
        } else if (op->fd >= 0) {
            put_str(s, "I/O on fd ");
            put_int(s, op->fd);
        } else {
            put_str(s, "I/O");
        }
        put_left(s, &op->ts, now);
        break;
    }
    case URT__WAIT_TASK:
        put_str(s, "await task ");
        put_u64(s, t->waiting_on.task->number);
        put_char(s, ' ');
        put_name(s, t->waiting_on.task);
        break;
    case URT__WAIT_SHIELD:
        put_str(s, "shield of task ");
        put_u64(s, t->waiting_on.waiter->target->number);
        put_char(s, ' ');
        put_name(s, t->waiting_on.waiter->target);
        break;
    case URT__WAIT_GROUP: {
        put_str(s, "task group exit");
        break;
    }
    case URT__WAIT_SET:
    case URT__WAIT_GATHER: {
        const struct urt__gather *g = t->waiting_on.gather;
        put_str(s, t->wait == URT__WAIT_SET ? "wait of " : "gather of ");
        put_u64(s, g->n);
        put_str(s, ", ");
        put_u64(s, g->remaining);
        put_str(s, " left");
        break;
    }
    case URT__WAIT_DRAIN: {
        put_str(s, "close");
        int fd = drain_fd(loop, t);
        if (fd >= 0) {
            put_str(s, " of fd ");
            put_int(s, fd);
        }
        break;
    }
    case URT__WAIT_PARKED: {
        const struct urt__parked *p = t->waiting_on.parked;
        /* q is NULL once a waker has taken the task off its queue. */
        put_str(s, p->q && p->q->what ? p->q->what : "wait queue");
        if (p->has_timer) put_left(s, &p->timer.ts, now);
        break;
    }
    default:
        /* A kind this file does not know yet: still one readable line. */
        put_str(s, "wait kind ");
        put_u64(s, t->wait);
        break;
    }
}

static const char *state_name(const struct urt__task *t)
{
    switch (t->state) {
    case URT__NEW: return "new";
    case URT__READY: return "ready";
    case URT__RUNNING: return "running";
    case URT__WAITING: return "waiting";
    case URT__DONE: return "done";
    default: return "unknown";
    }
}

/* task N "name" state[: what it waits on][ (cancel pending)] */
static void put_task(struct sink *s, const struct urt_loop *loop, const struct urt__task *t,
                     uint64_t now)
{
    put_str(s, "task ");
    put_u64(s, t->number);
    put_char(s, ' ');
    put_name(s, t);
    put_char(s, ' ');
    put_str(s, state_name(t));
    if (t->state == URT__WAITING) {
        put_str(s, ": ");
        put_wait(s, loop, t, now);
    }
    if (t->cancel_pending && t->state != URT__DONE) put_str(s, " (cancel pending)");
}

/* ---- the dump ------------------------------------------------------------ */

static bool is_live(const struct urt__task *t)
{
    return t && t->state != URT__DONE;
}

/* The header, then one line per live task in slot order: creation order
 * would need memory to sort in.  The numbers say which is older. */
static int dump(struct urt_loop *loop, int fd, char *buf, size_t cap, int signo)
{
    struct sink s = {.buf = buf, .cap = cap, .fd = fd};
    size_t count[URT__DONE] = {0};
    size_t live = 0;
    for (uint32_t i = 0; i < loop->nslots; i++) {
        const struct urt__task *t = loop->slots[i].task;
        if (!is_live(t)) continue;
        live++;
        if (t->state < URT__DONE) count[t->state]++;
    }
    uint64_t now = urt_now();
    put_str(&s, "urt task dump");
    if (signo) {
        put_str(&s, " on signal ");
        put_int(&s, signo);
    }
    put_str(&s, ": ");
    put_u64(&s, live);
    put_str(&s, live == 1 ? " task (" : " tasks (");
    put_u64(&s, count[URT__RUNNING]);
    put_str(&s, " running, ");
    put_u64(&s, count[URT__READY] + count[URT__NEW]);
    put_str(&s, " ready, ");
    put_u64(&s, count[URT__WAITING]);
    put_str(&s, " waiting), ");
    put_u64(&s, loop->inflight);
    put_str(&s, " SQEs in flight (");
    put_u64(&s, loop->background);
    put_str(&s, " background)\n");
    for (uint32_t i = 0; i < loop->nslots && !s.err; i++) {
        const struct urt__task *t = loop->slots[i].task;
        if (!is_live(t)) continue;
        put_task(&s, loop, t, now);
        put_char(&s, '\n');
    }
    put_char(&s, '\n'); /* a blank line ends it: dumps follow one another */
    sink_flush(&s);
    return s.err;
}

/* Small: the caller may be a task with a 16 KiB stack. */
#define DUMP_STACK_BUF 512

int urt_task_dump(int fd)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    char buf[DUMP_STACK_BUF];
    return dump(loop, fd, buf, sizeof buf, 0);
}

int urt_task_describe(urt_task task, char *buf, size_t size)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, task);
    if (!t) return URT_EBADTASK;
    if (!buf && size) return -EFAULT;
    struct sink s = {.buf = buf, .cap = size, .fd = -1};
    put_task(&s, loop, t, urt_now());
    if (size) buf[s.len] = '\0';
    return s.total > INT32_MAX ? INT32_MAX : (int)s.total;
}

/* ---- urt_tasks: the live tasks, oldest first ------------------------------ */

static uint64_t number_of(const struct urt_loop *loop, urt_task h)
{
    return loop->slots[h.slot - 1].task->number;
}

/* A max-heap on task numbers, so that the cap oldest tasks can be kept
 * without memory of our own: out[] is the heap. */
static void sift_down(const struct urt_loop *loop, urt_task *h, size_t at, size_t n)
{
    for (;;) {
        size_t big = at, l = 2 * at + 1, r = l + 1;
        if (l < n && number_of(loop, h[l]) > number_of(loop, h[big])) big = l;
        if (r < n && number_of(loop, h[r]) > number_of(loop, h[big])) big = r;
        if (big == at) return;
        urt_task tmp = h[at];
        h[at] = h[big];
        h[big] = tmp;
        at = big;
    }
}

static void heapify(const struct urt_loop *loop, urt_task *h, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) sift_down(loop, h, i, n);
}

size_t urt_tasks(urt_task *out, size_t cap)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return 0;
    if (!out) cap = 0;
    size_t live = 0, n = 0;
    for (uint32_t i = 0; i < loop->nslots; i++) {
        struct urt__task *t = loop->slots[i].task;
        if (!is_live(t)) continue;
        live++;
        if (n < cap) {
            out[n++] = urt__task_handle(loop, t);
            if (n == cap) heapify(loop, out, n);
        } else if (cap && t->number < number_of(loop, out[0])) {
            out[0] = urt__task_handle(loop, t); /* younger ones drop out */
            sift_down(loop, out, 0, n);
        }
    }
    if (n < cap) heapify(loop, out, n);
    for (size_t end = n; end > 1; end--) { /* heapsort: oldest first */
        urt_task tmp = out[0];
        out[0] = out[end - 1];
        out[end - 1] = tmp;
        sift_down(loop, out, 0, end - 1);
    }
    return live;
}

/* ---- the dump on a signal ------------------------------------------------ */

/* Formatted here, not on the stack of whichever task the reaping of the
 * ring happens to run on. */
#define DUMP_SIGNAL_BUF 1024

struct urt__dump {
    struct urt__op poll;   /* POLL_ADD on sfd: a handler op, in the background */
    struct signalfd_siginfo si;
    int sfd;               /* the signalfd, -1 when closed */
    int signo;             /* 0: off */
    int out;               /* our duplicate of the caller's fd, or -1 */
    bool armed;            /* the poll is in flight: its CQE is not in */
    bool was_blocked;      /* signo was in the thread's mask before us */
    bool stopping;         /* the loop is ending: never armed again */
    char buf[DUMP_SIGNAL_BUF];
};

static void on_signal_cqe(struct urt_loop *loop, struct urt__op *op,
                          const struct io_uring_cqe *cqe);

static void arm(struct urt_loop *loop, struct urt__dump *d)
{
    d->poll = (struct urt__op){.fd = -1, .pending = 1, .handler = on_signal_cqe};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_poll_add(sqe, d->sfd, POLLIN);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&d->poll | URT__UDATA_HANDLER);
    d->armed = true;
    loop->background++;
}

/*
 * Runs while the ring is reaped, between two CQEs, where every task is in
 * a consistent state.  Preparing the next poll here is safe: should the SQ
 * be full, the flush reaps CQEs after this one, never this one again, and
 * the new poll is not submitted before this returns.
 */
static void on_signal_cqe(struct urt_loop *loop, struct urt__op *op,
                          const struct io_uring_cqe *cqe)
{
    struct urt__dump *d = container_of(op, struct urt__dump, poll);
    d->armed = false;
    loop->background--;
    if (cqe->res > 0 && d->signo && !d->stopping) {
        /* One dump per signal read: standard signals do not queue, so a
         * burst sent before the loop reads it is one dump. */
        while (read(d->sfd, &d->si, sizeof d->si) == (ssize_t)sizeof d->si) {
            if (d->out >= 0) dump(loop, d->out, d->buf, sizeof d->buf, (int)d->si.ssi_signo);
        }
    }
    /* -ECANCELED: turned off, then on again before the cancel landed.
     * Any other error would come back at once: arming again would spin,
     * so the dump stops, and the signal stays blocked until it is turned
     * off or the loop ends. */
    if (d->signo && !d->stopping && (cqe->res >= 0 || cqe->res == -ECANCELED)) {
        arm(loop, d);
    } else {
        close(d->sfd);
        d->sfd = -1;
    }
}

/* Hands signo back to the thread as it was before us.  Instances still
 * pending would, once unblocked, do the signal's default action (SIGQUIT
 * dumps core): they were meant for us, and are taken without a dump. */
static void release_signal(struct urt__dump *d)
{
    if (!d->signo) return;
    if (!d->was_blocked) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, d->signo);
        const struct timespec now = {0, 0};
        while (sigtimedwait(&one, NULL, &now) == d->signo) {}
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    d->signo = 0;
}

static void close_out(struct urt__dump *d)
{
    if (d->out >= 0) close(d->out);
    d->out = -1;
}

/* Off: the poll, once its cancel is in, closes the signalfd. */
static void dump_off(struct urt_loop *loop, struct urt__dump *d)
{
    release_signal(d);
    close_out(d);
    if (d->armed) {
        urt__op_cancel(loop, &d->poll); /* reaps: the handler may run now */
    } else if (d->sfd >= 0) {
        close(d->sfd);
        d->sfd = -1;
    }
}

/* SIGKILL and SIGSTOP cannot be blocked; a blocked SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE or SIGTRAP raised by a fault kills the process outright, and urt's
 * stack overflow guard handles SIGSEGV and SIGBUS; SIGPIPE is the loop's
 * own (see urt.h, I/O). */
static bool refused(int signo)
{
    switch (signo) {
    case SIGKILL: case SIGSTOP:
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP:
    case SIGPIPE:
        return true;
    default:
        return false;
    }
}

/* The caller's fd, duplicated so that the program may close its own. */
static int dup_out(int fd)
{
    if (fd < 0) return -EBADF;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    if ((fl & O_ACCMODE) == O_RDONLY || fl & O_PATH) return -EBADF; /* as write(2) */
    int out = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return out < 0 ? -errno : out;
}

int urt_task_dump_on_signal(int signo, int fd)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__dump *d = loop->dump;
    if (signo == 0 || fd == -1) {
        if (d) dump_off(loop, d);
        return 0;
    }
    sigset_t one;
    sigemptyset(&one);
    /* sigaddset refuses numbers out of range and glibc's own signals. */
    if (refused(signo) || sigaddset(&one, signo) != 0) return -EINVAL;
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d) return -ENOMEM;
        d->sfd = d->out = -1;
        loop->dump = d;
    }
    int out = dup_out(fd);
    if (out < 0) return out;

    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &one, &old);
    bool was_blocked = signo == d->signo ? d->was_blocked : sigismember(&old, signo);
    /* An existing signalfd takes the new mask in place, even with its poll
     * in flight (or being cancelled: its CQE arms it again). */
    int sfd = signalfd(d->sfd, &one, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        int err = -errno;
        if (!was_blocked) pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        close(out);
        return err;
    }
    d->sfd = sfd;
    if (d->signo != signo) release_signal(d);
    d->signo = signo;
    d->was_blocked = was_blocked;
    close_out(d);
    d->out = out;
    if (!d->armed) arm(loop, d);
    return 0;
}

void urt__dump_stop(struct urt_loop *loop)
{
    struct urt__dump *d = loop->dump;
    if (!d) return;
    d->stopping = true;
    dump_off(loop, d);
}

void urt__dump_destroy(struct urt_loop *loop)
{
    struct urt__dump *d = loop->dump;
    if (!d) return;
    if (d->sfd >= 0) close(d->sfd); /* its poll's CQE never came */
    free(d);
    loop->dump = NULL;
}
