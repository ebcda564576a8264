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
 * How many cancellations of the task are outstanding (task.cancelling()):
 * each urt_task_cancel while it had not finished, each one passed on to it
 * by a task or gather waiting for it, and each deadline of its timeout
 * scopes that fired on it; a scope's exit takes back its own deadline's,
 * a task group's exit the cancellation its abort asked, and
 * urt_task_uncancel one.  Handling a cancellation does not take it back:
 * a task that handles one and goes on as if it had not been asked calls
 * urt_task_uncancel, or a timeout scope it was already in reports a
 * deadline that fires later as that cancellation (urt_timeout_exit), and
 * a task group whose children fail cancels it again (urt_group_exit).
 *
 * Returns the count (0 or more), or URT_EBADTASK / URT_ENOLOOP.
 */
URT_API int urt_task_cancelling(urt_task task);

/*
 * Takes back one outstanding cancellation of the task (task.uncancel(), as
 * Python 3.13 has it): when none is left, one the task has not seen yet (it
 * was asked while the task was running, or before it first ran) is dropped
 * too.  A cancellation that has reached the kernel (the task waits on an
 * operation being cancelled) still ends that wait.
 *
 * Returns the count left, 0 when there was none, or URT_EBADTASK /
 * URT_ENOLOOP.
 */
URT_API int urt_task_uncancel(urt_task task);

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
 * failure in time; of tasks that had failed before the call, the first in
 * input order, as asyncio), while the other tasks keep running; they are
 * not cancelled.  On success returns 0 with values[i] set to the value of
 * tasks[i].  On failure, values[i] is set only for the tasks that had
 * already succeeded.
 *
 * URT_RETURN_EXCEPTIONS: waits for every task and returns 0; errors[i] is 0
 * where tasks[i] succeeded (values[i] then holds its value) and its error
 * code where it failed (URT_ECANCELED if it was cancelled).
 *
 * values may be NULL when the values are not wanted.  n = 0 returns 0 at once
 * with nothing filled.  Otherwise gather suspends, even when every task has
 * finished already, and returns in the loop pass asyncio's gather would: two
 * passes after the task that decides it ends (its done callbacks take one,
 * its awaiter the next), so other ready tasks interleave with it as they do
 * in Python.  Cancelling the task that waits in urt_gather cancels
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

/* A scope's handle.  Its fields are urt's.  It belongs to the loop it was
 * entered in: give it to no call once that loop's urt_run has returned
 * (urt_timeout_expired of an exited scope excepted). */
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
 * dropped).  Also 0 when the deadline met a cancellation of the task that
 * is still counted, as asyncio's Task.cancelling() counts them: one asked
 * for before the scope's deadline passed, even if code inside handled it
 * (an awaited task that caught it and returned, say); that cancellation,
 * not the timeout, is what the cut was.  -EINVAL: t is not the innermost
 * scope of the calling task (not entered, exited already, or entered by
 * another task); URT_ENOLOOP.
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
 * deadline), unless a child failed: as in asyncio, failures win.  Such a
 * cancellation is not lost, though: the owner's next suspension point
 * returns it (URT_ETIMEDOUT inside a scope whose deadline passed), as with
 * asyncio's TaskGroup since Python 3.13.  This holds for any cancellation
 * of the owner still outstanding when the exit reports failures, even one
 * it handled earlier and went on from.
 *
 * The timing is asyncio's, pass for pass.  A group learns that a child
 * ended one loop pass after the end (TaskGroup's done callback): a failure
 * aborts the group then, so a task running in between may still spawn into
 * it, and an exit reached in between waits.  An owner cancelled while it
 * waits in the exit cancels the children when it next runs, one pass after
 * the cancel, not at the cancel.
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
 * Aborts the group (TaskGroup.cancel(), Python 3.14): as when a child
 * fails, every unfinished child is cancelled and the owner's code inside
 * the group is cut (its current or next wait returns URT_ECANCELED, once),
 * but the exit reports no failure for it: it returns 0 unless a child
 * failed or the owner was cancelled otherwise.  For code that gives up
 * inside the group (a call of its own failed) and must not leave children
 * running: asyncio aborts a group whose body raises, and C has no raise.
 * Any task of the loop may call it; spawning is refused from then on.
 * Cancelling an aborting group does nothing more.  Returns 0, -EINVAL (g
 * is not an entered group) or URT_ENOLOOP.
 */
URT_API int urt_group_cancel(urt_group *g);

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
 * calls; lengths above INT_MAX are shortened to it.  -EINTR never comes
 * back from these, the socket calls or urt_accept: an interrupted call that
 * moved nothing is made again (PEP 475).  One difference: on a
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
 * TCP_NODELAY.  urt_tcp_connect also takes a host name ("localhost:8080"),
 * resolved with urt_getaddrinfo (below), and tries each address in turn;
 * its timeout covers the resolution too.  Both return the fd, -EINVAL for
 * an address they cannot parse, -ENOENT for a name that does not resolve
 * (the other urt_getaddrinfo codes as it gives them), or -errno (the last
 * address's), URT_ECANCELED, URT_ETIMEDOUT, URT_ENOLOOP.
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
/* ------------------------------------------------------------------------
 * Synchronisation: Event, Lock, Semaphore, BoundedSemaphore, Condition
 *
 * asyncio's primitives (asyncio.Event, Lock, Semaphore, BoundedSemaphore,
 * Condition), for the tasks of one loop.  Each lives in memory the program
 * provides, is set up by its *_init call (which may run outside a loop, on
 * a static object before urt_run) and needs no destroy call; it must not be
 * moved or copied while in use, since waiting tasks are linked to it.  A
 * primitive may serve one loop after another, but never two at once:
 * neither is thread-safe, and a call that would make a task of another loop
 * ready, or queue behind one, is refused with -EXDEV.
 *
 * Waiting costs no SQE and no system call, and so does every call that does
 * not wait; only a *_timeout call that has to wait costs one
 * IORING_OP_TIMEOUT.  Timeouts are relative, in nanoseconds: URT_NO_TIMEOUT
 * waits as long as it takes, 0 does not wait (URT_ETIMEDOUT at once unless
 * the call can complete without waiting).
 *
 * Fairness.  Waiters are served in the order they began to wait.  A Lock's
 * release or a Semaphore's release with tasks waiting hands the lock or the
 * permit straight to the first of them, so that no task calling acquire
 * meanwhile can take it first.
 *
 * Cancellation.  A call that can complete at once (acquiring a free lock,
 * waiting on a set event) returns without suspending and leaves a pending
 * cancellation for the next suspension point, as urt_task_await of a
 * finished task does.  A task cancelled while it waits gets URT_ECANCELED
 * (URT_ETIMEDOUT for a timeout scope's deadline) and takes nothing with it:
 * what a release, set or notify hands out goes to a task still waiting.  A
 * task that was handed the lock, the permit or the event in the same
 * instant as it was cancelled, before it resumed, returns 0: it owns what it
 * was given, and the cancellation comes at its next suspension point.
 * Condition waits differ (see urt_cond_wait).
 * ---------------------------------------------------------------------- */

/* An asyncio.Event: a flag tasks can wait for. */
typedef struct urt_event {
    urt_waitlist _waiters;
    void *_loop; /* of the waiting tasks, while there are any */
    int _set;
} urt_event;

/*
 * Initialises e, cleared (asyncio.Event()).  Returns 0, or -EINVAL if e is
 * NULL.  Needs no loop.
 */
URT_API int urt_event_init(urt_event *e);

/*
 * Sets the flag and wakes every task waiting on it, in the order they
 * began to wait (Event.set); they run when the caller next suspends.  Tasks
 * woken return 0 even if the event is cleared before they run.  Setting a
 * set event does nothing.
 * Returns 0, or -EINVAL (e is NULL), URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_event_set(urt_event *e);

/* Clears the flag (Event.clear).  Returns 0, or -EINVAL, URT_ENOLOOP. */
URT_API int urt_event_clear(urt_event *e);

/* 1 if the flag is set, 0 if not (Event.is_set), -EINVAL if e is NULL.
 * Needs no loop. */
URT_API int urt_event_is_set(const urt_event *e);

/*
 * Waits until the flag is set (Event.wait).  If it is already set, returns
 * 0 at once without suspending.
 * Returns 0, or URT_ECANCELED, URT_ETIMEDOUT (the timeout passed, or a
 * timeout scope's deadline), -EINVAL, URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_event_wait(urt_event *e);
URT_API int urt_event_wait_timeout(urt_event *e, uint64_t timeout_ns);

/* An asyncio.Lock: a mutual-exclusion lock, FIFO among its waiters. */
typedef struct urt_lock {
    urt_waitlist _waiters;
    void *_loop; /* of the waiting tasks, while there are any */
    int _locked; /* waiters only while locked: release hands the lock on */
} urt_lock;

/* Initialises l, unlocked (asyncio.Lock()).  Returns 0, or -EINVAL.
 * Needs no loop. */
URT_API int urt_lock_init(urt_lock *l);

/*
 * Acquires the lock, waiting until it is free (Lock.acquire).  A free lock
 * is taken at once, without suspending.  Waiters get the lock in the order
 * they asked.
 * Returns 0 (the caller holds the lock), or, without holding it:
 * URT_ECANCELED, URT_ETIMEDOUT, -EINVAL, URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_lock_acquire(urt_lock *l);
URT_API int urt_lock_acquire_timeout(urt_lock *l, uint64_t timeout_ns);

/* Acquires the lock if it is free, never waiting.  Returns 0, -EBUSY if
 * it is held, or -EINVAL, URT_ENOLOOP. */
URT_API int urt_lock_try_acquire(urt_lock *l);

/*
 * Releases the lock (Lock.release): hands it to the first waiter, if any,
 * which runs when the caller next suspends; else unlocks it.  As in
 * asyncio, a lock has no owner: any task may release it.
 * Returns 0, or -EPERM (the lock is not held; asyncio's RuntimeError),
 * -EINVAL, URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_lock_release(urt_lock *l);

/* 1 if the lock is held, 0 if not (Lock.locked), -EINVAL.  Needs no loop. */
URT_API int urt_lock_locked(const urt_lock *l);

/* An asyncio.Semaphore or BoundedSemaphore: a count of permits. */
typedef struct urt_sem {
    urt_waitlist _waiters;
    void *_loop; /* of the waiting tasks, while there are any */
    int _value;  /* free permits; waiters only while it is 0 */
    int _bound;  /* BoundedSemaphore's initial value, or -1 */
} urt_sem;

/*
 * Initialises s with value permits: urt_sem_init as asyncio.Semaphore(value),
 * urt_sem_init_bounded as asyncio.BoundedSemaphore(value), whose release
 * refuses to raise the count above value.  Returns 0, or -EINVAL (s is
 * NULL or value is negative; asyncio's ValueError).  Needs no loop.
 */
URT_API int urt_sem_init(urt_sem *s, int value);
URT_API int urt_sem_init_bounded(urt_sem *s, int value);

/*
 * Takes a permit, waiting until one is free (Semaphore.acquire).  Waiters
 * are served in the order they asked; a free permit is taken at once,
 * without suspending.
 * Returns 0 (the caller has the permit), or, without it: URT_ECANCELED,
 * URT_ETIMEDOUT, -EINVAL, URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_sem_acquire(urt_sem *s);
URT_API int urt_sem_acquire_timeout(urt_sem *s, uint64_t timeout_ns);

/* Takes a permit if one is free, never waiting.  Returns 0, -EBUSY if
 * none is, or -EINVAL, URT_ENOLOOP. */
URT_API int urt_sem_try_acquire(urt_sem *s);

/*
 * Gives a permit back (Semaphore.release): to the first waiter, if any,
 * which runs when the caller next suspends; else to the count.
 * Returns 0, or -EOVERFLOW (a BoundedSemaphore would go above its initial
 * value, asyncio's ValueError; or the count would pass INT_MAX), -EINVAL,
 * URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_sem_release(urt_sem *s);

/* 1 if acquiring would wait (no permit is free; Semaphore.locked), 0 if
 * not, -EINVAL.  Needs no loop. */
URT_API int urt_sem_locked(const urt_sem *s);

/* The number of free permits (0 while tasks wait), or -EINVAL.  Needs no
 * loop. */
URT_API int urt_sem_value(const urt_sem *s);

/* An asyncio.Condition: tasks wait, holding a lock, to be notified. */
typedef struct urt_cond {
    urt_waitlist _waiters;
    void *_loop;     /* of the waiting tasks, while there are any */
    urt_lock *_lock; /* the lock given at init, or &_own */
    urt_lock _own;
} urt_cond;

/*
 * Initialises c over lock (asyncio.Condition(lock)); with lock NULL, c
 * uses a lock of its own, kept in c (asyncio.Condition()).  A lock given
 * must outlive c; several conditions may share one.  Returns 0, or
 * -EINVAL.  Needs no loop.
 */
URT_API int urt_cond_init(urt_cond *c, urt_lock *lock);

/* urt_lock_acquire, urt_lock_release and urt_lock_locked of c's lock
 * (Condition.acquire, release, locked), with their return codes. */
URT_API int urt_cond_acquire(urt_cond *c);
URT_API int urt_cond_release(urt_cond *c);
URT_API int urt_cond_locked(const urt_cond *c);

/*
 * Releases c's lock, waits until notified, and acquires the lock again
 * (Condition.wait).  The caller must hold the lock.  Whatever happens, the
 * lock is held again when wait returns (for a cancellation or a timeout
 * too: wait keeps waiting for the lock through any cancellation, as asyncio
 * does, then returns the code).
 *
 * A notified task that is cancelled (or whose timeout passes) before it
 * has the lock back returns the cancellation's code, and passes the
 * notification on to the next waiter, as CPython 3.13 does, so that none is
 * lost.  A task that leaves without being notified takes none, so unlike
 * CPython this never wakes another one spuriously.  With a timeout of 0,
 * returns URT_ETIMEDOUT at once, never having released the lock.  As with
 * any condition variable, check the state waited for after each wakeup (or
 * use urt_cond_wait_for).
 *
 * Returns 0 (notified), or URT_ECANCELED, URT_ETIMEDOUT (the timeout, or a
 * timeout scope's deadline), all with the lock held; or, when nothing was
 * done: -EPERM (the lock is not held; asyncio's RuntimeError), -EINVAL,
 * URT_ENOLOOP, -EXDEV.
 */
URT_API int urt_cond_wait(urt_cond *c);
URT_API int urt_cond_wait_timeout(urt_cond *c, uint64_t timeout_ns);

/* What urt_cond_wait_for checks, called with the lock held: 0 to go on
 * waiting, > 0 when the state waited for has come, < 0 an error. */
typedef int (*urt_pred_fn)(void *arg);

/*
 * Waits until pred(arg) is true (Condition.wait_for): checks it, and while
 * it returns 0, waits for a notification and checks again.  The caller must
 * hold the lock, and holds it whenever pred runs and when wait_for returns.
 * The timeout, if any, covers the whole wait (0: pred is checked once);
 * as in asyncio, pred is not checked again after a timeout or a
 * cancellation.
 * Returns pred's positive value, pred's error, or the codes of
 * urt_cond_wait (also -EINVAL when pred is NULL).
 */
URT_API int urt_cond_wait_for(urt_cond *c, urt_pred_fn pred, void *arg);
URT_API int urt_cond_wait_for_timeout(urt_cond *c, urt_pred_fn pred, void *arg,
                                      uint64_t timeout_ns);

/*
 * Wakes up to n of the tasks waiting on c, the longest-waiting first
 * (Condition.notify); urt_cond_notify_all wakes them all.  The caller must
 * hold the lock; the tasks woken run once they get it back, in the order
 * they were woken.
 * Returns 0, or -EPERM (the lock is not held), -EINVAL, URT_ENOLOOP,
 * -EXDEV.
 */
URT_API int urt_cond_notify(urt_cond *c, size_t n);
URT_API int urt_cond_notify_all(urt_cond *c);
/* ---- end section: sync ---- */

/* ---- section: queue ---- */
/* ------------------------------------------------------------------------
 * Queues (asyncio.Queue, LifoQueue, PriorityQueue)
 *
 * A queue of void * items between the tasks of one loop.  urt never looks
 * at an item: what it points to stays the program's, and so does freeing
 * it.  A queue with a maxsize holds at most that many items: a put waits
 * while it is full, a get waits while it is empty.
 *
 * Hand-off.  A task waiting in urt_queue_get is handed the item by the put
 * that satisfies it, and a task waiting in urt_queue_put has its item moved
 * in by the get that frees the slot.  Waiting getters, and waiting putters,
 * are served in the order they began to wait, and a try_put or try_get
 * cannot overtake them.  A waiter that is cancelled or times out takes
 * nothing with it: the item goes to the next getter or stays in the queue,
 * and a putter that gave up has put nothing.  (In asyncio a woken getter
 * takes the item only when it next runs, so another task can take it
 * first.)  Waiting costs no system call; only a timeout does, as one
 * IORING_OP_TIMEOUT.
 *
 * Cancellation.  A task cancelled while it waits in get, put or join gets
 * URT_ECANCELED; one whose timeout passes, URT_ETIMEDOUT.  If the item (or
 * the slot) was handed to it in the same instant, the call succeeds and the
 * cancellation comes at its next suspension point.  A call that needs no
 * wait (get on a non-empty queue, put on a non-full one, join with nothing
 * unfinished) does not suspend, and so does not see a pending cancellation.
 *
 * Shutdown (Python 3.13's Queue.shutdown).  Once shut down, a queue takes no
 * more items: every put, waiting or not, returns -ESHUTDOWN.  Gets still
 * return the items left and then -ESHUTDOWN; an immediate shutdown also
 * drops the items left and counts them as done for join.
 *
 * Storage.  urt_queue_init allocates it: maxsize items for a bounded queue,
 * so that a put on one never fails for want of memory; a small array,
 * doubled as needed, for an unbounded one.  urt_queue_destroy frees it.
 * ---------------------------------------------------------------------- */

/* Queue kinds: the order in which items come out. */
#define URT_QUEUE_FIFO     1 /* first put, first got (asyncio.Queue) */
#define URT_QUEUE_LIFO     2 /* last put, first got (asyncio.LifoQueue) */
#define URT_QUEUE_PRIORITY 3 /* lowest priority first, FIFO among equal
                              * priorities (asyncio.PriorityQueue) */

typedef struct urt_queue {
    void *_buf;         /* ring (FIFO), stack (LIFO) or heap (priority) */
    size_t _cap, _head, _len, _maxsize;
    size_t _unfinished; /* items put and not yet task_done'd */
    uint64_t _seq;      /* puts so far: FIFO order among equal priorities */
    int _kind;          /* 0 before init and after destroy */
    int _shutdown;
    urt_waitlist _getters, _putters, _joiners;
} urt_queue;

/*
 * Makes q an empty queue of the given kind that holds at most maxsize items
 * (0: no limit, as asyncio's maxsize <= 0).  q lives in the caller's memory;
 * pair with urt_queue_destroy.  Needs no running loop.
 * Returns 0, or:
 *   -EINVAL  q is NULL, or kind is not a URT_QUEUE_* kind.
 *   -ENOMEM  no memory for the queue's storage (maxsize items if bounded).
 */
URT_API int urt_queue_init(urt_queue *q, int kind, size_t maxsize);

/*
 * Frees q's storage.  Items still in it are dropped without being looked
 * at: if they own memory, take them out first (urt_queue_try_get until it
 * fails).  Needs no running loop.  Afterwards every call on q returns
 * -EINVAL until it is initialised again.
 * Returns 0, or:
 *   -EINVAL  q is NULL or not initialised.
 *   -EBUSY   tasks are waiting on q (in get, put or join); nothing is done.
 *            Wake them first, with urt_queue_shutdown or by cancelling them:
 *            q may be destroyed as soon as it has woken them.
 */
URT_API int urt_queue_destroy(urt_queue *q);

/*
 * Puts item at the end of q (await queue.put(item)), waiting while q is
 * full.  On a priority queue, item gets priority 0.  The item counts as
 * unfinished for urt_queue_join until a urt_queue_task_done.
 * urt_queue_put_timeout gives up after timeout_ns (URT_NO_TIMEOUT: never;
 * 0: at once unless there is room).
 * Returns 0, or:
 *   -ESHUTDOWN     q is shut down, or was while the task waited.
 *   URT_ECANCELED  the task was cancelled while it waited; nothing was put.
 *   URT_ETIMEDOUT  the timeout passed; nothing was put.
 *   -ENOMEM        an unbounded queue could not grow.
 *   -EINVAL        q is NULL or not initialised.
 *   URT_ENOLOOP    no loop is running on this thread.
 */
URT_API int urt_queue_put(urt_queue *q, void *item);
URT_API int urt_queue_put_timeout(urt_queue *q, void *item, uint64_t timeout_ns);

/*
 * Puts item if q has room, without waiting (queue.put_nowait).
 * Returns 0, -EAGAIN when q is full (asyncio.QueueFull), or -ESHUTDOWN,
 * -ENOMEM, -EINVAL, URT_ENOLOOP as urt_queue_put.
 */
URT_API int urt_queue_try_put(urt_queue *q, void *item);

/*
 * The puts of a priority queue: item comes out before every item of a
 * higher priority value, and after the items of the same priority put
 * before it.  (asyncio's PriorityQueue orders (priority, item) tuples in a
 * heap, which keeps no order among equals; its documentation's recipe is
 * (priority, count, item), which is what urt does.)  Same return codes as
 * urt_queue_put, urt_queue_put_timeout and urt_queue_try_put, and -EINVAL
 * when q is not a priority queue (the priority would be dropped).
 */
URT_API int urt_queue_put_prio(urt_queue *q, int64_t priority, void *item);
URT_API int urt_queue_put_prio_timeout(urt_queue *q, int64_t priority, void *item,
                                       uint64_t timeout_ns);
URT_API int urt_queue_try_put_prio(urt_queue *q, int64_t priority, void *item);

/*
 * Takes the next item of q into *item (await queue.get()), waiting while q
 * is empty: the oldest (FIFO), the newest (LIFO) or the one of lowest
 * priority (priority queue).  urt_queue_get_timeout gives up after
 * timeout_ns (URT_NO_TIMEOUT: never; 0: at once unless an item is there).
 * *item is written only on success.
 * Returns 0, or:
 *   -ESHUTDOWN     q is shut down and empty (at once, or when the task was
 *                  waiting).
 *   URT_ECANCELED  the task was cancelled while it waited; it took nothing.
 *   URT_ETIMEDOUT  the timeout passed; it took nothing.
 *   -EINVAL        q or item is NULL, or q is not initialised.
 *   URT_ENOLOOP    no loop is running on this thread.
 */
URT_API int urt_queue_get(urt_queue *q, void **item);
URT_API int urt_queue_get_timeout(urt_queue *q, void **item, uint64_t timeout_ns);

/*
 * Takes the next item if there is one, without waiting (queue.get_nowait).
 * Returns 0, -EAGAIN when q is empty (asyncio.QueueEmpty), or -ESHUTDOWN,
 * -EINVAL, URT_ENOLOOP as urt_queue_get.
 */
URT_API int urt_queue_try_get(urt_queue *q, void **item);

/*
 * Says that an item got from q has been dealt with (queue.task_done()).
 * When every item put has been, the tasks in urt_queue_join wake.
 * Returns 0, or:
 *   -EOVERFLOW   every item got from q has already been task_done'd
 *                (asyncio's ValueError).  asyncio counts against the items
 *                put, so it accepts a task_done for an item still in the
 *                queue and lets join return before that item is dealt with;
 *                urt refuses it.
 *   -EINVAL      q is NULL or not initialised.
 *   URT_ENOLOOP  no loop is running on this thread.
 */
URT_API int urt_queue_task_done(urt_queue *q);

/*
 * Waits until every item put in q has been got and task_done'd (await
 * queue.join()); returns at once, without suspending, when none is
 * unfinished.  urt_queue_join_timeout gives up after timeout_ns.
 * Returns 0, or URT_ECANCELED, URT_ETIMEDOUT, -EINVAL (q NULL or not
 * initialised), URT_ENOLOOP.
 */
URT_API int urt_queue_join(urt_queue *q);
URT_API int urt_queue_join_timeout(urt_queue *q, uint64_t timeout_ns);

/*
 * Shuts q down (queue.shutdown(immediate), Python 3.13): from now on every
 * put returns -ESHUTDOWN, and the tasks waiting in put wake with it.  Gets
 * go on returning the items left; once q is empty they return -ESHUTDOWN,
 * and the tasks waiting in get wake with it.  With immediate non-zero the
 * items left are dropped first, and counted as done, so that urt_queue_join
 * returns once the items already got are done.  To shut down at once
 * without dropping items that own memory, shut down with immediate 0, then
 * take them with urt_queue_try_get (and task_done each): no other task runs
 * in between.  Shutting down again does nothing more (except that immediate
 * then drops the items).
 * Returns 0, or -EINVAL (q NULL or not initialised), URT_ENOLOOP.
 */
URT_API int urt_queue_shutdown(urt_queue *q, int immediate);

/* Queries, as qsize(), empty(), full() and maxsize; they need no running
 * loop, and read a NULL or uninitialised q as an empty unbounded queue.
 * urt_queue_full is always 0 for an unbounded queue, and urt_queue_maxsize
 * 0. */
URT_API size_t urt_queue_size(const urt_queue *q);
URT_API int urt_queue_empty(const urt_queue *q);
URT_API int urt_queue_full(const urt_queue *q);
URT_API size_t urt_queue_maxsize(const urt_queue *q);
/* ---- end section: queue ---- */

/* ---- section: threads ---- */
/* ------------------------------------------------------------------------
 * Threads
 *
 * Work that would block the loop (a call with no io_uring form, such as
 * getaddrinfo or a blocking library; CPU-heavy work) runs on a worker
 * thread while the calling task waits and the other tasks go on
 * (asyncio.to_thread).  Each loop has a pool of its own, made on first use:
 * at most urt_thread_pool_limit() threads, started only as jobs queue up and
 * kept until the loop ends; jobs start in the order they were handed over.
 * Worker threads block every signal, so that signals meant for the loop's
 * thread reach it.
 *
 * fn runs on a worker thread, outside any task: urt calls return
 * URT_ENOLOOP there, and whatever fn shares with tasks or with other jobs
 * needs its own locking.  fn and the task that waits for it are ordered as a
 * mutex would order them: what fn sees of arg was written before the call,
 * and what the task sees after the call was written by fn.
 *
 * Cancellation.  A task cancelled while it waits (or whose timeout scope
 * expires) returns at once.  A job no thread has started is dropped and
 * never runs.  A running one cannot be stopped: it runs to its end on its
 * thread and its result is discarded, so arg must stay valid until fn
 * returns even after the caller has gone (not on the caller's stack, say,
 * unless the caller never stops waiting).  urt_to_thread_discard hands an
 * abandoned job's result and arg to a callback, for freeing them.
 *
 * The loop's end.  urt_run waits for jobs that are still running, abandoned
 * ones included, since a thread cannot be killed: a fn that never returns
 * keeps urt_run from returning.  Then every worker thread is joined; none
 * outlives urt_run.
 * ---------------------------------------------------------------------- */

/* Most threads one loop's pool may be allowed. */
#define URT_THREAD_POOL_MAX 1024u

/*
 * Runs fn(arg) on one of the loop's worker threads and suspends the calling
 * task until it returns (asyncio.to_thread).  fn's return value follows the
 * task convention: an URT_IS_ERROR() value is an error.
 *
 * Returns 0 and fn's value in *value (if value is not NULL), or fn's error,
 * or:
 *   URT_ECANCELED  the task was cancelled while it waited (URT_ETIMEDOUT for
 *                  a timeout scope); fn may still run, see above.
 *   -EINVAL        fn is NULL.
 *   -ENOMEM        no memory for the job or the pool.
 *   -EAGAIN        no worker thread could be started (pthread_create
 *                  failed: RLIMIT_NPROC, memory) and the pool has none.
 *   -EMFILE, -ENFILE  the pool's eventfd (made on first use) could not be.
 *   URT_ENOLOOP    no loop is running on this thread.
 */
URT_API int urt_to_thread(urt_fn fn, void *arg, intptr_t *value);

/* What urt_to_thread_discard calls with an abandoned job's outcome. */
typedef void (*urt_discard_fn)(intptr_t result, void *arg);

/*
 * urt_to_thread() for a fn whose result or arg must be freed: when the
 * call returns URT_ECANCELED or URT_ETIMEDOUT, arg and the result belong
 * to discard, which is called exactly once: with fn's result when fn
 * returns (or has returned), or with that code if fn never ran.  With any
 * other return arg, and fn's value, are the caller's, and discard is not
 * called.  (A fn that itself returns URT_ECANCELED or URT_ETIMEDOUT has it
 * discarded too: the caller could not tell it from a cancelled wait.)
 *
 * discard may be NULL.  It runs on the loop's thread, between tasks or
 * while urt_run ends, on whatever stack the loop is on: it must be short,
 * must not block and must not call urt functions.  Same return codes as
 * urt_to_thread.
 */
URT_API int urt_to_thread_discard(urt_fn fn, void *arg, urt_discard_fn discard,
                                  intptr_t *value);

/*
 * Sets the most worker threads the loop's pool may have to n (1 to
 * URT_THREAD_POOL_MAX) and returns the limit it had; n = 0 changes nothing
 * and returns the current one.  The default is min(32, CPUs + 4), asyncio's
 * executor's.  A higher limit starts threads for queued jobs at once; a
 * lower one makes idle threads above it exit now and busy ones after their
 * job, while jobs that are running go on: until then more threads than the
 * new limit may run.  Each loop has its own limit, and a new loop starts
 * with the default.
 * Returns the previous limit (> 0), or -EINVAL (n too large), -ENOMEM,
 * -EMFILE, -ENFILE (see urt_to_thread), URT_ENOLOOP.
 */
URT_API int urt_thread_pool_limit(unsigned n);

struct addrinfo; /* <netdb.h> */

/*
 * getaddrinfo(3) on a worker thread (loop.getaddrinfo): resolves node and
 * service as getaddrinfo does, through /etc/hosts, DNS and whatever
 * nsswitch.conf lists, while the other tasks run.  On success *res is the
 * list, which the caller frees with freeaddrinfo(3).  node, service and
 * hints are copied: they need not outlive the call, even if it is
 * cancelled (the list a cancelled call would have had is freed by urt).
 *
 * Returns 0, or the getaddrinfo error as a negative errno (*res is then
 * NULL):
 *   -ENOENT           EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY: the name is
 *                     unknown, or has no address (of the family asked for);
 *                     also node and service both NULL.
 *   -EPROTONOSUPPORT  EAI_SERVICE: the service is unknown, or not offered
 *                     for the socket type asked for.
 *   -EAGAIN           EAI_AGAIN: a temporary failure (the name server did
 *                     not answer); or no worker thread could be started.
 *   -EINVAL           EAI_BADFLAGS.
 *   -EAFNOSUPPORT     EAI_FAMILY.
 *   -ESOCKTNOSUPPORT  EAI_SOCKTYPE.
 *   -ENOMEM           EAI_MEMORY, or no memory for the request.
 *   -errno            EAI_SYSTEM: the error of the system call that failed.
 *   -EIO              EAI_FAIL (a resolver's non-recoverable failure) and
 *                     any other code.
 *   -EFAULT           res is NULL.
 * and URT_ECANCELED, URT_ETIMEDOUT, -EMFILE, URT_ENOLOOP as urt_to_thread.
 */
URT_API int urt_getaddrinfo(const char *node, const char *service,
                            const struct addrinfo *hints, struct addrinfo **res);
/* ---- end section: threads ---- */

/* ---- section: introspection ---- */
/* ------------------------------------------------------------------------
 * Introspection
 *
 * What the loop's tasks are doing, for a program that wants to look
 * (asyncio.all_tasks) and for a person looking at a service that seems
 * stuck: a dump of every live task, with its state and what it waits on,
 * written on demand or each time a signal arrives, as Go prints its
 * goroutines on SIGQUIT.  A task's line reads
 *
 *   task 7 "reader" waiting: I/O on fd 5, 250 ms left
 *
 * that is the task's number (N of "Task-N"), its name in quotes (control
 * characters shown as '?', quotes as '), its state (new: created, never
 * run; ready; running; waiting; done), and for a waiting task what it
 * waits on: "sleep, N ms left", "I/O on fd N" (", N ms left" with a
 * deadline), "await task N \"name\"", "shield of task N \"name\"",
 * "gather of N, K left", "wait of N, K left" (urt_wait, as_completed),
 * "task group exit", "close of fd N", a primitive's wait ("Lock.acquire", "Queue.get",
 * "accept" ...; with its deadline if any).  " (cancel pending)" ends the
 * line of a task asked to stop that has not seen it yet.  Times of 100 s
 * and more are in seconds ("N s left").  Other words may come with other
 * waits: read the format as a person would, not as a fixed grammar.
 * ---------------------------------------------------------------------- */

/*
 * The loop's tasks not yet finished, the caller included, oldest (lowest
 * number) first (asyncio.all_tasks).  Fills out[0..cap-1] with the cap
 * oldest ones and returns how many there are, which may be more than cap:
 * urt_tasks(NULL, 0) counts them.  Returns 0 outside a task.
 *
 * The handles are borrowed, as urt_task_current's: for a task whose
 * handle the program holds, the same handle (releasing it releases the
 * holder's); for a detached task, a handle valid until the task finishes,
 * after which calls given it return URT_EBADTASK.  A handle obtained here
 * may be awaited, cancelled, named and described like any other.
 */
URT_API size_t urt_tasks(urt_task *out, size_t cap);

/*
 * Describes the task in one line, without a newline, as the dump shows it
 * (format above; a finished task is "done").  Writes at most size bytes
 * including the NUL, like snprintf, and returns the length of the whole
 * line, or URT_EBADTASK, URT_ENOLOOP, -EFAULT (buf NULL with size > 0).
 */
URT_API int urt_task_describe(urt_task task, char *buf, size_t size);

/*
 * Writes a dump of the loop to fd: a header line
 *
 *   urt task dump: 5 tasks (1 running, 2 ready, 2 waiting), 3 SQEs in flight (1 background)
 *
 * then one line per live task (format above), in no particular order (the
 * numbers say which is older), then an empty line.  "background" counts
 * the SQEs that no task waits on and that do not keep the loop alive.
 *
 * The dump allocates nothing and takes under 1 KiB of the caller's stack,
 * so it works from a task with a 16 KiB stack and when memory is short.
 * It is not a suspension point: it writes with write(2) and blocks, as a
 * log write does, and the whole loop with it.  Write to a file or to
 * stderr: a pipe that nobody reads fills up and then blocks the loop for
 * good (an O_NONBLOCK one ends the dump with -EAGAIN instead).
 *
 * Returns 0, write(2)'s error (-EBADF for an fd that is not open for
 * writing, -EPIPE, -ENOSPC ...), or URT_ENOLOOP.  On an error the dump may
 * have been written in part.
 */
URT_API int urt_task_dump(int fd);

/*
 * From now until the loop ends, writes the dump (urt_task_dump's, with
 * "on signal N" in its header) to fd each time signal signo arrives.  The
 * dump is written by the loop at its next turn, not in a signal handler:
 * the signal is blocked on the loop's thread and read from a signalfd, so
 * no handler is installed.  SIGQUIT (Ctrl-\ on a terminal, `kill -QUIT`)
 * and SIGUSR1 are the usual choices.  Standard signals do not queue: two
 * sent before the loop reads the first give one dump.
 *
 * The signal must be blocked in every other thread of the process, best
 * by blocking it before any thread is created: a signal sent to the
 * process (kill(1)) goes to any thread that does not block it, where it
 * does its default action (SIGQUIT: core dump, SIGUSR1: exit) or runs a
 * handler the program installed, and no dump is written.  A signal sent
 * to the loop's thread (raise, pthread_kill) always reaches the loop.  A
 * blocked signal stays blocked across fork and exec: give a child started
 * from the loop's thread its own mask (posix_spawnattr_setsigmask).
 *
 * urt keeps a duplicate of fd (close-on-exec) until the dump is turned off
 * or the loop ends; the program may close its own.  Write errors are
 * ignored: the next signal tries again.  What urt_task_dump says of
 * blocking holds: prefer a file or stderr to a pipe.
 *
 * A second call replaces the first (another signal, another fd).  signo 0
 * or fd -1 turns the dump off.  Turning it off, or the loop's end, gives
 * the signal back to the thread as it was before (blocked or not);
 * instances that arrived and were not read yet are discarded, so that
 * none does its default action afterwards.
 *
 * Returns 0, or:
 *   -EINVAL       signo is not a signal, is SIGKILL or SIGSTOP (cannot be
 *                 blocked), SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP
 *                 (faults: blocked, they kill the process; urt's stack
 *                 overflow guard takes SIGSEGV and SIGBUS), SIGPIPE (the
 *                 loop's own, see "I/O"), or one that glibc reserves.
 *   -EBADF        fd is not open for writing.
 *   -ENOMEM, -EMFILE, -ENFILE  no memory or no fd for the signalfd or
 *                 the duplicate.
 *   URT_ENOLOOP   no loop is running on this thread.
 */
URT_API int urt_task_dump_on_signal(int signo, int fd);
/* ---- end section: introspection ---- */

#ifdef __cplusplus
}
#endif

#endif /* URT_H */
