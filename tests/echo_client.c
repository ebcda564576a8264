/*
 * echo_client.c - load and correctness check for examples/echo_server.c (or
 * any echo server): many connections at once, each checking every byte it
 * gets back.
 *
 *   echo_client [-n CONNECTIONS] [-m MESSAGES] [-t SECONDS] HOST:PORT
 *
 * Defaults: 1000 connections, 20 messages each, 60 s.  Each connection is a
 * task: it connects, waits until every connection is open (so the server
 * really holds all of them at once), then sends its messages one by one and
 * reads each one back whole before the next.  Message sizes (1 byte to
 * 16 KiB) and contents come from a generator seeded with the connection's
 * number, so a run is the same every time and two connections never send
 * the same bytes: data crossed between connections is a mismatch too.
 *
 * Prints "echo_client: N connections, X bytes verified, E errors" and exits
 * 0 only if E is 0 and every connection did all its messages.  Everything
 * stops at the deadline (-t): a server that hangs is an error, not a hung
 * test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "urt.h"

#define MAX_MESSAGE (16 * 1024)
/* How many error lines are printed; the count covers all of them. */
#define MAX_REPORTED 10

struct run {
    const char *address;
    unsigned connections, messages;
    uint64_t deadline; /* urt_now() value at which everything gives up */
    unsigned connected, finished;
    unsigned long long verified;
    unsigned errors;
};

/* err 0: what says it all (a mismatch, not a failed call). */
static void error(struct run *run, unsigned conn, const char *what, long err)
{
    run->errors++;
    if (run->errors <= MAX_REPORTED)
        fprintf(stderr, "echo_client: connection %u: %s%s%s\n", conn, what, err ? ": " : "",
                err ? urt_strerror((int)err) : "");
    if (run->errors == MAX_REPORTED + 1)
        fprintf(stderr, "echo_client: (more errors not shown)\n");
}

/* splitmix64: a tiny generator whose whole state is one word, so each
 * connection carries its own stream. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sizes spread over every scale: the first message is 1 byte and the
 * second the largest, then a random power-of-two range, so small writes
 * (one segment) and large ones (many) both come often. */
static size_t message_size(uint64_t *state, unsigned i)
{
    if (i == 0)
        return 1;
    if (i == 1)
        return MAX_MESSAGE;
    uint64_t r = next_random(state);
    size_t range = (size_t)1 << (r % 15); /* 1 .. 16 KiB */
    return 1 + (size_t)((r >> 8) % range);
}

static uint64_t time_left(const struct run *run)
{
    uint64_t now = urt_now();
    return run->deadline > now ? run->deadline - now : 0;
}

struct client {
    struct run *run;
    unsigned id;
};

static intptr_t client(void *arg)
{
    struct client *c = arg;
    struct run *run = c->run;
    /* Buffers on the task's stack: 32 KiB of its 128. */
    unsigned char out[MAX_MESSAGE], in[MAX_MESSAGE];
    uint64_t state = 0x243f6a8885a308d3ull * (c->id + 1);
    int ok = 1;

    int fd = urt_tcp_connect_timeout(run->address, time_left(run));
    if (fd < 0) {
        error(run, c->id, "connect", fd);
        run->finished++;
        return fd;
    }
    run->connected++;
    /* The barrier: nobody sends until every connection is open (or has
     * failed), so the server holds them all at the same time. */
    while (run->connected + run->errors < run->connections) {
        if (time_left(run) == 0) {
            error(run, c->id, "waiting for the other connections", URT_ETIMEDOUT);
            ok = 0;
            break;
        }
        urt_sleep_ms(5);
    }

    for (unsigned i = 0; ok && i < run->messages; i++) {
        size_t len = message_size(&state, i);
        for (size_t k = 0; k < len; k += 8) {
            uint64_t r = next_random(&state);
            memcpy(out + k, &r, len - k < 8 ? len - k : 8);
        }
        ssize_t n = urt_send_all_timeout(fd, out, len, NULL, time_left(run));
        if (n < 0) {
            error(run, c->id, "send", n);
            ok = 0;
            break;
        }
        /* Zeroed first: a short read reported as complete would show. */
        memset(in, 0, len);
        n = urt_read_exactly_timeout(fd, in, len, NULL, time_left(run));
        if (n < 0) {
            error(run, c->id, "receive", n);
            ok = 0;
            break;
        }
        if (memcmp(in, out, len) != 0) {
            error(run, c->id, "echo differs from what was sent", 0);
            ok = 0;
            break;
        }
        run->verified += len;
    }
    /* Our end of file must come back as the server's: a server that sent
     * more than it got (a duplicated piece) is caught here, and so is one
     * that does not close when its peer does. */
    if (ok) {
        ssize_t n = urt_shutdown(fd, SHUT_WR);
        if (n == 0)
            n = urt_recv_timeout(fd, in, sizeof in, 0, time_left(run));
        if (n > 0)
            error(run, c->id, "bytes came after the last echo", 0);
        else if (n < 0)
            error(run, c->id, "waiting for the server to close", n);
    }
    urt_close(fd);
    run->finished++;
    return 0;
}

static intptr_t main_task(void *arg)
{
    struct run *run = arg;
    struct client *clients = calloc(run->connections, sizeof *clients);
    urt_task *tasks = calloc(run->connections, sizeof *tasks);
    int *errs = calloc(run->connections, sizeof *errs);
    if (!clients || !tasks || !errs) {
        free(clients);
        free(tasks);
        free(errs);
        return -ENOMEM;
    }
    unsigned started = 0;
    for (; started < run->connections; started++) {
        clients[started] = (struct client){run, started};
        int rc = urt_task_create(&tasks[started], client, &clients[started]);
        if (rc < 0) {
            error(run, started, "urt_task_create", rc);
            /* The barrier counts errors as arrivals: the ones never
             * started must count too, or the others would wait for them. */
            run->errors += run->connections - started - 1;
            break;
        }
    }
    /* return_exceptions: wait for every connection; failures were counted
     * by the tasks themselves. */
    int rc = urt_gather(tasks, started, URT_RETURN_EXCEPTIONS, NULL, errs);
    free(clients);
    free(tasks);
    free(errs);
    return rc;
}

/* Each connection is an fd in this process: the usual soft limit of 1024
 * is too few for 1000 connections plus the ring and stdio. */
static int raise_fd_limit(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    return rl.rlim_cur >= need ? 0 : -EMFILE;
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_client [-n CONNECTIONS] [-m MESSAGES] [-t SECONDS] HOST:PORT\n");
    exit(2);
}

static unsigned number(const char *s, unsigned max)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > max)
        usage();
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    struct run run = {.connections = 1000, .messages = 20};
    unsigned seconds = 60;
    int opt;
    while ((opt = getopt(argc, argv, "n:m:t:")) != -1) {
        switch (opt) {
        case 'n': run.connections = number(optarg, 1000000); break;
        case 'm': run.messages = number(optarg, 1000000); break;
        case 't': seconds = number(optarg, 86400); break;
        default: usage();
        }
    }
    if (optind != argc - 1)
        usage();
    run.address = argv[optind];

    int rc = raise_fd_limit(run.connections + 32);
    if (rc < 0) {
        fprintf(stderr, "echo_client: %u connections need more fds than RLIMIT_NOFILE allows\n",
                run.connections);
        return 1;
    }
    run.deadline = urt_now() + seconds * URT_NS_PER_S;
    rc = urt_run(main_task, &run, NULL);
    if (rc < 0) {
        fprintf(stderr, "echo_client: %s\n", urt_strerror(rc));
        run.errors++;
    }
    printf("echo_client: %u connections, %llu bytes verified, %u errors\n", run.connections,
           run.verified, run.errors);
    return run.errors == 0 && run.finished == run.connections ? 0 : 1;
}
