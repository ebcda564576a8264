/*
 * Task groups (asyncio.TaskGroup).
 *
 * A group is a scope of its owner (the task that entered it) plus the
 * children spawned into it, each watched by a waiter node.  The first
 * child to fail aborts the group: the other children are cancelled and the
 * owner's code inside the group is cut like a timeout scope's, but with
 * URT_ECANCELED; the exit waits for every child and reports each failure
 * in the order they happened.  A child that ends cancelled is no failure.
 *
 * The group's state is the loop's, found through the handle as a timeout
 * scope is: a child's node never points into a frame that is gone, even if
 * the owner returned without the exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct child {
    struct urt__waiter w; /* in the child's waiter list until it ends */
    struct child *prev, *next;
};

struct urt__group {
    struct urt__scope *scope; /* in the owner; NULL once exited or abandoned */
    struct urt__task *owner;
    struct child *children; /* those not finished, in spawn order */
    struct child *last;
    size_t spawned;
    urt_group_error *errors; /* failures, in the order they happened */
    size_t nerrors, errors_cap;
    size_t errors_lost; /* failures with no memory to record them */
    int first_error;
    bool aborting; /* a child failed, or the owner was cancelled */
    bool exiting;  /* the owner waits in urt_group_exit */
};

static struct urt__group *group_of(struct urt_loop *loop, const urt_group *h)
{
    struct urt__scope *s = h ? h->_node : NULL;
    if (!s || !h->_id || s->id != h->_id || s->loop != loop || !s->group) return NULL;
    return s->group;
}

static void unlink_child(struct urt__group *g, struct child *c)
{
    if (c->prev) c->prev->next = c->next; else g->children = c->next;
    if (c->next) c->next->prev = c->prev; else g->last = c->prev;
}

/* Cancels every child not finished, in spawn order, and cuts the owner's
 * code inside the group unless it is waiting in the exit already. */
void urt__group_cancel(struct urt_loop *loop, struct urt__group *g)
{
    if (g->aborting) return;
    g->aborting = true;
    for (struct child *c = g->children; c; c = c->next) urt__task_request_cancel(loop, c->w.target);
    if (g->scope && !g->exiting) urt__task_cut(loop, g->owner, g->scope);
}

static void record_error(struct urt__group *g, size_t index, int error)
{
    if (g->nerrors == g->errors_cap) {
        size_t cap = g->errors_cap ? g->errors_cap * 2 : 4;
        urt_group_error *e = realloc(g->errors, cap * sizeof *e);
        if (!e) {
            g->errors_lost++;
            return;
        }
        g->errors = e;
        g->errors_cap = cap;
    }
    g->errors[g->nerrors++] = (urt_group_error){.index = index, .error = error};
}

static void group_free(struct urt__group *g)
{
    free(g->errors);
    free(g);
}

void urt__group_child_done(struct urt_loop *loop, struct urt__waiter *w)
{
    struct child *c = container_of(w, struct child, w);
    struct urt__group *g = w->group;
    unlink_child(g, c);
    if (urt__is_exception(w->result)) {
        if (!g->first_error) g->first_error = (int)w->result;
        record_error(g, w->index, (int)w->result);
        urt__group_cancel(loop, g);
    }
    free(c);
    if (g->children) return;
    /* Not twice: a child spawned late may end before the owner runs. */
    if (g->exiting) {
        if (g->owner->state == URT__WAITING) urt__make_ready(loop, g->owner);
    } else if (!g->scope) {
        group_free(g); /* abandoned by its owner: nobody will exit it */
    }
}

int urt__group_push_children(struct urt_loop *loop, struct urt__group *g, size_t *len)
{
    for (struct child *c = g->children; c; c = c->next)
        if (urt__search_push(loop, len, c->w.target)) return -ENOMEM;
    return 0;
}

void urt__group_abandon(struct urt_loop *loop, struct urt__group *g)
{
    g->scope = NULL;
    g->aborting = false; /* the owner is gone: only the children to cancel */
    urt__group_cancel(loop, g);
    if (!g->children) group_free(g);
}

int urt_group_enter(urt_group *h)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!h) return -EINVAL;
    struct urt__group *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    int err;
    struct urt__scope *s = urt__scope_enter(loop, UINT64_MAX, &err);
    if (!s) {
        free(g);
        return err;
    }
    s->group = g;
    g->scope = s;
    g->owner = loop->current;
    *h = (urt_group){._node = s, ._id = s->id};
    return 0;
}

int urt_group_spawn_opts(urt_group *h, urt_task *task, urt_fn fn, void *arg,
                         const urt_task_opts *opts)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__group *g = group_of(loop, h);
    if (!g || !fn) return -EINVAL;
    /* Children may still spawn siblings while the owner waits in the exit,
     * as in asyncio; not once the group is aborting. */
    if (g->aborting) return -ESHUTDOWN;
    struct child *c = malloc(sizeof *c);
    if (!c) return -ENOMEM;
    urt_task handle;
    int err = urt__task_spawn(loop, &handle, fn, arg, opts);
    if (err) {
        free(c);
        return err;
    }
    struct urt__task *t = urt__task_lookup(loop, handle);
    *c = (struct child){.w = {.group = g, .index = g->spawned++}, .prev = g->last};
    urt__waiter_link(t, &c->w);
    if (g->last) g->last->next = c; else g->children = c;
    g->last = c;
    if (task)
        *task = handle;
    else
        urt_task_release(handle); /* the group watches it; nobody else will */
    return 0;
}

int urt_group_spawn(urt_group *h, urt_task *task, urt_fn fn, void *arg)
{
    return urt_group_spawn_opts(h, task, fn, arg, NULL);
}

int urt_group_cancel(urt_group *h)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__group *g = group_of(loop, h);
    if (!g) return -EINVAL;
    /* The owner's cut is the group's own scope's: its exit, which takes it
     * back, reports nothing for it (timeout.c, urt__scope_leave). */
    urt__group_cancel(loop, g);
    return 0;
}

int urt_group_exit(urt_group *h, urt_group_error *errors, size_t cap, size_t *nerrors)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__group *g = group_of(loop, h);
    struct urt__task *self = loop->current;
    if (!g || g->owner != self || self->scopes != g->scope || (cap && !errors)) return -EINVAL;
    struct urt__scope *s = g->scope;

    /* A cancellation that reached the owner's code inside the group, or
     * that is due now (the exit is a suspension point), ends the children. */
    int cancel_code = 0;
    urt__scope_drop_cut(self, s);
    if (self->cancel_pending)
        cancel_code = urt__cancel_take(self);
    else if (s->cancelled)
        cancel_code = URT_ECANCELED;
    else if (s->cut_through)
        cancel_code = s->cut_through; /* an enclosing timeout's or group's */
    /* Exiting first: the owner's code is over, so aborting cuts nothing. */
    g->exiting = true;
    if (cancel_code) urt__group_cancel(loop, g);

    /* A loop: between the last child's end and the owner's turn to run,
     * another task may spawn into the group, and the exit waits for that
     * child too (it would otherwise end in a group already freed). */
    while (g->children) {
        self->state = URT__WAITING;
        self->wait = URT__WAIT_GROUP;
        self->waiting_on.group = g;
        urt__suspend(loop);
        self->wait = URT__WAIT_NONE;
        /* Cancelled while waiting (cancel_one wakes the exit), or after
         * the last child ended: as TaskGroup.__aexit__, which catches the
         * CancelledError and only now aborts. */
        if (self->cancel_pending) {
            cancel_code = urt__cancel_take(self);
            urt__group_cancel(loop, g);
        }
    }
    if (nerrors) *nerrors = g->nerrors + g->errors_lost;
    size_t copied = cap < g->nerrors ? cap : g->nerrors;
    if (copied) memcpy(errors, g->errors, copied * sizeof *errors);
    /* As asyncio: the children's failures win over the cancellation. */
    bool failed = g->first_error != 0;
    int rc = failed ? g->first_error : cancel_code;
    h->_id = 0;
    g->scope = NULL;
    urt__scope_leave(loop, s);
    group_free(g);
    /* The failures won, but a cancellation from outside the group (one
     * still counted once the group's own is taken back) must not be lost:
     * as asyncio's TaskGroup since 3.13, the owner is cancelled again. */
    if (failed && self->cancel_requests) urt__task_recancel(self);
    return rc;
}
