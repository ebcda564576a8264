/*
 * The public operations under injected faults (src/fault.c).  One workload
 * (TCP streams both ways over accepted connections, a file written, synced,
 * renamed, read back and removed, send/recv and their msg forms through
 * read-ahead, vectors through a pipe after a poll, a shutdown, tasks of
 * every stack size gathered, waited for and iterated as they complete, task
 * groups, a queue, a thread job, timed sleeps and a timeout scope) runs
 * once per seed, and every call must either
 * succeed or return an error the kernel could have given it, with its
 * partial result, and the loop must live on: the streams arrive whole, each
 * byte exactly once, every retry resuming where `done` says the last try
 * stopped; the run leaves no fd, mapping or allocation behind.
 *
 * In the faults build (make test-faults: ASan+UBSan, -DURT_FAULTS) this
 * runs URT_FAULT_SEEDS seeds (default 200), each with its own ring size (2
 * to 64 entries, or the default) and rate of faults at every site (1%, 3%
 * or 8%); URT_FAULT_SEED=N replays seed N alone, URT_FAULT_REPEAT times
 * (default 20); URT_FAULT_TRACE=1 prints each fault as it is injected (2:
 * with return addresses, for addr2line).  In the other builds nothing is
 * injected and every call must succeed.
 *
 * A task that gives up returns -__LINE__, so that a seed's report says
 * where.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "internal.h"
#include "sockets.h"

#ifdef URT_FAULTS
/* The library's allocations fail, not the test's own. */
#undef malloc
#undef calloc
#undef realloc
#endif

#if UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#ifdef URT_FAULTS
static const bool injecting = true;
#else
static const bool injecting = false;
#endif

#define STREAM_BYTES (64 * 1024)
#define STREAMS 2
#define FILE_BYTES (48 * 1024)
#define CHUNK 4096
#define TASKS 24
#define QUEUE_ITEMS 64
/* An error retried this often in a row is no longer a 3% fault. */
#define TRIES 64
#define GUARD_MS 10000

struct seed_run {
    unsigned seed;
    char dir[64];
    unsigned faults_seen; /* calls that returned an injected error */
};

static struct seed_run run;

/* err is what a call returned: success, or one of the errors listed
 * (0-terminated).  Anything else, or any error at all when nothing is
 * injected, is a failure of the seed. */
static bool failed_as_allowed(long err, const char *call, int line, ...)
{
    if (err >= 0) return false;
    va_list ap;
    va_start(ap, line);
    bool allowed = false;
    for (int e; (e = va_arg(ap, int)) != 0;)
        if (err == e) allowed = true;
    va_end(ap);
    if (!allowed || !injecting) {
        expect_failed(__FILE__, line, call, err, 0);
        return false;
    }
    run.faults_seen++;
    return true;
}
#define FAILED_AS_ALLOWED(err, ...) failed_as_allowed((long)(err), #err, __LINE__, __VA_ARGS__, 0)

/* ---- streams over TCP ------------------------------------------------- */

/* The two sides of a stream are a task group's children: when one cannot
 * start (no stack), the group cancels the other, which then stops where it
 * is.  URT_ECANCELED can come from nothing else. */
#define STOPPED(rc) ((rc) == URT_ECANCELED)

/* Sends the whole stream, resuming after each allowed failure from the
 * byte count urt reports as really sent.  False: cancelled. */
static bool send_stream(int fd, unsigned pattern)
{
    unsigned char chunk[CHUNK];
    size_t sent = 0;
    for (int tries = 0; sent < STREAM_BYTES && tries < TRIES;) {
        size_t len = STREAM_BYTES - sent < CHUNK ? STREAM_BYTES - sent : CHUNK;
        fill(chunk, len, sent, pattern);
        size_t done = 0;
        ssize_t rc = urt_send_all(fd, chunk, len, &done);
        EXPECT(done <= len);
        sent += done;
        if (STOPPED(rc)) return false;
        if (rc >= 0) {
            EXPECT_EQ(rc, len);
            tries = 0;
        } else if (FAILED_AS_ALLOWED(rc, -ECONNRESET, -EPIPE, -ENOMEM, -ECANCELED, -EIO)) {
            tries++;
        } else {
            return false;
        }
    }
    EXPECT_EQ(sent, STREAM_BYTES);
    return true;
}

/* Reads the whole stream and checks every byte lands once, in order. */
static bool receive_stream(int fd, unsigned pattern)
{
    unsigned char chunk[CHUNK];
    size_t got = 0;
    for (int tries = 0; got < STREAM_BYTES && tries < TRIES;) {
        size_t len = STREAM_BYTES - got < CHUNK ? STREAM_BYTES - got : CHUNK;
        size_t done = 0;
        ssize_t rc = urt_read_exactly(fd, chunk, len, &done);
        EXPECT(done <= len);
        EXPECT_EQ(mismatch(chunk, done, got, pattern), -1);
        got += done;
        if (STOPPED(rc)) return false;
        if (rc >= 0) {
            EXPECT_EQ(rc, len);
            tries = 0;
        } else if (FAILED_AS_ALLOWED(rc, -ECONNRESET, -ENOMEM, -ECANCELED, -EIO)) {
            tries++;
        } else {
            return false;
        }
    }
    EXPECT_EQ(got, STREAM_BYTES);
    return true;
}

static int connect_retrying(const char *hostport)
{
    for (int tries = 0; tries < TRIES; tries++) {
        int fd = urt_tcp_connect(hostport);
        if (fd >= 0 || STOPPED(fd)) return fd;
        if (!FAILED_AS_ALLOWED(fd, -ECONNREFUSED, -ETIMEDOUT, -ENOMEM, -EMFILE)) return fd;
    }
    EXPECT(!"connect kept failing");
    return -__LINE__;
}

static void close_checked(int fd)
{
    /* Linux releases the fd whatever close says: never retried. */
    int rc = urt_close(fd);
    FAILED_AS_ALLOWED(rc, -EIO, -EINTR);
}

/* Each pair has a listener of its own, so that a server only ever meets
 * its own client: client to server with one pattern, back with another. */
struct pair {
    int listener;
    char hostport[64];
    unsigned id;
};

static intptr_t server_side(void *arg)
{
    struct pair *p = arg;
    int fd = -1;
    for (int tries = 0; tries < TRIES; tries++) {
        fd = urt_accept(p->listener, NULL, NULL, 0);
        if (fd >= 0 || STOPPED(fd) || !FAILED_AS_ALLOWED(fd, -ECONNABORTED, -EMFILE, -ENOMEM))
            break;
    }
    if (fd < 0) return STOPPED(fd) ? fd : -__LINE__;
    if (receive_stream(fd, 2 * p->id)) send_stream(fd, 2 * p->id + 1);
    close_checked(fd);
    return 0;
}

static intptr_t client_side(void *arg)
{
    struct pair *p = arg;
    int fd = connect_retrying(p->hostport);
    if (fd < 0) return STOPPED(fd) ? fd : -__LINE__;
    if (send_stream(fd, 2 * p->id)) receive_stream(fd, 2 * p->id + 1);
    close_checked(fd);
    return 0;
}

static intptr_t stream_pair(void *arg)
{
    struct pair p = {.id = (unsigned)(uintptr_t)arg, .listener = -1};
    for (int tries = 0; tries < TRIES && p.listener < 0; tries++) {
        p.listener = urt_tcp_listen("127.0.0.1:0", 4);
        if (p.listener < 0 && !FAILED_AS_ALLOWED(p.listener, -EMFILE, -ENOMEM, -EIO))
            return -__LINE__;
    }
    if (p.listener < 0) return -__LINE__;
    local_hostport(p.listener, p.hostport, sizeof p.hostport);
    urt_group g;
    int rc = urt_group_enter(&g);
    if (rc == 0) {
        urt_task server, client;
        int server_rc = urt_group_spawn(&g, &server, server_side, &p);
        int client_rc = server_rc ? server_rc : urt_group_spawn(&g, &client, client_side, &p);
        FAILED_AS_ALLOWED(server_rc, -ENOMEM);
        FAILED_AS_ALLOWED(client_rc, -ENOMEM);
        if (server_rc == 0 && client_rc != 0) urt_task_cancel(server);
        urt_group_error errs[2];
        size_t nerrs = 0;
        rc = urt_group_exit(&g, errs, 2, &nerrs);
        /* A side without a stack is the only failure there can be. */
        FAILED_AS_ALLOWED(rc, -ENOMEM, URT_ESTACKLIMIT);
        if (server_rc == 0) urt_task_release(server);
        if (client_rc == 0) urt_task_release(client);
    } else {
        FAILED_AS_ALLOWED(rc, -ENOMEM);
    }
    close_checked(p.listener);
    return 0;
}

/* ---- a file ------------------------------------------------------------ */

static int open_retrying(const char *path, int flags)
{
    for (int tries = 0; tries < TRIES; tries++) {
        int fd = urt_open(path, flags, 0600);
        if (fd >= 0) return fd;
        if (!FAILED_AS_ALLOWED(fd, -EMFILE, -ENOMEM, -EINTR, -EIO)) return fd;
    }
    EXPECT(!"open kept failing");
    return -__LINE__;
}

/* Retries a path call (statx, rename, unlink, mkdir) whose injected
 * failures did nothing, until it is done. */
#define PATH_RETRYING(call)                                          \
    do {                                                             \
        int rc_ = -1;                                                \
        for (int tries_ = 0; tries_ < TRIES; tries_++) {             \
            rc_ = (call);                                            \
            if (rc_ >= 0 || !FAILED_AS_ALLOWED(rc_, -EIO, -ENOMEM)) break; \
        }                                                            \
        EXPECT_EQ(rc_, 0);                                           \
    } while (0)

static intptr_t file_side(void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(FILE_BYTES);
    if (!buf) return -__LINE__;
    char sub[96], path[128], moved[128];
    snprintf(sub, sizeof sub, "%s/d", run.dir);
    snprintf(path, sizeof path, "%s/file", sub);
    snprintf(moved, sizeof moved, "%s/moved", sub);
    PATH_RETRYING(urt_mkdir(sub, 0700));

    int fd = open_retrying(path, O_CREAT | O_RDWR | O_TRUNC);
    if (fd < 0) {
        free(buf);
        return -__LINE__;
    }
    fill(buf, FILE_BYTES, 0, 77);
    size_t written = 0;
    for (int tries = 0; written < FILE_BYTES && tries < TRIES; tries++) {
        size_t done = 0;
        ssize_t rc = urt_write_all(fd, buf + written, FILE_BYTES - written, &done);
        written += done;
        if (rc < 0 && !FAILED_AS_ALLOWED(rc, -EIO, -ENOMEM, -ECANCELED, -ENOSPC)) break;
    }
    EXPECT_EQ(written, FILE_BYTES);
    int rc = urt_fsync(fd);
    FAILED_AS_ALLOWED(rc, -EIO);
    close_checked(fd);

    PATH_RETRYING(urt_rename(path, moved));
    struct statx st;
    PATH_RETRYING(urt_statx(AT_FDCWD, moved, 0, STATX_SIZE, &st));
    EXPECT_EQ(st.stx_size, FILE_BYTES);

    fd = open_retrying(moved, O_RDONLY);
    if (fd < 0) {
        free(buf);
        return -__LINE__;
    }
    memset(buf, 0, FILE_BYTES);
    size_t got = 0;
    for (int tries = 0; got < FILE_BYTES && tries < TRIES;) {
        ssize_t n = urt_pread(fd, buf + got, FILE_BYTES - got, got);
        if (n > 0) {
            got += (size_t)n;
            tries = 0;
        } else if (n == 0) {
            break; /* end of file before FILE_BYTES: checked below */
        } else if (FAILED_AS_ALLOWED(n, -EIO, -ENOMEM, -ECANCELED)) {
            tries++;
        } else {
            break;
        }
    }
    EXPECT_EQ(got, FILE_BYTES);
    EXPECT_EQ(mismatch(buf, got, 0, 77), -1);
    free(buf);
    close_checked(fd);
    PATH_RETRYING(urt_unlink(moved));
    PATH_RETRYING(urt_unlinkat(AT_FDCWD, sub, AT_REMOVEDIR));
    return 0;
}

static intptr_t small_job(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    /* A group's children are cancelled when a sibling had no stack. */
    int rc = urt_sleep_ms(1 + i % 3);
    if (rc == 0) rc = urt_yield();
    if (rc == URT_ECANCELED) return rc;
    EXPECT_EQ(rc, 0);
    return (intptr_t)i * 10;
}

/* ---- the other calls: send/recv with read-ahead, msg, vectors, poll ---- */

#define MISC_BYTES (24 * 1024)

/* Sends buf whole with urt_send (or urt_sendmsg, two iovecs at a time),
 * each short count resumed from. */
static bool send_whole(int fd, const unsigned char *buf, size_t len, bool as_msg)
{
    size_t off = 0;
    for (int tries = 0; off < len && tries < TRIES;) {
        ssize_t n;
        if (as_msg) {
            size_t half = (len - off) / 2;
            struct iovec iov[2] = {{(void *)(buf + off), half},
                                   {(void *)(buf + off + half), len - off - half}};
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
            n = urt_sendmsg(fd, &msg, 0);
        } else {
            n = urt_send(fd, buf + off, len - off, 0);
        }
        if (n > 0) {
            off += (size_t)n;
            tries = 0;
        } else if (FAILED_AS_ALLOWED(n, -ECONNRESET, -EPIPE, -ENOMEM, -ECANCELED)) {
            tries++;
        } else {
            return false;
        }
    }
    EXPECT_EQ(off, len);
    return off == len;
}

/* Receives until end of file, checking each byte against the pattern.
 * *broken: read-ahead's recv failed (the connection reset) or it had no
 * memory to keep bytes it took: it then says so once and end of file
 * after, so fewer bytes may come, but never one out of place. */
static size_t receive_until_eof(int fd, unsigned pattern, bool as_msg, bool *broken)
{
    unsigned char chunk[1500];
    size_t got = 0;
    for (int tries = 0; tries < TRIES;) {
        ssize_t n;
        if (as_msg) {
            struct iovec iov = {chunk, sizeof chunk};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
            n = urt_recvmsg(fd, &msg, 0);
        } else {
            n = urt_recv(fd, chunk, sizeof chunk, 0);
        }
        if (n == 0) break;
        if (n > 0) {
            EXPECT_EQ(mismatch(chunk, (size_t)n, got, pattern), -1);
            got += (size_t)n;
            tries = 0;
        } else if (FAILED_AS_ALLOWED(n, -ECONNRESET, -ENOMEM, -ECANCELED)) {
            if (n == -ENOMEM || n == -ECONNRESET) *broken = true;
            tries++;
        } else {
            break;
        }
    }
    return got;
}

struct misc {
    int sock[2];
    unsigned char out[MISC_BYTES];
};

static intptr_t misc_receiver(void *arg)
{
    struct misc *m = arg;
    int rc = urt_readahead(m->sock[1], 1);
    if (rc < 0) FAILED_AS_ALLOWED(rc, -ENOMEM);
    bool broken = false;
    size_t got = receive_until_eof(m->sock[1], 91, false, &broken);
    if (!broken) EXPECT_EQ(got, MISC_BYTES);
    EXPECT(got <= MISC_BYTES);
    EXPECT_EQ(receive_until_eof(m->sock[1], 91, true, &broken), 0);
    return 0;
}

static void misc_calls(void)
{
    struct misc *m = malloc(sizeof *m);
    if (!m) return;
    fill(m->out, MISC_BYTES, 0, 91);
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->sock), 0);
    urt_task receiver;
    int rc = urt_task_create(&receiver, misc_receiver, m);
    if (rc == 0) {
        if (send_whole(m->sock[0], m->out, MISC_BYTES / 2, false))
            send_whole(m->sock[0], m->out + MISC_BYTES / 2, MISC_BYTES / 2, true);
        for (int tries = 0; tries < TRIES; tries++) {
            rc = urt_shutdown(m->sock[0], SHUT_WR);
            if (rc == 0 || !FAILED_AS_ALLOWED(rc, -ENOMEM)) break;
        }
        EXPECT_EQ(rc, 0);
        rc = urt_task_await(receiver, NULL);
        if (rc != 0) FAILED_AS_ALLOWED(rc, -ENOMEM, URT_ESTACKLIMIT);
        EXPECT_EQ(urt_task_release(receiver), 0);
    } else {
        FAILED_AS_ALLOWED(rc, -ENOMEM);
    }
    close_checked(m->sock[0]);
    close_checked(m->sock[1]);

    /* Vectors through a pipe, with a poll for readiness first. */
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    struct iovec out[3] = {{m->out, 100}, {m->out + 100, 1000}, {m->out + 1100, 2900}};
    size_t sent = 0;
    for (int tries = 0; sent < 4000 && tries < TRIES; tries++) {
        /* Resume inside the vector list, as a short writev leaves it. */
        struct iovec rest[3];
        int cnt = 0;
        size_t skip = sent;
        for (int i = 0; i < 3; i++) {
            if (skip >= out[i].iov_len) {
                skip -= out[i].iov_len;
                continue;
            }
            rest[cnt].iov_base = (char *)out[i].iov_base + skip;
            rest[cnt++].iov_len = out[i].iov_len - skip;
            skip = 0;
        }
        ssize_t n = urt_writev(p[1], rest, cnt);
        if (n > 0) sent += (size_t)n;
        else if (!FAILED_AS_ALLOWED(n, -EIO, -ENOMEM, -ECANCELED, -ENOSPC)) break;
    }
    EXPECT_EQ(sent, 4000);
    for (int tries = 0; tries < TRIES; tries++) {
        rc = urt_poll(p[0], POLLIN);
        if (rc >= 0 || !FAILED_AS_ALLOWED(rc, -ENOMEM)) break;
    }
    EXPECT(rc & POLLIN);
    unsigned char in[4000];
    size_t got = 0;
    for (int tries = 0; got < 4000 && tries < TRIES; tries++) {
        size_t left = 4000 - got, half = left / 2;
        struct iovec iov[2] = {{in + got, half}, {in + got + half, left - half}};
        ssize_t n = half ? urt_readv(p[0], iov, 2) : urt_readv(p[0], iov + 1, 1);
        if (n > 0) got += (size_t)n;
        else if (!FAILED_AS_ALLOWED(n, -EIO, -ENOMEM, -ECANCELED)) break;
    }
    EXPECT_EQ(got, 4000);
    EXPECT_EQ(mismatch(in, got, 0, 91), -1);
    close_checked(p[0]);
    close_checked(p[1]);
    free(m);
}

/* urt_wait and as_completed only wait: nothing of theirs can fail but
 * their bookkeeping's allocation. */
static void waits(void)
{
    urt_task t[3];
    size_t n = 0;
    for (uintptr_t i = 0; i < 3; i++) {
        int rc = urt_task_create(&t[n], small_job, (void *)i);
        if (rc == 0) n++;
        else FAILED_AS_ALLOWED(rc, -ENOMEM);
    }
    if (n == 0) return;
    int rc = urt_wait(t, n, URT_ALL_COMPLETED, URT_NO_TIMEOUT, NULL);
    if (!FAILED_AS_ALLOWED(rc, -ENOMEM)) EXPECT_EQ(rc, n);
    urt_as_completed it;
    rc = urt_as_completed_init(&it, t, n, URT_NO_TIMEOUT);
    if (!FAILED_AS_ALLOWED(rc, -ENOMEM)) {
        urt_task next;
        size_t seen = 0;
        while ((rc = urt_as_completed_next(&it, &next)) == 1) seen++;
        if (!FAILED_AS_ALLOWED(rc, -ENOMEM)) EXPECT_EQ(seen, n);
        urt_as_completed_end(&it);
    }
    for (size_t k = 0; k < n; k++) EXPECT_EQ(urt_task_release(t[k]), 0);
}

/* ---- tasks, gather, a group, a queue, a thread, timers ----------------- */


/* A task that could not be given a stack ends with why; create itself can
 * only run out of memory. */
static void tasks_and_gather(void)
{
    urt_task t[TASKS];
    size_t n = 0;
    for (uintptr_t i = 0; i < TASKS; i++) {
        urt_task_opts opts = {.stack_size = (size_t)URT_STACK_MIN << (i % 5)};
        int rc = urt_task_create_opts(&t[n], small_job, (void *)i, &opts);
        if (rc == 0)
            n++;
        else
            FAILED_AS_ALLOWED(rc, -ENOMEM);
    }
    intptr_t values[TASKS];
    int errors[TASKS];
    int rc = urt_gather(t, n, URT_RETURN_EXCEPTIONS, values, errors);
    if (!FAILED_AS_ALLOWED(rc, -ENOMEM)) EXPECT_EQ(rc, 0);
    if (rc == 0) {
        for (size_t k = 0; k < n; k++) {
            if (errors[k] == 0)
                EXPECT_EQ(values[k] % 10, 0);
            else
                FAILED_AS_ALLOWED(errors[k], -ENOMEM, URT_ESTACKLIMIT);
        }
    }
    for (size_t k = 0; k < n; k++) EXPECT_EQ(urt_task_release(t[k]), 0);
}

static void group_of_children(void)
{
    urt_group g;
    int rc = urt_group_enter(&g);
    if (FAILED_AS_ALLOWED(rc, -ENOMEM) || rc != 0) return;
    for (uintptr_t i = 0; i < 6; i++) {
        rc = urt_group_spawn(&g, NULL, small_job, (void *)i);
        FAILED_AS_ALLOWED(rc, -ENOMEM, -ESHUTDOWN);
    }
    urt_group_error errs[8];
    size_t nerrs = 0;
    rc = urt_group_exit(&g, errs, 8, &nerrs);
    if (rc != 0) {
        /* Only a child without a stack fails (the rest are cancelled,
         * which is no failure). */
        FAILED_AS_ALLOWED(rc, -ENOMEM, URT_ESTACKLIMIT);
        EXPECT(nerrs >= 1);
        for (size_t k = 0; k < nerrs && k < 8; k++)
            FAILED_AS_ALLOWED(errs[k].error, -ENOMEM, URT_ESTACKLIMIT);
    }
}

struct queue_run {
    urt_queue q;
    unsigned next_expected;
    bool ok;
};

static intptr_t queue_consumer(void *arg)
{
    struct queue_run *qr = arg;
    while (qr->next_expected < QUEUE_ITEMS) {
        void *item;
        int rc = urt_queue_get(&qr->q, &item);
        if (rc != 0) {
            EXPECT_EQ(rc, 0);
            return -__LINE__;
        }
        EXPECT_EQ((uintptr_t)item, qr->next_expected + 1);
        qr->next_expected++;
    }
    return 0;
}

static void queue_in_order(void)
{
    struct queue_run qr = {.ok = true};
    int rc = urt_queue_init(&qr.q, URT_QUEUE_FIFO, 8);
    if (FAILED_AS_ALLOWED(rc, -ENOMEM) || rc != 0) return;
    urt_task consumer;
    rc = urt_task_create(&consumer, queue_consumer, &qr);
    if (rc == 0) {
        for (uintptr_t i = 1; i <= QUEUE_ITEMS; i++) EXPECT_EQ(urt_queue_put(&qr.q, (void *)i), 0);
        intptr_t v = -1;
        rc = urt_task_await(consumer, &v);
        if (rc == 0) {
            EXPECT_EQ(v, 0);
            EXPECT_EQ(qr.next_expected, QUEUE_ITEMS);
        } else {
            /* It never got a stack; the items it would have taken stay. */
            FAILED_AS_ALLOWED(rc, -ENOMEM, URT_ESTACKLIMIT);
        }
        EXPECT_EQ(urt_task_release(consumer), 0);
    } else {
        FAILED_AS_ALLOWED(rc, -ENOMEM);
    }
    EXPECT_EQ(urt_queue_destroy(&qr.q), 0);
}

static intptr_t doubled(void *arg)
{
    return (intptr_t)(uintptr_t)arg * 2;
}

static void thread_job(void)
{
    intptr_t v = 0;
    int rc = urt_to_thread(doubled, (void *)21, &v);
    if (!FAILED_AS_ALLOWED(rc, -ENOMEM, -EAGAIN)) EXPECT_EQ(v, 42);
}

static void sleeps_are_never_early(void)
{
    for (int i = 0; i < 3; i++) {
        uint64_t start = urt_now();
        EXPECT_EQ(urt_sleep_ms(2), 0);
        EXPECT(urt_now() - start >= 2 * URT_NS_PER_MS);
    }
    urt_timeout scope;
    int rc = urt_timeout_enter(&scope, 3 * URT_NS_PER_MS);
    if (FAILED_AS_ALLOWED(rc, -ENOMEM) || rc != 0) return;
    EXPECT_EQ(urt_sleep_ms(1000), URT_ETIMEDOUT);
    EXPECT_EQ(urt_timeout_exit(&scope), URT_ETIMEDOUT);
}

/* Shows what every task waits on just before the guard below cuts them. */
static intptr_t watchdog(void *arg)
{
    (void)arg;
    if (urt_sleep_ms(GUARD_MS - 500) != 0) return 0;
    fprintf(stderr, "seed %u hangs; its tasks:\n", run.seed);
    urt_task_dump(STDERR_FILENO);
    return 0;
}

static intptr_t seed_main(void *arg)
{
    (void)arg;
    /* A bug that hangs the loop fails this seed, not the whole binary. */
    urt_timeout guard;
    int rc = urt_timeout_enter(&guard, GUARD_MS * URT_NS_PER_MS);
    if (FAILED_AS_ALLOWED(rc, -ENOMEM) || rc != 0) return 0;
    urt_task dog;
    bool have_dog = urt_task_create(&dog, watchdog, NULL) == 0;

    urt_task t[STREAMS + 1];
    size_t n = 0;
    for (uintptr_t i = 1; i <= STREAMS; i++) {
        if ((rc = urt_task_create(&t[n], stream_pair, (void *)i)) == 0) n++;
        else FAILED_AS_ALLOWED(rc, -ENOMEM);
    }
    if ((rc = urt_task_create(&t[n], file_side, NULL)) == 0) n++;
    else FAILED_AS_ALLOWED(rc, -ENOMEM);

    misc_calls();
    waits();
    tasks_and_gather();
    group_of_children();
    queue_in_order();
    thread_job();
    sleeps_are_never_early();

    int errors[STREAMS + 1];
    intptr_t values[STREAMS + 1];
    rc = urt_gather(t, n, URT_RETURN_EXCEPTIONS, values, errors);
    if (!FAILED_AS_ALLOWED(rc, -ENOMEM)) {
        for (size_t k = 0; k < n; k++) {
            if (errors[k] == 0) EXPECT_EQ(values[k], 0);
            else FAILED_AS_ALLOWED(errors[k], -ENOMEM, URT_ESTACKLIMIT);
        }
    }
    for (size_t k = 0; k < n; k++) EXPECT_EQ(urt_task_release(t[k]), 0);
    if (have_dog) {
        urt_task_cancel(dog);
        urt_task_await(dog, NULL);
        urt_task_release(dog);
    }
    EXPECT_EQ(urt_timeout_exit(&guard), 0);
    return 0;
}

/* ---- seeds --------------------------------------------------------------- */

static unsigned env_unsigned(const char *name, unsigned fallback)
{
    const char *v = getenv(name);
    return v && *v ? (unsigned)strtoul(v, NULL, 10) : fallback;
}

#ifdef URT_FAULTS
static struct urt__fault_counts totals;
static unsigned long calls_failed;
#endif

static void one_seed(unsigned seed)
{
    run = (struct seed_run){.seed = seed};
    snprintf(run.dir, sizeof run.dir, "/tmp/urt-fault-XXXXXX");
    assert_non_null(mkdtemp(run.dir));
    /* A small ring makes the SQ fill and the CQ overflow within a turn. */
    static const char *const rings[] = {"2", "8", "64", NULL};
    const char *ring = rings[seed % 4];
    if (ring) setenv("URT_RING_ENTRIES", ring, 1);
    else unsetenv("URT_RING_ENTRIES");
    /* Printed first: a seed that hangs or crashes is named by the log's
     * last lines. */
    printf("seed %u (replay: URT_FAULT_SEED=%u)\n", seed, seed);
    fflush(stdout);
#ifdef URT_FAULTS
    static const unsigned per_mille[] = {10, 30, 80};
    urt__faults_arm(seed, per_mille[seed / 4 % 3], URT__FAULT_ALL);
#endif
    task_failure[0] = 0;
    intptr_t value = -1;
    int rc = run_checked(seed_main, NULL, &value);
#ifdef URT_FAULTS
    struct urt__fault_counts c;
    urt__faults_counts(&c);
    urt__faults_disarm();
    totals.errors += c.errors;
    totals.short_transfers += c.short_transfers;
    totals.enter_errors += c.enter_errors;
    totals.sq_full += c.sq_full;
    totals.reaps_cut += c.reaps_cut;
    totals.stack_maps += c.stack_maps;
    totals.allocs += c.allocs;
    calls_failed += run.faults_seen;
#endif
    unsetenv("URT_RING_ENTRIES");
    rmdir(run.dir);
    if (task_failure[0]) print_error("seed %u: %s\n", seed, task_failure);
    assert_no_task_failure();
    /* The loop itself, or main's stack, may be what an allocation or an
     * mmap failed for; then nothing ran. */
    if (rc != 0) {
        if (!injecting || (rc != -ENOMEM && rc != URT_ESTACKLIMIT))
            print_error("seed %u: urt_run returned %d\n", seed, rc);
        assert_true(injecting && (rc == -ENOMEM || rc == URT_ESTACKLIMIT));
    } else {
        assert_int_equal(value, 0);
    }
#if UNDER_ASAN
    /* Per seed, so that a leak names the seed that made it. */
    if (__lsan_do_recoverable_leak_check()) {
        print_error("seed %u leaked (LeakSanitizer's report above)\n", seed);
        fail();
    }
#endif
}

static void test_every_operation_survives_injected_faults(void **state)
{
    (void)state;
    unsigned only = env_unsigned("URT_FAULT_SEED", 0);
    unsigned seeds = injecting ? env_unsigned("URT_FAULT_SEEDS", 200) : 3;
    if (small_scale()) seeds = 2;
    if (only) {
        /* The faults follow from the seed and the order of the ops, which
         * real I/O timing can change: a replay runs the seed again and
         * again to meet the failing order once more. */
        for (unsigned i = env_unsigned("URT_FAULT_REPEAT", 20); i > 0; i--) one_seed(only);
        return;
    }
    for (unsigned s = 1; s <= seeds; s++) one_seed(s);
#ifdef URT_FAULTS
    printf("faults: %u seeds, %llu errors, %llu short transfers, %llu enter failures, "
           "%llu full SQs, %llu reaps cut, %llu stack maps, %llu allocations; "
           "%lu calls returned an injected error\n",
           seeds, (unsigned long long)totals.errors, (unsigned long long)totals.short_transfers,
           (unsigned long long)totals.enter_errors, (unsigned long long)totals.sq_full,
           (unsigned long long)totals.reaps_cut, (unsigned long long)totals.stack_maps,
           (unsigned long long)totals.allocs, calls_failed);
    /* Each site must really have been hit, or this proves nothing of it. */
    assert_true(totals.errors > 0);
    assert_true(totals.short_transfers > 0);
    assert_true(totals.enter_errors > 0);
    assert_true(totals.sq_full > 0);
    assert_true(totals.reaps_cut > 0);
    assert_true(totals.allocs > 0);
    assert_true(calls_failed > 0);
    if (seeds >= 50) assert_true(totals.stack_maps > 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_operation_survives_injected_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
