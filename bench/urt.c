/*
 * urt.c - urt's side of the benchmark suite: each workload of
 * bench/README.md written as a urt user writes it, with the public header
 * only.  scripts/bench.py runs it beside the same workloads written for the
 * peers (liburing.c, epoll.c, libuv.c, go/, tokio/, asyncio_peer.py).
 *
 *   urt spawn N | switch N | sleepers N MS | timer N MS
 *   urt echo-server HOST:PORT | file PATH TASKS SECONDS DIRECT
 *
 * The echo server turns read-ahead on for every connection, as
 * examples/echo_server.c does; URT_FEATURES_OFF=recv_multishot measures it
 * without (urt_readahead then does nothing).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "hist.h"
#include "urt.h"

static int fail(const char *what, int err)
{
    fprintf(stderr, "urt bench: %s: %s\n", what, urt_strerror(err));
    return 1;
}

/* ---- spawn ------------------------------------------------------------ */

struct spawn_run {
    long n;
    urt_task *tasks;
    double ns_per_task;
};

static intptr_t trivial(void *arg)
{
    return (intptr_t)arg;
}

/* All N created before the first await: the first await suspends main and
 * they run, in creation order, each to its end. */
static int spawn_pass(struct spawn_run *s, uint64_t *elapsed)
{
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < s->n; i++) {
        int rc = urt_task_create(&s->tasks[i], trivial, (void *)(intptr_t)i);
        if (rc < 0)
            return rc;
    }
    int rc = 0;
    for (long i = 0; i < s->n; i++) {
        intptr_t v;
        int err = urt_task_await(s->tasks[i], &v);
        if (err == 0 && v != i)
            err = -EPROTO;
        if (err && !rc)
            rc = err;
        urt_task_release(s->tasks[i]);
    }
    *elapsed = bench_now_ns() - t0;
    return rc;
}

static intptr_t spawn_main(void *arg)
{
    struct spawn_run *s = arg;
    uint64_t warm, timed;
    int rc = spawn_pass(s, &warm);
    if (rc == 0)
        rc = spawn_pass(s, &timed);
    if (rc == 0)
        s->ns_per_task = (double)timed / (double)s->n;
    return rc;
}

static int run_spawn(long n)
{
    struct spawn_run s = {.n = n, .tasks = malloc((size_t)n * sizeof(urt_task))};
    if (!s.tasks)
        return fail("spawn", -ENOMEM);
    int rc = urt_run(spawn_main, &s, NULL);
    free(s.tasks);
    if (rc < 0)
        return fail("spawn", rc);
    bench_result("spawn_ns_per_task", s.ns_per_task);
    bench_result("peak_rss_kib", (double)bench_maxrss_kib());
    return 0;
}

/* ---- switch ----------------------------------------------------------- */

static intptr_t yielder(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        int rc = urt_yield();
        if (rc < 0)
            return rc;
    }
    return 0;
}

static intptr_t switch_main(void *arg)
{
    long n = *(long *)arg;
    urt_task t[2];
    for (int i = 0; i < 2; i++) {
        int rc = urt_task_create(&t[i], yielder, (void *)(intptr_t)(n / 2));
        if (rc < 0)
            return rc;
    }
    uint64_t t0 = bench_now_ns();
    int rc = urt_gather(t, 2, 0, NULL, NULL);
    uint64_t elapsed = bench_now_ns() - t0;
    if (rc == 0)
        bench_result("switch_ns", (double)elapsed / (double)n);
    return rc;
}

static int run_switch(long n)
{
    int rc = urt_run(switch_main, &n, NULL);
    return rc < 0 ? fail("switch", rc) : 0;
}

/* ---- sleepers ---------------------------------------------------------- */

struct sleepers_run {
    long n;
    uint64_t ns;
};

static intptr_t sleeper(void *arg)
{
    return urt_sleep(*(uint64_t *)arg);
}

static intptr_t sleepers_main(void *arg)
{
    struct sleepers_run *s = arg;
    urt_task *tasks = malloc((size_t)s->n * sizeof *tasks);
    if (!tasks)
        return -ENOMEM;
    long rss_before = bench_maxrss_kib();
    uint64_t t0 = bench_now_ns();
    long created = 0;
    int rc = 0;
    for (; created < s->n; created++)
        if ((rc = urt_task_create(&tasks[created], sleeper, &s->ns)) < 0)
            break;
    if (rc == 0)
        rc = urt_gather(tasks, (size_t)s->n, 0, NULL, NULL);
    uint64_t elapsed = bench_now_ns() - t0;
    long rss_after = bench_maxrss_kib();
    for (long i = 0; i < created; i++)
        urt_task_release(tasks[i]);
    free(tasks);
    if (rc == 0) {
        bench_result("sleepers_overshoot_ms", ((double)elapsed - (double)s->ns) / 1e6);
        bench_result("sleepers_rss_per_task_bytes",
                     (double)(rss_after - rss_before) * 1024.0 / (double)s->n);
    }
    return rc;
}

static int run_sleepers(long n, long ms)
{
    struct sleepers_run s = {.n = n, .ns = (uint64_t)ms * URT_NS_PER_MS};
    int rc = urt_run(sleepers_main, &s, NULL);
    return rc < 0 ? fail("sleepers", rc) : 0;
}

/* ---- timer ------------------------------------------------------------- */

struct timer_run {
    long n;
    uint64_t ns;
    struct hist h;
};

static intptr_t timer_main(void *arg)
{
    struct timer_run *r = arg;
    for (long i = 0; i < r->n; i++) {
        uint64_t t0 = bench_now_ns();
        int rc = urt_sleep(r->ns);
        if (rc < 0)
            return rc;
        hist_record(&r->h, bench_now_ns() - t0 - r->ns);
    }
    return 0;
}

static int run_timer(long n, long ms)
{
    static struct timer_run r;
    r.n = n;
    r.ns = (uint64_t)ms * URT_NS_PER_MS;
    hist_init(&r.h);
    int rc = urt_run(timer_main, &r, NULL);
    if (rc < 0)
        return fail("timer", rc);
    bench_result("timer_p50_us", (double)hist_percentile(&r.h, 50) / 1e3);
    bench_result("timer_p99_us", (double)hist_percentile(&r.h, 99) / 1e3);
    bench_result("timer_p999_us", (double)hist_percentile(&r.h, 99.9) / 1e3);
    return 0;
}

/* ---- echo server ------------------------------------------------------- */

/* One task per connection, detached: the bench stops the server with
 * SIGTERM, and urt_run cancels and waits for whatever is still open. */
static intptr_t serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    urt_readahead(fd, 1);
    char buf[16 * 1024];
    for (;;) {
        ssize_t n = urt_recv(fd, buf, sizeof buf, 0);
        if (n <= 0 || urt_send_all(fd, buf, (size_t)n, NULL) < 0)
            break;
    }
    urt_close(fd);
    return 0;
}

static intptr_t accept_loop(void *arg)
{
    int listener = (int)(intptr_t)arg;
    for (;;) {
        int fd = urt_accept(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd == URT_ECANCELED)
            return 0;
        if (fd < 0)
            continue; /* ECONNABORTED and the like: the next one may work */
        if (urt_task_create(NULL, serve, (void *)(intptr_t)fd) < 0)
            urt_close(fd);
    }
}

static intptr_t echo_main(void *arg)
{
    const char *address = arg;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    int sigfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (sigfd < 0)
        return -errno;
    int listener = urt_tcp_listen(address, 4096);
    if (listener < 0)
        return listener;
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(listener, (struct sockaddr *)&sin, &len);
    printf("listening on 127.0.0.1:%u\n", ntohs(sin.sin_port));
    fflush(stdout);
    urt_task acceptor;
    int rc = urt_task_create(&acceptor, accept_loop, (void *)(intptr_t)listener);
    if (rc < 0)
        return rc;
    struct signalfd_siginfo si;
    urt_read(sigfd, &si, sizeof si);
    urt_task_cancel(acceptor);
    urt_task_await(acceptor, NULL);
    urt_close(listener);
    urt_close(sigfd);
    /* Returning cancels the connections' tasks; each closes its socket. */
    return 0;
}

static int run_echo_server(const char *address)
{
    /* Blocked before the loop starts, so the signals wait in the signalfd. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int rc = urt_run(echo_main, (void *)address, NULL);
    return rc < 0 ? fail("echo-server", rc) : 0;
}

/* ---- file -------------------------------------------------------------- */

#define BLOCK 4096

struct file_run {
    int fd;
    uint64_t blocks;
    uint64_t deadline;
    int error;
    uint64_t reads;
    struct hist h;
};

struct reader {
    struct file_run *run;
    uint64_t seed;
};

static intptr_t reader(void *arg)
{
    struct reader *r = arg;
    struct file_run *run = r->run;
    /* O_DIRECT wants the buffer aligned to the block size. */
    char buf[BLOCK] __attribute__((aligned(BLOCK)));
    /* Two clock reads a read: the end of one is the start of the next. */
    for (uint64_t t0 = bench_now_ns(); t0 < run->deadline;) {
        uint64_t offset = bench_splitmix64(&r->seed) % run->blocks * BLOCK;
        ssize_t n = urt_pread(run->fd, buf, BLOCK, offset);
        if (n != BLOCK) {
            run->error = n < 0 ? (int)n : -EIO;
            return run->error;
        }
        uint64_t t1 = bench_now_ns();
        hist_record(&run->h, t1 - t0);
        run->reads++;
        t0 = t1;
    }
    return 0;
}

struct file_args {
    struct file_run *run;
    long tasks;
    double seconds;
};

static intptr_t file_main(void *arg)
{
    struct file_args *a = arg;
    urt_task *tasks = calloc((size_t)a->tasks, sizeof *tasks);
    struct reader *readers = calloc((size_t)a->tasks, sizeof *readers);
    int rc = tasks && readers ? 0 : -ENOMEM;
    uint64_t t0 = bench_now_ns();
    a->run->deadline = t0 + (uint64_t)(a->seconds * 1e9);
    long created = 0;
    for (; rc == 0 && created < a->tasks; created++) {
        readers[created] = (struct reader){a->run, 0x5eed + (uint64_t)created};
        rc = urt_task_create(&tasks[created], reader, &readers[created]);
    }
    if (rc == 0)
        rc = urt_gather(tasks, (size_t)created, 0, NULL, NULL);
    double elapsed = (double)(bench_now_ns() - t0) / 1e9;
    free(tasks);
    free(readers);
    if (rc == 0) {
        bench_result("file_reads_per_s", (double)a->run->reads / elapsed);
        bench_result("file_p99_us", (double)hist_percentile(&a->run->h, 99) / 1e3);
    }
    return rc;
}

static int run_file(const char *path, long tasks, double seconds, int direct)
{
    static struct file_run run;
    hist_init(&run.h);
    int fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd < 0 && direct && errno == EINVAL) {
        printf("SKIP file O_DIRECT not supported here\n");
        return 0;
    }
    if (fd < 0)
        return fail(path, -errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < BLOCK) {
        close(fd);
        return fail(path, -EINVAL);
    }
    run.fd = fd;
    run.blocks = (uint64_t)st.st_size / BLOCK;
    struct file_args a = {&run, tasks, seconds};
    int rc = urt_run(file_main, &a, NULL);
    close(fd);
    if (rc == -EINVAL && direct) {
        printf("SKIP file O_DIRECT not supported here\n");
        return 0;
    }
    return rc < 0 ? fail("file", rc) : 0;
}

/* ---- main -------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: urt spawn N | switch N | sleepers N MS | timer N MS |\n"
                    "       echo-server HOST:PORT | file PATH TASKS SECONDS DIRECT\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *w = argv[1];
    if (!strcmp(w, "spawn") && argc == 3 && bench_count(argv[2]) > 0)
        return run_spawn(bench_count(argv[2]));
    if (!strcmp(w, "switch") && argc == 3 && bench_count(argv[2]) > 0)
        return run_switch(bench_count(argv[2]));
    if (!strcmp(w, "sleepers") && argc == 4 && bench_count(argv[2]) > 0 && bench_count(argv[3]) > 0)
        return run_sleepers(bench_count(argv[2]), bench_count(argv[3]));
    if (!strcmp(w, "timer") && argc == 4 && bench_count(argv[2]) > 0 && bench_count(argv[3]) > 0)
        return run_timer(bench_count(argv[2]), bench_count(argv[3]));
    if (!strcmp(w, "echo-server") && argc == 3)
        return run_echo_server(argv[2]);
    if (!strcmp(w, "file") && argc == 6 && bench_count(argv[3]) > 0 && atof(argv[4]) > 0)
        return run_file(argv[2], bench_count(argv[3]), atof(argv[4]), atoi(argv[5]) != 0);
    if (!strcmp(w, "spawn") || !strcmp(w, "switch") || !strcmp(w, "sleepers") ||
        !strcmp(w, "timer") || !strcmp(w, "echo-server") || !strcmp(w, "file"))
        return usage();
    return bench_unsupported(w);
}
