/*
 * Shared by the socket tests (test_net.c, test_readahead.c): addresses and
 * TCP pairs over 127.0.0.1 made with urt's own calls.  Like harness.h,
 * every check made here inside a task records a failure (EXPECT) instead
 * of calling cmocka's asserts.
 */
#ifndef URT_TEST_SOCKETS_H
#define URT_TEST_SOCKETS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"

/* ---- sockets --------------------------------------------------------------- */

static inline void set_int_opt(int fd, int level, int opt, int v)
{
    EXPECT_EQ(setsockopt(fd, level, opt, &v, sizeof v), 0);
}

/* The socket's local address; zeroed first, so that a failed getsockname
 * (a recorded failure) leaves no stack garbage to compare. */
static inline void local_addr(int fd, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof *ss;
    memset(ss, 0, sizeof *ss);
    EXPECT_EQ(getsockname(fd, (struct sockaddr *)ss, &len), 0);
}

/* The port of an AF_INET or AF_INET6 address, in host order. */
static inline unsigned port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* "127.0.0.1:port" or "[::1]:port" of the socket's local address: what
 * urt_tcp_connect takes to reach a listener bound to port 0. */
static inline void local_hostport(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    local_addr(fd, &ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
        snprintf(out, n, "[%s]:%u", ip, port_of(&ss));
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
        snprintf(out, n, "%s:%u", ip, port_of(&ss));
    }
}

/* A connected TCP pair over 127.0.0.1 made with urt's own calls: *c the
 * connecting end, *s the accepted one; the listener is closed before it
 * returns.  rcvbuf > 0 sets SO_RCVBUF on the listener first, so that the
 * accepted end inherits it before the window is negotiated.  On failure
 * (recorded) it returns false with nothing left open. */
static inline bool tcp_pair_buf(int *c, int *s, int rcvbuf)
{
    *c = *s = -1;
    int lfd = urt_tcp_listen("127.0.0.1:0", 1);
    EXPECT(lfd >= 0);
    if (lfd < 0) return false;
    if (rcvbuf > 0) set_int_opt(lfd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
    char hp[64];
    local_hostport(lfd, hp, sizeof hp);
    *c = urt_tcp_connect(hp);
    EXPECT(*c >= 0);
    if (*c >= 0) {
        *s = urt_accept(lfd, NULL, NULL, 0);
        EXPECT(*s >= 0);
    }
    EXPECT_EQ(urt_close(lfd), 0);
    if (*c >= 0 && *s >= 0) return true;
    if (*c >= 0) urt_close(*c);
    return false;
}

/* tcp_pair_buf with the kernel's default receive buffer. */
static inline bool tcp_pair(int *c, int *s)
{
    return tcp_pair_buf(c, s, 0);
}

/* Resets the connection: SO_LINGER {1, 0} and urt_close send an RST
 * instead of a FIN, so the peer sees -ECONNRESET, not end of file. */
static inline void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    EXPECT_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    EXPECT_EQ(urt_close(fd), 0);
}

#endif
