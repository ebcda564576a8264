/*
 * Internals shared by the runtime's files.  Nothing here is part of the API.
 * Non-static functions are named urt__* so that the static library exposes
 * only urt_ names; the shared library exports only the public ones.
 */
#ifndef URT_INTERNAL_H
#define URT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>
#include <signal.h>
#include <sys/uio.h>

#include "urt.h"

/* The struct that holds member at p: state that an op or wait-queue entry
 * is embedded in, found from the pointer the kernel or a waker hands back. */
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* valgrind's client requests, when its headers are there (valgrind-dev is
 * not needed to build): stacks registered as such, buffers the kernel
 * filled marked defined, and the few places that must know they run under
 * it.  Without the headers they cost nothing. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define URT_MEMCHECK 1
#endif
#endif
#ifndef URT_MEMCHECK
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define VALGRIND_MAKE_MEM_DEFINED(p, len) ((void)(p), (void)(len))
#endif

#if defined(__SANITIZE_THREAD__)
#define URT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URT_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define URT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URT_ASAN 1
#endif
#endif

/* ---- fault injection (fault.c; only with -DURT_FAULTS) ------------------
 * The faults build makes chosen operations complete as the kernel could have
 * completed them, drawn from a seeded generator (tests/test_fault.c replays
 * a seed).  Without URT_FAULTS every hook is a constant the compiler drops. */
enum {
    URT__FAULT_ERROR = 1u << 0,    /* an I/O op ends with an error of its opcode */
    URT__FAULT_SHORT = 1u << 1,    /* a read, write, send or recv moves fewer bytes */
    URT__FAULT_ENTER = 1u << 2,    /* io_uring_enter: EBUSY, EAGAIN or EINTR */
    URT__FAULT_SQ_FULL = 1u << 3,  /* no SQE until the SQ is flushed */
    URT__FAULT_REAP = 1u << 4,     /* CQEs left in the ring (overflow, small rings) */
    URT__FAULT_STACK = 1u << 5,    /* mmap of a stack slab fails */
    URT__FAULT_ALLOC = 1u << 6,    /* malloc, calloc, realloc fail */
    URT__FAULT_ALL = (1u << 7) - 1,
};

struct urt__fault_counts {
    uint64_t errors, short_transfers, enter_errors, sq_full, reaps_cut, stack_maps, allocs;
};

#ifdef URT_FAULTS
#include <stdlib.h> /* before the macros: a later include is then a no-op */
/* Faults at each armed site with probability per_mille / 1000, from the
 * calling thread's next urt_run on, until disarmed. */
void urt__faults_arm(uint64_t seed, unsigned per_mille, unsigned sites);
void urt__faults_disarm(void);
void urt__faults_counts(struct urt__fault_counts *out);
bool urt__fault(unsigned site);
void urt__faults_before_submit(struct io_uring *ring);
void urt__faults_on_cqe(struct io_uring_cqe *cqe);
int urt__faults_enter(void); /* 0, or the error io_uring_enter is to fail with */
bool urt__faults_sq_full(const struct io_uring *ring);
bool urt__faults_stop_reap(void);
bool urt__faults_stack_map(void);
void *urt__fault_malloc(size_t size);
void *urt__fault_calloc(size_t n, size_t size);
void *urt__fault_realloc(void *p, size_t size);
#define malloc(size) urt__fault_malloc(size)
#define calloc(n, size) urt__fault_calloc(n, size)
#define realloc(p, size) urt__fault_realloc(p, size)
#else
#define urt__faults_before_submit(ring) ((void)(ring))
#define urt__faults_on_cqe(cqe) ((void)(cqe))
#define urt__faults_enter() 0
#define urt__faults_sq_full(ring) ((void)(ring), false)
#define urt__faults_stop_reap() false
#define urt__faults_stack_map() false
#endif

/* ---- kernel features (probe.c) ----------------------------------------- */

enum {
    URT__F_COOP_TASKRUN = 1u << 0,
    URT__F_SINGLE_ISSUER = 1u << 1,
    URT__F_DEFER_TASKRUN = 1u << 2,
    URT__F_REGISTERED_RING = 1u << 3,
    URT__F_CANCEL_FD = 1u << 5,
    URT__F_GUARD_INSTALL = 1u << 6,
    URT__F_FAST_POLL = 1u << 7,
    URT__F_ACCEPT_MULTISHOT = 1u << 8,
    URT__F_RECV_MULTISHOT = 1u << 9, /* with a provided-buffer ring */
    URT__F_GUARD_BATCH = 1u << 10,    /* guards installed by process_madvise */
    URT__F_EXT_ARG = 1u << 11,        /* io_uring_enter waits with a timeout */
};

struct urt__features {
    uint64_t ops[2];       /* opcodes urt may use: supported and not masked */
    unsigned flags;        /* URT__F_*: allowed, then what is really in use */
    unsigned version_mask; /* URT_KERNEL as major*100+minor, or 0 */
    /* URT_TEST_NOWAIT: the first try of every read, write, send and recv
     * that may wait asks not to (RWF_NOWAIT, MSG_DONTWAIT), so that the
     * -EAGAIN a kernel gives for an O_NONBLOCK fd, and urt's wait for
     * readiness and retry, happen on kernels that would have waited. */
    bool test_nowait;
};

/* What the mask allows, before the ring exists. */
void urt__features_allowed(struct urt__features *f);
/* Adds the opcodes the ring's kernel supports and the mask allows. */
void urt__features_probe(struct urt__features *f, struct io_uring *ring);

/* ---- fibers (fiber.c, switch_x86_64.S) -------------------------------- */

/* A saved execution context: everything else lives on its stack. */
struct urt__ctx {
    void *sp;
};

/* Saves callee-saved registers and the stack pointer into from, loads to's. */
void urt__ctx_switch(struct urt__ctx *from, struct urt__ctx *to);
/* First instruction a new fiber runs: calls r13(r12). */
void urt__fiber_start(void);

/* A fiber stack.  The descriptor sits in the top bytes of the stack itself,
 * so a stack costs no allocation besides its slab. */
struct urt__stack {
    struct urt__stack *next_free;
    char *base;         /* lowest usable byte; the guard zone is just below */
    size_t size;        /* usable bytes, descriptor included */
    unsigned valgrind_id;
    unsigned char size_class;
};

/* Guard zone below each stack: big enough that a function with a few KiB of
 * locals cannot step over it into the neighbouring stack. */
#define URT_GUARD_SIZE (16u * 1024u)
#define URT_STACK_CLASSES 13 /* 16 KiB .. 64 MiB, powers of two */
/* Guards installed per process_madvise call (fiber.c). */
#define URT__GUARD_BATCH 64u

struct urt__stack_pool {
    struct urt__stack *free;
    unsigned next_slab_count;
};

struct urt__slab {
    struct urt__slab *next;
    char *mem;
    size_t len;
    unsigned first_valgrind_id;
    unsigned stacks; /* carved from it, each registered with valgrind */
    size_t stride;
};

struct urt_loop;
int urt__stack_class(size_t requested, unsigned *class_out);
int urt__stack_alloc(struct urt_loop *loop, unsigned size_class, struct urt__stack **out);
void urt__stack_free(struct urt_loop *loop, struct urt__stack *stack);
void urt__stacks_destroy(struct urt_loop *loop);
/* Prepares ctx so that switching to it runs entry(arg) on stack. */
void urt__ctx_init(struct urt__ctx *ctx, struct urt__stack *stack,
                   void (*entry)(void *), void *arg);
int urt__overflow_guard_start(struct urt_loop *loop);
void urt__overflow_guard_stop(struct urt_loop *loop);

/* ---- tasks (task.c) ---------------------------------------------------- */

enum urt__task_state {
    URT__NEW,     /* created, never run: in the ready queue */
    URT__READY,   /* in the ready queue */
    URT__RUNNING,
    URT__WAITING, /* suspended on what `wait` says */
    URT__DONE,
};

enum urt__wait {
    URT__WAIT_NONE,
    URT__WAIT_OP,     /* an SQE: waiting_on.op */
    URT__WAIT_TASK,   /* urt_task_await: waiting_on.task */
    URT__WAIT_GATHER, /* urt_gather: waiting_on.gather */
    URT__WAIT_DRAIN,  /* urt_close: the fd's ops to end; not cancellable */
    URT__WAIT_PARKED, /* on a wait queue (waitq.c): waiting_on.parked */
    URT__WAIT_SHIELD, /* urt_shield: waiting_on.waiter, whose target a
                       * cancellation does not reach */
    URT__WAIT_SET,    /* urt_wait, as_completed: waiting_on.gather; a
                       * cancellation ends the wait, not the tasks */
    URT__WAIT_GROUP,  /* urt_group_exit: waiting_on.group's children */
};

/* What a pending (or passed-on) cancellation of a task is: a request from
 * another task (urt_task_cancel, the loop's end), or the cut of one of the
 * task's own scopes: a timeout scope's deadline, or a task group that a
 * child's failure aborts.  A request wins over a cut. */
enum urt__cancel_kind {
    URT__CANCEL_NONE,
    URT__CANCEL_REQUEST, /* delivered as URT_ECANCELED */
    URT__CANCEL_SCOPE,   /* cut by cancel_scope: URT_ETIMEDOUT for a timeout
                          * scope, URT_ECANCELED for a group */
};

struct urt__group;

/* A timeout scope (timeout.c), or the scope of a task group in its owner
 * (group.c, with group set): urt_timeout's handle names one.  Nodes are
 * the loop's, recycled, never freed before the loop ends, so a stale handle
 * reaches a node whose id no longer matches, never freed memory. */
struct urt__scope {
    uint64_t id;       /* the handle's id while entered; 0 when free */
    uint64_t deadline; /* absolute; UINT64_MAX: none (not in the heap) */
    uint64_t seq;      /* entry order: of two equal deadlines the outer fires */
    struct urt_loop *loop;
    struct urt__task *task;
    struct urt__scope *outer; /* the task's enclosing scope; free-list link */
    size_t heap_at;           /* 1-based index in loop->deadlines, 0: not in it */
    unsigned depth;           /* 1 for a task's outermost scope */
    struct urt__group *group; /* a group's scope: cut when it aborts */
    bool fired;               /* its deadline passed while it was entered */
    bool delivered;           /* ... and cut off a wait inside it */
    bool cancelled;           /* a cancellation request reached code inside it */
    unsigned requests_at_entry; /* the task's cancel_requests when entered */
    /* An enclosing scope's cut reached code inside it: URT_ETIMEDOUT for a
     * timeout's, URT_ECANCELED for an aborting group's; 0: none.  Set on
     * each scope it went through, so not passed outward at the leave. */
    int cut_through;
};

struct urt__op;
struct urt__gather;
struct urt__waiter;
struct urt__parked;
struct urt__listener;
struct urt__stream;
struct urt__bufs;


struct urt__task {
    struct urt__ctx ctx;
    struct urt__task *next_ready;
    urt_fn fn;
    void *arg;
    intptr_t result;
    struct urt__stack *stack; /* from its first run until it returns */
    /* Tasks and gathers waiting for this one, in the order they started. */
    struct urt__waiter *waiters_head, *waiters_tail;
    /* Ended with its group not told yet: the group's node, whose done
     * callback is due in the next pass (the task is in the ready queue for
     * it, with wake_deferred set; group.c). */
    struct urt__waiter *group_callback;
    union {
        struct urt__op *op;
        struct urt__task *task;
        struct urt__gather *gather;
        struct urt__parked *parked;
        struct urt__waiter *waiter;
        struct urt__group *group;
    } waiting_on;
    struct urt__scope *scopes;       /* innermost scope entered (timeout, group) */
    struct urt__scope *cancel_scope; /* the scope whose cut cancel_kind is */
    uint64_t number;     /* N of the default name "Task-N" */
    uint64_t visit_mark; /* cycle search epoch */
    uint64_t finish_seq; /* order of finishing, for as_completed */
    /* Cancellations asked of it and not taken back (Task.cancelling()):
     * each request, each deadline that fires on it, each one passed on to
     * it; a scope's leave takes its own deadline's back. */
    unsigned cancel_requests;
    uint32_t slot;
    unsigned char stack_class; /* of the stack it gets when it first runs */
    unsigned char state;
    unsigned char wait;
    /* A cancellation that could not be handed to what the task waits on
     * (it was running or ready): delivered at its next suspension point. */
    bool cancel_pending;
    /* Woken through a done callback, as asyncio wakes a gather's awaiter:
     * one more trip through the ready queue before it runs. */
    bool wake_deferred;
    unsigned char cancel_kind; /* enum urt__cancel_kind of the pending one */
    bool released;
    bool close_cancelled; /* cancelled by the loop's shutdown */
    bool has_name;        /* else named "Task-<number>" when asked */
#ifdef URT_ASAN
    void *asan_fake_stack;
#endif
#ifdef URT_TSAN
    void *tsan_fiber; /* ThreadSanitizer's context for the task (fiber.c) */
#endif
    char name[URT_TASK_NAME_MAX];
};

/* One waiter on a task: an awaiting task, or one child of a gather.  Lives
 * on the waiter's stack (await) or in the gather's array. */
struct urt__waiter {
    struct urt__waiter *prev, *next;
    struct urt__task *target;     /* the task waited for */
    struct urt__task *task;       /* awaiting task (await) */
    struct urt__gather *gather;   /* or the gather it belongs to */
    struct urt__group *group;     /* or the task group */
    size_t index;                 /* position in the gather */
    intptr_t result;              /* copied at completion: the awaited task
                                   * may be freed right after */
    bool linked, done;
};

/* A gather, or (URT__SET_WAIT in flags) a urt_wait: which wakes the
 * waiting task when its condition holds (wait.c). */
#define URT__SET_WAIT 0x100u
struct urt__gather {
    struct urt__task *task;
    struct urt__waiter *nodes;
    size_t n;
    size_t remaining;
    unsigned flags;
    int return_when; /* urt_wait's URT_*_COMPLETED / URT_FIRST_EXCEPTION */
    int first_error;
    bool cancel_requested;
    bool woken;
};

urt_task urt__task_handle(struct urt_loop *loop, struct urt__task *t);
void urt__task_request_cancel(struct urt_loop *loop, struct urt__task *t);
/* Cuts t for its scope s (a deadline, a group's abort): the same walk as a
 * request, but t itself will see the scope's code. */
void urt__task_cut(struct urt_loop *loop, struct urt__task *t, struct urt__scope *s);
/* Takes the task's pending cancellation: the code its suspension point
 * returns (URT_ECANCELED, or URT_ETIMEDOUT for a scope's deadline, which
 * the scope then reports at its exit). */
/* The scopes a cut by self->cancel_scope went through, inside it: a task
 * group among them cancels its children at its exit (asyncio's TaskGroup
 * sees the CancelledError pass). */
static inline void urt__mark_cut_through(struct urt__task *self, int code)
{
    for (struct urt__scope *s = self->scopes; s && s != self->cancel_scope; s = s->outer)
        s->cut_through = code;
}

static inline int urt__cancel_take(struct urt__task *self)
{
    self->cancel_pending = false;
    int code = URT_ECANCELED;
    if (self->cancel_kind == URT__CANCEL_SCOPE) {
        if (!self->cancel_scope->group) code = URT_ETIMEDOUT;
        self->cancel_scope->delivered = true;
        urt__mark_cut_through(self, code);
    } else if (self->scopes) {
        self->scopes->cancelled = true; /* for a group's exit */
    }
    self->cancel_kind = URT__CANCEL_NONE;
    self->cancel_scope = NULL;
    return code;
}
/* The code a wait that passed its cancellation on (await, gather) returns
 * when what it waited for ended with URT_ECANCELED (URT_ETIMEDOUT for a
 * timeout scope's cut), and forgets the kind. */
int urt__cancel_passed(struct urt__task *self, int result);
/* Cancels the running task t again, without counting a new request, for
 * its next suspension point: a scope's cut if a deadline of its scopes has
 * fired, else a request. */
void urt__task_recancel(struct urt__task *t);
/* Scopes (timeout.c): entered by the current task, with an absolute
 * deadline (UINT64_MAX: none), and left, dropping a cut still pending. */
struct urt__scope *urt__scope_enter(struct urt_loop *loop, uint64_t deadline, int *err);
void urt__scope_leave(struct urt_loop *loop, struct urt__scope *s);
void urt__scope_free(struct urt_loop *loop, struct urt__scope *s);
void urt__scope_drop_cut(struct urt__task *t, struct urt__scope *s);
/* Timeout scopes at the task's end, and the loop's deadlines (timeout.c). */
void urt__scopes_release(struct urt_loop *loop, struct urt__task *t);
void urt__deadlines_fire(struct urt_loop *loop);
void urt__scopes_destroy(struct urt_loop *loop);
void urt__waiter_link(struct urt__task *target, struct urt__waiter *w);
void urt__waiter_unlink(struct urt__task *target, struct urt__waiter *w);
bool urt__would_deadlock(struct urt_loop *loop, struct urt__task *waiter,
                         struct urt__task *target);
void urt__gather_child_done(struct urt_loop *loop, struct urt__waiter *w);
/* Task groups (group.c): a child ended (its done callback); the group
 * aborts (its children are cancelled, the owner's code is cut); the owner
 * ended inside its group. */
void urt__group_child_done(struct urt_loop *loop, struct urt__waiter *w);
/* The done callback of an ended task, due this pass (pick_next). */
void urt__task_run_callback(struct urt_loop *loop, struct urt__task *t);
void urt__group_cancel(struct urt_loop *loop, struct urt__group *g);
void urt__group_abandon(struct urt_loop *loop, struct urt__group *g);
int urt__group_push_children(struct urt_loop *loop, struct urt__group *g, size_t *len);
/* Whether a finished task's result makes urt_wait's FIRST_EXCEPTION hold:
 * an error other than a cancellation, as asyncio counts exceptions. */
static inline bool urt__is_exception(intptr_t result)
{
    return URT_IS_ERROR(result) && result != URT_ECANCELED;
}
/* Whether urt_wait's condition holds for a set with ndone tasks done and
 * remaining still running; exception: one of the done ones failed. */
static inline bool urt__wait_holds(int return_when, size_t ndone, size_t remaining,
                                   bool exception)
{
    if (remaining == 0) return true;
    if (return_when == URT_FIRST_COMPLETED) return ndone > 0;
    if (return_when == URT_FIRST_EXCEPTION) return exception;
    return false;
}
/* Pushes the gather's unfinished children on loop->search (cycle search,
 * cancellation). */
int urt__gather_push_children(struct urt_loop *loop, struct urt__gather *g, size_t *len);
int urt__search_push(struct urt_loop *loop, size_t *len, struct urt__task *t);
void urt__tasks_destroy(struct urt_loop *loop);
void urt__task_entry(void *arg);
/* Gives a task that is about to run for the first time its stack. */
int urt__task_start(struct urt_loop *loop, struct urt__task *t);
int urt__task_spawn(struct urt_loop *loop, urt_task *handle, urt_fn fn, void *arg,
                    const urt_task_opts *opts);
void urt__task_finish(struct urt_loop *loop, struct urt__task *t, intptr_t result);
/* The outcome convention of await, gather and result: 0 and *value, or the
 * error. */
static inline int urt__outcome(intptr_t result, intptr_t *value)
{
    if (URT_IS_ERROR(result)) return (int)result;
    if (value) *value = result;
    return 0;
}

/* ---- the loop (loop.c) ------------------------------------------------- */

struct urt_loop;
struct urt__op;
typedef void (*urt__cqe_fn)(struct urt_loop *loop, struct urt__op *op,
                            const struct io_uring_cqe *cqe);

/* An SQE a task waits on, and its linked timeout if it has one.  user_data
 * points here; the low bits say which of the two CQEs it is.  The task
 * resumes only when every CQE of the op is in: until then the kernel may
 * still use the op, its timespec and the caller's buffer.
 *
 * An op no task waits on (a listener's multishot accept) has a handler
 * instead, which gets each of its CQEs. */
struct urt__op {
    struct urt__task *task; /* made ready by the last CQE, if not NULL */
    urt__cqe_fn handler;
    int res;
    int link_res;          /* the linked timeout's result: -ETIME if it fired */
    unsigned char pending; /* CQEs still to come */
    bool done;
    bool cancel_sent;
    bool is_timeout;       /* cancelled with TIMEOUT_REMOVE, not ASYNC_CANCEL */
    bool no_cancel;        /* close: finishes by itself, promptly */
    bool fd_closed;        /* cancelled by urt_close of its fd */
    bool retry_cancel;     /* in loop->cancel_retry: its cancel may have missed */
    bool takes_bytes;      /* a read or recv: read-ahead must not start under it */
    int fd;                /* in the fd table while pending, or -1 */
    struct urt__op *fd_prev, *fd_next;
    struct urt__op *retry_prev, *retry_next;
    struct __kernel_timespec ts;
};

/* user_data of SQEs whose completion nobody waits for (cancel requests).
 * Odd, so never an op's address; liburing itself reserves -1. */
#define URT__UDATA_IGNORE 1ull
/* Low bit set on an op's address: the CQE of its linked timeout. */
#define URT__UDATA_LINK 2ull
/* Set on the address of an op with a handler. */
#define URT__UDATA_HANDLER 4ull

/* Ops in flight on one fd, so that closing it can cancel them first. */
struct urt__fd {
    struct urt__op *ops;
    struct urt__task *closer; /* waiting in urt_close for ops to end */
    bool closing;             /* urt_close under way: no new op may start */
    struct urt__listener *listener; /* urt_accept's state (accept.c), or NULL */
    struct urt__stream *stream;     /* read-ahead state (readahead.c), or NULL */
};

struct urt__slot {
    struct urt__task *task; /* NULL when free */
    uint64_t serial;        /* id of the one valid handle to it */
    uint32_t next_free;
};

struct urt_loop {
    struct io_uring ring;
    unsigned ring_features; /* IORING_FEAT_* the kernel reported */
    struct urt__ctx main_ctx;  /* the thread's own stack: blocks in the ring */
    struct urt__task *current; /* NULL while main_ctx runs */
    struct urt__task *ready_head, *ready_tail;
    size_t ready_len;
    size_t turn_left; /* tasks of this turn still to run before polling */
    size_t live;      /* tasks created and not finished */
    size_t inflight;  /* SQEs whose CQE has not been reaped */

    struct urt__task *main_task;
    intptr_t main_result;
    bool main_done;
    bool closing;
    size_t close_pending; /* close-cancelled tasks not finished yet */

    struct urt__slot *slots;
    uint32_t nslots, slots_cap, free_slot; /* free_slot: 1-based, 0 = none */
    uint64_t serial_next, serial_end; /* block of handle ids this loop owns */

    struct urt__task *task_free; /* recycled control blocks */
    uint64_t task_count;
    uint64_t finish_count;
    uint64_t visit_epoch;
    struct urt__task **search; /* scratch for the cycle search */
    size_t search_cap;

    struct urt__fd *fds;
    size_t fds_cap;
    size_t fds_limit; /* RLIMIT_NOFILE as last read: no fd is above it */
    struct urt__listener *listeners; /* every one with state (accept.c) */
    struct urt__stream *streams;     /* every fd with read-ahead state */
    struct urt__bufs *bufs;          /* their buffer ring, once made */
    uint64_t turns;                  /* turn boundaries passed */
    struct urt__features features;

    struct urt__stack_pool pools[URT_STACK_CLASSES];
    /* process_madvise's ranges: here, not on the stack of the task whose
     * first run needed a new slab, which may be a 16 KiB one. */
    struct iovec guard_iov[URT__GUARD_BATCH];
    struct urt__slab *slabs;
    size_t page_size;

    /* SQEs in flight that no task waits for and that stay until the loop
     * ends (the thread pool's eventfd read, the dump signal's read): they
     * do not keep the loop alive, and drive() does not count them when it
     * asks whether anything in the kernel can still wake a task. */
    size_t background;
    /* Tasks waiting on something outside the ring that will wake them by
     * itself (a job on a worker thread): while any are, the loop is not
     * deadlocked even with nothing in the kernel. */
    size_t external_waits;
    /* Timeout scopes with a deadline, a min-heap on (deadline, seq), and
     * the recycled scope nodes (timeout.c).  The loop never blocks past
     * deadlines[0]. */
    struct urt__scope **deadlines;
    size_t deadlines_len, deadlines_cap;
    struct urt__scope *scope_free;
    uint64_t scope_seq;
    /* The timer that wakes a blocked loop for deadlines[0] on kernels whose
     * io_uring_enter takes no timeout (before 5.11): its deadline, and
     * whether it is in flight (loop.c). */
    uint64_t wake_deadline;
    struct urt__op *wake_timer;
    /* Ops asked to cancel that have not ended, and the timer that asks
     * again, at a delay that doubles up to a limit (loop.c). */
    struct urt__op *cancel_retry;
    struct urt__op retry_timer;
    bool retry_armed;
    unsigned retry_delay_ms;
    struct urt__pool *pool; /* worker threads for urt_to_thread (thread.c) */
    struct urt__dump *dump; /* urt_task_dump_on_signal's state (introspect.c) */

    sigset_t saved_sigmask; /* the thread's, restored when the run ends */
    void *altstack;     /* ours, if the thread had none */
    size_t altstack_size;
#ifdef URT_ASAN
    const void *main_stack_bottom;
    size_t main_stack_size;
    void *main_fake_stack;
#endif
};

extern __thread struct urt_loop *urt__loop;

/* The task a handle names, or NULL if the handle is not valid.  Every call
 * that takes a handle starts here: inline, it is a bounds check and one
 * compare. */
static inline struct urt__task *urt__task_lookup(struct urt_loop *loop, urt_task handle)
{
    if (unlikely(handle.slot - 1 >= loop->nslots)) return NULL; /* slot 0 wraps */
    struct urt__slot *s = &loop->slots[handle.slot - 1];
    if (unlikely(!s->task || s->serial != handle.id)) return NULL;
    return s->task;
}

/* The running loop and task, or NULL when called outside a task. */
static inline struct urt_loop *urt__running(void)
{
    struct urt_loop *loop = urt__loop;
    return loop && loop->current ? loop : NULL;
}

/* The ready queue without a change of state: an ended task goes in for its
 * group's done callback (urt__task_finish). */
static inline void urt__ready_append(struct urt_loop *loop, struct urt__task *t)
{
    t->next_ready = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next_ready = t;
    else
        loop->ready_head = t;
    loop->ready_tail = t;
    loop->ready_len++;
}

/* Puts t at the back of the ready queue (FIFO: SEMANTICS 1.3). */
static inline void urt__make_ready(struct urt_loop *loop, struct urt__task *t)
{
    if (t->state != URT__NEW) t->state = URT__READY;
    urt__ready_append(loop, t);
}

/* Whether t's wait can be part of a cycle.  An owner woken in its group's
 * exit still counts as waiting there until it runs: a child spawned
 * meanwhile sends it back to waiting (group.c). */
static inline bool urt__waits_on_others(const struct urt__task *t)
{
    return t->state == URT__WAITING || (t->state == URT__READY && t->wait == URT__WAIT_GROUP);
}

/* Makes t ready the way an asyncio future's done callback does: the
 * callback runs in the next pass of the loop and only then schedules t,
 * so t runs one pass after it would with urt__make_ready. */
static inline void urt__make_ready_deferred(struct urt_loop *loop, struct urt__task *t)
{
    t->wake_deferred = true;
    urt__make_ready(loop, t);
}
/* Suspends the current task (whose state the caller has set) and runs the
 * next one; returns when the task is resumed. */
void urt__suspend(struct urt_loop *loop);
/* Called on a finished task's fiber with the stack it ran on: returns the
 * next task, which now owns that stack and is to start on it at once, or
 * switches away for good. */
struct urt__task *urt__exit_task(struct urt_loop *loop, struct urt__task *self,
                                 struct urt__stack *stack);
struct io_uring_sqe *urt__get_sqe(struct urt_loop *loop);
/* Makes room for n SQEs that must go to the kernel together (a linked
 * pair: a flush between them would submit half a link). */
void urt__sq_reserve(struct urt_loop *loop, unsigned n);
/* Waits on an op whose SQE(s) the caller prepared. */
int urt__op_wait(struct urt_loop *loop, struct urt__op *op);
/* Delivers a cancellation requested while the task was running: one trip
 * through the ready queue, as asyncio takes, then URT_ECANCELED. */
int urt__deliver_pending_cancel(struct urt_loop *loop, struct urt__task *self);
static inline bool urt__has_op(const struct urt_loop *loop, unsigned op)
{
    return loop->features.ops[op / 64] >> (op % 64) & 1;
}
static inline bool urt__has(const struct urt_loop *loop, unsigned flag)
{
    return loop->features.flags & flag;
}
/* Deadlines: absolute CLOCK_MONOTONIC ns, as IORING_TIMEOUT_ABS takes them.
 * The deadline ns from now, saturating far in the future (time.c). */
uint64_t urt__deadline_after(uint64_t ns);
/* The deadline of a call's timeout_ns, 0 for URT_NO_TIMEOUT. */
uint64_t urt__deadline_of(uint64_t timeout_ns);
/* What is left until deadline (0 once passed); URT_NO_TIMEOUT for none (0). */
uint64_t urt__time_left(uint64_t deadline);
struct __kernel_timespec urt__timespec(uint64_t ns);
/* fd table (io.c) */
void urt__fd_link(struct urt_loop *loop, struct urt__op *op);
void urt__fd_unlink(struct urt_loop *loop, struct urt__op *op);
void urt__fds_destroy(struct urt_loop *loop);

void urt__op_cancel(struct urt_loop *loop, struct urt__op *op);
/* Puts an op whose cancel request is out on the list of those asked again
 * until they end: a request can miss an op in transit (loop.c). */
void urt__cancel_watch(struct urt_loop *loop, struct urt__op *op);
/* Wait queues (waitq.c).  urt__park suspends the current task on q until
 * urt__wake hands it a value (returns 0, the value in p->value), the
 * absolute deadline passes (URT_ETIMEDOUT; 0: none) or the task is
 * cancelled (URT_ECANCELED).  p lives on the parked task's stack. */
struct urt__waitq {
    struct urt__parked *head, *tail;
    const char *what; /* for the task dump: "Lock.acquire", "accept" ... */
};
/* The public urt_waitlist is a urt__waitq: a primitive's list is used in
 * place, through urt__waitq_of. */
_Static_assert(sizeof(struct urt__waitq) == sizeof(urt_waitlist) &&
                   offsetof(struct urt__waitq, what) == offsetof(urt_waitlist, _what),
               "urt_waitlist mirrors struct urt__waitq");
static inline struct urt__waitq *urt__waitq_of(urt_waitlist *l)
{
    return (struct urt__waitq *)(void *)l;
}
struct urt__parked {
    struct urt__parked *prev, *next;
    struct urt__waitq *q; /* NULL once off it */
    struct urt__task *task;
    intptr_t value;
    bool woken, has_timer;
    struct urt__op timer;
};
int urt__park(struct urt_loop *loop, struct urt__waitq *q, struct urt__parked *p,
              uint64_t deadline);
void urt__wake(struct urt_loop *loop, struct urt__parked *p, intptr_t value);
void urt__park_cancel(struct urt_loop *loop, struct urt__parked *p);

/* Listeners (accept.c): the turn-boundary upkeep of multishot accepts,
 * urt_close of a listener (closing wakes its waiters with -EBADF and
 * returns how many; close frees the state once its SQE has ended), and the
 * loop's end (stop, reap, destroy). */
void urt__listeners_turn(struct urt_loop *loop);
int urt__listener_closing(struct urt_loop *loop, struct urt__fd *e);
void urt__listener_close(struct urt_loop *loop, struct urt__fd *e);
void urt__listeners_stop(struct urt_loop *loop);
void urt__listeners_destroy(struct urt_loop *loop);
/* Read-ahead (readahead.c): the same for fds in read-ahead. */
int urt__stream_closing(struct urt_loop *loop, struct urt__fd *e);
void urt__stream_close(struct urt_loop *loop, struct urt__fd *e);
void urt__streams_stop(struct urt_loop *loop);
void urt__streams_destroy(struct urt_loop *loop);
/* ---- section: sync (sync.c, queue.c) ---- */
/* ---- end section: sync ---- */

/* ---- section: threads (thread.c) ----
 * urt__pool_stop: at the loop's end, once no task is left: jobs not started
 * are dropped, the loop waits for running ones, and the threads are joined.
 * urt__pool_destroy: frees what is left, after the ring is gone. */
struct urt__pool;
void urt__pool_stop(struct urt_loop *loop);
void urt__pool_destroy(struct urt_loop *loop);
/* urt_to_thread_discard with an absolute deadline (0: none), after which
 * the wait ends with URT_ETIMEDOUT as a cancellation would. */
int urt__to_thread(struct urt_loop *loop, urt_fn fn, void *arg, urt_discard_fn discard,
                   uint64_t deadline, intptr_t *value);
/* urt_getaddrinfo with a deadline, for urt_tcp_connect_timeout. */
struct addrinfo;
int urt__getaddrinfo(struct urt_loop *loop, const char *node, const char *service,
                     const struct addrinfo *hints, struct addrinfo **res, uint64_t deadline);
/* ---- end section: threads ---- */

/* ---- section: introspection (introspect.c) ----
 * urt__dump_stop: at the loop's end, cancels the poll on the signal's
 * signalfd (drive() then waits for its CQE, which closes the signalfd)
 * and gives the signal back to the thread; urt__dump_destroy frees the
 * rest, after the ring is gone. */
struct urt__dump;
void urt__dump_stop(struct urt_loop *loop);
void urt__dump_destroy(struct urt_loop *loop);
/* ---- end section: introspection ---- */

/* Hands the prepared SQEs to the kernel now and reaps what completed. */
void urt__submit_now(struct urt_loop *loop);
/* Every switch between fibers goes through here, so that the sanitizers
 * hear of it; from or to NULL means the loop's own (thread) stack. */
#if defined(URT_ASAN) || defined(URT_TSAN)
void urt__switch(struct urt_loop *loop, struct urt__task *from, struct urt__task *to);
#else
static inline void urt__switch(struct urt_loop *loop, struct urt__task *from,
                               struct urt__task *to)
{
    urt__ctx_switch(from ? &from->ctx : &loop->main_ctx, to ? &to->ctx : &loop->main_ctx);
}
#endif

#endif
