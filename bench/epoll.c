/*
 * epoll.c - the hand-written epoll peer of urt's benchmark suite: no runtime
 * at all, one thread, the readiness loop a C programmer writes when speed is
 * the point.  It shows what urt's fibers and io_uring cost or save against
 * the classic way of writing a Linux server.
 *
 *   build/bench/epoll WORKLOAD ARGS...
 *
 * bench/README.md defines the workloads, their arguments and the RESULT
 * lines.  Only two make sense here, there being no tasks to spawn, switch or
 * put to sleep by the thousand:
 *
 *   echo-server HOST:PORT   a level-triggered epoll echo server (why level
 *                           and not edge: see serve_conn())
 *   timer N MS              N sequential MS-ms waits on a timerfd in epoll
 *
 * Every other workload prints UNSUPPORTED and exits 3.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common.h"
#include "hist.h"

#define USAGE 2

/* One read takes whatever a pipelining client has sent; 64 KiB is more than
 * the socket usually holds, so a read seldom leaves data behind. */
#define READ_BUF (64 * 1024)
/* epoll_wait returns at most this many events: enough that with hundreds of
 * busy connections one call collects them all. */
#define MAX_EVENTS 4096
#define BACKLOG 4096

static int usage(const char *msg)
{
    fprintf(stderr, "epoll: %s\n", msg);
    return USAGE;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* --- echo-server ----------------------------------------------------------- */

struct conn {
    int fd;
    bool dead;
    /* Bytes read but not yet written back, waiting for EPOLLOUT: only a
     * client that stops reading ever leaves any. */
    char *pend;
    size_t pend_len, pend_off;
    /* The list of connections closed during one batch of events. */
    struct conn *next_dead;
};

/* The listening socket and the signalfd are told apart from connections by
 * these addresses in epoll_data. */
static char listen_tag, signal_tag;

static char read_buf[READ_BUF];
static struct conn *dead_list;

static void conn_close(struct conn *c)
{
    /* Closing the fd removes it from the epoll set.  The struct itself lives
     * until the batch is over: a later event in the same batch may still
     * point at it, and accept4 may already have handed its fd number to a
     * new connection, so the fd alone cannot tell stale events apart. */
    close(c->fd);
    c->dead = true;
    c->next_dead = dead_list;
    dead_list = c;
}

static void set_interest(int ep, struct conn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        conn_close(c);
}

/* Write back what the socket would not take at once; true when it all went. */
static bool flush_pending(struct conn *c)
{
    while (c->pend_off < c->pend_len) {
        ssize_t w = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_close(c);
            return false;
        }
        c->pend_off += (size_t)w;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = 0;
    return true;
}

/*
 * Level-triggered, one read per readiness event, then the write straight
 * back.  For 64-byte request/response that is the fewest syscalls: edge-
 * triggered would have to read until EAGAIN to be safe, an extra read() that
 * fails on every request, while level-triggered can stop after one read and
 * rely on epoll to report the socket again if anything was left.  A read
 * that fills the 64 KiB buffer is the rare case that costs one more
 * epoll_wait round.
 *
 * A short write is kept and the connection switched to EPOLLOUT only: not
 * reading until the backlog drains is the backpressure that keeps a client
 * that never reads from growing our memory without bound.
 */
static void serve_conn(int ep, struct conn *c, uint32_t events)
{
    if (c->pend) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (flush_pending(c))
            set_interest(ep, c, EPOLLIN);
        return;
    }
    ssize_t n = read(c->fd, read_buf, sizeof read_buf);
    if (n <= 0) {
        /* EAGAIN: a stale report for a socket already drained. */
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    ssize_t w = write(c->fd, read_buf, (size_t)n);
    if (w == n)
        return;
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            conn_close(c);
            return;
        }
        w = 0;
    }
    c->pend_len = (size_t)(n - w);
    c->pend_off = 0;
    c->pend = malloc(c->pend_len);
    if (!c->pend)
        die("malloc");
    memcpy(c->pend, read_buf + w, c->pend_len);
    set_interest(ep, c, EPOLLOUT);
}

static void accept_all(int ep, int lfd)
{
    /* Level-triggered would report the listener again, but draining the
     * accept queue here takes a burst of connects in one epoll round. */
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                perror("accept4"); /* EMFILE and the like: retried next round */
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
            die("calloc");
        c->fd = fd;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_ctl");
            close(fd);
            free(c);
        }
    }
}

static int echo_server(const char *hostport)
{
    struct sockaddr_in sa;
    if (bench_parse_hostport(hostport, &sa) < 0)
        return usage("echo-server takes HOST:PORT with an IPv4 HOST");

    /* A client that closes with echoes in flight must cost us an EPIPE, not
     * the process. */
    signal(SIGPIPE, SIG_IGN);

    /* The signals arrive as readable data on a descriptor in the same epoll
     * set, so stopping needs no handler and no flag checked per event. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        die("sigprocmask");
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(lfd, BACKLOG) < 0)
        die("listen");
    socklen_t slen = sizeof sa;
    if (getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0)
        die("getsockname");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &listen_tag };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    ev.data.ptr = &signal_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
        die("epoll_ctl");

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    static struct epoll_event events[MAX_EVENTS];
    bool stop = false;
    while (!stop) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &listen_tag) {
                accept_all(ep, lfd);
            } else if (p == &signal_tag) {
                stop = true;
            } else {
                struct conn *c = p;
                if (!c->dead)
                    serve_conn(ep, c, events[i].events);
            }
        }
        while (dead_list) {
            struct conn *c = dead_list;
            dead_list = c->next_dead;
            free(c->pend);
            free(c);
        }
    }
    /* Open connections are left to exit(): the kernel closes them, and the
     * stop is as prompt as one epoll round. */
    fprintf(stderr, "epoll: echo-server stopping on signal\n");
    return 0;
}

/* --- timer ----------------------------------------------------------------- */

static int timer(long n, long ms)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep < 0 || tfd < 0)
        die("epoll_create1/timerfd_create");
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = tfd };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
        die("epoll_ctl");

    /* A relative one-shot armed at the start of each wait, as a program
     * waiting "MS from now" would; an absolute or periodic timer would hide
     * the lateness of one wait from the next. */
    struct itimerspec its = {
        .it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
    };
    uint64_t want = (uint64_t)ms * 1000000u;
    static struct hist h;
    hist_init(&h);
    long early = 0;
    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        if (timerfd_settime(tfd, 0, &its, NULL) < 0)
            die("timerfd_settime");
        struct epoll_event out;
        int r;
        do
            r = epoll_wait(ep, &out, 1, -1);
        while (r < 0 && errno == EINTR);
        if (r != 1)
            die("epoll_wait");
        uint64_t t1 = bench_now_ns();
        uint64_t expirations;
        if (read(tfd, &expirations, sizeof expirations) != sizeof expirations)
            die("read timerfd");
        /* hrtimers never fire early; the count is here to prove it. */
        if (t1 - t0 < want)
            early++;
        hist_record(&h, t1 - t0 >= want ? t1 - t0 - want : 0);
    }
    if (early)
        fprintf(stderr, "timer: %ld of %ld waits ended early\n", early, n);
    bench_result("timer_p50_us", (double)hist_percentile(&h, 50) / 1000);
    bench_result("timer_p99_us", (double)hist_percentile(&h, 99) / 1000);
    bench_result("timer_p999_us", (double)hist_percentile(&h, 99.9) / 1000);
    close(tfd);
    close(ep);
    return 0;
}

/* --- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage("usage: epoll WORKLOAD ARGS...");
    const char *w = argv[1];
    int nargs = argc - 2;
    if (strcmp(w, "echo-server") == 0) {
        if (nargs != 1)
            return usage("echo-server takes HOST:PORT");
        return echo_server(argv[2]);
    }
    if (strcmp(w, "timer") == 0) {
        if (nargs != 2)
            return usage("timer takes N MS");
        long n = bench_count(argv[2]), ms = bench_count(argv[3]);
        if (n < 0 || ms < 0)
            return usage("timer: N and MS must be positive counts");
        return timer(n, ms);
    }
    return bench_unsupported(w);
}
