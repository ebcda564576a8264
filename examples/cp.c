/*
 * cp.c - copies a regular file with several reads and writes in flight at
 * once.
 *
 *   cp SOURCE DEST
 *
 * A plain read-then-write loop leaves the disk idle while it writes and
 * idle again while it reads.  Here 8 tasks each take the next 256 KiB chunk
 * of the file, read it at its offset (urt_pread) and write it at the same
 * offset (urt_pwrite): up to 8 requests are with the kernel at once, and the
 * chunks may finish in any order because each carries its own offset.
 *
 * DEST gets SOURCE's size and, when it is new, its permission bits (less
 * the umask, as with cp(1)).  Prints nothing on success; on error prints
 * what failed and exits 1, leaving DEST as far as it got.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "urt.h"

#define WORKERS 8
#define CHUNK (256 * 1024)

struct copy {
    const char *src_path, *dst_path;
    int src, dst;
    uint64_t size;
    uint64_t next; /* offset of the first chunk nobody has taken */
    /* The first failure: the other tasks stop taking chunks once it is
     * set, and main prints it.  why, when set, replaces urt_strerror. */
    int error;
    const char *failed_path, *why;
};

static void fail(struct copy *cp, const char *path, int err)
{
    if (!cp->error) {
        cp->error = err;
        cp->failed_path = path;
    }
}

static int fail_because(struct copy *cp, const char *path, const char *why)
{
    fail(cp, path, -EINVAL);
    cp->why = why;
    return -EINVAL;
}

/* Reads or writes all len bytes at offset, however many calls it takes: a
 * transfer may be short (a signal, a full disk on the last block), and
 * stopping at the first short one would silently drop the rest. */
static int transfer_all(struct copy *cp, int write, char *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write ? urt_pwrite(cp->dst, buf + done, len - done, offset + done)
                          : urt_pread(cp->src, buf + done, len - done, offset + done);
        if (n < 0) {
            fail(cp, write ? cp->dst_path : cp->src_path, (int)n);
            return (int)n;
        }
        if (n == 0) {
            /* Reading: the file shrank under us.  Writing: cannot happen
             * for a regular file, but a loop on 0 would never end. */
            fail(cp, write ? cp->dst_path : cp->src_path, write ? -EIO : -ENODATA);
            return -EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

static intptr_t worker(void *arg)
{
    struct copy *cp = arg;
    /* 256 KiB is more than a task's default stack: the buffer goes on the
     * heap, and is freed on every way out, cancellation included. */
    char *buf = malloc(CHUNK);
    if (!buf) {
        fail(cp, "malloc", -ENOMEM);
        return -ENOMEM;
    }
    int rc = 0;
    /* Taking the next chunk needs no lock: tasks switch only inside urt
     * calls, never between this test and this increment. */
    while (!cp->error && cp->next < cp->size) {
        uint64_t offset = cp->next;
        size_t len = cp->size - offset < CHUNK ? (size_t)(cp->size - offset) : CHUNK;
        cp->next += len;
        rc = transfer_all(cp, 0, buf, len, offset);
        if (rc == 0)
            rc = transfer_all(cp, 1, buf, len, offset);
        if (rc < 0)
            break;
    }
    free(buf);
    return rc;
}

static intptr_t main_task(void *arg)
{
    struct copy *cp = arg;
    cp->src = urt_open(cp->src_path, O_RDONLY | O_CLOEXEC, 0);
    if (cp->src < 0) {
        fail(cp, cp->src_path, cp->src);
        return cp->src;
    }
    /* The size and mode of what we opened, not of whatever the path names
     * by now. */
    struct statx st;
    int rc = urt_statx(cp->src, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_INO,
                       &st);
    if (rc < 0) {
        fail(cp, cp->src_path, rc);
        goto close_src;
    }
    if (!S_ISREG(st.stx_mode)) {
        /* A pipe or a device has no size to split into chunks. */
        rc = fail_because(cp, cp->src_path, "not a regular file");
        goto close_src;
    }
    cp->size = st.stx_size;

    /* "cp a a" would truncate the source before reading it. */
    struct statx dst_st;
    if (urt_statx(AT_FDCWD, cp->dst_path, 0, STATX_INO, &dst_st) == 0 &&
        dst_st.stx_ino == st.stx_ino && dst_st.stx_dev_major == st.stx_dev_major &&
        dst_st.stx_dev_minor == st.stx_dev_minor) {
        rc = fail_because(cp, cp->dst_path, "is the same file as the source");
        goto close_src;
    }

    cp->dst = urt_open(cp->dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                       st.stx_mode & 07777);
    if (cp->dst < 0) {
        rc = cp->dst;
        fail(cp, cp->dst_path, rc);
        goto close_src;
    }

    urt_task tasks[WORKERS];
    int errors[WORKERS];
    unsigned started = 0;
    for (; started < WORKERS; started++) {
        rc = urt_task_create(&tasks[started], worker, cp);
        if (rc < 0) {
            fail(cp, "urt_task_create", rc);
            break;
        }
    }
    /* Wait for all of them, failed or not, so that no write is still in
     * flight when we close the fds; cp->error holds the first failure. */
    urt_gather(tasks, started, URT_RETURN_EXCEPTIONS, NULL, errors);

    /* close can report a write error the writes did not (NFS does). */
    rc = urt_close(cp->dst);
    if (rc < 0)
        fail(cp, cp->dst_path, rc);
close_src:
    urt_close(cp->src);
    return cp->error;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cp SOURCE DEST\n");
        return 2;
    }
    struct copy cp = {.src_path = argv[1], .dst_path = argv[2], .src = -1, .dst = -1};
    int rc = urt_run(main_task, &cp, NULL);
    if (rc < 0) {
        if (cp.failed_path)
            fprintf(stderr, "cp: %s: %s\n", cp.failed_path,
                    cp.why ? cp.why : urt_strerror(cp.error));
        else /* urt_run itself failed: no io_uring, no memory */
            fprintf(stderr, "cp: %s\n", urt_strerror(rc));
        return 1;
    }
    return 0;
}
