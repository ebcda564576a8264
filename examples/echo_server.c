/*
 * echo_server.c - a TCP echo server: one task per connection, each written
 * as plain blocking code (receive, send it back, repeat).
 *
 *   echo_server [HOST:PORT]      default 127.0.0.1:7007; "[::1]:7007" for IPv6
 *
 * With port 0 the kernel picks one.  The first line on stdout is always
 * "listening on HOST:PORT" with the real port, so a script can start the
 * server on port 0 and read where to connect.
 *
 * SIGINT or SIGTERM stops it cleanly: no new connections are taken, every
 * open one is closed, and the process exits 0.  The signals arrive through a
 * signalfd that a task reads like any other fd, so shutdown is ordinary task
 * code, not a signal handler.
 *
 * Try it:   build/examples/echo_server &   then   nc 127.0.0.1 7007
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "urt.h"

/* Set once an error has been printed, so that main does not print it again. */
static int reported;

static int report(const char *what, int err)
{
    fprintf(stderr, "echo_server: %s: %s\n", what, urt_strerror(err));
    reported = 1;
    return err;
}

/*
 * Every open connection is in this list, so that shutdown can close them.
 * Ownership rule: whoever takes a connection out of the list closes its fd.
 * Normally that is the connection's own task when the peer goes; at
 * shutdown it is main, and the task, whose receive then fails with -EBADF,
 * finds itself out of the list and leaves the fd alone (by then the number
 * may already name another file).
 *
 * Tasks never run at the same time, so the list needs no lock: it only has
 * to be consistent at each suspension point.
 */
struct conn {
    int fd;
    struct conn *prev, *next;
    int listed;
};

static struct conn *conns;
static unsigned nconns;

static void conn_link(struct conn *c)
{
    c->prev = NULL;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    c->listed = 1;
    nconns++;
}

static void conn_unlink(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->listed = 0;
    nconns--;
}

/* One connection.  The node lives on the task's own stack: it exists
 * exactly as long as the task does, and needs no allocation. */
static intptr_t serve(void *arg)
{
    struct conn self = {.fd = (int)(intptr_t)arg};
    conn_link(&self);

    /* 16 KiB is a few loopback segments; the task's stack (128 KiB by
     * default) has room, and only the pages it touches cost memory. */
    char buf[16 * 1024];
    /* Keep one multishot recv on the socket instead of one SQE per
     * message.  Only urt reads this fd, which read-ahead requires; on a
     * kernel without it this does nothing and reads work the same. */
    urt_readahead(self.fd, 1);
    for (;;) {
        ssize_t n = urt_recv(self.fd, buf, sizeof buf, 0);
        /* 0: the peer closed.  <0: it reset, or shutdown closed us
         * (-EBADF), or the task was cancelled: in every case we are done. */
        if (n <= 0)
            break;
        /* A send may take only part of the buffer when the peer reads
         * slowly; urt_send_all loops until all of it is gone. */
        if (urt_send_all(self.fd, buf, (size_t)n, NULL) < 0)
            break;
    }

    if (self.listed) {
        conn_unlink(&self);
        urt_close(self.fd);
    }
    return 0;
}

/* Takes connections until it is cancelled (that is how shutdown stops it)
 * or accept fails for good. */
static intptr_t accept_loop(void *arg)
{
    int listener = (int)(intptr_t)arg;
    intptr_t result = 0;
    for (;;) {
        int fd = urt_accept(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            /* Detached (NULL handle): nobody awaits a connection; its end
             * is its own business, and the list is how we reach it. */
            int rc = urt_task_create(NULL, serve, (void *)(intptr_t)fd);
            if (rc < 0) {
                /* Out of memory: drop this client, keep serving the others. */
                fprintf(stderr, "echo_server: no task for a connection: %s\n",
                        urt_strerror(rc));
                urt_close(fd);
            }
            continue;
        }
        if (fd == URT_ECANCELED)
            break;
        /* The peer gave up between its SYN and our accept: not our error. */
        if (fd == -ECONNABORTED || fd == -EINTR || fd == -EPROTO)
            continue;
        /* Out of fds or memory: the connection waits in the backlog; wait a
         * moment instead of spinning, connections that end will free some. */
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            if (urt_sleep_ms(100) == URT_ECANCELED)
                break;
            continue;
        }
        result = report("accept", fd);
        break;
    }
    return result;
}

/* Reads the signalfd: a signal is one siginfo record.  Ends by cancelling
 * the acceptor, which is what main waits for. */
struct watch {
    int sigfd;
    urt_task acceptor;
};

static intptr_t wait_for_signal(void *arg)
{
    struct watch *w = arg;
    struct signalfd_siginfo si;
    ssize_t n = urt_read(w->sigfd, &si, sizeof si);
    if (n == URT_ECANCELED)
        return 0; /* the acceptor failed first; main is shutting down */
    intptr_t result = 0;
    if (n == (ssize_t)sizeof si)
        fprintf(stderr, "echo_server: %s, closing %u connection%s\n",
                si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", nconns, nconns == 1 ? "" : "s");
    else
        result = report("reading the signalfd", n < 0 ? (int)n : -EIO);
    /* Stop either way: without the signalfd nothing could stop us cleanly
     * later. */
    urt_task_cancel(w->acceptor);
    return result;
}

/* Prints where we listen; with port 0 only getsockname knows the port. */
static int print_address(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        printf("listening on [%s]:%u\n", host, ntohs(in6->sin6_port));
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        printf("listening on %s:%u\n", host, ntohs(in4->sin_port));
    }
    /* stdout is a pipe or a file when a script reads it: without the flush
     * the line would sit in our buffer until exit. */
    fflush(stdout);
    return 0;
}

struct config {
    const char *address;
    int sigfd;
};

static intptr_t main_task(void *arg)
{
    struct config *cfg = arg;
    int listener = urt_tcp_listen(cfg->address, 0);
    if (listener < 0)
        return report(cfg->address, listener);
    int rc = print_address(listener);
    if (rc < 0) {
        urt_close(listener);
        return report("getsockname", rc);
    }

    /* main waits for the acceptor: it ends when a signal cancels it, or on
     * its own if accept fails for good; either way the server stops. */
    struct watch watch = {.sigfd = cfg->sigfd};
    urt_task watcher = URT_TASK_NONE;
    intptr_t result = 0;
    rc = urt_task_create(&watch.acceptor, accept_loop, (void *)(intptr_t)listener);
    if (rc < 0) {
        urt_close(listener);
        return report("urt_task_create", rc);
    }
    rc = urt_task_create(&watcher, wait_for_signal, &watch);
    if (rc < 0) {
        /* Without a watcher nothing would ever stop the acceptor. */
        result = report("urt_task_create", rc);
        urt_task_cancel(watch.acceptor);
    }
    intptr_t accepted = 0;
    rc = urt_task_await(watch.acceptor, &accepted);
    /* URT_ECANCELED: stopped before it could even handle it; that is what
     * was asked for, not a failure. */
    if (result == 0 && rc != URT_ECANCELED)
        result = rc < 0 ? rc : accepted;
    /* We opened it, we close it: the acceptor may never have run. */
    urt_close(listener);

    /* The watcher reads &watch, which is on our stack: it must be gone
     * before we return.  Cancelling a finished task does nothing. */
    if (!urt_task_equal(watcher, URT_TASK_NONE)) {
        intptr_t watched = 0;
        urt_task_cancel(watcher);
        if (urt_task_await(watcher, &watched) == 0 && URT_IS_ERROR(watched) && result == 0)
            result = watched;
    }

    /* No connection can be added now: the acceptor has ended, and each task
     * it created has already run far enough to list itself, since tasks
     * start in creation order and all of them were created before the
     * acceptor ended and woke us.  Closing an fd makes urt cancel the
     * receive or send waiting on it, so each task wakes with -EBADF and
     * ends.  urt_close suspends, and meanwhile connections may end by
     * themselves and leave the list: hence always the head, never a saved
     * next pointer. */
    while (conns) {
        int fd = conns->fd;
        conn_unlink(conns);
        urt_close(fd);
    }
    return result;
}

/* Each connection is an fd: the usual soft limit of 1024 would cap the
 * server near a thousand clients, and raising it up to the hard limit needs
 * no privilege. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: echo_server [HOST:PORT]   (default 127.0.0.1:7007)\n");
        return 2;
    }
    struct config cfg = {.address = argc == 2 ? argv[1] : "127.0.0.1:7007"};

    /* Blocked before the loop starts, so that a signal arriving at any
     * moment from here on waits in the signalfd instead of killing us. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        perror("echo_server: sigprocmask");
        return 1;
    }
    cfg.sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (cfg.sigfd < 0) {
        perror("echo_server: signalfd");
        return 1;
    }
    raise_fd_limit();

    int rc = urt_run(main_task, &cfg, NULL);
    close(cfg.sigfd);
    if (rc < 0) {
        if (!reported) /* urt_run itself failed: no io_uring, no memory */
            report("urt_run", rc);
        return 1;
    }
    return 0;
}
