/*
 * loadgen.c - the TCP echo load generator every echo-server peer is measured
 * with, ours so that all of them meet the same client (bench/README.md has
 * the command line and the RESULT lines).
 *
 *   loadgen -a HOST:PORT -c CONNECTIONS -d SECONDS [-w WARMUP] [-p DEPTH]
 *           [-r RATE] [-s SIZE] [-P SERVER_PID]
 *
 * It runs pinned to one core beside the server on the other, and it is the
 * ceiling of every figure it reports, so the loop is built to spend as few
 * syscalls per request as it can: one thread, nonblocking sockets in one
 * edge-triggered epoll set that is never modified (no epoll_ctl per request),
 * one recv and one send per response in the steady state, plus one
 * epoll_wait shared by all the connections that are ready together.
 *
 * Three ways to load the server:
 *
 *   closed loop (default): every connection keeps exactly one request in
 *     flight and sends the next one when the response is back.  Throughput
 *     is whatever the server (or we) can do; latency is from the write of a
 *     request to the last byte of its response.
 *   pipelined (-p DEPTH): the same with DEPTH requests in flight per
 *     connection: DEPTH written back to back at the start, then one new
 *     request per complete response, so the server sees batches and a
 *     runtime that reads and writes in bulk can show it.
 *   open loop (-r RATE): requests are due on a fixed schedule, RATE per
 *     second in all, request n due at start + n/RATE on connection n mod
 *     CONNECTIONS.  A connection whose previous request is still out when
 *     the next is due queues it and pipelines it as soon as the socket takes
 *     it.  Latency is from when the request was due, not from when it was
 *     sent: a closed loop that stalls with the server sends nothing during
 *     the stall, so the requests a real client would have sent meanwhile
 *     are never measured ("coordinated omission"); charging each request
 *     from its due time puts the queueing a slow server causes back into
 *     the percentiles.  The schedule is kept by sleeping in epoll_pwait2
 *     until shortly before the next due time and then spinning on the
 *     clock, so requests go out within microseconds of when they are due
 *     (the summary on stderr reports how late they went).
 *
 * Every response is checked byte for byte.  Request k of connection i is
 * SIZE bytes: a 16-byte header (k, i and a magic) and then a fixed
 * pseudo-random body, so lost, duplicated, reordered or crossed bytes show
 * up as a header that does not match.  The expected stream is a pure
 * function of (i, k, offset), so responses are checked as they arrive, in
 * whatever pieces recv returns, against what should be at that offset: no
 * reassembly, and one receive buffer serves every connection.  A mismatch
 * is counted as an error and the connection is closed, because after a
 * lost byte nothing later on it can be trusted; the same for EOF, a reset
 * or any other socket error.  The run goes on with the connections left,
 * and the exit status is 1 if there was any error.
 *
 * Windows: the warm-up runs first, unmeasured; then the measured window of
 * SECONDS.  echo_rps counts the responses completed inside the window;
 * the latency histogram holds every request issued inside it (written, in
 * the closed loop; due, in the open loop).  At the end of the window no new
 * requests are issued and the ones in flight get a short drain to come
 * back; any still unanswered after it are recorded with their latency so
 * far, a lower bound, so that a server that stops answering shows up as
 * huge latencies rather than as requests that silently never happened.
 * The run therefore always ends by WARMUP + SECONDS + DRAIN, whatever the
 * server does.
 *
 * Only loopback addresses are accepted (127.0.0.0/8 and ::1; anything else
 * exits 2), and connecting gives up after 10 s.
 *
 * With -P, the server's CPU time over the window is read two ways at both
 * ends of it.  utime + stime in /proc/PID/stat are the whole thread group's
 * (do_task_stat() sums every thread, dead ones included) and add up to the
 * scheduler's run time, but in clock ticks of 10 ms: over 2 s at 20,000
 * requests/s a tick is 250 ns a request, too coarse to tell apart servers
 * that spend 2-6 us a request and differ by 10-20%.  The first field of
 * /proc/PID/task/TID/schedstat is the same run time, one thread's, in ns;
 * but a thread that has exited is no longer listed, so the time it ran in
 * the window would silently drop out of the sum.  The schedstat sum is
 * therefore used only if every thread id listed at the start of the window
 * is still listed at its end (one that appears meanwhile is counted from 0,
 * its value at creation, and runtimes such as Go's start threads whenever
 * they like) and the sum agrees with the ticks to within their rounding,
 * which also catches a thread born and gone inside the window or a reused
 * id; otherwise, or where the kernel has no schedstat (built without
 * CONFIG_SCHED_INFO: the file is missing), the ticks are.  stderr says
 * which and why, and server_cpu_source is 1 for schedstat, 0 for ticks.
 * Both figures come from the same counter, which the kernel brings up to
 * date for a thread on a CPU only at a scheduler tick or switch, so either
 * can lag by part of a tick (4 ms at HZ=250) for a server thread that is
 * running at the instant it is read: noise for one that sleeps between
 * requests, and at most 0.2% of a 2 s window for one that never does.
 */
#define _GNU_SOURCE /* epoll_pwait2 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "common.h"
#include "hist.h"

#define USAGE 2
#define NS 1000000000ull

/* Connecting is given this long in all before the run is abandoned. */
#define CONNECT_TIMEOUT_NS (10 * NS)
/* Connects in progress at once: a server with a short listen backlog
 * would otherwise drop SYNs, and a dropped SYN costs a 1 s retransmit. */
#define CONNECT_PENDING 128
/* How long requests still in flight at the end of the window may take to
 * come back; on loopback a healthy server needs microseconds. */
#define DRAIN_NS (100 * 1000000ull)
/* The open loop sleeps until this long before the next due time and spins
 * from there: a timed sleep wakes some tens of microseconds late. */
#define SPIN_NS (200 * 1000ull)
/* One recv takes up to this much; larger than a loopback socket usually
 * holds, so a recv seldom has to be repeated. */
#define RBUF (256 * 1024)
/* Requests are formatted here before one send takes them all. */
#define WBUF (64 * 1024)
#define MAX_EVENTS 1024
#define HDR 16
#define MAGIC 0x4c747275u /* "urtL" */
/* Connection errors printed one by one before the rest are only counted. */
#define ERRORS_PRINTED 5

struct conn {
    int fd; /* -1 once it has failed */
    uint32_t id;
    uint8_t connected;
    uint8_t blocked; /* the last send hit a full socket: wait for EPOLLOUT */
    uint8_t queued;  /* on the open loop's list of connections to flush */
    /* Requests are numbered per connection from 0.  want: how many have been
     * issued; wseq/woff: the next byte to write is byte woff of request
     * wseq; rseq/roff: the next byte expected back. */
    uint64_t want, wseq, rseq;
    uint32_t woff, roff;
    uint64_t *sent_at; /* closed loop: issue time of request k at k % depth */
};

static struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *addr_text;
    unsigned conns;
    unsigned depth;
    uint64_t rate; /* 0: closed loop */
    uint32_t size;
    uint32_t hdrlen; /* bytes of the header that fit in size */
    uint64_t warmup_ns, window_ns;
    long pid; /* 0: no -P */
} cfg;

static struct conn *conns;
static struct conn **flush_list;
static unsigned flush_count;
static uint8_t *body; /* size bytes; the first hdrlen are unused */
static uint8_t rbuf[RBUF];
static uint8_t wbuf[WBUF];
static struct epoll_event ev[MAX_EVENTS];
static struct hist lat;      /* request latency */
static struct hist late;     /* open loop: how late each request was issued */

static uint64_t t_start, t_window, t_end;
static uint64_t inflight; /* issued and not yet answered, live connections */
static unsigned alive;
static uint64_t answered;   /* responses completed inside the window */
static uint64_t sent;       /* requests fully written inside the window */
static uint64_t mismatches, conn_errors, unanswered;
static uint64_t next_n, next_due; /* open loop: the next request due */

static int usage(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n"
            "usage: loadgen -a HOST:PORT -c CONNECTIONS -d SECONDS [-w WARMUP] [-p DEPTH]\n"
            "               [-r RATE] [-s SIZE] [-P SERVER_PID]\n", msg);
    return USAGE;
}

static int in_window(uint64_t t)
{
    return t >= t_window && t < t_end;
}

/* Integer arithmetic so that the schedule neither drifts nor rounds: the
 * remainder term stays below 2^64 for any rate up to 10^9. */
static uint64_t due_at(uint64_t n)
{
    return t_start + n / cfg.rate * NS + n % cfg.rate * NS / cfg.rate;
}

static uint64_t issued_at(const struct conn *c, uint64_t k)
{
    if (cfg.rate)
        return due_at(k * cfg.conns + c->id);
    return c->sent_at[k % cfg.depth];
}

static void header(uint8_t *h, uint32_t id, uint64_t k)
{
    uint32_t magic = MAGIC;
    memcpy(h, &k, 8);
    memcpy(h + 8, &id, 4);
    memcpy(h + 12, &magic, 4);
}

/* Bytes [off, off + n) of request k of c, which the response must repeat. */
static void request_bytes(const struct conn *c, uint64_t k, uint32_t off, uint8_t *dst, uint32_t n)
{
    if (off < cfg.hdrlen) {
        uint8_t h[HDR];
        header(h, c->id, k);
        uint32_t m = cfg.hdrlen - off < n ? cfg.hdrlen - off : n;
        memcpy(dst, h + off, m);
        dst += m;
        off += m;
        n -= m;
    }
    memcpy(dst, body + off, n);
}

static int response_matches(const struct conn *c, uint64_t k, uint32_t off, const uint8_t *p, uint32_t n)
{
    if (off < cfg.hdrlen) {
        uint8_t h[HDR];
        header(h, c->id, k);
        uint32_t m = cfg.hdrlen - off < n ? cfg.hdrlen - off : n;
        if (memcmp(p, h + off, m) != 0)
            return 0;
        p += m;
        off += m;
        n -= m;
    }
    return memcmp(p, body + off, n) == 0;
}

/* err > 0: an errno; 0: the server misbehaved; MISMATCH: it answered
 * something other than what it was sent. */
#define MISMATCH (-1)

static void conn_fail(struct conn *c, const char *what, int err)
{
    if (err == MISMATCH)
        mismatches++;
    else
        conn_errors++;
    uint64_t errors = mismatches + conn_errors;
    if (errors <= ERRORS_PRINTED)
        fprintf(stderr, "loadgen: connection %u: %s%s%s\n", c->id, what,
                err > 0 ? ": " : "", err > 0 ? strerror(err) : "");
    if (errors == ERRORS_PRINTED + 1)
        fprintf(stderr, "loadgen: (further errors only counted)\n");
    inflight -= c->want - c->rseq;
    close(c->fd);
    c->fd = -1;
    alive--;
}

static void issue(struct conn *c, uint64_t now)
{
    if (!cfg.rate)
        c->sent_at[c->want % cfg.depth] = now;
    c->want++;
    inflight++;
}

/* Writes what c has issued and not yet written, as far as the socket takes
 * it.  A short send is followed by one more, whose EAGAIN is what arms the
 * socket's write-space wakeup for the edge-triggered EPOLLOUT. */
static void flush(struct conn *c, uint64_t now)
{
    while (c->wseq < c->want) {
        uint64_t k = c->wseq;
        uint32_t off = c->woff;
        size_t len = 0;
        while (k < c->want && len < WBUF) {
            uint32_t n = cfg.size - off;
            if (n > WBUF - len)
                n = (uint32_t)(WBUF - len);
            request_bytes(c, k, off, wbuf + len, n);
            len += n;
            off += n;
            if (off == cfg.size) {
                k++;
                off = 0;
            }
        }
        ssize_t r = send(c->fd, wbuf, len, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->blocked = 1;
                return;
            }
            if (errno == EINTR)
                continue;
            conn_fail(c, "send", errno);
            return;
        }
        uint64_t pos = c->woff + (uint64_t)r;
        uint64_t done = pos / cfg.size;
        c->wseq += done;
        c->woff = (uint32_t)(pos % cfg.size);
        if (in_window(now))
            sent += done;
    }
}

static void complete(struct conn *c, uint64_t now)
{
    uint64_t t = issued_at(c, c->rseq);
    if (in_window(t))
        hist_record(&lat, now - t);
    if (in_window(now))
        answered++;
    c->rseq++;
    inflight--;
    if (!cfg.rate && now < t_end)
        issue(c, now);
}

/* Checks n bytes just received on c against the requests it has written,
 * completing every response they finish.  0, or -1 if c has failed. */
static int consume(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    uint64_t owed = (c->wseq - c->rseq) * cfg.size + c->woff - c->roff;
    if (n > owed) {
        conn_fail(c, "the server sent more bytes than it was sent", MISMATCH);
        return -1;
    }
    while (n) {
        uint32_t m = cfg.size - c->roff;
        if (m > n)
            m = (uint32_t)n;
        if (!response_matches(c, c->rseq, c->roff, p, m)) {
            conn_fail(c, "response does not match its request", MISMATCH);
            return -1;
        }
        p += m;
        n -= m;
        c->roff += m;
        if (c->roff == cfg.size) {
            c->roff = 0;
            complete(c, now);
        }
    }
    return 0;
}

/* Edge-triggered, so the socket must be read until it is empty; a recv that
 * returns less than asked for has emptied it, and any byte arriving after
 * that raises a new edge, so the EAGAIN recv that would prove it is saved. */
static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, RBUF, 0);
        if (n <= 0) {
            if (n == 0)
                conn_fail(c, "the server closed the connection", 0);
            else if (errno == EINTR)
                continue;
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(c, "recv", errno);
            return;
        }
        uint64_t now = bench_now_ns();
        if (consume(c, rbuf, (size_t)n, now) < 0)
            return;
        if (c->wseq < c->want && !c->blocked) {
            flush(c, now);
            if (c->fd < 0)
                return;
        }
        if (n < RBUF)
            return;
    }
}

/* Open loop: issues every request due by now to its connection, then writes
 * each connection's new requests with one send. */
static void schedule(uint64_t now)
{
    while (next_due <= now && next_due < t_end) {
        struct conn *c = &conns[next_n % cfg.conns];
        if (c->fd >= 0) {
            if (in_window(next_due))
                hist_record(&late, now - next_due);
            issue(c, now);
            if (!c->queued) {
                c->queued = 1;
                flush_list[flush_count++] = c;
            }
        }
        next_due = due_at(++next_n);
    }
    for (unsigned i = 0; i < flush_count; i++) {
        struct conn *c = flush_list[i];
        c->queued = 0;
        if (c->fd >= 0 && !c->blocked)
            flush(c, now);
    }
    flush_count = 0;
}

static int wait_events(int ep, uint64_t now, uint64_t until)
{
    struct timespec ts = {0, 0};
    if (until > now) {
        uint64_t d = until - now;
        ts.tv_sec = (time_t)(d / NS);
        ts.tv_nsec = (long)(d % NS);
    }
    int n = epoll_pwait2(ep, ev, MAX_EVENTS, &ts, NULL);
    if (n < 0 && errno != EINTR) {
        perror("loadgen: epoll_pwait2");
        exit(1);
    }
    return n < 0 ? 0 : n;
}

static int open_conn(int ep, struct conn *c)
{
    c->fd = socket(cfg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("loadgen: socket");
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) == 0)
        c->connected = 1;
    else if (errno != EINPROGRESS) {
        fprintf(stderr, "loadgen: connect %s: %s\n", cfg.addr_text, strerror(errno));
        return -1;
    }
    /* Registered once for both directions: with EPOLLET, EPOLLOUT is only
     * signalled after a send has found the socket full, so it costs
     * nothing while sends go through. */
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = c->id};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        perror("loadgen: epoll_ctl");
        return -1;
    }
    return 0;
}

/* Opens every connection, CONNECT_PENDING at a time; 0 once all are
 * established, -1 (reported) on any failure or after CONNECT_TIMEOUT_NS. */
static int connect_all(int ep)
{
    uint64_t deadline = bench_now_ns() + CONNECT_TIMEOUT_NS;
    unsigned opened = 0, pending = 0, established = 0;
    while (established < cfg.conns) {
        while (opened < cfg.conns && pending < CONNECT_PENDING) {
            struct conn *c = &conns[opened++];
            if (open_conn(ep, c) < 0)
                return -1;
            if (c->connected)
                established++;
            else
                pending++;
        }
        if (established == cfg.conns)
            break;
        uint64_t now = bench_now_ns();
        if (now >= deadline) {
            fprintf(stderr, "loadgen: %u of %u connections to %s established after %llu s; giving up\n",
                    established, cfg.conns, cfg.addr_text,
                    (unsigned long long)(CONNECT_TIMEOUT_NS / NS));
            return -1;
        }
        int n = wait_events(ep, now, deadline);
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[ev[i].data.u32];
            if (c->connected)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
            if (err) {
                fprintf(stderr, "loadgen: connect %s: %s\n", cfg.addr_text, strerror(err));
                return -1;
            }
            if (ev[i].events & EPOLLOUT) {
                c->connected = 1;
                pending--;
                established++;
            }
        }
    }
    return 0;
}

/* A small /proc file into buf, NUL-terminated; false if it cannot be read. */
static bool read_proc_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* utime + stime of the whole process, in clock ticks; -1 if it is gone. */
static int64_t server_ticks(long pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (!read_proc_file(path, buf, sizeof buf))
        return -1;
    /* The command name, field 2, may hold spaces and parentheses; the
     * fields after its last ')' are plain numbers, utime the 12th. */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st);
}

/* The first field of a schedstat file, the thread's run time in ns; -1 if
 * it cannot be read. */
static int64_t schedstat_ns(const char *path)
{
    char buf[128];
    if (!read_proc_file(path, buf, sizeof buf))
        return -1;
    char *end;
    unsigned long long ns = strtoull(buf, &end, 10);
    return end == buf ? -1 : (int64_t)ns;
}

/* Whether the kernel keeps schedstat: without CONFIG_SCHED_INFO the file is
 * missing, and kernels that have it but keep sched_info off show "0 0 0",
 * which no process that has run to here can really have. */
static int schedstat_works(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/schedstat", pid);
    return schedstat_ns(path) > 0;
}

/* The server's threads at one end of the window, from schedstat: the ids
 * read, sorted for bsearch, and the sum of their run times. */
struct threads {
    pid_t *tid;
    size_t n, cap;
    uint64_t ns;
};

static int by_tid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* Fills t with every thread of pid; -1 if they cannot be listed (the server
 * is gone) or memory runs out.  A thread listed but gone before its file
 * is read is left out: at the end of the window that makes the two sets
 * differ, as its exit should; at the start it only loses what it ran in
 * the microseconds the reading takes. */
static int server_threads(long pid, struct threads *t)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    t->n = 0;
    t->ns = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long tid = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || tid <= 0)
            continue; /* "." and ".." */
        snprintf(path, sizeof path, "/proc/%ld/task/%ld/schedstat", pid, tid);
        int64_t ns = schedstat_ns(path);
        if (ns < 0)
            continue;
        if (t->n == t->cap) {
            size_t cap = t->cap ? 2 * t->cap : 64;
            pid_t *p = realloc(t->tid, cap * sizeof *p);
            if (!p) {
                closedir(d);
                return -1;
            }
            t->tid = p;
            t->cap = cap;
        }
        t->tid[t->n++] = (pid_t)tid;
        t->ns += (uint64_t)ns;
    }
    closedir(d);
    qsort(t->tid, t->n, sizeof *t->tid, by_tid);
    return 0;
}

/* Why the schedstat figure cannot stand for the window, written into why;
 * NULL if it can.  tick_ns is the same window's figure from the ticks. */
static const char *schedstat_unusable(const struct threads *a, const struct threads *b,
                                      double tick_ns, char *why, size_t len)
{
    size_t gone = 0;
    for (size_t i = 0; i < a->n; i++)
        gone += !bsearch(&a->tid[i], b->tid, b->n, sizeof *b->tid, by_tid);
    if (gone) {
        snprintf(why, len, "%zu of its %zu threads exited in the window", gone, a->n);
        return why;
    }
    /* utime and stime are each rounded down to a tick, so the two figures
     * may differ by up to two ticks, and by what the server runs between
     * the reads of the two at either end (microseconds; a millisecond is
     * allowed).  Beyond that, the ticks saw run time that the threads
     * listed did not have: one that started and exited inside the window,
     * or an id that was reused. */
    double ns = (double)b->ns - (double)a->ns, tick = 1e9 / (double)sysconf(_SC_CLK_TCK);
    if (ns < tick_ns - 2 * tick - 1e6 || ns > tick_ns + 2 * tick + 1e6) {
        snprintf(why, len, "schedstat's %.3f ms and the ticks' %.0f ms disagree "
                 "(a thread born and gone in the window?)", ns / 1e6, tick_ns / 1e6);
        return why;
    }
    return NULL;
}

/* Parses -a into cfg.addr.  Only loopback is accepted: this program floods
 * whatever it is pointed at, and it is meant for nothing but this machine. */
static int only_loopback(const char *text)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || strlen(text) >= sizeof host)
        return usage("-a wants HOST:PORT");
    size_t hl = (size_t)(colon - text);
    memcpy(host, text, hl);
    host[hl] = '\0';
    char *h = host;
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        h++;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
        return usage("-a: bad port");
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    memset(&cfg.addr, 0, sizeof cfg.addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&cfg.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&cfg.addr;
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
            return usage("-a: only loopback addresses (127.0.0.0/8, ::1) are allowed");
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        cfg.addrlen = sizeof *a4;
    } else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return usage("-a: only loopback addresses (127.0.0.0/8, ::1) are allowed");
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        cfg.addrlen = sizeof *a6;
    } else {
        return usage("-a: HOST must be a numeric address or localhost");
    }
    cfg.addr_text = text;
    return 0;
}

static int seconds_arg(const char *s, uint64_t *ns, int zero_ok)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0) || (!zero_ok && v < 0.001) || v > 86400)
        return -1;
    *ns = (uint64_t)(v * 1e9);
    return 0;
}

/* Our own user+system time: next to the server's, it tells whether the
 * figures are the server's limit or ours. */
static uint64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * NS +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

int main(int argc, char **argv)
{
    const char *a = NULL;
    long c = 0, p = 1, r = 0, s = 64, pid = 0;
    int have_d = 0;
    cfg.warmup_ns = NS;
    int opt;
    while ((opt = getopt(argc, argv, "a:c:d:w:p:r:s:P:")) != -1) {
        switch (opt) {
        case 'a': a = optarg; break;
        case 'c': c = bench_count(optarg); if (c < 0 || c > 1000000) return usage("-c wants 1..1000000"); break;
        case 'd': if (seconds_arg(optarg, &cfg.window_ns, 0)) return usage("-d wants seconds >= 0.001"); have_d = 1; break;
        case 'w': if (seconds_arg(optarg, &cfg.warmup_ns, 1)) return usage("-w wants seconds >= 0"); break;
        case 'p': p = bench_count(optarg); if (p < 0 || p > 65536) return usage("-p wants 1..65536"); break;
        case 'r': r = bench_count(optarg); if (r < 0 || r > 1000000000) return usage("-r wants 1..1e9 requests/s"); break;
        case 's': s = bench_count(optarg); if (s < 0 || s > (1 << 24)) return usage("-s wants 1..16777216 bytes"); break;
        case 'P': pid = bench_count(optarg); if (pid < 0) return usage("-P wants a pid"); break;
        default: return usage("unknown option");
        }
    }
    if (optind != argc)
        return usage("unexpected argument");
    if (!a || !c || !have_d)
        return usage("-a, -c and -d are required");
    if (r && p != 1)
        return usage("-p and -r exclude each other: the open loop pipelines by itself");
    int err = only_loopback(a);
    if (err)
        return err;
    cfg.conns = (unsigned)c;
    cfg.depth = (unsigned)p;
    cfg.rate = (uint64_t)r;
    cfg.size = (uint32_t)s;
    cfg.hdrlen = cfg.size < HDR ? cfg.size : HDR;
    cfg.pid = pid;
    if (cfg.pid && server_ticks(cfg.pid) < 0) {
        fprintf(stderr, "loadgen: -P %ld: cannot read /proc/%ld/stat\n", cfg.pid, cfg.pid);
        return USAGE;
    }
    int have_schedstat = cfg.pid && schedstat_works(cfg.pid);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)cfg.conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "loadgen: %u connections need more than RLIMIT_NOFILE's %llu fds\n",
                cfg.conns, (unsigned long long)rl.rlim_cur);
        return USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Timed sleeps otherwise end up to 50 us late, on purpose. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    conns = calloc(cfg.conns, sizeof *conns);
    flush_list = calloc(cfg.conns, sizeof *flush_list);
    uint64_t *ring = cfg.rate ? NULL : calloc((size_t)cfg.conns * cfg.depth, sizeof *ring);
    body = malloc(cfg.size);
    if (!conns || !flush_list || (!cfg.rate && !ring) || !body) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    /* Pseudo-random, so that a response shifted by any number of bytes
     * differs from what is expected at its offset. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < cfg.size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body[i] = (uint8_t)x;
    }
    for (unsigned i = 0; i < cfg.conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        if (ring)
            conns[i].sent_at = ring + (size_t)i * cfg.depth;
    }
    hist_init(&lat);
    hist_init(&late);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("loadgen: epoll_create1");
        return 1;
    }
    uint64_t t_connect = bench_now_ns();
    if (connect_all(ep) < 0)
        return 1;
    alive = cfg.conns;

    uint64_t now = bench_now_ns();
    fprintf(stderr, "loadgen: %u connections to %s in %.1f ms\n", cfg.conns, cfg.addr_text,
            (double)(now - t_connect) / 1e6);
    t_start = now;
    t_window = t_start + cfg.warmup_ns;
    t_end = t_window + cfg.window_ns;
    uint64_t t_drain = t_end + DRAIN_NS;
    if (cfg.rate) {
        next_n = 0;
        next_due = t_start;
    } else {
        for (unsigned i = 0; i < cfg.conns; i++) {
            for (unsigned k = 0; k < cfg.depth; k++)
                issue(&conns[i], now);
            flush(&conns[i], now);
        }
    }

    int measuring = 0, ended = 0;
    int64_t ticks0 = -1, ticks1 = -1;
    struct threads th0 = {0}, th1 = {0};
    int th0_ok = 0, th1_ok = 0;
    uint64_t cpu_t0 = 0, cpu_t1 = 0, self0 = 0, self1 = 0;
    for (;;) {
        now = bench_now_ns();
        if (cfg.rate)
            schedule(now);
        if (!measuring && now >= t_window) {
            measuring = 1;
            self0 = self_cpu_ns();
            if (cfg.pid) {
                ticks0 = server_ticks(cfg.pid);
                th0_ok = have_schedstat && server_threads(cfg.pid, &th0) == 0;
                cpu_t0 = bench_now_ns();
            }
        }
        if (now >= t_end) {
            if (!ended) {
                ended = 1;
                self1 = self_cpu_ns();
                if (cfg.pid && measuring) {
                    ticks1 = server_ticks(cfg.pid);
                    th1_ok = have_schedstat && server_threads(cfg.pid, &th1) == 0;
                    cpu_t1 = bench_now_ns();
                }
            }
            if (inflight == 0 || now >= t_drain)
                break;
        }
        if (alive == 0)
            break;
        uint64_t until = !measuring ? t_window : !ended ? t_end : t_drain;
        if (cfg.rate && next_due < t_end && next_due - SPIN_NS < until)
            until = next_due - SPIN_NS;
        int n = wait_events(ep, now, until);
        for (int i = 0; i < n; i++) {
            struct conn *cn = &conns[ev[i].data.u32];
            if (cn->fd < 0)
                continue;
            /* Writes first: a flush from on_readable() that finds the
             * socket full would make this event's EPOLLOUT look fresh. */
            if (cn->blocked && (ev[i].events & EPOLLOUT)) {
                cn->blocked = 0;
                flush(cn, bench_now_ns());
                if (cn->fd < 0)
                    continue;
            }
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(cn);
            /* A long batch of events must not hold back what falls due
             * meanwhile. */
            if (cfg.rate && next_due < t_end) {
                now = bench_now_ns();
                if (now >= next_due)
                    schedule(now);
            }
        }
    }

    /* Whatever is still unanswered counts with the latency it has reached,
     * a lower bound: leaving it out would flatter a server that stalled. */
    now = bench_now_ns();
    for (unsigned i = 0; i < cfg.conns; i++) {
        struct conn *cn = &conns[i];
        if (cn->fd < 0)
            continue;
        for (uint64_t k = cn->rseq; k < cn->want; k++) {
            uint64_t t = issued_at(cn, k);
            if (in_window(t)) {
                hist_record(&lat, now - t);
                unanswered++;
            }
        }
    }

    double secs = (double)cfg.window_ns / 1e9;
    uint64_t errors = mismatches + conn_errors;
    bench_result("echo_rps", (double)answered / secs);
    bench_result("echo_p50_us", us(hist_percentile(&lat, 50)));
    bench_result("echo_p99_us", us(hist_percentile(&lat, 99)));
    bench_result("echo_p999_us", us(hist_percentile(&lat, 99.9)));
    bench_result("echo_errors", (double)errors);
    if (cfg.rate)
        bench_result("offered_rps", (double)sent / secs);
    double cpu_ns = 0;
    int have_cpu = ticks0 >= 0 && ticks1 >= 0 && cpu_t1 > cpu_t0;
    if (cfg.pid && !have_cpu)
        fprintf(stderr, "loadgen: server %ld: no CPU time for the window (gone?)\n", cfg.pid);
    int from_schedstat = 0;
    if (have_cpu) {
        double tick_ns = (double)(ticks1 - ticks0) * 1e9 / (double)sysconf(_SC_CLK_TCK);
        /* The ticks are read whatever happens: they are both the fallback and
         * the check that schedstat has missed no thread. */
        char why[160];
        const char *no = !have_schedstat ? "no schedstat in this kernel"
                         : !th0_ok || !th1_ok ? "could not read the server's threads"
                         : schedstat_unusable(&th0, &th1, tick_ns, why, sizeof why);
        from_schedstat = !no;
        cpu_ns = from_schedstat ? (double)(th1.ns - th0.ns) : tick_ns;
        if (from_schedstat)
            fprintf(stderr, "loadgen: server CPU time from schedstat over %zu thread%s (%zu new): "
                    "%.3f ms (ticks: %.0f ms)\n",
                    th1.n, th1.n == 1 ? "" : "s", th1.n - th0.n, cpu_ns / 1e6, tick_ns / 1e6);
        else
            fprintf(stderr, "loadgen: server CPU time from clock ticks, %.0f ms: %s\n", tick_ns / 1e6, no);
        if (answered)
            bench_result("server_cpu_ns_per_req", cpu_ns / (double)answered);
        bench_result("server_cpu_pct", cpu_ns / (double)(cpu_t1 - cpu_t0) * 100.0);
        bench_result("server_cpu_source", from_schedstat);
    }

    fprintf(stderr, "loadgen: %s, %u conns, %u B", cfg.rate ? "open loop" : cfg.depth > 1 ? "pipelined" : "closed loop",
            cfg.conns, cfg.size);
    if (cfg.rate)
        fprintf(stderr, ", %llu/s offered (%.0f/s sent, issued late by p50 %.1f p99 %.1f max %.1f us)",
                (unsigned long long)cfg.rate, (double)sent / secs, us(hist_percentile(&late, 50)),
                us(hist_percentile(&late, 99)), us(late.max));
    else if (cfg.depth > 1)
        fprintf(stderr, ", depth %u", cfg.depth);
    fprintf(stderr, ": %.0f responses/s, latency p50 %.1f p99 %.1f p99.9 %.1f max %.1f us",
            (double)answered / secs, us(hist_percentile(&lat, 50)), us(hist_percentile(&lat, 99)),
            us(hist_percentile(&lat, 99.9)), us(lat.max));
    if (have_cpu)
        fprintf(stderr, ", server CPU %.2f%% (%s)", cpu_ns / (double)(cpu_t1 - cpu_t0) * 100.0,
                from_schedstat ? "schedstat" : "ticks");
    if (self1 > self0)
        fprintf(stderr, ", loadgen CPU %.1f%%%s", (double)(self1 - self0) / (double)cfg.window_ns * 100.0,
                cfg.rate ? " (it spins between due times)" : "");
    fprintf(stderr, ", %llu unanswered at the end, %llu errors (%llu mismatches)\n",
            (unsigned long long)unanswered, (unsigned long long)errors,
            (unsigned long long)mismatches);
    return errors ? 1 : 0;
}
