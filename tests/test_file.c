/*
 * File operations (urt.h "I/O": files; SEMANTICS 5.4 and 6) on real files
 * in a temporary directory: every call checked against what is really on
 * disk, errors passed through as the system calls give them, each test
 * also run with the newer opcodes masked off (URT_KERNEL=5.6, 5.10, and
 * the file opcodes by name) so that every fallback path runs on this
 * kernel; a 64 MiB round trip; 200 tasks each with its own file; and
 * buffers the kernel fills seen as defined by valgrind.
 *
 * Checks made inside tasks never call cmocka's assert macros (a longjmp
 * out of a fiber would wreck the loop); they record the first failure and
 * the test asserts none was recorded after urt_run returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <valgrind/memcheck.h>

#include "harness.h"
#include "masks.h"

/* ---- feature masks ----------------------------------------------------- */

static const struct mask masks[] = {
    {NULL, NULL, {IORING_OP_NOP}, 0},
    /* The oldest kernel urt supports: OPENAT, CLOSE, STATX, READ, WRITE
     * (5.6) are there; RENAMEAT and UNLINKAT (5.11) and MKDIRAT (5.15) are
     * not, so those three become system calls. */
    {"URT_KERNEL", "5.6", {IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT}, 3},
    {"URT_KERNEL", "5.10", {IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT}, 3},
    /* Every opcode the file calls use and that has a fallback. */
    {"URT_FEATURES_OFF",
     "op_read,op_write,op_close,op_openat,op_statx,op_renameat,op_unlinkat,op_mkdirat",
     {IORING_OP_READ, IORING_OP_WRITE, IORING_OP_CLOSE, IORING_OP_OPENAT, IORING_OP_STATX,
      IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT},
     8},
};
#define NMASKS (sizeof masks / sizeof masks[0])

/* Called first by every masked task: the run really uses the mask, and
 * the unmasked run really has the opcodes. */
static void check_mask(void)
{
    const struct mask *m;
    const struct urt_loop *loop = mask_loop_checked(&masks[0], &m);
    if (!loop) return;
    if (!m->var && !getenv("URT_KERNEL") && !getenv("URT_FEATURES_OFF")) {
        static const unsigned char all[] = {
            IORING_OP_READ,  IORING_OP_WRITE,    IORING_OP_CLOSE,    IORING_OP_OPENAT,
            IORING_OP_STATX, IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_MKDIRAT,
        };
        for (size_t i = 0; i < sizeof all; i++) EXPECT_EQ(urt__has_op(loop, all[i]), 1);
    }
}

static void empty_tmpdir(void);

/* Each masked run starts in an empty temporary directory. */
static void run_one(const struct mask *m, urt_fn fn, void *arg)
{
    empty_tmpdir();
    run_masked(m, fn, arg);
}

static void run_all_masks(urt_fn fn, void *arg)
{
    for (size_t m = 0; m < NMASKS; m++) run_one(&masks[m], fn, arg);
}

/* ---- the temporary directory ---------------------------------------------- */

static char tmpdir[64];

struct path {
    char s[PATH_MAX];
};

/* The path of name inside the temporary directory, in one of a few
 * rotating buffers: good for the call it is passed to; a path kept longer
 * is copied (struct path). */
static const char *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *at(const char *fmt, ...)
{
    static char bufs[4][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 4];
    int n = snprintf(b, PATH_MAX, "%s/", tmpdir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, PATH_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static struct path path_of(const char *name)
{
    struct path p;
    snprintf(p.s, sizeof p.s, "%s", at("%s", name));
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Empties the directory between tests (each test starts from nothing). */
static void empty_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

static int setup(void **state)
{
    (void)state;
    empty_tmpdir();
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* What is really in the file, read without urt. */
static ssize_t slurp(const char *path, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = pread(fd, buf, len, 0);
    close(fd);
    return n;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -errno;
}

/* ---- open, read, write ----------------------------------------------------- */

static intptr_t main_open_rw(void *arg)
{
    (void)arg;
    check_mask();
    const struct path kept = path_of("rw.txt");
    const char *path = kept.s;
    int fd = urt_open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write(fd, "hello world", 11), 11);
    char buf[32] = {0};
    EXPECT_EQ(urt_pread(fd, buf, 5, 6), 5);
    EXPECT_EQ(memcmp(buf, "world", 5), 0);
    EXPECT_EQ(urt_pwrite(fd, "HELLO", 5, 0), 5);
    memset(buf, 0, sizeof buf);
    EXPECT_EQ(urt_pread(fd, buf, sizeof buf, 0), 11);
    EXPECT_EQ(memcmp(buf, "HELLO world", 11), 0);
    /* pread at the end of the file: 0, as read(2) at EOF. */
    EXPECT_EQ(urt_pread(fd, buf, sizeof buf, 11), 0);
    EXPECT_EQ(urt_pread(fd, buf, sizeof buf, 1000), 0);
    /* pwrite past the end leaves a hole of zeros. */
    EXPECT_EQ(urt_pwrite(fd, "!", 1, 20), 1);
    EXPECT_EQ(urt_pread(fd, buf, sizeof buf, 0), 21);
    EXPECT_EQ(memcmp(buf, "HELLO world\0\0\0\0\0\0\0\0\0!", 21), 0);
    EXPECT_EQ(urt_close(fd), 0);
    /* What is on disk, read without urt. */
    memset(buf, 0, sizeof buf);
    EXPECT_EQ(slurp(path, buf, sizeof buf), 21);
    EXPECT_EQ(memcmp(buf, "HELLO world\0\0\0\0\0\0\0\0\0!", 21), 0);
    struct stat st;
    EXPECT_EQ(stat(path, &st), 0);
    EXPECT(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 0077, 0); /* the mode was passed on: 0600 */
    /* O_APPEND is the kernel's: a write at the position goes to the end. */
    fd = urt_open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write(fd, "++", 2), 2);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(file_size(path), 23);
    /* O_TRUNC truncates. */
    fd = urt_open(path, O_RDWR | O_TRUNC | O_CLOEXEC, 0);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_read(fd, buf, sizeof buf), 0);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(file_size(path), 0);
    return 0;
}

/* Header (urt_open, urt_write, urt_pread, urt_pwrite): on a real file each
 * does what its system call does: the bytes land where asked (checked with
 * plain read(2)), pread at or past the end gives 0, a pwrite past the end
 * leaves zeros, the mode, O_APPEND and O_TRUNC are the kernel's. */
static void test_open_write_pread_pwrite_act_on_the_real_file(void **state)
{
    (void)state;
    run_all_masks(main_open_rw, NULL);
}

static intptr_t main_position(void *arg)
{
    (void)arg;
    check_mask();
    const struct path kept = path_of("pos.bin");
    const char *path = kept.s;
    enum { LEN = 8192 };
    unsigned char data[LEN], buf[LEN];
    fill(data, LEN, 0, 1);
    int fd = urt_open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write(fd, data, 1000), 1000);
    EXPECT_EQ(urt_write(fd, data + 1000, LEN - 1000), LEN - 1000); /* after the first */
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), LEN);
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    /* Two reads get consecutive data. */
    EXPECT_EQ(urt_read(fd, buf, 100), 100);
    EXPECT_EQ(mismatch(buf, 100, 0, 1), -1);
    EXPECT_EQ(urt_read(fd, buf, 100), 100);
    EXPECT_EQ(mismatch(buf, 100, 100, 1), -1);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 200);
    /* pread neither uses nor moves the position. */
    EXPECT_EQ(urt_pread(fd, buf, 50, 4000), 50);
    EXPECT_EQ(mismatch(buf, 50, 4000, 1), -1);
    EXPECT_EQ(urt_read(fd, buf, 100), 100);
    EXPECT_EQ(mismatch(buf, 100, 200, 1), -1);
    /* A write at the position goes at 300 and moves it. */
    EXPECT_EQ(urt_write(fd, "abc", 3), 3);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 303);
    EXPECT_EQ(urt_read(fd, buf, 10), 10);
    EXPECT_EQ(mismatch(buf, 10, 303, 1), -1);
    EXPECT_EQ(urt_pread(fd, buf, 3, 300), 3);
    EXPECT_EQ(memcmp(buf, "abc", 3), 0);
    /* Read to the end: the rest, then 0. */
    size_t done = 0;
    EXPECT_EQ(urt_read_exactly(fd, buf, LEN - 313, &done), LEN - 313);
    EXPECT_EQ(mismatch(buf, LEN - 313, 313, 1), -1);
    EXPECT_EQ(urt_read(fd, buf, 10), 0);
    EXPECT_EQ(urt_read_exactly(fd, buf, 10, &done), -ENODATA);
    EXPECT_EQ(done, 0);
    EXPECT_EQ(urt_close(fd), 0);
    return 0;
}

/* Header ("at the file position (urt_read, urt_write ...)"): a read moves
 * the position, so two reads get consecutive data; writes too; the p- forms
 * neither use nor move it; at the end a read gives 0. */
static void test_read_and_write_at_file_position_advance_it(void **state)
{
    (void)state;
    run_all_masks(main_position, NULL);
}

static intptr_t main_vectored(void *arg)
{
    (void)arg;
    check_mask();
    const struct path kept = path_of("vec.bin");
    const char *path = kept.s;
    enum { LEN = 3000 };
    unsigned char data[LEN], a[100], b[1], c[LEN];
    fill(data, LEN, 0, 2);
    int fd = urt_open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    struct iovec out[4] = {{data, 7}, {data + 7, 0}, {data + 7, 993}, {data + 1000, 1000}};
    EXPECT_EQ(urt_writev(fd, out, 4), 2000);
    struct iovec tail[1] = {{data + 2000, 1000}};
    EXPECT_EQ(urt_pwritev(fd, tail, 1, 2000), 1000);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 2000); /* pwritev left it */
    EXPECT_EQ(file_size(path), LEN);
    /* preadv at an offset fills the iovecs in order. */
    struct iovec in[3] = {{a, sizeof a}, {b, sizeof b}, {c, 400}};
    EXPECT_EQ(urt_preadv(fd, in, 3, 50), 501);
    EXPECT_EQ(mismatch(a, sizeof a, 50, 2), -1);
    EXPECT_EQ(mismatch(b, 1, 150, 2), -1);
    EXPECT_EQ(mismatch(c, 400, 151, 2), -1);
    /* readv at the position (2000), short at the end of the file. */
    struct iovec in2[2] = {{a, sizeof a}, {c, LEN}};
    EXPECT_EQ(urt_readv(fd, in2, 2), 1000);
    EXPECT_EQ(mismatch(a, sizeof a, 2000, 2), -1);
    EXPECT_EQ(mismatch(c, 900, 2100, 2), -1);
    EXPECT_EQ(urt_readv(fd, in2, 2), 0);
    /* A rewrite in the middle through pwritev. */
    struct iovec mid[2] = {{"XY", 2}, {"Z", 1}};
    EXPECT_EQ(urt_pwritev(fd, mid, 2, 10), 3);
    EXPECT_EQ(urt_close(fd), 0);
    unsigned char disk[LEN];
    EXPECT_EQ(slurp(path, disk, LEN), LEN);
    EXPECT_EQ(mismatch(disk, 10, 0, 2), -1);
    EXPECT_EQ(memcmp(disk + 10, "XYZ", 3), 0);
    EXPECT_EQ(mismatch(disk + 13, LEN - 13, 13, 2), -1);
    return 0;
}

/* Header (urt_readv, urt_writev, urt_preadv, urt_pwritev): scatter and
 * gather on a file, at the position and at an offset, in iovec order
 * (zero-length iovecs included), short only at the end of the file. */
static void test_vectored_file_io_fills_iovecs_in_order(void **state)
{
    (void)state;
    run_all_masks(main_vectored, NULL);
}

static intptr_t main_sync(void *arg)
{
    (void)arg;
    check_mask();
    const struct path kept = path_of("sync.txt");
    const char *path = kept.s;
    int fd = urt_open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write(fd, "durable", 7), 7);
    EXPECT_EQ(urt_fsync(fd), 0);
    EXPECT_EQ(urt_write(fd, "!", 1), 1);
    EXPECT_EQ(urt_fdatasync(fd), 0);
    EXPECT_EQ(file_size(path), 8);
    EXPECT_EQ(urt_close(fd), 0);
    /* Errors pass through: a closed fd, -1, and a pipe (fsync(2) on a
     * pipe is -EINVAL). */
    EXPECT_EQ(urt_fsync(fd), -EBADF);
    EXPECT_EQ(urt_fdatasync(fd), -EBADF);
    EXPECT_EQ(urt_fsync(-1), -EBADF);
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(urt_fsync(p[1]), -EINVAL);
    EXPECT_EQ(urt_fdatasync(p[1]), -EINVAL);
    close(p[0]);
    close(p[1]);
    return 0;
}

/* Header (urt_fsync, urt_fdatasync): 0 on a file, and the system call's
 * error otherwise (-EBADF for a closed fd, -EINVAL for a pipe). */
static void test_fsync_and_fdatasync_pass_results_through(void **state)
{
    (void)state;
    run_all_masks(main_sync, NULL);
}

static intptr_t main_statx(void *arg)
{
    (void)arg;
    check_mask();
    const struct path kept = path_of("st.bin");
    const char *path = kept.s;
    int fd = urt_open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0640);
    EXPECT(fd >= 0);
    unsigned char data[12345];
    fill(data, sizeof data, 0, 3);
    EXPECT_EQ(urt_write_all(fd, data, sizeof data, NULL), (ssize_t)sizeof data);
    struct stat ref;
    EXPECT_EQ(stat(path, &ref), 0);
    struct statx sx;
    memset(&sx, 0xff, sizeof sx);
    EXPECT_EQ(urt_statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx), 0);
    EXPECT_EQ(sx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
    EXPECT_EQ(sx.stx_size, sizeof data);
    EXPECT(S_ISREG(sx.stx_mode));
    EXPECT_EQ(sx.stx_mode & 07777, ref.st_mode & 07777);
    EXPECT_EQ(sx.stx_ino, ref.st_ino);
    EXPECT_EQ(sx.stx_nlink, 1);
    /* By fd, with AT_EMPTY_PATH. */
    memset(&sx, 0, sizeof sx);
    EXPECT_EQ(urt_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx), 0);
    EXPECT_EQ(sx.stx_size, sizeof data);
    /* Relative to a directory fd. */
    int dfd = urt_open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    EXPECT(dfd >= 0);
    memset(&sx, 0, sizeof sx);
    EXPECT_EQ(urt_statx(dfd, "st.bin", 0, STATX_BASIC_STATS, &sx), 0);
    EXPECT_EQ(sx.stx_ino, ref.st_ino);
    EXPECT_EQ(urt_statx(dfd, ".", 0, STATX_BASIC_STATS, &sx), 0);
    EXPECT(S_ISDIR(sx.stx_mode));
    /* Errors. */
    EXPECT_EQ(urt_statx(AT_FDCWD, at("missing"), 0, STATX_BASIC_STATS, &sx), -ENOENT);
    EXPECT_EQ(urt_statx(dfd, "missing", 0, STATX_BASIC_STATS, &sx), -ENOENT);
    EXPECT_EQ(urt_statx(AT_FDCWD, at("st.bin/below"), 0, STATX_BASIC_STATS, &sx), -ENOTDIR);
    EXPECT_EQ(urt_statx(-1, "st.bin", 0, STATX_BASIC_STATS, &sx), -EBADF);
    EXPECT_EQ(urt_statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, NULL), -EFAULT);
    EXPECT_EQ(urt_statx(AT_FDCWD, NULL, 0, STATX_BASIC_STATS, &sx), -EFAULT);
    EXPECT_EQ(urt_close(dfd), 0);
    EXPECT_EQ(urt_close(fd), 0);
    return 0;
}

/* Header (urt_statx): fills *out as statx(2) does (size, type, mode,
 * inode, by path, by fd with AT_EMPTY_PATH, relative to a directory fd);
 * errors as statx(2): -ENOENT, -ENOTDIR, -EBADF, -EFAULT. */
static void test_statx_reports_what_stat_reports(void **state)
{
    (void)state;
    run_all_masks(main_statx, NULL);
}

/* ---- paths: open errors, mkdir, rename, unlink ------------------------------ */

static intptr_t main_open_errors(void *arg)
{
    (void)arg;
    check_mask();
    char buf[8];
    EXPECT_EQ(urt_open(at("nope"), O_RDONLY | O_CLOEXEC, 0), -ENOENT);
    EXPECT_EQ(urt_open(at("nodir/f"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600), -ENOENT);
    int fd = urt_open(at("once"), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_open(at("once"), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600), -EEXIST);
    EXPECT_EQ(urt_read(fd, buf, 1), -EBADF); /* opened write-only */
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(urt_write(fd, "x", 1), -EBADF); /* closed */
    EXPECT_EQ(urt_pread(fd, buf, 1, 0), -EBADF);
    EXPECT_EQ(urt_open(tmpdir, O_WRONLY | O_CLOEXEC, 0), -EISDIR);
    EXPECT_EQ(urt_open(at("once/x"), O_RDONLY | O_CLOEXEC, 0), -ENOTDIR);
    EXPECT_EQ(urt_openat(-1, "once", O_RDONLY | O_CLOEXEC, 0), -EBADF);
    EXPECT_EQ(urt_open(NULL, O_RDONLY | O_CLOEXEC, 0), -EFAULT);
    /* A directory opened for reading: read(2) on it is -EISDIR. */
    int dfd = urt_open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    EXPECT(dfd >= 0);
    EXPECT_EQ(urt_read(dfd, buf, sizeof buf), -EISDIR);
    EXPECT_EQ(urt_pread(dfd, buf, sizeof buf, 0), -EISDIR);
    /* openat relative to it, and an absolute path ignores the dirfd. */
    fd = urt_openat(dfd, "once", O_RDONLY | O_CLOEXEC, 0);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_close(fd), 0);
    fd = urt_openat(-1, at("once"), O_RDONLY | O_CLOEXEC, 0);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(urt_close(dfd), 0);
    /* urt_open and urt_openat add O_CLOEXEC. */
    fd = urt_open(at("once"), O_RDONLY, 0);
    EXPECT(fd >= 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(urt_close(fd), 0);
    fd = urt_openat(AT_FDCWD, at("once"), O_RDONLY, 0);
    EXPECT(fd >= 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(urt_close(fd), 0);
    return 0;
}

/* Header ("Return values as the system calls'"): open's errors pass
 * through: -ENOENT, -EEXIST (O_EXCL), -EISDIR, -ENOTDIR, -EBADF (bad dirfd,
 * closed fd, wrong access mode), -EFAULT (NULL path); openat resolves
 * relative paths against its dirfd and ignores it for absolute ones; both
 * add O_CLOEXEC. */
static void test_open_errors_pass_through(void **state)
{
    (void)state;
    run_all_masks(main_open_errors, NULL);
}

static intptr_t main_paths(void *arg)
{
    (void)arg;
    check_mask();
    struct statx sx;
    /* mkdir, and again. */
    EXPECT_EQ(urt_mkdir(at("d"), 0700), 0);
    EXPECT_EQ(urt_mkdir(at("d"), 0700), -EEXIST);
    EXPECT_EQ(urt_mkdir(at("no/such/parent"), 0700), -ENOENT);
    EXPECT_EQ(urt_statx(AT_FDCWD, at("d"), 0, STATX_BASIC_STATS, &sx), 0);
    EXPECT(S_ISDIR(sx.stx_mode));
    EXPECT_EQ(sx.stx_mode & 0777, 0700);
    int dfd = urt_open(at("d"), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    EXPECT(dfd >= 0);
    EXPECT_EQ(urt_mkdirat(dfd, "sub", 0755), 0);
    EXPECT_EQ(urt_mkdirat(dfd, "sub", 0755), -EEXIST);
    EXPECT_EQ(urt_mkdirat(-1, "sub", 0755), -EBADF);
    struct stat st;
    EXPECT_EQ(stat(at("d/sub"), &st), 0);
    EXPECT(S_ISDIR(st.st_mode));

    /* A file in it, renamed with renameat, then with rename. */
    int fd = urt_openat(dfd, "sub/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write(fd, "content", 7), 7);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(urt_renameat(dfd, "sub/f", dfd, "g", 0), 0);
    EXPECT_EQ(stat(at("d/sub/f"), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(file_size(at("d/g")), 7);
    EXPECT_EQ(urt_rename(at("d/g"), at("h")), 0);
    EXPECT_EQ(file_size(at("h")), 7);
    char buf[16] = {0};
    EXPECT_EQ(slurp(at("h"), buf, sizeof buf), 7);
    EXPECT_EQ(memcmp(buf, "content", 7), 0);
    EXPECT_EQ(urt_rename(at("d/g"), at("h2")), -ENOENT);
    /* Rename over an existing file replaces it; RENAME_NOREPLACE refuses. */
    fd = urt_open(at("other"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(urt_renameat(AT_FDCWD, at("h"), AT_FDCWD, at("other"), RENAME_NOREPLACE), -EEXIST);
    EXPECT_EQ(file_size(at("h")), 7);
    EXPECT_EQ(urt_rename(at("h"), at("other")), 0);
    EXPECT_EQ(file_size(at("other")), 7);
    /* A file onto a directory: -EISDIR, as rename(2). */
    EXPECT_EQ(urt_rename(at("other"), at("d")), -EISDIR);

    /* unlink, and again. */
    EXPECT_EQ(urt_unlink(at("other")), 0);
    EXPECT_EQ(urt_unlink(at("other")), -ENOENT);
    EXPECT_EQ(stat(at("other"), &st), -1);
    /* A directory is not unlinked: -EISDIR (Linux's unlink(2)). */
    EXPECT_EQ(urt_unlink(at("d/sub")), -EISDIR);
    EXPECT_EQ(urt_unlinkat(dfd, "sub", 0), -EISDIR);
    /* rmdir of a non-empty directory, then of an empty one. */
    fd = urt_openat(dfd, "sub/x", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(urt_unlinkat(dfd, "sub", AT_REMOVEDIR), -ENOTEMPTY);
    EXPECT_EQ(urt_unlinkat(dfd, "sub/x", 0), 0);
    EXPECT_EQ(urt_unlinkat(dfd, "sub", AT_REMOVEDIR), 0);
    EXPECT_EQ(stat(at("d/sub"), &st), -1);
    EXPECT_EQ(urt_unlinkat(-1, "sub", 0), -EBADF);
    EXPECT_EQ(urt_unlink(NULL), -EFAULT);
    EXPECT_EQ(urt_rename(NULL, at("x")), -EFAULT);
    EXPECT_EQ(urt_rename(at("x"), NULL), -EFAULT);
    EXPECT_EQ(urt_close(dfd), 0);
    EXPECT_EQ(urt_unlinkat(AT_FDCWD, at("d"), AT_REMOVEDIR), 0);
    return 0;
}

/* Header (urt_mkdir, urt_mkdirat, urt_rename, urt_renameat, urt_unlink,
 * urt_unlinkat): each changes the file system as its system call does
 * (checked with stat(2)), relative to a directory fd for the *at forms,
 * and its errors pass through: -EEXIST, -ENOENT, -EISDIR, -ENOTEMPTY,
 * -EBADF, -EFAULT.  Under URT_KERNEL=5.6 and 5.10 the three newer opcodes
 * are system calls instead, with the same results. */
static void test_mkdir_rename_unlink_and_at_forms_change_the_file_system(void **state)
{
    (void)state;
    run_all_masks(main_paths, NULL);
}

static intptr_t main_relative(void *arg)
{
    (void)arg;
    check_mask();
    int fd = urt_open("rel.txt", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write(fd, "rel", 3), 3);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(file_size(at("rel.txt")), 3);
    EXPECT_EQ(urt_mkdir("reldir", 0700), 0);
    EXPECT_EQ(urt_rename("rel.txt", "reldir/moved"), 0);
    struct statx sx;
    EXPECT_EQ(urt_statx(AT_FDCWD, "reldir/moved", 0, STATX_SIZE, &sx), 0);
    EXPECT_EQ(sx.stx_size, 3);
    EXPECT_EQ(urt_unlink("reldir/moved"), 0);
    EXPECT_EQ(urt_unlinkat(AT_FDCWD, "reldir", AT_REMOVEDIR), 0);
    EXPECT_EQ(file_size(at("reldir")), -ENOENT);
    return 0;
}

/* Header ("Paths are relative to the working directory"). */
static void test_relative_paths_are_relative_to_working_directory(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    for (size_t m = 0; m < NMASKS; m++) {
        empty_tmpdir();
        trace_reset();
        task_failure[0] = 0;
        mask_apply(&masks[m]);
        int rc = urt_run(main_relative, NULL, NULL);
        mask_restore(&masks[m]);
        if (rc != 0 || task_failure[0]) {
            assert_int_equal(chdir(cwd), 0);
            assert_no_task_failure();
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(chdir(cwd), 0);
}

/* ---- big and many ------------------------------------------------------------ */

static intptr_t main_big_file(void *arg)
{
    (void)arg;
    check_mask();
    size_t len = small_scale() ? 4u << 20 : 64u << 20;
    const struct path kept = path_of("big.bin");
    const char *path = kept.s;
    unsigned char *src = malloc(len), *dst = malloc(len);
    EXPECT(src && dst);
    if (!src || !dst) return 0;
    fill(src, len, 0, 4);
    memset(dst, 0, len);
    int fd = urt_open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    size_t done = 0;
    EXPECT_EQ(urt_write_all(fd, src, len, &done), (ssize_t)len);
    EXPECT_EQ(done, len);
    EXPECT_EQ(urt_fsync(fd), 0);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(file_size(path), (long long)len);
    fd = urt_open(path, O_RDONLY | O_CLOEXEC, 0);
    EXPECT(fd >= 0);
    done = 0;
    EXPECT_EQ(urt_read_exactly(fd, dst, len, &done), (ssize_t)len);
    EXPECT_EQ(done, len);
    EXPECT_EQ(mismatch(dst, len, 0, 4), -1);
    /* Nothing after it. */
    EXPECT_EQ(urt_read_exactly(fd, dst, 1, &done), -ENODATA);
    EXPECT_EQ(done, 0);
    EXPECT_EQ(urt_close(fd), 0);
    EXPECT_EQ(urt_unlink(path), 0);
    free(src);
    free(dst);
    return 0;
}

/* Header (urt_write_all, urt_read_exactly; SEMANTICS 6: "never loses or
 * duplicates a byte"): a 64 MiB file (4 MiB under URT_TEST_SMALL) written
 * whole and read back whole is the same byte for byte. */
static void test_64mib_file_written_whole_reads_back_identical(void **state)
{
    (void)state;
    run_all_masks(main_big_file, NULL);
}

#define FILE_TASKS 200
#define PER_FILE (64u * 1024u + 17u)

static int files_done;

static intptr_t own_file_fn(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    char name[32];
    snprintf(name, sizeof name, "many-%u", i);
    const struct path kept = path_of(name);
    const char *mine = kept.s;
    unsigned char *src = malloc(PER_FILE), *dst = malloc(PER_FILE);
    fill(src, PER_FILE, 0, 100 + i);
    int fd = urt_open(mine, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_write_all(fd, src, PER_FILE, NULL), PER_FILE);
    EXPECT_EQ(urt_fdatasync(fd), 0);
    EXPECT_EQ(urt_yield(), 0);
    size_t got = 0;
    while (got < PER_FILE) { /* pread in 10,000-byte pieces */
        size_t want = PER_FILE - got < 10000 ? PER_FILE - got : 10000;
        ssize_t r = urt_pread(fd, dst + got, want, got);
        EXPECT(r > 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    EXPECT_EQ(mismatch(dst, PER_FILE, 0, 100 + i), -1);
    EXPECT_EQ(urt_close(fd), 0);
    struct statx sx;
    EXPECT_EQ(urt_statx(AT_FDCWD, mine, 0, STATX_SIZE, &sx), 0);
    EXPECT_EQ(sx.stx_size, PER_FILE);
    EXPECT_EQ(urt_unlink(mine), 0);
    free(src);
    free(dst);
    files_done++;
    return 0;
}

static intptr_t main_many_files(void *arg)
{
    (void)arg;
    check_mask();
    files_done = 0;
    urt_task t[FILE_TASKS];
    for (unsigned i = 0; i < FILE_TASKS; i++)
        EXPECT_EQ(urt_task_create(&t[i], own_file_fn, (void *)(uintptr_t)i), 0);
    EXPECT_EQ(urt_gather(t, FILE_TASKS, 0, NULL, NULL), 0);
    for (unsigned i = 0; i < FILE_TASKS; i++) EXPECT_EQ(urt_task_release(t[i]), 0);
    EXPECT_EQ(files_done, FILE_TASKS);
    DIR *d = opendir(tmpdir);
    int left = 0;
    for (struct dirent *e; d && (e = readdir(d));) left += e->d_name[0] != '.';
    if (d) closedir(d);
    EXPECT_EQ(left, 0);
    return 0;
}

/* SEMANTICS 5.1, 6: 200 tasks at once, each creating, writing, syncing,
 * reading back, stat-ing and removing its own file: every file has its own
 * content, nothing is mixed up between tasks, nothing is left behind. */
static void test_200_tasks_each_write_and_read_back_own_file(void **state)
{
    (void)state;
    run_all_masks(main_many_files, NULL);
}

/* ---- valgrind sees kernel-filled buffers as defined --------------------------- */

/* 1 if every byte of [p, p+len) is defined for memcheck, 0 if some is not,
 * or -1 when not running under valgrind.  Reads the V bits without
 * reporting anything, so that bytes that must stay undefined can be
 * checked too. */
static int defined(const void *p, size_t len)
{
    if (!RUNNING_ON_VALGRIND) return -1;
    unsigned char *vbits = malloc(len);
    int ok = VALGRIND_GET_VBITS(p, vbits, len) == 1;
    for (size_t i = 0; ok && i < len; i++) ok = vbits[i] == 0;
    free(vbits);
    return ok;
}

static int undefined_all(const void *p, size_t len)
{
    if (!RUNNING_ON_VALGRIND) return -1;
    unsigned char *vbits = malloc(len);
    int ok = VALGRIND_GET_VBITS(p, vbits, len) == 1;
    for (size_t i = 0; ok && i < len; i++) ok = vbits[i] == 0xff;
    free(vbits);
    return ok;
}

/* Branches on every byte, which memcheck reports if one is undefined. */
static size_t count_pattern(const unsigned char *p, size_t len, unsigned seed)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] == pat(i, seed)) n++;
    return n;
}

static intptr_t main_defined(void *arg)
{
    (void)arg;
    check_mask();
    enum { HAVE = 1000, ASK = 4096 };
    const struct path kept = path_of("vg.bin");
    const char *path = kept.s;
    unsigned char data[HAVE];
    fill(data, HAVE, 0, 5);
    int fd = urt_open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(urt_pwrite(fd, data, HAVE, 0), HAVE);
    int expect_vg = RUNNING_ON_VALGRIND ? 1 : -1;

    /* pread of a short file into a malloc'd buffer: the HAVE bytes read
     * are defined, the rest still undefined (not blindly marked). */
    unsigned char *buf = malloc(ASK);
    EXPECT_EQ(urt_pread(fd, buf, ASK, 0), HAVE);
    EXPECT_EQ(defined(buf, HAVE), expect_vg);
    EXPECT_EQ(undefined_all(buf + HAVE, ASK - HAVE), expect_vg);
    EXPECT_EQ(count_pattern(buf, HAVE, 5), HAVE);
    free(buf);

    /* read at the position. */
    buf = malloc(ASK);
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    EXPECT_EQ(urt_read(fd, buf, ASK), HAVE);
    EXPECT_EQ(defined(buf, HAVE), expect_vg);
    EXPECT_EQ(count_pattern(buf, HAVE, 5), HAVE);
    free(buf);

    /* readv / preadv across iovecs: each filled part is defined. */
    unsigned char *a = malloc(300), *b = malloc(ASK);
    struct iovec iov[2] = {{a, 300}, {b, ASK}};
    EXPECT_EQ(urt_preadv(fd, iov, 2, 0), HAVE);
    EXPECT_EQ(defined(a, 300), expect_vg);
    EXPECT_EQ(defined(b, HAVE - 300), expect_vg);
    EXPECT_EQ(undefined_all(b + HAVE - 300, ASK - (HAVE - 300)), expect_vg);
    EXPECT_EQ(count_pattern(a, 300, 5), 300);
    size_t n = 0;
    for (size_t i = 0; i < HAVE - 300; i++) n += b[i] == pat(300 + i, 5);
    EXPECT_EQ(n, HAVE - 300);
    free(a);
    free(b);

    /* read_exactly. */
    buf = malloc(HAVE);
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    EXPECT_EQ(urt_read_exactly(fd, buf, HAVE, NULL), HAVE);
    EXPECT_EQ(defined(buf, HAVE), expect_vg);
    EXPECT_EQ(count_pattern(buf, HAVE, 5), HAVE);
    free(buf);

    /* statx into uninitialised memory. */
    struct statx *sx = malloc(sizeof *sx);
    EXPECT_EQ(urt_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, sx), 0);
    EXPECT_EQ(defined(&sx->stx_size, sizeof sx->stx_size), expect_vg);
    EXPECT_EQ(defined(&sx->stx_mode, sizeof sx->stx_mode), expect_vg);
    bool regular_of_have = false;
    if (sx->stx_size == HAVE && S_ISREG(sx->stx_mode)) regular_of_have = true;
    EXPECT(regular_of_have);
    free(sx);

    /* A pipe: the same through urt_read. */
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(write(p[1], data, 100), 100);
    buf = malloc(ASK);
    EXPECT_EQ(urt_read(p[0], buf, ASK), 100);
    EXPECT_EQ(defined(buf, 100), expect_vg);
    EXPECT_EQ(count_pattern(buf, 100, 5), 100);
    free(buf);
    close(p[0]);
    close(p[1]);
    EXPECT_EQ(urt_close(fd), 0);
    return 0;
}

/* The I/O core marks what the kernel wrote as defined for valgrind's
 * memcheck (io.h, urt__mark_defined), which cannot see io_uring's writes:
 * buffers from malloc (uninitialised) filled by pread, read, preadv,
 * read_exactly, statx and a pipe read are branched on byte by byte without
 * an "uninitialised value" report, and, read through memcheck's V bits,
 * exactly the bytes the kernel filled are defined.  Outside valgrind the
 * contents are still checked. */
static void test_kernel_filled_buffers_are_defined_for_valgrind(void **state)
{
    (void)state;
    run_all_masks(main_defined, NULL);
}

/* ---- outside a loop ------------------------------------------------------------ */

/* Header: "Calls made outside a task return URT_ENOLOOP", and nothing is
 * done: no file is created, renamed or removed. */
static void test_file_calls_outside_a_loop_are_enoloop(void **state)
{
    (void)state;
    const struct path kept = path_of("exists");
    const char *path = kept.s;
    int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    struct statx sx;
    char buf[4];
    struct iovec iov = {buf, sizeof buf};
    assert_int_equal(urt_open(at("new"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600), URT_ENOLOOP);
    assert_int_equal(urt_openat(AT_FDCWD, at("new"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600),
                     URT_ENOLOOP);
    assert_int_equal(urt_fsync(fd), URT_ENOLOOP);
    assert_int_equal(urt_fdatasync(fd), URT_ENOLOOP);
    assert_int_equal(urt_statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx), URT_ENOLOOP);
    assert_int_equal(urt_unlink(path), URT_ENOLOOP);
    assert_int_equal(urt_unlinkat(AT_FDCWD, path, 0), URT_ENOLOOP);
    assert_int_equal(urt_rename(path, at("renamed")), URT_ENOLOOP);
    assert_int_equal(urt_renameat(AT_FDCWD, path, AT_FDCWD, at("renamed"), 0), URT_ENOLOOP);
    assert_int_equal(urt_mkdir(at("dir"), 0700), URT_ENOLOOP);
    assert_int_equal(urt_mkdirat(AT_FDCWD, at("dir"), 0700), URT_ENOLOOP);
    assert_int_equal(urt_pread(fd, buf, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_pwrite(fd, "x", 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_preadv(fd, &iov, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_pwritev(fd, &iov, 1, 0), URT_ENOLOOP);
    assert_int_equal(urt_close(fd), URT_ENOLOOP);
    /* Nothing was done. */
    assert_int_equal(file_size(path), 3);
    assert_int_equal(file_size(at("new")), -ENOENT);
    assert_int_equal(file_size(at("renamed")), -ENOENT);
    assert_int_equal(file_size(at("dir")), -ENOENT);
    assert_int_equal(pread(fd, buf, 3, 0), 3);
    assert_memory_equal(buf, "abc", 3);
    close(fd);
}

/* ---- main ------------------------------------------------------------------ */

static intptr_t warm_up_main(void *arg)
{
    (void)arg;
    struct statx sx;
    return urt_statx(AT_FDCWD, tmpdir, 0, STATX_BASIC_STATS, &sx);
}

/* The temporary directory for the whole file, and one run before the
 * tests: run_checked compares mappings before and after a run, and the
 * allocator maps its arenas on first use. */
static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/urt-test-file-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    return urt_run(warm_up_main, NULL, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_open_write_pread_pwrite_act_on_the_real_file, setup),
        cmocka_unit_test_setup(test_read_and_write_at_file_position_advance_it, setup),
        cmocka_unit_test_setup(test_vectored_file_io_fills_iovecs_in_order, setup),
        cmocka_unit_test_setup(test_fsync_and_fdatasync_pass_results_through, setup),
        cmocka_unit_test_setup(test_statx_reports_what_stat_reports, setup),
        cmocka_unit_test_setup(test_open_errors_pass_through, setup),
        cmocka_unit_test_setup(test_mkdir_rename_unlink_and_at_forms_change_the_file_system,
                               setup),
        cmocka_unit_test_setup(test_relative_paths_are_relative_to_working_directory, setup),
        cmocka_unit_test_setup(test_64mib_file_written_whole_reads_back_identical, setup),
        cmocka_unit_test_setup(test_200_tasks_each_write_and_read_back_own_file, setup),
        cmocka_unit_test_setup(test_kernel_filled_buffers_are_defined_for_valgrind, setup),
        cmocka_unit_test_setup(test_file_calls_outside_a_loop_are_enoloop, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
