/*
 * File-system operations through the I/O core (io.c).  Where the kernel
 * lacks the opcode (UNLINKAT and RENAMEAT before 5.11, MKDIRAT before 5.15)
 * the system call runs on the loop's thread instead: same result, but the
 * loop waits for it, which on a local file system is brief.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

struct path_args {
    int dirfd, newdirfd;
    const char *path, *newpath;
    int flags;
    unsigned mode, mask;
    struct statx *out;
};

static void prep_openat(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct path_args *a = io->u.args;
    io_uring_prep_openat(sqe, a->dirfd, a->path, a->flags, a->mode);
}

static void prep_statx(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct path_args *a = io->u.args;
    io_uring_prep_statx(sqe, a->dirfd, a->path, a->flags, a->mask, a->out);
}

static void prep_unlinkat(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct path_args *a = io->u.args;
    io_uring_prep_unlinkat(sqe, a->dirfd, a->path, a->flags);
}

static void prep_renameat(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct path_args *a = io->u.args;
    io_uring_prep_renameat(sqe, a->dirfd, a->path, a->newdirfd, a->newpath, (unsigned)a->flags);
}

static void prep_mkdirat(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct path_args *a = io->u.args;
    io_uring_prep_mkdirat(sqe, a->dirfd, a->path, a->mode);
}

/* Runs op through the ring when the kernel has it; -1 when it does not and
 * the caller must make the system call. */
static int path_op(unsigned opcode, urt__prep_fn prep, const struct path_args *a, int *res)
{
    struct urt_loop *loop = urt__running();
    if (!loop) {
        *res = URT_ENOLOOP;
        return 0;
    }
    if (!a->path || (opcode == IORING_OP_RENAMEAT && !a->newpath)) {
        *res = -EFAULT;
        return 0;
    }
    if (!urt__has_op(loop, opcode)) return -1;
    struct urt__io io = {.prep = prep, .fd = -1, .u.args = a};
    *res = urt__io(&io);
    return 0;
}

static int syscall_result(int ret)
{
    return ret >= 0 ? ret : -errno;
}

int urt_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    flags |= O_CLOEXEC; /* as for sockets: no fd leaks into an exec'd child */
    struct path_args a = {.dirfd = dirfd, .path = path, .flags = flags, .mode = mode};
    int res;
    if (path_op(IORING_OP_OPENAT, prep_openat, &a, &res) == 0) return res;
    return syscall_result(openat(dirfd, path, flags, mode));
}

int urt_open(const char *path, int flags, mode_t mode)
{
    return urt_openat(AT_FDCWD, path, flags, mode);
}

int urt_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out)
{
    if (!out) return urt__running() ? -EFAULT : URT_ENOLOOP;
    struct path_args a = {.dirfd = dirfd, .path = path, .flags = flags, .mask = mask, .out = out};
    int res;
    if (path_op(IORING_OP_STATX, prep_statx, &a, &res) != 0)
        res = syscall_result(statx(dirfd, path, flags, mask, out));
    if (res == 0) urt__mark_defined(out, sizeof *out);
    return res;
}

int urt_unlinkat(int dirfd, const char *path, int flags)
{
    struct path_args a = {.dirfd = dirfd, .path = path, .flags = flags};
    int res;
    if (path_op(IORING_OP_UNLINKAT, prep_unlinkat, &a, &res) == 0) return res;
    return syscall_result(unlinkat(dirfd, path, flags));
}

int urt_unlink(const char *path)
{
    return urt_unlinkat(AT_FDCWD, path, 0);
}

int urt_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                 unsigned flags)
{
    struct path_args a = {.dirfd = olddirfd, .path = oldpath, .newdirfd = newdirfd,
                          .newpath = newpath, .flags = (int)flags};
    int res;
    if (path_op(IORING_OP_RENAMEAT, prep_renameat, &a, &res) == 0) return res;
    return syscall_result(renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
}

int urt_rename(const char *oldpath, const char *newpath)
{
    return urt_renameat(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

int urt_mkdirat(int dirfd, const char *path, mode_t mode)
{
    struct path_args a = {.dirfd = dirfd, .path = path, .mode = mode};
    int res;
    if (path_op(IORING_OP_MKDIRAT, prep_mkdirat, &a, &res) == 0) return res;
    return syscall_result(mkdirat(dirfd, path, mode));
}

int urt_mkdir(const char *path, mode_t mode)
{
    return urt_mkdirat(AT_FDCWD, path, mode);
}

/* ---- fsync ----------------------------------------------------------------- */

static void prep_fsync(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    io_uring_prep_fsync(sqe, io->fd, *(const unsigned *)io->u.args);
}

static int sync_fd(int fd, unsigned flags)
{
    if (!urt__running()) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    struct urt__io io = {.prep = prep_fsync, .fd = fd, .u.args = &flags};
    return urt__io(&io);
}

int urt_fsync(int fd)
{
    return sync_fd(fd, 0);
}

int urt_fdatasync(int fd)
{
    return sync_fd(fd, IORING_FSYNC_DATASYNC);
}
