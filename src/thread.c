/*
 * Work on threads: urt_to_thread, urt_getaddrinfo, and the loop's pool of
 * worker threads.
 *
 * A job is a heap record, never on the caller's stack: a cancelled caller
 * leaves at once while its job may still run, and the record must outlive
 * the caller's frame.  Workers take jobs from a FIFO under the pool's mutex
 * and put finished ones on a done list.  The worker that finds that list
 * empty writes the pool's eventfd, whose read is an SQE the pool keeps in
 * flight: a completion reaches the loop through the ring like any other,
 * with one eventfd write per batch of completions rather than per job, and
 * a loop with nothing else to do sleeps in io_uring_enter, not in a poll.
 *
 * Why not IORING_OP_MSG_RING (5.18), which posts a CQE into another ring
 * without an fd: its sender must be a ring, so every worker would need one
 * of its own (memory, an fd and a setup per thread) to save one eventfd per
 * pool, and it would raise the oldest usable kernel from 5.6.
 *
 * Locking: the fields marked "lock" are shared with the workers; the rest
 * belong to the loop's thread.  Workers never touch the loop, the tasks or
 * the ring: only the job records, the lists and the eventfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

enum job_state {
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_DONE,
    /* Finished after its task was cancelled but before that task ran on
     * to take its job back: the task discards it (loop thread only). */
    JOB_LEFT,
};

struct urt__job {
    struct urt__job *prev, *next; /* the queue (lock), then the done list */
    urt_fn fn;
    void *arg;
    urt_discard_fn discard;
    intptr_t result;       /* fn's, once JOB_DONE (lock) */
    unsigned char state;   /* lock */
    /* The waiting task's entry, on its stack; NULL once it left.  Loop
     * thread only: a worker never needs to know whether anyone waits. */
    struct urt__parked *waiter;
};

struct worker {
    struct worker *next; /* pool->workers */
    struct urt__pool *pool;
    pthread_t thread;
    char *stack; /* its mapping, guard page included */
    size_t stack_len;
    bool exited; /* lock: only joining is left */
};

struct urt__pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, the limit went down, or stop */
    struct urt__job *head, *tail; /* lock: not started, oldest first */
    struct urt__job *done;        /* lock: finished, newest first */
    size_t queued;                /* lock: jobs in head..tail */
    unsigned threads; /* lock: started (or being started) and not exited */
    unsigned idle;    /* lock: waiting for a job */
    unsigned exited;  /* lock: threads that left and are not joined yet */
    unsigned limit;   /* lock */
    bool stopping;    /* the loop's end; set under the lock */
    struct worker *workers; /* lock: every thread not joined yet */

    struct urt__waitq waiting; /* tasks in urt_to_thread */
    int efd;
    bool armed;       /* the eventfd read is in flight */
    uint64_t counter; /* what the read reads */
    struct iovec iov; /* for READV, where READ is masked off */
    struct urt__op read;
    size_t jobs; /* records alive: handed over and not yet freed */
    /* Under valgrind only (see arm_tick). */
    bool valgrind, ticking;
    struct urt__op tick;
};

/* ---- workers ----------------------------------------------------------- */

static void post(struct urt__pool *pool)
{
    uint64_t one = 1;
    /* Fails only if the counter would pass 2^64 - 2, which would take as
     * many writes without a read; and no signal can interrupt it here. */
    ssize_t ignored = write(pool->efd, &one, sizeof one);
    (void)ignored;
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    struct urt__pool *pool = w->pool;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->head && !pool->stopping && pool->threads <= pool->limit) {
            pool->idle++;
            pthread_cond_wait(&pool->work, &pool->lock);
            pool->idle--;
        }
        /* Above the limit (it was lowered): leave, one thread at a time,
         * until the pool is back within it. */
        if (pool->stopping || pool->threads > pool->limit) break;
        struct urt__job *job = pool->head;
        pool->head = job->next;
        if (pool->head) pool->head->prev = NULL; else pool->tail = NULL;
        pool->queued--;
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&pool->lock);

        intptr_t result = job->fn(job->arg);

        pthread_mutex_lock(&pool->lock);
        job->result = result;
        job->state = JOB_DONE;
        bool first = !pool->done;
        job->next = pool->done;
        pool->done = job;
        if (first) {
            /* Outside the lock: the loop and the other workers need it
             * more than this write does. */
            pthread_mutex_unlock(&pool->lock);
            post(pool);
            pthread_mutex_lock(&pool->lock);
        }
    }
    pool->threads--;
    pool->exited++;
    w->exited = true;
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Joins w's thread and frees what it had. */
static void worker_free(struct worker *w)
{
    pthread_join(w->thread, NULL);
    munmap(w->stack, w->stack_len);
    free(w);
}

/* Joins the threads that have left.  Loop thread, without the lock: a
 * thread that has set exited has nothing left to run but its return, so
 * the join is short. */
static void join_exited(struct urt__pool *pool)
{
    struct worker *gone = NULL;
    pthread_mutex_lock(&pool->lock);
    pool->exited = 0;
    for (struct worker **p = &pool->workers; *p;) {
        struct worker *w = *p;
        if (w->exited) {
            *p = w->next;
            w->next = gone;
            gone = w;
        } else {
            p = &w->next;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    while (gone) {
        struct worker *next = gone->next;
        worker_free(gone);
        gone = next;
    }
}

/*
 * A new worker, counted in pool->threads already.  Its stack is ours, of
 * the size threads get by default, with a guard page: glibc would keep the
 * stacks of joined threads in a cache of its own, so the loop's end would
 * leave mappings behind, and a thread would start without a new mapping
 * even where no memory is left for one.  -EAGAIN when no thread can be had,
 * as pthread_create says it.
 */
static int start_worker(struct urt__pool *pool)
{
    struct worker *w = malloc(sizeof *w);
    if (!w) return -ENOMEM;
    *w = (struct worker){.pool = pool};
    pthread_attr_t attr;
    if (pthread_attr_init(&attr)) {
        free(w);
        return -ENOMEM;
    }
    size_t size = 0, page = (size_t)sysconf(_SC_PAGESIZE);
    pthread_attr_getstacksize(&attr, &size);
    if (size < (size_t)PTHREAD_STACK_MIN) size = (size_t)PTHREAD_STACK_MIN;
    size = (size + page - 1) & ~(page - 1);
    w->stack_len = size + page;
    w->stack = mmap(NULL, w->stack_len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    int err = w->stack == MAP_FAILED ? EAGAIN : 0;
    if (!err && (mprotect(w->stack, page, PROT_NONE) != 0 ||
                 pthread_attr_setstack(&attr, w->stack + page, size) != 0))
        err = EAGAIN;
    if (!err) {
        /* Signals are for the loop's thread (its SIGPIPE handling, the
         * dump signal, the program's own handlers): a worker inherits a
         * mask that blocks them all, so the kernel never picks it to take
         * one. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        err = pthread_create(&w->thread, &attr, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_attr_destroy(&attr);
    if (err) {
        if (w->stack != MAP_FAILED) munmap(w->stack, w->stack_len);
        free(w);
        return err == ENOMEM ? -ENOMEM : -EAGAIN;
    }
    pthread_mutex_lock(&pool->lock);
    w->next = pool->workers;
    pool->workers = w;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

/*
 * Starts a thread for each queued job that no idle thread will take, within
 * the limit.  Threads are started lazily, as asyncio's executor does, so a
 * program that never has two jobs at once has one thread.  Returns 0, or
 * -EAGAIN / -ENOMEM when no thread could start and the pool has none.
 * Takes and drops the lock: pthread_create is slow, and the workers must
 * not wait for it.
 */
static int grow(struct urt__pool *pool, bool wake_one)
{
    pthread_mutex_lock(&pool->lock);
    size_t spare = pool->queued > pool->idle ? pool->queued - pool->idle : 0;
    unsigned room = pool->limit > pool->threads ? pool->limit - pool->threads : 0;
    unsigned n = spare < room ? (unsigned)spare : room;
    pool->threads += n;
    if (n == 0 && wake_one && pool->idle) pthread_cond_signal(&pool->work);
    bool reap = pool->exited != 0;
    pthread_mutex_unlock(&pool->lock);
    if (reap) join_exited(pool);

    int err = 0;
    for (unsigned i = 0; i < n; i++) {
        int e = start_worker(pool);
        if (!e) continue;
        err = e;
        pthread_mutex_lock(&pool->lock);
        pool->threads--;
        pthread_mutex_unlock(&pool->lock);
    }
    if (!err) return 0;
    pthread_mutex_lock(&pool->lock);
    bool none = pool->threads == 0;
    pthread_mutex_unlock(&pool->lock);
    return none ? err : 0;
}

/* ---- the loop's side --------------------------------------------------- */

static void on_posted(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe);

/* The eventfd read: a background SQE, in flight for the life of the pool,
 * so that it neither keeps the loop alive nor counts as something that
 * can wake a task (loop->background). */
static void arm(struct urt_loop *loop, struct urt__pool *pool)
{
    pool->read = (struct urt__op){.handler = on_posted, .fd = -1, .pending = 1};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    if (urt__has_op(loop, IORING_OP_READ)) {
        io_uring_prep_read(sqe, pool->efd, &pool->counter, sizeof pool->counter, 0);
    } else {
        pool->iov = (struct iovec){&pool->counter, sizeof pool->counter};
        io_uring_prep_readv(sqe, pool->efd, &pool->iov, 1, 0);
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&pool->read | URT__UDATA_HANDLER);
    pool->armed = true;
    loop->background++;
}

static void on_tick(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe);

/*
 * valgrind runs one thread at a time, under a lock of its own that it
 * keeps across io_uring_enter (3.19 does not know that call may block):
 * while the loop waits in the ring no worker can run, so no job would ever
 * finish.  Under valgrind, while jobs are out, a 1 ms timer brings the loop
 * out of the ring to sched_yield, where valgrind hands its lock over.
 */
static void arm_tick(struct urt_loop *loop, struct urt__pool *pool)
{
    if (likely(!pool->valgrind) || pool->ticking || pool->stopping || !pool->jobs) return;
    pool->tick = (struct urt__op){.handler = on_tick, .fd = -1, .pending = 1, .is_timeout = true,
                                  .ts = urt__timespec(URT_NS_PER_MS)};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_timeout(sqe, &pool->tick.ts, 0, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&pool->tick | URT__UDATA_HANDLER);
    pool->ticking = true;
    loop->background++;
}

static void on_tick(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct urt__pool *pool = container_of(op, struct urt__pool, tick);
    pool->ticking = false;
    loop->background--;
    sched_yield();
    arm_tick(loop, pool);
}

static void job_free(struct urt__pool *pool, struct urt__job *job)
{
    pool->jobs--;
    free(job);
}

/* Hands out every finished job: its waiting task gets the result, else
 * (the task left) discard has it.  In the order the jobs finished. */
static void finish_done(struct urt_loop *loop, struct urt__pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    struct urt__job *list = pool->done;
    pool->done = NULL;
    pthread_mutex_unlock(&pool->lock);
    struct urt__job *fifo = NULL;
    while (list) {
        struct urt__job *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        struct urt__job *job = fifo;
        fifo = job->next;
        if (job->waiter && !job->waiter->q) {
            /* Cancelled, and ready to run but not yet run: it will find
             * its wait ended without a value and discard this. */
            job->state = JOB_LEFT;
            continue;
        }
        if (job->waiter)
            urt__wake(loop, job->waiter, job->result);
        else if (job->discard)
            job->discard(job->result, job->arg);
        job_free(pool, job);
    }
}

/* Runs inside the reaping of the ring.  The read is armed again at once:
 * writes made meanwhile are in the counter, and the new read completes
 * as soon as it is submitted. */
static void on_posted(struct urt_loop *loop, struct urt__op *op, const struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct urt__pool *pool = container_of(op, struct urt__pool, read);
    pool->armed = false;
    loop->background--;
    finish_done(loop, pool);
    if (!pool->stopping) arm(loop, pool);
}

/* min(32, CPUs + 4): asyncio's default executor (Python 3.8 on), which
 * sizes for I/O-bound work such as name resolution. */
static unsigned default_limit(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    return cpus + 4 < 32 ? (unsigned)cpus + 4 : 32;
}

/* The loop's pool, made on first use: an eventfd and its read; threads
 * come with the jobs. */
static int pool_get(struct urt_loop *loop, struct urt__pool **out)
{
    if (likely(loop->pool)) {
        *out = loop->pool;
        return 0;
    }
    struct urt__pool *pool = calloc(1, sizeof *pool);
    if (!pool) return -ENOMEM;
    /* Blocking: io_uring would end a read of an O_NONBLOCK fd with -EAGAIN
     * instead of waiting for a write. */
    pool->efd = eventfd(0, EFD_CLOEXEC);
    if (pool->efd < 0) {
        int err = -errno;
        free(pool);
        return err;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pool->limit = default_limit();
    pool->waiting.what = "to_thread";
    pool->valgrind = RUNNING_ON_VALGRIND;
    loop->pool = pool;
    arm(loop, pool);
    *out = pool;
    return 0;
}

/* Takes a job that no thread has started out of the queue.  Returns the
 * state the job was in, read under the lock: a worker may be changing it. */
static unsigned char unqueue(struct urt__pool *pool, struct urt__job *job)
{
    pthread_mutex_lock(&pool->lock);
    unsigned char state = job->state;
    if (state == JOB_QUEUED) {
        if (job->prev) job->prev->next = job->next; else pool->head = job->next;
        if (job->next) job->next->prev = job->prev; else pool->tail = job->prev;
        pool->queued--;
    }
    pthread_mutex_unlock(&pool->lock);
    return state;
}

/* The caller stopped waiting (code): a job not started leaves the queue and
 * never runs; one still running is left to finish_done, which discards it
 * when it ends. */
static void abandon(struct urt__pool *pool, struct urt__job *job, int code)
{
    unsigned char state = unqueue(pool, job);
    if (state == JOB_QUEUED) {
        if (job->discard) job->discard(code, job->arg);
    } else if (state == JOB_LEFT) {
        if (job->discard) job->discard(job->result, job->arg);
    } else {
        job->waiter = NULL;
        return;
    }
    job_free(pool, job);
}

static bool stopped_waiting(intptr_t rc)
{
    return rc == URT_ECANCELED || rc == URT_ETIMEDOUT;
}

int urt__to_thread(struct urt_loop *loop, urt_fn fn, void *arg, urt_discard_fn discard,
                   uint64_t deadline, intptr_t *value)
{
    if (!fn) return -EINVAL;
    struct urt__task *self = loop->current;
    if (self->cancel_pending) {
        int rc = urt__deliver_pending_cancel(loop, self);
        if (rc) {
            if (discard && stopped_waiting(rc)) discard(rc, arg);
            return rc;
        }
    }
    struct urt__pool *pool;
    int err = pool_get(loop, &pool);
    if (err) return err;
    struct urt__job *job = malloc(sizeof *job);
    if (!job) return -ENOMEM;
    *job = (struct urt__job){.fn = fn, .arg = arg, .discard = discard, .state = JOB_QUEUED};
    pool->jobs++;
    struct urt__parked parked;
    job->waiter = &parked;

    pthread_mutex_lock(&pool->lock);
    job->prev = pool->tail;
    if (pool->tail) pool->tail->next = job; else pool->head = job;
    pool->tail = job;
    pool->queued++;
    pthread_mutex_unlock(&pool->lock);
    err = grow(pool, true);
    if (err) {
        /* No thread exists, so none took the job; arg is the caller's. */
        unqueue(pool, job);
        job_free(pool, job);
        return err;
    }
    arm_tick(loop, pool);

    /* drive() must not take a loop whose tasks all wait here for a
     * deadlock: the workers will wake them. */
    loop->external_waits++;
    int rc = urt__park(loop, &pool->waiting, &parked, deadline);
    loop->external_waits--;
    if (rc == 0) {
        intptr_t result = parked.value;
        /* fn's own URT_ECANCELED: the caller cannot tell it from a
         * cancelled wait, so discard gets it in both cases. */
        if (discard && stopped_waiting(result)) discard(result, arg);
        return urt__outcome(result, value);
    }
    abandon(pool, job, rc);
    return rc;
}

/* The loop's end, with no task left.  A running job cannot be stopped:
 * its thread is joined when fn returns. */
void urt__pool_stop(struct urt_loop *loop)
{
    struct urt__pool *pool = loop->pool;
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    struct urt__job *dropped = pool->head;
    pool->head = pool->tail = NULL;
    pool->queued = 0;
    pthread_cond_broadcast(&pool->work);
    struct worker *workers = pool->workers;
    pool->workers = NULL;
    pthread_mutex_unlock(&pool->lock);
    /* Every task has ended, and a task that stops waiting takes its job
     * out of the queue: nothing should be left here. */
    while (dropped) {
        struct urt__job *next = dropped->next;
        if (dropped->discard) dropped->discard(URT_ECANCELED, dropped->arg);
        job_free(pool, dropped);
        dropped = next;
    }
    while (workers) {
        struct worker *next = workers->next;
        worker_free(workers);
        workers = next;
    }
    finish_done(loop, pool); /* abandoned jobs that finished since */
    /* Its CQE comes in the loop's final drain; the fd closes after. */
    if (pool->armed) urt__op_cancel(loop, &pool->read);
    if (pool->ticking) urt__op_cancel(loop, &pool->tick);
}

void urt__pool_destroy(struct urt_loop *loop)
{
    struct urt__pool *pool = loop->pool;
    if (!pool) return;
    close(pool->efd);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    loop->pool = NULL;
}

/* ---- the public calls -------------------------------------------------- */

int urt_to_thread(urt_fn fn, void *arg, intptr_t *value)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    return urt__to_thread(loop, fn, arg, NULL, 0, value);
}

int urt_to_thread_discard(urt_fn fn, void *arg, urt_discard_fn discard, intptr_t *value)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    return urt__to_thread(loop, fn, arg, discard, 0, value);
}

int urt_thread_pool_limit(unsigned n)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (n > URT_THREAD_POOL_MAX) return -EINVAL;
    if (n == 0 && !loop->pool) return (int)default_limit();
    struct urt__pool *pool;
    int err = pool_get(loop, &pool);
    if (err) return err;
    pthread_mutex_lock(&pool->lock);
    unsigned old = pool->limit;
    if (n) pool->limit = n;
    /* Lower: idle threads above it leave now, busy ones after their job. */
    if (n && n < old) pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    /* Higher: queued jobs get their threads now.  A failure leaves them
     * to the threads there are (the pool had one, or none were queued). */
    if (n > old) grow(pool, false);
    return (int)old;
}

/* ---- getaddrinfo ------------------------------------------------------- */

/* What the worker needs, copied: a caller that is cancelled may free its
 * strings and hints while getaddrinfo still runs. */
struct gai_request {
    const char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    char strings[]; /* node's and service's bytes */
};

/* EAI_* codes are negative in glibc and overlap -errno (EAI_NONAME is -2,
 * -ENOENT): each is mapped to the errno that says the same thing. */
static intptr_t gai_errno(int rc, int err)
{
    switch (rc) {
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return -ENOENT;
    case EAI_SERVICE:
        return -EPROTONOSUPPORT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SOCKTYPE:
        return -ESOCKTNOSUPPORT;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return err > 0 && err < 4000 ? -err : -EIO;
    default: /* EAI_FAIL and whatever a libc adds */
        return -EIO;
    }
}

/* On the worker: the list, as a value (a pointer is never an error). */
static intptr_t gai_run(void *arg)
{
    struct gai_request *r = arg;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(r->node, r->service, r->has_hints ? &r->hints : NULL, &res);
    if (rc) return gai_errno(rc, errno);
    return (intptr_t)res;
}

static void gai_discard(intptr_t result, void *arg)
{
    if (!URT_IS_ERROR(result) && result) freeaddrinfo((struct addrinfo *)result);
    free(arg);
}

int urt__getaddrinfo(struct urt_loop *loop, const char *node, const char *service,
                     const struct addrinfo *hints, struct addrinfo **res, uint64_t deadline)
{
    size_t nlen = node ? strlen(node) + 1 : 0;
    size_t slen = service ? strlen(service) + 1 : 0;
    struct gai_request *r = malloc(sizeof *r + nlen + slen);
    if (!r) return -ENOMEM;
    r->node = node ? memcpy(r->strings, node, nlen) : NULL;
    r->service = service ? memcpy(r->strings + nlen, service, slen) : NULL;
    r->has_hints = hints != NULL;
    /* getaddrinfo reads only these; the rest must be zero. */
    memset(&r->hints, 0, sizeof r->hints);
    if (hints) {
        r->hints.ai_flags = hints->ai_flags;
        r->hints.ai_family = hints->ai_family;
        r->hints.ai_socktype = hints->ai_socktype;
        r->hints.ai_protocol = hints->ai_protocol;
    }
    intptr_t list;
    int rc = urt__to_thread(loop, gai_run, r, gai_discard, deadline, &list);
    if (stopped_waiting(rc)) return rc; /* r is gai_discard's */
    free(r);
    if (rc) return rc;
    *res = (struct addrinfo *)list;
    return 0;
}

int urt_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                    struct addrinfo **res)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!res) return -EFAULT;
    *res = NULL;
    return urt__getaddrinfo(loop, node, service, hints, res, 0);
}
