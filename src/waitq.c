/*
 * Wait queues: a task parks on a queue until another part of the runtime
 * wakes it with a value, its deadline passes, or it is cancelled.  What the
 * task waits for is no SQE of its own (a connection for a listener's
 * multishot accept, bytes for a read-ahead socket), so parking costs no
 * system call; only a deadline does, as an IORING_OP_TIMEOUT.
 *
 * A waker takes the first parked task off the queue and hands it the value
 * at once, so a value is never given to a task that has stopped waiting,
 * and a task that leaves (deadline, cancel) takes nothing with it.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

static void unlink_parked(struct urt__parked *p)
{
    struct urt__waitq *q = p->q;
    if (p->prev) p->prev->next = p->next; else q->head = p->next;
    if (p->next) p->next->prev = p->prev; else q->tail = p->prev;
    p->q = NULL;
}

/* Resumes the task unless its timer's CQE already did.  The timer, if it
 * still runs, is the task's to cancel and wait for when it resumes. */
static void resume(struct urt_loop *loop, struct urt__parked *p)
{
    if (p->has_timer) p->timer.task = NULL;
    if (p->task->state == URT__WAITING) urt__make_ready(loop, p->task);
}

void urt__wake(struct urt_loop *loop, struct urt__parked *p, intptr_t value)
{
    unlink_parked(p);
    p->value = value;
    p->woken = true;
    resume(loop, p);
}

void urt__park_cancel(struct urt_loop *loop, struct urt__parked *p)
{
    if (!p->q) return;
    unlink_parked(p);
    resume(loop, p);
}

int urt__park(struct urt_loop *loop, struct urt__waitq *q, struct urt__parked *p,
              uint64_t deadline)
{
    struct urt__task *self = loop->current;
    p->q = q;
    p->task = self;
    p->woken = false;
    p->next = NULL;
    p->prev = q->tail;
    if (q->tail) q->tail->next = p; else q->head = p;
    q->tail = p;
    p->has_timer = deadline != 0;
    if (deadline) {
        p->timer = (struct urt__op){.task = self, .fd = -1, .pending = 1, .is_timeout = true,
                                    .ts = urt__timespec(deadline)};
        struct io_uring_sqe *sqe = urt__get_sqe(loop);
        io_uring_prep_timeout(sqe, &p->timer.ts, 0, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data(sqe, &p->timer);
    }
    /* A full SQ makes urt__get_sqe submit and reap, and a CQE handler in
     * that reap may wake p already (the recv of a read-ahead socket that
     * the caller armed just before, which finds bytes at once).  This task
     * was still running then, so resume did not make it ready, and the
     * timer no longer would: suspending now would wait for a wake that has
     * come and gone.  Off the queue before suspending means woken. */
    if (p->q) {
        self->state = URT__WAITING;
        self->wait = URT__WAIT_PARKED;
        self->waiting_on.parked = p;
        urt__suspend(loop);
        self->wait = URT__WAIT_NONE;
    }
    if (p->q) unlink_parked(p); /* the timer fired */
    if (p->has_timer && !p->timer.done) {
        /* Woken, or cancelled: the kernel must let go of the timer, which
         * lives in p, before the caller's frame goes. */
        urt__op_cancel(loop, &p->timer);
        if (!p->timer.done) urt__op_wait(loop, &p->timer); /* its CQE may be in already */
    }
    if (p->woken) return 0; /* a value wins over a cancel in the same instant */
    if (self->cancel_pending) return urt__cancel_take(self);
    return URT_ETIMEDOUT;
}
