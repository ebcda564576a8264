/*
 * fuzz_ops.c - libFuzzer harness: each input is a small concurrent program
 * of urt operations, run in one urt_run, with the outcome of every call
 * checked against what urt.h promises for it.
 *
 * ---- Input encoding (write one by hand with printf '\x..') -------------
 *
 *   byte 0   config   bit0 TCP pair over 127.0.0.1 (else an AF_UNIX
 *                     socketpair), bit1 small socket buffers (sends block),
 *                     bit2/bit3 read-ahead on end 0/1 from the start,
 *                     bit4 abrupt end (the driver returns as soon as the root
 *                     task is done and urt_run's end-of-main cancellation
 *                     cleans up; else the driver cancels, drains and checks
 *                     the sockets itself), bit5 allow THREAD ops (the pool
 *                     is started first), bits6-7 queue kind (1 LIFO,
 *                     2 priority, else FIFO)
 *   byte 1   queue maxsize (value % 5; 0 = unbounded)
 *   byte 2   root task's spawn flags (SPAWN's f below)
 *   rest     the root task's program
 *
 * A program is a sequence of ops, one byte each (value % 32) followed by
 * its argument bytes; an argument past the end of the program (or of the
 * enclosing block) reads as 0.  Every byte is run by at most one task:
 * SPAWN's and the blocks' bodies are part of the program that holds them.
 * Arguments: t = a task (value % number of tasks so far; task 0 is the
 * root), d = a duration index, n = a size index, e = socket end (bit0).
 *
 *   dur[d & 7]  = 0, 1us, 20us, 100us, 250us, 500us, 1ms, 2ms
 *   tmo[d & 7]  = the same, but 7 = no timeout (the call without one)
 *   size[n & 7] = 1, 5, 64, 300, 1500, 4096, 16384, 65536
 *
 *   00 YIELD               1f YIELD (spare)
 *   01 SLEEP d             urt_sleep(dur)
 *   02 SPAWN f [L name..] len body..
 *                          f: bits0-2 stack (default, 16K, 20K, 32K, 64K,
 *                          256K, 1M, 16K), bit3 detached (no handle),
 *                          bit4 into the most recent group still entered,
 *                          bit5 stubborn (goes on after URT_ECANCELED,
 *                          bounded), bit6 named (L % 48 name bytes follow),
 *                          bit7 returns a value, not URT_ECANCELED, when it
 *                          stops for a cancellation.  body = next len bytes.
 *   03 CANCEL t    04 AWAIT t    07 SHIELD t    08 RELEASE t
 *   05 GATHER fl t..       n = (fl >> 1) & 7 (max 6) tasks; fl bit0
 *                          URT_RETURN_EXCEPTIONS
 *   06 WAIT_FOR t d        urt_wait_for(t, tmo)
 *   09 QUERY t             done, cancelled, result, name, describe
 *   0a GROUP len body..    urt_group_enter, body, urt_group_exit
 *   0b TIMEOUT d len body..  urt_timeout_enter(tmo), body, urt_timeout_exit
 *   0c RESCHED k d         reschedule an entered scope (k % count) to now+tmo
 *   0d RET v               leave the blocks, return v (v < 0x80: value 3v;
 *                          else one of eight errnos)
 *   0e ABANDON v           return v at once, groups and scopes still entered
 *   0f SEND e n            e bits1-2: send (no timeout), send MSG_DONTWAIT,
 *                          send_timeout(tmo of e bits3-5, 7 = 2 ms),
 *                          write(tmo); the _timeout form when tmo is finite
 *   10 RECV e n            e bits1-2: recv, MSG_DONTWAIT, MSG_WAITALL,
 *                          MSG_PEEK; tmo of e bits3-5
 *   11 SEND_ALL e n        e bit1 write_all instead; tmo of e bits3-5
 *   12 READ e n            e bits1-2: read_exactly, read, readv (no
 *                          timeout), recvmsg; tmo of e bits3-5
 *   13 SHUTDOWN e          how = (e >> 1) % 3
 *   14 CLOSE e             urt_close
 *   15 QUEUE s d           s % 8: 0-1 put(tmo), 2 try_put, 3-4 get(tmo),
 *                          5 try_get, 6 task_done, 7 join(tmo);
 *                          s >> 3: priority - 8 (priority queue)
 *   16 QSHUTDOWN s         urt_queue_shutdown(immediate = s & 1)
 *   17 EVENT s d           s % 4: set, clear, 2-3 wait(tmo); event s>>2 & 1
 *   18 LOCK s d            s % 4: 0-1 acquire(tmo), try, release (its own,
 *                          or a free lock's: -EPERM)
 *   19 THREAD d v          urt_to_thread_discard of a job sleeping dur (max
 *                          200us) that returns v (ignored unless config bit5)
 *   1a WAIT fl d t..       urt_wait(return_when fl % 3, tmo, n = fl>>2 & 7
 *                          (max 6) tasks)
 *   1b INTROSPECT s        s % 3: describe self, dump to /dev/null, urt_tasks
 *   1c READAHEAD e         urt_readahead(enable = e bit1)
 *   1d POLL e d            urt_poll_timeout(POLLOUT if e bit1 else POLLIN)
 *   1e AS_COMPLETED d n t..  n % 7 tasks, overall tmo
 *
 * "(tmo)": the call with a timeout when tmo is finite, without one when 7.
 * A task that must end soon (see below) gets 2 ms instead of none, and
 * skips GATHER, SHIELD and GROUP's enter, which have no deadline.
 *
 * Example: 00 00 00  02 00 04 01 06 0d 01  04 01   (socketpair; the root
 * spawns a task that sleeps 1 ms and returns 3 * 1, then awaits it).
 * FUZZ_OPS_TRACE=1 build/fuzz/fuzz_ops FILE prints each op as it ends.
 *
 * ---- What is checked ----------------------------------------------------
 *
 * Every return code is one urt.h documents for the call in that situation
 * (a deadline error only with a deadline that has passed, EBADTASK exactly
 * for a released or never-taken handle, EDEADLK only for a wait cycle the
 * harness can see ...); awaits, gathers, waits and groups report the
 * outcome the task really returned; a task cancelled before it ran never
 * runs and tasks start in creation order; sleeps and timeouts never end
 * early; each direction of the socket pair carries a byte stream that is
 * checked at every receive (exactly once, in order) and drained at the end;
 * a receive buffer is not written after the call returned and a send buffer
 * is not read after it; queue items come out once, per producer in order
 * on a FIFO queue; urt_run returns 0 with every task finished; no fd and no
 * byte of memory (LeakSanitizer) outlives an input.  A failed check prints
 * what it was and aborts, which libFuzzer reports as a crash.
 *
 * Every input ends by itself: each byte runs at most once, tasks are
 * capped, a task that is cancelled (or that runs after the driver's end)
 * does at most a few more operations, each with a deadline, and the driver
 * stops waiting for the tasks as soon as none made progress for a while
 * with no deadline pending.  The driver (urt_run's main) then cancels what
 * is left and drains the sockets, or (config bit4) returns at once.
 *
 * The minimised input of each urt bug the fuzzer found is kept in
 * tests/fuzz/corpus: known-bug-* while it is open (the harness then steers
 * around its path, at a note marked KNOWN BUG), fixed-bug-* once fixed.
 * None is open now.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "urt.h"

#define MAX_TASKS 32
#define MAX_DEPTH 4
#define MAX_GROUPS 64
#define MAX_SCOPES 64
#define MAX_TOKENS 512
#define MAX_OPS 4000
/* Operations a task may still do once cancelled or past the driver's end. */
#define BOUNDED_OPS 8
#define BOUNDED_TMO (2 * URT_NS_PER_MS)
#define MAX_GATHER 6
#define BUF_MAX 65536

#define NO URT_NO_TIMEOUT

static const uint64_t dur_tab[8] = {0, 1000, 20000, 100000, 250000, 500000, 1000000, 2000000};
static const size_t size_tab[8] = {1, 5, 64, 300, 1500, 4096, 16384, 65536};
static const size_t stack_tab[8] = {0, 16384, 20480, 32768, 65536, 262144, 1048576, 16384};
static const int ret_errs[8] = {-EIO, -ENOENT, -EPERM, -ERANGE, -EDOM, -ENOSPC, -EEXIST, -ECHILD};

enum {
    F_STACK = 7,
    F_DETACHED = 8,
    F_INGROUP = 16,
    F_STUBBORN = 32,
    F_NAMED = 64,
    F_CANCELVAL = 128
};
enum { BLK_SCOPE = 1, BLK_GROUP = 2 };
/* step()'s codes for RET and ABANDON, apart from every urt code. */
#define STEP_RET INT_MIN
#define STEP_ABANDON (INT_MIN + 1)

#define CHECK(cond, ...)                                       \
    do {                                                       \
        if (!(cond)) fail_check(__LINE__, #cond, __VA_ARGS__); \
    } while (0)

__attribute__((noreturn, format(printf, 3, 4))) static void fail_check(int line, const char *cond,
                                                                       const char *fmt, ...);

/* ---- state of one input ----------------------------------------------- */

struct blk {
    int kind;
    size_t end; /* the body's end in the input */
    int reg; /* index in G.groups or G.scopes */
    urt_timeout to;
    urt_group g;
};

struct rec {
    int idx;
    uint8_t flags;
    size_t pos, end; /* the program: G.in[pos..end) */
    urt_task handle;
    bool has_handle, released;
    bool started, finished, cancel_unstarted;
    intptr_t result, ret_value;
    uint64_t spawn_seq, finish_seq;
    int group_id, group_index; /* -1: not a group child */
    char name[64];
    bool named;
    bool after_cancel, bounded, counting, holds_lock;
    int bounded_left;
    struct blk blk[MAX_DEPTH];
    int depth;
    /* What it waits on, for the cycle check: tasks, or a group's children. */
    int wait_on[MAX_GATHER];
    int nwait_on;
    int wait_gid;
    bool timed;
};

struct end {
    int fd;
    bool closing, closed, shut_rd, shut_wr, reset, ra;
    bool send_busy, recv_busy, send_waits; /* send_waits: not MSG_DONTWAIT */
    size_t inflight; /* length of the send in flight */
    uint64_t sent, received;
    bool eof_checked;
    uint64_t eof_at;
    bool relax; /* bytes this end sent may be lost (TCP reset) */
    size_t poisoned; /* recv buffer bytes that must still hold POISON */
};

struct group_reg {
    bool active, exiting;
    urt_group *g;
    int nspawned;
};

struct scope_reg {
    bool active;
    urt_timeout *to;
};

enum { TOK_PUTTING = 1, TOK_IN, TOK_MAYBE_DROPPED, TOK_GOT, TOK_DEAD };

struct token {
    uint8_t state;
    bool dropped; /* an immediate shutdown came while its put waited */
    int producer;
    uint32_t seq;
};

struct job {
    uint32_t magic;
    uint64_t ns;
    intptr_t ret;
};
#define JOB_MAGIC 0x6a6f6221u

static struct {
    const uint8_t *in;
    size_t in_len;
    uint8_t config;
    bool tcp, threads;
    struct rec recs[MAX_TASKS];
    int ntasks;
    uint64_t spawn_seq, max_started_seq, finish_seq;
    uint64_t ops, progress;
    int timed_waiters;
    bool driver_done, draining;
    struct end ends[2];
    struct group_reg groups[MAX_GROUPS];
    int ngroups;
    struct scope_reg scopes[MAX_SCOPES];
    int nscopes;
    /* queue */
    urt_queue q;
    int qkind;
    size_t qmax;
    struct token tok[MAX_TOKENS];
    int ntok;
    uint32_t prod_seq[MAX_TASKS];
    int64_t last_got[MAX_TASKS];
    int q_in, q_putting, q_pending_get;
    uint64_t q_gets, q_dones;
    bool q_shut;
    /* events and the lock */
    urt_event ev[2];
    bool ev_set[2];
    uint64_t ev_sets[2];
    urt_lock lock;
    int lock_owner; /* task index, -1 free, -2 handed to a waiter not yet resumed */
    int lock_waiters;
    struct rec *cur; /* the task running harness code, NULL for the driver */
} G;

static int devnull = -1;
/* FUZZ_OPS_TRACE=1 in the environment prints every op as it ends: the way
 * to read what a crashing input does. */
static bool tracing;
static unsigned char sendbuf[2][BUF_MAX];
static unsigned char recvbuf[2][BUF_MAX];
#define POISON 0xA5
#define SCRUB 0x5A

static const char *cur_task_desc(void)
{
    static char buf[32];
    if (!G.cur) return "driver";
    snprintf(buf, sizeof buf, "task %d", G.cur->idx);
    return buf;
}

static void fail_check(int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nfuzz_ops: check failed at fuzz_ops.c:%d (%s): ", line, cur_task_desc());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  condition: %s\n", cond);
    if (urt_task_current().id) urt_task_dump(2);
    abort();
}

/* ---- reading the program ---------------------------------------------- */

static size_t cur_end(const struct rec *r)
{
    return r->depth ? r->blk[r->depth - 1].end : r->end;
}

static uint8_t rd(struct rec *r)
{
    if (r->pos >= cur_end(r)) return 0;
    return G.in[r->pos++];
}

static uint64_t dur(uint8_t d)
{
    return dur_tab[d & 7];
}

/* A timeout: none for 7, but never none for a task that must end soon. */
static uint64_t tmo(const struct rec *r, uint8_t d)
{
    uint64_t t = (d & 7) == 7 ? NO : dur_tab[d & 7];
    if (t == NO && r->bounded) t = BOUNDED_TMO;
    return t;
}

static struct rec *task_arg(struct rec *r)
{
    return &G.recs[rd(r) % G.ntasks];
}

static urt_task handle_of(const struct rec *t)
{
    return t->has_handle ? t->handle : URT_TASK_NONE;
}

static bool handle_valid(const struct rec *t)
{
    return t->has_handle && !t->released;
}

/* ---- model helpers ---------------------------------------------------- */

/* Whether a deadline of one of r's entered scopes has passed. */
static bool scope_expired(const struct rec *r)
{
    for (int i = 0; i < r->depth; i++)
        if (r->blk[i].kind == BLK_SCOPE && urt_timeout_expired(&r->blk[i].to) == 1) return true;
    return false;
}

static bool scope_pending(const struct rec *r)
{
    for (int i = 0; i < r->depth; i++)
        if (r->blk[i].kind == BLK_SCOPE && urt_timeout_expired(&r->blk[i].to) == 0 &&
            urt_timeout_when(&r->blk[i].to) != NO)
            return true;
    return false;
}

/* A deadline error is right when the call's own timeout has run out or a
 * scope around it expired. */
static bool timed_out_ok(const struct rec *r, uint64_t t, uint64_t start)
{
    if (t != NO && urt_now() - start >= t) return true;
    return scope_expired(r);
}

static void wait_begin(struct rec *r, uint64_t t)
{
    r->timed = t != NO || scope_pending(r);
    if (r->timed) G.timed_waiters++;
}

static void wait_end(struct rec *r)
{
    G.cur = r;
    if (r->timed) G.timed_waiters--;
    r->timed = false;
    r->nwait_on = 0;
    r->wait_gid = -1;
    G.progress++;
}

/* Whether, following what the tasks wait on, one of from[] leads to me:
 * the harness's view of a cycle.  Its edges outlive urt's (a waiter stays
 * in it until it resumes), so every cycle urt sees is one here too. */
static bool model_cycle(const struct rec *me, const int *from, int n)
{
    /* Marked when pushed, so the stack holds each task once at most: it
     * lives on a task's stack, which may be 16 KiB. */
    int stack[MAX_TASKS];
    int len = 0;
    uint64_t seen = 0;
#define PUSH(k)                        \
    do {                               \
        if (!(seen & (1ull << (k)))) { \
            seen |= 1ull << (k);       \
            stack[len++] = (k);        \
        }                              \
    } while (0)
    for (int i = 0; i < n; i++) PUSH(from[i]);
    while (len) {
        int k = stack[--len];
        if (k == me->idx) return true;
        const struct rec *t = &G.recs[k];
        if (t->finished) continue;
        for (int i = 0; i < t->nwait_on; i++) PUSH(t->wait_on[i]);
        if (t->wait_gid >= 0)
            for (int j = 0; j < G.ntasks; j++)
                if (G.recs[j].group_id == t->wait_gid && !G.recs[j].finished) PUSH(j);
    }
#undef PUSH
    return false;
}

static bool is_unstarted_error(intptr_t e)
{
    return e == URT_ECANCELED || e == -ENOMEM || e == URT_ESTACKLIMIT;
}

/* Whether (rc, value) is t's outcome as the harness recorded it. */
static bool outcome_is(const struct rec *t, int rc, intptr_t value)
{
    if (t->finished) {
        if (URT_IS_ERROR(t->result)) return rc == (int)t->result;
        return rc == 0 && value == t->result;
    }
    return !t->started && is_unstarted_error(rc);
}

static bool task_is_done_model(const struct rec *t)
{
    return t->finished || !t->started;
}

/* ---- the byte streams ------------------------------------------------- */

static uint8_t pat(int dir, uint64_t pos)
{
    uint64_t z = (pos + (uint64_t)dir * 0x100000001ull + 1) * 0x9E3779B97F4A7C15ull;
    z ^= z >> 29;
    return (uint8_t)(z >> 53);
}

static bool any_teardown(void)
{
    for (int i = 0; i < 2; i++)
        if (G.ends[i].closing || G.ends[i].shut_rd || G.ends[i].shut_wr || G.ends[i].reset)
            return true;
    return false;
}

static void check_poison(int e)
{
    struct end *E = &G.ends[e];
    for (size_t i = 0; i < E->poisoned; i++)
        CHECK(recvbuf[e][i] == POISON,
              "end %d: receive buffer byte %zu written after the call returned", e, i);
    E->poisoned = 0;
}

static void poison(int e, size_t len)
{
    memset(recvbuf[e], POISON, len);
    G.ends[e].poisoned = len;
}

/* Bytes received at end e: they must continue its stream exactly. */
static void got_bytes(int e, const unsigned char *p, size_t n, bool peek)
{
    struct end *E = &G.ends[e], *S = &G.ends[e ^ 1];
    int dir = e ^ 1;
    for (size_t i = 0; i < n; i++)
        CHECK(
            p[i] == pat(dir, E->received + i),
            "end %d: byte %llu of the stream from end %d is wrong (0x%02x, expected 0x%02x): lost, "
            "repeated or reordered data",
            e, (unsigned long long)(E->received + i), dir, p[i], pat(dir, E->received + i));
    if (peek) return;
    E->received += n;
    CHECK(E->received <= S->sent + (S->send_busy ? S->inflight : 0),
          "end %d received %llu bytes, more than end %d sent (%llu + %zu in flight)", e,
          (unsigned long long)E->received, dir, (unsigned long long)S->sent, S->inflight);
}

/* End of stream at end e: only once the peer stopped sending (or we stopped
 * reading); then every byte it sent has come, unless a reset lost some. */
static void got_eof(int e)
{
    struct end *E = &G.ends[e], *S = &G.ends[e ^ 1];
    CHECK(S->closing || S->shut_wr || E->shut_rd || E->reset,
          "end %d: end of stream, but end %d neither closed nor shut down writing", e, e ^ 1);
    if (!E->shut_rd && !E->reset && !E->eof_checked) {
        E->eof_checked = true;
        E->eof_at = E->received;
    }
}

/* A receive-side error code: what the kernel may say once the connection
 * is being torn down. */
static bool teardown_error(int e, long rc)
{
    if (rc == -ECONNRESET || rc == -EPIPE || rc == -ENOTCONN) {
        if (!any_teardown()) return false;
        G.ends[e].reset = true;
        return true;
    }
    /* A read-ahead that failed for want of memory is reported once. */
    if ((rc == -ENOBUFS || rc == -ENOMEM) && G.ends[e].ra) {
        G.ends[e].reset = true;
        return true;
    }
    return false;
}

static void fill_send(int e, size_t len)
{
    uint64_t from = G.ends[e].sent;
    for (size_t i = 0; i < len; i++) sendbuf[e][i] = pat(e, from + i);
}

/* ---- tasks ------------------------------------------------------------ */

static intptr_t run_program(struct rec *r);

static intptr_t task_main(void *arg)
{
    struct rec *r = arg;
    G.cur = r;
    CHECK(!r->cancel_unstarted, "task %d runs, though it was cancelled before it ever ran", r->idx);
    CHECK(r->spawn_seq > G.max_started_seq,
          "task %d (created #%llu) starts after a task created later (#%llu)", r->idx,
          (unsigned long long)r->spawn_seq, (unsigned long long)G.max_started_seq);
    G.max_started_seq = r->spawn_seq;
    r->started = true;
    G.cur = r;
    if (handle_valid(r))
        CHECK(urt_task_equal(urt_task_current(), r->handle),
              "urt_task_current is not task %d's handle", r->idx);
    intptr_t v = run_program(r);
    r->result = v;
    r->finished = true;
    r->finish_seq = ++G.finish_seq;
    G.cur = NULL;
    return v;
}

static intptr_t default_value(const struct rec *r)
{
    return 0x100 + r->idx;
}
static intptr_t cancel_value(const struct rec *r)
{
    return (r->flags & F_CANCELVAL) ? 0x200 + r->idx : URT_ECANCELED;
}

static int newest_group(void)
{
    for (int i = G.ngroups - 1; i >= 0; i--)
        if (G.groups[i].active) return i;
    return -1;
}

static void op_spawn(struct rec *r)
{
    uint8_t f = rd(r);
    char name[64];
    size_t nl = 0;
    if (f & F_NAMED) {
        size_t L = rd(r) % 48;
        for (size_t i = 0; i < L; i++) name[nl++] = (char)rd(r);
    }
    name[nl] = 0;
    size_t len = rd(r);
    size_t start = r->pos, end = cur_end(r);
    if (start + len < end) end = start + len;
    r->pos = end;
    if (G.ntasks >= MAX_TASKS) return;

    struct rec *c = &G.recs[G.ntasks];
    memset(c, 0, sizeof *c);
    c->idx = G.ntasks;
    c->flags = f;
    c->pos = start;
    c->end = end;
    c->group_id = -1;
    c->wait_gid = -1;
    c->named = (f & F_NAMED) != 0;
    memcpy(c->name, name, nl + 1);
    c->has_handle = !(f & F_DETACHED);
    c->spawn_seq = G.spawn_seq + 1;
    urt_task_opts opts = {.name = c->named ? c->name : NULL, .stack_size = stack_tab[f & F_STACK]};
    urt_task *hp = c->has_handle ? &c->handle : NULL;
    int gid = (f & F_INGROUP) ? newest_group() : -1;
    int rc;
    if (gid >= 0) {
        rc = urt_group_spawn_opts(G.groups[gid].g, hp, task_main, c, &opts);
        CHECK(rc == 0 || rc == -ESHUTDOWN || rc == -ENOMEM, "urt_group_spawn_opts: %d", rc);
        if (rc == 0) {
            c->group_id = gid;
            c->group_index = G.groups[gid].nspawned++;
        }
    } else {
        rc = urt_task_create_opts(hp, task_main, c, &opts);
        CHECK(rc == 0 || rc == -ENOMEM, "urt_task_create_opts: %d", rc);
    }
    if (rc) return;
    G.spawn_seq++;
    G.ntasks++;
    CHECK(!c->started, "task %d ran before its creator reached a suspension point", c->idx);
}

static int op_sleep(struct rec *r)
{
    uint64_t d = dur(rd(r));
    uint64_t t0 = urt_now();
    wait_begin(r, d ? d : NO);
    int rc = urt_sleep(d);
    wait_end(r);
    uint64_t el = urt_now() - t0;
    CHECK(rc == 0 || rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && scope_expired(r)),
          "urt_sleep: %d", rc);
    if (rc == 0)
        CHECK(el >= d, "urt_sleep(%llu) returned after %llu ns", (unsigned long long)d,
              (unsigned long long)el);
    return rc;
}

static int op_yield(struct rec *r)
{
    wait_begin(r, NO);
    int rc = urt_yield();
    wait_end(r);
    CHECK(rc == 0 || rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && scope_expired(r)),
          "urt_yield: %d", rc);
    return rc;
}

static int op_cancel(struct rec *r)
{
    struct rec *t = task_arg(r);
    bool was_unstarted = !t->started;
    bool was_finished = t->finished;
    int rc = urt_task_cancel(handle_of(t));
    if (!handle_valid(t)) {
        CHECK(rc == URT_EBADTASK, "urt_task_cancel of a dead handle: %d", rc);
        return 0;
    }
    CHECK(rc == 0 || rc == 1, "urt_task_cancel: %d", rc);
    if (was_finished) CHECK(rc == 0, "urt_task_cancel of finished task %d: %d", t->idx, rc);
    if (t->started && !t->finished)
        CHECK(rc == 1, "urt_task_cancel of live task %d: %d", t->idx, rc);
    if (rc == 1 && was_unstarted) t->cancel_unstarted = true;
    return 0;
}

/* await, shield and wait_for share their checks. */
static int check_task_wait(struct rec *r, struct rec *t, int rc, intptr_t v, const char *what,
                           bool shield, uint64_t tmo_ns, uint64_t t0, bool valid)
{
    if (!valid) {
        CHECK(rc == URT_EBADTASK || (t == r && rc == -EDEADLK), "%s of a dead handle: %d", what,
              rc);
        return rc;
    }
    if (t == r) {
        CHECK(rc == -EDEADLK, "%s of itself: %d", what, rc);
        return rc;
    }
    if (rc == -EDEADLK) {
        int from = t->idx;
        CHECK(model_cycle(r, &from, 1), "%s of task %d: -EDEADLK with no cycle", what, t->idx);
        return rc;
    }
    if (outcome_is(t, rc, v)) return rc;
    if (rc == URT_ETIMEDOUT) {
        CHECK(timed_out_ok(r, tmo_ns, t0), "%s of task %d: URT_ETIMEDOUT before any deadline", what,
              t->idx);
        /* The awaited task was cancelled and has ended (a shield's runs
         * on).  It may have ended with a value: one that woke the waiter
         * in the turn the deadline passed loses to it, as in asyncio. */
        if (!shield)
            CHECK(task_is_done_model(t), "%s of task %d: URT_ETIMEDOUT, but the task still runs",
                  what, t->idx);
        return rc;
    }
    if (shield && rc == URT_ECANCELED) return rc;
    /* Cancelled after the task had ended and woken it, before it ran: the
     * cancellation wins, as in asyncio. */
    if (rc == URT_ECANCELED && task_is_done_model(t)) return rc;
    if (rc == -ENOMEM && tmo_ns != NO) return rc;
    CHECK(0, "%s of task %d: got %d value %ld; task %s, result %ld", what, t->idx, rc, (long)v,
          t->finished  ? "finished"
          : t->started ? "running"
                       : "not started",
          (long)t->result);
    return rc;
}

static int op_await(struct rec *r, int kind)
{
    struct rec *t = task_arg(r);
    uint64_t to = kind == 2 ? tmo(r, rd(r)) : NO;
    if (r->bounded && kind == 0) {
        kind = 2;
        to = BOUNDED_TMO;
    }
    if (r->bounded && kind == 1) return 0; /* a shield does not end for a cancellation */
    intptr_t v = -12345;
    /* The handle may be released while the call waits: what counts is
     * whether it was valid when given. */
    bool valid = handle_valid(t);
    r->wait_on[0] = t->idx;
    r->nwait_on = 1;
    uint64_t t0 = urt_now();
    wait_begin(r, to);
    int rc;
    if (kind == 0)
        rc = urt_task_await(handle_of(t), &v);
    else if (kind == 1)
        rc = urt_shield(handle_of(t), &v);
    else
        rc = urt_wait_for(handle_of(t), to, &v);
    wait_end(r);
    const char *what = kind == 0 ? "urt_task_await" : kind == 1 ? "urt_shield" : "urt_wait_for";
    return check_task_wait(r, t, rc, v, what, kind == 1, kind == 2 ? to : NO, t0, valid);
}

static void op_release(struct rec *r)
{
    struct rec *t = task_arg(r);
    int rc = urt_task_release(handle_of(t));
    if (handle_valid(t)) {
        CHECK(rc == 0, "urt_task_release: %d", rc);
        t->released = true;
    } else {
        CHECK(rc == URT_EBADTASK, "urt_task_release of a dead handle: %d", rc);
    }
}

static void op_query(struct rec *r)
{
    struct rec *t = task_arg(r);
    urt_task h = handle_of(t);
    int d = urt_task_done(h), c = urt_task_cancelled(h);
    intptr_t v = -12345;
    int res = urt_task_result(h, &v);
    const char *name = urt_task_name(h);
    char buf[24];
    int dl = urt_task_describe(h, buf, sizeof buf);
    if (!handle_valid(t)) {
        CHECK(d == URT_EBADTASK && c == URT_EBADTASK && res == URT_EBADTASK && !name &&
                  dl == URT_EBADTASK,
              "queries of a dead handle: %d %d %d %p %d", d, c, res, (const void *)name, dl);
        return;
    }
    CHECK(d == 0 || d == 1, "urt_task_done: %d", d);
    if (d == 1) CHECK(task_is_done_model(t), "urt_task_done: 1 for task %d, which runs", t->idx);
    if (d == 0) CHECK(!t->finished, "urt_task_done: 0 for task %d, which returned", t->idx);
    CHECK(c == 0 || c == 1, "urt_task_cancelled: %d", c);
    if (c == 1)
        CHECK(d == 1 && (!t->started || t->result == URT_ECANCELED), "urt_task_cancelled: 1");
    if (c == 0 && d == 1 && t->finished) CHECK(t->result != URT_ECANCELED, "urt_task_cancelled: 0");
    if (d == 0) {
        CHECK(res == -EAGAIN, "urt_task_result of a running task: %d", res);
    } else {
        CHECK(outcome_is(t, res, v), "urt_task_result of task %d: %d value %ld, recorded %ld",
              t->idx, res, (long)v, (long)t->result);
        if (c == 1) CHECK(res == URT_ECANCELED, "cancelled, but urt_task_result: %d", res);
    }
    CHECK(name, "urt_task_name: NULL for a valid handle");
    if (t->named)
        CHECK(strncmp(name, t->name, URT_TASK_NAME_MAX - 1) == 0 &&
                  strlen(name) < URT_TASK_NAME_MAX,
              "urt_task_name: '%s' for a task named '%s'", name, t->name);
    else
        CHECK(strncmp(name, "Task-", 5) == 0, "urt_task_name: '%s' for an unnamed task", name);
    CHECK(dl >= 0, "urt_task_describe: %d", dl);
    CHECK(strlen(buf) == ((size_t)dl < sizeof buf ? (size_t)dl : sizeof buf - 1),
          "urt_task_describe: %d for '%s'", dl, buf);
}

static int op_gather(struct rec *r)
{
    uint8_t fl = rd(r);
    int n = (fl >> 1) & 7;
    if (n > MAX_GATHER) n = MAX_GATHER;
    unsigned flags = (fl & 1) ? URT_RETURN_EXCEPTIONS : 0;
    urt_task hs[MAX_GATHER];
    int idx[MAX_GATHER];
    bool invalid = false, self = false;
    for (int i = 0; i < n; i++) {
        struct rec *t = task_arg(r);
        idx[i] = t->idx;
        hs[i] = handle_of(t);
        invalid |= !handle_valid(t);
        self |= t == r;
    }
    if (r->bounded) return 0; /* gather has no deadline of its own */
    intptr_t vals[MAX_GATHER];
    int errs[MAX_GATHER];
    for (int i = 0; i < MAX_GATHER; i++) {
        vals[i] = -777;
        errs[i] = -777;
    }
    memcpy(r->wait_on, idx, sizeof idx);
    r->nwait_on = n;
    wait_begin(r, NO);
    int rc = urt_gather(hs, (size_t)n, flags, vals, flags ? errs : NULL);
    wait_end(r);
    if (n == 0) {
        CHECK(rc == 0, "urt_gather of nothing: %d", rc);
        return rc;
    }
    /* With both a dead handle and a cycle, either error may come first. */
    if (invalid) {
        CHECK(rc == URT_EBADTASK || (rc == -EDEADLK && (self || model_cycle(r, idx, n))),
              "urt_gather with a dead handle: %d", rc);
        return rc;
    }
    if (self) {
        CHECK(rc == -EDEADLK, "urt_gather of itself: %d", rc);
        return rc;
    }
    if (rc == -EDEADLK) {
        CHECK(model_cycle(r, idx, n), "urt_gather: -EDEADLK with no cycle");
        return rc;
    }
    if (rc == URT_ETIMEDOUT) {
        CHECK(scope_expired(r), "urt_gather: URT_ETIMEDOUT with no deadline passed");
        return rc;
    }
    if (flags) {
        CHECK(rc == 0 || rc == URT_ECANCELED, "urt_gather(RETURN_EXCEPTIONS): %d", rc);
        if (rc) return rc;
        for (int i = 0; i < n; i++)
            CHECK(outcome_is(&G.recs[idx[i]], errs[i], vals[i]),
                  "urt_gather(RETURN_EXCEPTIONS)[%d] (task %d): error %d value %ld, recorded %ld",
                  i, idx[i], errs[i], (long)vals[i], (long)G.recs[idx[i]].result);
        return rc;
    }
    if (rc == 0) {
        for (int i = 0; i < n; i++)
            CHECK(outcome_is(&G.recs[idx[i]], 0, vals[i]),
                  "urt_gather[%d] (task %d): value %ld, recorded %ld", i, idx[i], (long)vals[i],
                  (long)G.recs[idx[i]].result);
        return rc;
    }
    bool someone = rc == URT_ECANCELED;
    for (int i = 0; i < n; i++) {
        const struct rec *t = &G.recs[idx[i]];
        if (task_is_done_model(t) && outcome_is(t, rc, 0)) someone = true;
        if (vals[i] != -777)
            CHECK(outcome_is(t, 0, vals[i]),
                  "urt_gather failed, values[%d] = %ld but task %d gave %ld", i, (long)vals[i],
                  idx[i], (long)t->result);
    }
    CHECK(someone, "urt_gather: %d, which no task of the set returned", rc);
    return rc;
}

static int op_wait(struct rec *r)
{
    uint8_t fl = rd(r);
    uint64_t to = tmo(r, rd(r));
    int n = (fl >> 2) & 7;
    if (n > MAX_GATHER) n = MAX_GATHER;
    int rw = fl % 3;
    urt_task hs[MAX_GATHER];
    int idx[MAX_GATHER];
    bool invalid = false, self = false;
    for (int i = 0; i < n; i++) {
        struct rec *t = task_arg(r);
        idx[i] = t->idx;
        hs[i] = handle_of(t);
        invalid |= !handle_valid(t);
        self |= t == r;
    }
    unsigned char done[MAX_GATHER];
    memset(done, 0xee, sizeof done);
    memcpy(r->wait_on, idx, sizeof idx);
    r->nwait_on = n;
    uint64_t t0 = urt_now();
    wait_begin(r, to);
    int rc = urt_wait(n ? hs : NULL, (size_t)n, rw, to, done);
    wait_end(r);
    if (n == 0) {
        CHECK(rc == -EINVAL, "urt_wait of nothing: %d", rc);
        return rc;
    }
    if (invalid) {
        CHECK(rc == URT_EBADTASK || (rc == -EDEADLK && (self || model_cycle(r, idx, n))),
              "urt_wait with a dead handle: %d", rc);
        return rc;
    }
    if (rc == -EDEADLK) {
        CHECK(self || model_cycle(r, idx, n), "urt_wait: -EDEADLK with no cycle");
        return rc;
    }
    if (rc < 0) {
        CHECK(rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && scope_expired(r)), "urt_wait: %d", rc);
        return rc;
    }
    int ndone = 0;
    bool exception = false;
    for (int i = 0; i < n; i++) {
        const struct rec *t = &G.recs[idx[i]];
        CHECK(done[i] == 0 || done[i] == 1, "urt_wait: done[%d] = %d", i, done[i]);
        if (done[i]) {
            CHECK(task_is_done_model(t), "urt_wait: done[%d] = 1 but task %d runs", i, t->idx);
            exception |= t->finished && URT_IS_ERROR(t->result) && t->result != URT_ECANCELED;
        } else {
            CHECK(!t->finished, "urt_wait: done[%d] = 0 but task %d returned", i, t->idx);
        }
        ndone += done[i];
    }
    CHECK(rc == ndone, "urt_wait: %d, with %d done", rc, ndone);
    bool holds = rw == URT_ALL_COMPLETED     ? ndone == n
                 : rw == URT_FIRST_COMPLETED ? ndone > 0
                                             : (ndone == n || exception);
    if (!holds)
        CHECK(to != NO && urt_now() - t0 >= to,
              "urt_wait(%d): returned %d of %d before its timeout", rw, rc, n);
    return rc;
}

static int op_as_completed(struct rec *r)
{
    uint64_t to = tmo(r, rd(r));
    int n = rd(r) % 7;
    urt_task hs[MAX_GATHER];
    int idx[MAX_GATHER];
    bool invalid = false;
    for (int i = 0; i < n; i++) {
        struct rec *t = task_arg(r);
        idx[i] = t->idx;
        hs[i] = handle_of(t);
        invalid |= !handle_valid(t);
    }
    urt_as_completed it;
    uint64_t t0 = urt_now();
    int rc = urt_as_completed_init(&it, hs, (size_t)n, to);
    CHECK(rc == 0, "urt_as_completed_init: %d", rc);
    bool given[MAX_GATHER] = {0};
    int ngiven = 0;
    memcpy(r->wait_on, idx, sizeof idx);
    r->nwait_on = n;
    for (int k = 0; k <= n; k++) {
        urt_task got;
        wait_begin(r, to);
        rc = urt_as_completed_next(&it, &got);
        wait_end(r);
        r->nwait_on = n;
        if (rc == 1) {
            int j = -1;
            for (int i = 0; i < n; i++)
                if (!given[i] && urt_task_equal(hs[i], got)) {
                    j = i;
                    break;
                }
            CHECK(j >= 0, "urt_as_completed_next gave a task not in the set, or one twice");
            given[j] = true;
            ngiven++;
            CHECK(task_is_done_model(&G.recs[idx[j]]),
                  "urt_as_completed_next gave task %d, which runs", idx[j]);
            continue;
        }
        if (rc == 0)
            CHECK(ngiven == n, "urt_as_completed_next: 0 after %d of %d", ngiven, n);
        else if (rc == URT_EBADTASK) {
            bool now_invalid = invalid;
            for (int i = 0; i < n; i++) now_invalid |= !handle_valid(&G.recs[idx[i]]);
            CHECK(now_invalid, "urt_as_completed_next: URT_EBADTASK");
        } else if (rc == URT_ETIMEDOUT)
            CHECK(timed_out_ok(r, to, t0), "urt_as_completed_next: early timeout");
        else if (rc == -EDEADLK)
            CHECK(model_cycle(r, idx, n), "urt_as_completed_next: -EDEADLK, no cycle");
        else
            CHECK(rc == URT_ECANCELED, "urt_as_completed_next: %d", rc);
        break;
    }
    r->nwait_on = 0;
    urt_as_completed_end(&it);
    return rc == 1 ? 0 : rc;
}

/* ---- blocks ------------------------------------------------------------ */

static size_t body_end(struct rec *r, size_t len)
{
    size_t end = cur_end(r);
    return r->pos + len < end ? r->pos + len : end;
}

static void op_group(struct rec *r)
{
    size_t len = rd(r);
    size_t end = body_end(r, len);
    if (r->depth == MAX_DEPTH || G.ngroups == MAX_GROUPS || r->bounded)
        return; /* the body runs bare */
    struct blk *b = &r->blk[r->depth];
    memset(b, 0, sizeof *b);
    int rc = urt_group_enter(&b->g);
    CHECK(rc == 0 || rc == -ENOMEM, "urt_group_enter: %d", rc);
    if (rc) return;
    b->kind = BLK_GROUP;
    b->end = end;
    b->reg = G.ngroups;
    G.groups[G.ngroups++] = (struct group_reg){.active = true, .g = &b->g};
    r->depth++;
}

static void op_timeout(struct rec *r)
{
    uint64_t to = tmo(r, rd(r));
    size_t len = rd(r);
    size_t end = body_end(r, len);
    if (r->depth == MAX_DEPTH || G.nscopes == MAX_SCOPES) return;
    struct blk *b = &r->blk[r->depth];
    memset(b, 0, sizeof *b);
    uint64_t t0 = urt_now();
    int rc = urt_timeout_enter(&b->to, to);
    uint64_t t1 = urt_now();
    CHECK(rc == 0 || rc == -ENOMEM, "urt_timeout_enter: %d", rc);
    if (rc) return;
    uint64_t when = urt_timeout_when(&b->to);
    if (to == NO)
        CHECK(when == NO, "urt_timeout_when: %llu for a scope with no deadline",
              (unsigned long long)when);
    else
        CHECK(when >= t0 + to && when <= t1 + to, "urt_timeout_when: %llu, not now + %llu",
              (unsigned long long)when, (unsigned long long)to);
    b->kind = BLK_SCOPE;
    b->end = end;
    b->reg = G.nscopes;
    G.scopes[G.nscopes++] = (struct scope_reg){.active = true, .to = &b->to};
    r->depth++;
}

static void op_resched(struct rec *r)
{
    uint8_t k = rd(r);
    uint64_t to = tmo(r, rd(r));
    int live[MAX_SCOPES], n = 0;
    for (int i = 0; i < G.nscopes; i++)
        if (G.scopes[i].active) live[n++] = i;
    if (!n) return;
    urt_timeout *t = G.scopes[live[k % n]].to;
    int expired = urt_timeout_expired(t);
    uint64_t old = urt_timeout_when(t);
    uint64_t deadline = to == NO ? NO : urt_now() + to;
    int rc = urt_timeout_reschedule(t, deadline);
    CHECK(rc == 0 || rc == -EALREADY || rc == -ENOMEM, "urt_timeout_reschedule: %d", rc);
    if (expired == 1) CHECK(rc == -EALREADY, "urt_timeout_reschedule of an expired scope: %d", rc);
    if (rc == -EALREADY)
        CHECK(old != NO && urt_now() >= old, "urt_timeout_reschedule: -EALREADY early");
    if (rc == 0) CHECK(urt_timeout_when(t) == deadline, "urt_timeout_when after reschedule");
}

static void unregister(struct blk *b)
{
    if (b->kind == BLK_GROUP)
        G.groups[b->reg].active = false;
    else
        G.scopes[b->reg].active = false;
}

static int exit_group(struct rec *r, struct blk *b)
{
    int gid = b->reg;
    r->wait_gid = gid;
    wait_begin(r, NO);
    urt_group_error errs[8];
    size_t nerrs = 999;
    G.groups[gid].exiting = true;
    int rc = urt_group_exit(&b->g, errs, 8, &nerrs);
    G.groups[gid].exiting = false;
    wait_end(r);
    G.groups[gid].active = false;
    CHECK(rc != -EINVAL, "urt_group_exit of the innermost group: -EINVAL");
    int failing = 0, unstarted = 0;
    for (int j = 0; j < G.ntasks; j++) {
        const struct rec *c = &G.recs[j];
        if (c->group_id != gid) continue;
        CHECK(!(c->started && !c->finished), "urt_group_exit returned while child %d runs", j);
        if (c->finished && URT_IS_ERROR(c->result) && c->result != URT_ECANCELED) failing++;
        if (!c->started) unstarted++;
    }
    CHECK(nerrs >= (size_t)failing && nerrs <= (size_t)(failing + unstarted),
          "urt_group_exit: %zu failures, %d children failed", nerrs, failing);
    uint64_t last = 0;
    for (size_t i = 0; i < nerrs && i < 8; i++) {
        CHECK((int)errs[i].index < G.groups[gid].nspawned,
              "urt_group_exit: failure index %zu of %d", errs[i].index, G.groups[gid].nspawned);
        CHECK(URT_IS_ERROR(errs[i].error) && errs[i].error != URT_ECANCELED,
              "urt_group_exit: failure %d is no failure", errs[i].error);
        const struct rec *c = NULL;
        for (int j = 0; j < G.ntasks; j++)
            if (G.recs[j].group_id == gid && G.recs[j].group_index == (int)errs[i].index)
                c = &G.recs[j];
        CHECK(c, "urt_group_exit: failure of child %zu, which the group lacks", errs[i].index);
        if (c->finished) {
            CHECK(c->result == errs[i].error, "urt_group_exit: child %d failed with %ld, listed %d",
                  c->idx, (long)c->result, errs[i].error);
            CHECK(c->finish_seq > last, "urt_group_exit: failures out of order");
            last = c->finish_seq;
        }
    }
    if (nerrs)
        CHECK(rc == errs[0].error, "urt_group_exit: %d, first failure %d", rc, errs[0].error);
    else
        CHECK(rc == 0 || rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && scope_expired(r)),
              "urt_group_exit with no failure: %d", rc);
    return rc;
}

/* Whether exiting group block b would close a cycle: a child not finished
 * that waits, maybe through others, for r itself.  urt refuses such cycles
 * in await and gather but cannot in the exit, which must wait for every
 * child; the tasks would wait for good (asyncio's as well) and urt_run
 * return -EDEADLK, so the harness's program leaves the group by returning,
 * which cancels the children instead. */
static bool exit_would_deadlock(const struct rec *r, const struct blk *b)
{
    int from[MAX_TASKS], n = 0;
    if (b->kind != BLK_GROUP) return false;
    for (int j = 0; j < G.ntasks; j++)
        if (G.recs[j].group_id == b->reg && !G.recs[j].finished) from[n++] = j;
    return n && model_cycle(r, from, n);
}

static int exit_block(struct rec *r)
{
    struct blk *b = &r->blk[r->depth - 1];
    int rc;
    if (b->kind == BLK_GROUP) {
        rc = exit_group(r, b); /* while its scope is still r's innermost */
    } else {
        rc = urt_timeout_exit(&b->to);
        CHECK(rc == 0 || rc == URT_ETIMEDOUT, "urt_timeout_exit: %d", rc);
        if (rc == URT_ETIMEDOUT)
            CHECK(urt_timeout_expired(&b->to) == 1, "URT_ETIMEDOUT, not expired");
    }
    unregister(b);
    r->depth--;
    return rc == URT_ECANCELED ? rc : 0;
}

/* ---- sockets ------------------------------------------------------------ */

static bool end_usable(int e)
{
    return !G.ends[e].closing && !G.ends[e].closed;
}

static void send_done(int e, size_t moved)
{
    struct end *E = &G.ends[e];
    /* A kernel still reading the buffer would now send these bytes. */
    memset(sendbuf[e], SCRUB, E->inflight);
    E->sent += moved;
    E->send_busy = false;
    E->inflight = 0;
}

static int op_send(struct rec *r, bool all)
{
    uint8_t m = rd(r);
    size_t len = size_tab[rd(r) & 7];
    int e = m & 1;
    struct end *E = &G.ends[e];
    if (!end_usable(e) || E->send_busy) return 0;
    int mode = (m >> 1) & 3;
    /* The timeout the call really has: plain send has none, mode 2 always
     * one. */
    uint64_t t = tmo(r, (uint8_t)(m >> 3));
    if (!all && mode == 0 && !r->bounded) t = NO;
    if (!all && mode == 1) t = NO;
    if (!all && mode == 2 && t == NO) t = BOUNDED_TMO;
    bool wr = all && (m & 2);
    fill_send(e, len);
    E->send_busy = true;
    E->send_waits = all || mode != 1;
    E->inflight = len;
    uint64_t t0 = urt_now();
    wait_begin(r, t);
    long rc;
    size_t moved, done = 999999;
    if (all && wr)
        rc = t == NO ? urt_write_all(E->fd, sendbuf[e], len, &done)
                     : urt_write_all_timeout(E->fd, sendbuf[e], len, &done, t);
    else if (all)
        rc = t == NO ? urt_send_all(E->fd, sendbuf[e], len, &done)
                     : urt_send_all_timeout(E->fd, sendbuf[e], len, &done, t);
    else if (mode == 1)
        rc = urt_send(E->fd, sendbuf[e], len, MSG_DONTWAIT);
    else if (mode == 3)
        rc = t == NO ? urt_write(E->fd, sendbuf[e], len)
                     : urt_write_timeout(E->fd, sendbuf[e], len, t);
    else
        rc = t == NO ? urt_send(E->fd, sendbuf[e], len, 0)
                     : urt_send_timeout(E->fd, sendbuf[e], len, 0, t);
    wait_end(r);
    const char *what = all         ? (wr ? "urt_write_all" : "urt_send_all")
                       : mode == 3 ? "urt_write"
                                   : "urt_send";
    if (all) {
        CHECK(done <= len, "%s: done %zu of %zu", what, done, len);
        CHECK(rc < 0 || (rc == (long)len && done == len), "%s: %ld, done %zu of %zu", what, rc,
              done, len);
        moved = done;
    } else {
        CHECK(rc <= (long)len, "%s: %ld of %zu", what, rc, len);
        moved = rc > 0 ? (size_t)rc : 0;
    }
    bool ok = rc >= 0 || rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && timed_out_ok(r, t, t0)) ||
              (rc == -EAGAIN && mode == 1 && !all) || (rc == -EBADF && E->closing) ||
              ((rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN || (rc == -EIO && all)) &&
               any_teardown());
    CHECK(ok, "%s (mode %d, len %zu): %ld", what, mode, len, rc);
    if (rc == -EPIPE || rc == -ECONNRESET) E->reset = true;
    if (tracing)
        fprintf(stderr, "fuzz_ops:   %s(end %d, %zu, timeout %lld): %ld, moved %zu from %llu\n",
                what, e, len, t == NO ? -1ll : (long long)t, rc, moved,
                (unsigned long long)E->sent);
    send_done(e, moved);
    return rc == URT_ECANCELED ? (int)rc : 0;
}

static int op_recv(struct rec *r, bool readop)
{
    uint8_t m = rd(r);
    size_t len = size_tab[rd(r) & 7];
    int e = m & 1;
    struct end *E = &G.ends[e];
    if (!end_usable(e) || E->recv_busy) return 0;
    int mode = (m >> 1) & 3;
    uint64_t t = tmo(r, (uint8_t)(m >> 3));
    /* readv has no deadline of its own: bounded, it is a read_timeout. */
    bool readv = readop && mode == 2;
    if (readv) t = r->bounded ? BOUNDED_TMO : NO;
    check_poison(e);
    unsigned char *buf = recvbuf[e];
    memset(buf, POISON, len);
    E->recv_busy = true;
    uint64_t t0 = urt_now();
    wait_begin(r, t);
    long rc;
    size_t done = 999999;
    bool peek = !readop && mode == 3, exactly = readop && mode == 0,
         dontwait = !readop && mode == 1;
    if (!readop) {
        int flags = mode == 1 ? MSG_DONTWAIT : mode == 2 ? MSG_WAITALL : mode == 3 ? MSG_PEEK : 0;
        rc = t == NO ? urt_recv(E->fd, buf, len, flags)
                     : urt_recv_timeout(E->fd, buf, len, flags, t);
    } else if (exactly) {
        rc = t == NO ? urt_read_exactly(E->fd, buf, len, &done)
                     : urt_read_exactly_timeout(E->fd, buf, len, &done, t);
    } else if (mode == 1 || (readv && t != NO)) {
        rc = t == NO ? urt_read(E->fd, buf, len) : urt_read_timeout(E->fd, buf, len, t);
    } else if (readv) {
        struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
        rc = urt_readv(E->fd, iov, 2);
    } else {
        struct iovec iov = {buf, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        rc = t == NO ? urt_recvmsg(E->fd, &mh, 0) : urt_recvmsg_timeout(E->fd, &mh, 0, t);
    }
    wait_end(r);
    size_t got;
    if (exactly) {
        CHECK(done <= len, "urt_read_exactly: done %zu of %zu", done, len);
        CHECK(rc < 0 || (rc == (long)len && done == len), "urt_read_exactly: %ld, done %zu", rc,
              done);
        got = done;
    } else {
        CHECK(rc <= (long)len, "receive: %ld of %zu", rc, len);
        got = rc > 0 ? (size_t)rc : 0;
    }
    if (tracing)
        fprintf(stderr,
                "fuzz_ops:   receive(end %d, mode %d%s, %zu, timeout %lld): %ld, got %zu at %llu\n",
                e, mode, readop ? " read" : "", len, t == NO ? -1ll : (long long)t, rc, got,
                (unsigned long long)E->received);
    got_bytes(e, buf, got, peek);
    if ((rc == 0 && !exactly) || (rc == -ENODATA && exactly)) {
        got_eof(e);
    } else if (rc < 0) {
        bool ok = rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && timed_out_ok(r, t, t0)) ||
                  (rc == -EAGAIN && dontwait) || (rc == -EBADF && E->closing) ||
                  teardown_error(e, rc);
        CHECK(ok, "receive (%s mode %d, len %zu): %ld", readop ? "read" : "recv", mode, len, rc);
    }
    /* The next receive on this end checks that nothing wrote here since. */
    poison(e, len);
    E->recv_busy = false;
    return rc == URT_ECANCELED ? (int)rc : 0;
}

static int op_shutdown(struct rec *r)
{
    uint8_t m = rd(r);
    int e = m & 1, how = (m >> 1) % 3;
    struct end *E = &G.ends[e];
    if (!end_usable(e)) return 0;
    if (how != SHUT_WR) E->shut_rd = true;
    if (how != SHUT_RD) E->shut_wr = true;
    wait_begin(r, 0); /* ends by itself: the driver must not call it stuck */
    int rc = urt_shutdown(E->fd, how);
    wait_end(r);
    CHECK(rc == 0 || rc == URT_ECANCELED || (rc == -ENOTCONN && any_teardown()) ||
              (rc == -EBADF && E->closing) || (rc == URT_ETIMEDOUT && scope_expired(r)),
          "urt_shutdown: %d", rc);
    return rc == URT_ECANCELED ? rc : 0;
}

static void close_end(int e)
{
    struct end *E = &G.ends[e], *P = &G.ends[e ^ 1];
    /* A TCP socket closed with bytes unread resets the connection: what it
     * still had to send may be lost. */
    if (G.tcp && (P->sent > E->received || P->send_busy)) E->relax = true;
    E->closing = true;
}

static int op_close(struct rec *r)
{
    int e = rd(r) & 1;
    struct end *E = &G.ends[e];
    if (!end_usable(e)) return 0;
    close_end(e);
    wait_begin(r, 0);
    int rc = urt_close(E->fd);
    wait_end(r);
    CHECK(rc == 0, "urt_close: %d", rc);
    E->closed = true;
    return 0;
}

static void op_readahead(struct rec *r)
{
    uint8_t m = rd(r);
    int e = m & 1, on = (m >> 1) & 1;
    struct end *E = &G.ends[e];
    if (!end_usable(e)) return;
    int rc = urt_readahead(E->fd, on);
    CHECK(rc == 0 || rc == 1 || rc == -ENOMEM, "urt_readahead(%d): %d", on, rc);
    if (!on) CHECK(rc == 0 || rc == -ENOMEM, "urt_readahead(0): %d", rc);
    if (rc == 1) E->ra = true;
}

static int op_poll(struct rec *r)
{
    uint8_t m = rd(r);
    uint64_t t = tmo(r, rd(r));
    int e = m & 1;
    short ev = (m & 2) ? POLLOUT : POLLIN;
    struct end *E = &G.ends[e];
    if (!end_usable(e)) return 0;
    uint64_t t0 = urt_now();
    wait_begin(r, t);
    int rc = t == NO ? urt_poll(E->fd, ev) : urt_poll_timeout(E->fd, ev, t);
    wait_end(r);
    CHECK(rc > 0 || rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && timed_out_ok(r, t, t0)) ||
              (rc == -EBADF && E->closing),
          "urt_poll: %d", rc);
    if (rc > 0)
        CHECK(rc & (ev | POLLERR | POLLHUP | POLLNVAL | POLLRDHUP), "urt_poll: mask 0x%x", rc);
    return rc == URT_ECANCELED ? rc : 0;
}

/* ---- queue, events, lock ---------------------------------------------- */

static void check_qsize(void)
{
    long real = (long)urt_queue_size(&G.q);
    long lo = G.q_in - G.q_pending_get, hi = G.q_in + G.q_putting;
    CHECK(real >= lo && real <= hi, "urt_queue_size: %ld, expected %ld..%ld", real, lo, hi);
    if (G.qmax) CHECK((size_t)real <= G.qmax, "urt_queue_size: %ld over maxsize %zu", real, G.qmax);
    CHECK(urt_queue_empty(&G.q) == (real == 0), "urt_queue_empty");
    CHECK(urt_queue_full(&G.q) == (G.qmax && (size_t)real == G.qmax), "urt_queue_full");
}

/* immediate: the queue held items when the get began, so it took the
 * oldest at once.  Only those gets are ordered: an item handed to a
 * waiting getter left the queue at its put, however late the getter runs. */
static void got_item(struct rec *r, void *item, bool immediate)
{
    (void)r;
    uintptr_t k = (uintptr_t)item;
    if (tracing) fprintf(stderr, "fuzz_ops:   got item %lu\n", (unsigned long)k);
    CHECK(k >= 1 && k <= (uintptr_t)G.ntok, "urt_queue_get: item %p was never put", item);
    struct token *tk = &G.tok[k - 1];
    CHECK(tk->state == TOK_PUTTING || tk->state == TOK_IN || tk->state == TOK_MAYBE_DROPPED,
          "urt_queue_get: item %lu got in state %d (got twice, or its put failed)",
          (unsigned long)k, tk->state);
    if (tk->state == TOK_IN) G.q_in--;
    tk->state = TOK_GOT;
    G.q_gets++;
    if (G.qkind == URT_QUEUE_FIFO && immediate) {
        CHECK((int64_t)tk->seq > G.last_got[tk->producer],
              "FIFO queue: item %u of task %d came out of the queue after its item %lld", tk->seq,
              tk->producer, (long long)G.last_got[tk->producer]);
        G.last_got[tk->producer] = tk->seq;
    }
}

static int op_queue(struct rec *r)
{
    uint8_t s = rd(r);
    uint64_t t = tmo(r, rd(r));
    int op = s % 8;
    int64_t prio = (int64_t)(s >> 3) - 8;
    bool prioq = G.qkind == URT_QUEUE_PRIORITY;
    uint64_t t0 = urt_now();
    int rc = 0;
    if (op <= 2) {
        if (G.ntok == MAX_TOKENS) return 0;
        struct token *tk = &G.tok[G.ntok++];
        *tk = (struct token){.state = TOK_PUTTING, .producer = r->idx, .seq = ++G.prod_seq[r->idx]};
        void *item = (void *)(uintptr_t)G.ntok;
        bool try = op == 2;
        if (try) t = NO;
        G.q_putting++;
        wait_begin(r, t);
        if (try)
            rc = prioq ? urt_queue_try_put_prio(&G.q, prio, item) : urt_queue_try_put(&G.q, item);
        else if (t == NO)
            rc = prioq ? urt_queue_put_prio(&G.q, prio, item) : urt_queue_put(&G.q, item);
        else
            rc = prioq ? urt_queue_put_prio_timeout(&G.q, prio, item, t)
                       : urt_queue_put_timeout(&G.q, item, t);
        wait_end(r);
        G.q_putting--;
        if (rc == 0) {
            /* Moved in by a get, then maybe dropped by an immediate
             * shutdown before the putter resumed. */
            if (tk->state == TOK_PUTTING && tk->dropped) {
                tk->state = TOK_MAYBE_DROPPED;
            } else if (tk->state == TOK_PUTTING) {
                tk->state = TOK_IN;
                G.q_in++;
            }
        } else {
            CHECK(tk->state == TOK_PUTTING, "a put that failed (%d) had its item got", rc);
            tk->state = TOK_DEAD;
            bool ok = rc == -ESHUTDOWN ? G.q_shut
                      : rc == -EAGAIN  ? try && urt_queue_full(&G.q)
                                       : rc == URT_ECANCELED
                          ? !
            try : rc
                == URT_ETIMEDOUT ? !try && timed_out_ok(r, t, t0) : false;
            CHECK(ok, "urt_queue_put (op %d): %d", op, rc);
        }
    } else if (op <= 5) {
        void *item = (void *)(uintptr_t)0xdead;
        bool try = op == 5;
        if (try) t = NO;
        bool immediate = urt_queue_size(&G.q) > 0;
        G.q_pending_get++;
        wait_begin(r, t);
        if (try)
            rc = urt_queue_try_get(&G.q, &item);
        else if (t == NO)
            rc = urt_queue_get(&G.q, &item);
        else
            rc = urt_queue_get_timeout(&G.q, &item, t);
        wait_end(r);
        G.q_pending_get--;
        if (rc == 0) {
            got_item(r, item, immediate);
        } else {
            CHECK(item == (void *)(uintptr_t)0xdead, "a failed get wrote *item");
            bool ok = rc == -ESHUTDOWN ? G.q_shut
                      : rc == -EAGAIN  ? try && urt_queue_size(&G.q) == 0
                                       : rc == URT_ECANCELED
                          ? !
            try : rc
                == URT_ETIMEDOUT ? !try && timed_out_ok(r, t, t0) : false;
            CHECK(ok, "urt_queue_get (op %d): %d", op, rc);
        }
    } else if (op == 6) {
        rc = urt_queue_task_done(&G.q);
        if (rc == 0) {
            CHECK(G.q_dones < G.q_gets + (uint64_t)G.q_pending_get,
                  "urt_queue_task_done: 0 with nothing got");
            G.q_dones++;
        } else {
            CHECK(rc == -EOVERFLOW && G.q_dones >= G.q_gets,
                  "urt_queue_task_done: %d (%llu got, %llu done)", rc, (unsigned long long)G.q_gets,
                  (unsigned long long)G.q_dones);
        }
    } else {
        wait_begin(r, t);
        rc = t == NO ? urt_queue_join(&G.q) : urt_queue_join_timeout(&G.q, t);
        wait_end(r);
        CHECK(rc == 0 || rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && timed_out_ok(r, t, t0)),
              "urt_queue_join: %d", rc);
    }
    if (tracing)
        fprintf(stderr, "fuzz_ops:   queue op %d: %d, size %zu\n", op, rc, urt_queue_size(&G.q));
    check_qsize();
    return rc == URT_ECANCELED ? rc : 0;
}

static void op_qshutdown(struct rec *r)
{
    int imm = rd(r) & 1;
    int rc = urt_queue_shutdown(&G.q, imm);
    CHECK(rc == 0, "urt_queue_shutdown: %d", rc);
    G.q_shut = true;
    if (imm) {
        for (int i = 0; i < G.ntok; i++)
            if (G.tok[i].state == TOK_IN) {
                G.q_in--;
                G.tok[i].state = TOK_MAYBE_DROPPED;
            } else if (G.tok[i].state == TOK_PUTTING) {
                G.tok[i].dropped = true;
            }
        CHECK(urt_queue_size(&G.q) == 0, "urt_queue_shutdown(immediate) left %zu items",
              urt_queue_size(&G.q));
    }
    check_qsize();
}

static int op_event(struct rec *r)
{
    uint8_t s = rd(r);
    uint64_t t = tmo(r, rd(r));
    int op = s % 4, k = (s >> 2) & 1;
    urt_event *ev = &G.ev[k];
    int rc = 0;
    if (op == 0) {
        rc = urt_event_set(ev);
        CHECK(rc == 0, "urt_event_set: %d", rc);
        if (!G.ev_set[k]) G.ev_sets[k]++;
        G.ev_set[k] = true;
    } else if (op == 1) {
        rc = urt_event_clear(ev);
        CHECK(rc == 0, "urt_event_clear: %d", rc);
        G.ev_set[k] = false;
    } else {
        bool was = G.ev_set[k];
        uint64_t sets = G.ev_sets[k], t0 = urt_now();
        wait_begin(r, t);
        rc = t == NO ? urt_event_wait(ev) : urt_event_wait_timeout(ev, t);
        wait_end(r);
        if (rc == 0)
            CHECK(was || G.ev_sets[k] > sets, "urt_event_wait: 0, but the event was not set");
        else
            CHECK(rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && timed_out_ok(r, t, t0)),
                  "urt_event_wait: %d", rc);
        if (was) CHECK(rc == 0, "urt_event_wait on a set event: %d", rc);
    }
    CHECK(urt_event_is_set(ev) == G.ev_set[k], "urt_event_is_set: %d", urt_event_is_set(ev));
    return rc == URT_ECANCELED ? rc : 0;
}

static void took_lock(struct rec *r)
{
    CHECK(G.lock_owner < 0, "task %d got the lock task %d holds", r->idx, G.lock_owner);
    G.lock_owner = r->idx;
    r->holds_lock = true;
}

static int release_lock(struct rec *r)
{
    int waiters = G.lock_waiters;
    int rc = urt_lock_release(&G.lock);
    CHECK(rc == 0, "urt_lock_release by its holder: %d", rc);
    r->holds_lock = false;
    G.lock_owner = waiters ? -2 : -1;
    if (!waiters) CHECK(urt_lock_locked(&G.lock) == 0, "released, no waiter, still locked");
    return 0;
}

static int op_lock(struct rec *r)
{
    uint8_t s = rd(r);
    uint64_t t = tmo(r, rd(r));
    int op = s % 4;
    int rc = 0;
    if (op == 3) {
        if (r->holds_lock) return release_lock(r);
        if (urt_lock_locked(&G.lock) == 0) {
            rc = urt_lock_release(&G.lock);
            CHECK(rc == -EPERM, "urt_lock_release of a free lock: %d", rc);
        }
        return 0;
    }
    if (r->holds_lock) return 0; /* not reentrant: it would wait for itself */
    if (op == 2) {
        int held = urt_lock_locked(&G.lock);
        rc = urt_lock_try_acquire(&G.lock);
        CHECK(rc == 0 || rc == -EBUSY, "urt_lock_try_acquire: %d", rc);
        CHECK((rc == -EBUSY) == (held == 1), "urt_lock_try_acquire: %d with locked %d", rc, held);
        if (rc == 0) took_lock(r);
        return 0;
    }
    uint64_t t0 = urt_now();
    G.lock_waiters++;
    wait_begin(r, t);
    rc = t == NO ? urt_lock_acquire(&G.lock) : urt_lock_acquire_timeout(&G.lock, t);
    wait_end(r);
    G.lock_waiters--;
    if (rc == 0) {
        if (G.lock_owner == -2) G.lock_owner = -1;
        took_lock(r);
    } else {
        CHECK(rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && timed_out_ok(r, t, t0)),
              "urt_lock_acquire: %d", rc);
        /* A waiter that gave up while the lock was being handed over takes
         * nothing: whoever is next, or nobody, has it. */
        if (G.lock_owner == -2 && !G.lock_waiters && urt_lock_locked(&G.lock) == 0)
            G.lock_owner = -1;
    }
    return rc == URT_ECANCELED ? rc : 0;
}

static intptr_t job_fn(void *arg)
{
    struct job *j = arg;
    if (j->ns) {
        struct timespec ts = {0, (long)j->ns};
        nanosleep(&ts, NULL);
    }
    return j->ret;
}

static void job_discard(intptr_t result, void *arg)
{
    struct job *j = arg;
    if (j->magic != JOB_MAGIC) {
        fprintf(stderr, "fuzz_ops: discard got a job that is not one\n");
        abort();
    }
    if (result != URT_ECANCELED && result != URT_ETIMEDOUT && result != j->ret) {
        fprintf(stderr, "fuzz_ops: discard got %ld for a job returning %ld\n", (long)result,
                (long)j->ret);
        abort();
    }
    j->magic = 0;
    free(j);
}

static int op_thread(struct rec *r)
{
    uint8_t d = rd(r), v = rd(r);
    if (!G.threads) return 0;
    struct job *j = malloc(sizeof *j);
    if (!j) return 0;
    uint64_t ns = dur(d);
    *j = (struct job){.magic = JOB_MAGIC,
                      .ns = ns > 200000 ? 200000 : ns,
                      .ret = v < 0xf0 ? (intptr_t)v : ret_errs[v & 7]};
    intptr_t out = -12345;
    uint64_t t0 = urt_now();
    wait_begin(r, j->ns);
    int rc = urt_to_thread_discard(job_fn, j, job_discard, &out);
    wait_end(r);
    if (rc == URT_ECANCELED || rc == URT_ETIMEDOUT) {
        CHECK(rc == URT_ECANCELED || timed_out_ok(r, NO, t0), "urt_to_thread: URT_ETIMEDOUT");
        return rc; /* j is the discard's now */
    }
    if (rc == 0)
        CHECK(out == j->ret, "urt_to_thread: value %ld, job returned %ld", (long)out, (long)j->ret);
    else
        CHECK(rc == j->ret || rc == -EAGAIN || rc == -ENOMEM, "urt_to_thread: %d (job returns %ld)",
              rc, (long)j->ret);
    free(j);
    return 0;
}

static void op_introspect(struct rec *r)
{
    int s = rd(r) % 3;
    if (s == 0) {
        char buf[128];
        int n = urt_task_describe(urt_task_current(), buf, sizeof buf);
        CHECK(n > 0 && strlen(buf) == ((size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1),
              "urt_task_describe(self): %d", n);
        CHECK(strstr(buf, "running"), "urt_task_describe(self) says '%s'", buf);
    } else if (s == 1) {
        int rc = urt_task_dump(devnull);
        CHECK(rc == 0, "urt_task_dump: %d", rc);
    } else {
        urt_task hs[MAX_TASKS + 2];
        size_t n = urt_tasks(hs, MAX_TASKS + 2);
        size_t live = 1; /* the driver */
        for (int i = 0; i < G.ntasks; i++) live += !G.recs[i].finished;
        CHECK(n >= 1 && n <= live, "urt_tasks: %zu, at most %zu alive", n, live);
        bool me = false;
        for (size_t i = 0; i < n && i < MAX_TASKS + 2; i++) me |= hs[i].id == urt_task_current().id;
        CHECK(me, "urt_tasks does not list the caller");
    }
}

/* ---- the interpreter ---------------------------------------------------- */

static int step(struct rec *r)
{
    uint8_t op = rd(r) % 32;
    switch (op) {
    case 0x01: return op_sleep(r);
    case 0x02: op_spawn(r); return 0;
    case 0x03: return op_cancel(r);
    case 0x04: return op_await(r, 0);
    case 0x05: return op_gather(r);
    case 0x06: return op_await(r, 2);
    case 0x07: return op_await(r, 1);
    case 0x08: op_release(r); return 0;
    case 0x09: op_query(r); return 0;
    case 0x0a: op_group(r); return 0;
    case 0x0b: op_timeout(r); return 0;
    case 0x0c: op_resched(r); return 0;
    case 0x0d:
    case 0x0e: {
        uint8_t v = rd(r);
        r->ret_value = v < 0x80 ? 3 * (intptr_t)v : ret_errs[v & 7];
        return op == 0x0d ? STEP_RET : STEP_ABANDON;
    }
    case 0x0f: return op_send(r, false);
    case 0x10: return op_recv(r, false);
    case 0x11: return op_send(r, true);
    case 0x12: return op_recv(r, true);
    case 0x13: return op_shutdown(r);
    case 0x14: return op_close(r);
    case 0x15: return op_queue(r);
    case 0x16: op_qshutdown(r); return 0;
    case 0x17: return op_event(r);
    case 0x18: return op_lock(r);
    case 0x19: return op_thread(r);
    case 0x1a: return op_wait(r);
    case 0x1b: op_introspect(r); return 0;
    case 0x1c: op_readahead(r); return 0;
    case 0x1d: return op_poll(r);
    case 0x1e: return op_as_completed(r);
    default: return op_yield(r);
    }
}

/* Returns v, leaving r's blocks as an `async with` would (abandon: as a
 * task that just returns does), and the lock if it holds it. */
static intptr_t finish(struct rec *r, intptr_t v, bool abandon)
{
    while (r->depth) {
        if (exit_would_deadlock(r, &r->blk[r->depth - 1])) abandon = true;
        if (abandon || G.draining) {
            unregister(&r->blk[--r->depth]);
            continue;
        }
        exit_block(r);
    }
    if (r->holds_lock && !abandon && !G.draining) release_lock(r);
    return v;
}

static intptr_t run_program(struct rec *r)
{
    for (;;) {
        if (G.draining) return finish(r, default_value(r), true);
        if (G.driver_done) r->bounded = true;
        if (r->depth && r->pos >= r->blk[r->depth - 1].end) {
            if (exit_would_deadlock(r, &r->blk[r->depth - 1]))
                return finish(r, default_value(r), true);
            if (exit_block(r) == URT_ECANCELED) {
                if (!(r->flags & F_STUBBORN)) return finish(r, cancel_value(r), false);
                r->after_cancel = r->bounded = true;
            }
            continue;
        }
        if (r->pos >= r->end) break;
        if (r->bounded) {
            if (!r->counting) {
                r->counting = true;
                r->bounded_left = BOUNDED_OPS;
            }
            if (r->bounded_left-- <= 0) return finish(r, default_value(r), false);
        }
        if (++G.ops > MAX_OPS) return finish(r, default_value(r), false);
        size_t at = r->pos;
        int rc = step(r);
        if (tracing)
            fprintf(stderr, "fuzz_ops: %8.3f ms task %d op %02x at %zu: %d\n",
                    (double)(urt_now() % 1000000000) / 1e6, r->idx, G.in[at] % 32, at, rc);
        if (rc == STEP_RET) return finish(r, r->ret_value, false);
        if (rc == STEP_ABANDON) return finish(r, r->ret_value, true);
        if (rc == URT_ECANCELED) {
            if (!(r->flags & F_STUBBORN)) return finish(r, cancel_value(r), false);
            r->after_cancel = r->bounded = true;
        }
    }
    return finish(r, default_value(r), false);
}

/* ---- the driver ----------------------------------------------------------- */

#define DRIVER_VALUE 0x4242
/* How long the driver waits for the tasks: until none made progress for
 * IDLE_NS with no deadline pending (they wait on each other or on bytes
 * that will not come), and at most WAIT_MAX_NS. */
#define IDLE_NS (300 * URT_NS_PER_US)
#define WAIT_MAX_NS (300 * URT_NS_PER_MS)
/* Once cancelled while draining, every task ends at its next suspension
 * point; one that is still alive after this is stuck. */
#define STOP_MAX_NS (2 * URT_NS_PER_S)
#define DRAIN_NS (2 * URT_NS_PER_S)

static void spawn_root(void)
{
    struct rec *c = &G.recs[0];
    memset(c, 0, sizeof *c);
    c->flags = G.in_len > 2 ? G.in[2] & (uint8_t) ~(F_INGROUP | F_DETACHED | F_NAMED) : 0;
    c->pos = G.in_len > 3 ? 3 : G.in_len;
    c->end = G.in_len;
    c->group_id = c->wait_gid = -1;
    c->has_handle = true;
    c->spawn_seq = ++G.spawn_seq;
    urt_task_opts opts = {.name = "root", .stack_size = stack_tab[c->flags & F_STACK]};
    strcpy(c->name, "root");
    c->named = true;
    int rc = urt_task_create_opts(&c->handle, task_main, c, &opts);
    CHECK(rc == 0, "urt_task_create_opts(root): %d", rc);
    G.ntasks = 1;
}

static void small_buffers(int fd)
{
    /* TCP's window stalls for a persist timer (200 ms) below this. */
    int v = G.tcp ? 32768 : 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

static bool socket_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)) return false;
    return true;
}

/* A TCP pair over 127.0.0.1 made with urt's calls: the listener is closed
 * before the program starts. */
static bool tcp_pair(int fds[2])
{
    int lfd = urt_tcp_listen("127.0.0.1:0", 1);
    if (lfd < 0) return false;
    if (G.config & 2) small_buffers(lfd);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    char hp[64];
    bool ok = false;
    if (getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0) {
        snprintf(hp, sizeof hp, "127.0.0.1:%u", ntohs(sa.sin_port));
        int c = urt_tcp_connect_timeout(hp, URT_NS_PER_S);
        if (c >= 0) {
            int s = urt_accept_timeout(lfd, NULL, NULL, 0, URT_NS_PER_S);
            if (s >= 0) {
                fds[0] = c;
                fds[1] = s;
                ok = true;
            } else {
                urt_close(c);
            }
        }
    }
    CHECK(urt_close(lfd) == 0, "urt_close(listener)");
    return ok;
}

static intptr_t noop_job(void *arg)
{
    return (intptr_t)arg;
}

/* The tasks alive but the driver, as urt_tasks gives them. */
static size_t others(urt_task *hs, size_t cap)
{
    urt_task all[MAX_TASKS + 4], me = urt_task_current();
    size_t n = urt_tasks(all, MAX_TASKS + 4), k = 0;
    CHECK(n <= MAX_TASKS + 1, "urt_tasks: %zu tasks, more than were created", n);
    for (size_t i = 0; i < n && k < cap; i++)
        if (!urt_task_equal(all[i], me)) hs[k++] = all[i];
    return k;
}

/* Waits for every task but the driver, at most timeout_ns; returns how
 * many were alive when it started. */
static size_t wait_others(uint64_t timeout_ns)
{
    urt_task hs[MAX_TASKS + 4];
    size_t n = others(hs, MAX_TASKS + 4);
    if (!n) return 0;
    int rc = urt_wait(hs, n, URT_ALL_COMPLETED, timeout_ns, NULL);
    G.cur = NULL;
    CHECK(rc >= 0 && (size_t)rc <= n, "driver's urt_wait of %zu tasks: %d", n, rc);
    return n;
}

/* Lets the tasks run until they are all done, or stuck: none made
 * progress for IDLE_NS while none waited with a deadline. */
static void let_run(void)
{
    uint64_t start = urt_now(), seen = G.progress;
    while (wait_others(IDLE_NS)) {
        if (urt_now() - start >= WAIT_MAX_NS) break;
        if (G.progress == seen && G.timed_waiters == 0) break;
        seen = G.progress;
    }
}

/* Cancels every task until none is left: with G.draining each one ends
 * at its next suspension point. */
static void stop_all(void)
{
    G.draining = true;
    uint64_t start = urt_now();
    for (;;) {
        urt_task hs[MAX_TASKS + 4];
        size_t n = others(hs, MAX_TASKS + 4);
        if (!n) break;
        CHECK(urt_now() - start < STOP_MAX_NS, "%zu tasks still alive %d ms after being cancelled",
              n, (int)(STOP_MAX_NS / URT_NS_PER_MS));
        for (size_t i = 0; i < n; i++) {
            int rc = urt_task_cancel(hs[i]);
            CHECK(rc == 0 || rc == 1, "urt_task_cancel of a listed task: %d", rc);
        }
        wait_others(10 * URT_NS_PER_MS);
    }
}

/* Reads what end R still has to receive: with every task gone, it must
 * be exactly what the peer's sends reported, no byte less, none more. */
static void drain(int r)
{
    struct end *R = &G.ends[r], *S = &G.ends[r ^ 1];
    if (R->closing) return;
    check_poison(r);
    uint64_t start = urt_now();
    bool eof = false;
    while (R->received < S->sent) {
        uint64_t el = urt_now() - start;
        if (el >= DRAIN_NS) break;
        uint64_t want = S->sent - R->received;
        long rc =
            urt_recv_timeout(R->fd, recvbuf[r], want < BUF_MAX ? want : BUF_MAX, 0, DRAIN_NS - el);
        if (rc > 0) {
            got_bytes(r, recvbuf[r], (size_t)rc, false);
            continue;
        }
        if (rc == 0) {
            got_eof(r);
            eof = true;
        } else {
            CHECK(rc == URT_ETIMEDOUT || teardown_error(r, rc), "drain: recv: %ld", rc);
        }
        break;
    }
    if (!S->relax && !R->shut_rd && !R->reset)
        CHECK(R->received == S->sent,
              "end %d: %llu bytes received of the %llu end %d sent: bytes lost", r,
              (unsigned long long)R->received, (unsigned long long)S->sent, r ^ 1);
    if (!eof) {
        long rc = urt_recv(R->fd, recvbuf[r], BUF_MAX, MSG_DONTWAIT);
        if (rc > 0)
            got_bytes(r, recvbuf[r], (size_t)rc, false);
        else if (rc == 0)
            got_eof(r);
        else
            CHECK(rc == -EAGAIN || teardown_error(r, rc), "drain: last recv: %ld", rc);
    }
    CHECK(R->received <= S->sent, "end %d: more bytes than end %d sent", r, r ^ 1);
    poison(r, 0);
}

static intptr_t driver(void *arg)
{
    (void)arg;
    if (G.threads) {
        intptr_t v = 0;
        int rc = urt_to_thread(noop_job, (void *)7, &v);
        CHECK(rc == 0 && v == 7, "urt_to_thread(warm-up): %d", rc);
    }
    int fds[2] = {-1, -1};
    if (!G.tcp || !tcp_pair(fds)) {
        G.tcp = false;
        CHECK(socket_pair(fds), "socketpair: %s", strerror(errno));
        if (G.config & 2) {
            small_buffers(fds[0]);
            small_buffers(fds[1]);
        }
    } else if (G.config & 2) {
        small_buffers(fds[0]);
        small_buffers(fds[1]);
    }
    for (int e = 0; e < 2; e++) {
        G.ends[e].fd = fds[e];
        if (G.config & (4 << e)) {
            int rc = urt_readahead(fds[e], 1);
            CHECK(rc == 0 || rc == 1, "urt_readahead: %d", rc);
            G.ends[e].ra = rc == 1;
        }
    }
    spawn_root();
    let_run();
    if (G.config & 16) {
        G.driver_done = true; /* urt_run cancels what is left */
        return DRIVER_VALUE;
    }
    stop_all();
    drain(0);
    drain(1);
    for (int e = 0; e < 2; e++)
        if (!G.ends[e].closing) {
            close_end(e);
            CHECK(urt_close(G.ends[e].fd) == 0, "urt_close at the end");
            G.ends[e].closed = true;
        }
    return DRIVER_VALUE;
}

/* ---- libFuzzer's side ------------------------------------------------------ */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) abort();
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* Fibers switch stacks under ASan's fake stacks: keep them off. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_stack_use_after_return=0:detect_leaks=1";
}
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "print_stacktrace=1:halt_on_error=1";
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *t = getenv("FUZZ_OPS_TRACE");
    tracing = t && *t && strcmp(t, "0") != 0;
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&G, 0, sizeof G);
    G.in = data;
    G.in_len = size;
    G.config = size ? data[0] : 0;
    G.tcp = G.config & 1;
    G.threads = (G.config & 32) != 0;
    int kind = G.config >> 6;
    G.qkind = kind == 1 ? URT_QUEUE_LIFO : kind == 2 ? URT_QUEUE_PRIORITY : URT_QUEUE_FIFO;
    G.qmax = size > 1 ? data[1] % 5 : 0;
    G.lock_owner = -1;
    for (int i = 0; i < MAX_TASKS; i++) G.last_got[i] = 0;
    for (int e = 0; e < 2; e++) G.ends[e].fd = -1;
    int fds_before = count_fds();

    CHECK(urt_queue_init(&G.q, G.qkind, G.qmax) == 0, "urt_queue_init");
    urt_event_init(&G.ev[0]);
    urt_event_init(&G.ev[1]);
    urt_lock_init(&G.lock);

    intptr_t value = 0;
    int rc = urt_run(driver, NULL, &value);
    if (rc == -ENOSYS || rc == -EPERM) {
        fprintf(stderr, "fuzz_ops: io_uring is not available here (%s)\n", urt_strerror(rc));
        exit(1);
    }
    CHECK(rc == 0 && value == DRIVER_VALUE, "urt_run: %d (%s), value %ld", rc, urt_strerror(rc),
          (long)value);
    for (int i = 0; i < G.ntasks; i++)
        CHECK(!G.recs[i].started || G.recs[i].finished, "urt_run returned while task %d runs", i);
    for (int e = 0; e < 2; e++) {
        struct end *R = &G.ends[e], *S = &G.ends[e ^ 1];
        check_poison(e);
        CHECK(R->received <= S->sent, "end %d received %llu bytes of %llu sent", e,
              (unsigned long long)R->received, (unsigned long long)S->sent);
        /* A reset loses bytes: its error may have gone to a send, and
         * then the reads see an end of stream. */
        if (R->eof_checked && !S->relax)
            CHECK(R->eof_at == S->sent,
                  "end %d saw the end of stream after %llu bytes of %llu sent", e,
                  (unsigned long long)R->eof_at, (unsigned long long)S->sent);
        if (!R->closed && R->fd >= 0) close(R->fd);
    }
    rc = urt_queue_destroy(&G.q);
    CHECK(rc == 0, "urt_queue_destroy after the run: %d", rc);
    int fds_after = count_fds();
    CHECK(fds_after == fds_before, "%d fds open before the input, %d after", fds_before, fds_after);
    return 0;
}
