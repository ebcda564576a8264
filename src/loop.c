/*
 * The loop: one io_uring ring and a FIFO of ready tasks per thread.
 *
 * Scheduling happens in the fiber that suspends: it picks the next ready
 * task and switches straight to it, so a yield costs one switch.  Only when
 * nothing is ready does control go back to the thread's own stack
 * (main_ctx), which blocks in io_uring_enter until a completion arrives.
 *
 * A turn runs the tasks that were ready when it began; between turns the
 * SQEs prepared during the turn go to the kernel in one io_uring_enter and
 * the completions that are in are reaped in batches.  Tasks made ready during
 * a turn (including by sleep(0)) run in the next one, as in asyncio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "internal.h"

#ifdef URT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

__thread struct urt_loop *urt__loop;

#define RING_ENTRIES 4096u

/* URT_RING_ENTRIES sizes the ring for tests that need it full or
 * overflowing; programs have no reason to set it. */
static unsigned ring_entries(void)
{
    const char *v = getenv("URT_RING_ENTRIES");
    unsigned long n = v ? strtoul(v, NULL, 10) : 0;
    return n >= 2 && n <= 32768 ? (unsigned)n : RING_ENTRIES;
}

/* Kernels before 5.12 charge the ring to RLIMIT_MEMLOCK, often 64 KiB:
 * the soft limit may be raised up to the hard one without privileges. */
static bool raise_memlock(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == rl.rlim_max) return false;
    rl.rlim_cur = rl.rlim_max;
    return setrlimit(RLIMIT_MEMLOCK, &rl) == 0;
}

static int ring_try(struct urt_loop *loop, unsigned entries, unsigned flags)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flags | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 2; /* completions may outnumber SQEs */
    int err = io_uring_queue_init_params(entries, &loop->ring, &p);
    if (err == 0) loop->ring_features = p.features;
    return err;
}

static int ring_init(struct urt_loop *loop)
{
    /* SINGLE_ISSUER (6.0) and COOP_TASKRUN with TASKRUN_FLAG (5.19) cut the
     * kernel's cross-thread signalling, and the flag tells us when
     * completions wait for us to enter the kernel.  Each is a hint that
     * older kernels reject with EINVAL, so they are dropped one by one. */
    struct urt__features *f = &loop->features;
    unsigned flags = 0;
    if (urt__has(loop, URT__F_COOP_TASKRUN))
        flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    if (urt__has(loop, URT__F_SINGLE_ISSUER)) flags |= IORING_SETUP_SINGLE_ISSUER;
    /* DEFER_TASKRUN (6.1) runs completion work only when this thread asks
     * for events, in a batch, instead of interrupting it: every submit here
     * asks for events, and TASKRUN_FLAG says when the turn poll must. */
    if (urt__has(loop, URT__F_DEFER_TASKRUN) && flags & IORING_SETUP_SINGLE_ISSUER)
        flags |= IORING_SETUP_DEFER_TASKRUN;
    unsigned entries = ring_entries();
    int err;
    for (;;) {
        err = ring_try(loop, entries, flags);
        if (err == -EINVAL && flags & IORING_SETUP_DEFER_TASKRUN) {
            flags &= ~IORING_SETUP_DEFER_TASKRUN;
        } else if (err == -EINVAL && flags & IORING_SETUP_SINGLE_ISSUER) {
            flags &= ~IORING_SETUP_SINGLE_ISSUER;
            f->flags &= ~URT__F_SINGLE_ISSUER;
        } else if (err == -EINVAL && flags) {
            flags = 0;
            f->flags &= ~URT__F_COOP_TASKRUN;
        } else if (err == -ENOMEM && raise_memlock()) {
            continue;
        } else if (err == -ENOMEM && entries > 64) {
            entries /= 8; /* smaller works, it just flushes more often */
        } else {
            break;
        }
    }
    if (err) return err;
    if (!(flags & IORING_SETUP_SINGLE_ISSUER)) f->flags &= ~URT__F_SINGLE_ISSUER;
    if (!(flags & IORING_SETUP_COOP_TASKRUN)) f->flags &= ~URT__F_COOP_TASKRUN;
    if (!(flags & IORING_SETUP_DEFER_TASKRUN)) f->flags &= ~URT__F_DEFER_TASKRUN;
    urt__features_probe(f, &loop->ring);
    if (!(loop->ring_features & IORING_FEAT_FAST_POLL)) f->flags &= ~URT__F_FAST_POLL;
    if (!(loop->ring_features & IORING_FEAT_EXT_ARG)) f->flags &= ~URT__F_EXT_ARG;
    /* Saves the kernel an fd lookup on every io_uring_enter (5.18). */
    if (urt__has(loop, URT__F_REGISTERED_RING) && io_uring_register_ring_fd(&loop->ring) != 1)
        f->flags &= ~URT__F_REGISTERED_RING;
    io_uring_ring_dontfork(&loop->ring);
    return 0;
}

static void cancel_unwatch(struct urt_loop *loop, struct urt__op *op)
{
    if (op->retry_prev) op->retry_prev->retry_next = op->retry_next;
    else loop->cancel_retry = op->retry_next;
    if (op->retry_next) op->retry_next->retry_prev = op->retry_prev;
    op->retry_cancel = false;
}

/* An op's linked timeout fired but could not take the op away: the op was
 * moving from the kernel's poll to an io-wq worker (-ENOENT), or ran there
 * (-EALREADY), and would go on blocking past its deadline, maybe for good.
 * It is cancelled as a cancellation would be, asked again until it ends,
 * and ends as timed out, unless data wins. */
static void deadline_missed(struct urt_loop *loop, struct urt__op *op)
{
    op->link_res = -ETIME;
    urt__op_cancel(loop, op); /* its reap inside this one is safe: reap takes each CQE first */
}

static void complete(struct urt_loop *loop, struct io_uring_cqe *cqe)
{
    uint64_t data = cqe->user_data;
    /* A multishot op's SQE stays in flight until its last CQE. */
    if (likely(!(cqe->flags & IORING_CQE_F_MORE))) loop->inflight--;
    if (data == URT__UDATA_IGNORE) return;
    if (unlikely(data & URT__UDATA_HANDLER)) {
        struct urt__op *op = (struct urt__op *)(uintptr_t)(data & ~URT__UDATA_HANDLER);
        op->handler(loop, op, cqe);
        return;
    }
    struct urt__op *op = (struct urt__op *)(uintptr_t)(data & ~URT__UDATA_LINK);
    if (data & URT__UDATA_LINK)
        op->link_res = cqe->res;
    else
        op->res = cqe->res;
    if (--op->pending) {
        if (unlikely((data & URT__UDATA_LINK) && (cqe->res == -ENOENT || cqe->res == -EALREADY)))
            deadline_missed(loop, op);
        return;
    }
    op->done = true;
    if (unlikely(op->retry_cancel)) cancel_unwatch(loop, op);
    /* The op's own task first: a urt_close waiting for this fd's last op
     * must return after the calls it ended, not before.  No task: a
     * parked task's timer, whose task a waker resumed already (waitq.c). */
    if (op->task) urt__make_ready(loop, op->task);
    urt__fd_unlink(loop, op);
}

/* Read straight off the shared ring: the common case, nothing there, costs
 * no call into liburing. */
static bool cq_has_work(struct urt_loop *loop)
{
    return io_uring_cq_ready(&loop->ring) ||
           (IO_URING_READ_ONCE(*loop->ring.sq.kflags) &
            (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN));
}

/*
 * Takes every CQE there is, one at a time: each is copied out and the head
 * moved past it before it is handled, because a handler may prepare an SQE,
 * and one that finds the SQ full submits and reaps again (urt__get_sqe),
 * which must not see the same CQE twice.  No batch array either: this runs
 * on whichever task's stack is suspending, which may be a 16 KiB one.
 * Completions the kernel holds back (overflow, or DEFER_TASKRUN's pending
 * work) are fetched once when the ring runs dry.
 */
static unsigned reap(struct urt_loop *loop)
{
    struct io_uring_cq *cq = &loop->ring.cq;
    bool fetched = false;
    unsigned taken = 0;
    for (;;) {
        unsigned head = *cq->khead;
        if (head == io_uring_smp_load_acquire(cq->ktail) || unlikely(urt__faults_stop_reap())) {
            if (fetched || !(IO_URING_READ_ONCE(*loop->ring.sq.kflags) &
                             (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)))
                return taken;
            io_uring_get_events(&loop->ring);
            fetched = true;
            continue;
        }
        struct io_uring_cqe cqe = cq->cqes[head & cq->ring_mask];
        io_uring_smp_store_release(cq->khead, head + 1);
        urt__faults_on_cqe(&cqe);
        complete(loop, &cqe);
        taken++;
    }
}

/* Submits what is prepared (waiting for wait_nr completions) and reaps.
 * -EBUSY means the CQ is full: reaping makes room.  -EINTR: a signal.
 * A failed wait that reaped something is not waited again here: what it
 * reaped may be the very completion it was for (the last one in flight,
 * say), and the callers, which wait in a loop, look at what is left. */
static void submit_and_reap(struct urt_loop *loop, unsigned wait_nr)
{
    for (;;) {
        urt__faults_before_submit(&loop->ring);
        int ret = urt__faults_enter();
        if (likely(!ret))
            ret = wait_nr ? io_uring_submit_and_wait(&loop->ring, wait_nr)
                          : io_uring_submit_and_get_events(&loop->ring);
        unsigned taken = reap(loop);
        if (ret >= 0 || (ret != -EBUSY && ret != -EAGAIN && ret != -EINTR)) return;
        if (wait_nr && (ret == -EINTR || taken)) return; /* the caller looks again */
    }
}

void urt__sq_reserve(struct urt_loop *loop, unsigned n)
{
    if (unlikely(urt__faults_sq_full(&loop->ring))) submit_and_reap(loop, 0);
    while (io_uring_sq_space_left(&loop->ring) < n) submit_and_reap(loop, 0);
}

struct io_uring_sqe *urt__get_sqe(struct urt_loop *loop)
{
    struct io_uring_sqe *sqe;
    if (unlikely(urt__faults_sq_full(&loop->ring))) submit_and_reap(loop, 0);
    while (unlikely(!(sqe = io_uring_get_sqe(&loop->ring))))
        submit_and_reap(loop, 0); /* SQ full: hand the batch over, retry */
    loop->inflight++;
    return sqe;
}

static void close_round(struct urt_loop *loop);

/* Start of a turn: hand the kernel this turn's SQEs, take what completed.
 * Out of line: once per turn, and pick_next's fast path should not carry
 * its frame. */
__attribute__((noinline)) static void poll_ring(struct urt_loop *loop)
{
    loop->turns++;
    if (unlikely(loop->listeners)) urt__listeners_turn(loop);
    if (io_uring_sq_ready(&loop->ring))
        submit_and_reap(loop, 0);
    else if (cq_has_work(loop))
        reap(loop);
    /* After the reap: what completed in the same instant wins. */
    if (unlikely(loop->deadlines_len)) urt__deadlines_fire(loop);
    if (unlikely(loop->closing) && loop->close_pending == 0) close_round(loop);
}

/* The rest of pick_next: a turn boundary, a task woken through a done
 * callback, or a task cancelled before it ever ran, which never runs
 * (SEMANTICS 3.4). */
__attribute__((noinline)) static struct urt__task *pick_next_slow(struct urt_loop *loop)
{
    for (;;) {
        if (loop->turn_left == 0) {
            poll_ring(loop);
            loop->turn_left = loop->ready_len;
            if (loop->turn_left == 0) return NULL;
        }
        /* turn_left <= ready_len: only pick_next takes tasks out. */
        struct urt__task *t = loop->ready_head;
        loop->ready_head = t->next_ready;
        if (!loop->ready_head) loop->ready_tail = NULL;
        loop->ready_len--;
        loop->turn_left--;
        if (t->wake_deferred) {
            t->wake_deferred = false;
            if (t->state == URT__DONE)
                urt__task_run_callback(loop, t);
            else
                urt__make_ready(loop, t); /* the callback's pass: back of the queue */
            continue;
        }
        if (t->state == URT__NEW && t->cancel_pending) {
            urt__task_finish(loop, t, URT_ECANCELED);
            continue;
        }
        return t;
    }
}

/* The next task to run, NULL when none is ready.  A task that has never run
 * comes without a stack: the caller gives it one.  The common case, a task
 * of this turn, is a queue pop. */
static inline struct urt__task *pick_next(struct urt_loop *loop)
{
    struct urt__task *t = loop->ready_head;
    if (likely(loop->turn_left && !t->cancel_pending && !t->wake_deferred)) {
        loop->ready_head = t->next_ready;
        if (!loop->ready_head) loop->ready_tail = NULL;
        loop->ready_len--;
        loop->turn_left--;
        return t;
    }
    return pick_next_slow(loop);
}

/* Gives a task its stack for its first run; one that cannot have a stack
 * ends as a task cancelled before it ran does, with the reason for its
 * awaiters, and the next one is picked. */
static struct urt__task *start_if_new(struct urt_loop *loop, struct urt__task *t)
{
    while (t && unlikely(t->state == URT__NEW)) {
        int err = urt__task_start(loop, t);
        if (likely(!err)) break;
        urt__task_finish(loop, t, err);
        t = pick_next(loop);
    }
    return t;
}

static inline void switch_to(struct urt_loop *loop, struct urt__task *from, struct urt__task *next)
{
    loop->current = next;
    if (next && next->state != URT__NEW) next->state = URT__RUNNING;
    urt__switch(loop, from, next);
}

void urt__suspend(struct urt_loop *loop)
{
    struct urt__task *self = loop->current;
    struct urt__task *next = start_if_new(loop, pick_next(loop));
    if (next == self) {
        self->state = URT__RUNNING;
        return;
    }
    switch_to(loop, self, next);
    /* Resumed: whoever switched here set loop->current to us. */
}

/*
 * The end of a task's fiber, which still runs on its stack.  If the next
 * task has never run and wants a stack of the same size, it gets this one
 * and starts on it at once, without a switch (urt__task_entry's loop): a
 * stream of short tasks then runs on one stack, warm in the cache.  Else
 * the stack goes back to the pool, and only after the next task has one of
 * its own: popped now, it would have its first frame written over the
 * frames this code is still running in.
 */
struct urt__task *urt__exit_task(struct urt_loop *loop, struct urt__task *self,
                                 struct urt__stack *stack)
{
    struct urt__task *next = pick_next(loop);
    if (next && next->state == URT__NEW && next->stack_class == stack->size_class) {
        next->stack = stack;
        loop->current = next;
        return next;
    }
    next = start_if_new(loop, next);
    urt__stack_free(loop, stack);
    switch_to(loop, self, next);
    __builtin_unreachable();
}

int urt__op_wait(struct urt_loop *loop, struct urt__op *op)
{
    struct urt__task *self = loop->current;
    op->task = self;
    if (!op->pending) op->pending = 1;
    self->state = URT__WAITING;
    self->wait = URT__WAIT_OP;
    self->waiting_on.op = op;
    urt__suspend(loop);
    self->wait = URT__WAIT_NONE;
    return op->res;
}

static void prep_cancel(struct urt_loop *loop, struct urt__op *op)
{
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    uint64_t target = (uint64_t)(uintptr_t)op | (op->handler ? URT__UDATA_HANDLER : 0);
    if (op->is_timeout)
        io_uring_prep_timeout_remove(sqe, target, 0);
    else
        io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, URT__UDATA_IGNORE);
}

/*
 * Asks the kernel to drop an op.  The waiting task stays suspended until the
 * op's own CQE arrives (SEMANTICS 3.3).  The request is submitted and the
 * ring reaped at once: cancelling a timer completes inside io_uring_enter,
 * so the task is ready before the canceller's next suspension, in the same
 * order asyncio would wake it.
 */
void urt__op_cancel(struct urt_loop *loop, struct urt__op *op)
{
    if (op->done || op->cancel_sent || op->no_cancel) return;
    op->cancel_sent = true;
    /* An op with a handler may be freed by it in the reap. */
    bool watch = !op->handler;
    prep_cancel(loop, op);
    submit_and_reap(loop, 0);
    if (watch && !op->done) urt__cancel_watch(loop, op);
}

/*
 * A cancel request can miss its op: one the kernel is moving from its
 * poll wait-queue to an io-wq worker (a send on a socket that has seen
 * POLLRDHUP is one) is on neither list for a moment, and the request ends
 * -ENOENT while the op goes on to block in the worker for good.  So an op
 * asked to cancel is asked again, after 1 ms, 2, 4, 8, then every 16 ms,
 * until it ends.  The usual op ends within the first request's reap, or
 * soon after, and leaves the list before the timer fires.
 */
#define RETRY_FIRST_MS 1
/* One timer serves every op on the list, so an op that joins it waits out
 * the delay the timer has reached: with a cap of a second, a send whose
 * deadline missed waited up to a second more (test_net).  A stuck op costs
 * one cancel SQE per cap. */
#define RETRY_MAX_MS 16

static void on_retry_timer(struct urt_loop *loop, struct urt__op *timer,
                           const struct io_uring_cqe *cqe);

static void arm_retry(struct urt_loop *loop)
{
    struct urt__op *t = &loop->retry_timer;
    *t = (struct urt__op){.handler = on_retry_timer, .fd = -1, .is_timeout = true,
                          .ts = {.tv_sec = loop->retry_delay_ms / 1000,
                                 .tv_nsec = (long long)(loop->retry_delay_ms % 1000) * 1000000}};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_timeout(sqe, &t->ts, 0, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)t | URT__UDATA_HANDLER);
    loop->background++;
    loop->retry_armed = true;
}

void urt__cancel_watch(struct urt_loop *loop, struct urt__op *op)
{
    if (op->retry_cancel) return;
    op->retry_cancel = true;
    op->retry_prev = NULL;
    op->retry_next = loop->cancel_retry;
    if (loop->cancel_retry) loop->cancel_retry->retry_prev = op;
    loop->cancel_retry = op;
    if (!loop->retry_armed) {
        loop->retry_delay_ms = RETRY_FIRST_MS;
        arm_retry(loop);
    }
}

/* The SQEs go with the turn's others: this runs inside a reap. */
static void on_retry_timer(struct urt_loop *loop, struct urt__op *timer,
                           const struct io_uring_cqe *cqe)
{
    (void)timer;
    loop->retry_armed = false;
    loop->background--;
    if (cqe->res == -ECANCELED || !loop->cancel_retry) return; /* the loop's end, or all ended */
    for (struct urt__op *op = loop->cancel_retry; op; op = op->retry_next) prep_cancel(loop, op);
    loop->retry_delay_ms = loop->retry_delay_ms * 2 < RETRY_MAX_MS ? loop->retry_delay_ms * 2
                                                                    : RETRY_MAX_MS;
    arm_retry(loop);
}

void urt__submit_now(struct urt_loop *loop)
{
    submit_and_reap(loop, 0);
}

/* Shutdown (SEMANTICS 1.2): once main has returned, every live task is
 * cancelled.  Tasks created while those clean up get to run, and are
 * cancelled in the next round, once the previous round has finished. */
static void close_round(struct urt_loop *loop)
{
    for (uint32_t i = 0; i < loop->nslots; i++) {
        struct urt__task *t = loop->slots[i].task;
        if (!t || t->state == URT__DONE || t->close_cancelled) continue;
        t->close_cancelled = true;
        loop->close_pending++;
        urt__task_request_cancel(loop, t);
    }
}

/* The wake timer of kernels without EXT_ARG has ended: fired, or removed
 * because an earlier deadline needed one. */
static void wake_timer_done(struct urt_loop *loop, struct urt__op *op,
                            const struct io_uring_cqe *cqe)
{
    (void)cqe;
    if (loop->wake_timer == op) loop->wake_timer = NULL;
    loop->background--;
    free(op);
}

/* Arms a timer for deadline, unless one is armed for it or before it: a
 * timer that fires early costs a wake-up, one that fires late a missed
 * deadline.  False when there is no memory for one. */
static bool arm_wake_timer(struct urt_loop *loop, uint64_t deadline)
{
    if (loop->wake_timer && loop->wake_deadline <= deadline) return true;
    if (loop->wake_timer) urt__op_cancel(loop, loop->wake_timer);
    struct urt__op *op = malloc(sizeof *op);
    if (!op) return false;
    *op = (struct urt__op){.handler = wake_timer_done, .fd = -1, .is_timeout = true,
                           .ts = urt__timespec(deadline)};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_timeout(sqe, &op->ts, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | URT__UDATA_HANDLER);
    loop->background++;
    loop->wake_timer = op;
    loop->wake_deadline = deadline;
    return true;
}

/* Nothing is ready: blocks until a completion arrives or the earliest
 * scope deadline passes.  io_uring_enter takes the timeout itself from
 * 5.11 (EXT_ARG); before, a timer SQE wakes it. */
static void wait_for_work(struct urt_loop *loop)
{
    if (likely(!loop->deadlines_len)) {
        submit_and_reap(loop, 1);
        return;
    }
    uint64_t deadline = loop->deadlines[0]->deadline;
    uint64_t now = urt_now();
    if (deadline <= now) {
        submit_and_reap(loop, 0);
        return;
    }
    if (urt__has(loop, URT__F_EXT_ARG)) {
        struct __kernel_timespec ts = urt__timespec(deadline - now);
        struct io_uring_cqe *cqe;
        urt__faults_before_submit(&loop->ring);
        io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
        reap(loop); /* -ETIME, -EINTR, -EBUSY: the caller looks again */
        return;
    }
    /* Removing a later timer reaps, which may have made a task ready:
     * then the loop only submits, and runs it. */
    bool armed = arm_wake_timer(loop, deadline);
    submit_and_reap(loop, armed && !loop->ready_head ? 1 : 0); /* no memory: poll */
}

static void drive(struct urt_loop *loop)
{
    for (;;) {
        struct urt__task *next = start_if_new(loop, pick_next(loop));
        if (next) {
            switch_to(loop, NULL, next);
            continue;
        }
        if (loop->live == 0) break;
        if (loop->closing && loop->close_pending == 0) {
            close_round(loop);
            continue;
        }
        /* Nothing ready and nothing in the kernel: every live task waits on
         * another one.  Await and gather refuse cycles, so the API cannot get
         * here; should it, cancelling everything is the way out, and a run
         * that still cannot end reports -EDEADLK instead of success. */
        if (loop->inflight == loop->background && loop->external_waits == 0 &&
            loop->deadlines_len == 0) {
            loop->closing = true;
            close_round(loop);
            if (!loop->ready_head && loop->inflight == loop->background &&
                loop->external_waits == 0) {
                loop->main_result = -EDEADLK;
                break;
            }
            continue;
        }
        wait_for_work(loop);
    }
    if (loop->wake_timer) urt__op_cancel(loop, loop->wake_timer);
    if (loop->retry_armed) urt__op_cancel(loop, &loop->retry_timer);
    /* Multishot accepts and recvs no task will take from any more, and
     * the background reads of the pool and the dump signal. */
    urt__listeners_stop(loop);
    urt__streams_stop(loop);
    urt__pool_stop(loop);
    urt__dump_stop(loop);
    /* Cancel requests whose completion is still out. */
    while (loop->inflight) submit_and_reap(loop, 1);
}

/*
 * A write to a pipe or socket whose reader is gone raises SIGPIPE, whose
 * default action kills the process: a server must not die because a client
 * left.  Sends add MSG_NOSIGNAL, but pipes have no such flag, so the loop's
 * thread keeps SIGPIPE blocked while the loop runs, and the write returns
 * -EPIPE.  What the writes left pending is consumed before the thread's
 * mask is restored, unless the thread blocked SIGPIPE itself.
 */
static void sigpipe_block(struct urt_loop *loop)
{
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &loop->saved_sigmask);
}

static void sigpipe_restore(struct urt_loop *loop)
{
    if (!sigismember(&loop->saved_sigmask, SIGPIPE)) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        const struct timespec now = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &now) == SIGPIPE) {}
    }
    pthread_sigmask(SIG_SETMASK, &loop->saved_sigmask, NULL);
}

static void loop_destroy(struct urt_loop *loop)
{
    urt__tasks_destroy(loop);
    urt__scopes_destroy(loop);
    urt__listeners_destroy(loop);
    /* The buffer ring's memory goes after the ring that may write it. */
    io_uring_queue_exit(&loop->ring);
    urt__streams_destroy(loop);
    urt__pool_destroy(loop);
    urt__dump_destroy(loop);
    urt__fds_destroy(loop);
    urt__stacks_destroy(loop);
    urt__overflow_guard_stop(loop);
    free(loop);
}

int urt_run(urt_fn main, void *arg, intptr_t *value)
{
    if (urt__loop) return -EBUSY;
    if (!main) return -EINVAL;

    struct urt_loop *loop = calloc(1, sizeof *loop);
    if (!loop) return -ENOMEM;
    loop->page_size = (size_t)sysconf(_SC_PAGESIZE);
    urt__features_allowed(&loop->features);
    int err = ring_init(loop);
    if (err) {
        free(loop);
        return err;
    }
    err = urt__overflow_guard_start(loop);
    if (err) {
        io_uring_queue_exit(&loop->ring);
        free(loop);
        return err;
    }
#ifdef URT_ASAN
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        pthread_attr_getstack(&attr, &addr, &size);
        loop->main_stack_bottom = addr;
        loop->main_stack_size = size;
        pthread_attr_destroy(&attr);
    }
#endif
    urt__loop = loop;
    sigpipe_block(loop);

    urt_task handle;
    err = urt__task_spawn(loop, &handle, main, arg, NULL);
    if (err == 0) {
        loop->main_task = urt__task_lookup(loop, handle);
        drive(loop);
        err = URT_IS_ERROR(loop->main_result) ? (int)loop->main_result : 0;
        if (!err && value) *value = loop->main_result;
    }
    sigpipe_restore(loop);
    urt__loop = NULL;
    loop_destroy(loop);
    return err;
}

uint64_t urt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * URT_NS_PER_S + (uint64_t)ts.tv_nsec;
}
