/*
 * What the running kernel's io_uring can do, and what urt lets itself use.
 *
 * Everything is probed when a loop starts.  Tests can make urt behave as it
 * would on an older kernel, so that every fallback runs on this one:
 *
 *   URT_KERNEL=5.6          use only what Linux 5.6 had (also 5.10, 5.19, ...)
 *   URT_FEATURES_OFF=a,b    turn off single features (names below)
 *
 * Masking never makes the kernel do less; it makes urt take the path it
 * would take where the kernel lacks a feature.
 */
#define _GNU_SOURCE
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
    {URT__F_MULTISHOT_ACCEPT, 519, "multishot_accept"},
    {URT__F_CANCEL_FD, 519, "cancel_fd"},
    {URT__F_GUARD_INSTALL, 613, "guard_install"},
    {URT__F_FAST_POLL, 507, "fast_poll"},
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
    if (probe) io_uring_free_probe(probe);
    /* Opcodes by name, for tests that take away one fallback at a time. */
    if (off) {
        static const struct { unsigned char op; const char *name; } names[] = {
            {IORING_OP_SOCKET, "op_socket"},     {IORING_OP_SHUTDOWN, "op_shutdown"},
            {IORING_OP_RENAMEAT, "op_renameat"}, {IORING_OP_UNLINKAT, "op_unlinkat"},
            {IORING_OP_MKDIRAT, "op_mkdirat"},   {IORING_OP_STATX, "op_statx"},
            {IORING_OP_OPENAT, "op_openat"},     {IORING_OP_CLOSE, "op_close"},
            {IORING_OP_READ, "op_read"},         {IORING_OP_WRITE, "op_write"},
            {IORING_OP_SEND, "op_send"},         {IORING_OP_RECV, "op_recv"},
        };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (listed(off, names[i].name)) f->ops[names[i].op / 64] &= ~(1ull << (names[i].op % 64));
    }
}

const char *urt__feature_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof feature_versions / sizeof feature_versions[0]; i++)
        if (feature_versions[i].bit == bit) return feature_versions[i].name;
    return "?";
}
