/*
 * Fiber stacks and switching between fibers.
 *
 * Stacks are carved from large anonymous slabs (MAP_NORESERVE: only touched
 * pages cost memory) and recycled through per-size free lists, so spawning a
 * task does not enter the kernel once the pool is warm.  Each stack has a
 * guard zone below it.  With MADV_GUARD_INSTALL (Linux 6.13) the guards are
 * page-table markers and the slab stays one mapping; older kernels need an
 * mprotect per guard, which splits the mapping, and vm.max_map_count then
 * caps the number of stacks (URT_ESTACKLIMIT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#ifdef URT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef URT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Slabs grow geometrically so that a burst of tasks costs few mmaps, up to
 * this many bytes per slab. */
#define SLAB_MAX_BYTES (256u * 1024u * 1024u)
#define SLAB_FIRST_COUNT 8u

int urt__stack_class(size_t requested, unsigned *class_out)
{
    if (requested == 0) requested = URT_STACK_DEFAULT;
    if (requested > URT_STACK_MAX) return -EINVAL;
    unsigned c = 0;
    for (size_t size = URT_STACK_MIN; size < requested; size <<= 1) c++;
    *class_out = c;
    return 0;
}

static size_t class_size(unsigned c) { return (size_t)URT_STACK_MIN << c; }

static int install_guard(struct urt_loop *loop, char *guard)
{
    if (urt__has(loop, URT__F_GUARD_INSTALL)) {
        if (madvise(guard, URT_GUARD_SIZE, MADV_GUARD_INSTALL) == 0) return 0;
        if (errno != EINVAL) return -errno;
        loop->features.flags &= ~URT__F_GUARD_INSTALL; /* < 6.13: for good */
    }
    if (mprotect(guard, URT_GUARD_SIZE, PROT_NONE) == 0) return 0;
    /* ENOMEM here means the mapping could not be split: max_map_count. */
    return errno == ENOMEM ? URT_ESTACKLIMIT : -errno;
}

#ifndef PIDFD_SELF_THREAD
#define PIDFD_SELF_THREAD (-10000)
#endif

/*
 * Installs the guards of count stacks laid out stride bytes apart from mem,
 * several per system call, and returns how many it installed (the rest, if
 * any, go one by one through install_guard, which reports the error).
 * madvise takes one range; process_madvise takes a vector of them, and from
 * 6.13 accepts any advice for the caller itself, which 6.14's
 * PIDFD_SELF_THREAD names without opening a pidfd.  A run of 100,000 new
 * stacks then costs 1,600 system calls instead of 100,000.
 */
static unsigned install_guards_batched(struct urt_loop *loop, char *mem, size_t stride,
                                       unsigned count)
{
    if (!urt__has(loop, URT__F_GUARD_BATCH) || !urt__has(loop, URT__F_GUARD_INSTALL)) return 0;
    unsigned done = 0;
    while (done < count) {
        struct iovec *iov = loop->guard_iov;
        unsigned n = count - done < URT__GUARD_BATCH ? count - done : URT__GUARD_BATCH;
        for (unsigned i = 0; i < n; i++)
            iov[i] = (struct iovec){mem + (size_t)(done + i) * stride, URT_GUARD_SIZE};
        long r = syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)n,
                         MADV_GUARD_INSTALL, 0u);
        if (r != (long)((size_t)n * URT_GUARD_SIZE)) {
            /* Older kernel (EBADF, EINVAL, ENOSYS) or a seccomp filter:
             * madvise one by one from now on.  A partial result leaves
             * the rest of this batch to install_guard as well. */
            if (r < 0) loop->features.flags &= ~URT__F_GUARD_BATCH;
            if (r > 0) done += (unsigned)((size_t)r / URT_GUARD_SIZE);
            break;
        }
        done += n;
    }
    return done;
}

static struct urt__stack *stack_at(char *base, size_t size)
{
    uintptr_t top = (uintptr_t)(base + size);
    uintptr_t desc = (top - sizeof(struct urt__stack)) & ~(uintptr_t)15;
    return (struct urt__stack *)desc;
}

/* Out of line: the pool's fast path should not pay for its frame. */
__attribute__((noinline, cold)) static int carve_slab(struct urt_loop *loop, unsigned c)
{
    struct urt__stack_pool *pool = &loop->pools[c];
    size_t size = class_size(c);
    size_t stride = size + URT_GUARD_SIZE;
    unsigned count = pool->next_slab_count ? pool->next_slab_count : SLAB_FIRST_COUNT;
    unsigned max_count = SLAB_MAX_BYTES / stride ? (unsigned)(SLAB_MAX_BYTES / stride) : 1;
    if (count > max_count) count = max_count;

    struct urt__slab *slab = malloc(sizeof *slab);
    if (!slab) return -ENOMEM;
    size_t len = (size_t)count * stride;
    char *mem = unlikely(urt__faults_stack_map())
                    ? (errno = ENOMEM, MAP_FAILED)
                    : mmap(NULL, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) {
        free(slab);
        return errno == ENOMEM ? -ENOMEM : -errno;
    }
    unsigned guarded = install_guards_batched(loop, mem, stride, count);
    unsigned carved = 0;
    int err = 0;
    for (; carved < count; carved++) {
        char *guard = mem + (size_t)carved * stride;
        if (carved >= guarded && (err = install_guard(loop, guard))) break;
        char *base = guard + URT_GUARD_SIZE;
        struct urt__stack *s = stack_at(base, size);
        s->base = base;
        s->size = size;
        s->size_class = (unsigned char)c;
        s->valgrind_id = VALGRIND_STACK_REGISTER(base, base + size);
        s->next_free = pool->free;
        pool->free = s;
    }
    if (carved == 0) {
        munmap(mem, len);
        free(slab);
        return err;
    }
    /* A partly carved slab (the map count ran out) keeps what it has: the
     * rest is address space only. */
    slab->mem = mem;
    slab->len = len;
    slab->stacks = carved;
    slab->stride = stride;
    slab->next = loop->slabs;
    loop->slabs = slab;
    if (count < max_count) pool->next_slab_count = count * 2;
    return 0;
}

int urt__stack_alloc(struct urt_loop *loop, unsigned c, struct urt__stack **out)
{
    struct urt__stack_pool *pool = &loop->pools[c];
    if (unlikely(!pool->free)) {
        int err = carve_slab(loop, c);
        if (err) return err;
    }
    struct urt__stack *s = pool->free;
    pool->free = s->next_free;
#ifdef URT_ASAN
    /* A finished fiber leaves its last frames' redzones poisoned. */
    ASAN_UNPOISON_MEMORY_REGION(s->base, s->size - sizeof *s);
#endif
    *out = s;
    return 0;
}

void urt__stack_free(struct urt_loop *loop, struct urt__stack *s)
{
    struct urt__stack_pool *pool = &loop->pools[s->size_class];
    s->next_free = pool->free;
    pool->free = s;
}

void urt__stacks_destroy(struct urt_loop *loop)
{
    struct urt__slab *slab = loop->slabs;
    while (slab) {
        struct urt__slab *next = slab->next;
        for (unsigned i = 0; i < slab->stacks; i++) {
            char *base = slab->mem + (size_t)i * slab->stride + URT_GUARD_SIZE;
            VALGRIND_STACK_DEREGISTER(stack_at(base, slab->stride - URT_GUARD_SIZE)->valgrind_id);
        }
        munmap(slab->mem, slab->len);
        free(slab);
        slab = next;
    }
    loop->slabs = NULL;
    memset(loop->pools, 0, sizeof loop->pools);
}

void urt__ctx_init(struct urt__ctx *ctx, struct urt__stack *stack,
                   void (*entry)(void *), void *arg)
{
    /* The frame urt__ctx_switch pops: r15 r14 r13 r12 rbx rbp, then the
     * return address.  top is 16-aligned, so after the pops and the ret rsp
     * is 16-aligned at urt__fiber_start's call, as the ABI wants. */
    uintptr_t top = (uintptr_t)stack & ~(uintptr_t)15;
    void **frame = (void **)(top - 72);
    frame[0] = NULL;                      /* r15 */
    frame[1] = NULL;                      /* r14 */
    frame[2] = (void *)entry;             /* r13 */
    frame[3] = arg;                       /* r12 */
    frame[4] = NULL;                      /* rbx */
    frame[5] = NULL;                      /* rbp: ends frame-pointer walks */
    frame[6] = (void *)urt__fiber_start;  /* return address */
    ctx->sp = frame;
}

#ifdef URT_ASAN
/* ASan must know which stack is current, or it reports the new fiber's
 * frames as wild accesses (internal.h has the plain build's switch). */
void urt__switch(struct urt_loop *loop, struct urt__task *from, struct urt__task *to)
{
    struct urt__ctx *from_ctx = from ? &from->ctx : &loop->main_ctx;
    struct urt__ctx *to_ctx = to ? &to->ctx : &loop->main_ctx;
    void **fake = from ? &from->asan_fake_stack : &loop->main_fake_stack;
    if (from && from->state == URT__DONE)
        fake = NULL; /* a dying fiber: ASan frees its fake stack */
    if (to)
        __sanitizer_start_switch_fiber(fake, to->stack->base, to->stack->size);
    else
        __sanitizer_start_switch_fiber(fake, loop->main_stack_bottom, loop->main_stack_size);
    urt__ctx_switch(from_ctx, to_ctx);
    __sanitizer_finish_switch_fiber(from ? from->asan_fake_stack : loop->main_fake_stack,
                                    NULL, NULL);
}
#endif

#ifdef URT_TSAN
/*
 * ThreadSanitizer keeps a context per fiber (its shadow call stack, its
 * clock).  Switching stacks without telling it mixes every task's frames
 * into one shadow stack, which grows by the frames of each task that ends
 * through a switch until it overflows (some 20,000 tasks in) and TSan
 * crashes; its reports name the wrong frames before that.  Contexts follow
 * stacks, not tasks: a finishing task may hand its stack to the next new
 * task, which starts on it without a switch (urt__exit_task) and so runs
 * on the same context.  Which context a task runs on is therefore read
 * when it switches out, which holds whatever ran on the stack before, and
 * a context is created only for a task that starts through a switch.
 * Thread-local rather than per loop because this is the sanitizer build's
 * bookkeeping, and a thread runs one loop at a time.
 */
static __thread void *tsan_thread_fiber; /* the loop's own stack's */
static __thread void *tsan_dead; /* a finished stack's: destroyed once off it */

static void tsan_reap(void)
{
    if (!tsan_dead) return;
    __tsan_destroy_fiber(tsan_dead);
    tsan_dead = NULL;
}

void urt__switch(struct urt_loop *loop, struct urt__task *from, struct urt__task *to)
{
    tsan_reap();
    void *current = __tsan_get_current_fiber();
    if (!from)
        tsan_thread_fiber = current;
    else if (from->state == URT__DONE)
        tsan_dead = current; /* its last switch: the stack is freed */
    else
        from->tsan_fiber = current;
    void *next = tsan_thread_fiber;
    if (to) {
        if (to->state == URT__NEW) to->tsan_fiber = __tsan_create_fiber(0);
        next = to->tsan_fiber;
    }
    __tsan_switch_to_fiber(next, 0);
    urt__ctx_switch(from ? &from->ctx : &loop->main_ctx, to ? &to->ctx : &loop->main_ctx);
    tsan_reap();
}
#endif

/* ---- stack overflow -----------------------------------------------------
 * A fiber that runs off its stack touches the guard zone and gets SIGSEGV.
 * The handler runs on an alternate signal stack (the faulting one is full),
 * names the task on stderr and lets the signal kill the process: continuing
 * would mean running with a corrupted stack.  Faults that are not in a guard
 * zone of ours go to whatever handler was there before.
 */

static struct sigaction previous_segv;
static pthread_mutex_t segv_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap) buf[at++] = *s++;
    return at;
}

static size_t append_number(char *buf, size_t at, size_t cap, uint64_t v)
{
    char digits[24];
    size_t n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) && n < sizeof digits);
    while (n && at + 1 < cap) buf[at++] = digits[--n];
    return at;
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    struct urt_loop *loop = urt__loop;
    struct urt__task *t = loop ? loop->current : NULL;
    char *addr = info->si_addr;
    if (t && t->stack && addr < t->stack->base && addr >= t->stack->base - URT_GUARD_SIZE) {
        char msg[160];
        size_t n = append(msg, 0, sizeof msg, "urt: task \"");
        if (t->has_name) {
            n = append(msg, n, sizeof msg, t->name);
        } else {
            n = append(msg, n, sizeof msg, "Task-");
            n = append_number(msg, n, sizeof msg, t->number);
        }
        n = append(msg, n, sizeof msg, "\" overflowed its stack (");
        n = append_number(msg, n, sizeof msg, t->stack->size);
        n = append(msg, n, sizeof msg, " bytes)\n");
        ssize_t ignored = write(STDERR_FILENO, msg, n);
        (void)ignored;
        signal(SIGSEGV, SIG_DFL); /* returning re-faults and kills us */
        return;
    }
    if (previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(sig, info, uctx);
    } else if (previous_segv.sa_handler != SIG_IGN && previous_segv.sa_handler != SIG_DFL) {
        previous_segv.sa_handler(sig);
    } else {
        sigaction(SIGSEGV, &previous_segv, NULL);
    }
}

/* Checked at every urt_run, not once: a library or test framework may have
 * put its own handler in since (cmocka does, before each test).  Whatever
 * is there becomes the handler we pass foreign faults to. */
static void install_segv_handler(void)
{
    pthread_mutex_lock(&segv_lock);
    struct sigaction current;
    if (sigaction(SIGSEGV, NULL, &current) == 0 &&
        !((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_segv)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        previous_segv = current;
        sigaction(SIGSEGV, &sa, NULL);
    }
    pthread_mutex_unlock(&segv_lock);
}

int urt__overflow_guard_start(struct urt_loop *loop)
{
    install_segv_handler();
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
        return 0; /* the thread has one: use it */
    size_t size = 64 * 1024;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return -ENOMEM;
    stack_t ss = {.ss_sp = mem, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, size);
        return -errno;
    }
    loop->altstack = mem;
    loop->altstack_size = size;
    return 0;
}

void urt__overflow_guard_stop(struct urt_loop *loop)
{
    if (!loop->altstack) return;
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    munmap(loop->altstack, loop->altstack_size);
    loop->altstack = NULL;
}
