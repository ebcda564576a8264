/*
 * Tasks: creation, handles, await, cancel and release.
 *
 * Handles are (id, slot) pairs into the loop's slot table rather than
 * pointers, so that a released or stale handle is recognised and refused
 * instead of reaching freed or reused memory.  Ids are unique in the process
 * and never reused: a slot gets a fresh id whenever its handle stops being
 * valid, so no count of reuses, and no number of loops run before, can make
 * an old handle name a new task.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef URT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define SLOT_MAX 0xffffffu
/* Loops take handle ids from the process in blocks, so the shared counter
 * is touched once per this many tasks, not once per task. */
#define SERIAL_BLOCK (1u << 16)

static uint64_t next_serial_block = 1; /* 0 is URT_TASK_NONE's id */

__attribute__((noinline, cold)) static void take_serial_block(struct urt_loop *loop)
{
    loop->serial_next = __atomic_fetch_add(&next_serial_block, SERIAL_BLOCK, __ATOMIC_RELAXED);
    loop->serial_end = loop->serial_next + SERIAL_BLOCK;
}

static inline uint64_t new_serial(struct urt_loop *loop)
{
    if (unlikely(loop->serial_next == loop->serial_end)) take_serial_block(loop);
    return loop->serial_next++;
}

urt_task urt__task_handle(struct urt_loop *loop, struct urt__task *t)
{
    return (urt_task){loop->slots[t->slot].serial, (uint64_t)t->slot + 1};
}

/* A slot at the end of the table, grown when full: out of line, as it is
 * once per new high-water mark of tasks. */
__attribute__((noinline, cold)) static int slot_append(struct urt_loop *loop, uint32_t *out)
{
    if (loop->nslots == loop->slots_cap) {
        if (loop->slots_cap >= SLOT_MAX) return -ENOMEM;
        uint32_t cap = loop->slots_cap ? loop->slots_cap * 2 : 256;
        if (cap > SLOT_MAX) cap = SLOT_MAX;
        struct urt__slot *slots = realloc(loop->slots, cap * sizeof *slots);
        if (!slots) return -ENOMEM;
        loop->slots = slots;
        loop->slots_cap = cap;
    }
    *out = loop->nslots;
    loop->slots[loop->nslots++] = (struct urt__slot){0};
    return 0;
}

static inline int slot_alloc(struct urt_loop *loop, uint32_t *out)
{
    if (likely(loop->free_slot)) {
        uint32_t i = loop->free_slot - 1;
        loop->free_slot = loop->slots[i].next_free;
        *out = i;
        return 0;
    }
    return slot_append(loop, out);
}

static void slot_free(struct urt_loop *loop, uint32_t i)
{
    struct urt__slot *s = &loop->slots[i];
    s->task = NULL;
    s->serial = 0;
    s->next_free = loop->free_slot;
    loop->free_slot = i + 1;
}

static void task_free(struct urt_loop *loop, struct urt__task *t)
{
    slot_free(loop, t->slot);
    t->next_ready = loop->task_free;
    loop->task_free = t;
}

/* A control block beyond the recycled ones: out of line, so that spawning
 * from the free list carries no frame for the allocator. */
__attribute__((noinline, cold)) static struct urt__task *task_new(void)
{
    return malloc(sizeof(struct urt__task));
}

__attribute__((noinline, cold)) static void set_name(struct urt__task *t, const char *name)
{
    strncpy(t->name, name, URT_TASK_NAME_MAX - 1);
    t->name[URT_TASK_NAME_MAX - 1] = '\0';
}

/* The class of URT_STACK_DEFAULT, the size nearly every task gets. */
#define DEFAULT_STACK_CLASS (__builtin_ctz(URT_STACK_DEFAULT / URT_STACK_MIN))
_Static_assert((URT_STACK_MIN << DEFAULT_STACK_CLASS) == URT_STACK_DEFAULT,
               "the default stack is a class of its own (urt__stack_class)");

int urt__task_spawn(struct urt_loop *loop, urt_task *handle, urt_fn fn, void *arg,
                    const urt_task_opts *opts)
{
    if (unlikely(!fn)) return -EINVAL;
    unsigned size_class = DEFAULT_STACK_CLASS;
    int err;
    if (unlikely(opts && opts->stack_size) &&
        (err = urt__stack_class(opts->stack_size, &size_class)))
        return err;

    struct urt__task *t = loop->task_free;
    if (likely(t)) {
        loop->task_free = t->next_ready;
    } else if (!(t = task_new())) {
        return -ENOMEM;
    }
    uint32_t slot;
    if (unlikely(err = slot_alloc(loop, &slot))) {
        t->next_ready = loop->task_free;
        loop->task_free = t;
        return err;
    }
    t->fn = fn;
    t->arg = arg;
    t->result = 0;
    /* The stack comes when the task first runs (urt__task_start): a task
     * that is created and finishes before the next one starts hands the
     * same warm stack on, so a burst of short tasks needs one stack, not
     * one each. */
    t->stack = NULL;
    t->stack_class = (unsigned char)size_class;
    t->waiters_head = t->waiters_tail = NULL;
    t->number = ++loop->task_count;
    t->visit_mark = 0;
    t->slot = slot;
    t->state = URT__NEW;
    t->wait = URT__WAIT_NONE;
    t->cancel_pending = false;
    t->wake_deferred = false;
    t->group_callback = NULL;
    t->cancel_kind = URT__CANCEL_NONE;
    t->cancel_requests = 0;
    t->cancel_scope = NULL;
    t->scopes = NULL;
    t->released = handle == NULL;
    t->close_cancelled = false;
#ifdef URT_ASAN
    t->asan_fake_stack = NULL;
#endif
    t->has_name = opts && opts->name;
    if (unlikely(t->has_name)) set_name(t, opts->name);
    uint64_t serial = new_serial(loop);
    loop->slots[slot].task = t;
    loop->slots[slot].serial = serial;
    loop->live++;
    urt__make_ready(loop, t);
    if (handle) *handle = (urt_task){serial, (uint64_t)slot + 1};
    return 0;
}

int urt_task_create_opts(urt_task *task, urt_fn fn, void *arg, const urt_task_opts *opts)
{
    struct urt_loop *loop = urt__running();
    if (unlikely(!loop)) return URT_ENOLOOP;
    return urt__task_spawn(loop, task, fn, arg, opts);
}

int urt_task_create(urt_task *task, urt_fn fn, void *arg)
{
    struct urt_loop *loop = urt__running();
    if (unlikely(!loop)) return URT_ENOLOOP;
    return urt__task_spawn(loop, task, fn, arg, NULL);
}

void urt__waiter_link(struct urt__task *target, struct urt__waiter *w)
{
    w->target = target;
    w->next = NULL;
    w->prev = target->waiters_tail;
    if (target->waiters_tail)
        target->waiters_tail->next = w;
    else
        target->waiters_head = w;
    target->waiters_tail = w;
    w->linked = true;
    w->done = false;
}

void urt__waiter_unlink(struct urt__task *target, struct urt__waiter *w)
{
    if (!w->linked) return;
    if (w->prev) w->prev->next = w->next; else target->waiters_head = w->next;
    if (w->next) w->next->prev = w->prev; else target->waiters_tail = w->prev;
    w->linked = false;
}

void urt__task_finish(struct urt_loop *loop, struct urt__task *t, intptr_t result)
{
    t->result = result;
    t->finish_seq = ++loop->finish_count;
    t->state = URT__DONE;
    t->wait = URT__WAIT_NONE;
    /* Scopes it returned inside of: their nodes are the loop's, so this
     * touches no stack memory. */
    if (unlikely(t->scopes)) urt__scopes_release(loop, t);
    loop->live--;
    if (t->close_cancelled) loop->close_pending--;
    if (t == loop->main_task) {
        loop->main_result = result;
        loop->main_task = NULL;
        loop->closing = true;
    }
    /* Waiters wake in the order they began to wait.  A group learns of
     * the end as asyncio.TaskGroup does, in a done callback that runs in
     * the next pass; its node came first (linked at the spawn), so the
     * callback is queued before the awaiters it would precede. */
    struct urt__waiter *w;
    while ((w = t->waiters_head)) {
        urt__waiter_unlink(t, w);
        w->result = result;
        w->done = true;
        if (w->gather) {
            urt__gather_child_done(loop, w);
        } else if (w->group) {
            t->group_callback = w;
            t->wake_deferred = true;
            urt__ready_append(loop, t);
        } else {
            urt__make_ready(loop, w->task);
        }
    }
    if (t->released && !t->group_callback) task_free(loop, t);
}

void urt__task_run_callback(struct urt_loop *loop, struct urt__task *t)
{
    struct urt__waiter *w = t->group_callback;
    t->group_callback = NULL;
    urt__group_child_done(loop, w); /* may free w */
    if (t->released) task_free(loop, t);
}

int urt__task_start(struct urt_loop *loop, struct urt__task *t)
{
    int err = urt__stack_alloc(loop, t->stack_class, &t->stack);
    if (unlikely(err)) return err;
    urt__ctx_init(&t->ctx, t->stack, urt__task_entry, t);
    return 0;
}

void urt__task_entry(void *arg)
{
    struct urt__task *t = arg;
#ifdef URT_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    struct urt_loop *loop = urt__loop;
    /* One fiber may run several tasks, one after another, on the same
     * stack: urt__exit_task returns when it hands the stack on. */
    for (;;) {
        t->state = URT__RUNNING;
        intptr_t result = t->fn(t->arg);
        /* The stack is the fiber's, not the task's any more: finishing may
         * free the control block. */
        struct urt__stack *stack = t->stack;
        t->stack = NULL;
        urt__task_finish(loop, t, result);
        t = urt__exit_task(loop, t, stack);
    }
}

int urt__search_push(struct urt_loop *loop, size_t *len, struct urt__task *t)
{
    if (*len == loop->search_cap) {
        size_t cap = loop->search_cap ? loop->search_cap * 2 : 64;
        struct urt__task **s = realloc(loop->search, cap * sizeof *s);
        if (!s) return -ENOMEM;
        loop->search = s;
        loop->search_cap = cap;
    }
    loop->search[(*len)++] = t;
    return 0;
}

/* Pushes what t waits for: the task it awaits, or a gather's unfinished
 * children. */
static int push_awaited(struct urt_loop *loop, size_t *len, struct urt__task *t)
{
    if (!urt__waits_on_others(t)) return 0;
    if (t->wait == URT__WAIT_TASK) return urt__search_push(loop, len, t->waiting_on.task);
    if (t->wait == URT__WAIT_SHIELD)
        return urt__search_push(loop, len, t->waiting_on.waiter->target);
    if (t->wait == URT__WAIT_GROUP) return urt__group_push_children(loop, t->waiting_on.group, len);
    if (t->wait != URT__WAIT_GATHER && t->wait != URT__WAIT_SET) return 0;
    return urt__gather_push_children(loop, t->waiting_on.gather, len);
}

bool urt__would_deadlock(struct urt_loop *loop, struct urt__task *waiter,
                         struct urt__task *target)
{
    uint64_t epoch = ++loop->visit_epoch;
    size_t len = 0;
    if (urt__search_push(loop, &len, target)) return false;
    while (len) {
        struct urt__task *t = loop->search[--len];
        if (t == waiter) return true;
        if (t->visit_mark == epoch) continue;
        t->visit_mark = epoch;
        if (push_awaited(loop, &len, t)) return false;
    }
    return false;
}

/* Records what the pending (or passed-on) cancellation of t is. */
static void mark_cancel(struct urt__task *t, unsigned char kind, struct urt__scope *scope)
{
    t->cancel_kind = kind;
    t->cancel_scope = scope;
}

/* Pushes what t, waiting in await or gather, passes a cancellation on to:
 * the awaited task, or the gather's unfinished children (the gather then
 * counts as cancelled).  Nonzero when the walk's stack had no room. */
static int push_passed_on(struct urt_loop *loop, struct urt__task *t, size_t *len)
{
    if (t->wait == URT__WAIT_TASK) return urt__search_push(loop, len, t->waiting_on.task);
    t->waiting_on.gather->cancel_requested = true;
    return urt__gather_push_children(loop, t->waiting_on.gather, len);
}

/* One step of cancel_walk: cancels t, or passes the cancellation on to
 * what t waits for by pushing it on the walk's stack. */
static void cancel_one(struct urt_loop *loop, struct urt__task *t, bool is_first,
                       unsigned char kind, struct urt__scope *scope, size_t *len)
{
    if (is_first) {
        mark_cancel(t, kind, scope);
    } else {
        t->cancel_requests++;
        mark_cancel(t, URT__CANCEL_REQUEST, NULL);
    }
    if (t->state != URT__WAITING) {
        t->cancel_pending = true;
        return;
    }
    switch (t->wait) {
    case URT__WAIT_OP:
        t->cancel_pending = true;
        urt__op_cancel(loop, t->waiting_on.op);
        break;
    case URT__WAIT_PARKED:
        t->cancel_pending = true;
        urt__park_cancel(loop, t->waiting_on.parked);
        break;
    case URT__WAIT_GROUP:
        /* As asyncio's TaskGroup: the exit wakes, and only then cancels
         * the children and goes on waiting for them (group.c). */
        t->cancel_pending = true;
        urt__make_ready(loop, t);
        break;
    case URT__WAIT_SET:
        /* asyncio.wait's tasks are not the waiter's to cancel. */
        t->cancel_pending = true;
        t->waiting_on.gather->woken = true;
        urt__make_ready(loop, t);
        break;
    case URT__WAIT_SHIELD: {
        /* The shielded task is not told: only the wait ends. */
        struct urt__waiter *w = t->waiting_on.waiter;
        t->cancel_pending = true;
        urt__waiter_unlink(w->target, w);
        urt__make_ready(loop, t);
        break;
    }
    case URT__WAIT_TASK:
    case URT__WAIT_GATHER:
        if (push_passed_on(loop, t, len)) t->cancel_pending = true;
        break;
    default:
        t->cancel_pending = true;
        break;
    }
}

/*
 * Cancellation follows asyncio's Task.cancel: a task waiting on another task
 * or on a gather passes the request on to what it waits for and keeps
 * waiting; a task waiting on an op gets it from that op; a task that is
 * running or ready keeps it pending for its next suspension point.  Chains
 * of awaits can be long, so this walks them without recursion.  Only first
 * gets kind: what it passes the cancellation on to is simply cancelled.
 */
static void cancel_walk(struct urt_loop *loop, struct urt__task *first, unsigned char kind,
                        struct urt__scope *scope)
{
    /* first is not pushed: with no memory for the walk's stack it is still
     * cancelled, which is what matters most (a parked task would otherwise
     * keep waiting with the cancellation pending).  The tasks it passes the
     * cancellation on to need the stack. */
    size_t len = 0;
    for (struct urt__task *t = first;; t = loop->search[--len]) {
        if (t->state != URT__DONE) cancel_one(loop, t, t == first, kind, scope, &len);
        if (!len) break;
    }
}

/* What t awaits, a task or a gather's unfinished children, is cancelled
 * (again), and on along their own waits; t's own cancellation stays. */
static void cancel_awaited_again(struct urt_loop *loop, struct urt__task *t)
{
    if (t->state != URT__WAITING || (t->wait != URT__WAIT_TASK && t->wait != URT__WAIT_GATHER))
        return;
    size_t len = 0;
    (void)push_passed_on(loop, t, &len); /* with no room: what fitted */
    while (len) {
        struct urt__task *next = loop->search[--len];
        if (next->state != URT__DONE) cancel_one(loop, next, false, URT__CANCEL_REQUEST, NULL, &len);
    }
}

void urt__task_request_cancel(struct urt_loop *loop, struct urt__task *t)
{
    if (t->state != URT__DONE) t->cancel_requests++;
    cancel_walk(loop, t, URT__CANCEL_REQUEST, NULL);
}

void urt__task_cut(struct urt_loop *loop, struct urt__task *t, struct urt__scope *s)
{
    s->fired = true;
    if (t->state == URT__DONE) return;
    t->cancel_requests++;
    if (t->cancel_kind == URT__CANCEL_NONE) {
        cancel_walk(loop, t, URT__CANCEL_SCOPE, s);
        return;
    }
    /* A cancellation is in flight already.  As asyncio's Timeout calls
     * task.cancel() again: a task still awaiting another task or a gather
     * cancels what it awaits again; one waiting on anything else is being
     * cancelled already. */
    cancel_awaited_again(loop, t);
    if (t->cancel_kind == URT__CANCEL_SCOPE) {
        /* One cut at a time: the outer scope's cuts off more. */
        if (s->depth < t->cancel_scope->depth) t->cancel_scope = s;
    } else if (t->state != URT__WAITING && !t->cancel_pending) {
        /* Passed on, and the awaited task has woken it: it takes the cut
         * when it runs. */
        cancel_walk(loop, t, URT__CANCEL_SCOPE, s);
    }
}

void urt__task_recancel(struct urt__task *t)
{
    /* The outermost deadline that fired, if one did: it cuts off most. */
    struct urt__scope *cut = NULL;
    for (struct urt__scope *s = t->scopes; s; s = s->outer)
        if (s->fired) cut = s;
    mark_cancel(t, cut ? URT__CANCEL_SCOPE : URT__CANCEL_REQUEST, cut);
    t->cancel_pending = true;
}

int urt__cancel_passed(struct urt__task *self, int result)
{
    unsigned char kind = self->cancel_kind;
    struct urt__scope *s = self->cancel_scope;
    self->cancel_kind = URT__CANCEL_NONE;
    self->cancel_scope = NULL;
    /* Only a cancellation that came out of the wait reached the code after
     * it: one the awaited task handled, returning a value, is spent, as in
     * asyncio, where the awaiter never sees a CancelledError then. */
    bool came_out = result == URT_ECANCELED;
    if (kind == URT__CANCEL_REQUEST && self->scopes && came_out) self->scopes->cancelled = true;
    if (kind != URT__CANCEL_SCOPE || !came_out) return result;
    s->delivered = true;
    self->cancel_scope = s;
    urt__mark_cut_through(self, s->group ? URT_ECANCELED : URT_ETIMEDOUT);
    self->cancel_scope = NULL;
    return s->group ? result : URT_ETIMEDOUT;
}

/* await and shield: waits for t as waiter w.  A cancellation reaches t
 * through an await (kind URT__WAIT_TASK), not through a shield. */
static int wait_task(struct urt_loop *loop, struct urt__task *t, unsigned char wait,
                     intptr_t *value)
{
    struct urt__task *self = loop->current;
    struct urt__waiter w = {.task = self};
    urt__waiter_link(t, &w);
    self->state = URT__WAITING;
    self->wait = wait;
    if (wait == URT__WAIT_TASK)
        self->waiting_on.task = t;
    else
        self->waiting_on.waiter = &w;
    if (self->cancel_pending) {
        if (wait == URT__WAIT_TASK) {
            /* asyncio hands a pending cancellation to what the task awaits. */
            self->cancel_pending = false;
            urt__task_request_cancel(loop, t);
            /* ... keeping its kind: a scope's deadline is still one */
        } else {
            self->wait = URT__WAIT_NONE;
            self->state = URT__RUNNING;
            urt__waiter_unlink(t, &w);
            return urt__deliver_pending_cancel(loop, self);
        }
    }
    urt__suspend(loop);
    self->wait = URT__WAIT_NONE;
    /* Cancelled after the awaited task had woken us, or (shield) while
     * waiting. */
    if (self->cancel_pending) return urt__cancel_take(self);
    int rc = urt__outcome(w.result, value);
    if (self->cancel_kind != URT__CANCEL_NONE) rc = urt__cancel_passed(self, rc);
    return rc;
}

/* The checks await and shield share before wait_task. */
static int await_as(urt_task handle, intptr_t *value, unsigned char wait)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    struct urt__task *self = loop->current;
    if (t == self) return -EDEADLK;
    /* Done: no suspension, so a pending cancellation is not delivered. */
    if (t->state == URT__DONE) return urt__outcome(t->result, value);
    /* Only a waiting task can be part of a cycle.  A shield cuts the
     * cancellation's path, not the waiting's. */
    if (urt__waits_on_others(t) && urt__would_deadlock(loop, self, t)) return -EDEADLK;
    return wait_task(loop, t, wait, value);
}

int urt_task_await(urt_task handle, intptr_t *value)
{
    return await_as(handle, value, URT__WAIT_TASK);
}

int urt_shield(urt_task handle, intptr_t *value)
{
    return await_as(handle, value, URT__WAIT_SHIELD);
}

int urt_task_cancel(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    if (t->state == URT__DONE) return 0;
    urt__task_request_cancel(loop, t);
    return 1;
}

/* Whether t's pending cancellation has ended a wait already (what t waited
 * on was cancelled, and t is to run with it), rather than waiting for its
 * next suspension point, as one asked while t ran, yielded or was new. */
static bool cancel_reached_wait(const struct urt__task *t)
{
    return t->state == URT__WAITING || (t->state == URT__READY && t->wait != URT__WAIT_NONE);
}

static int count_of(const struct urt__task *t)
{
    return t->cancel_requests > INT_MAX ? INT_MAX : (int)t->cancel_requests;
}

int urt_task_cancelling(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    return count_of(t);
}

int urt_task_uncancel(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    if (t->cancel_requests && --t->cancel_requests == 0 && t->cancel_pending &&
        !cancel_reached_wait(t)) {
        /* Kept for its next suspension point: 3.13's uncancel drops it, as
         * it drops _must_cancel. */
        t->cancel_pending = false;
        mark_cancel(t, URT__CANCEL_NONE, NULL);
    }
    return count_of(t);
}

int urt_task_release(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t || t->released) return URT_EBADTASK;
    t->released = true;
    if (t->state == URT__DONE && !t->group_callback) {
        task_free(loop, t);
    } else {
        /* The task runs on; only this handle dies. */
        loop->slots[t->slot].serial = new_serial(loop);
    }
    return 0;
}

int urt_task_done(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    return t->state == URT__DONE;
}

int urt_task_cancelled(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    return t->state == URT__DONE && t->result == URT_ECANCELED;
}

int urt_task_result(urt_task handle, intptr_t *value)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return URT_EBADTASK;
    if (t->state != URT__DONE) return -EAGAIN;
    return urt__outcome(t->result, value);
}

const char *urt_task_name(urt_task handle)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return NULL;
    struct urt__task *t = urt__task_lookup(loop, handle);
    if (!t) return NULL;
    if (!t->has_name) { /* formatted on demand: most tasks are never asked */
        snprintf(t->name, sizeof t->name, "Task-%llu", (unsigned long long)t->number);
        t->has_name = true;
    }
    return t->name;
}

urt_task urt_task_current(void)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_TASK_NONE;
    return urt__task_handle(loop, loop->current);
}

void urt__tasks_destroy(struct urt_loop *loop)
{
    for (uint32_t i = 0; i < loop->nslots; i++) free(loop->slots[i].task);
    for (struct urt__task *t = loop->task_free, *next; t; t = next) {
        next = t->next_ready;
        free(t);
    }
    free(loop->slots);
    free(loop->search);
    loop->slots = NULL;
    loop->task_free = NULL;
    loop->search = NULL;
}
