/*
 * urt_accept.
 *
 * Where the kernel has multishot accept (5.19), one SQE per listener accepts
 * connection after connection, and urt_accept calls take them from the
 * listener in FIFO order; a call that finds a connection already accepted
 * returns it without a system call.  The SQE belongs to the listener, not to
 * a task, so a cancelled or timed-out urt_accept holds no kernel operation:
 * it leaves the listener at once, and a connection that comes later goes to
 * the next caller.  Every form of urt_accept takes this path (the peer's
 * address comes from getpeername, SOCK_NONBLOCK from fcntl), so no form can
 * take a connection another form waits for.
 *
 * A multishot accept takes connections off the kernel's queue as they come,
 * which would make listen(2)'s backlog meaningless for a server that stops
 * accepting.  So it stays armed only while tasks accept: once no task has
 * been in urt_accept for a whole turn it is cancelled, and connections wait
 * in the kernel's queue, bounded by the backlog, as with accept(2).  What it
 * took before the cancel landed waits in the listener for the next call, or
 * is closed with the listener.
 *
 * Older kernels, URT_FEATURES_OFF=accept_multishot, and a loop out of memory
 * for the listener's state take the one-shot path: one IORING_OP_ACCEPT per
 * call, linked to its timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

struct urt__listener {
    struct urt__listener *next; /* loop->listeners */
    struct urt__op multishot;   /* in the fd's op list while armed */
    int fd;
    dev_t dev; /* which socket the state is for: the fd number may have */
    ino_t ino; /* been close(2)d and reused behind urt's back */
    bool armed;     /* the SQE is live: its last CQE is not in yet */
    bool disarming; /* its cancel is sent */
    bool rearm;     /* it ended with tasks waiting: arm again at the turn */
    bool closing;   /* urt_close or the loop's end: never armed again */
    bool orphan;    /* its fd was close(2)d: freed by its last CQE */
    uint64_t returned_turn;  /* the turn an acceptor last returned in */
    struct urt__waitq waiting; /* tasks in urt_accept, FIFO */
    struct urt__acceptor *handed; /* given a connection, not yet returned */
    int *queue; /* accepted while no task waited, oldest first */
    size_t qhead, qlen, qcap;
};

/* A task in urt_accept, on its stack. */
struct urt__acceptor {
    struct urt__parked parked;
    struct urt__listener *l; /* NULL once the listener's state is gone */
    struct urt__acceptor *prev, *next; /* in l->handed */
};

/* ---- the one-shot path ------------------------------------------------- */

struct accept_args {
    struct sockaddr *addr;
    socklen_t *addrlen;
    int flags;
};

static void prep_accept(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct accept_args *a = io->u.args;
    io_uring_prep_accept(sqe, io->fd, a->addr, a->addrlen, a->flags);
}

static int accept_once(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                       uint64_t deadline)
{
    struct accept_args a = {addr, addr ? addrlen : NULL, flags | SOCK_CLOEXEC};
    struct urt__io io = {.prep = prep_accept, .fd = fd, .eagain_events = POLLIN,
                         .deadline = deadline, .u.args = &a};
    int res = urt__io(&io);
    if (res >= 0 && addr) urt__mark_defined(addr, *addrlen);
    return res;
}

/* ---- the listener's queue and waiters ---------------------------------- */

static bool queue_push(struct urt__listener *l, int fd)
{
    if (l->qlen == l->qcap) {
        size_t cap = l->qcap ? l->qcap * 2 : 16;
        int *q = malloc(cap * sizeof *q);
        if (!q) return false;
        for (size_t i = 0; i < l->qlen; i++) q[i] = l->queue[(l->qhead + i) % l->qcap];
        free(l->queue);
        l->queue = q;
        l->qcap = cap;
        l->qhead = 0;
    }
    l->queue[(l->qhead + l->qlen++) % l->qcap] = fd;
    return true;
}

static int queue_pop(struct urt__listener *l)
{
    int fd = l->queue[l->qhead];
    l->qhead = (l->qhead + 1) % l->qcap;
    l->qlen--;
    return fd;
}

/* Connections nobody will take: their clients see the connection close. */
static void queue_drop(struct urt__listener *l)
{
    while (l->qlen) close(queue_pop(l));
}

/* Hands the first waiting task res.  Until it has returned it counts as
 * accepting: the multishot stays armed for its next call. */
static void serve(struct urt_loop *loop, struct urt__listener *l, int res)
{
    struct urt__acceptor *a = container_of(l->waiting.head, struct urt__acceptor, parked);
    a->prev = NULL;
    a->next = l->handed;
    if (l->handed) l->handed->prev = a;
    l->handed = a;
    urt__wake(loop, &a->parked, res);
}

/* Frees l, off the loop's list already. */
static void listener_release(struct urt__listener *l)
{
    queue_drop(l);
    free(l->queue);
    free(l);
}

/* ---- arming and disarming ------------------------------------------------ */

static void on_accept_cqe(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe);

static void arm(struct urt_loop *loop, struct urt__listener *l)
{
    l->multishot = (struct urt__op){.fd = l->fd, .pending = 1, .handler = on_accept_cqe};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&l->multishot | URT__UDATA_HANDLER);
    urt__fd_link(loop, &l->multishot);
    l->armed = true;
    l->disarming = false;
    l->rearm = false;
}

static void disarm(struct urt_loop *loop, struct urt__listener *l)
{
    if (!l->armed || l->disarming) return;
    l->disarming = true;
    urt__op_cancel(loop, &l->multishot);
}

/* Runs inside the reaping of the ring, where nothing may be submitted (a
 * flush would reap the batch under way again): arming again waits for the
 * turn. */
static void on_accept_cqe(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe)
{
    struct urt__listener *l = container_of(op, struct urt__listener, multishot);
    bool last = !(cqe->flags & IORING_CQE_F_MORE);
    if (last) {
        l->armed = false;
        l->disarming = false;
        urt__fd_unlink(loop, op);
    }
    int res = cqe->res;
    if (res >= 0) {
        if (l->closing) {
            close(res);
        } else if (l->waiting.head) {
            serve(loop, l, res);
        } else if (!queue_push(l, res)) {
            close(res); /* no memory to keep it: the client sees a reset */
        }
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR && l->waiting.head &&
               !l->closing) {
        /* What accept(2) would have said (-EMFILE, -EINVAL ...): to one
         * caller, as a one-shot accept would; the others try again.
         * -EAGAIN and -EINTR took nothing: the callers wait on, and the
         * multishot, ended, is armed again. */
        serve(loop, l, res);
    }
    if (last && l->waiting.head && !l->closing) l->rearm = true;
}

/* At every turn boundary, before the turn's SQEs go out. */
void urt__listeners_turn(struct urt_loop *loop)
{
    /* Orphans whose multishot has ended go first: cancelling below reaps,
     * and must not free what this walk holds. */
    for (struct urt__listener **p = &loop->listeners; *p;) {
        struct urt__listener *l = *p;
        if (l->orphan && !l->armed) {
            *p = l->next;
            listener_release(l);
        } else {
            p = &l->next;
        }
    }
    for (struct urt__listener *l = loop->listeners; l; l = l->next) {
        if (l->closing) continue;
        if (l->rearm && l->waiting.head) arm(loop, l);
        else if (l->armed && !l->waiting.head && !l->handed && l->returned_turn < loop->turns)
            disarm(loop, l); /* no task came back to accept for a whole turn */
    }
}

/* ---- listener state ------------------------------------------------------ */

static struct urt__listener *listener_new(struct urt_loop *loop, struct urt__fd *e, int fd,
                                          const struct stat *st)
{
    struct urt__listener *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->fd = fd;
    l->dev = st->st_dev;
    l->ino = st->st_ino;
    l->multishot.fd = -1;
    l->waiting.what = "accept";
    l->next = loop->listeners;
    loop->listeners = l;
    e->listener = l;
    return l;
}

static void listener_free(struct urt_loop *loop, struct urt__listener *l)
{
    for (struct urt__listener **p = &loop->listeners; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            break;
        }
    }
    listener_release(l);
}

/* Ends l: its waiting tasks get -EBADF, its queue is closed, and it is never
 * armed again.  Returns how many tasks it woke. */
static int listener_end(struct urt_loop *loop, struct urt__listener *l)
{
    l->closing = true;
    /* The state is freed before these tasks run again. */
    for (struct urt__acceptor *a = l->handed; a; a = a->next) a->l = NULL;
    l->handed = NULL;
    int woken = 0;
    while (l->waiting.head) {
        struct urt__acceptor *a = container_of(l->waiting.head, struct urt__acceptor, parked);
        a->l = NULL;
        urt__wake(loop, &a->parked, -EBADF);
        woken++;
    }
    return woken;
}

/* The listener's state for fd, made or found; NULL when it cannot be had
 * (no memory), and then the one-shot path serves.  *err is set when fd is
 * no open file at all. */
static struct urt__listener *listener_get(struct urt_loop *loop, int fd, int *err)
{
    struct urt__fd *e = urt__fd_entry(loop, fd, true);
    *err = 0;
    if (!e) return NULL;
    /* The fd may have been close(2)d and its number reused by another
     * socket since the state was made, even while the multishot runs (it
     * holds the old socket, not the number): one fstat per call is the
     * price of never handing out the old socket's connections. */
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *err = -errno;
        return NULL;
    }
    struct urt__listener *l = e->listener;
    if (l && (l->dev != st.st_dev || l->ino != st.st_ino)) {
        e->listener = NULL;
        listener_end(loop, l);
        queue_drop(l);
        if (l->armed) {
            l->orphan = true;
            disarm(loop, l); /* freed at the turn after its last CQE */
        } else {
            listener_free(loop, l);
        }
        l = NULL;
    }
    return l ? l : listener_new(loop, e, fd, &st);
}

int urt__listener_closing(struct urt_loop *loop, struct urt__fd *e)
{
    return listener_end(loop, e->listener);
}

void urt__listener_close(struct urt_loop *loop, struct urt__fd *e)
{
    listener_free(loop, e->listener);
    e->listener = NULL;
}

void urt__listeners_stop(struct urt_loop *loop)
{
    for (struct urt__listener *l = loop->listeners; l; l = l->next) {
        l->closing = true;
        disarm(loop, l);
    }
}

void urt__listeners_destroy(struct urt_loop *loop)
{
    while (loop->listeners) {
        struct urt__listener *l = loop->listeners;
        struct urt__fd *e = urt__fd_entry(loop, l->fd, false);
        if (e && e->listener == l) e->listener = NULL;
        listener_free(loop, l);
    }
}

/* ---- urt_accept -------------------------------------------------------- */

/* Waits in l's FIFO for a connection: its fd, or the error. */
static int take(struct urt_loop *loop, struct urt__listener *l, uint64_t deadline)
{
    if (l->qlen) {
        l->returned_turn = loop->turns;
        return queue_pop(l);
    }
    struct urt__acceptor a = {.l = l};
    if (!l->armed) arm(loop, l);
    int res = urt__park(loop, &l->waiting, &a.parked, deadline);
    if (a.l) {
        if (res == 0) { /* off l->handed */
            if (a.prev) a.prev->next = a.next; else l->handed = a.next;
            if (a.next) a.next->prev = a.prev;
        }
        l->returned_turn = loop->turns;
    }
    return res == 0 ? (int)a.parked.value : res;
}

int urt_accept_timeout(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                       uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    if (addr && !addrlen) return -EINVAL;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return -EINVAL; /* as accept4(2) */
    uint64_t deadline = urt__deadline_of(timeout_ns);
    if (!urt__has(loop, URT__F_ACCEPT_MULTISHOT))
        return accept_once(fd, addr, addrlen, flags, deadline);
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    struct urt__fd *e = urt__fd_entry(loop, fd, false);
    if (e && e->closing) return -EBADF;
    int err;
    struct urt__listener *l = listener_get(loop, fd, &err);
    if (err) return err;
    if (!l) return accept_once(fd, addr, addrlen, flags, deadline);
    int res = take(loop, l, deadline);
    if (res < 0) return res;
    if (flags & SOCK_NONBLOCK) fcntl(res, F_SETFL, O_NONBLOCK);
    /* Multishot accept cannot store addresses; the socket knows its peer,
     * unless the peer has already reset it (then there is none to give). */
    if (addr && getpeername(res, addr, addrlen) != 0) *addrlen = 0;
    return res;
}

int urt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    return urt_accept_timeout(fd, addr, addrlen, flags, URT_NO_TIMEOUT);
}
