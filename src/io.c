/*
 * The path every I/O call takes: one SQE (and its LINK_TIMEOUT when the call
 * has a deadline), the task suspended until every CQE of it is in, and the
 * result mapped the same way for all operations:
 *
 *   - the kernel's result passes through untouched: bytes, or -errno;
 *   - data wins: an operation that completed, even in the instant it was
 *     cancelled or timed out, returns its result, and a cancellation of the
 *     task is then seen at its next suspension point;
 *   - an operation cut short returns URT_ECANCELED (the task was cancelled;
 *     URT_ETIMEDOUT when a timeout scope's deadline cut it),
 *     URT_ETIMEDOUT (its deadline passed) or -EBADF (urt_close of its fd);
 *   - -EAGAIN from a file that is O_NONBLOCK (a foreign library's socket)
 *     means "not ready": urt waits for readiness with POLL_ADD and retries;
 *   - -EINTR (nothing moved) from those same calls is retried at once.
 *
 * Ops with an fd are kept in a per-fd list while in flight, because close()
 * does not cancel them and the fd number may be reused at once: urt_close
 * cancels them and waits until the kernel has let go of each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "io.h"

/* ---- the fd table ------------------------------------------------------ */

/* No open fd is at or above RLIMIT_NOFILE, so the table never needs to
 * reach it: a wild fd number gets -EBADF from the kernel, not a table of
 * its size.  The limit is read again on a miss, as programs raise it. */
static bool fd_below_limit(struct urt_loop *loop, int fd)
{
    if ((size_t)fd < loop->fds_limit) return true;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
    loop->fds_limit = rl.rlim_cur == RLIM_INFINITY ? INT_MAX : (size_t)rl.rlim_cur;
    return (size_t)fd < loop->fds_limit;
}

struct urt__fd *urt__fd_entry_grow(struct urt_loop *loop, int fd, bool grow)
{
    if ((size_t)fd >= loop->fds_cap) {
        if (!grow || !fd_below_limit(loop, fd)) return NULL;
        size_t cap = loop->fds_cap ? loop->fds_cap : 64;
        while (cap <= (size_t)fd) cap *= 2;
        struct urt__fd *fds = realloc(loop->fds, cap * sizeof *fds);
        if (!fds) return NULL;
        memset(fds + loop->fds_cap, 0, (cap - loop->fds_cap) * sizeof *fds);
        loop->fds = fds;
        loop->fds_cap = cap;
    }
    return &loop->fds[fd];
}

void urt__fd_link(struct urt_loop *loop, struct urt__op *op)
{
    struct urt__fd *e = op->fd >= 0 ? urt__fd_entry(loop, op->fd, true) : NULL;
    if (!e) {
        /* No memory for the table: the op still works, only urt_close
         * cannot see it.  Rare enough not to fail the call for. */
        op->fd = -1;
        return;
    }
    op->fd_prev = NULL;
    op->fd_next = e->ops;
    if (e->ops) e->ops->fd_prev = op;
    e->ops = op;
}

void urt__fd_unlink(struct urt_loop *loop, struct urt__op *op)
{
    if (op->fd < 0) return;
    struct urt__fd *e = &loop->fds[op->fd];
    if (op->fd_prev) op->fd_prev->fd_next = op->fd_next; else e->ops = op->fd_next;
    if (op->fd_next) op->fd_next->fd_prev = op->fd_prev;
    op->fd = -1;
    if (!e->ops && e->closer) {
        urt__make_ready(loop, e->closer);
        e->closer = NULL;
    }
}

void urt__fds_destroy(struct urt_loop *loop)
{
    free(loop->fds);
    loop->fds = NULL;
    loop->fds_cap = 0;
}

/* ---- one operation ----------------------------------------------------- */

void urt__mark_defined(const void *buf, size_t len)
{
    /* The kernel wrote it behind memcheck's back. */
    VALGRIND_MAKE_MEM_DEFINED(buf, len);
}

static int submit_and_wait(struct urt_loop *loop, const struct urt__io *io)
{
    struct urt__task *self = loop->current;
    /* An op started while urt_close waits for the fd's last ones would
     * outlive the close: it fails now, as it would a moment later. */
    if (io->fd >= 0 && (size_t)io->fd < loop->fds_cap && loop->fds[io->fd].closing) return -EBADF;
    struct urt__op op = {.fd = io->fd, .pending = io->deadline ? 2 : 1,
                         .takes_bytes = io->eagain_events == POLLIN};
    /* A linked pair must reach the kernel together: a flush between the
     * two would submit half a link.  One SQE needs no room set aside. */
    if (io->deadline) urt__sq_reserve(loop, 2);
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io->prep(sqe, io);
    io_uring_sqe_set_data(sqe, &op);
    if (io->deadline) {
        sqe->flags |= IOSQE_IO_LINK;
        op.ts = urt__timespec(io->deadline);
        struct io_uring_sqe *timeout = urt__get_sqe(loop);
        io_uring_prep_link_timeout(timeout, &op.ts, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(timeout, (uint64_t)(uintptr_t)&op | URT__UDATA_LINK);
    }
    urt__fd_link(loop, &op);
    int res = urt__op_wait(loop, &op);
    if (res != -ECANCELED && res != -EINTR) return res; /* data wins */
    if (self->cancel_pending) return urt__cancel_take(self);
    if (op.fd_closed) return -EBADF;
    if (io->deadline && op.link_res == -ETIME) return URT_ETIMEDOUT;
    return res;
}

static void prep_poll(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    io_uring_prep_poll_add(sqe, io->fd, (unsigned)io->u.poll.events);
}

int urt__io(const struct urt__io *io)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    return urt__io_on(loop, io);
}

int urt__io_on(struct urt_loop *loop, const struct urt__io *io)
{
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    bool nowait = unlikely(loop->features.test_nowait) && io->eagain_events;
    for (;;) {
        int res;
        if (unlikely(nowait)) {
            struct urt__io first = *io;
            first.nowait = true;
            nowait = false;
            res = submit_and_wait(loop, &first);
            if (res == -EOPNOTSUPP) continue; /* a file that cannot not wait */
        } else {
            res = submit_and_wait(loop, io);
        }
        /* Nothing moved (a partial transfer returns its count): try again,
         * as Python does since PEP 475.  Only the calls that can wait for
         * readiness, whose retry is the same call; a connect's is not. */
        if (res == -EINTR && io->eagain_events) continue;
        if (res != -EAGAIN || !io->eagain_events) return res;
        /* -EAGAIN moved nothing: a cancellation that came meanwhile (its
         * cancel found the op already done) is due now, not after a wait. */
        if (self->cancel_pending) return urt__cancel_take(self);
        /* An O_NONBLOCK fd the kernel did not wait on.  io_uring on 6.x waits
         * on pipes and sockets by itself; older kernels honour the flag. */
        struct urt__io poll = {
            .prep = prep_poll, .fd = io->fd, .deadline = io->deadline,
            .u.poll.events = io->eagain_events,
        };
        res = submit_and_wait(loop, &poll);
        if (res < 0) return res;
    }
}

/* ---- readiness ----------------------------------------------------------- */

#define ALWAYS_REPORTED (POLLERR | POLLHUP | POLLNVAL)

/*
 * Waits for events on fd through an epoll instance that watches only them.
 * io_uring polls for POLLRDHUP whatever is asked, and once the peer has shut
 * down its side that event stays up: a poll for POLLOUT on a full socket
 * would then complete at once, again and again, with nothing asked for.
 * The epoll fd is readable exactly when fd has one of the events.
 */
static int poll_through_epoll(int fd, short events, uint64_t deadline)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -errno;
    struct epoll_event watch = {.events = (uint32_t)(unsigned short)events};
    int res = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &watch) == 0 ? 0 : -errno;
    while (res == 0) {
        struct urt__io io = {
            .prep = prep_poll, .fd = ep, .u.poll.events = POLLIN, .deadline = deadline,
        };
        res = urt__io(&io);
        if (res <= 0) break;
        struct epoll_event got;
        /* 0: the events went again before we looked; wait on. */
        res = epoll_wait(ep, &got, 1, 0) == 1 ? (int)(got.events & ((unsigned short)events |
                                                                     ALWAYS_REPORTED))
                                              : 0;
    }
    close(ep);
    return res;
}

int urt_poll_timeout(int fd, short events, uint64_t timeout_ns)
{
    if (fd < 0) return -EBADF;
    struct urt__io io = {
        .prep = prep_poll, .fd = fd, .u.poll.events = events,
        .deadline = urt__deadline_of(timeout_ns),
    };
    struct urt_loop *loop = urt__running();
    if (loop && unlikely(loop->streams)) {
        bool served;
        int res = urt__stream_poll(loop, fd, events, io.deadline, &served);
        if (served) return res;
    }
    int res = urt__io(&io);
    if (res <= 0) return res;
    /* io_uring reports every event the file has (POLLRDHUP unasked);
     * poll(2) reports those asked for and the ones always reported. */
    int asked = res & (events | ALWAYS_REPORTED);
    return asked ? asked : poll_through_epoll(fd, events, io.deadline);
}

int urt_poll(int fd, short events)
{
    return urt_poll_timeout(fd, events, URT_NO_TIMEOUT);
}

/* ---- close ----------------------------------------------------------------- */

static void prep_close(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    io_uring_prep_close(sqe, io->fd);
}

/* 5.19: one request cancels every op on the fd's file.  A multishot op
 * may hold a file the fd no longer names (close(2)d behind urt's back, the
 * number reused): those are cancelled by their own user_data as well. */
static void cancel_all_on_fd(struct urt_loop *loop, int fd, struct urt__fd *e)
{
    for (struct urt__op *op = e->ops; op; op = op->fd_next)
        if (!op->handler) op->cancel_sent = true;
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, URT__UDATA_IGNORE);
    urt__submit_now(loop);
    for (struct urt__op *op = e->ops; op; op = op->fd_next)
        if (!op->handler) urt__cancel_watch(loop, op);
    for (struct urt__op *op = e->ops; op;) {
        if (!op->handler || op->cancel_sent) {
            op = op->fd_next;
            continue;
        }
        urt__op_cancel(loop, op); /* reaps: the walk starts again */
        op = e->ops;
    }
}

int urt_close(int fd)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    struct urt__task *self = loop->current;
    struct urt__fd *e = urt__fd_entry(loop, fd, false);
    if (e && e->closing) return -EBADF; /* another task is closing it already */
    /* Tasks in urt_accept or a read-ahead read wait on the fd's state, not
     * on an op of theirs. */
    int ended = e && e->listener ? urt__listener_closing(loop, e) : 0;
    if (e && e->stream) ended += urt__stream_closing(loop, e);
    if (e && (e->ops || ended)) {
        e->closing = true;
        for (struct urt__op *op = e->ops; op; op = op->fd_next) op->fd_closed = true;
        if (urt__has(loop, URT__F_CANCEL_FD)) {
            cancel_all_on_fd(loop, fd, e);
        } else {
            /* One cancel per op.  Cancelling reaps, and a reaped op leaves
             * the list, so the walk restarts at the first op not yet sent. */
            for (struct urt__op *op = e->ops; op;) {
                if (op->cancel_sent) {
                    op = op->fd_next;
                    continue;
                }
                urt__op_cancel(loop, op);
                op = e->ops;
            }
        }
        if (e->ops) {
            e->closer = self;
            self->state = URT__WAITING;
            self->wait = URT__WAIT_DRAIN;
        } else {
            /* All ended inside the cancel request itself; their tasks are
             * queued.  Either way the close returns after they have seen
             * their -EBADF, so it goes behind them. */
            urt__make_ready(loop, self);
        }
        urt__suspend(loop);
        self->wait = URT__WAIT_NONE;
        /* Other tasks may have grown (moved) the table meanwhile. */
        e = urt__fd_entry(loop, fd, false);
        e->closing = false;
    }
    if (e && e->listener) urt__listener_close(loop, e);
    if (e && e->stream) urt__stream_close(loop, e);
    /* A close always closes: a cancellation arriving now stays pending for
     * the next suspension point rather than leaking the fd. */
    /* valgrind's fd tracking cannot see a close done by io_uring, and would
     * report every such fd as leaked: under it, close(2) does the same. */
    if (!urt__has_op(loop, IORING_OP_CLOSE) || RUNNING_ON_VALGRIND)
        return close(fd) == 0 ? 0 : -errno;
    struct urt__op op = {.fd = -1, .no_cancel = true};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    struct urt__io io = {.prep = prep_close, .fd = fd};
    prep_close(sqe, &io);
    io_uring_sqe_set_data(sqe, &op);
    return urt__op_wait(loop, &op);
}

/* ---- read and write ---------------------------------------------------------- */

#define AT_POSITION ((uint64_t)-1) /* io_uring: use and move the file position */

/* io_uring lengths are 32-bit and results are int: a longer request is
 * simply short, as read(2) may be. */
unsigned urt__clamp_len(size_t len)
{
    return len > INT_MAX ? INT_MAX : (unsigned)len;
}

static void prep_rw(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct urt__rw *rw = &io->u.rw;
    struct urt_loop *loop = urt__loop;
    bool write = rw->write;
    /* READ/WRITE came in 5.6; before, the vectored form with one iovec. */
    if (rw->iov || !urt__has_op(loop, write ? IORING_OP_WRITE : IORING_OP_READ)) {
        const struct iovec *iov = rw->iov ? rw->iov : &rw->one;
        unsigned n = rw->iov ? rw->iovcnt : 1;
        if (write)
            io_uring_prep_writev(sqe, io->fd, iov, n, rw->offset);
        else
            io_uring_prep_readv(sqe, io->fd, iov, n, rw->offset);
    } else if (write) {
        io_uring_prep_write(sqe, io->fd, rw->one.iov_base, (unsigned)rw->one.iov_len, rw->offset);
    } else {
        io_uring_prep_read(sqe, io->fd, rw->one.iov_base, (unsigned)rw->one.iov_len, rw->offset);
    }
    if (io->nowait) sqe->rw_flags |= RWF_NOWAIT;
}

static void mark_read(const struct urt__rw *rw, ssize_t res)
{
    if (res <= 0 || rw->write) return;
    if (!rw->iov) {
        urt__mark_defined(rw->one.iov_base, (size_t)res);
        return;
    }
    for (int i = 0; i < rw->iovcnt && res > 0; i++) {
        size_t n = (size_t)res < rw->iov[i].iov_len ? (size_t)res : rw->iov[i].iov_len;
        urt__mark_defined(rw->iov[i].iov_base, n);
        res -= (ssize_t)n;
    }
}

ssize_t urt__rw(int fd, const struct iovec *iov, int iovcnt, void *buf, size_t len,
                uint64_t offset, bool write, uint64_t timeout_ns)
{
    bool vectored = !buf && !len; /* the *v forms pass no buffer */
    if (fd < 0) return -EBADF;
    if (vectored && (iovcnt < 0 || iovcnt > IOV_MAX)) return -EINVAL;
    if (vectored ? !iov && iovcnt : !buf && len) return -EFAULT;
    struct urt__io io = {
        .prep = prep_rw, .fd = fd,
        .eagain_events = write ? POLLOUT : POLLIN,
        .deadline = urt__deadline_of(timeout_ns),
        .u.rw = {.iov = vectored ? iov : NULL, .iovcnt = iovcnt, .one = {buf, urt__clamp_len(len)},
                 .offset = offset, .write = write},
    };
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!write && unlikely(loop->streams)) {
        bool served;
        ssize_t res = urt__stream_read(loop, fd, vectored ? iov : &io.u.rw.one,
                                       vectored ? iovcnt : 1, 0, io.deadline, &served);
        if (served) return res;
    }
    ssize_t res = urt__io_on(loop, &io);
    mark_read(&io.u.rw, res);
    return res;
}

ssize_t urt_read(int fd, void *buf, size_t len)
{
    return urt__rw(fd, NULL, 0, buf, len, AT_POSITION, false, URT_NO_TIMEOUT);
}
ssize_t urt_read_timeout(int fd, void *buf, size_t len, uint64_t timeout_ns)
{
    return urt__rw(fd, NULL, 0, buf, len, AT_POSITION, false, timeout_ns);
}
ssize_t urt_write(int fd, const void *buf, size_t len)
{
    return urt__rw(fd, NULL, 0, (void *)buf, len, AT_POSITION, true, URT_NO_TIMEOUT);
}
ssize_t urt_write_timeout(int fd, const void *buf, size_t len, uint64_t timeout_ns)
{
    return urt__rw(fd, NULL, 0, (void *)buf, len, AT_POSITION, true, timeout_ns);
}
ssize_t urt_pread(int fd, void *buf, size_t len, uint64_t offset)
{
    if (offset > INT64_MAX) return -EINVAL;
    return urt__rw(fd, NULL, 0, buf, len, offset, false, URT_NO_TIMEOUT);
}
ssize_t urt_pwrite(int fd, const void *buf, size_t len, uint64_t offset)
{
    if (offset > INT64_MAX) return -EINVAL;
    return urt__rw(fd, NULL, 0, (void *)buf, len, offset, true, URT_NO_TIMEOUT);
}
ssize_t urt_readv(int fd, const struct iovec *iov, int iovcnt)
{
    return urt__rw(fd, iov, iovcnt, NULL, 0, AT_POSITION, false, URT_NO_TIMEOUT);
}
ssize_t urt_writev(int fd, const struct iovec *iov, int iovcnt)
{
    return urt__rw(fd, iov, iovcnt, NULL, 0, AT_POSITION, true, URT_NO_TIMEOUT);
}
ssize_t urt_preadv(int fd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    if (offset > INT64_MAX) return -EINVAL;
    return urt__rw(fd, iov, iovcnt, NULL, 0, offset, false, URT_NO_TIMEOUT);
}
ssize_t urt_pwritev(int fd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    if (offset > INT64_MAX) return -EINVAL;
    return urt__rw(fd, iov, iovcnt, NULL, 0, offset, true, URT_NO_TIMEOUT);
}

/* ---- whole transfers ---------------------------------------------------------- */

enum step { STEP_READ, STEP_WRITE, STEP_SEND };

static ssize_t step(enum step kind, int fd, char *buf, size_t len, uint64_t timeout_ns)
{
    switch (kind) {
    case STEP_READ: return urt__rw(fd, NULL, 0, buf, len, AT_POSITION, false, timeout_ns);
    case STEP_WRITE: return urt__rw(fd, NULL, 0, buf, len, AT_POSITION, true, timeout_ns);
    default: return urt_send_timeout(fd, buf, len, 0, timeout_ns);
    }
}

/* Loops over short transfers.  However it ends, *done says how many bytes
 * moved, so a caller that retries neither loses nor repeats one. */
static ssize_t transfer_all(enum step kind, int fd, void *buf, size_t len, uint64_t timeout_ns,
                            size_t *done)
{
    if (done) *done = 0;
    if (!buf && len) return -EFAULT;
    uint64_t deadline = urt__deadline_of(timeout_ns);
    size_t moved = 0;
    ssize_t res = 0;
    while (moved < len) {
        res = step(kind, fd, (char *)buf + moved, len - moved, urt__time_left(deadline));
        if (res <= 0) break;
        moved += (size_t)res;
    }
    if (done) *done = moved;
    if (moved == len) return (ssize_t)len;
    if (res == 0) return kind == STEP_READ ? -ENODATA : -EIO; /* the peer closed first */
    return res;
}

ssize_t urt_read_exactly(int fd, void *buf, size_t len, size_t *done)
{
    return transfer_all(STEP_READ, fd, buf, len, URT_NO_TIMEOUT, done);
}
ssize_t urt_read_exactly_timeout(int fd, void *buf, size_t len, size_t *done, uint64_t timeout_ns)
{
    return transfer_all(STEP_READ, fd, buf, len, timeout_ns, done);
}
ssize_t urt_write_all(int fd, const void *buf, size_t len, size_t *done)
{
    return transfer_all(STEP_WRITE, fd, (void *)buf, len, URT_NO_TIMEOUT, done);
}
ssize_t urt_write_all_timeout(int fd, const void *buf, size_t len, size_t *done, uint64_t timeout_ns)
{
    return transfer_all(STEP_WRITE, fd, (void *)buf, len, timeout_ns, done);
}
ssize_t urt_send_all(int fd, const void *buf, size_t len, size_t *done)
{
    return transfer_all(STEP_SEND, fd, (void *)buf, len, URT_NO_TIMEOUT, done);
}
ssize_t urt_send_all_timeout(int fd, const void *buf, size_t len, size_t *done, uint64_t timeout_ns)
{
    return transfer_all(STEP_SEND, fd, (void *)buf, len, timeout_ns, done);
}
