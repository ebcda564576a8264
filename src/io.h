/*
 * The I/O core (io.c) as the operation files (file.c, net.c) use it: an
 * operation is a prep function and its arguments; urt__io() submits it,
 * suspends the task, and maps the result the same way for every operation.
 */
#ifndef URT_IO_H
#define URT_IO_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"

struct urt__io;
typedef void (*urt__prep_fn)(struct io_uring_sqe *sqe, const struct urt__io *io);

struct urt__rw {
    const struct iovec *iov; /* NULL: the single buffer in one */
    int iovcnt;
    struct iovec one;
    uint64_t offset; /* (uint64_t)-1: the file position */
    bool write;
};

struct urt__io {
    urt__prep_fn prep;
    int fd;              /* the fd the op works on (fd table, polling), or -1 */
    short eagain_events; /* POLLIN/POLLOUT: -EAGAIN means "wait and retry" */
    bool nowait;         /* this try must not wait (URT_TEST_NOWAIT) */
    uint64_t deadline;   /* absolute CLOCK_MONOTONIC ns for LINK_TIMEOUT, or 0 */
    union {
        struct urt__rw rw;
        struct { short events; } poll;
        const void *args; /* any other operation's own argument struct */
    } u;
};

/* The fd's entry in the fd table, grown to hold it if grow (NULL if it
 * is not there and cannot be).  Every op with an fd looks it up. */
struct urt__fd *urt__fd_entry_grow(struct urt_loop *loop, int fd, bool grow);
static inline struct urt__fd *urt__fd_entry(struct urt_loop *loop, int fd, bool grow)
{
    if (likely((size_t)fd < loop->fds_cap)) return &loop->fds[fd];
    return urt__fd_entry_grow(loop, fd, grow);
}
/* Runs one operation to its end; see io.c for how results are mapped. */
int urt__io(const struct urt__io *io);
/* The same, for a caller that has the running loop already. */
int urt__io_on(struct urt_loop *loop, const struct urt__io *io);
ssize_t urt__rw(int fd, const struct iovec *iov, int iovcnt, void *buf, size_t len,
                uint64_t offset, bool write, uint64_t timeout_ns);
/* io_uring lengths are 32-bit: longer requests are just short. */
unsigned urt__clamp_len(size_t len);
/* Reads and POLLIN polls on an fd in read-ahead (readahead.c), served from
 * the bytes urt holds; *served false: not such an fd, or nothing is or will
 * be buffered, and the kernel is asked as usual. */
ssize_t urt__stream_read(struct urt_loop *loop, int fd, const struct iovec *iov, int iovcnt,
                         int flags, uint64_t deadline, bool *served);
int urt__stream_poll(struct urt_loop *loop, int fd, short events, uint64_t deadline,
                     bool *served);
/* Tells valgrind's memcheck the kernel filled buf (a no-op otherwise). */
void urt__mark_defined(const void *buf, size_t len);

#endif
