/*
 * Timeout scopes (asyncio.timeout) and wait_for.
 *
 * A scope is a deadline on a stretch of one task's code.  When it passes,
 * the task is cancelled with another code: the wait it is in (any wait: an
 * op, a wait queue, an await, a gather) is cut and returns URT_ETIMEDOUT, or,
 * if it is running or ready, its next suspension point inside the scope
 * does.  One cut per deadline, as asyncio cancels once: code that handles it
 * may go on waiting inside the scope.
 *
 * Deadlines cost no SQE: the loop keeps them in a min-heap, fires the ones
 * that passed at each turn boundary, and never blocks in the kernel past
 * the earliest (loop.c).  Entering and leaving a scope is a heap push and
 * remove; a million connections, each with a scope around its read, cost
 * no system call for their deadlines until one passes.
 *
 * The nodes are the loop's, not the caller's: a scope left entered by a
 * function that returned (a mistake C cannot stop) is then only a stale
 * entry of its task, dropped when the task ends, never memory of a frame
 * that is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define NO_DEADLINE UINT64_MAX

/* urt_timeout._flags, kept for urt_timeout_expired after the exit. */
#define FLAG_FIRED 1u

/* ---- the deadline heap ---- */

static bool before(const struct urt__scope *a, const struct urt__scope *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct urt_loop *loop, size_t i, struct urt__scope *s)
{
    loop->deadlines[i] = s;
    s->heap_at = i + 1;
}

static void sift_up(struct urt_loop *loop, size_t i)
{
    struct urt__scope *s = loop->deadlines[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(s, loop->deadlines[parent])) break;
        heap_set(loop, i, loop->deadlines[parent]);
        i = parent;
    }
    heap_set(loop, i, s);
}

static void sift_down(struct urt_loop *loop, size_t i)
{
    struct urt__scope *s = loop->deadlines[i];
    size_t n = loop->deadlines_len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && before(loop->deadlines[child + 1], loop->deadlines[child])) child++;
        if (!before(loop->deadlines[child], s)) break;
        heap_set(loop, i, loop->deadlines[child]);
        i = child;
    }
    heap_set(loop, i, s);
}

static int heap_push(struct urt_loop *loop, struct urt__scope *s)
{
    if (loop->deadlines_len == loop->deadlines_cap) {
        size_t cap = loop->deadlines_cap ? loop->deadlines_cap * 2 : 16;
        struct urt__scope **d = realloc(loop->deadlines, cap * sizeof *d);
        if (!d) return -ENOMEM;
        loop->deadlines = d;
        loop->deadlines_cap = cap;
    }
    loop->deadlines[loop->deadlines_len++] = s;
    sift_up(loop, loop->deadlines_len - 1);
    return 0;
}

static void heap_remove(struct urt_loop *loop, struct urt__scope *s)
{
    if (!s->heap_at) return;
    size_t i = s->heap_at - 1;
    s->heap_at = 0;
    struct urt__scope *last = loop->deadlines[--loop->deadlines_len];
    if (last == s) return;
    heap_set(loop, i, last);
    if (i > 0 && before(last, loop->deadlines[(i - 1) / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

void urt__deadlines_fire(struct urt_loop *loop)
{
    uint64_t now = urt_now();
    while (loop->deadlines_len && loop->deadlines[0]->deadline <= now) {
        struct urt__scope *s = loop->deadlines[0];
        heap_remove(loop, s);
        urt__task_cut(loop, s->task, s);
    }
}

/* ---- scopes ---- */

static struct urt__scope *scope_of(struct urt_loop *loop, const urt_timeout *h)
{
    struct urt__scope *s = h->_node;
    if (!s || !h->_id || s->id != h->_id || s->loop != loop || s->group) return NULL;
    return s;
}

static int set_deadline(struct urt_loop *loop, struct urt__scope *s, uint64_t deadline)
{
    heap_remove(loop, s);
    s->deadline = deadline;
    return deadline == NO_DEADLINE ? 0 : heap_push(loop, s);
}

void urt__scope_free(struct urt_loop *loop, struct urt__scope *s)
{
    heap_remove(loop, s);
    s->id = 0;
    s->task = NULL;
    s->outer = loop->scope_free;
    loop->scope_free = s;
}

void urt__scope_drop_cut(struct urt__task *t, struct urt__scope *s)
{
    if (t->cancel_kind != URT__CANCEL_SCOPE || t->cancel_scope != s) return;
    t->cancel_pending = false;
    t->cancel_kind = URT__CANCEL_NONE;
    t->cancel_scope = NULL;
}

struct urt__scope *urt__scope_enter(struct urt_loop *loop, uint64_t deadline, int *err)
{
    struct urt__task *self = loop->current;
    struct urt__scope *s = loop->scope_free;
    if (s)
        loop->scope_free = s->outer;
    else if (!(s = malloc(sizeof *s)))
        return *err = -ENOMEM, NULL;
    *s = (struct urt__scope){
        .id = ++loop->scope_seq,
        .seq = loop->scope_seq,
        .deadline = NO_DEADLINE,
        .loop = loop,
        .task = self,
        .outer = self->scopes,
        .depth = self->scopes ? self->scopes->depth + 1 : 1,
        .requests_at_entry = self->cancel_requests,
    };
    if ((*err = set_deadline(loop, s, deadline))) {
        urt__scope_free(loop, s);
        return NULL;
    }
    self->scopes = s;
    return s;
}

void urt__scope_leave(struct urt_loop *loop, struct urt__scope *s)
{
    struct urt__task *self = s->task;
    self->scopes = s->outer;
    /* A cancellation seen inside was seen inside the enclosing scope too. */
    if (s->cancelled && s->outer) s->outer->cancelled = true;
    if (s->fired && self->cancel_requests) self->cancel_requests--;
    urt__scope_drop_cut(self, s);
    urt__scope_free(loop, s);
}

int urt_timeout_enter_at(urt_timeout *h, uint64_t deadline)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!h) return -EINVAL;
    int err;
    struct urt__scope *s = urt__scope_enter(loop, deadline, &err);
    if (!s) return err;
    *h = (urt_timeout){._node = s, ._id = s->id};
    return 0;
}

int urt_timeout_enter(urt_timeout *h, uint64_t timeout_ns)
{
    return urt_timeout_enter_at(h, timeout_ns == URT_NO_TIMEOUT ? NO_DEADLINE
                                                                : urt__deadline_after(timeout_ns));
}

int urt_timeout_exit(urt_timeout *h)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!h) return -EINVAL;
    struct urt__scope *s = scope_of(loop, h);
    struct urt__task *self = loop->current;
    if (!s || s->group || s->task != self || self->scopes != s) return -EINVAL;
    /* A deadline that met another cancellation still counted (asked for
     * before it, or inside the scope and handled there) reports that one,
     * as asyncio's Timeout does by its task's cancelling() count. */
    bool outstanding = self->cancel_requests > s->requests_at_entry + 1;
    int rc = s->delivered && !outstanding ? URT_ETIMEDOUT : 0;
    h->_id = 0;
    h->_flags = s->fired ? FLAG_FIRED : 0;
    urt__scope_leave(loop, s);
    return rc;
}

int urt_timeout_reschedule(urt_timeout *h, uint64_t deadline)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!h) return -EINVAL;
    struct urt__scope *s = scope_of(loop, h);
    if (!s) return -EINVAL;
    if (s->fired) return -EALREADY;
    return set_deadline(loop, s, deadline);
}

int urt_timeout_expired(const urt_timeout *h)
{
    if (!h) return -EINVAL;
    struct urt_loop *loop = urt__running();
    struct urt__scope *s = loop ? scope_of(loop, h) : NULL;
    if (s) return s->fired;
    return h->_flags & FLAG_FIRED ? 1 : 0;
}

uint64_t urt_timeout_when(const urt_timeout *h)
{
    if (!h) return URT_NO_TIMEOUT;
    struct urt_loop *loop = urt__running();
    struct urt__scope *s = loop ? scope_of(loop, h) : NULL;
    return s ? s->deadline : URT_NO_TIMEOUT;
}

void urt__scopes_release(struct urt_loop *loop, struct urt__task *t)
{
    while (t->scopes) {
        struct urt__scope *s = t->scopes;
        t->scopes = s->outer;
        if (s->group) urt__group_abandon(loop, s->group);
        urt__scope_free(loop, s);
    }
    t->cancel_kind = URT__CANCEL_NONE;
    t->cancel_scope = NULL;
}

void urt__scopes_destroy(struct urt_loop *loop)
{
    for (struct urt__scope *s = loop->scope_free, *next; s; s = next) {
        next = s->outer;
        free(s);
    }
    loop->scope_free = NULL;
    free(loop->deadlines);
    loop->deadlines = NULL;
    loop->deadlines_len = loop->deadlines_cap = 0;
}

/* ---- wait_for ---- */

int urt_wait_for(urt_task task, uint64_t timeout_ns, intptr_t *value)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, task);
    if (!t) return URT_EBADTASK;
    if (t->state == URT__DONE) return urt__outcome(t->result, value);
    urt_timeout scope;
    int rc = urt_timeout_enter(&scope, timeout_ns);
    if (rc) return rc;
    /* On the deadline the await passes the cut on to the task and waits
     * for it to end: a task that finished with URT_ECANCELED comes back as
     * URT_ETIMEDOUT, one that handled it and returned a value as that. */
    rc = urt_task_await(task, value);
    urt_timeout_exit(&scope);
    return rc;
}
