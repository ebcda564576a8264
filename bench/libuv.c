/*
 * libuv.c - the libuv peer of urt's benchmark suite: the C event loop most
 * C programs pick for asynchronous I/O (Node.js's), here Debian's libuv1
 * 1.44, used the way its users use it: handles, callbacks, the default loop
 * and the default thread pool for files.
 *
 *   build/bench/libuv WORKLOAD ARGS...
 *
 * bench/README.md defines the workloads, their arguments and the RESULT
 * lines.  libuv has callbacks where urt has tasks, so each workload is the
 * nearest thing a libuv user would write:
 *
 *   spawn N                  N zero-timeout uv_timer_t callbacks (see spawn())
 *   sleepers N MS            N uv_timer_t of MS ms, all started at once
 *   timer N MS               one uv_timer_t restarted from its callback N times
 *   echo-server HOST:PORT    uv_tcp_t, uv_read_start, uv_try_write + uv_write
 *   file PATH TASKS SECONDS DIRECT
 *                            TASKS uv_fs_read requests in flight, each sent
 *                            again from its callback, on libuv's thread pool
 *
 * switch is UNSUPPORTED (exit 3): with no tasks there is nothing to switch
 * between, and a chain of callbacks would measure something else.
 *
 * libuv's timers count in whole milliseconds from a loop time cached once
 * per loop iteration.  That granularity is what libuv users get, so the
 * timer figures are reported as they come, with a line on stderr if any
 * wait ended before MS had passed (the histogram holds such a wait as 0).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common.h"
#include "hist.h"

#define USAGE 2

static uv_loop_t *loop;

static int usage(const char *msg)
{
    fprintf(stderr, "libuv: %s\n", msg);
    return USAGE;
}

static void check(int r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "libuv: %s: %s\n", what, uv_strerror(r));
        exit(1);
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "libuv: out of memory\n");
        exit(1);
    }
    return p;
}

/* --- spawn ----------------------------------------------------------------- */

/*
 * libuv has no tasks.  What a libuv user does for "run this bit of work soon
 * and collect its result" is schedule a callback: a uv_timer_t with timeout
 * 0 is the loop's general-purpose "call me on the next iteration" (uv_idle
 * and uv_check fire every iteration until stopped, and uv_async is for other
 * threads).  So a trivial task is a zero timer whose callback stores its
 * index as its result and closes its handle; creating N of them before the
 * loop runs, then running the loop until all are closed, is spawn-all-then-
 * await-all.  The handles sit in one array, the cheapest way a user would
 * hold N of them (per-handle malloc would be slower), allocated once and
 * reused by both passes, as urt.c's array of task handles is: libuv keeps
 * no memory of its own per timer, so after the warm-up the timed pass
 * touches warm memory, as the other peers' free lists do.
 */
static uv_timer_t *spawn_timers;
static size_t *spawn_results;
static size_t spawn_fired;

static void spawn_cb(uv_timer_t *t)
{
    size_t i = (size_t)(uintptr_t)t->data;
    spawn_results[i] = i;
    spawn_fired++;
    /* A repeat of 0 has already stopped it; closing is what lets uv_run
     * return, the loop running while any handle is open. */
    uv_close((uv_handle_t *)t, NULL);
}

static void spawn_pass(size_t n)
{
    uv_timer_t *timers = spawn_timers;
    spawn_fired = 0;
    for (size_t i = 0; i < n; i++) {
        uv_timer_init(loop, &timers[i]);
        timers[i].data = (void *)(uintptr_t)i;
        uv_timer_start(&timers[i], spawn_cb, 0, 0);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (spawn_fired != n) {
        fprintf(stderr, "spawn: %zu of %zu callbacks ran\n", spawn_fired, n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        if (spawn_results[i] != i) {
            fprintf(stderr, "spawn: callback %zu stored the wrong value\n", i);
            exit(1);
        }
    }
}

static int spawn(size_t n)
{
    /* The warm-up grows the heap to its working size, so the timed pass
     * measures callbacks and not first-touch page faults. */
    spawn_timers = xmalloc(n * sizeof *spawn_timers);
    spawn_results = xmalloc(n * sizeof *spawn_results);
    spawn_pass(n);
    uint64_t t0 = bench_now_ns();
    spawn_pass(n);
    uint64_t elapsed = bench_now_ns() - t0;
    free(spawn_results);
    free(spawn_timers);
    bench_result("spawn_ns_per_task", (double)elapsed / (double)n);
    bench_result("peak_rss_kib", (double)bench_maxrss_kib());
    return 0;
}

/* --- sleepers -------------------------------------------------------------- */

static void sleeper_cb(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
}

static int sleepers(size_t n, uint64_t ms)
{
    /* ru_maxrss is a high-water mark: "before" is taken with the loop made
     * and before any timer exists. */
    long rss0 = bench_maxrss_kib();
    uint64_t t0 = bench_now_ns();
    uv_timer_t *timers = xmalloc(n * sizeof *timers);
    /* Timers count from the loop's cached time, which outside a callback
     * dates from the loop's creation; libuv's documentation asks for this
     * call before starting timers there. */
    uv_update_time(loop);
    for (size_t i = 0; i < n; i++) {
        uv_timer_init(loop, &timers[i]);
        uv_timer_start(&timers[i], sleeper_cb, ms, 0);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t elapsed = bench_now_ns() - t0;
    long rss1 = bench_maxrss_kib();
    free(timers);
    bench_result("sleepers_overshoot_ms", (double)elapsed / 1e6 - (double)ms);
    bench_result("sleepers_rss_per_task_bytes", (double)(rss1 - rss0) * 1024 / (double)n);
    return 0;
}

/* --- timer ----------------------------------------------------------------- */

static struct {
    uint64_t ms, want_ns, t0;
    long left, n, early;
    uint64_t earliest; /* the most any wait fell short of MS, ns */
    struct hist h;
} tm;

static void timer_cb(uv_timer_t *t)
{
    uint64_t now = bench_now_ns();
    uint64_t took = now - tm.t0;
    if (took < tm.want_ns) {
        tm.early++;
        if (tm.want_ns - took > tm.earliest)
            tm.earliest = tm.want_ns - took;
    }
    hist_record(&tm.h, took >= tm.want_ns ? took - tm.want_ns : 0);
    if (--tm.left == 0) {
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    /* Restarted from the callback, as a program waiting "MS from now" does;
     * a repeating timer would absorb one wait's lateness into the next. */
    tm.t0 = bench_now_ns();
    uv_timer_start(t, timer_cb, tm.ms, 0);
}

static int timer(long n, uint64_t ms)
{
    uv_timer_t t;
    tm.ms = ms;
    tm.want_ns = ms * 1000000u;
    tm.left = tm.n = n;
    hist_init(&tm.h);
    uv_timer_init(loop, &t);
    uv_update_time(loop);
    tm.t0 = bench_now_ns();
    uv_timer_start(&t, timer_cb, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    if (tm.early)
        fprintf(stderr, "timer: %ld of %ld waits ended early, by up to %.1f us\n",
                tm.early, tm.n, (double)tm.earliest / 1000);
    bench_result("timer_p50_us", (double)hist_percentile(&tm.h, 50) / 1000);
    bench_result("timer_p99_us", (double)hist_percentile(&tm.h, 99) / 1000);
    bench_result("timer_p999_us", (double)hist_percentile(&tm.h, 99.9) / 1000);
    return 0;
}

/* --- echo-server ----------------------------------------------------------- */

/* The read buffer is the connection's own, handed out again by every alloc
 * callback: no allocation per read.  64 KiB is what libuv itself suggests
 * and more than one read usually returns. */
#define READ_BUF (64 * 1024)
/* Writes queued past this stop the reading until they drain, so a client
 * that sends without reading cannot grow our memory without bound. */
#define WRITE_HIGH (1024 * 1024)
#define BACKLOG 4096

struct conn {
    uv_tcp_t tcp;
    bool paused;
    char buf[READ_BUF];
};

struct wreq {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
};

static uv_tcp_t server;
static uv_signal_t sigterm, sigint;

static void on_close(uv_handle_t *h)
{
    /* Only connections carry data; the server and signal handles are
     * static. */
    free(h->data);
}

static void close_conn(uv_stream_t *s)
{
    if (!uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, on_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req->data);
    /* UV_ECANCELED: the connection is closing and has been dealt with. */
    if (status < 0) {
        if (status != UV_ECANCELED)
            close_conn(s);
        return;
    }
    struct conn *c = s->data;
    if (c->paused && uv_stream_get_write_queue_size(s) == 0 &&
        !uv_is_closing((uv_handle_t *)s)) {
        c->paused = false;
        if (uv_read_start(s, on_alloc, on_read) < 0)
            close_conn(s);
    }
}

/*
 * uv_try_write first, uv_write only for what the socket would not take.  For
 * 64-byte echoes the socket always takes it all, so the common case is one
 * write() with no request, no copy and no callback.  Plain uv_write would
 * also write at once when nothing is queued, but it needs a uv_write_t that
 * lives until its callback, which runs on a later loop iteration, and the
 * bytes copied out of the read buffer that the next read reuses.  libuv's
 * uv_try_write returns UV_EAGAIN while any uv_write is queued, so the echo
 * keeps its order.
 */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    close_conn(req->handle);
    free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) {
        /* Closing cancels queued writes, so a client that half-closes after
         * sending would lose the tail of its echo; uv_shutdown waits for
         * them.  Nearly always nothing is queued and the close is at once. */
        if (nread == UV_EOF && uv_stream_get_write_queue_size(s) > 0) {
            uv_shutdown_t *req = xmalloc(sizeof *req);
            if (uv_shutdown(req, s, on_shutdown) == 0)
                return;
            free(req);
        }
        close_conn(s);
        return;
    }
    if (nread == 0)
        return; /* EAGAIN: libuv hands the buffer back */
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int w = uv_try_write(s, &b, 1);
    if (w == nread)
        return;
    if (w == UV_EAGAIN) {
        w = 0;
    } else if (w < 0) {
        close_conn(s);
        return;
    }
    size_t rest = (size_t)nread - (size_t)w;
    struct wreq *wr = xmalloc(sizeof *wr + rest);
    memcpy(wr->data, buf->base + w, rest);
    wr->buf = uv_buf_init(wr->data, (unsigned)rest);
    wr->req.data = wr;
    if (uv_write(&wr->req, s, &wr->buf, 1, on_write) < 0) {
        free(wr);
        close_conn(s);
        return;
    }
    if (uv_stream_get_write_queue_size(s) > WRITE_HIGH) {
        struct conn *c = s->data;
        c->paused = true;
        uv_read_stop(s);
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0) {
        fprintf(stderr, "libuv: listen: %s\n", uv_strerror(status));
        return;
    }
    struct conn *c = xmalloc(sizeof *c);
    c->paused = false;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        close_conn((uv_stream_t *)&c->tcp);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, on_close);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)sig;
    (void)signum;
    /* Closing every handle, the server, the connections and the signal
     * watchers themselves, is what makes uv_run return. */
    uv_walk(loop, close_any, NULL);
}

static int echo_server(const char *hostport)
{
    struct sockaddr_in sa;
    if (bench_parse_hostport(hostport, &sa) < 0)
        return usage("echo-server takes HOST:PORT with an IPv4 HOST");

    /* libuv writes sockets with write(2), so a client closing with echoes
     * in flight would raise SIGPIPE; libuv's documentation says to ignore
     * it. */
    signal(SIGPIPE, SIG_IGN);

    check(uv_signal_init(loop, &sigterm), "uv_signal_init");
    check(uv_signal_init(loop, &sigint), "uv_signal_init");
    check(uv_signal_start(&sigterm, on_signal, SIGTERM), "uv_signal_start");
    check(uv_signal_start(&sigint, on_signal, SIGINT), "uv_signal_start");

    check(uv_tcp_init(loop, &server), "uv_tcp_init");
    /* libuv sets SO_REUSEADDR on every TCP bind. */
    check(uv_tcp_bind(&server, (struct sockaddr *)&sa, 0), "uv_tcp_bind");
    check(uv_listen((uv_stream_t *)&server, BACKLOG, on_connection), "uv_listen");

    struct sockaddr_in bound;
    int len = sizeof bound;
    check(uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len),
          "uv_tcp_getsockname");
    char addr[INET_ADDRSTRLEN];
    uv_ip4_name(&bound, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(bound.sin_port));
    fflush(stdout);

    uv_run(loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(loop);
    if (r < 0) {
        fprintf(stderr, "libuv: uv_loop_close: %s\n", uv_strerror(r));
        return 1;
    }
    fprintf(stderr, "libuv: echo-server stopping on signal\n");
    return 0;
}

/* --- file ------------------------------------------------------------------ */

#define BLOCK 4096
/* Each request's offsets come from its own seeded generator, so runs are
 * repeatable and requests do not read the same sequence; the seed is the one
 * the other peers use. */
#define FILE_SEED 0x5EEDu

struct freq {
    uv_fs_t fs;
    uint64_t rng;
    uint64_t t0;
    uv_buf_t buf;
};

static struct {
    uv_file fd;
    uint64_t blocks, deadline, reads;
    struct hist h;
} fb;

static void file_cb(uv_fs_t *fs);

static void file_submit(struct freq *r)
{
    int64_t off = (int64_t)(bench_splitmix64(&r->rng) % fb.blocks * BLOCK);
    r->t0 = bench_now_ns();
    /* uv_fs_read with a callback goes to libuv's thread pool: its size
     * stays the default (UV_THREADPOOL_SIZE unset: 4 threads), which is
     * what a libuv user gets, so with more requests than threads the
     * latency includes the wait in the pool's queue. */
    check(uv_fs_read(loop, &r->fs, fb.fd, &r->buf, 1, off, file_cb), "uv_fs_read");
}

static void file_cb(uv_fs_t *fs)
{
    struct freq *r = (struct freq *)fs;
    uint64_t now = bench_now_ns();
    ssize_t got = fs->result;
    uv_fs_req_cleanup(fs);
    if (got != BLOCK) {
        fprintf(stderr, "file: read returned %zd (%s), not %d\n", got,
                got < 0 ? uv_strerror((int)got) : "short", BLOCK);
        exit(1);
    }
    hist_record(&fb.h, now - r->t0);
    fb.reads++;
    if (now < fb.deadline)
        file_submit(r);
}

static void *aligned_block(void)
{
    void *p;
    /* O_DIRECT wants the buffer, offset and length aligned to the logical
     * block size; a page covers every one Linux file systems use. */
    if (posix_memalign(&p, BLOCK, BLOCK) != 0) {
        fprintf(stderr, "libuv: out of memory\n");
        exit(1);
    }
    return p;
}

/* PATH opened, and for DIRECT proved with one read that O_DIRECT works: some
 * file systems refuse it at open, others only at the first read.  -1 means
 * skip. */
static uv_file open_file(const char *path, bool direct)
{
    uv_fs_t req;
    int flags = UV_FS_O_RDONLY | (direct ? UV_FS_O_DIRECT : 0);
    int fd = uv_fs_open(NULL, &req, path, flags, 0, NULL);
    uv_fs_req_cleanup(&req);
    if (fd == UV_EINVAL && direct)
        return -1;
    check(fd, path);
    if (direct) {
        uv_buf_t b = uv_buf_init(aligned_block(), BLOCK);
        int r = uv_fs_read(NULL, &req, fd, &b, 1, 0, NULL);
        uv_fs_req_cleanup(&req);
        free(b.base);
        if (r == UV_EINVAL) {
            uv_fs_close(NULL, &req, fd, NULL);
            uv_fs_req_cleanup(&req);
            return -1;
        }
        check(r, "read");
    }
    return fd;
}

static int file_bench(const char *path, size_t tasks, long seconds, bool direct)
{
    fb.fd = open_file(path, direct);
    if (fb.fd < 0) {
        printf("SKIP file O_DIRECT not supported here\n");
        fflush(stdout);
        return 0;
    }
    uv_fs_t st;
    check(uv_fs_fstat(NULL, &st, fb.fd, NULL), "fstat");
    fb.blocks = st.statbuf.st_size / BLOCK;
    uv_fs_req_cleanup(&st);
    if (fb.blocks == 0) {
        fprintf(stderr, "file: %s is smaller than %d bytes\n", path, BLOCK);
        return 1;
    }
    hist_init(&fb.h);
    struct freq *reqs = xmalloc(tasks * sizeof *reqs);
    for (size_t i = 0; i < tasks; i++) {
        reqs[i].rng = FILE_SEED + i;
        reqs[i].buf = uv_buf_init(aligned_block(), BLOCK);
    }
    uint64_t t0 = bench_now_ns();
    fb.deadline = t0 + (uint64_t)seconds * 1000000000u;
    for (size_t i = 0; i < tasks; i++)
        file_submit(&reqs[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t elapsed = bench_now_ns() - t0;
    for (size_t i = 0; i < tasks; i++)
        free(reqs[i].buf.base);
    free(reqs);
    uv_fs_t cl;
    uv_fs_close(NULL, &cl, fb.fd, NULL);
    uv_fs_req_cleanup(&cl);
    bench_result("file_reads_per_s", (double)fb.reads / ((double)elapsed / 1e9));
    bench_result("file_p99_us", (double)hist_percentile(&fb.h, 99) / 1000);
    return 0;
}

/* --- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage("usage: libuv WORKLOAD ARGS...");
    const char *w = argv[1];
    int nargs = argc - 2;
    loop = uv_default_loop();
    if (strcmp(w, "spawn") == 0) {
        long n = nargs == 1 ? bench_count(argv[2]) : -1;
        if (n < 0)
            return usage("spawn takes a positive count N");
        return spawn((size_t)n);
    }
    if (strcmp(w, "sleepers") == 0 || strcmp(w, "timer") == 0) {
        long n = nargs == 2 ? bench_count(argv[2]) : -1;
        long ms = nargs == 2 ? bench_count(argv[3]) : -1;
        if (n < 0 || ms < 0)
            return usage("sleepers and timer take positive counts N MS");
        return w[0] == 's' ? sleepers((size_t)n, (uint64_t)ms) : timer(n, (uint64_t)ms);
    }
    if (strcmp(w, "echo-server") == 0) {
        if (nargs != 1)
            return usage("echo-server takes HOST:PORT");
        return echo_server(argv[2]);
    }
    if (strcmp(w, "file") == 0) {
        long tasks = nargs == 4 ? bench_count(argv[3]) : -1;
        long secs = nargs == 4 ? bench_count(argv[4]) : -1;
        if (tasks < 0 || secs < 0 || (strcmp(argv[5], "0") && strcmp(argv[5], "1")))
            return usage("file takes PATH TASKS SECONDS DIRECT (0 or 1)");
        return file_bench(argv[2], (size_t)tasks, secs, argv[5][0] == '1');
    }
    return bench_unsupported(w);
}
