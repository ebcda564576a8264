/*
 * What the running kernel's io_uring can do, and what urt lets itself use.
 *
 * Everything is probed when a loop starts.  Tests can make urt behave as it
 * would on an older kernel, so that every fallback runs on this one:
 *
 *   URT_KERNEL=5.6          use only what Linux 5.6 had (also 5.10, 5.19, ...)
 *   URT_FEATURES_OFF=a,b    turn off single features (names below)
 *   URT_TEST_NOWAIT=1       first tries that would wait get -EAGAIN instead,
 *                           as an O_NONBLOCK fd gets them (internal.h)
 *
 * Masking never makes the kernel do less; it makes urt take the path it
 * would take where the kernel lacks a feature.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The release that brought each opcode urt uses (io_uring_enter(2)). */
static const struct {
    unsigned char opcode;
    unsigned short version; /* major * 100 + minor */
} opcode_versions[] = {
    {IORING_OP_READV, 501},        {IORING_OP_WRITEV, 501},
    {IORING_OP_FSYNC, 501},        {IORING_OP_POLL_ADD, 501},
    {IORING_OP_SENDMSG, 503},      {IORING_OP_RECVMSG, 503},
    {IORING_OP_TIMEOUT, 504},      {IORING_OP_TIMEOUT_REMOVE, 505},
    {IORING_OP_ACCEPT, 505},       {IORING_OP_ASYNC_CANCEL, 505},
    {IORING_OP_LINK_TIMEOUT, 505}, {IORING_OP_CONNECT, 505},
    {IORING_OP_OPENAT, 506},       {IORING_OP_CLOSE, 506},
    {IORING_OP_STATX, 506},        {IORING_OP_READ, 506},
    {IORING_OP_WRITE, 506},        {IORING_OP_SEND, 506},
    {IORING_OP_RECV, 506},         {IORING_OP_SHUTDOWN, 511},
    {IORING_OP_RENAMEAT, 511},     {IORING_OP_UNLINKAT, 511},
    {IORING_OP_MKDIRAT, 515},      {IORING_OP_SOCKET, 519},
};

/* Features that are not opcodes, with their release and URT_FEATURES_OFF
 * name. */
static const struct {
    unsigned bit;
    unsigned short version;
    const char *name;
} feature_versions[] = {
    {URT__F_COOP_TASKRUN, 519, "coop_taskrun"},
    {URT__F_SINGLE_ISSUER, 600, "single_issuer"},
    {URT__F_DEFER_TASKRUN, 601, "defer_taskrun"},
    {URT__F_REGISTERED_RING, 518, "registered_ring"},
    {URT__F_CANCEL_FD, 519, "cancel_fd"},
    {URT__F_GUARD_INSTALL, 613, "guard_install"},
    {URT__F_GUARD_BATCH, 614, "guard_batch"},
    {URT__F_EXT_ARG, 511, "ext_arg"},
    {URT__F_FAST_POLL, 507, "fast_poll"},
    {URT__F_ACCEPT_MULTISHOT, 519, "accept_multishot"},
    {URT__F_RECV_MULTISHOT, 600, "recv_multishot"},
};

/* The opcodes with a fallback, named as URT_FEATURES_OFF names them. */
static const struct {
    unsigned char op;
    const char *name;
    const char *fallback;
} fallbacks[] = {
    {IORING_OP_READ, "op_read", "readv"},       {IORING_OP_WRITE, "op_write", "writev"},
    {IORING_OP_SEND, "op_send", "sendmsg"},     {IORING_OP_RECV, "op_recv", "recvmsg"},
    {IORING_OP_OPENAT, "op_openat", "openat(2)"}, {IORING_OP_CLOSE, "op_close", "close(2)"},
    {IORING_OP_STATX, "op_statx", "statx(2)"},  {IORING_OP_SHUTDOWN, "op_shutdown", "shutdown(2)"},
    {IORING_OP_RENAMEAT, "op_renameat", "renameat2(2)"},
    {IORING_OP_UNLINKAT, "op_unlinkat", "unlinkat(2)"},
    {IORING_OP_MKDIRAT, "op_mkdirat", "mkdirat(2)"},
    {IORING_OP_SOCKET, "op_socket", "socket(2)"},
};

static bool listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) return true;
    return false;
}

/* URT_KERNEL as major*100+minor; 0 when unset or unreadable. */
static unsigned masked_version(void)
{
    const char *v = getenv("URT_KERNEL");
    if (!v) return 0;
    char *end;
    unsigned long major = strtoul(v, &end, 10);
    unsigned long minor = *end == '.' ? strtoul(end + 1, NULL, 10) : 0;
    return major && major < 100 && minor < 100 ? (unsigned)(major * 100 + minor) : 0;
}

void urt__features_allowed(struct urt__features *f)
{
    memset(f, 0, sizeof *f);
    unsigned version = masked_version();
    const char *off = getenv("URT_FEATURES_OFF");
    for (size_t i = 0; i < sizeof feature_versions / sizeof feature_versions[0]; i++) {
        if (version && version < feature_versions[i].version) continue;
        if (off && listed(off, feature_versions[i].name)) continue;
        f->flags |= feature_versions[i].bit;
    }
    f->version_mask = version;
    const char *nowait = getenv("URT_TEST_NOWAIT");
    f->test_nowait = nowait && *nowait && strcmp(nowait, "0") != 0;
}

void urt__features_probe(struct urt__features *f, struct io_uring *ring)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    const char *off = getenv("URT_FEATURES_OFF");
    for (size_t i = 0; i < sizeof opcode_versions / sizeof opcode_versions[0]; i++) {
        unsigned op = opcode_versions[i].opcode;
        bool have = probe ? io_uring_opcode_supported(probe, (int)op) : false;
        if (f->version_mask && f->version_mask < opcode_versions[i].version) have = false;
        if (have) f->ops[op / 64] |= 1ull << (op % 64);
    }
    /* Features that are flags of older opcodes cannot be probed: an opcode
     * of the same release stands witness for the real kernel. */
    if (!probe || !io_uring_opcode_supported(probe, IORING_OP_SOCKET))
        f->flags &= ~(URT__F_CANCEL_FD | URT__F_ACCEPT_MULTISHOT); /* 5.19 */
    if (!probe || !io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
        f->flags &= ~URT__F_RECV_MULTISHOT; /* 6.0 */
    if (probe) io_uring_free_probe(probe);
    /* Opcodes by name, for tests that take away one fallback at a time. */
    if (off) {
        for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++)
            if (listed(off, fallbacks[i].name))
                f->ops[fallbacks[i].op / 64] &= ~(1ull << (fallbacks[i].op % 64));
    }
}

static size_t put(char *buf, size_t size, size_t at, const char *s)
{
    for (; *s; s++, at++)
        if (at + 1 < size) buf[at] = *s;
    if (size) buf[at < size ? at : size - 1] = '\0';
    return at;
}

int urt_features(char *buf, size_t size)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (!buf && size) return -EFAULT;
    const struct urt__features *f = &loop->features;
    size_t at = put(buf, size, 0, "");
    for (size_t i = 0; i < sizeof feature_versions / sizeof feature_versions[0]; i++) {
        if (!(f->flags & feature_versions[i].bit)) continue;
        at = put(buf, size, at, at ? " " : "");
        at = put(buf, size, at, feature_versions[i].name);
    }
    for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++) {
        if (urt__has_op(loop, fallbacks[i].op)) continue;
        at = put(buf, size, at, at ? " " : "");
        at = put(buf, size, at, fallbacks[i].name);
        at = put(buf, size, at, "->");
        at = put(buf, size, at, fallbacks[i].fallback);
    }
    return at > INT_MAX ? INT_MAX : (int)at;
}
