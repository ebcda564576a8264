/*
 * urt_wait and as_completed (asyncio.wait, asyncio.as_completed).
 *
 * Both wait on a set of tasks the way gather does, one waiter node per
 * task (gather.c wakes the waiter when the set's condition holds), but
 * they report instead of failing: a task's failure is something to look
 * at, not an error of the wait, and the tasks are not the waiter's to
 * cancel.  A cancellation of the waiting task ends only its wait; the
 * deadline is a timeout scope around the wait, which when it fires means
 * "report what is done so far", not an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Small sets keep their nodes on the caller's stack. */
#define INLINE_NODES 8

/*
 * Waits until return_when holds for tasks[i] with skip[i] clear (skip may
 * be NULL), or the absolute deadline passes (0: none).  Fills done[i] (if
 * not NULL) and returns how many of those tasks are done, or an error.
 */
static int wait_set(struct urt_loop *loop, const urt_task *tasks, size_t n, int return_when,
                    uint64_t deadline, const unsigned char *skip, unsigned char *done)
{
    struct urt__task *self = loop->current;
    struct urt__waiter inline_nodes[INLINE_NODES];
    struct urt__waiter *nodes = inline_nodes;
    if (n > INLINE_NODES && !(nodes = malloc(n * sizeof *nodes))) return -ENOMEM;

    struct urt__gather g = {.task = self, .nodes = nodes, .n = n, .flags = URT__SET_WAIT,
                            .return_when = return_when};
    size_t ndone = 0;
    bool exception = false;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        nodes[i] = (struct urt__waiter){.gather = &g, .index = i};
        if (skip && skip[i]) continue;
        struct urt__task *t = urt__task_lookup(loop, tasks[i]);
        if (!t) {
            rc = URT_EBADTASK;
            goto out;
        }
        nodes[i].target = t;
        if (t->state == URT__DONE) {
            nodes[i].done = true;
            ndone++;
            exception |= urt__is_exception(t->result);
        } else if (t == self || urt__would_deadlock(loop, self, t)) {
            rc = -EDEADLK;
            goto out;
        } else {
            g.remaining++;
        }
    }
    /* Holding already, or out of time: no suspension, as an await of a
     * finished task. */
    if (!urt__wait_holds(return_when, ndone, g.remaining, exception) &&
        !(deadline && deadline <= urt_now())) {
        if (self->cancel_pending) {
            rc = urt__deliver_pending_cancel(loop, self);
            goto out;
        }
        urt_timeout scope;
        if (deadline && (rc = urt_timeout_enter_at(&scope, deadline))) goto out;
        for (size_t i = 0; i < n; i++)
            if (nodes[i].target && !nodes[i].done) urt__waiter_link(nodes[i].target, &nodes[i]);
        self->state = URT__WAITING;
        self->wait = URT__WAIT_SET;
        self->waiting_on.gather = &g;
        urt__suspend(loop);
        self->wait = URT__WAIT_NONE;
        for (size_t i = 0; i < n; i++)
            if (nodes[i].target) urt__waiter_unlink(nodes[i].target, &nodes[i]);
        if (self->cancel_pending) rc = urt__cancel_take(self);
        /* Our own deadline is no error: the caller learns what is done. */
        if (deadline && urt_timeout_exit(&scope) == URT_ETIMEDOUT && rc == URT_ETIMEDOUT) rc = 0;
        if (rc) goto out;
        ndone = 0; /* the ones done before the call are among them */
        for (size_t i = 0; i < n; i++) ndone += nodes[i].done;
    }
    if (done)
        for (size_t i = 0; i < n; i++) done[i] = nodes[i].done;
    rc = (int)(ndone > (size_t)INT32_MAX ? INT32_MAX : ndone);
out:
    if (nodes != inline_nodes) free(nodes);
    return rc;
}

int urt_wait(const urt_task *tasks, size_t n, int return_when, uint64_t timeout_ns,
             unsigned char *done)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!tasks || n == 0 || n > INT32_MAX) return -EINVAL;
    if (return_when != URT_ALL_COMPLETED && return_when != URT_FIRST_COMPLETED &&
        return_when != URT_FIRST_EXCEPTION)
        return -EINVAL;
    return wait_set(loop, tasks, n, return_when, urt__deadline_of(timeout_ns), NULL, done);
}

/* ---- as_completed ---- */

int urt_as_completed_init(urt_as_completed *it, const urt_task *tasks, size_t n,
                          uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!it || (!tasks && n) || n > INT32_MAX) return -EINVAL;
    *it = (urt_as_completed){._tasks = tasks, ._n = n};
    if (n && !(it->_given = calloc(n, 1))) return -ENOMEM;
    it->_deadline = urt__deadline_of(timeout_ns);
    return 0;
}

/* The given-out-not-yet task that finished first, or n. */
static size_t first_finished(struct urt_loop *loop, const urt_as_completed *it, int *err)
{
    size_t best = it->_n;
    uint64_t best_seq = UINT64_MAX;
    for (size_t i = 0; i < it->_n; i++) {
        if (it->_given[i]) continue;
        struct urt__task *t = urt__task_lookup(loop, it->_tasks[i]);
        if (!t) {
            *err = URT_EBADTASK;
            return it->_n;
        }
        if (t->state == URT__DONE && t->finish_seq < best_seq) {
            best = i;
            best_seq = t->finish_seq;
        }
    }
    return best;
}

int urt_as_completed_next(urt_as_completed *it, urt_task *task)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!it || !task) return -EINVAL;
    if (it->_given_count == it->_n) return 0;
    for (;;) {
        int err = 0;
        size_t i = first_finished(loop, it, &err);
        if (err) return err;
        if (i < it->_n) {
            it->_given[i] = 1;
            it->_given_count++;
            *task = it->_tasks[i];
            return 1;
        }
        if (it->_deadline && urt_now() >= it->_deadline) return URT_ETIMEDOUT;
        int rc = wait_set(loop, it->_tasks, it->_n, URT_FIRST_COMPLETED, it->_deadline,
                          it->_given, NULL);
        if (rc < 0) return rc;
        if (rc == 0) return URT_ETIMEDOUT; /* the deadline, with nothing done */
    }
}

void urt_as_completed_end(urt_as_completed *it)
{
    if (!it) return;
    free(it->_given);
    it->_given = NULL;
    it->_given_count = it->_n = 0;
}
