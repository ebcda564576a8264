/*
 * liburing.c - the raw liburing peer of urt's benchmark suite: io_uring by
 * hand, no fibers, no runtime, one thread.  It is the "no runtime" limit:
 * whatever urt's tasks and scheduler cost shows up as the distance between
 * urt and this program, so each workload is written the way an io_uring
 * expert writes it when speed is the whole point.
 *
 *   build/bench/liburing WORKLOAD ARGS...
 *
 * bench/README.md defines the workloads, their arguments and the RESULT
 * lines.  spawn and switch have no meaning without tasks and print
 * UNSUPPORTED; the others are:
 *
 *   sleepers N MS   N IORING_OP_TIMEOUTs in flight at once, each with its
 *                   own state, submitted a full SQ at a time
 *   timer N MS      one timeout at a time, N in a row
 *   echo-server     multishot accept, multishot recv into a provided-buffer
 *                   ring, one send per connection per batch of CQEs
 *   file            TASKS random 4 KiB reads kept in flight, on a
 *                   registered file into registered buffers
 *
 * Every ring is made with SINGLE_ISSUER | DEFER_TASKRUN (completion work
 * runs only when this thread enters the kernel to wait, in one batch, and
 * never interrupts it), falling back to COOP_TASKRUN and then to nothing on
 * kernels that refuse them, and its fd is registered so io_uring_enter skips
 * the fd lookup.  Each loop turn submits and waits in one io_uring_enter.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "hist.h"

#define USAGE 2
#define NS_PER_MS 1000000ull

/* The SQ size of every ring but the file workload's (that one is sized to
 * TASKS): urt's, so neither program has to flush a full SQ more often. */
#define RING_ENTRIES 4096u
/* Room for completions to outnumber SQEs (multishot, a burst of timers)
 * before they spill into the kernel's overflow list. */
#define CQ_FACTOR 4u

static int usage(const char *msg)
{
    fprintf(stderr, "liburing: %s\n", msg);
    return USAGE;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "liburing: %s: %s\n", what, strerror(err));
    exit(1);
}

/* ---- the ring ------------------------------------------------------------- */

static void ring_setup(struct io_uring *ring, unsigned entries)
{
    /* Each flag is a hint a kernel too old for it rejects with EINVAL:
     * DEFER_TASKRUN needs 6.1 (and SINGLE_ISSUER, 6.0), COOP_TASKRUN 5.19. */
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int err = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0] && err == -EINVAL; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * CQ_FACTOR;
        err = io_uring_queue_init_params(entries, ring, &p);
    }
    if (err < 0)
        die("io_uring_queue_init", -err);
    /* Only a saving: without it every enter still works. */
    if (io_uring_register_ring_fd(ring) != 1)
        fprintf(stderr, "liburing: io_uring_register_ring_fd failed, going on without\n");
}

/* An SQE, flushing the SQ to the kernel first if it is full. */
static struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (__builtin_expect(sqe == NULL, 0)) {
        int ret = io_uring_submit(ring);
        if (ret < 0)
            die("io_uring_submit", -ret);
        sqe = io_uring_get_sqe(ring);
        if (!sqe)
            die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static void submit_and_wait(struct io_uring *ring, unsigned nr)
{
    int ret = io_uring_submit_and_wait(ring, nr);
    if (ret < 0 && ret != -EINTR)
        die("io_uring_submit_and_wait", -ret);
}

static struct __kernel_timespec timespec_of(uint64_t ns)
{
    return (struct __kernel_timespec){
        .tv_sec = (long long)(ns / 1000000000u),
        .tv_nsec = (long long)(ns % 1000000000u),
    };
}

/* ---- sleepers ------------------------------------------------------------- */

/* What a program keeps per timer it has armed.  The kernel reads the
 * deadline when it takes the SQE, so it must live until then. */
struct sleeper {
    struct __kernel_timespec deadline;
    bool fired;
};

static int sleepers(long n, long ms)
{
    struct io_uring ring;
    ring_setup(&ring, RING_ENTRIES);
    uint64_t ns = (uint64_t)ms * NS_PER_MS;

    /* After the ring: it is the program's, whatever number of timers. */
    long rss_before = bench_maxrss_kib();
    uint64_t t0 = bench_now_ns();
    struct sleeper *s = malloc((size_t)n * sizeof *s);
    if (!s)
        die("malloc", ENOMEM);
    for (long i = 0; i < n;) {
        /* Absolute deadlines on CLOCK_MONOTONIC, as bench_now_ns reads it:
         * the time a timer waits in the SQ is not added to its sleep.  One
         * clock read per SQ-full, since those timers are handed to the kernel
         * by the same io_uring_enter. */
        struct __kernel_timespec deadline = timespec_of(bench_now_ns() + ns);
        for (unsigned room = io_uring_sq_space_left(&ring); room && i < n; room--, i++) {
            s[i] = (struct sleeper){.deadline = deadline};
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_timeout(sqe, &s[i].deadline, 0, IORING_TIMEOUT_ABS);
            io_uring_sqe_set_data(sqe, &s[i]);
        }
        int ret = io_uring_submit(&ring);
        if (ret < 0)
            die("io_uring_submit", -ret);
    }

    /* Waiting for as many CQEs as the CQ holds lets one io_uring_enter reap
     * a CQ-full instead of returning for each timer.  No more than that: a
     * wait for more than fits could never be met. */
    unsigned cq_size = ring.cq.ring_entries;
    long fired = 0;
    while (fired < n) {
        unsigned left = (unsigned)(n - fired < (long)cq_size ? n - fired : (long)cq_size);
        submit_and_wait(&ring, left);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != -ETIME)
                die("timeout", cqe->res < 0 ? -cqe->res : EPROTO);
            ((struct sleeper *)io_uring_cqe_get_data(cqe))->fired = true;
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        fired += seen;
    }
    uint64_t elapsed = bench_now_ns() - t0;
    long rss_after = bench_maxrss_kib();

    for (long i = 0; i < n; i++)
        if (!s[i].fired)
            die("sleepers: a timer never fired", EPROTO);
    free(s);
    io_uring_queue_exit(&ring);
    bench_result("sleepers_overshoot_ms", ((double)elapsed - (double)ns) / 1e6);
    bench_result("sleepers_rss_per_task_bytes",
                 (double)(rss_after - rss_before) * 1024.0 / (double)n);
    return 0;
}

/* ---- timer ---------------------------------------------------------------- */

static int timer(long n, long ms)
{
    struct io_uring ring;
    ring_setup(&ring, 8);
    uint64_t ns = (uint64_t)ms * NS_PER_MS;
    static struct hist h;
    hist_init(&h);

    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        /* Absolute, so the submit's own time counts against the timer. */
        struct __kernel_timespec deadline = timespec_of(t0 + ns);
        struct io_uring_sqe *sqe = get_sqe(&ring);
        io_uring_prep_timeout(sqe, &deadline, 0, IORING_TIMEOUT_ABS);
        struct io_uring_cqe *cqe;
        int ret;
        do
            ret = io_uring_submit_and_wait(&ring, 1);
        while (ret == -EINTR);
        if (ret < 0)
            die("io_uring_submit_and_wait", -ret);
        uint64_t t1 = bench_now_ns();
        ret = io_uring_peek_cqe(&ring, &cqe);
        if (ret < 0)
            die("io_uring_peek_cqe", -ret);
        if (cqe->res != -ETIME)
            die("timeout", cqe->res < 0 ? -cqe->res : EPROTO);
        io_uring_cqe_seen(&ring, cqe);
        /* hrtimers never fire early, but a clamp costs nothing. */
        hist_record(&h, t1 - t0 > ns ? t1 - t0 - ns : 0);
    }
    io_uring_queue_exit(&ring);
    bench_result("timer_p50_us", (double)hist_percentile(&h, 50) / 1e3);
    bench_result("timer_p99_us", (double)hist_percentile(&h, 99) / 1e3);
    bench_result("timer_p999_us", (double)hist_percentile(&h, 99.9) / 1e3);
    return 0;
}

/* ---- echo-server ---------------------------------------------------------- */

/*
 * Each connection has one multishot recv armed for its whole life, so a
 * request costs no recv SQE and no re-arming of the socket's poll: the
 * kernel picks a buffer from the provided-buffer ring and posts a CQE each
 * time bytes arrive.  Those bytes are copied to the end of the
 * connection's out buffer and the ring buffer handed straight back, which
 * keeps the shared ring from running dry however slow the clients are:
 * sending from the ring buffer itself would save copying 64 bytes but keep
 * every buffer out of the ring until its echo is acknowledged by the
 * send's CQE.  After each batch of CQEs every connection
 * with bytes to echo and no send in flight gets one send of all of them, so
 * a pipelining client's requests go back together.  One send at a time per
 * connection keeps the bytes in order: two in flight could complete out of
 * order if the first had to wait for socket space.
 *
 * A client that sends without reading fills its out buffer.  What arrives
 * then is kept in the ring buffers, in order ("held"), and past HOLD_MAX of
 * them its recv is cancelled until the echoes drain, so one such client
 * cannot take the ring from the others.  If the ring still runs dry (many
 * of them at once) a recv ends with ENOBUFS and is re-armed once half the
 * ring is back.
 */
#define BUF_COUNT 1024u /* a power of two, as the kernel wants */
#define BUF_SIZE 4096u
#define BUF_GROUP 0
/* Several ring buffers' worth, so what a pipelining client sends while an
 * echo is out gathers for the next send instead of being held. */
#define OUT_SIZE (16u * 1024u)
#define HOLD_MAX 8u
#define BACKLOG 4096

/* user_data: a connection's address with the operation in the low bits
 * (malloc aligns to at least 8), or a tag alone. */
enum { UD_ACCEPT = 1, UD_SIGNAL, UD_CANCEL, UD_RECV, UD_SEND, UD_MASK = 7 };

struct conn {
    int fd;
    bool recv_armed;   /* the multishot recv's last CQE is still to come */
    bool cancelling;   /* ... and its cancel is sent */
    bool sending;      /* a send of out[off, len) is in flight */
    bool eof;          /* the client has finished sending */
    bool closing;      /* an error: free once nothing is in flight */
    bool queued;       /* on srv.flush */
    bool starved;      /* on srv.starved */
    unsigned off, len; /* out[off, len) is received and not yet echoed */
    /* Ring buffers received while out was full, oldest first, linked
     * through srv.held. */
    uint16_t held_head, held_tail;
    unsigned held_count;
    struct conn *next_flush, *next_starved;
    char out[OUT_SIZE];
};

static struct {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned returned;   /* buffers added to the ring since its tail was published */
    unsigned held_total; /* buffers held by all connections */
    struct {
        uint16_t next;
        unsigned len;
    } held[BUF_COUNT];
    struct conn *flush;   /* connections with bytes to send and no send in flight */
    struct conn *starved; /* connections whose recv ended with ENOBUFS */
} srv;

static char *buf_addr(unsigned bid)
{
    return srv.bufs + (size_t)bid * BUF_SIZE;
}

/* Back to the ring, visible to the kernel at the end of the loop turn: one
 * tail store for the whole batch. */
static void buf_return(unsigned bid)
{
    io_uring_buf_ring_add(srv.br, buf_addr(bid), BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), (int)srv.returned++);
}

static void bufs_setup(void)
{
    size_t ring_len = BUF_COUNT * sizeof(struct io_uring_buf);
    size_t len = ring_len + (size_t)BUF_COUNT * BUF_SIZE;
    /* The ring's address must be page-aligned; the buffers follow it. */
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap", errno);
    srv.br = mem;
    srv.bufs = (char *)mem + ring_len;
    io_uring_buf_ring_init(srv.br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)srv.br,
        .ring_entries = BUF_COUNT,
        .bgid = BUF_GROUP,
    };
    int ret = io_uring_register_buf_ring(&srv.ring, &reg, 0);
    if (ret < 0)
        die("io_uring_register_buf_ring", -ret);
    for (unsigned bid = 0; bid < BUF_COUNT; bid++)
        buf_return(bid);
    io_uring_buf_ring_advance(srv.br, (int)srv.returned);
    srv.returned = 0;
}

static void arm_recv(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(&srv.ring);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | UD_RECV);
    c->recv_armed = true;
}

/* Whenever the recv is down for no lasting reason.  Not while buffers are
 * held: then a send is due, and on_send comes back here once they drain. */
static void maybe_arm_recv(struct conn *c)
{
    if (!c->recv_armed && !c->closing && !c->eof && !c->starved && !c->held_count)
        arm_recv(c);
}

static void cancel_recv(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(&srv.ring);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)c | UD_RECV, 0);
    io_uring_sqe_set_data64(sqe, UD_CANCEL);
    c->cancelling = true;
}

static void queue_send(struct conn *c)
{
    if (!c->queued && !c->sending) {
        c->queued = true;
        c->next_flush = srv.flush;
        srv.flush = c;
    }
}

/* The struct lives until no CQE can name it and no list holds it. */
static void conn_release(struct conn *c)
{
    if (c->recv_armed || c->sending || c->queued || c->starved)
        return;
    close(c->fd);
    free(c);
}

static void conn_fail(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    /* Wakes a recv or send waiting on the socket, so their last CQEs come
     * now; the data still to echo has nowhere to go. */
    if (c->recv_armed || c->sending)
        shutdown(c->fd, SHUT_RDWR);
    while (c->held_count) {
        buf_return(c->held_head);
        c->held_head = srv.held[c->held_head].next;
        c->held_count--;
        srv.held_total--;
    }
    conn_release(c);
}

/* After EOF: close once the last echo is out. */
static void conn_finish_if_done(struct conn *c)
{
    if (c->eof && !c->sending && c->off == c->len && !c->held_count) {
        c->closing = true;
        conn_release(c);
    }
}

static void on_recv(struct conn *c, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->cancelling = false;
    }
    if (cqe->res > 0) {
        if (!(cqe->flags & IORING_CQE_F_BUFFER))
            die("recv without a buffer", EPROTO);
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        unsigned n = (unsigned)cqe->res;
        if (c->closing) {
            buf_return(bid);
        } else if (!c->held_count && c->len + n <= OUT_SIZE) {
            memcpy(c->out + c->len, buf_addr(bid), n);
            c->len += n;
            buf_return(bid);
            queue_send(c);
        } else {
            srv.held[bid].len = n;
            if (c->held_count++)
                srv.held[c->held_tail].next = (uint16_t)bid;
            else
                c->held_head = (uint16_t)bid;
            c->held_tail = (uint16_t)bid;
            srv.held_total++;
            if (c->held_count >= HOLD_MAX && c->recv_armed && !c->cancelling)
                cancel_recv(c);
        }
        /* The kernel may end a multishot that has not failed (a full CQ):
         * it only needs arming again. */
        if (c->closing)
            conn_release(c);
        else
            maybe_arm_recv(c);
        return;
    }
    /* The kernel puts back the buffer of a recv that got nothing, but a
     * buffer flag on an empty CQE would be ours to return. */
    if (cqe->flags & IORING_CQE_F_BUFFER)
        buf_return(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (c->closing) {
        conn_release(c);
    } else if (cqe->res == -ECANCELED) {
        /* Ours, from cancel_recv; the echoes may have drained since. */
        maybe_arm_recv(c);
    } else if (cqe->res == -ENOBUFS) {
        c->starved = true;
        c->next_starved = srv.starved;
        srv.starved = c;
    } else if (cqe->res == 0) {
        c->eof = true;
        conn_finish_if_done(c);
    } else {
        conn_fail(c);
    }
}

/* Moves held buffers into out while they fit; out may be compacted since no
 * send is in flight. */
static void refill(struct conn *c)
{
    if (c->off) {
        memmove(c->out, c->out + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    while (c->held_count) {
        unsigned bid = c->held_head, n = srv.held[bid].len;
        if (c->len + n > OUT_SIZE)
            break;
        memcpy(c->out + c->len, buf_addr(bid), n);
        c->len += n;
        buf_return(bid);
        c->held_head = srv.held[bid].next;
        c->held_count--;
        srv.held_total--;
    }
}

static void on_send(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->sending = false;
    if (c->closing) {
        conn_release(c);
        return;
    }
    if (cqe->res <= 0) {
        conn_fail(c);
        return;
    }
    /* A short send leaves the rest in out, for the next one. */
    c->off += (unsigned)cqe->res;
    if (c->off == c->len)
        c->off = c->len = 0;
    if (c->held_count)
        refill(c);
    maybe_arm_recv(c);
    if (c->off < c->len)
        queue_send(c);
    else
        conn_finish_if_done(c);
}

static void flush_sends(void)
{
    while (srv.flush) {
        struct conn *c = srv.flush;
        srv.flush = c->next_flush;
        c->queued = false;
        if (c->closing) {
            conn_release(c);
            continue;
        }
        struct io_uring_sqe *sqe = get_sqe(&srv.ring);
        /* MSG_NOSIGNAL: a client gone mid-echo is an EPIPE, not a SIGPIPE. */
        io_uring_prep_send(sqe, c->fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | UD_SEND);
        c->sending = true;
    }
}

static void rearm_starved(void)
{
    /* Re-armed while the ring is still empty they would only fail again. */
    if (srv.held_total > BUF_COUNT / 2)
        return;
    while (srv.starved) {
        struct conn *c = srv.starved;
        srv.starved = c->next_starved;
        c->starved = false;
        if (c->closing)
            conn_release(c);
        else
            maybe_arm_recv(c);
    }
}

static void arm_accept(int lfd)
{
    struct io_uring_sqe *sqe = get_sqe(&srv.ring);
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, UD_ACCEPT);
}

static void on_accept(int lfd, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        arm_accept(lfd);
    if (cqe->res < 0) {
        /* ECONNABORTED, EMFILE and the like: the next one may work. */
        if (cqe->res != -ECONNABORTED)
            fprintf(stderr, "liburing: accept: %s\n", strerror(-cqe->res));
        return;
    }
    int fd = cqe->res;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = malloc(sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    /* Not calloc: out need not be zeroed, only the header. */
    memset(c, 0, offsetof(struct conn, out));
    c->fd = fd;
    arm_recv(c);
}

static int echo_server(const char *hostport)
{
    struct sockaddr_in sa;
    if (bench_parse_hostport(hostport, &sa) < 0)
        return usage("echo-server takes HOST:PORT with an IPv4 HOST");

    /* SIGTERM and SIGINT become data on a signalfd read through the ring:
     * the stop is one more CQE, and io_uring_enter is never left blocked
     * with a signal pending. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        die("sigprocmask", errno);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd", errno);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket", errno);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind", errno);
    if (listen(lfd, BACKLOG) < 0)
        die("listen", errno);
    socklen_t slen = sizeof sa;
    if (getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0)
        die("getsockname", errno);

    ring_setup(&srv.ring, RING_ENTRIES);
    bufs_setup();
    arm_accept(lfd);
    static struct signalfd_siginfo si;
    struct io_uring_sqe *sqe = get_sqe(&srv.ring);
    io_uring_prep_read(sqe, sfd, &si, sizeof si, 0);
    io_uring_sqe_set_data64(sqe, UD_SIGNAL);

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    bool stop = false;
    while (!stop) {
        submit_and_wait(&srv.ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&srv.ring, head, cqe) {
            uint64_t ud = cqe->user_data;
            struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)UD_MASK);
            switch (ud & UD_MASK) {
            case UD_RECV:
                on_recv(c, cqe);
                break;
            case UD_SEND:
                on_send(c, cqe);
                break;
            case UD_ACCEPT:
                on_accept(lfd, cqe);
                break;
            case UD_SIGNAL:
                stop = true;
                break;
            case UD_CANCEL:
                break; /* the recv's own CQE says how it ended */
            }
            seen++;
        }
        io_uring_cq_advance(&srv.ring, seen);
        flush_sends();
        rearm_starved();
        if (srv.returned) {
            io_uring_buf_ring_advance(srv.br, (int)srv.returned);
            srv.returned = 0;
        }
    }
    /* Open connections are left to exit(), which closes them: the stop is
     * as prompt as one loop turn. */
    fprintf(stderr, "liburing: echo-server stopping on signal\n");
    return 0;
}

/* ---- file ----------------------------------------------------------------- */

#define BLOCK 4096u

struct file_run {
    struct io_uring ring;
    int fd;             /* the fd in the SQE: 0 in the registered table, or the real one */
    bool fixed_file;
    bool fixed_bufs;
    char *bufs;         /* one BLOCK per read in flight */
    uint64_t *started;  /* when each slot's read was prepared */
    uint64_t blocks;
    uint64_t rng;
};

static void submit_read(struct file_run *r, unsigned slot, uint64_t now)
{
    uint64_t offset = bench_splitmix64(&r->rng) % r->blocks * BLOCK;
    char *buf = r->bufs + (size_t)slot * BLOCK;
    struct io_uring_sqe *sqe = get_sqe(&r->ring);
    if (r->fixed_bufs)
        io_uring_prep_read_fixed(sqe, r->fd, buf, BLOCK, offset, 0);
    else
        io_uring_prep_read(sqe, r->fd, buf, BLOCK, offset);
    if (r->fixed_file)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, slot);
    r->started[slot] = now;
}

static int skip_direct(void)
{
    printf("SKIP file O_DIRECT not supported here\n");
    return 0;
}

static int file(const char *path, long tasks, double seconds, bool direct)
{
    static struct file_run r;
    static struct hist h;
    hist_init(&h);
    int fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd < 0 && direct && errno == EINVAL)
        return skip_direct();
    if (fd < 0)
        die(path, errno);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die(path, errno);
    if (st.st_size < (off_t)BLOCK)
        die(path, EINVAL);
    r.blocks = (uint64_t)st.st_size / BLOCK;
    r.rng = 0x5eed;

    unsigned entries = tasks > 32768 ? 32768 : (unsigned)tasks;
    ring_setup(&r.ring, entries < 8 ? 8 : entries);
    /* O_DIRECT wants block-aligned buffers; page-aligned serves both. */
    size_t len = (size_t)tasks * BLOCK;
    if (posix_memalign((void **)&r.bufs, BLOCK, len) != 0)
        die("posix_memalign", ENOMEM);
    memset(r.bufs, 0, len);
    r.started = malloc((size_t)tasks * sizeof *r.started);
    if (!r.started)
        die("malloc", ENOMEM);

    /* A registered file spares each read the file-table lookup and its
     * reference count; registered buffers spare each O_DIRECT read pinning
     * its page.  Both are savings, so a refusal (RLIMIT_MEMLOCK for the
     * buffers) just means plain reads. */
    r.fd = fd;
    if (io_uring_register_files(&r.ring, &fd, 1) == 0) {
        r.fd = 0;
        r.fixed_file = true;
    }
    struct iovec iov = {.iov_base = r.bufs, .iov_len = len};
    r.fixed_bufs = io_uring_register_buffers(&r.ring, &iov, 1) == 0;

    uint64_t t0 = bench_now_ns();
    uint64_t end = t0 + (uint64_t)(seconds * 1e9);
    for (long i = 0; i < tasks; i++)
        submit_read(&r, (unsigned)i, t0);
    long inflight = tasks;
    uint64_t reads = 0, now = t0;
    while (inflight) {
        submit_and_wait(&r.ring, 1);
        /* One clock read per batch: every CQE in it was posted by the
         * io_uring_enter that just returned. */
        now = bench_now_ns();
        bool more = now < end;
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&r.ring, head, cqe) {
            unsigned slot = (unsigned)cqe->user_data;
            if (cqe->res != (int)BLOCK) {
                if (cqe->res == -EINVAL && direct && reads == 0)
                    return skip_direct();
                fprintf(stderr, "liburing: read of %s: %s\n", path,
                        cqe->res < 0 ? strerror(-cqe->res) : "short read");
                return 1;
            }
            hist_record(&h, now - r.started[slot]);
            reads++;
            if (more)
                submit_read(&r, slot, now);
            else
                inflight--;
            seen++;
        }
        io_uring_cq_advance(&r.ring, seen);
    }
    double elapsed = (double)(now - t0) / 1e9;
    io_uring_queue_exit(&r.ring);
    close(fd);
    free(r.bufs);
    free(r.started);
    bench_result("file_reads_per_s", (double)reads / elapsed);
    bench_result("file_p99_us", (double)hist_percentile(&h, 99) / 1e3);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage("usage: liburing WORKLOAD ARGS...");
    const char *w = argv[1];
    int nargs = argc - 2;
    if (strcmp(w, "sleepers") == 0 || strcmp(w, "timer") == 0) {
        if (nargs != 2)
            return usage("sleepers and timer take N MS");
        long n = bench_count(argv[2]), ms = bench_count(argv[3]);
        if (n < 0 || ms < 0)
            return usage("N and MS must be positive counts");
        return w[0] == 's' ? sleepers(n, ms) : timer(n, ms);
    }
    if (strcmp(w, "echo-server") == 0) {
        if (nargs != 1)
            return usage("echo-server takes HOST:PORT");
        return echo_server(argv[2]);
    }
    if (strcmp(w, "file") == 0) {
        if (nargs != 4)
            return usage("file takes PATH TASKS SECONDS DIRECT");
        long tasks = bench_count(argv[3]);
        double seconds = atof(argv[4]);
        if (tasks < 0 || !(seconds > 0))
            return usage("file: TASKS must be a positive count and SECONDS positive");
        return file(argv[2], tasks, seconds, atoi(argv[5]) != 0);
    }
    return bench_unsupported(w);
}
