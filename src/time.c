/*
 * Sleeping and yielding.
 *
 * A sleep is one IORING_OP_TIMEOUT whose deadline is absolute on
 * CLOCK_MONOTONIC, computed when urt_sleep is called: the time the SQE waits
 * for the end of the turn is not added to the sleep, and the kernel's timer
 * never fires before the deadline.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

uint64_t urt__deadline_after(uint64_t ns)
{
    /* Capped at INT64_MAX ns, about 292 years from boot. */
    uint64_t now = urt_now();
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

uint64_t urt__deadline_of(uint64_t timeout_ns)
{
    return timeout_ns == URT_NO_TIMEOUT ? 0 : urt__deadline_after(timeout_ns);
}

uint64_t urt__time_left(uint64_t deadline)
{
    if (!deadline) return URT_NO_TIMEOUT;
    uint64_t now = urt_now();
    return deadline > now ? deadline - now : 0;
}

struct __kernel_timespec urt__timespec(uint64_t ns)
{
    return (struct __kernel_timespec){.tv_sec = (long long)(ns / URT_NS_PER_S),
                                      .tv_nsec = (long long)(ns % URT_NS_PER_S)};
}

int urt__deliver_pending_cancel(struct urt_loop *loop, struct urt__task *self)
{
    self->cancel_pending = false;
    urt__make_ready(loop, self);
    urt__suspend(loop);
    return urt__cancel_take(self);
}

int urt_yield(void)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);
    urt__make_ready(loop, self);
    urt__suspend(loop);
    if (self->cancel_pending) return urt__cancel_take(self);
    return 0;
}

int urt_sleep(uint64_t ns)
{
    if (ns == 0) return urt_yield();
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct urt__task *self = loop->current;
    if (self->cancel_pending) return urt__deliver_pending_cancel(loop, self);

    struct urt__op op = {.is_timeout = true, .fd = -1, .ts = urt__timespec(urt__deadline_after(ns))};
    struct io_uring_sqe *sqe = urt__get_sqe(loop);
    io_uring_prep_timeout(sqe, &op.ts, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data(sqe, &op);
    int res = urt__op_wait(loop, &op);
    if (self->cancel_pending) return urt__cancel_take(self);
    /* -ETIME is the timer expiring, which is what a sleep wants. */
    return res == -ETIME || res == 0 ? 0 : res;
}
