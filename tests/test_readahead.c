/*
 * Read-ahead on sockets (urt.h "I/O", urt_readahead), on real sockets:
 * AF_UNIX socketpairs and TCP over 127.0.0.1, no mocks.
 *
 * With read-ahead on, one multishot recv per socket receives into the
 * loop's provided-buffer ring, and urt_recv, urt_read, urt_readv,
 * urt_recvmsg and urt_read_exactly copy from what has arrived.  The header
 * promises that a program sees the same results as without it:
 *
 *   - the byte stream arrives intact and in order, whatever mix of calls
 *     and lengths reads it, and end of file is reported as usual;
 *   - MSG_PEEK, MSG_WAITALL and MSG_DONTWAIT keep their meaning; other
 *     flags give -EOPNOTSUPP, except MSG_OOB and MSG_ERRQUEUE, which go to
 *     the kernel;
 *   - a cancelled or timed-out read leaves the caller's buffer alone and
 *     loses nothing, and data of the same instant is returned exactly once;
 *   - turning it off returns what was read ahead first, then the kernel's;
 *   - urt_close ends it (waiting readers get -EBADF) and frees what was
 *     buffered; so does the end of the loop;
 *   - urt_poll for POLLIN reports the buffered bytes;
 *   - a reset is reported once, then end of file;
 *   - when the buffer ring runs dry, reads fall back to the kernel without
 *     reordering or losing a byte;
 *   - the rest of the I/O rules still hold: O_NONBLOCK sockets wait, two
 *     tasks reading one socket share its bytes, a message socket keeps its
 *     messages, and a socket given the number of one closed with close(2)
 *     reads its own bytes.
 *
 * Every test runs its main three times: unmasked (urt_readahead returns 1
 * and the read-ahead path runs), under URT_KERNEL=5.10 and under
 * URT_FEATURES_OFF=recv_multishot (urt_readahead returns 0 and every read
 * goes to the kernel).  The three runs must give the same observable
 * results; each run first checks that its mask took effect.  A few checks
 * hold only with read-ahead on (-EINVAL for POLLIN|POLLOUT, -EOPNOTSUPP
 * for other flags, what stays in the kernel's receive queue): they are
 * made in the unmasked run only.
 *
 * Checks made inside tasks never call cmocka's assert macros (a longjmp
 * out of a fiber would wreck the loop); they record the first failure and
 * the test asserts none was recorded after urt_run returns.  The random
 * tests print their seed on failure; URT_TEST_SEED=n repeats a run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "masks.h"
#include "sockets.h"

/* ---- feature masks ----------------------------------------------------- */

static const struct mask masks[] = {
    {NULL, NULL, {IORING_OP_NOP}, 0},
    /* Linux 5.10 has no multishot recv (6.0) and no SOCKET opcode (5.19). */
    {"URT_KERNEL", "5.10", {IORING_OP_SOCKET}, 1},
    /* Only read-ahead taken away: everything else as on this kernel. */
    {"URT_FEATURES_OFF", "recv_multishot", {IORING_OP_NOP}, 0},
};
#define NMASKS (sizeof masks / sizeof masks[0])

/* What urt_readahead(fd, 1) must return in the run under way: 1 unmasked,
 * 0 under a mask.  Set by check_mask. */
static int ra_expected;

static bool kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
    return ma > major || (ma == major && mi >= minor);
}

/* Called first by every main: the mask really reached the loop (a misspelt
 * variable would make the masked runs test the read-ahead path again), and
 * the unmasked run really has read-ahead, or it would test nothing new.  The
 * kernels tier of `make test` sets URT_KERNEL for the whole binary: then
 * the unmasked run has what that release had. */
static void check_mask(void)
{
    const struct mask *m;
    const struct urt_loop *loop = mask_loop_checked(&masks[0], &m);
    if (!loop) return;
    bool has = urt__has(loop, URT__F_RECV_MULTISHOT);
    if (m->var) {
        EXPECT_EQ(has, 0);
        ra_expected = 0;
    } else {
        if (!getenv("URT_KERNEL") && !getenv("URT_FEATURES_OFF"))
            EXPECT_EQ(has, kernel_at_least(6, 0));
        ra_expected = has;
    }
}

/* ---- helpers ------------------------------------------------------------- */

/* (tcp_pair, reset_close, yields, await_within, all_canary and note_failure
 * are in sockets.h.) */

#define MS URT_NS_PER_MS
/* A bound on waits that should end: a lost wake-up fails the test instead
 * of hanging it.  Not a speed assertion: nothing checks how long it took. */
#define GUARD_NS (10 * URT_NS_PER_S)

static uint64_t base_seed;

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t seed_for(uint64_t salt)
{
    uint64_t s = (base_seed ^ (salt * 0x9E3779B97F4A7C15ull)) | 1;
    for (int i = 0; i < 4; i++) rnd(&s);
    return s;
}

static const char *mask_name(void)
{
    return mask_now && mask_now->var ? mask_now->value : "no mask";
}

/* urt_readahead(fd, 1), which must say on unmasked and off under a mask. */
static void readahead_on(int fd)
{
    EXPECT_EQ(urt_readahead(fd, 1), ra_expected);
}

/* Every main runs as a task awaited for at most a minute: a read that
 * never returns (a lost byte, a lost wake-up) then fails its test instead
 * of hanging the binary. */
struct guarded {
    urt_fn fn;
    void *arg;
};

static intptr_t guarded_main(void *p)
{
    struct guarded *g = p;
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, g->fn, g->arg), 0);
    intptr_t value = -1;
    EXPECT_EQ(await_within(t, 60000, &value), 0);
    EXPECT_EQ(value, 0);
    return 0;
}

static void run_one(const struct mask *m, urt_fn fn, void *arg)
{
    struct guarded g = {fn, arg};
    run_masked(m, guarded_main, &g);
}

static void run_all(urt_fn fn, void *arg)
{
    for (size_t i = 0; i < NMASKS; i++) run_one(&masks[i], fn, arg);
}

static size_t fionread(int fd)
{
    int n = -1;
    EXPECT_EQ(ioctl(fd, FIONREAD, &n), 0);
    return n < 0 ? 0 : (size_t)n;
}

static bool unix_pair(int *a, int *b)
{
    int sv[2];
    int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    EXPECT_EQ(rc, 0);
    if (rc) return false;
    *a = sv[0];
    *b = sv[1];
    return true;
}

enum transport { UNIX_PAIR, TCP_PAIR };
static const char *const transport_name[] = {"socketpair", "tcp"};

/* *rd the end that reads (read-ahead goes there), *wr its peer. */
static bool make_pair(enum transport t, int *rd, int *wr)
{
    return t == UNIX_PAIR ? unix_pair(rd, wr) : tcp_pair(wr, rd);
}

/* ---- one receive call, of any of the read-ahead kinds --------------------- */

enum via { VIA_RECV, VIA_READ, VIA_READV, VIA_RECVMSG, VIA_EXACTLY, NVIA };
static const char *const via_name[] = {"recv", "read", "readv", "recvmsg", "read_exactly"};

/* One call of kind via into buf[0..len), split in two iovecs at split for
 * the vectored kinds; timeout URT_NO_TIMEOUT for the plain call.  For
 * urt_read_exactly *done gets the bytes it moved; for the others, the
 * bytes returned. */
static ssize_t receive(int fd, enum via via, unsigned char *buf, size_t len, size_t split,
                       uint64_t timeout, size_t *done)
{
    bool t = timeout != URT_NO_TIMEOUT;
    if (split > len) split = len;
    struct iovec iov[2] = {{buf, split}, {buf + split, len - split}};
    ssize_t r;
    *done = 0;
    switch (via) {
    case VIA_RECV:
        r = t ? urt_recv_timeout(fd, buf, len, 0, timeout) : urt_recv(fd, buf, len, 0);
        break;
    case VIA_READ:
        r = t ? urt_read_timeout(fd, buf, len, timeout) : urt_read(fd, buf, len);
        break;
    case VIA_READV:
        /* urt_readv has no _timeout form */
        r = urt_readv(fd, iov, 2);
        break;
    case VIA_RECVMSG: {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
        r = t ? urt_recvmsg_timeout(fd, &m, 0, timeout) : urt_recvmsg(fd, &m, 0);
        if (r >= 0) EXPECT_EQ(m.msg_flags, 0); /* nothing truncated, no MSG_OOB */
        break;
    }
    default:
        return t ? urt_read_exactly_timeout(fd, buf, len, done, timeout)
                 : urt_read_exactly(fd, buf, len, done);
    }
    if (r > 0) *done = (size_t)r;
    return r;
}

/* Reads exactly len bytes with plain urt_recv calls (at most GUARD_NS in
 * all); returns how many came. */
static size_t recv_all(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    uint64_t end = urt_now() + GUARD_NS;
    while (got < len) {
        uint64_t now = urt_now();
        ssize_t r = urt_recv_timeout(fd, buf + got, len - got, 0, now < end ? end - now : 0);
        if (r <= 0) {
            note_failure("[%s] recv after %zu of %zu bytes: %zd", mask_name(), got, len, r);
            break;
        }
        got += (size_t)r;
    }
    return got;
}

static void send_pattern(int fd, size_t len, size_t from, unsigned seed)
{
    unsigned char *buf = malloc(len ? len : 1);
    EXPECT(buf != NULL);
    if (!buf) return;
    fill(buf, len, from, seed);
    size_t done = 0;
    EXPECT_EQ(urt_send_all(fd, buf, len, &done), (ssize_t)len);
    free(buf);
}

/* Reads len bytes and checks they are pattern seed from offset from. */
static void expect_pattern(int fd, size_t len, size_t from, unsigned seed)
{
    unsigned char *buf = malloc(len ? len : 1);
    EXPECT(buf != NULL);
    if (!buf) return;
    size_t got = recv_all(fd, buf, len);
    long bad = mismatch(buf, got, from, seed);
    if (got == len && bad >= 0)
        note_failure("[%s] byte %zu of stream %u is wrong", mask_name(), from + (size_t)bad, seed);
    free(buf);
}

/* ==== 1. the byte stream arrives intact ======================================= */

#define STREAM_PIECE_MAX 70000
#define STREAM_READ_MAX 100000

struct stream_job {
    int fd;
    size_t total;
    unsigned seed;
    uint64_t rng;
};

/* Sends total bytes of the stream's pattern in random pieces, now and then
 * yielding or sleeping a little so that the reader sometimes finds much
 * buffered and sometimes nothing, then shuts down its side. */
static intptr_t stream_writer(void *arg)
{
    struct stream_job *j = arg;
    unsigned char *buf = malloc(STREAM_PIECE_MAX);
    EXPECT(buf != NULL);
    if (!buf) return 0;
    uint64_t rng = j->rng ^ 0x5bd1e995;
    size_t sent = 0;
    while (sent < j->total) {
        size_t n = 1 + rnd(&rng) % STREAM_PIECE_MAX;
        if (n > j->total - sent) n = j->total - sent;
        fill(buf, n, sent, j->seed);
        size_t done = 0;
        ssize_t r = urt_send_all(j->fd, buf, n, &done);
        EXPECT_EQ(r, (ssize_t)n);
        if (r != (ssize_t)n) break;
        sent += n;
        switch (rnd(&rng) % 4) {
        case 0: EXPECT_EQ(urt_yield(), 0); break;
        case 1: EXPECT_EQ(urt_sleep_us(rnd(&rng) % 200), 0); break;
        default: break;
        }
    }
    EXPECT_EQ(urt_shutdown(j->fd, SHUT_WR), 0);
    free(buf);
    return 0;
}

/* A read length from 1 to STREAM_READ_MAX, often small so that reads end
 * inside a received chunk as often as at its end. */
static size_t read_len(uint64_t *rng)
{
    static const size_t scale[] = {16, 1000, STREAM_READ_MAX};
    return 1 + rnd(rng) % scale[rnd(rng) % 3];
}

static void read_stream(int fd, size_t total, unsigned seed, uint64_t rng)
{
    unsigned char *buf = malloc(STREAM_READ_MAX);
    EXPECT(buf != NULL);
    if (!buf) return;
    size_t got = 0;
    while (got < total) {
        size_t len = read_len(&rng);
        enum via via = (enum via)(rnd(&rng) % NVIA);
        if (via == VIA_EXACTLY && len > total - got) len = total - got;
        size_t split = (size_t)(rnd(&rng) % (len + 1)), done;
        memset(buf, CANARY, len);
        ssize_t r = receive(fd, via, buf, len, split, URT_NO_TIMEOUT, &done);
        bool ok = via == VIA_EXACTLY ? r == (ssize_t)len && done == len : r > 0 && r <= (ssize_t)len;
        if (!ok) {
            note_failure("[%s] seed %llu: %s of %zu at byte %zu of %zu returned %zd", mask_name(),
                         (unsigned long long)base_seed, via_name[via], len, got, total, r);
            break;
        }
        long bad = mismatch(buf, (size_t)r, got, seed);
        if (bad >= 0 || !all_canary(buf + r, len - (size_t)r)) {
            note_failure("[%s] seed %llu: %s of %zu at byte %zu: byte %ld wrong", mask_name(),
                         (unsigned long long)base_seed, via_name[via], len, got, bad);
            break;
        }
        got += (size_t)r;
        if (rnd(&rng) % 16 == 0) EXPECT_EQ(urt_sleep_us(rnd(&rng) % 300), 0);
    }
    /* End of file after the writer's shutdown, and again after that. */
    if (got == total) {
        EXPECT_EQ(urt_recv(fd, buf, 100, 0), 0);
        EXPECT_EQ(urt_read(fd, buf, 100), 0);
        struct iovec iov[2] = {{buf, 10}, {buf + 10, 10}};
        EXPECT_EQ(urt_readv(fd, iov, 2), 0);
    }
    free(buf);
}

static intptr_t main_stream_intact(void *arg)
{
    (void)arg;
    check_mask();
    size_t total = (small_scale() ? 1u : 4u) << 20;
    for (int t = UNIX_PAIR; t <= TCP_PAIR; t++) {
        int rd, wr;
        bool failed_before = task_failure[0];
        if (!make_pair((enum transport)t, &rd, &wr)) return 0;
        readahead_on(rd);
        struct stream_job j = {.fd = wr, .total = total, .seed = 100u + (unsigned)t,
                               .rng = seed_for(1 + (unsigned)t)};
        urt_task w;
        EXPECT_EQ(urt_task_create(&w, stream_writer, &j), 0);
        read_stream(rd, total, j.seed, seed_for(11 + (unsigned)t));
        EXPECT_EQ(await_within(w, 10000, NULL), 0);
        if (task_failure[0] && !failed_before) print_error("over %s\n", transport_name[t]);
        EXPECT_EQ(urt_close(rd), 0);
        EXPECT_EQ(urt_close(wr), 0);
    }
    return 0;
}

/* Header (urt_readahead): with read-ahead on, urt_recv, urt_read,
 * urt_readv, urt_recvmsg and urt_read_exactly "copy from what has arrived,
 * in order".  4 MiB of a pattern written in random pieces, read with random
 * lengths and a random mix of the five calls, over a socketpair and TCP:
 * every byte must come once and in order, with nothing written past what a
 * call returns, and end of file must follow the writer's shutdown (twice:
 * the end is sticky, as with the kernel). */
static void test_byte_stream_arrives_intact_through_every_read_call(void **state)
{
    (void)state;
    run_all(main_stream_intact, NULL);
}

/* ==== 2. recv flags ============================================================ */

struct flag_job {
    int fd;
    int flags;
    size_t len;
    bool vectored; /* urt_recvmsg into two iovecs split at 50 */
    ssize_t res;
    unsigned char buf[512];
};

static intptr_t flag_reader(void *arg)
{
    struct flag_job *j = arg;
    if (j->vectored) {
        struct iovec iov[2] = {{j->buf, 50}, {j->buf + 50, j->len - 50}};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
        j->res = urt_recvmsg(j->fd, &m, j->flags);
    } else {
        j->res = urt_recv(j->fd, j->buf, j->len, j->flags);
    }
    return 0;
}

/* MSG_WAITALL: the reader must not return before all len bytes came, sent
 * in pieces with pauses in between (the pauses give a reader that wrongly
 * returns short every chance to; nothing waits on them). */
static void waitall_across_sends(int a, int b, bool vectored, const size_t *pieces, int npieces)
{
    struct flag_job j = {.fd = a, .flags = MSG_WAITALL, .vectored = vectored};
    for (int i = 0; i < npieces; i++) j.len += pieces[i];
    memset(j.buf, CANARY, sizeof j.buf);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, flag_reader, &j), 0);
    size_t from = 0;
    for (int i = 0; i < npieces; i++) {
        yields(2);
        EXPECT_EQ(urt_sleep_ms(2), 0);
        if (urt_task_done(t) != 0)
            note_failure("[%s] MSG_WAITALL%s for %zu returned %zd with %zu sent", mask_name(),
                         vectored ? " (recvmsg)" : "", j.len, j.res, from);
        send_pattern(b, pieces[i], from, 7);
        from += pieces[i];
    }
    EXPECT_EQ(await_within(t, 10000, NULL), 0);
    EXPECT_EQ(j.res, (ssize_t)j.len);
    EXPECT_EQ(mismatch(j.buf, j.len, 0, 7), -1);
    EXPECT(all_canary(j.buf + j.len, sizeof j.buf - j.len));
}

static intptr_t main_flags(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    unsigned char buf[64];

    /* MSG_DONTWAIT: -EAGAIN while nothing has come, the data once it has. */
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, MSG_DONTWAIT), -EAGAIN);
    EXPECT_EQ(urt_send(b, "hello world", 11, 0), 11);
    EXPECT_EQ(urt_poll(a, POLLIN), POLLIN);
    EXPECT_EQ(urt_recv(a, buf, 5, MSG_DONTWAIT), 5);
    EXPECT_EQ(memcmp(buf, "hello", 5), 0);

    /* MSG_PEEK: the bytes stay for the next call, which gets the same. */
    memset(buf, 0, sizeof buf);
    EXPECT_EQ(urt_recv(a, buf, 3, MSG_PEEK), 3);
    EXPECT_EQ(memcmp(buf, " wo", 3), 0);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), 6);
    EXPECT_EQ(memcmp(buf, " world", 6), 0);
    memset(buf, 0, sizeof buf);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, 0), 6);
    EXPECT_EQ(memcmp(buf, " world", 6), 0);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, MSG_DONTWAIT), -EAGAIN);

    /* MSG_PEEK with nothing there waits for data, and still leaves it. */
    struct flag_job peek = {.fd = a, .flags = MSG_PEEK, .len = 10};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, flag_reader, &peek), 0);
    yields(2);
    EXPECT_EQ(urt_task_done(t), 0);
    EXPECT_EQ(urt_send(b, "xyz", 3, 0), 3);
    EXPECT_EQ(await_within(t, 10000, NULL), 0);
    EXPECT_EQ(peek.res, 3);
    EXPECT_EQ(memcmp(peek.buf, "xyz", 3), 0);
    EXPECT_EQ(urt_recvmsg(a, &(struct msghdr){.msg_iov = &(struct iovec){buf, sizeof buf},
                                              .msg_iovlen = 1}, 0), 3);
    EXPECT_EQ(memcmp(buf, "xyz", 3), 0);

    /* MSG_OOB and MSG_ERRQUEUE go to the kernel, read-ahead or not.  Over
     * TCP, where both mean something: with no urgent data the kernel says
     * -EINVAL, with an empty error queue -EAGAIN; bytes read ahead stay
     * for the next plain read.  (AF_UNIX ignores MSG_ERRQUEUE and reads
     * the stream: with read-ahead on, what it reads is what urt has not
     * taken yet, so the answers differ by design.) */
    int c, s;
    if (tcp_pair(&c, &s)) {
        readahead_on(s);
        EXPECT_EQ(urt_send(c, "kept", 4, 0), 4);
        EXPECT_EQ(urt_poll(s, POLLIN), POLLIN);
        EXPECT_EQ(urt_recv(s, buf, 1, MSG_OOB | MSG_DONTWAIT), -EINVAL);
        EXPECT_EQ(urt_recv(s, buf, sizeof buf, MSG_ERRQUEUE | MSG_DONTWAIT), -EAGAIN);
        EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), 4);
        EXPECT_EQ(memcmp(buf, "kept", 4), 0);
        EXPECT_EQ(urt_close(c), 0);
        EXPECT_EQ(urt_close(s), 0);
    }

    /* Any other flag: -EOPNOTSUPP while read-ahead is on (without it the
     * kernel decides; MSG_DONTWAIT keeps that from waiting). */
    ssize_t r = urt_recv(a, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT);
    if (ra_expected) EXPECT_EQ(r, -EOPNOTSUPP);
    r = urt_recvmsg(a, &(struct msghdr){.msg_iov = &(struct iovec){buf, sizeof buf},
                                        .msg_iovlen = 1}, MSG_CMSG_CLOEXEC | MSG_TRUNC | MSG_DONTWAIT);
    if (ra_expected) EXPECT_EQ(r, -EOPNOTSUPP);

    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header (urt_readahead): "recv flags other than MSG_DONTWAIT, MSG_PEEK and
 * MSG_WAITALL give -EOPNOTSUPP (MSG_OOB and MSG_ERRQUEUE go to the kernel
 * as usual)", and the served flags mean what they mean to recv(2): a peek
 * consumes nothing (and waits when nothing has come), MSG_DONTWAIT returns
 * -EAGAIN rather than wait and the data once it has come.  The masked
 * runs, where the kernel serves every flag, must agree. */
static void test_peek_and_dontwait_keep_their_meaning_and_other_flags_are_refused(void **state)
{
    (void)state;
    run_all(main_flags, NULL);
}

static intptr_t main_waitall(void *arg)
{
    (void)arg;
    check_mask();
    static const size_t three[] = {100, 100, 100};
    static const size_t uneven[] = {30, 100, 170};
    for (int t = UNIX_PAIR; t <= TCP_PAIR; t++) {
        /* A fresh pair for each case: bytes a failed case left behind must
         * not make the next one pass or fail. */
        for (int c = 0; c < 3; c++) {
            bool failed_before = task_failure[0];
            int a, b;
            if (!make_pair((enum transport)t, &a, &b)) return 0;
            readahead_on(a);
            if (c == 0) waitall_across_sends(a, b, false, three, 3);
            if (c == 1) waitall_across_sends(a, b, true, uneven, 3);
            if (c == 2) {
                /* All there before the call: it returns at once, whole. */
                send_pattern(b, 300, 0, 7);
                EXPECT_EQ(urt_poll(a, POLLIN), POLLIN);
                unsigned char buf[300];
                EXPECT_EQ(urt_recv_timeout(a, buf, sizeof buf, MSG_WAITALL, GUARD_NS), 300);
                EXPECT_EQ(mismatch(buf, sizeof buf, 0, 7), -1);
            }
            if (task_failure[0] && !failed_before)
                print_error("over %s, case %d\n", transport_name[t], c);
            EXPECT_EQ(urt_close(a), 0);
            EXPECT_EQ(urt_close(b), 0);
        }
    }
    return 0;
}

/* Header (urt_readahead): MSG_WAITALL is one of the flags read-ahead
 * serves, and it must mean what it means to recv(2): the call waits for the
 * whole length however many sends it takes, into one buffer or into two
 * iovecs (whose rest is filled from where the earlier pieces ended), over
 * a socketpair and TCP. */
static void test_waitall_waits_for_the_whole_length_across_several_sends(void **state)
{
    (void)state;
    run_all(main_waitall, NULL);
}

/* ==== 3. cancellation and timeouts ================================================ */

struct blocked {
    int fd;
    enum via via;
    bool entered;
    ssize_t res;
    size_t done;
    unsigned char buf[64];
};

static intptr_t blocked_reader(void *arg)
{
    struct blocked *j = arg;
    j->entered = true;
    j->res = receive(j->fd, j->via, j->buf, sizeof j->buf, 20, URT_NO_TIMEOUT, &j->done);
    return 0;
}

static intptr_t main_cancel_leaves_buffer(void *arg)
{
    (void)arg;
    check_mask();
    for (int via = 0; via < NVIA; via++) {
        int a, b;
        if (!unix_pair(&a, &b)) return 0;
        readahead_on(a);
        struct blocked j = {.fd = a, .via = (enum via)via};
        memset(j.buf, CANARY, sizeof j.buf);
        urt_task t;
        EXPECT_EQ(urt_task_create(&t, blocked_reader, &j), 0);
        yields(1);
        EXPECT(j.entered);
        EXPECT_EQ(urt_task_done(t), 0);
        EXPECT_EQ(urt_task_cancel(t), 1);
        EXPECT_EQ(await_within(t, 10000, NULL), 0);
        EXPECT_EQ(j.res, URT_ECANCELED);
        EXPECT_EQ(j.done, 0);
        /* The data comes after the cancelled call returned: it must be
         * neither in the cancelled call's buffer nor lost. */
        send_pattern(b, 40, 0, 3);
        unsigned char next[64];
        memset(next, CANARY, sizeof next);
        EXPECT_EQ(urt_recv_timeout(a, next, sizeof next, 0, GUARD_NS), 40);
        EXPECT_EQ(mismatch(next, 40, 0, 3), -1);
        if (!all_canary(j.buf, sizeof j.buf))
            note_failure("[%s] cancelled %s: its buffer was written", mask_name(), via_name[via]);
        EXPECT_EQ(urt_close(a), 0);
        EXPECT_EQ(urt_close(b), 0);
    }
    return 0;
}

/* Header "Cancellation": a task cancelled while it waits in a read gets
 * URT_ECANCELED, the kernel no longer touches its buffer, and "nothing it
 * would have received is lost (the next call gets it)".  With read-ahead
 * the multishot recv stays armed after the reader left: what it receives
 * must go to the next call, not into the buffer the cancelled call gave
 * (canary), for each of the five read calls. */
static void test_cancelled_read_leaves_buffer_alone_and_next_read_gets_the_data(void **state)
{
    (void)state;
    run_all(main_cancel_leaves_buffer, NULL);
}

static intptr_t main_timeout_leaves_buffer(void *arg)
{
    (void)arg;
    check_mask();
    for (int via = 0; via < NVIA; via++) {
        if (via == VIA_READV) continue; /* no _timeout form */
        int a, b;
        if (!unix_pair(&a, &b)) return 0;
        readahead_on(a);
        unsigned char buf[64];
        memset(buf, CANARY, sizeof buf);
        size_t done = 99;
        uint64_t t0 = urt_now();
        ssize_t r = receive(a, (enum via)via, buf, sizeof buf, 20, 30 * MS, &done);
        uint64_t elapsed = urt_now() - t0;
        EXPECT_EQ(r, URT_ETIMEDOUT);
        EXPECT_EQ(done, 0);
        EXPECT(elapsed >= 30 * MS);
        send_pattern(b, 40, 0, 4);
        unsigned char next[64];
        EXPECT_EQ(urt_recv_timeout(a, next, sizeof next, 0, GUARD_NS), 40);
        EXPECT_EQ(mismatch(next, 40, 0, 4), -1);
        if (!all_canary(buf, sizeof buf))
            note_failure("[%s] timed-out %s: its buffer was written", mask_name(), via_name[via]);
        EXPECT_EQ(urt_close(a), 0);
        EXPECT_EQ(urt_close(b), 0);
    }
    return 0;
}

/* Header "Deadlines": a _timeout read returns URT_ETIMEDOUT no earlier than
 * its timeout (only that bound is checked), "with the same guarantees as a
 * cancellation": its buffer stays untouched and the data sent afterwards
 * goes whole to the next call. */
static void test_timed_out_read_leaves_buffer_alone_and_next_read_gets_the_data(void **state)
{
    (void)state;
    run_all(main_timeout_leaves_buffer, NULL);
}

static intptr_t main_same_instant(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    int rounds = small_scale() ? 40 : 200, data_won = 0;
    for (int i = 0; i < rounds && !task_failure[0]; i++) {
        enum via via = (enum via)(i % NVIA);
        unsigned seed = 1000u + (unsigned)i;
        unsigned char msg[16];
        fill(msg, sizeof msg, 0, seed);
        struct blocked j = {.fd = a, .via = via};
        memset(j.buf, CANARY, sizeof j.buf);
        urt_task t;
        EXPECT_EQ(urt_task_create(&t, blocked_reader, &j), 0);
        yields(1);
        EXPECT(j.entered);
        /* The data and the cancellation in the same instant: no suspension
         * point between the send(2) and the cancel. */
        EXPECT_EQ(send(b, msg, sizeof msg, MSG_NOSIGNAL), (ssize_t)sizeof msg);
        EXPECT_EQ(urt_task_cancel(t), 1);
        EXPECT_EQ(await_within(t, 10000, NULL), 0);
        size_t taken = j.done;
        if (taken != 0 && taken != sizeof msg) {
            note_failure("[%s] round %d (%s): the cancelled call took %zu of 16 bytes (res %zd)",
                         mask_name(), i, via_name[via], taken, j.res);
            break;
        }
        if (taken) {
            data_won++;
            EXPECT_EQ(memcmp(j.buf, msg, sizeof msg), 0);
            EXPECT(all_canary(j.buf + sizeof msg, sizeof j.buf - sizeof msg));
            /* urt_read_exactly goes on waiting for the rest and is then
             * cancelled, having moved the 16 bytes. */
            EXPECT_EQ(j.res, via == VIA_EXACTLY ? URT_ECANCELED : (ssize_t)sizeof msg);
        } else {
            EXPECT_EQ(j.res, URT_ECANCELED);
            EXPECT(all_canary(j.buf, sizeof j.buf));
        }
        /* The rest of the stream: what the cancelled call did not take,
         * then a marker; then nothing more (never both, never neither). */
        EXPECT_EQ(send(b, "END!", 4, MSG_NOSIGNAL), 4);
        unsigned char rest[20];
        size_t want = sizeof msg - taken + 4;
        EXPECT_EQ(recv_all(a, rest, want), want);
        EXPECT_EQ(memcmp(rest, msg + taken, sizeof msg - taken), 0);
        EXPECT_EQ(memcmp(rest + sizeof msg - taken, "END!", 4), 0);
        EXPECT_EQ(urt_recv(a, rest, sizeof rest, MSG_DONTWAIT), -EAGAIN);
    }
    (void)data_won; /* either outcome is right; which one happens is the kernel's */
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header "Cancellation": "If the operation completed in the same instant,
 * data wins: the call returns its result, and the cancellation comes at the
 * task's next suspension point."  Data is sent with send(2) and the reader
 * cancelled with no suspension point in between, many times over the five
 * calls: the bytes must come exactly once, either from the cancelled call
 * or from the next one, never both and never neither. */
static void test_data_arriving_with_the_cancellation_is_returned_exactly_once(void **state)
{
    (void)state;
    run_all(main_same_instant, NULL);
}

/* ==== 4. turning it off ============================================================== */

static intptr_t expect_pattern_task(void *arg)
{
    expect_pattern(*(int *)arg, 10, 5500, 20);
    return 0;
}

static intptr_t main_turn_off(void *arg)
{
    (void)arg;
    check_mask();
    for (int t = UNIX_PAIR; t <= TCP_PAIR; t++) {
        int a, b;
        if (!make_pair((enum transport)t, &a, &b)) return 0;
        readahead_on(a);
        /* 1000 bytes sent, 100 read: with read-ahead on the other 900 are
         * now in urt's buffers, not in the socket. */
        send_pattern(b, 1000, 0, 20);
        expect_pattern(a, 100, 0, 20);
        if (ra_expected) EXPECT_EQ(fionread(a), 0);
        EXPECT_EQ(urt_readahead(a, 0), 0);
        /* Bytes sent after it was turned off come after those. */
        send_pattern(b, 1000, 1000, 20);
        expect_pattern(a, 1900, 100, 20);
        send_pattern(b, 500, 2000, 20);
        expect_pattern(a, 500, 2000, 20);
        /* Off and at once on again, before the multishot recv the first
         * call stops has ended: nothing is lost or reordered. */
        readahead_on(a);
        send_pattern(b, 1000, 2500, 20);
        expect_pattern(a, 10, 2500, 20);
        EXPECT_EQ(urt_readahead(a, 0), 0);
        readahead_on(a);
        expect_pattern(a, 990, 2510, 20);
        /* On again: the stream goes on where it was. */
        readahead_on(a);
        send_pattern(b, 2000, 3500, 20);
        expect_pattern(a, 1, 3500, 20);
        expect_pattern(a, 1999, 3501, 20);
        /* Off while a reader waits for bytes: it gets them all the same,
         * from the multishot recv still ending or from the kernel. */
        urt_task w;
        EXPECT_EQ(urt_task_create(&w, expect_pattern_task, &a), 0);
        yields(2);
        EXPECT_EQ(urt_task_done(w), 0);
        EXPECT_EQ(urt_readahead(a, 0), 0);
        send_pattern(b, 10, 5500, 20);
        EXPECT_EQ(await_within(w, 10000, NULL), 0);
        EXPECT_EQ(urt_close(a), 0);
        EXPECT_EQ(urt_close(b), 0);
    }
    return 0;
}

/* Header (urt_readahead): "enable 0 turns it off; bytes already read ahead
 * are still returned first."  Bytes read ahead before turning it off, bytes
 * sent after (which the kernel keeps, or a multishot still finishing takes),
 * and bytes sent after turning it on again must all come in order. */
static void test_turning_off_returns_buffered_bytes_first_then_the_kernels(void **state)
{
    (void)state;
    run_all(main_turn_off, NULL);
}

static intptr_t main_off_is_off(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    send_pattern(b, 100, 0, 21);
    expect_pattern(a, 10, 0, 21);
    EXPECT_EQ(urt_readahead(a, 0), 0);
    expect_pattern(a, 90, 10, 21);
    /* Turned off and nothing left of what it read: a round trip through
     * the kernel, then the socket is an ordinary socket again. */
    send_pattern(b, 5, 100, 21);
    expect_pattern(a, 5, 100, 21);
    EXPECT_EQ(urt_poll_timeout(a, POLLIN | POLLOUT, GUARD_NS), POLLOUT);
    unsigned char buf[16];
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT), -EAGAIN);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header (urt_readahead): the limits on urt_poll (POLLIN with other events
 * is -EINVAL) and on recv flags (-EOPNOTSUPP) hold "while it is on"; urt
 * reads ahead no more once it is turned off ("0 when it is off ... reads
 * then go to the kernel one by one, with the same results").  Once turned
 * off and drained, the socket must answer as one that never had
 * read-ahead: the masked runs give the answers expected here. */
static void test_after_turning_off_and_draining_poll_and_flags_are_the_kernels(void **state)
{
    (void)state;
    run_all(main_off_is_off, NULL);
}

/* ==== 5. urt_close ==================================================================== */

struct closed_job {
    int fd;
    bool poll;
    int res;
};

static intptr_t wait_then_see_close(void *arg)
{
    struct closed_job *j = arg;
    unsigned char buf[32];
    j->res = j->poll ? urt_poll(j->fd, POLLIN) : (int)urt_recv(j->fd, buf, sizeof buf, 0);
    return 0;
}

static intptr_t main_close(void *arg)
{
    (void)arg;
    check_mask();
    /* Readers waiting, nothing buffered: both get -EBADF, and the close
     * returns 0. */
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    struct closed_job r1 = {.fd = a}, r2 = {.fd = a}, p = {.fd = a, .poll = true};
    urt_task t1, t2, tp;
    EXPECT_EQ(urt_task_create(&t1, wait_then_see_close, &r1), 0);
    EXPECT_EQ(urt_task_create(&t2, wait_then_see_close, &r2), 0);
    EXPECT_EQ(urt_task_create(&tp, wait_then_see_close, &p), 0);
    yields(2);
    EXPECT_EQ(urt_task_done(t1), 0);
    EXPECT_EQ(urt_task_done(tp), 0);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(await_within(t1, 10000, NULL), 0);
    EXPECT_EQ(await_within(t2, 10000, NULL), 0);
    EXPECT_EQ(await_within(tp, 10000, NULL), 0);
    EXPECT_EQ(r1.res, -EBADF);
    EXPECT_EQ(r2.res, -EBADF);
    EXPECT_EQ(p.res, -EBADF);
    EXPECT_EQ(urt_close(b), 0);

    /* Closed with bytes read ahead and not read, more times than the ring
     * has buffers: every buffer goes back, or the ring would run dry and a
     * new socket's bytes would stay in the kernel. */
    int rounds = 300;
    for (int i = 0; i < rounds && !task_failure[0]; i++) {
        if (!unix_pair(&a, &b)) return 0;
        readahead_on(a);
        send_pattern(b, 5000, 0, 30);
        expect_pattern(a, 10, 0, 30);
        EXPECT_EQ(urt_close(a), 0);
        EXPECT_EQ(urt_close(b), 0);
    }
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    send_pattern(b, 100, 0, 31);
    expect_pattern(a, 1, 0, 31);
    EXPECT_EQ(fionread(a), ra_expected ? 0 : 99);
    expect_pattern(a, 99, 1, 31);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header (urt_close, urt_readahead): "urt_close ends it"; "Operations still
 * in flight on it (in any task) are cancelled first and return -EBADF".
 * Tasks waiting for read-ahead bytes (two readers and a poller) must get
 * -EBADF and the close must succeed; bytes read ahead and never read are
 * dropped, their buffers given back (300 closes > 256 buffers; checked by
 * a new socket still being read ahead) and their memory freed (ASan,
 * valgrind); run_masked checks every fd is gone. */
static void test_close_wakes_waiting_readers_with_ebadf_and_drops_buffered_bytes(void **state)
{
    (void)state;
    run_all(main_close, NULL);
}

/* ==== 6. urt_poll ======================================================================== */

static int poll_fd;

static intptr_t poll_then_recv(void *arg)
{
    (void)arg;
    trace("poll");
    int r = urt_poll(poll_fd, POLLIN);
    trace("poll %d", r);
    char buf[16];
    ssize_t n = urt_recv(poll_fd, buf, sizeof buf, MSG_DONTWAIT);
    trace("recv %zd", n);
    if (n == 4) EXPECT_EQ(memcmp(buf, "ping", 4), 0);
    return 0;
}

static intptr_t main_poll(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    unsigned char buf[16];

    /* Nothing buffered: the poll waits for the send; the recv after it
     * finds the data without waiting (MSG_DONTWAIT would say -EAGAIN). */
    poll_fd = a;
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, poll_then_recv, NULL), 0);
    yields(2);
    trace("send");
    EXPECT_EQ(urt_send(b, "ping", 4, 0), 4);
    EXPECT_EQ(await_within(t, 10000, NULL), 0);

    /* Nothing buffered and a deadline: URT_ETIMEDOUT, no earlier. */
    uint64_t t0 = urt_now();
    EXPECT_EQ(urt_poll_timeout(a, POLLIN, 20 * MS), URT_ETIMEDOUT);
    EXPECT(urt_now() - t0 >= 20 * MS);

    /* Bytes buffered: POLLIN at once (a zero timeout would give up
     * otherwise), and they are still there for the recv. */
    EXPECT_EQ(urt_send(b, "abcdef", 6, 0), 6);
    EXPECT_EQ(urt_recv(a, buf, 1, 0), 1);
    EXPECT_EQ(urt_poll_timeout(a, POLLIN, 0), POLLIN);
    EXPECT_EQ(urt_poll(a, POLLIN), POLLIN);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, 0), 5);
    EXPECT_EQ(memcmp(buf, "bcdef", 5), 0);

    /* POLLIN with another event: -EINVAL with read-ahead on. */
    int r = urt_poll(a, POLLIN | POLLOUT);
    if (ra_expected)
        EXPECT_EQ(r, -EINVAL);
    else
        EXPECT_EQ(r, POLLOUT);
    /* POLLOUT alone is the kernel's, as ever. */
    EXPECT_EQ(urt_poll(a, POLLOUT), POLLOUT);

    /* End of file is readable: POLLIN, then the recv says 0. */
    EXPECT_EQ(urt_shutdown(b, SHUT_WR), 0);
    EXPECT(urt_poll(a, POLLIN) & POLLIN);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, 0), 0);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header (urt_readahead, urt_poll): "urt_poll for POLLIN reports those
 * bytes": with nothing read ahead it waits until data comes (the trace shows
 * it returned only after the send), with bytes read ahead it answers at
 * once, and the bytes are still there for the read; a timeout still times
 * out.  POLLIN with other events is -EINVAL while read-ahead is on
 * (unmasked run); POLLOUT alone goes to the kernel. */
static void test_poll_reports_bytes_read_ahead_and_waits_for_them(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMASKS; i++) {
        run_one(&masks[i], main_poll, NULL);
        assert_trace("poll", "send", "poll 1", "recv 4");
    }
}

/* ==== 7. errors =========================================================================== */

static intptr_t main_errors(void *arg)
{
    (void)arg;
    check_mask();
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(urt_readahead(p[0], 1), -ENOTSOCK);
    EXPECT_EQ(urt_readahead(p[1], 1), -ENOTSOCK);
    EXPECT_EQ(urt_readahead(p[0], 0), -ENOTSOCK);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT(devnull >= 0);
    EXPECT_EQ(urt_readahead(devnull, 1), -ENOTSOCK);
    EXPECT_EQ(urt_readahead(-1, 1), -EBADF);
    EXPECT_EQ(urt_readahead(-1, 0), -EBADF);
    /* A number that names no open file. */
    int gone = dup(p[0]);
    EXPECT(gone >= 0);
    EXPECT_EQ(close(gone), 0);
    EXPECT_EQ(urt_readahead(gone, 1), -EBADF);
    /* The pipe still works: nothing was turned on for it. */
    EXPECT_EQ(urt_write(p[1], "ok", 2), 2);
    char buf[4];
    EXPECT_EQ(urt_read(p[0], buf, sizeof buf), 2);
    EXPECT_EQ(close(devnull), 0);
    EXPECT_EQ(urt_close(p[0]), 0);
    EXPECT_EQ(urt_close(p[1]), 0);
    /* Turning on twice is on; turning off a socket never turned on is off. */
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    EXPECT_EQ(urt_readahead(a, 0), 0);
    readahead_on(a);
    readahead_on(a);
    EXPECT_EQ(urt_send(b, "x", 1, 0), 1);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, 0), 1);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header (urt_readahead): "Returns ... -ENOTSOCK, -EBADF ..., URT_ENOLOOP":
 * a pipe end or /dev/null is not a socket, -1 or a closed number is no fd;
 * nothing changes for them.  Turning on twice still says on.  URT_ENOLOOP
 * outside a loop is checked before any loop runs. */
static void test_readahead_refuses_non_sockets_bad_fds_and_calls_outside_a_loop(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(urt_readahead(sv[0], 1), URT_ENOLOOP);
    assert_int_equal(urt_readahead(sv[0], 0), URT_ENOLOOP);
    assert_int_equal(urt_readahead(-1, 1), URT_ENOLOOP);
    close(sv[0]);
    close(sv[1]);
    run_all(main_errors, NULL);
}

struct reset_job {
    int fd;
    ssize_t res;
};

static intptr_t recv_until_reset(void *arg)
{
    struct reset_job *j = arg;
    char buf[64];
    j->res = urt_recv(j->fd, buf, sizeof buf, 0);
    return 0;
}

static intptr_t main_reset(void *arg)
{
    (void)arg;
    check_mask();
    char buf[64];
    /* The reset comes while a reader waits. */
    int c, s;
    if (!tcp_pair(&c, &s)) return 0;
    readahead_on(s);
    struct reset_job j = {.fd = s};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, recv_until_reset, &j), 0);
    yields(2);
    EXPECT_EQ(urt_task_done(t), 0);
    reset_close(c);
    EXPECT_EQ(await_within(t, 10000, NULL), 0);
    EXPECT_EQ(j.res, -ECONNRESET);
    EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), 0);
    EXPECT_EQ(urt_read_timeout(s, buf, sizeof buf, GUARD_NS), 0);
    EXPECT_EQ(urt_close(s), 0);

    /* Bytes read ahead before the reset come first, then the reset, once,
     * then end of file (as recv(2) gives them: the kernel keeps received
     * bytes readable after an RST). */
    if (!tcp_pair(&c, &s)) return 0;
    readahead_on(s);
    EXPECT_EQ(urt_send(c, "abc", 3, 0), 3);
    EXPECT_EQ(urt_poll(s, POLLIN), POLLIN);
    reset_close(c);
    EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), 3);
    EXPECT_EQ(memcmp(buf, "abc", 3), 0);
    EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), -ECONNRESET);
    EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), 0);
    EXPECT_EQ(urt_close(s), 0);

    /* The reset comes before any read: the first read reports it. */
    if (!tcp_pair(&c, &s)) return 0;
    readahead_on(s);
    reset_close(c);
    EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), -ECONNRESET);
    EXPECT_EQ(urt_recv_timeout(s, buf, sizeof buf, 0, GUARD_NS), 0);
    EXPECT_EQ(urt_close(s), 0);
    return 0;
}

/* Header (urt_readahead): "A failed read-ahead (the socket reset, ...) is
 * reported once by the next read, which then sees end of file", as recv(2)
 * reports a reset once and then 0.  The peer closes with SO_LINGER 0,
 * which sends an RST: while a reader waits, after bytes that were not read
 * yet (they come first), and before any read. */
static void test_peer_reset_is_reported_once_then_end_of_file(void **state)
{
    (void)state;
    run_all(main_reset, NULL);
}

/* ==== 8. the buffer ring runs dry ========================================================= */

struct dry_job {
    int fd;
    int res;
};

static intptr_t poll_one(void *arg)
{
    struct dry_job *j = arg;
    j->res = urt_poll(j->fd, POLLIN);
    return 0;
}

static intptr_t main_ring_dry(void *arg)
{
    (void)arg;
    check_mask();
    /* 300 x 20 KiB = 6000 KiB, or 100 x 48 KiB = 4800 KiB at small scale:
     * either is more than the ring's 256 x 16 KiB = 4096 KiB. */
    size_t n = small_scale() ? 100 : 300;
    size_t per = (small_scale() ? 48u : 20u) << 10;
    int *rd = calloc(n, sizeof *rd), *wr = calloc(n, sizeof *wr);
    struct dry_job *jobs = calloc(n, sizeof *jobs);
    urt_task *polls = calloc(n, sizeof *polls);
    unsigned char *buf = malloc(STREAM_READ_MAX > per ? STREAM_READ_MAX : per);
    EXPECT(rd && wr && jobs && polls && buf);
    if (!rd || !wr || !jobs || !polls || !buf) goto out;
    size_t made = 0;
    for (; made < n; made++) {
        if (!unix_pair(&rd[made], &wr[made])) goto out_close;
        readahead_on(rd[made]);
        jobs[made].fd = rd[made];
    }
    /* A poll on every socket: each has its multishot recv armed before the
     * bytes come, so that they are read ahead as they arrive. */
    for (size_t i = 0; i < n; i++) EXPECT_EQ(urt_task_create(&polls[i], poll_one, &jobs[i]), 0);
    yields(2);
    for (size_t i = 0; i < n; i++) {
        fill(buf, per, 0, (unsigned)i);
        size_t done;
        EXPECT_EQ(urt_send_all(wr[i], buf, per, &done), (ssize_t)per);
        EXPECT_EQ(urt_shutdown(wr[i], SHUT_WR), 0);
    }
    for (size_t i = 0; i < n; i++) {
        EXPECT_EQ(await_within(polls[i], 10000, NULL), 0);
        /* POLLIN; a kernel poll that was waiting when the peer shut down
         * also says POLLRDHUP, asked for or not. */
        EXPECT(jobs[i].res > 0 && (jobs[i].res & POLLIN));
    }
    /* Nobody has read yet.  Read ahead: at most what the ring holds; the
     * rest waits in the sockets, where the fallback must find it. */
    if (ra_expected) {
        size_t in_kernel = 0;
        for (size_t i = 0; i < n; i++) in_kernel += fionread(rd[i]);
        EXPECT(in_kernel >= n * per - 256 * 16384);
        EXPECT(in_kernel < n * per);
    }
    /* Every socket to its end, one after the other: its own bytes, in
     * order, whether read ahead, from the kernel after the ring ran dry, or
     * read ahead again once buffers came back. */
    uint64_t rng = seed_for(8);
    for (size_t i = 0; i < n && !task_failure[0]; i++) {
        size_t got = 0;
        for (;;) {
            size_t len = read_len(&rng);
            ssize_t r = urt_recv_timeout(rd[i], buf, len, 0, GUARD_NS);
            if (r == 0) break;
            if (r < 0 || got + (size_t)r > per) {
                note_failure("[%s] socket %zu: recv at %zu returned %zd", mask_name(), i, got, r);
                break;
            }
            long bad = mismatch(buf, (size_t)r, got, (unsigned)i);
            if (bad >= 0) {
                note_failure("[%s] seed %llu: socket %zu: byte %zu is wrong", mask_name(),
                             (unsigned long long)base_seed, i, got + (size_t)bad);
                break;
            }
            got += (size_t)r;
        }
        if (!task_failure[0] && got != per)
            note_failure("[%s] socket %zu: %zu bytes of %zu", mask_name(), i, got, per);
    }
out_close:
    for (size_t i = 0; i < made; i++) {
        EXPECT_EQ(urt_close(rd[i]), 0);
        EXPECT_EQ(urt_close(wr[i]), 0);
    }
out:
    free(rd);
    free(wr);
    free(jobs);
    free(polls);
    free(buf);
    return 0;
}

/* README/urt.h: when the loop's buffer ring runs dry (-ENOBUFS), the
 * multishot recvs end and reads go to the kernel one by one, which must
 * neither reorder nor lose bytes: a read goes to the kernel only when no
 * multishot is live and nothing is buffered.  More bytes than the 256
 * buffers hold arrive on many sockets while nobody reads (each socket's
 * multishot armed by a poll); then each socket is read to its end and must
 * give exactly its own bytes, in order. */
static void test_ring_running_dry_falls_back_without_reordering_or_losing_bytes(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    run_all(main_ring_dry, NULL);
}

/* A reader whose bytes come while it is still parking.  With a 2-entry SQ
 * (URT_RING_ENTRIES=2, the kernels tier) the sleeper's timer takes the
 * first entry and the reader's multishot recv the second, so the SQE of
 * the reader's deadline finds the SQ full: urt__get_sqe submits and reaps
 * there, the recv finds the bytes at once and its CQE wakes the reader,
 * which has not suspended yet.  It must still get the bytes, not wait for
 * a wake that has come and gone.  (With a bigger SQ nothing is submitted
 * there and the read is an ordinary one.) */

struct parking_job {
    int fd;
    ssize_t res;
    char buf[8];
};

static intptr_t sleep_a_moment(void *arg)
{
    (void)arg;
    return urt_sleep_ms(1);
}

static intptr_t recv_with_deadline(void *arg)
{
    struct parking_job *j = arg;
    j->res = urt_recv_timeout(j->fd, j->buf, sizeof j->buf, 0, GUARD_NS);
    return 0;
}

static intptr_t main_wake_while_parking(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    EXPECT_EQ(urt_send(b, "abc", 3, 0), 3);
    struct parking_job j = {.fd = a};
    urt_task s, r;
    /* Both run in the next turn, the sleeper first; this task's own
     * sleeps (await_within) go to the kernel at that turn's start. */
    EXPECT_EQ(urt_task_create(&s, sleep_a_moment, NULL), 0);
    EXPECT_EQ(urt_task_create(&r, recv_with_deadline, &j), 0);
    EXPECT_EQ(await_within(r, 20000, NULL), 0);
    EXPECT_EQ(await_within(s, 1000, NULL), 0);
    EXPECT_EQ(j.res, 3);
    EXPECT_EQ(memcmp(j.buf, "abc", 3), 0);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* urt.h (urt_readahead): reads see the bytes as without read-ahead; here
 * the bytes wake the reader inside its own call, before it waits. */
static void test_bytes_arriving_while_the_reader_parks_are_not_lost(void **state)
{
    (void)state;
    run_all(main_wake_while_parking, NULL);
}

/* ==== 9. an echo server ==================================================================== */

#define ECHO_MSG 64

struct echo {
    int lfd;
    char hostport[64];
    int clients, rounds;
    urt_task handlers[64];
    int nhandlers;
};

struct echo_client {
    struct echo *e;
    int id;
};

static intptr_t echo_handler(void *arg)
{
    int s = (int)(intptr_t)arg;
    readahead_on(s);
    unsigned char msg[ECHO_MSG];
    int served = 0;
    for (;;) {
        size_t done = 0;
        ssize_t r = urt_read_exactly(s, msg, sizeof msg, &done);
        if (r == -ENODATA && done == 0) break; /* the client closed */
        if (r != ECHO_MSG) {
            note_failure("[%s] handler: read_exactly %zd (done %zu) after %d", mask_name(), r,
                         done, served);
            break;
        }
        EXPECT_EQ(urt_send_all(s, msg, sizeof msg, &done), ECHO_MSG);
        served++;
    }
    EXPECT_EQ(urt_close(s), 0);
    return served;
}

static intptr_t echo_acceptor(void *arg)
{
    struct echo *e = arg;
    for (int i = 0; i < e->clients; i++) {
        int s = urt_accept(e->lfd, NULL, NULL, 0);
        EXPECT(s >= 0);
        if (s < 0) break;
        EXPECT_EQ(urt_task_create(&e->handlers[e->nhandlers++], echo_handler, (void *)(intptr_t)s),
                  0);
    }
    return 0;
}

static intptr_t echo_client_task(void *arg)
{
    struct echo_client *c = arg;
    int fd = urt_tcp_connect(c->e->hostport);
    EXPECT(fd >= 0);
    if (fd < 0) return 0;
    /* Half of the clients read ahead too. */
    if (c->id % 2) readahead_on(fd);
    unsigned char out[ECHO_MSG], in[ECHO_MSG];
    unsigned seed = 5000u + (unsigned)c->id;
    for (int k = 0; k < c->e->rounds && !task_failure[0]; k++) {
        fill(out, sizeof out, (size_t)k * ECHO_MSG, seed);
        size_t done;
        EXPECT_EQ(urt_send_all(fd, out, sizeof out, &done), ECHO_MSG);
        size_t got = recv_all(fd, in, sizeof in);
        if (got != sizeof in || memcmp(in, out, sizeof in) != 0) {
            note_failure("[%s] client %d: reply %d is wrong (%zu bytes)", mask_name(), c->id, k,
                         got);
            break;
        }
    }
    EXPECT_EQ(urt_close(fd), 0);
    return 0;
}

static intptr_t main_echo(void *arg)
{
    (void)arg;
    check_mask();
    struct echo e = {.clients = small_scale() ? 20 : 50, .rounds = small_scale() ? 50 : 200};
    e.lfd = urt_tcp_listen("127.0.0.1:0", 0);
    EXPECT(e.lfd >= 0);
    if (e.lfd < 0) return 0;
    local_hostport(e.lfd, e.hostport, sizeof e.hostport);
    urt_task acceptor, clients[64];
    struct echo_client cs[64];
    EXPECT_EQ(urt_task_create(&acceptor, echo_acceptor, &e), 0);
    for (int i = 0; i < e.clients; i++) {
        cs[i] = (struct echo_client){.e = &e, .id = i};
        EXPECT_EQ(urt_task_create(&clients[i], echo_client_task, &cs[i]), 0);
    }
    for (int i = 0; i < e.clients; i++) EXPECT_EQ(await_within(clients[i], 30000, NULL), 0);
    EXPECT_EQ(await_within(acceptor, 10000, NULL), 0);
    EXPECT_EQ(e.nhandlers, e.clients);
    for (int i = 0; i < e.nhandlers; i++) {
        intptr_t served = -1;
        EXPECT_EQ(await_within(e.handlers[i], 10000, &served), 0);
        EXPECT_EQ(served, e.rounds);
    }
    EXPECT_EQ(urt_close(e.lfd), 0);
    return 0;
}

/* Header (urt_readahead): "A request/response server saves a recv SQE per
 * message": the pattern it is for.  50 TCP clients each send 200 64-byte
 * messages, one at a time, to handlers that read them with read-ahead on
 * (urt_read_exactly) and echo them; every reply must be the message sent,
 * and each handler must see exactly 200 messages, then end of file. */
static void test_echo_server_with_readahead_answers_every_message(void **state)
{
    (void)state;
    run_all(main_echo, NULL);
}

/* ==== 10. the loop ends with read-ahead armed ============================================= */

static int lingering_res;

static intptr_t lingering_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16];
    lingering_res = (int)urt_recv(fd, buf, sizeof buf, 0);
    return 0;
}

static intptr_t main_end_armed(void *arg)
{
    (void)arg;
    check_mask();
    /* Armed, with bytes read ahead and not read. */
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    EXPECT_EQ(urt_send(b, "0123456789", 10, 0), 10);
    char buf[16];
    EXPECT_EQ(urt_recv(a, buf, 5, 0), 5);
    /* Armed, with a detached task waiting in a read when main returns. */
    int c, d;
    if (!unix_pair(&c, &d)) return 0;
    readahead_on(c);
    lingering_res = 1;
    EXPECT_EQ(urt_task_create(NULL, lingering_reader, (void *)(intptr_t)c), 0);
    yields(2);
    EXPECT_EQ(lingering_res, 1);
    /* Closed with close(2), not urt_close: read-ahead is not told. */
    EXPECT_EQ(close(a), 0);
    EXPECT_EQ(close(b), 0);
    EXPECT_EQ(close(c), 0);
    EXPECT_EQ(close(d), 0);
    return 0;
}

/* Header (urt_run): when main returns the loop cancels what is left and is
 * torn down: "no task, stack, ring or memory of it remains".  A loop whose
 * main returns with read-ahead still armed on sockets it closed with
 * close(2) (one with bytes read ahead, one with a reader waiting) must
 * still end with 0 and leave no fd (run_masked), mapping or memory (ASan,
 * valgrind) behind. */
static void test_loop_ending_with_readahead_armed_leaves_nothing_behind(void **state)
{
    (void)state;
    /* run_masked, not run_one: main itself closes the sockets and returns
     * at once, with no suspension point in between. */
    for (size_t i = 0; i < NMASKS; i++) {
        run_masked(&masks[i], main_end_armed, NULL);
        /* The waiting reader was cancelled, or saw the end of the closed
         * pair first, or (URT_TEST_NOWAIT: its wait for readiness was
         * submitted after the close(2)) found the fd gone. */
        if (lingering_res != URT_ECANCELED && lingering_res != 0 && lingering_res != -EBADF)
            print_error("the lingering reader got %d\n", lingering_res);
        assert_true(lingering_res == URT_ECANCELED || lingering_res == 0 ||
                    lingering_res == -EBADF);
    }
}

/* ==== more: sharing a socket, fd numbers reused ========================================== */

#define SHARE_COUNTERS 1000

struct share_job {
    int fd;
    unsigned char *owner; /* shared: which reader got each counter */
    int id;
    long last; /* the last counter this reader got */
};

/* Reads 4-byte counters, 8 or 12 bytes at a time.  Every piece sent and
 * every read is a multiple of 4 bytes, so every read returns whole
 * counters; each reader must see its counters in increasing order. */
static intptr_t share_reader(void *arg)
{
    struct share_job *j = arg;
    unsigned char buf[12];
    j->last = -1;
    for (int k = 0;; k++) {
        ssize_t r = urt_recv_timeout(j->fd, buf, k % 2 ? 8 : 12, 0, GUARD_NS);
        if (r <= 0) {
            EXPECT_EQ(r, 0);
            break;
        }
        if (r % 4) {
            note_failure("[%s] reader %d: a read returned %zd bytes, not whole counters",
                         mask_name(), j->id, r);
            break;
        }
        for (ssize_t i = 0; i < r; i += 4) {
            uint32_t v = (uint32_t)buf[i] << 24 | (uint32_t)buf[i + 1] << 16 |
                         (uint32_t)buf[i + 2] << 8 | buf[i + 3];
            if (v >= SHARE_COUNTERS || (long)v <= j->last || j->owner[v]) {
                note_failure("[%s] reader %d: counter %u after %ld (owner %d)", mask_name(),
                             j->id, v, j->last, v < SHARE_COUNTERS ? j->owner[v] : -1);
                return 0;
            }
            j->owner[v] = (unsigned char)j->id;
            j->last = (long)v;
        }
    }
    return 0;
}

static intptr_t main_share(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    unsigned char owner[SHARE_COUNTERS] = {0};
    struct share_job j1 = {.fd = a, .owner = owner, .id = 1};
    struct share_job j2 = {.fd = a, .owner = owner, .id = 2};
    urt_task t1, t2;
    EXPECT_EQ(urt_task_create(&t1, share_reader, &j1), 0);
    EXPECT_EQ(urt_task_create(&t2, share_reader, &j2), 0);
    yields(2);
    unsigned char out[4 * SHARE_COUNTERS];
    for (uint32_t i = 0; i < SHARE_COUNTERS; i++) {
        out[4 * i] = (unsigned char)(i >> 24);
        out[4 * i + 1] = (unsigned char)(i >> 16);
        out[4 * i + 2] = (unsigned char)(i >> 8);
        out[4 * i + 3] = (unsigned char)i;
    }
    /* Pieces of 4 to 400 bytes, whole counters each, now and then a pause
     * for the readers to drain what came. */
    uint64_t rng = seed_for(15);
    for (size_t at = 0; at < sizeof out;) {
        size_t n = 4 * (1 + rnd(&rng) % 100);
        if (n > sizeof out - at) n = sizeof out - at;
        size_t done;
        EXPECT_EQ(urt_send_all(b, out + at, n, &done), (ssize_t)n);
        at += n;
        if (rnd(&rng) % 3 == 0) yields(1);
    }
    EXPECT_EQ(urt_shutdown(b, SHUT_WR), 0);
    EXPECT_EQ(await_within(t1, 10000, NULL), 0);
    EXPECT_EQ(await_within(t2, 10000, NULL), 0);
    /* Every counter went to exactly one reader. */
    size_t missing = 0;
    for (size_t i = 0; i < SHARE_COUNTERS; i++) missing += !owner[i];
    if (missing && !task_failure[0])
        note_failure("[%s] %zu of %d counters reached no reader", mask_name(), missing,
                     SHARE_COUNTERS);
    EXPECT_EQ(urt_close(a), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Header (urt_readahead): every reader looks at "what has arrived, in
 * order".  Two tasks reading the same read-ahead socket at once (as two
 * tasks may share any fd) must between them get every byte exactly once:
 * a wake-up that reached both must not duplicate bytes, nor one that
 * reached neither lose them. */
static void test_two_readers_of_one_socket_share_the_bytes_without_loss_or_duplication(void **state)
{
    (void)state;
    run_all(main_share, NULL);
}

static intptr_t main_fd_reused(void *arg)
{
    (void)arg;
    check_mask();
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    readahead_on(a);
    /* Armed (a read waited for a byte: the multishot recv is in the
     * kernel and stays there), then closed with close(2) while the peer
     * stays open. */
    char buf[16];
    EXPECT_EQ(urt_send(b, "1", 1, 0), 1);
    EXPECT_EQ(urt_recv(a, buf, sizeof buf, 0), 1);
    int old_a = a;
    EXPECT_EQ(close(a), 0);
    /* The lowest free number: the new socket gets the old one's. */
    int c, d;
    if (!unix_pair(&c, &d)) return 0;
    EXPECT_EQ(c, old_a);
    /* Which bytes a read of c would see is not defined (the header: close a
     * read-ahead socket with urt_close, never close(2)), but closing c
     * must end the old multishot recv, which cancel-by-fd no longer finds
     * through the number, and not hang. */
    /* The new socket first, while the old connection's peer is open and
     * its multishot recv still waits. */
    EXPECT_EQ(urt_close(c), 0);
    EXPECT_EQ(urt_close(d), 0);
    EXPECT_EQ(urt_close(b), 0);
    return 0;
}

/* Runs fn under every mask in a child process with an alarm, so that a
 * loop that never ends is reported as this test's failure (with the mask it
 * happened under) instead of hanging the binary. */
static void run_all_forked(urt_fn fn, void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (size_t i = 0; i < NMASKS; i++) {
            alarm(30);
            dprintf(2, "child: run under %s\n", masks[i].var ? masks[i].value : "no mask");
            task_failure[0] = 0;
            mask_apply(&masks[i]);
            int fds = count_open_fds();
            intptr_t value = -1;
            int rc = urt_run(fn, arg, &value);
            int fds_after = count_open_fds();
            mask_restore(&masks[i]);
            if (rc != 0 || value != 0 || task_failure[0] || fds_after != fds) {
                dprintf(2, "run %d, value %ld, fds %d -> %d: %s\n", rc, (long)value, fds,
                        fds_after, task_failure);
                _exit(1);
            }
        }
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        print_error("the child died of signal %d (%s)%s\n", WTERMSIG(status),
                    strsignal(WTERMSIG(status)),
                    WTERMSIG(status) == SIGALRM ? ": the loop did not end within 30 s" : "");
        fail();
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Header (urt_readahead: close with urt_close, never close(2)).  When a
 * program breaks that rule anyway, and a new socket gets the closed one's
 * number while urt's multishot recv still holds the old socket, urt_close
 * of the new one must still end that recv and return, and the run must
 * give back every fd: a mistake may cost bytes, never a hung loop.  Run in
 * a child: a loop that never ends fails this test only. */
static void test_close_of_socket_reusing_number_of_close2d_readahead_socket_returns(
    void **state)
{
    (void)state;
    run_all_forked(main_fd_reused, NULL);
}

static intptr_t main_messages(void *arg)
{
    (void)arg;
    check_mask();
    static const int types[] = {SOCK_SEQPACKET, SOCK_DGRAM};
    static const char *const type_name[] = {"SOCK_SEQPACKET", "SOCK_DGRAM"};
    for (int t = 0; t < 2; t++) {
        int sv[2];
        EXPECT_EQ(socketpair(AF_UNIX, types[t] | SOCK_CLOEXEC, 0, sv), 0);
        int on = urt_readahead(sv[0], 1);
        /* Either read-ahead is refused for message sockets, or it keeps
         * what recv(2) gives: one message per call. */
        EXPECT(on == ra_expected || on < 0 || on == 0);
        char buf[100];
        EXPECT_EQ(urt_send(sv[1], "aaa", 3, 0), 3);
        EXPECT_EQ(urt_send(sv[1], "bb", 2, 0), 2);
        ssize_t r1 = urt_recv_timeout(sv[0], buf, sizeof buf, 0, URT_NS_PER_S);
        bool ok1 = r1 == 3 && memcmp(buf, "aaa", 3) == 0;
        ssize_t r2 = urt_recv_timeout(sv[0], buf, sizeof buf, 0, URT_NS_PER_S);
        bool ok2 = r2 == 2 && memcmp(buf, "bb", 2) == 0;
        /* A short read takes one message's start; the rest of it is gone. */
        EXPECT_EQ(urt_send(sv[1], "cccc", 4, 0), 4);
        EXPECT_EQ(urt_send(sv[1], "dd", 2, 0), 2);
        ssize_t r3 = urt_recv_timeout(sv[0], buf, 1, 0, URT_NS_PER_S);
        ssize_t r4 = urt_recv_timeout(sv[0], buf + 1, sizeof buf - 1, 0, URT_NS_PER_S);
        bool ok34 = r3 == 1 && buf[0] == 'c' && r4 == 2 && memcmp(buf + 1, "dd", 2) == 0;
        if (!ok1 || !ok2 || !ok34)
            note_failure("[%s] %s with urt_readahead %d: recv gave %zd, %zd, then %zd and %zd "
                         "(expected 3 \"aaa\", 2 \"bb\", then 1 \"c\" and 2 \"dd\")",
                         mask_name(), type_name[t], on, r1, r2, r3, r4);
        EXPECT_EQ(urt_close(sv[0]), 0);
        EXPECT_EQ(urt_close(sv[1]), 0);
    }
    return 0;
}

/* Header (urt_readahead): read-ahead is "for a connected socket" and urt_recv
 * must give what recv(2) gives; a connected SOCK_SEQPACKET or SOCK_DGRAM
 * socket is one too.  There recv(2) returns one message per call and drops
 * the rest of a message a short read did not take.  urt_readahead on such
 * a socket must either be refused (0 or an error) or keep those rules:
 * two messages must not come back as one stream of bytes. */
static void test_readahead_on_a_message_socket_keeps_message_boundaries(void **state)
{
    (void)state;
    run_all(main_messages, NULL);
}

static intptr_t main_nonblocking(void *arg)
{
    (void)arg;
    check_mask();
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    readahead_on(sv[0]);
    struct blocked j = {.fd = sv[0], .via = VIA_RECV};
    memset(j.buf, CANARY, sizeof j.buf);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, blocked_reader, &j), 0);
    yields(2);
    EXPECT_EQ(urt_task_done(t), 0);
    send_pattern(sv[1], 40, 0, 40);
    EXPECT_EQ(await_within(t, 10000, NULL), 0);
    EXPECT_EQ(j.res, 40);
    EXPECT_EQ(mismatch(j.buf, 40, 0, 40), -1);
    /* And again, now that a multishot recv may be armed. */
    send_pattern(sv[1], 1000, 40, 40);
    expect_pattern(sv[0], 1000, 40, 40);
    EXPECT_EQ(urt_recv(sv[0], j.buf, sizeof j.buf, MSG_DONTWAIT), -EAGAIN);
    EXPECT_EQ(urt_close(sv[0]), 0);
    EXPECT_EQ(urt_close(sv[1]), 0);
    return 0;
}

/* Header "Non-blocking fds": "An fd with O_NONBLOCK ... works too: urt waits
 * for readiness instead of returning -EAGAIN."  A read-ahead reader on an
 * O_NONBLOCK socket must wait for the data (not get -EAGAIN, nor an end
 * of file after a multishot recv that gave up with -EAGAIN). */
static void test_readahead_on_a_nonblocking_socket_waits_for_data(void **state)
{
    (void)state;
    run_all(main_nonblocking, NULL);
}

/* ---- main -------------------------------------------------------------------- */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    int a, b;
    if (!unix_pair(&a, &b)) return 0;
    urt_readahead(a, 1);
    urt_send(b, "x", 1, 0);
    char c;
    urt_recv(a, &c, 1, 0);
    urt_close(a);
    urt_close(b);
    return 0;
}

/* run_masked compares mappings before and after a run; the allocator maps
 * its arenas on first use, so one run happens before the tests. */
static int warm_up(void **state)
{
    (void)state;
    const char *s = getenv("URT_TEST_SEED");
    base_seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    print_message("random tests: URT_TEST_SEED=%llu repeats this run\n",
                  (unsigned long long)base_seed);
    return urt_run(warm_up_main, NULL, NULL) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_stream_arrives_intact_through_every_read_call),
        cmocka_unit_test(test_peek_and_dontwait_keep_their_meaning_and_other_flags_are_refused),
        cmocka_unit_test(test_waitall_waits_for_the_whole_length_across_several_sends),
        cmocka_unit_test(test_cancelled_read_leaves_buffer_alone_and_next_read_gets_the_data),
        cmocka_unit_test(test_timed_out_read_leaves_buffer_alone_and_next_read_gets_the_data),
        cmocka_unit_test(test_data_arriving_with_the_cancellation_is_returned_exactly_once),
        cmocka_unit_test(test_turning_off_returns_buffered_bytes_first_then_the_kernels),
        cmocka_unit_test(test_after_turning_off_and_draining_poll_and_flags_are_the_kernels),
        cmocka_unit_test(test_close_wakes_waiting_readers_with_ebadf_and_drops_buffered_bytes),
        cmocka_unit_test(test_poll_reports_bytes_read_ahead_and_waits_for_them),
        cmocka_unit_test(test_readahead_refuses_non_sockets_bad_fds_and_calls_outside_a_loop),
        cmocka_unit_test(test_peer_reset_is_reported_once_then_end_of_file),
        cmocka_unit_test(test_ring_running_dry_falls_back_without_reordering_or_losing_bytes),
        cmocka_unit_test(test_bytes_arriving_while_the_reader_parks_are_not_lost),
        cmocka_unit_test(test_echo_server_with_readahead_answers_every_message),
        cmocka_unit_test(test_loop_ending_with_readahead_armed_leaves_nothing_behind),
        cmocka_unit_test(test_two_readers_of_one_socket_share_the_bytes_without_loss_or_duplication),
        cmocka_unit_test(test_readahead_on_a_message_socket_keeps_message_boundaries),
        cmocka_unit_test(test_readahead_on_a_nonblocking_socket_waits_for_data),
        cmocka_unit_test(test_close_of_socket_reusing_number_of_close2d_readahead_socket_returns),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
