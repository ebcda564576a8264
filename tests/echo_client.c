/*
 * echo_client.c - load and correctness check for examples/echo_server.c (or
 * any echo server): many connections at once, each checking every byte it
 * gets back.
 *
 *   echo_client [-n CONNECTIONS] [-m MESSAGES | -d SECONDS] [-t SECONDS] HOST:PORT
 *
 * Defaults: 1000 connections, 20 messages each, 60 s.  Each connection is a
 * task: it connects, waits until every connection is open (so the server
 * really holds all of them at once), then sends its messages one by one and
 * reads each one back whole before the next.  With -d (the soak of
 * tests/stress/) each connection instead goes on sending and checking
 * messages for that many seconds, counted from the moment the last one
 * connected, and -t defaults to 60 s more than -d.  Message sizes (1 byte to
 * 16 KiB) and contents come from a generator seeded with the connection's
 * number, so a run is the same every time and two connections never send
 * the same bytes: data crossed between connections is a mismatch too.
 *
 * Prints "echo_client: N connections, X bytes verified, E errors" and exits
 * 0 only if E is 0 and every connection did all its messages.  -d adds a
 * second line, "echo_client: H connections held at once for S s, M
 * messages, at least K per connection": H were open together when the
 * sending began, and S s passed before the first of them closed.
 * Everything stops at the deadline (-t): a server that hangs is an error,
 * not a hung test.
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
    uint64_t duration; /* -d in ns; 0: -m messages per connection */
    uint64_t deadline; /* urt_now() value at which everything gives up */
    uint64_t start, end; /* of the sending, in -d mode */
    uint64_t first_close; /* when the first connection closed, after start */
    unsigned connected, finished;
    unsigned open, held; /* open now; open when the barrier let them go */
    unsigned long long verified, exchanged;
    unsigned long long fewest; /* messages of the least busy connection */
    unsigned errors;
    /* Set when every connection has arrived at the barrier.  An event, not
     * a poll: ten thousand tasks each waking every few milliseconds would
     * cost the connecting phase more than the connections do. */
    urt_event all_in;
};

/* Errors count as arrivals at the barrier (a connection that failed will
 * never connect), so both paths check whether it may open. */
static void check_barrier(struct run *run)
{
    if (run->connected + run->errors >= run->connections && !urt_event_is_set(&run->all_in))
        urt_event_set(&run->all_in);
}

/* err 0: what says it all (a mismatch, not a failed call). */
static void error(struct run *run, unsigned conn, const char *what, long err)
{
    run->errors++;
    check_barrier(run);
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
static size_t message_size(uint64_t *state, unsigned long long i)
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
    run->open++;
    check_barrier(run);
    /* The barrier: nobody sends until every connection is open (or has
     * failed), so the server holds them all at the same time. */
    int rc = urt_event_wait_timeout(&run->all_in, time_left(run));
    if (rc < 0) {
        error(run, c->id, "waiting for the other connections", rc);
        ok = 0;
    }
    /* The first one through starts the clock, so that -d is the time all
     * of them were held, not counting the time it took to connect them. */
    if (ok && run->duration && !run->end) {
        run->held = run->open;
        run->start = urt_now();
        run->end = run->start + run->duration;
    }

    unsigned long long i = 0;
    for (; ok && (run->duration ? urt_now() < run->end : i < run->messages); i++) {
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
    if (ok) {
        run->exchanged += i;
        if (i < run->fewest)
            run->fewest = i;
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
    if (run->start && !run->first_close)
        run->first_close = urt_now();
    urt_close(fd);
    run->open--;
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
            check_barrier(run);
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
    fprintf(stderr, "usage: echo_client [-n CONNECTIONS] [-m MESSAGES | -d SECONDS] [-t SECONDS] "
                    "HOST:PORT\n");
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
    struct run run = {.connections = 1000, .messages = 20, .fewest = ~0ull};
    unsigned seconds = 0, duration = 0;
    int opt, messages_given = 0;
    while ((opt = getopt(argc, argv, "n:m:d:t:")) != -1) {
        switch (opt) {
        case 'n': run.connections = number(optarg, 1000000); break;
        case 'm': run.messages = number(optarg, 1000000); messages_given = 1; break;
        case 'd': duration = number(optarg, 86400); break;
        case 't': seconds = number(optarg, 86400); break;
        default: usage();
        }
    }
    if (optind != argc - 1 || (duration && messages_given))
        usage();
    if (!seconds)
        seconds = duration ? duration + 60 : 60;
    run.duration = duration * URT_NS_PER_S;
    urt_event_init(&run.all_in);
    run.address = argv[optind];

    int rc = raise_fd_limit(run.connections + 32);
    if (rc < 0) {
        fprintf(stderr, "echo_client: %u connections need more fds than RLIMIT_NOFILE allows\n",
                run.connections);
        return 1;
    }
    run.deadline = urt_now() + (uint64_t)seconds * URT_NS_PER_S;
    rc = urt_run(main_task, &run, NULL);
    if (rc < 0) {
        fprintf(stderr, "echo_client: %s\n", urt_strerror(rc));
        run.errors++;
    }
    printf("echo_client: %u connections, %llu bytes verified, %u errors\n", run.connections,
           run.verified, run.errors);
    if (duration)
        printf("echo_client: %u connections held at once for %.1f s, %llu messages, "
               "at least %llu per connection\n",
               run.held, run.first_close ? (double)(run.first_close - run.start) / 1e9 : 0.0,
               run.exchanged, run.fewest == ~0ull ? 0 : run.fewest);
    return run.errors == 0 && run.finished == run.connections ? 0 : 1;
}
