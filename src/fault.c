/*
 * Fault injection, for the faults build of the tests (-DURT_FAULTS; the
 * library users link has none of it).  Operations complete as the kernel
 * could have completed them, chosen by a seeded generator so that a failing
 * run can be replayed from its seed:
 *
 *   - an I/O op ends with an error its opcode can really give (the SQE is
 *     turned into a NOP, so the op did nothing, and the NOP's result is
 *     replaced); a close is the exception: Linux releases the fd even when
 *     close fails, so the close happens and only its result is replaced;
 *   - a read, write, send or recv moves fewer bytes (its length is cut
 *     before the kernel sees it, so the short count is the truth);
 *   - io_uring_enter fails with EBUSY, EAGAIN or EINTR before submitting;
 *   - the SQ is full when an SQE is wanted;
 *   - completions are left in the CQ, which with a small ring
 *     (URT_RING_ENTRIES) makes the kernel overflow it;
 *   - mmap of a new stack slab fails;
 *   - malloc, calloc and realloc fail.
 *
 * The generator and counters are per thread: a loop's own thread is the one
 * that runs the library's code, and the pool's workers never draw faults.
 */
#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#ifdef URT_FAULTS

#undef malloc
#undef calloc
#undef realloc

/* Results replaced when their CQE arrives, by user_data.  While the table
 * is full no op is made to fail. */
#define PENDING_MAX 256

/* One generator per site: the faults of the I/O ops then follow from the
 * seed and the order of the ops alone, however often the loop happened to
 * enter the kernel or reap in between. */
#define SITES 7
_Static_assert(URT__FAULT_ALL == (1u << SITES) - 1, "a generator per site of internal.h");

static __thread struct {
    bool armed;
    uint64_t rng[SITES];
    unsigned per_mille;
    unsigned sites;
    unsigned rolled_tail; /* SQEs before this one have had their roll */
    struct {
        uint64_t user_data;
        int res;
    } pending[PENDING_MAX];
    unsigned npending;
    bool trace;        /* URT_FAULT_TRACE set: each fault told on stderr */
    bool trace_stacks; /* URT_FAULT_TRACE=2: with the return addresses */
    struct urt__fault_counts counts;
} plan;

/* splitmix64: every seed, 0 included, gives a full-period stream. */
static uint64_t next_random(unsigned site)
{
    uint64_t z = (plan.rng[site] += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned site_index(unsigned site)
{
    return (unsigned)__builtin_ctz(site);
}

void urt__faults_arm(uint64_t seed, unsigned per_mille, unsigned sites)
{
    plan.armed = true;
    for (unsigned i = 0; i < SITES; i++) plan.rng[i] = seed * SITES + i;
    plan.per_mille = per_mille;
    plan.sites = sites;
    plan.npending = 0;
    plan.counts = (struct urt__fault_counts){0};
    const char *trace = getenv("URT_FAULT_TRACE");
    plan.trace = trace && *trace && *trace != '0';
    plan.trace_stacks = plan.trace && *trace == '2';
}

static void tell(const char *what, const struct io_uring_sqe *sqe, long value)
{
    if (!plan.trace) return;
    if (sqe)
        fprintf(stderr, "urt fault: %s, opcode %u fd %d len %u: %ld\n", what, sqe->opcode, sqe->fd,
                sqe->len, value);
    else
        fprintf(stderr, "urt fault: %s (%ld)\n", what, value);
    if (plan.trace_stacks) {
        void *frames[8];
        int n = backtrace(frames, 8);
        for (int i = 1; i < n; i++) fprintf(stderr, "    at %p\n", frames[i]);
    }
}

void urt__faults_disarm(void)
{
    plan.armed = false;
}

void urt__faults_counts(struct urt__fault_counts *out)
{
    *out = plan.counts;
}

bool urt__fault(unsigned site)
{
    if (!plan.armed || !(plan.sites & site)) return false;
    return next_random(site_index(site)) % 1000 < plan.per_mille;
}

static int pick(unsigned site, const int *errs, size_t n)
{
    return -errs[next_random(site_index(site)) % n];
}

#define PICK(site, ...) \
    pick(site, (const int[]){__VA_ARGS__}, sizeof((int[]){__VA_ARGS__}) / sizeof(int))
#define PICK_ERROR(...) PICK(URT__FAULT_ERROR, __VA_ARGS__)

/* An error this opcode can complete with, 0 for opcodes left alone: the
 * timers and cancels urt issues itself, whose results are not the kernel's
 * word on anything the caller asked. */
static int error_for(unsigned opcode)
{
    switch (opcode) {
    case IORING_OP_READ:
    case IORING_OP_READV:
        return PICK_ERROR(EIO, EINTR, ENOMEM, ECANCELED);
    case IORING_OP_WRITE:
    case IORING_OP_WRITEV:
        return PICK_ERROR(EIO, EINTR, ENOMEM, ECANCELED, ENOSPC);
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG:
        return PICK_ERROR(ECONNRESET, EINTR, EAGAIN, ENOMEM, ECANCELED);
    case IORING_OP_SEND:
    case IORING_OP_SENDMSG:
        return PICK_ERROR(ECONNRESET, EPIPE, EINTR, EAGAIN, ENOMEM, ECANCELED);
    case IORING_OP_ACCEPT:
        return PICK_ERROR(ECONNABORTED, EMFILE, ENOMEM, EINTR, EAGAIN);
    case IORING_OP_CONNECT:
        return PICK_ERROR(ECONNREFUSED, ETIMEDOUT, ENOMEM);
    case IORING_OP_OPENAT:
        return PICK_ERROR(EMFILE, ENOMEM, EINTR, EIO);
    case IORING_OP_CLOSE:
        return PICK_ERROR(EIO, EINTR);
    case IORING_OP_FSYNC:
        return PICK_ERROR(EIO);
    case IORING_OP_STATX:
    case IORING_OP_UNLINKAT:
    case IORING_OP_RENAMEAT:
    case IORING_OP_MKDIRAT:
        return PICK_ERROR(EIO, ENOMEM);
    case IORING_OP_POLL_ADD:
    case IORING_OP_SHUTDOWN:
        return PICK_ERROR(ENOMEM);
    case IORING_OP_SOCKET:
        return PICK_ERROR(EMFILE, ENOMEM);
    default:
        return 0;
    }
}

static bool can_be_short(const struct io_uring_sqe *sqe)
{
    if (sqe->flags & IOSQE_BUFFER_SELECT) return false; /* len is the buffer's */
    switch (sqe->opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_RECV:
    case IORING_OP_SEND:
    case IORING_OP_READV: /* len counts iovecs: short by whole vectors */
    case IORING_OP_WRITEV:
        return sqe->len > 1;
    default:
        return false;
    }
}

/* The background reads of the loop's own machinery (the pool's eventfd,
 * the dump's signalfd) are not the caller's I/O; the multishot accepts and
 * recvs that serve callers are. */
static bool callers_op(const struct io_uring_sqe *sqe)
{
    uint64_t data = sqe->user_data;
    if (data == URT__UDATA_IGNORE || data & URT__UDATA_LINK) return false;
    if (!(data & URT__UDATA_HANDLER)) return true;
    return sqe->opcode == IORING_OP_ACCEPT || sqe->opcode == IORING_OP_RECV;
}

static void remember(uint64_t user_data, int res)
{
    plan.pending[plan.npending].user_data = user_data;
    plan.pending[plan.npending].res = res;
    plan.npending++;
}

static void inject_error(struct io_uring_sqe *sqe, int err)
{
    uint64_t data = sqe->user_data;
    tell("error", sqe, err);
    if (sqe->opcode != IORING_OP_CLOSE) {
        /* Links stay: a linked timeout behind it then ends as it would
         * behind an op that completed at once. */
        unsigned char keep = sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_IO_DRAIN);
        io_uring_prep_nop(sqe);
        sqe->flags = keep;
        sqe->user_data = data;
    }
    remember(data, err);
    plan.counts.errors++;
}

void urt__faults_before_submit(struct io_uring *ring)
{
    if (!plan.armed) return;
    struct io_uring_sq *sq = &ring->sq;
    /* Entries already rolled but not yet submitted (an enter that failed)
     * keep their first roll. */
    unsigned from = sq->sqe_head;
    if ((int)(plan.rolled_tail - from) > 0 && (int)(plan.rolled_tail - sq->sqe_tail) <= 0)
        from = plan.rolled_tail;
    for (unsigned i = from; i != sq->sqe_tail; i++) {
        struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
        if (!callers_op(sqe) || sqe->flags & IOSQE_CQE_SKIP_SUCCESS) continue;
        int err;
        if (plan.npending < PENDING_MAX && urt__fault(URT__FAULT_ERROR) &&
            (err = error_for(sqe->opcode))) {
            inject_error(sqe, err);
        } else if (can_be_short(sqe) && urt__fault(URT__FAULT_SHORT)) {
            unsigned len = 1 + (unsigned)(next_random(site_index(URT__FAULT_SHORT)) % (sqe->len - 1));
            tell("short", sqe, len);
            sqe->len = len;
            plan.counts.short_transfers++;
        }
    }
    plan.rolled_tail = sq->sqe_tail;
}

int urt__faults_enter(void)
{
    if (!urt__fault(URT__FAULT_ENTER)) return 0;
    plan.counts.enter_errors++;
    int err = PICK(URT__FAULT_ENTER, EBUSY, EAGAIN, EINTR);
    tell("io_uring_enter", NULL, err);
    return err;
}

bool urt__faults_sq_full(const struct io_uring *ring)
{
    /* A real SQ cannot be full inside a linked pair: urt__sq_reserve made
     * room for both, and a flush between them would submit half a link. */
    const struct io_uring_sq *sq = &ring->sq;
    if (sq->sqe_tail != sq->sqe_head &&
        sq->sqes[(sq->sqe_tail - 1) & sq->ring_mask].flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK))
        return false;
    if (!urt__fault(URT__FAULT_SQ_FULL)) return false;
    plan.counts.sq_full++;
    tell("SQ full", NULL, sq->sqe_tail - sq->sqe_head);
    return true;
}

bool urt__faults_stop_reap(void)
{
    if (!urt__fault(URT__FAULT_REAP)) return false;
    plan.counts.reaps_cut++;
    tell("reap cut", NULL, 0);
    return true;
}

bool urt__faults_stack_map(void)
{
    if (!urt__fault(URT__FAULT_STACK)) return false;
    plan.counts.stack_maps++;
    tell("stack mmap", NULL, -ENOMEM);
    return true;
}

void urt__faults_on_cqe(struct io_uring_cqe *cqe)
{
    for (unsigned i = 0; i < plan.npending; i++) {
        if (plan.pending[i].user_data != cqe->user_data) continue;
        cqe->res = plan.pending[i].res;
        cqe->flags &= ~(IORING_CQE_F_MORE | IORING_CQE_F_BUFFER);
        plan.pending[i] = plan.pending[--plan.npending];
        return;
    }
}

static bool alloc_fails(void)
{
    if (!urt__fault(URT__FAULT_ALLOC)) return false;
    plan.counts.allocs++;
    tell("allocation", NULL, -ENOMEM);
    errno = ENOMEM;
    return true;
}

void *urt__fault_malloc(size_t size)
{
    return alloc_fails() ? NULL : malloc(size);
}

void *urt__fault_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n, size);
}

void *urt__fault_realloc(void *p, size_t size)
{
    return alloc_fails() ? NULL : realloc(p, size);
}

#else

/* ISO C wants something in every translation unit. */
typedef int urt__no_faults;

#endif
