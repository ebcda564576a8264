/*
 * gather: one waiter node per child, linked into each unfinished child's
 * waiter list.  A child finishing fills its node; the gathering task is
 * woken once, when the last child finishes or (default mode) when the first
 * one fails.  Results are copied into the nodes as children finish, because
 * a child whose handle was released is freed the moment it ends.
 *
 * The wake-up is deferred by one pass, and a gather whose children are all
 * done still suspends for two: asyncio's gather is a future completed by
 * the children's done callbacks, which run a pass after each child ends,
 * and its awaiter runs a pass after that.  Waking sooner would reorder the
 * gatherer against every other task, and asyncio programs ported to urt
 * would print in another order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Small gathers keep their nodes on the caller's stack. */
#define INLINE_NODES 8

static void wake(struct urt_loop *loop, struct urt__gather *g)
{
    g->woken = true;
    urt__make_ready_deferred(loop, g->task);
}

void urt__gather_child_done(struct urt_loop *loop, struct urt__waiter *w)
{
    struct urt__gather *g = w->gather;
    g->remaining--;
    if (g->woken) return;
    if (g->flags & URT__SET_WAIT) {
        /* Not woken yet, so no child that ended before made the
         * condition hold: only this one's end can. */
        if (urt__wait_holds(g->return_when, 1, g->remaining, urt__is_exception(w->result)))
            wake(loop, g);
        return;
    }
    if (!(g->flags & URT_RETURN_EXCEPTIONS) && URT_IS_ERROR(w->result)) {
        g->first_error = (int)w->result;
        wake(loop, g);
    } else if (g->remaining == 0) {
        wake(loop, g);
    }
}

/* Pushed last first: the walks pop them, so a cancellation reaches the
 * children in input order, as asyncio's gather cancels them. */
int urt__gather_push_children(struct urt_loop *loop, struct urt__gather *g, size_t *len)
{
    for (size_t i = g->n; i-- > 0;)
        if (g->nodes[i].linked && urt__search_push(loop, len, g->nodes[i].target)) return -ENOMEM;
    return 0;
}

/* Among children that had already failed when gather was called, the
 * first in input order: asyncio's done callbacks for them run in that
 * order, and the first to see a failure sets it. */
static int first_failure(const struct urt__waiter *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (nodes[i].done && URT_IS_ERROR(nodes[i].result)) return (int)nodes[i].result;
    return 0;
}

static void fill(const struct urt__waiter *nodes, size_t n, intptr_t *values, int *errors)
{
    for (size_t i = 0; i < n; i++) {
        if (!nodes[i].done) continue;
        bool failed = URT_IS_ERROR(nodes[i].result);
        if (errors) errors[i] = failed ? (int)nodes[i].result : 0;
        if (values && !failed) values[i] = nodes[i].result;
    }
}

int urt_gather(const urt_task *tasks, size_t n, unsigned flags, intptr_t *values, int *errors)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (flags & ~URT_RETURN_EXCEPTIONS) return -EINVAL;
    if (n == 0) return 0;
    bool return_exceptions = flags & URT_RETURN_EXCEPTIONS;
    if (!tasks || (return_exceptions && !errors)) return -EINVAL;
    if (!return_exceptions) errors = NULL;

    struct urt__task *self = loop->current;
    struct urt__waiter inline_nodes[INLINE_NODES];
    struct urt__waiter *nodes = inline_nodes;
    if (n > INLINE_NODES && !(nodes = malloc(n * sizeof *nodes))) return -ENOMEM;

    struct urt__gather g = {.task = self, .nodes = nodes, .n = n, .flags = flags};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct urt__task *t = urt__task_lookup(loop, tasks[i]);
        if (!t) {
            rc = URT_EBADTASK;
            goto out;
        }
        nodes[i] = (struct urt__waiter){.target = t, .gather = &g, .index = i};
        if (t->state == URT__DONE) {
            nodes[i].done = true;
            nodes[i].result = t->result;
        } else if (t == self || urt__would_deadlock(loop, self, t)) {
            rc = -EDEADLK;
            goto out;
        } else {
            g.remaining++;
        }
    }
    /* Nothing to wait for, yet no return at once: the done callbacks of
     * asyncio's gather still take their pass, and its awaiter the next. */
    if (g.remaining == 0 || (!return_exceptions && first_failure(nodes, n))) {
        rc = return_exceptions ? 0 : first_failure(nodes, n);
        self->state = URT__READY;
        urt__make_ready_deferred(loop, self);
        urt__suspend(loop);
        if (self->cancel_pending) rc = urt__cancel_take(self);
        fill(nodes, n, values, errors);
        goto out;
    }

    for (size_t i = 0; i < n; i++)
        if (!nodes[i].done) urt__waiter_link(nodes[i].target, &nodes[i]);
    self->state = URT__WAITING;
    self->wait = URT__WAIT_GATHER;
    self->waiting_on.gather = &g;
    if (self->cancel_pending) {
        /* Passed on to the children, keeping its kind (a deadline's). */
        self->cancel_pending = false;
        urt__task_request_cancel(loop, self);
    }
    urt__suspend(loop);
    self->wait = URT__WAIT_NONE;
    /* Default mode returns on the first failure: the others run on. */
    for (size_t i = 0; i < n; i++) urt__waiter_unlink(nodes[i].target, &nodes[i]);

    if (self->cancel_pending) {
        rc = urt__cancel_take(self); /* cancelled after being woken */
    } else {
        if (g.first_error)
            rc = g.first_error;
        else if (g.cancel_requested)
            rc = URT_ECANCELED; /* as asyncio: the children ended, but gather
                                 * itself was cancelled */
        /* A deadline's cancellation comes back as the timeout it was. */
        if (self->cancel_kind != URT__CANCEL_NONE) rc = urt__cancel_passed(self, rc);
    }
    fill(nodes, n, values, errors);
out:
    if (nodes != inline_nodes) free(nodes);
    return rc;
}
