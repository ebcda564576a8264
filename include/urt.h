/*
 * urt.h - asyncio's programming model in C, on io_uring, with fibers.
 *
 * This header is the manual: everything a program needs is declared and
 * documented here.  The rules it follows are in SEMANTICS.md; the short form:
 *
 *   - urt_run() starts a loop on the calling thread and runs a main task in it.
 *     A thread has at most one running loop; every other urt call must be made
 *     from a task running inside it (otherwise it returns URT_ENOLOOP).
 *   - A task is a function running on its own fiber (a stack of its own).  It
 *     runs until it reaches a suspension point (urt_sleep, urt_yield,
 *     urt_task_await, urt_gather, I/O ...), where other tasks get to run.
 *   - Nothing is preemptive: between two suspension points a task runs alone.
 *
 * Errors: every function that can fail returns a negative errno-style code
 * (the convention of io_uring's cqe->res), never aborts and never prints.
 * Besides the plain errno values (-EINVAL, -ENOMEM, ...) urt has codes of its
 * own for its own conditions, listed below; urt_strerror() names them all.
 */
#ifndef URT_H
#define URT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define URT_API __attribute__((visibility("default")))
#else
#define URT_API
#endif

#define URT_VERSION_MAJOR 0
#define URT_VERSION_MINOR 1
#define URT_VERSION_PATCH 0

/* ------------------------------------------------------------------------
 * Error codes
 *
 * urt's own codes live in -4095..-4000, above every errno value, so that a
 * task result or an I/O result can carry either without ambiguity.  A value
 * v is an error exactly when URT_IS_ERROR(v): the same test the kernel's
 * IS_ERR_VALUE makes.
 * ---------------------------------------------------------------------- */

/* The task was cancelled (asyncio.CancelledError). */
#define URT_ECANCELED   (-4001)
/* A deadline passed (asyncio.TimeoutError).  Used by the timeout APIs. */
#define URT_ETIMEDOUT   (-4002)
/* The task handle was never valid, was released, or belongs to a loop that
 * has ended. */
#define URT_EBADTASK    (-4003)
/* The call needs a running loop and a current task on this thread, and there
 * is none (called before urt_run, after it, or from another thread). */
#define URT_ENOLOOP     (-4004)
/* No more guarded stacks can be mapped: the kernel lacks MADV_GUARD_INSTALL
 * (Linux < 6.13), so every guard page costs a memory mapping, and the process
 * reached vm.max_map_count (65530 by default, about 32,000 stacks).  Raise it
 * with `sysctl vm.max_map_count=N`, or keep fewer tasks started and not yet
 * finished at once.  A task due to start when this happens ends with this
 * error instead of running (urt_task_create). */
#define URT_ESTACKLIMIT (-4005)

/* True when a task result, an I/O result or a return code is an error. */
#define URT_IS_ERROR(v) ((intptr_t)(v) < 0 && (intptr_t)(v) >= -4095)

/*
 * Returns a static, human-readable description of an error code: urt's own
 * codes and every errno value (negative, as urt returns them).  Never NULL.
 */
URT_API const char *urt_strerror(int err);

/* ------------------------------------------------------------------------
 * Tasks and the loop
 *
 * A task function takes the argument given at creation and returns a
 * pointer-sized value.  A return value for which URT_IS_ERROR() holds
 * (-4095..-1) means the task failed with that error; any other value (every
 * pointer, every non-negative integer) is its result.
 *
 * Task handles.  A urt_task is a small value (copy it freely) naming one task
 * of one loop.  It stays valid, whether or not the task has finished, until
 * urt_task_release() is called on it or urt_run() returns; after that every
 * call given the handle returns URT_EBADTASK, and a handle can never come to
 * name another task.  Releasing does not stop a task: it runs on, detached,
 * and its memory goes as soon as it has finished.  A task created with a NULL
 * handle pointer is detached from the start.  Forgotten handles are reclaimed
 * when urt_run() returns, so nothing leaks; a long-running service should
 * release (or not take) handles it no longer needs, since each unreleased
 * finished task keeps its small control block until then.
 *
 * Order.  urt_task_create() schedules the task and returns at once; the new
 * task first runs when the caller reaches a suspension point.  Ready tasks run
 * in FIFO order.  When main returns, every task still alive is cancelled and
 * urt_run() waits until each has finished handling its cancellation.
 * ---------------------------------------------------------------------- */

typedef struct urt_task {
    uint64_t id;   /* opaque: unique in the process, never reused; 0 = none */
    uint64_t slot; /* opaque: where the loop keeps the task */
} urt_task;

#define URT_TASK_NONE ((urt_task){0, 0})

/* True when two handles are the same handle. */
static inline int urt_task_equal(urt_task a, urt_task b)
{
    return a.id == b.id && a.slot == b.slot;
}

typedef intptr_t (*urt_fn)(void *arg);

/* Longest task name kept, including the terminating NUL; longer ones are
 * truncated. */
#define URT_TASK_NAME_MAX 32

/* Default usable stack of a task, in bytes (a guard page is added below it).
 * Only the pages a task touches cost memory. */
#define URT_STACK_DEFAULT (128u * 1024u)
/* Smallest and largest stack a task may ask for.  A task's stack also
 * carries what runs while it is suspended or calling in: urt's scheduler
 * (under 1 KiB) and, on the first call of each library function in a
 * program linked lazily (the default), the dynamic linker, which takes
 * several KiB to save the vector registers and look the symbol up.  Leave
 * 8 KiB of a small stack to them, or link with -Wl,-z,now. */
#define URT_STACK_MIN (16u * 1024u)
#define URT_STACK_MAX (64u * 1024u * 1024u)

typedef struct urt_task_opts {
    const char *name;  /* NULL: "Task-N", numbered from 1 as in asyncio;
                        * copied, so it need not outlive the call */
    size_t stack_size; /* 0: URT_STACK_DEFAULT; rounded up to a power of two
                        * from URT_STACK_MIN to URT_STACK_MAX */
} urt_task_opts;

/*
 * Runs main(arg) as the first task of a new loop on this thread, and returns
 * when it and every other task of the loop have finished (asyncio.run).
 * When main returns, the tasks still alive are cancelled; urt_run waits for
 * them.  Then the loop is torn down: no task, stack, ring or memory of it
 * remains.  If value is not NULL, main's value is stored there on success.
 *
 * Returns 0 when main succeeded, main's error when it failed, or:
 *   -EINVAL   main is NULL.
 *   -EBUSY    a loop is already running on this thread.
 *   -ENOMEM   no memory for the loop, or for main's stack.
 *   URT_ESTACKLIMIT  no stack could be mapped for main (see above).
 *   -EDEADLK  tasks were left waiting on each other with nothing that could
 *             wake them, even after being cancelled.  await and gather refuse
 *             cycles, so this is a guard, not something a program should see.
 * and, when io_uring cannot be set up (nothing is run, nothing is printed):
 *   -ENOSYS   the kernel has no io_uring (CONFIG_IO_URING off, or < 5.1),
 *             or a seccomp filter hides it.
 *   -EPERM    io_uring is disabled for this process: sysctl
 *             kernel.io_uring_disabled is 2 (or 1 and the process is not in
 *             kernel.io_uring_group), or a seccomp profile (containers'
 *             default one) denies io_uring_setup.  Change the sysctl or run
 *             the container with a profile that allows io_uring_*.
 *   -ENOMEM   on kernels before 5.12 the ring is charged to RLIMIT_MEMLOCK;
 *             raise it (`ulimit -l`, or LimitMEMLOCK= in systemd).
 */
URT_API int urt_run(urt_fn main, void *arg, intptr_t *value);

/*
 * Creates a task running fn(arg) on the current loop and schedules it
 * (asyncio.create_task).  It starts when the caller next suspends.  If task is
 * not NULL it receives the handle; if it is NULL the task is detached.
 *
 * A task costs a small control block from here on, and a stack only from the
 * moment it first runs until it finishes: a million tasks created at once
 * that each finish before the next starts share one stack.  If no stack can
 * be had when the task is due to start (-ENOMEM, or URT_ESTACKLIMIT), it
 * ends without running, as a task cancelled before it ran does, and that
 * code is its error for whoever awaits it.
 *
 * Returns 0, or:
 *   -EINVAL          fn is NULL, or an option is out of range.
 *   URT_ENOLOOP      no loop is running on this thread.
 *   -ENOMEM          no memory for the task's control block.
 */
URT_API int urt_task_create(urt_task *task, urt_fn fn, void *arg);

/* urt_task_create() with options; opts may be NULL.  Same return codes. */
URT_API int urt_task_create_opts(urt_task *task, urt_fn fn, void *arg,
                                 const urt_task_opts *opts);

/*
 * Waits until the task has finished and gives its outcome (await task).
 * If the task has already finished, returns at once without suspending.
 * Several tasks may await the same task.  Cancelling the awaiting task
 * cancels the awaited one too, as in asyncio, and the awaiter keeps waiting
 * for its outcome.
 *
 * Returns 0 and stores the task's value in *value (if value is not NULL) when
 * the task succeeded; the task's error when it failed (URT_ECANCELED when it
 * was cancelled); or:
 *   URT_EBADTASK  the handle is not valid.
 *   URT_ENOLOOP   no loop is running on this thread.
 *   -EDEADLK      the task is the caller, or awaiting it would close a cycle
 *                 of tasks waiting on each other.
 */
URT_API int urt_task_await(urt_task task, intptr_t *value);

/*
 * Asks the task to stop (task.cancel()).  It does not kill: the task gets
 * URT_ECANCELED from the suspension point it is in, or from its next one, and
 * may handle it and go on.  A task cancelled before it ever ran never runs.
 * A task waiting on the kernel resumes only once the kernel has let go of
 * the operation.  Cancelling a task that waits in urt_task_await or
 * urt_gather cancels what it waits for.
 *
 * Returns 1 when the cancellation was requested, 0 when the task had already
 * finished (nothing is done), or URT_EBADTASK / URT_ENOLOOP.
 */
URT_API int urt_task_cancel(urt_task task);

/*
 * Gives up the handle (see "Task handles" above).  The task itself runs on.
 * Returns 0, or URT_EBADTASK (already released, or never valid) / URT_ENOLOOP.
 */
URT_API int urt_task_release(urt_task task);

/* 1 if the task has finished (successfully, with an error, or cancelled), 0 if
 * not, or URT_EBADTASK / URT_ENOLOOP. */
URT_API int urt_task_done(urt_task task);

/* 1 if the task has finished with URT_ECANCELED, 0 if not (including when a
 * cancellation was requested but the task has not ended yet, or handled it
 * and returned a value), or URT_EBADTASK / URT_ENOLOOP. */
URT_API int urt_task_cancelled(urt_task task);

/*
 * Gives the outcome of a finished task without waiting (task.result()):
 * 0 and its value in *value, or its error.  -EAGAIN if it has not finished
 * yet; URT_EBADTASK / URT_ENOLOOP.
 */
URT_API int urt_task_result(urt_task task, intptr_t *value);

/*
 * The task's name (set by urt_task_opts, or "Task-N").  The string belongs to
 * the task and is valid until the handle is released.  NULL for a handle that
 * is not valid.
 */
URT_API const char *urt_task_name(urt_task task);

/* The task calling this, or URT_TASK_NONE outside a task.  The handle is
 * borrowed: do not release it unless you own it. */
URT_API urt_task urt_task_current(void);

/* ------------------------------------------------------------------------
 * Time
 *
 * Durations are in nanoseconds of CLOCK_MONOTONIC.  A sleep is one
 * IORING_OP_TIMEOUT with an absolute deadline, so it never ends early and is
 * not stretched by the time it waits to be submitted.
 * ---------------------------------------------------------------------- */

/*
 * Suspends the current task for at least ns nanoseconds (asyncio.sleep).
 * urt_sleep(0) is urt_yield().
 * Returns 0, or URT_ECANCELED if the task was cancelled meanwhile (the sleep
 * is cut short), or URT_ENOLOOP.
 */
URT_API int urt_sleep(uint64_t ns);

/*
 * Lets every other ready task run once (asyncio.sleep(0)): the caller goes to
 * the back of the ready queue, behind the tasks that became ready before it.
 * Returns 0, URT_ECANCELED or URT_ENOLOOP.
 */
URT_API int urt_yield(void);

/* Nanoseconds of CLOCK_MONOTONIC, the clock sleeps are measured on. */
URT_API uint64_t urt_now(void);

/* The timeout_ns of a call that is to wait as long as it takes. */
#define URT_NO_TIMEOUT UINT64_MAX

#define URT_NS_PER_US 1000ull
#define URT_NS_PER_MS 1000000ull
#define URT_NS_PER_S  1000000000ull

/* Duration helpers; they saturate instead of overflowing. */
static inline int urt_sleep_us(uint64_t us)
{
    return urt_sleep(us > UINT64_MAX / URT_NS_PER_US ? UINT64_MAX : us * URT_NS_PER_US);
}
static inline int urt_sleep_ms(uint64_t ms)
{
    return urt_sleep(ms > UINT64_MAX / URT_NS_PER_MS ? UINT64_MAX : ms * URT_NS_PER_MS);
}
static inline int urt_sleep_s(uint64_t s)
{
    return urt_sleep(s > UINT64_MAX / URT_NS_PER_S ? UINT64_MAX : s * URT_NS_PER_S);
}

/* ------------------------------------------------------------------------
 * gather
 *
 * Waits for a set of tasks and gives their outcomes in input order, never in
 * completion order (asyncio.gather).  The tasks are already running: they
 * were scheduled when created.  gather takes no ownership: the handles stay
 * valid and are still the caller's to release.
 * ---------------------------------------------------------------------- */

/* Wait for every task and report each failure in errors[] instead of
 * failing (return_exceptions=True). */
#define URT_RETURN_EXCEPTIONS 0x1u

/*
 * Waits for tasks[0..n-1].
 *
 * Default mode: returns the first error as soon as a task fails (the earliest
 * failure in time), while the other tasks keep running; they are not
 * cancelled.  On success returns 0 with values[i] set to the value of
 * tasks[i].  On failure, values[i] is set only for the tasks that had
 * already succeeded.
 *
 * URT_RETURN_EXCEPTIONS: waits for every task and returns 0; errors[i] is 0
 * where tasks[i] succeeded (values[i] then holds its value) and its error
 * code where it failed (URT_ECANCELED if it was cancelled).
 *
 * values may be NULL when the values are not wanted.  n = 0 returns 0 at once
 * with nothing filled.  Cancelling the task that waits in urt_gather cancels
 * every task not yet finished; gather then returns URT_ECANCELED once they
 * have (in the default mode, as soon as the first of them ends failed).
 *
 * Returns 0, the first error (default mode), URT_ECANCELED, or:
 *   -EINVAL        tasks is NULL with n > 0, errors is NULL with
 *                  URT_RETURN_EXCEPTIONS, or unknown flags.
 *   URT_EBADTASK   some handle is not valid (nothing was waited for).
 *   -EDEADLK       the caller is among the tasks, or waiting would close a
 *                  cycle of tasks waiting on each other.
 *   -ENOMEM        no memory for the bookkeeping of a large gather.
 *   URT_ENOLOOP    no loop is running on this thread.
 */
URT_API int urt_gather(const urt_task *tasks, size_t n, unsigned flags,
                       intptr_t *values, int *errors);


/* ------------------------------------------------------------------------
 * Timeouts, wait_for and shield
 *
 * A timeout scope puts a deadline on a stretch of a task's code
 * (asyncio.timeout).  When the deadline passes, whatever the task waits on
 * inside the scope (a sleep, an I/O call, a lock, a queue, an await, a
 * gather, a to_thread ...) is cut off as a cancellation would cut it, with
 * the same guarantees (an I/O operation has really stopped when the call
 * returns), but the call returns URT_ETIMEDOUT instead of URT_ECANCELED.
 * If the task is not waiting at that moment, its next suspension point
 * inside the scope returns URT_ETIMEDOUT.
 *
 * As with a cancellation, the cut comes once: code that handles it may
 * wait again inside the scope (to say goodbye to a peer, say), and those
 * waits are not cut.  An awaited task is cancelled (it sees URT_ECANCELED),
 * and the await returns URT_ETIMEDOUT once that task has ended cancelled.
 *
 *     urt_timeout t;
 *     urt_timeout_enter(&t, 5 * URT_NS_PER_S);
 *     ssize_t n = urt_read_exactly(fd, buf, len, &done);
 *     if (urt_timeout_exit(&t) == URT_ETIMEDOUT) ... // our deadline cut it
 *
 * Nested scopes: the earliest deadline wins.  Each scope's exit says
 * whether it was its own deadline that cut the code inside it: with an
 * outer scope of 1 s around an inner one of 10 s, a read cut at 1 s returns
 * URT_ETIMEDOUT, the inner exit returns 0 and the outer one URT_ETIMEDOUT.
 * A task cancelled from outside while inside a scope gets URT_ECANCELED
 * (a cancellation wins over a deadline) and the scope's exit returns 0.
 *
 * Scopes are entered and exited in LIFO order by the task that entered
 * them.  A task that returns with scopes still entered has them dropped.
 * Deadlines cost no system call: the loop keeps them and never sleeps past
 * the earliest.
 * ---------------------------------------------------------------------- */

/* A scope's handle.  Its fields are urt's. */
typedef struct urt_timeout {
    void *_node;
    uint64_t _id;
    unsigned _flags;
} urt_timeout;

/*
 * Enters a scope that ends timeout_ns from now (URT_NO_TIMEOUT: no
 * deadline, until urt_timeout_reschedule gives one), or at the absolute
 * deadline (urt_now()'s clock; URT_NO_TIMEOUT: none).  A deadline already
 * passed cuts the next wait.  Returns 0, -EINVAL (t is NULL), -ENOMEM or
 * URT_ENOLOOP.
 */
URT_API int urt_timeout_enter(urt_timeout *t, uint64_t timeout_ns);
URT_API int urt_timeout_enter_at(urt_timeout *t, uint64_t deadline);

/*
 * Leaves the scope.  Returns URT_ETIMEDOUT when its own deadline cut a wait
 * inside it, else 0 (also when the deadline passed but nothing inside was
 * cut: the code finished first, or completed in the same instant, as data
 * wins over a timeout in the I/O calls; a cut that was still to come is
 * dropped).  -EINVAL: t is not the innermost scope of the calling task (not
 * entered, exited already, or entered by another task); URT_ENOLOOP.
 */
URT_API int urt_timeout_exit(urt_timeout *t);

/*
 * Moves the deadline of an entered scope (Timeout.reschedule): an absolute
 * deadline, URT_NO_TIMEOUT for none.  Any task of the loop may call it.
 * Returns 0, -EALREADY if the deadline has already passed, -EINVAL (not an
 * entered scope), -ENOMEM, URT_ENOLOOP.
 */
URT_API int urt_timeout_reschedule(urt_timeout *t, uint64_t deadline);

/* 1 if the scope's deadline has passed while it was entered (Timeout.expired),
 * whether or not it cut anything; 0 if not; -EINVAL for NULL.  Valid after
 * the exit too. */
URT_API int urt_timeout_expired(const urt_timeout *t);

/* The scope's deadline, or URT_NO_TIMEOUT (none, or not entered). */
URT_API uint64_t urt_timeout_when(const urt_timeout *t);

/*
 * Waits for the task for at most timeout_ns (asyncio.wait_for).  On expiry
 * the task is cancelled and waited for, and URT_ETIMEDOUT is returned; if it
 * handled the cancellation and returned a value or an error of its own,
 * that is returned instead, as asyncio does.  A finished task's outcome is
 * returned at once.  Cancelling the caller cancels the task too (as await).
 * Returns 0 and the value, the task's error, URT_ETIMEDOUT, URT_ECANCELED,
 * URT_EBADTASK, -EDEADLK (the caller itself, or a cycle), -ENOMEM,
 * URT_ENOLOOP.
 */
URT_API int urt_wait_for(urt_task task, uint64_t timeout_ns, intptr_t *value);

/*
 * Waits for the task like urt_task_await, but a cancellation (or a scope's
 * deadline) of the caller does not reach it (asyncio.shield): the caller
 * returns URT_ECANCELED (URT_ETIMEDOUT) at once and the task runs on, to be
 * awaited again or left to finish.  If the task itself is cancelled, its
 * URT_ECANCELED is returned.  Same return codes as urt_task_await.
 */
URT_API int urt_shield(urt_task task, intptr_t *value);

/* ---- end section: timeouts ---- */

/* ------------------------------------------------------------------------
 * wait and as_completed
 *
 * Like gather, these wait on tasks that are already running and take no
 * ownership of the handles.  Unlike gather they never fail because a task
 * failed, and they never cancel the tasks: on a timeout, or when the
 * waiting task is cancelled, the tasks run on.
 * ---------------------------------------------------------------------- */

/* urt_wait's return_when (asyncio.ALL_COMPLETED ...). */
#define URT_ALL_COMPLETED   0
#define URT_FIRST_COMPLETED 1
/* A task ends with an error other than URT_ECANCELED (asyncio does not
 * count a cancelled task as an exception), or all are done. */
#define URT_FIRST_EXCEPTION 2

/*
 * Waits until return_when holds for tasks[0..n-1] or timeout_ns passes
 * (URT_NO_TIMEOUT: no limit; 0: look without waiting) (asyncio.wait).
 * done, if not NULL, gets done[i] = 1 for each task that has finished and 0
 * for each still pending; the outcomes are the tasks' own (urt_task_result).
 * A task given twice counts twice.  If return_when holds already, returns
 * at once without suspending.
 *
 * Returns how many tasks are done (0 only on a timeout), or:
 *   -EINVAL        tasks is NULL, n is 0 (asyncio.wait refuses an empty
 *                  set too), or return_when is unknown.
 *   URT_EBADTASK   a handle is not valid (nothing was waited for).
 *   -EDEADLK       the caller is among the tasks, or a cycle of waiting.
 *   URT_ECANCELED  the caller was cancelled (the tasks were not), or
 *   URT_ETIMEDOUT  a timeout scope around the call cut it.
 *   -ENOMEM, URT_ENOLOOP.
 */
URT_API int urt_wait(const urt_task *tasks, size_t n, int return_when, uint64_t timeout_ns,
                     unsigned char *done);

/* The state of an as_completed iteration.  Its fields are urt's. */
typedef struct urt_as_completed {
    const urt_task *_tasks;
    size_t _n, _given_count;
    unsigned char *_given;
    uint64_t _deadline;
} urt_as_completed;

/*
 * Starts iterating over tasks[0..n-1] in the order they finish
 * (asyncio.as_completed), with an overall timeout (URT_NO_TIMEOUT: none)
 * counted from now.  tasks must stay valid, and its handles unreleased,
 * until urt_as_completed_end.  Returns 0, -EINVAL, -ENOMEM, URT_ENOLOOP.
 *
 *     urt_as_completed it;
 *     urt_task t;
 *     urt_as_completed_init(&it, tasks, n, 5 * URT_NS_PER_S);
 *     while ((rc = urt_as_completed_next(&it, &t)) == 1)
 *         handle(urt_task_result(t, &value), value);
 *     urt_as_completed_end(&it);   // rc: 0 when all were given
 */
URT_API int urt_as_completed_init(urt_as_completed *it, const urt_task *tasks, size_t n,
                                  uint64_t timeout_ns);

/*
 * Gives the next task to finish: waits if none has finished that was not
 * given yet.  Tasks that finished while the caller was busy come in the
 * order they finished.  Returns 1 and the task in *task; 0 when every task
 * has been given; URT_ETIMEDOUT when the overall timeout passed first (the
 * tasks left run on, and later calls give those that finish meanwhile, then
 * URT_ETIMEDOUT again); URT_ECANCELED; URT_EBADTASK (a handle was released);
 * -EINVAL; URT_ENOLOOP.
 */
URT_API int urt_as_completed_next(urt_as_completed *it, urt_task *task);

/* Frees what urt_as_completed_init took.  NULL is ignored. */
URT_API void urt_as_completed_end(urt_as_completed *it);

/* ---- end section: wait ---- */

/* ------------------------------------------------------------------------
 * Task groups
 *
 * The structured way to run tasks (asyncio.TaskGroup), and the recommended
 * one: every task spawned into a group is waited for when the group is
 * exited, so none is forgotten, and one failure stops the rest.
 *
 *     urt_group g;
 *     urt_group_enter(&g);
 *     for (int i = 0; i < n; i++) urt_group_spawn(&g, NULL, fetch, &jobs[i]);
 *     ... the owner's own work, which may wait ...
 *     urt_group_error errs[8];
 *     size_t nerrs;
 *     int rc = urt_group_exit(&g, errs, 8, &nerrs);
 *
 * When a child fails (returns an error other than URT_ECANCELED), the group
 * aborts: every other unfinished child is cancelled, and the owner's code
 * between enter and exit is cut as by a cancellation: what it waits on
 * returns URT_ECANCELED (once).  The exit then waits for every child and
 * returns the first failure; every failure is listed, in the order they
 * happened, with the child's place in spawn order.  Children that ended
 * cancelled are not failures.
 *
 * A cancellation of the owner (urt_task_cancel, or the deadline of a
 * timeout scope around the group) that reaches its code inside the group,
 * or its wait in the exit, cancels the children too; the exit still waits
 * for them all, and returns URT_ECANCELED (URT_ETIMEDOUT for a scope's
 * deadline), unless a child failed: as in asyncio, failures win.
 *
 * The owner must exit its groups in LIFO order with its timeout scopes.  A
 * task that returns without exiting its group has its children cancelled
 * (they are not waited for).  Children run detached unless a handle is
 * asked for; the handles given are the caller's to release.
 * ---------------------------------------------------------------------- */

typedef struct urt_group {
    void *_node;
    uint64_t _id;
} urt_group;

/* One child's failure. */
typedef struct urt_group_error {
    size_t index; /* the child's place in spawn order, from 0 */
    int error;    /* what it returned */
} urt_group_error;

/* Enters a group owned by the calling task.  Returns 0, -EINVAL (g is
 * NULL), -ENOMEM or URT_ENOLOOP. */
URT_API int urt_group_enter(urt_group *g);

/*
 * Creates a task in the group (TaskGroup.create_task); it is scheduled like
 * urt_task_create's.  Any task of the loop may spawn into an entered group,
 * also while the owner waits in the exit.  task may be NULL.  Returns 0,
 * -ESHUTDOWN (the group is aborting: nothing was created), -EINVAL (fn is
 * NULL, g is not an entered group, or an option is out of range), -ENOMEM,
 * URT_ENOLOOP.
 */
URT_API int urt_group_spawn(urt_group *g, urt_task *task, urt_fn fn, void *arg);
URT_API int urt_group_spawn_opts(urt_group *g, urt_task *task, urt_fn fn, void *arg,
                                 const urt_task_opts *opts);

/*
 * Waits for every child of the group, then leaves it (the end of
 * `async with`).  errors[0..cap-1] gets the failures in the order they
 * happened and *nerrors (if not NULL) how many there were, which may be
 * more than cap.
 *
 * Returns 0 when no child failed and the owner was not cancelled; the first
 * failure; URT_ECANCELED / URT_ETIMEDOUT (see above); or -EINVAL (g is not
 * the calling task's innermost group or scope, or errors is NULL with cap
 * > 0), URT_ENOLOOP.
 */
URT_API int urt_group_exit(urt_group *g, urt_group_error *errors, size_t cap, size_t *nerrors);

/* ---- end section: groups ---- */

/* ------------------------------------------------------------------------
 * I/O
 *
 * Each call suspends the calling task on one io_uring operation and
 * returns what the kernel returned: a byte count, an fd, 0, or a negative
 * errno (-ECONNRESET, -EPIPE, -EBADF ...), exactly as the system call of the
 * same name would have.  Calls made outside a task return URT_ENOLOOP.
 *
 * SIGPIPE.  A write to a pipe or socket whose reader is gone returns -EPIPE
 * and never kills the process: sends add MSG_NOSIGNAL, and while a loop
 * runs its thread keeps SIGPIPE blocked (the mask is restored, and a
 * SIGPIPE the writes left pending discarded, when urt_run returns).
 *
 * Cancellation.  A task cancelled while it waits in an I/O call gets
 * URT_ECANCELED, and when the call returns the kernel has let go of the
 * operation: it no longer touches the caller's buffer, and nothing it would
 * have received is lost (the next call gets it).  If the operation completed
 * in the same instant, data wins: the call returns its result, and the
 * cancellation comes at the task's next suspension point.
 *
 * Deadlines.  The _timeout variants take a relative timeout in nanoseconds
 * (URT_NO_TIMEOUT: none; 0: give up at once unless the operation completes
 * immediately).  When it passes they return URT_ETIMEDOUT, with the same
 * guarantees as a cancellation: the operation has really stopped, and data
 * that arrived in the same instant is returned instead.
 *
 * Non-blocking fds.  An fd with O_NONBLOCK (a socket another library made)
 * works too: urt waits for readiness instead of returning -EAGAIN.
 *
 * Kernels.  Every call works from Linux 5.6 on.  Where the running kernel
 * lacks an opcode, urt takes another way to the same result (README,
 * "Kernel support").
 * ---------------------------------------------------------------------- */

/*
 * Describes what the running loop uses, for logs and bug reports: a
 * space-separated list of the io_uring features in use (coop_taskrun,
 * single_issuer, defer_taskrun, registered_ring, fast_poll, guard_install,
 * accept_multishot, recv_multishot ...) followed by the fallbacks taken (op_socket->socket(2) ...).  Writes
 * at most size bytes including the NUL, like snprintf, and returns the
 * length of the whole description, or URT_ENOLOOP / -EFAULT.
 */
URT_API int urt_features(char *buf, size_t size);

struct statx; /* <sys/stat.h> with _GNU_SOURCE, or <linux/stat.h> */

/*
 * Waits until fd is ready for events (POLLIN, POLLOUT ...): the way to run a
 * library that wants "tell me when this fd is readable" (OpenSSL, c-ares,
 * libcurl) inside a task.  Returns the ready events (a positive mask),
 * -EBADF, URT_ECANCELED, URT_ETIMEDOUT or URT_ENOLOOP.
 */
URT_API int urt_poll(int fd, short events);
URT_API int urt_poll_timeout(int fd, short events, uint64_t timeout_ns);

/*
 * Closes fd.  Operations still in flight on it (in any task) are cancelled
 * first and return -EBADF, and the fd is closed only once the kernel has let
 * go of each: close(2) alone would leave them running, and the fd number
 * could meanwhile name a new connection.  Always closes: a cancellation that
 * arrives meanwhile is kept for the next suspension point.
 * Returns 0 or -errno (as close(2)), URT_ENOLOOP.
 */
URT_API int urt_close(int fd);

/* Files.  Paths are relative to the working directory; the *at forms take a
 * directory fd or AT_FDCWD.  Return values as the system calls': an fd, 0,
 * or -errno.  urt_open and urt_openat add O_CLOEXEC, as for sockets. */
URT_API int urt_open(const char *path, int flags, mode_t mode);
URT_API int urt_openat(int dirfd, const char *path, int flags, mode_t mode);
URT_API int urt_fsync(int fd);
URT_API int urt_fdatasync(int fd);
/* statx(2): fills *out; mask is STATX_BASIC_STATS or finer. */
URT_API int urt_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out);
URT_API int urt_unlink(const char *path);
URT_API int urt_unlinkat(int dirfd, const char *path, int flags);
URT_API int urt_rename(const char *oldpath, const char *newpath);
URT_API int urt_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                         unsigned flags);
URT_API int urt_mkdir(const char *path, mode_t mode);
URT_API int urt_mkdirat(int dirfd, const char *path, mode_t mode);

/*
 * Reads and writes: at the file position (urt_read, urt_write, urt_readv,
 * urt_writev: files, pipes, sockets, ttys) or at an offset (the p- forms).
 * Return the byte count (0 at end of file), or -errno, URT_ECANCELED,
 * URT_ETIMEDOUT, URT_ENOLOOP.  A transfer may be short, as with the system
 * calls; lengths above INT_MAX are shortened to it.  One difference: on a
 * pipe, socket or other stream the p- forms ignore the offset, as io_uring
 * does, where pread(2) would fail with -ESPIPE.
 */
URT_API ssize_t urt_read(int fd, void *buf, size_t len);
URT_API ssize_t urt_read_timeout(int fd, void *buf, size_t len, uint64_t timeout_ns);
URT_API ssize_t urt_write(int fd, const void *buf, size_t len);
URT_API ssize_t urt_write_timeout(int fd, const void *buf, size_t len, uint64_t timeout_ns);
URT_API ssize_t urt_pread(int fd, void *buf, size_t len, uint64_t offset);
URT_API ssize_t urt_pwrite(int fd, const void *buf, size_t len, uint64_t offset);
URT_API ssize_t urt_readv(int fd, const struct iovec *iov, int iovcnt);
URT_API ssize_t urt_writev(int fd, const struct iovec *iov, int iovcnt);
URT_API ssize_t urt_preadv(int fd, const struct iovec *iov, int iovcnt, uint64_t offset);
URT_API ssize_t urt_pwritev(int fd, const struct iovec *iov, int iovcnt, uint64_t offset);

/*
 * Whole transfers, looping over short reads and writes: urt_read_exactly
 * fills all len bytes (any fd), urt_write_all writes them (files, pipes),
 * urt_send_all sends them (sockets; no SIGPIPE).  Return len, or the error
 * that stopped them: -ENODATA when the peer closed before len bytes came,
 * -EIO when it stopped taking them, -errno, URT_ECANCELED, URT_ETIMEDOUT
 * (the timeout covers the whole transfer).  If done is not NULL it gets the
 * bytes really moved, whatever happened, so that a retry neither loses nor
 * repeats a byte.
 */
URT_API ssize_t urt_read_exactly(int fd, void *buf, size_t len, size_t *done);
URT_API ssize_t urt_read_exactly_timeout(int fd, void *buf, size_t len, size_t *done,
                                         uint64_t timeout_ns);
URT_API ssize_t urt_write_all(int fd, const void *buf, size_t len, size_t *done);
URT_API ssize_t urt_write_all_timeout(int fd, const void *buf, size_t len, size_t *done,
                                      uint64_t timeout_ns);
URT_API ssize_t urt_send_all(int fd, const void *buf, size_t len, size_t *done);
URT_API ssize_t urt_send_all_timeout(int fd, const void *buf, size_t len, size_t *done,
                                     uint64_t timeout_ns);

/* Sockets.  As the system calls, except that every send adds MSG_NOSIGNAL
 * and that new fds are close-on-exec (SOCK_CLOEXEC is added to urt_socket's
 * type and urt_accept's flags), as libuv and Go make them: clear FD_CLOEXEC
 * with fcntl for an fd a child must inherit.  urt_accept stores the peer's
 * address when addr is not NULL (addrlen then in/out; 0 if the peer reset
 * the connection before urt_accept returned it).
 *
 * Tasks in urt_accept on one listener are served in the order they called.
 * From Linux 5.19 one multishot accept per listener serves them all while
 * they accept; connections it takes while no task waits are kept for the
 * next urt_accept, and once no task has accepted for a whole turn of the
 * loop it stops, so that the listen(2) backlog bounds what waits, as with
 * accept(2).  urt_close of a listener ends the urt_accept calls waiting on
 * it with -EBADF and closes the connections it kept. */
URT_API int urt_socket(int domain, int type, int protocol);
URT_API int urt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
URT_API int urt_accept_timeout(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                               uint64_t timeout_ns);
URT_API int urt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
URT_API int urt_connect_timeout(int fd, const struct sockaddr *addr, socklen_t addrlen,
                                uint64_t timeout_ns);
URT_API ssize_t urt_recv(int fd, void *buf, size_t len, int flags);
URT_API ssize_t urt_recv_timeout(int fd, void *buf, size_t len, int flags, uint64_t timeout_ns);
URT_API ssize_t urt_send(int fd, const void *buf, size_t len, int flags);
URT_API ssize_t urt_send_timeout(int fd, const void *buf, size_t len, int flags,
                                 uint64_t timeout_ns);
URT_API ssize_t urt_recvmsg(int fd, struct msghdr *msg, int flags);
URT_API ssize_t urt_recvmsg_timeout(int fd, struct msghdr *msg, int flags, uint64_t timeout_ns);
URT_API ssize_t urt_sendmsg(int fd, const struct msghdr *msg, int flags);
URT_API ssize_t urt_sendmsg_timeout(int fd, const struct msghdr *msg, int flags,
                                    uint64_t timeout_ns);
URT_API int urt_shutdown(int fd, int how);

/*
 * Read-ahead for a connected stream socket (TCP, AF_UNIX SOCK_STREAM;
 * Linux 6.0 on).  With enable non-zero,
 * urt keeps one multishot recv armed on fd that receives into buffers the
 * loop owns (a provided-buffer ring); urt_recv, urt_read, urt_readv,
 * urt_recvmsg, urt_read_exactly and their _timeout forms then copy from
 * what has arrived, in order, without an SQE per call, and urt_poll for
 * POLLIN reports those bytes.  A request/response server saves a recv SQE
 * per message, and an idle connection holds no receive buffer.
 *
 * While it is on, read fd only through urt: bytes urt has read ahead are
 * no longer in the socket, so read(2), recv(2), or a library handed the fd
 * (OpenSSL after STARTTLS, say) would never see them.  For the same reason
 * urt_poll may not ask for POLLIN together with other events (-EINVAL);
 * recv flags other than MSG_DONTWAIT, MSG_PEEK and MSG_WAITALL give
 * -EOPNOTSUPP (MSG_OOB and MSG_ERRQUEUE go to the kernel as usual), and
 * urt_recvmsg returns no address and no control messages.  enable 0 turns
 * it off; bytes already read ahead are still returned first.  Close the fd
 * with urt_close, never close(2): the multishot holds the socket open, and
 * a new socket given the same fd number would be read from the old one.  A failed read-ahead (the socket reset, out of memory) is
 * reported once by the next read, which then sees end of file.
 *
 * These limits hold while read-ahead is on or bytes it received are still
 * unread.  A MSG_WAITALL read may return short if read-ahead is turned off,
 * or the loop's buffers run out, while it waits.
 *
 * Returns 1 when read-ahead is on, 0 when it is off or the kernel lacks it
 * (reads then go to the kernel one by one, with the same results), or
 * -ENOTSOCK (not a socket), -EOPNOTSUPP (not a stream socket), -EINVAL (a
 * listening socket), -EBADF, -ENOMEM, URT_ENOLOOP.
 */
URT_API int urt_readahead(int fd, int enable);

/*
 * TCP helpers for "host:port" with a numeric address ("127.0.0.1:8080",
 * "[::1]:8080"; port 0 lets the kernel pick, see getsockname).
 * urt_tcp_listen returns a listening socket (SO_REUSEADDR, backlog as
 * listen(2); 0 means SOMAXCONN); urt_tcp_connect a connected one with
 * TCP_NODELAY.  Both return the fd, -EINVAL for an address they cannot
 * parse, or -errno, URT_ECANCELED, URT_ETIMEDOUT, URT_ENOLOOP.
 */
URT_API int urt_tcp_listen(const char *hostport, int backlog);
URT_API int urt_tcp_connect(const char *hostport);
URT_API int urt_tcp_connect_timeout(const char *hostport, uint64_t timeout_ns);

/* ------------------------------------------------------------------------
 * Synchronisation and queues: the shared part
 *
 * The primitives below live in memory the program provides (a struct, on
 * the stack of a task or in a heap object) and are initialised by their
 * *_init call; they need no destroy call unless one is declared.  Their
 * fields are urt's: a program reads and changes them only through the
 * functions.  Each is for the tasks of one loop.
 * ---------------------------------------------------------------------- */

/* The tasks waiting on a primitive, in the order they began to wait. */
typedef struct urt_waitlist {
    void *_head, *_tail;
    const char *_what; /* what the tasks wait on, for urt_task_dump */
} urt_waitlist;

/* ---- section: sync ---- */
/* ---- end section: sync ---- */

/* ---- section: queue ---- */
/* ---- end section: queue ---- */

/* ---- section: threads ---- */
/* ---- end section: threads ---- */

/* ---- section: introspection ---- */
/* ---- end section: introspection ---- */

#ifdef __cplusplus
}
#endif

#endif /* URT_H */
