/*
 * Read-ahead on a socket (urt_readahead): one multishot recv per socket
 * keeps receiving into buffers the loop provides (a provided-buffer ring),
 * and urt_recv, urt_read and their variants copy from what has arrived.  A
 * request/response connection then costs no recv SQE per message, and an
 * idle connection holds no buffer: memory goes only to bytes received and
 * not yet read.
 *
 * The bytes are taken off the socket before anyone asks for them, so every
 * read on the fd must come here first, and nothing outside urt may read the
 * fd (a library given the fd would never see them): that is why read-ahead
 * is asked for per fd, not on by default.
 *
 * Order is kept by one rule: a read goes to the kernel itself only while no
 * multishot recv is live on the fd and nothing is buffered, and the
 * multishot is armed only while no such read is in flight.  The multishot
 * ends on end of file, an error, a full buffer ring (-ENOBUFS: reads then
 * go to the kernel one by one until buffers come back), urt_readahead(fd,
 * 0), and urt_close.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "io.h"

#define BUF_SIZE (16u * 1024u)
#define BUF_COUNT 256u /* a power of two, as the kernel wants */
#define BUF_GROUP 0

struct chunk {
    unsigned short bid;
    unsigned off, len;
};

struct urt__stream {
    struct urt__stream *next; /* loop->streams */
    struct urt__op multishot; /* in the fd's op list while armed */
    int fd;
    dev_t dev; /* which socket, as for listeners (accept.c) */
    ino_t ino;
    bool enabled;   /* urt_readahead(fd, 1) and not turned off since */
    bool armed;     /* the SQE is live: its last CQE is not in yet */
    bool disarming; /* its cancel is sent */
    bool closing;
    int end; /* 0; 1 after end of file; or the error to give once */
    struct urt__waitq readers;
    struct chunk *chunks; /* received and not yet read, oldest first */
    size_t chead, clen, ccap;
};

/* The loop's buffer ring, made at the first urt_readahead. */
struct urt__bufs {
    struct io_uring_buf_ring *ring;
    char *mem;
    size_t map_len;
    unsigned free; /* buffers the kernel may fill */
};

/* ---- the buffer ring ------------------------------------------------------ */

static char *buf_addr(struct urt__bufs *b, unsigned bid)
{
    return b->mem + (size_t)bid * BUF_SIZE;
}

static void buf_give_back(struct urt__bufs *b, unsigned bid)
{
    io_uring_buf_ring_add(b->ring, buf_addr(b, bid), BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), 0);
    io_uring_buf_ring_advance(b->ring, 1);
    b->free++;
}

/* false when the kernel will not take a ring (or there is no memory):
 * read-ahead is then simply not used. */
static bool bufs_setup(struct urt_loop *loop)
{
    if (loop->bufs) return true;
    struct urt__bufs *b = calloc(1, sizeof *b);
    if (!b) return false;
    size_t ring_len = BUF_COUNT * sizeof(struct io_uring_buf);
    ring_len = (ring_len + loop->page_size - 1) & ~(loop->page_size - 1);
    b->map_len = ring_len + (size_t)BUF_COUNT * BUF_SIZE;
    void *mem = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        free(b);
        return false;
    }
    b->ring = mem;
    b->mem = (char *)mem + ring_len;
    io_uring_buf_ring_init(b->ring);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)b->ring,
                                   .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
    if (io_uring_register_buf_ring(&loop->ring, &reg, 0) != 0) {
        munmap(mem, b->map_len);
        free(b);
        return false;
    }
    for (unsigned i = 0; i < BUF_COUNT; i++) buf_give_back(b, i);
    loop->bufs = b;
    return true;
}

/* ---- chunks ------------------------------------------------------------------ */

static bool chunk_push(struct urt__stream *st, struct chunk c)
{
    if (st->clen == st->ccap) {
        size_t cap = st->ccap ? st->ccap * 2 : 8;
        struct chunk *n = malloc(cap * sizeof *n);
        if (!n) return false;
        for (size_t i = 0; i < st->clen; i++) n[i] = st->chunks[(st->chead + i) % st->ccap];
        free(st->chunks);
        st->chunks = n;
        st->ccap = cap;
        st->chead = 0;
    }
    st->chunks[(st->chead + st->clen++) % st->ccap] = c;
    return true;
}

static struct chunk *chunk_at(struct urt__stream *st, size_t i)
{
    return &st->chunks[(st->chead + i) % st->ccap];
}

static void chunk_pop(struct urt_loop *loop, struct urt__stream *st)
{
    buf_give_back(loop->bufs, chunk_at(st, 0)->bid);
    st->chead = (st->chead + 1) % st->ccap;
    st->clen--;
}

/* Copies up to the iovecs' room from the buffered bytes, in order, and
 * consumes them unless peek. */
static size_t copy_out(struct urt_loop *loop, struct urt__stream *st, const struct iovec *iov,
                       int iovcnt, bool peek)
{
    size_t total = 0, ci = 0, coff = 0;
    for (int i = 0; i < iovcnt && ci < st->clen; i++) {
        size_t room = iov[i].iov_len, at = 0;
        while (room && ci < st->clen) {
            struct chunk *c = chunk_at(st, ci);
            const char *src = buf_addr(loop->bufs, c->bid) + c->off + coff;
            size_t n = c->len - coff < room ? c->len - coff : room;
            urt__mark_defined(src, n);
            memcpy((char *)iov[i].iov_base + at, src, n);
            at += n;
            room -= n;
            total += n;
            coff += n;
            if (coff == c->len) {
                ci++;
                coff = 0;
            }
        }
    }
    if (peek) return total;
    while (ci--) chunk_pop(loop, st);
    if (coff) {
        chunk_at(st, 0)->off += (unsigned)coff;
        chunk_at(st, 0)->len -= (unsigned)coff;
    }
    return total;
}

/* ---- arming ----------------------------------------------------------------- */

static void wake_readers(struct urt_loop *loop, struct urt__stream *st)
{
    while (st->readers.head) urt__wake(loop, st->readers.head, 0);
}

/* Runs inside the reaping of the ring: wakes readers, submits nothing. */
static void on_recv_cqe(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe)
{
    struct urt__stream *st = container_of(op, struct urt__stream, multishot);
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        st->armed = false;
        st->disarming = false;
        urt__fd_unlink(loop, op);
    }
    int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        loop->bufs->free--;
        /* Once bytes are lost the stream is broken: what comes after them
         * is dropped too, or a reader would get it as if it followed the
         * bytes before the gap. */
        if (res <= 0 || st->closing || st->end ||
            !chunk_push(st, (struct chunk){(unsigned short)bid, 0, (unsigned)res})) {
            buf_give_back(loop->bufs, bid);
            if (res > 0 && !st->closing && !st->end) st->end = -ENOMEM;
        }
    }
    /* An error that took no bytes and says nothing of the connection (out
     * of buffers or memory for a moment, a signal) ends only the multishot:
     * the readers go on, from the kernel or from the next one. */
    bool transient = res == -ECANCELED || res == -ENOBUFS || res == -ENOMEM || res == -EINTR ||
                     res == -EAGAIN;
    /* The first end stays: an error not yet read must not become a plain
     * end of file because the peer closed since. */
    if (res == 0 && !st->end) st->end = 1;
    else if (res < 0 && !transient && !st->end) st->end = res;
    /* Every reader looks again: one takes the bytes, the others find the
     * end or, once the multishot has ended, go to the kernel themselves. */
    wake_readers(loop, st);
}

static void arm(struct urt_loop *loop, struct urt__stream *st)
{
    st->multishot = (struct urt__op){.fd = st->fd, .pending = 1, .handler = on_recv_cqe};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_recv_multishot(sqe, st->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&st->multishot | URT__UDATA_HANDLER);
    urt__fd_link(loop, &st->multishot);
    st->armed = true;
    st->disarming = false;
}

static void disarm(struct urt_loop *loop, struct urt__stream *st)
{
    if (!st->armed || st->disarming) return;
    st->disarming = true;
    urt__op_cancel(loop, &st->multishot);
}

/* ---- state ------------------------------------------------------------------ */

static void stream_free(struct urt_loop *loop, struct urt__stream *st)
{
    for (struct urt__stream **p = &loop->streams; *p; p = &(*p)->next) {
        if (*p == st) {
            *p = st->next;
            break;
        }
    }
    while (st->clen) chunk_pop(loop, st);
    free(st->chunks);
    free(st);
}

/* fd's read-ahead state, or NULL.  An idle state may have outlived a
 * close(2) of its socket (while armed, the kernel holds the socket): then
 * the fd names another file, and the state goes. */
static struct urt__stream *stream_of(struct urt_loop *loop, int fd)
{
    struct urt__fd *e = urt__fd_entry(loop, fd, false);
    struct urt__stream *st = e ? e->stream : NULL;
    if (!st || st->armed) return st;
    struct stat s;
    if (fstat(fd, &s) == 0 && s.st_dev == st->dev && s.st_ino == st->ino) return st;
    e->stream = NULL;
    stream_free(loop, st);
    return NULL;
}

int urt_readahead(int fd, int enable)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    struct stat s;
    if (fstat(fd, &s) != 0) return -errno;
    if (!S_ISSOCK(s.st_mode)) return -ENOTSOCK;
    /* A byte stream: read-ahead would merge datagrams and records. */
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -errno;
    len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return -errno;
    if (type != SOCK_STREAM) return -EOPNOTSUPP;
    if (listening) return -EINVAL;
    struct urt__stream *st = stream_of(loop, fd);
    if (!enable) {
        if (st) {
            st->enabled = false;
            disarm(loop, st); /* what it still receives is read first */
        }
        return 0;
    }
    if (!urt__has(loop, URT__F_RECV_MULTISHOT) || !bufs_setup(loop)) return 0;
    if (!st) {
        struct urt__fd *e = urt__fd_entry(loop, fd, true);
        if (!e) return -ENOMEM;
        if (e->closing) return -EBADF;
        st = calloc(1, sizeof *st);
        if (!st) return -ENOMEM;
        st->fd = fd;
        st->dev = s.st_dev;
        st->ino = s.st_ino;
        st->multishot.fd = -1;
        st->readers.what = "recv (read-ahead)";
        st->next = loop->streams;
        loop->streams = st;
        e->stream = st;
    }
    st->enabled = true;
    return 1;
}

/* ---- reading ------------------------------------------------------------------ */

/* A read of fd that went to the kernel itself (before read-ahead was on,
 * or while it could not serve) and has not completed: a multishot armed
 * now would take bytes that belong after the ones that read gets. */
static bool kernel_read_in_flight(struct urt_loop *loop, int fd)
{
    struct urt__fd *e = urt__fd_entry(loop, fd, false);
    for (struct urt__op *op = e ? e->ops : NULL; op; op = op->fd_next)
        if (op->takes_bytes) return true;
    return false;
}

/* A reader woken to look again may run after another task's urt_close
 * has freed the state: it then finds the fd closed, as read(2) would. */
static bool still_there(struct urt_loop *loop, int fd, const struct urt__stream *st)
{
    struct urt__fd *e = urt__fd_entry(loop, fd, false);
    return e && e->stream == st;
}

#define FLAGS_SERVED (MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_CMSG_CLOEXEC | MSG_NOSIGNAL)

/* Whether reads must come here: read-ahead is on, or what it received (or
 * its end) has not all been read. */
static bool active(const struct urt__stream *st)
{
    return st->enabled || st->armed || st->clen || st->end;
}

/* The iovecs past the first done bytes, into left[LEFT_MAX]; -1 if more
 * than that many remain. */
#define LEFT_MAX 64
static int iov_after(const struct iovec *iov, int iovcnt, size_t done, struct iovec *left)
{
    int n = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        if (n == LEFT_MAX) return -1;
        left[n++] = (struct iovec){(char *)iov[i].iov_base + done, iov[i].iov_len - done};
        done = 0;
    }
    return n;
}

ssize_t urt__stream_read(struct urt_loop *loop, int fd, const struct iovec *iov, int iovcnt,
                         int flags, uint64_t deadline, bool *served)
{
    *served = false;
    struct urt__stream *st = stream_of(loop, fd);
    if (!st || !active(st) || flags & (MSG_OOB | MSG_ERRQUEUE)) return 0; /* the kernel's */
    *served = true;
    if (flags & ~FLAGS_SERVED) return -EOPNOTSUPP;
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    bool peek = flags & MSG_PEEK, waitall = flags & MSG_WAITALL && !peek;
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++) want += iov[i].iov_len;
    if (!want) return 0;
    struct iovec left[LEFT_MAX];
    const struct iovec *at = iov;
    int atcnt = iovcnt;
    size_t got = 0;
    for (;;) {
        if (st->clen) {
            got += copy_out(loop, st, at, atcnt, peek);
            if (!waitall || got == want) return (ssize_t)got;
            atcnt = iov_after(iov, iovcnt, got, left);
            if (atcnt < 0) return (ssize_t)got;
            at = left;
            continue;
        }
        /* Nothing buffered.  A MSG_WAITALL that got part of its bytes
         * returns them short wherever it cannot wait for the rest here. */
        if (st->end) {
            if (got) return (ssize_t)got;
            int end = st->end;
            if (end < 0) st->end = 1; /* an error is given once, then end of file */
            return end < 0 ? end : 0;
        }
        if (!st->armed) {
            if (!st->enabled || !loop->bufs->free || st->closing ||
                kernel_read_in_flight(loop, st->fd)) {
                if (got) return (ssize_t)got;
                *served = false; /* nothing is or will be buffered: the kernel's turn */
                return 0;
            }
            arm(loop, st);
        }
        if (flags & MSG_DONTWAIT) return got ? (ssize_t)got : -EAGAIN;
        struct urt__parked p;
        int res = urt__park(loop, &st->readers, &p, deadline);
        if (res) return got ? (ssize_t)got : res;
        if (p.value) return p.value; /* urt_close */
        if (!still_there(loop, fd, st)) return got ? (ssize_t)got : -EBADF;
    }
}

int urt__stream_poll(struct urt_loop *loop, int fd, short events, uint64_t deadline, bool *served)
{
    *served = false;
    struct urt__stream *st = stream_of(loop, fd);
    if (!st || !active(st) || !(events & POLLIN)) return 0;
    *served = true;
    if (events & ~POLLIN) return -EINVAL; /* see urt_readahead */
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    for (;;) {
        if (st->clen || st->end) return POLLIN;
        if (!st->armed) {
            if (!st->enabled || !loop->bufs->free || st->closing ||
                kernel_read_in_flight(loop, st->fd)) {
                *served = false;
                return 0;
            }
            arm(loop, st);
        }
        struct urt__parked p;
        int res = urt__park(loop, &st->readers, &p, deadline);
        if (res) return res;
        if (p.value) return (int)p.value;
        if (!still_there(loop, fd, st)) return -EBADF;
    }
}

/* ---- close and the loop's end --------------------------------------------------- */

int urt__stream_closing(struct urt_loop *loop, struct urt__fd *e)
{
    struct urt__stream *st = e->stream;
    st->closing = true;
    int woken = 0;
    while (st->readers.head) {
        urt__wake(loop, st->readers.head, -EBADF);
        woken++;
    }
    return woken;
}

void urt__stream_close(struct urt_loop *loop, struct urt__fd *e)
{
    stream_free(loop, e->stream);
    e->stream = NULL;
}

void urt__streams_stop(struct urt_loop *loop)
{
    for (struct urt__stream *st = loop->streams; st; st = st->next) {
        st->closing = true;
        disarm(loop, st);
    }
}

void urt__streams_destroy(struct urt_loop *loop)
{
    while (loop->streams) {
        struct urt__stream *st = loop->streams;
        struct urt__fd *e = urt__fd_entry(loop, st->fd, false);
        if (e) e->stream = NULL;
        stream_free(loop, st);
    }
    if (loop->bufs) {
        munmap(loop->bufs->ring, loop->bufs->map_len);
        free(loop->bufs);
        loop->bufs = NULL;
    }
}
