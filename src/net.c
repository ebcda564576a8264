/*
 * Sockets: each call one SQE through the I/O core (io.c).  SOCKET (5.19)
 * and SHUTDOWN (5.11) fall back to their system calls, which do not block;
 * SEND and RECV (5.6) to SENDMSG and RECVMSG when masked off for tests.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

/* ---- socket, shutdown ------------------------------------------------------- */

struct socket_args {
    int domain, type, protocol;
};

static void prep_socket(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct socket_args *a = io->u.args;
    io_uring_prep_socket(sqe, a->domain, a->type, a->protocol, 0);
}

int urt_socket(int domain, int type, int protocol)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    type |= SOCK_CLOEXEC; /* an exec'd child must not inherit connections */
    if (!urt__has_op(loop, IORING_OP_SOCKET)) {
        int fd = socket(domain, type, protocol);
        return fd >= 0 ? fd : -errno;
    }
    struct socket_args a = {domain, type, protocol};
    struct urt__io io = {.prep = prep_socket, .fd = -1, .u.args = &a};
    return urt__io(&io);
}

static void prep_shutdown(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    io_uring_prep_shutdown(sqe, io->fd, *(const int *)io->u.args);
}

int urt_shutdown(int fd, int how)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    if (!urt__has_op(loop, IORING_OP_SHUTDOWN)) return shutdown(fd, how) == 0 ? 0 : -errno;
    struct urt__io io = {.prep = prep_shutdown, .fd = fd, .u.args = &how};
    return urt__io(&io);
}

/* ---- connect (accept is in accept.c) ----------------------------------------- */

struct connect_args {
    const struct sockaddr *addr;
    socklen_t addrlen;
};

static void prep_connect(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct connect_args *a = io->u.args;
    io_uring_prep_connect(sqe, io->fd, a->addr, a->addrlen);
}

int urt_connect_timeout(int fd, const struct sockaddr *addr, socklen_t addrlen, uint64_t timeout_ns)
{
    if (fd < 0) return -EBADF;
    if (!addr) return -EFAULT;
    uint64_t deadline = urt__deadline_of(timeout_ns);
    struct connect_args a = {addr, addrlen};
    struct urt__io io = {.prep = prep_connect, .fd = fd, .deadline = deadline, .u.args = &a};
    int res = urt__io(&io);
    if (res != -EINPROGRESS && res != -EALREADY) return res;
    /* An O_NONBLOCK socket: the handshake goes on; its end is POLLOUT, and
     * its outcome is SO_ERROR. */
    res = urt_poll_timeout(fd, POLLOUT, urt__time_left(deadline));
    if (res < 0) return res;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
    return -err;
}

int urt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    return urt_connect_timeout(fd, addr, addrlen, URT_NO_TIMEOUT);
}

/* ---- send, recv, and their msg forms ------------------------------------------ */

struct msg_args {
    struct msghdr *msg;
    struct msghdr own; /* send/recv without their opcodes: one iovec */
    struct iovec iov;
    void *buf;
    unsigned len;
    int flags;
    bool send;
};

static void prep_msg(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct msg_args *a = io->u.args;
    unsigned flags = (unsigned)a->flags | (io->nowait ? MSG_DONTWAIT : 0);
    if (a->send)
        io_uring_prep_sendmsg(sqe, io->fd, a->msg, flags);
    else
        io_uring_prep_recvmsg(sqe, io->fd, a->msg, flags);
}

static void prep_buf(struct io_uring_sqe *sqe, const struct urt__io *io)
{
    const struct msg_args *a = io->u.args;
    int flags = a->flags | (io->nowait ? MSG_DONTWAIT : 0);
    if (a->send)
        io_uring_prep_send(sqe, io->fd, a->buf, a->len, flags);
    else
        io_uring_prep_recv(sqe, io->fd, a->buf, a->len, flags);
}

static ssize_t transfer(int fd, struct msg_args *a, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    if (fd < 0) return -EBADF;
    if (a->send) a->flags |= MSG_NOSIGNAL; /* -EPIPE, never a signal */
    /* -EAGAIN means "wait for readiness" only when the caller did not ask
     * not to wait. */
    short ready = a->flags & MSG_DONTWAIT ? 0 : a->send ? POLLOUT : POLLIN;
    struct urt__io io = {.prep = prep_msg, .fd = fd, .eagain_events = ready,
                         .deadline = urt__deadline_of(timeout_ns), .u.args = a};
    if (!a->msg) {
        if (!a->buf && a->len) return -EFAULT;
        if (urt__has_op(loop, a->send ? IORING_OP_SEND : IORING_OP_RECV)) {
            io.prep = prep_buf;
        } else {
            a->iov = (struct iovec){a->buf, a->len};
            a->own = (struct msghdr){.msg_iov = &a->iov, .msg_iovlen = 1};
            a->msg = &a->own;
        }
    }
    if (!a->send && unlikely(loop->streams)) {
        bool served;
        const struct iovec *iov = a->msg ? a->msg->msg_iov : &a->iov;
        int iovcnt = a->msg ? (int)a->msg->msg_iovlen : 1;
        if (!a->msg) a->iov = (struct iovec){a->buf, a->len};
        ssize_t res = urt__stream_read(loop, fd, iov, iovcnt, a->flags, io.deadline, &served);
        if (served) {
            if (a->msg && res >= 0) {
                /* A connected stream: no address, no control messages. */
                a->msg->msg_namelen = 0;
                a->msg->msg_controllen = 0;
                a->msg->msg_flags = 0;
            }
            return res;
        }
    }
    ssize_t res = urt__io(&io);
    if (res > 0 && !a->send) {
        if (!a->msg) {
            urt__mark_defined(a->buf, (size_t)res);
        } else {
            size_t left = (size_t)res;
            for (size_t i = 0; i < a->msg->msg_iovlen && left; i++) {
                size_t n = left < a->msg->msg_iov[i].iov_len ? left : a->msg->msg_iov[i].iov_len;
                urt__mark_defined(a->msg->msg_iov[i].iov_base, n);
                left -= n;
            }
        }
    }
    return res;
}

ssize_t urt_recv_timeout(int fd, void *buf, size_t len, int flags, uint64_t timeout_ns)
{
    struct msg_args a = {.buf = buf, .len = urt__clamp_len(len), .flags = flags};
    return transfer(fd, &a, timeout_ns);
}
ssize_t urt_recv(int fd, void *buf, size_t len, int flags)
{
    return urt_recv_timeout(fd, buf, len, flags, URT_NO_TIMEOUT);
}
ssize_t urt_send_timeout(int fd, const void *buf, size_t len, int flags, uint64_t timeout_ns)
{
    struct msg_args a = {.buf = (void *)buf, .len = urt__clamp_len(len), .flags = flags, .send = true};
    return transfer(fd, &a, timeout_ns);
}
ssize_t urt_send(int fd, const void *buf, size_t len, int flags)
{
    return urt_send_timeout(fd, buf, len, flags, URT_NO_TIMEOUT);
}
ssize_t urt_recvmsg_timeout(int fd, struct msghdr *msg, int flags, uint64_t timeout_ns)
{
    if (!msg) return -EFAULT;
    struct msg_args a = {.msg = msg, .flags = flags};
    return transfer(fd, &a, timeout_ns);
}
ssize_t urt_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return urt_recvmsg_timeout(fd, msg, flags, URT_NO_TIMEOUT);
}
ssize_t urt_sendmsg_timeout(int fd, const struct msghdr *msg, int flags, uint64_t timeout_ns)
{
    if (!msg) return -EFAULT;
    struct msg_args a = {.msg = (struct msghdr *)msg, .flags = flags, .send = true};
    return transfer(fd, &a, timeout_ns);
}
ssize_t urt_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return urt_sendmsg_timeout(fd, msg, flags, URT_NO_TIMEOUT);
}

/* ---- TCP helpers ---------------------------------------------------------------- */

/* The longest host name a "host:port" may carry: DNS names have at most
 * 253 characters. */
#define HOST_MAX 256

/* "a.b.c.d:port" or "[v6]:port" into *ss: 0.  With name not NULL, a host
 * that is no address ("localhost:port") is copied there, with the port in
 * *port, for the resolver: 1.  -EINVAL for anything else. */
static int parse_hostport(const char *hostport, struct sockaddr_storage *ss, socklen_t *len,
                          char *name, uint16_t *port)
{
    if (!hostport) return -EINVAL;
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || !colon[1]) return -EINVAL;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535) return -EINVAL;
    char host[HOST_MAX];
    size_t hlen = (size_t)(colon - hostport);
    const char *h = hostport;
    if (h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']') return -EINVAL;
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (hostport[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        *len = sizeof *in6;
        return 0;
    }
    /* A colon left in the host is a mistyped IPv6 address, not a name; so
     * is digits and dots ("1.2.3", "256.0.0.1"), which getaddrinfo would
     * take in inet_aton's old forms or send to DNS.  No top-level domain
     * is all digits (RFC 3696). */
    if (!name || hostport[0] == '[' || memchr(host, ':', hlen) ||
        strspn(host, "0123456789.") == hlen)
        return -EINVAL;
    memcpy(name, host, hlen + 1);
    *port = (uint16_t)p;
    return 1;
}

/* A TCP socket of the family hostport names: its fd, or the error. */
static int tcp_socket(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
    if (!urt__running()) return URT_ENOLOOP;
    int err = parse_hostport(hostport, ss, len, NULL, NULL);
    return err ? err : urt_socket(ss->ss_family, SOCK_STREAM, 0);
}

/*
 * Resolves name on the loop's threads and tries its addresses in the
 * order getaddrinfo gives them, as asyncio's open_connection does (without
 * its happy-eyeballs option): the first that connects wins.  All failing,
 * the last one's error is returned.  A cancellation or the deadline ends
 * the search.
 */
static int connect_by_name(struct urt_loop *loop, const char *name, uint16_t port,
                           uint64_t deadline)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    /* No AI_ADDRCONFIG, as asyncio: it hides "localhost" from a host
     * whose only interface is the loopback one. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list;
    int err = urt__getaddrinfo(loop, name, service, &hints, &list, deadline);
    if (err) return err;
    err = -ENOENT;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd = urt_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0) {
            err = urt_connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, urt__time_left(deadline));
            if (!err) err = fd;
            else urt_close(fd);
        } else {
            err = fd;
        }
        if (err >= 0 || err == URT_ECANCELED || err == URT_ETIMEDOUT) break;
    }
    freeaddrinfo(list);
    return err;
}

int urt_tcp_listen(const char *hostport, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = tcp_socket(hostport, &ss, &len);
    if (fd < 0) return fd;
    int one = 1;
    /* bind and listen have opcodes only from 6.11, and never wait. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
        int err = -errno;
        close(fd); /* nothing in flight on it yet */
        return err;
    }
    return fd;
}

int urt_tcp_connect_timeout(const char *hostport, uint64_t timeout_ns)
{
    struct urt_loop *loop = urt__running();
    if (!loop) return URT_ENOLOOP;
    struct sockaddr_storage ss;
    socklen_t len;
    char name[HOST_MAX];
    uint16_t port;
    int fd = parse_hostport(hostport, &ss, &len, name, &port);
    if (fd == 1) {
        fd = connect_by_name(loop, name, port, urt__deadline_of(timeout_ns));
    } else if (fd == 0 && (fd = urt_socket(ss.ss_family, SOCK_STREAM, 0)) >= 0) {
        int err = urt_connect_timeout(fd, (struct sockaddr *)&ss, len, timeout_ns);
        if (err) {
            urt_close(fd);
            fd = err;
        }
    }
    if (fd < 0) return fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int urt_tcp_connect(const char *hostport)
{
    return urt_tcp_connect_timeout(hostport, URT_NO_TIMEOUT);
}
