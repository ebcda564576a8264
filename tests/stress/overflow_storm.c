/*
 * overflow_storm.c - a storm of busy tasks in which one, chosen by a seed,
 * recurses until it runs off its stack: the process must die by SIGSEGV
 * with urt's message naming exactly that task and its stack size, and
 * nothing else may go wrong first.
 *
 *   overflow_storm [-r RUNS] [-s FIRST_SEED] [-n TASKS]   default 100, 1, 1000
 *   overflow_storm -1 SEED [-n TASKS]                     one storm, here
 *
 * A storm: TASKS tasks named "worker-N", with stacks of every size class a
 * program asks for (URT_STACK_MIN, sizes between powers of two that urt
 * rounds up, the default, 1 MiB), each sleeping or yielding at random and
 * checking after every wait that a canary on its own stack is intact.  Once
 * every task has been through a few waits, the victim dives: a recursion
 * of 512-byte frames (well under the guard zone, so it cannot jump over it
 * into the stack below) that yields every few frames (5 to 44, by the
 * seed), so that the others run while its stack is deep, until it touches
 * its guard.  The guard is then reached at every distance from a yield:
 * now and then (1 seed in 40 or so) by urt's own frames, the yield's
 * switch away, rather than the task's.
 *
 * The driver runs one storm per seed, each in a child process (a fork:
 * nothing of urt runs in the parent), and checks that the child was killed
 * by SIGSEGV, that its stderr is exactly
 *
 *   urt: task "worker-N" overflowed its stack (S bytes)
 *
 * for the victim the seed chose and the size urt gave it, and that its
 * stdout says the victim began its dive after every task had run.  The
 * last line is "figure: overflow storm: R runs of N tasks, each killed by
 * SIGSEGV naming its task and stack size (...)" when every run passed; the
 * status is 1 if any failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "urt.h"

/* A child that has not died within this many seconds is killed (SIGALRM)
 * and counts as a failure: a storm takes well under one. */
#define RUN_LIMIT_S 60

#define CANARY_WORDS 8

/* The stack sizes asked for; 0 is the default. */
static const size_t sizes[] = {URT_STACK_MIN, 20000, 65536, 100000, 0, 1u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* What urt.h says the task gets: a power of two from URT_STACK_MIN, the
 * default for 0. */
static size_t granted(size_t asked)
{
    if (asked == 0)
        asked = URT_STACK_DEFAULT;
    size_t size = URT_STACK_MIN;
    while (size < asked)
        size <<= 1;
    return size;
}

/* Everything a seed decides, computed the same way by driver and child. */
struct plan {
    unsigned tasks, victim;
    unsigned rounds; /* the victim's own waits before it dives */
    unsigned yield_every; /* frames of its dive between two yields */
    uint64_t seed;
};

static struct plan make_plan(uint64_t seed, unsigned tasks)
{
    uint64_t state = seed;
    struct plan p = {.tasks = tasks, .seed = seed};
    p.victim = (unsigned)(next_random(&state) % tasks);
    p.rounds = 3 + (unsigned)(next_random(&state) % 30);
    p.yield_every = 5 + (unsigned)(next_random(&state) % 40);
    return p;
}

static size_t asked_size(const struct plan *p, unsigned i)
{
    return sizes[(i + p->seed) % NSIZES];
}

/* ---- one storm, in this process ------------------------------------- */

struct storm {
    struct plan plan;
    unsigned started; /* tasks past their first wait */
};

struct worker {
    struct storm *storm;
    unsigned id;
};

static volatile unsigned long never = ~0ul; /* the recursion's unreachable end */

/* prev is the caller's frame: taking it keeps every frame alive across the
 * call, so the compiler can make the recursion neither a loop nor a tail
 * call. */
static __attribute__((noinline)) unsigned long dive(const struct plan *p, unsigned long depth,
                                                    volatile char *prev)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = prev ? prev[0] : 0;
    if (depth == never)
        return depth;
    if (depth % p->yield_every == p->yield_every - 1)
        urt_yield();
    return dive(p, depth + 1, frame) + frame[sizeof frame - 1];
}

/* Different in every task and every word, so that a stack written over by
 * another task's (or copied from one) shows. */
static uint64_t canary_word(const struct worker *w, unsigned k)
{
    return (w->storm->plan.seed * 1000003u + w->id) ^ (0x5a5a5a5a5a5a5a5aull * (k + 1));
}

static intptr_t worker(void *arg)
{
    struct worker *w = arg;
    struct storm *s = w->storm;
    uint64_t state = s->plan.seed * 1000003u + w->id;
    volatile uint64_t canary[CANARY_WORDS];
    for (unsigned k = 0; k < CANARY_WORDS; k++)
        canary[k] = canary_word(w, k);

    for (unsigned round = 0;; round++) {
        uint64_t r = next_random(&state);
        int rc = r & 1 ? urt_yield() : urt_sleep_us(r % 1000);
        if (rc < 0) {
            fprintf(stderr, "worker-%u: wait %u: %s\n", w->id, round, urt_strerror(rc));
            exit(3);
        }
        for (unsigned k = 0; k < CANARY_WORDS; k++) {
            if (canary[k] != canary_word(w, k)) {
                fprintf(stderr, "worker-%u: its stack was overwritten\n", w->id);
                exit(3);
            }
        }
        if (round == 0)
            s->started++;
        if (w->id == s->plan.victim && round >= s->plan.rounds && s->started == s->plan.tasks) {
            printf("diving: worker-%u after %u waits, every task running\n", w->id, round + 1);
            fflush(stdout);
            dive(&s->plan, 0, NULL);
        }
    }
    return 0;
}

static intptr_t storm_main(void *arg)
{
    struct storm *s = arg;
    unsigned n = s->plan.tasks;
    struct worker *workers = calloc(n, sizeof *workers);
    urt_task victim = URT_TASK_NONE;
    if (!workers)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        char name[URT_TASK_NAME_MAX];
        snprintf(name, sizeof name, "worker-%u", i);
        workers[i] = (struct worker){s, i};
        urt_task_opts opts = {.name = name, .stack_size = asked_size(&s->plan, i)};
        int rc = urt_task_create_opts(i == s->plan.victim ? &victim : NULL, worker, &workers[i],
                                      &opts);
        if (rc < 0) {
            fprintf(stderr, "worker-%u not created: %s\n", i, urt_strerror(rc));
            return rc;
        }
    }
    /* The victim never returns; if it did, the overflow was not caught. */
    urt_task_await(victim, NULL);
    fprintf(stderr, "the victim ended without overflowing its stack\n");
    return -EIO;
}

static int storm(uint64_t seed, unsigned tasks)
{
    struct storm s = {.plan = make_plan(seed, tasks)};
    int rc = urt_run(storm_main, &s, NULL);
    fprintf(stderr, "storm %llu ended: %s\n", (unsigned long long)seed, urt_strerror(rc));
    return 1;
}

/* ---- the driver ----------------------------------------------------- */

/* The whole of a memfd (the child's stdout or stderr). */
static char *slurp(int fd)
{
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = malloc(len > 0 ? (size_t)len + 1 : 1);
    if (!buf)
        return NULL;
    ssize_t got = len > 0 ? pread(fd, buf, (size_t)len, 0) : 0;
    buf[got > 0 ? got : 0] = '\0';
    return buf;
}

static void show(const char *what, const char *text)
{
    fprintf(stderr, "    %s:%s\n", what, *text ? "" : " (empty)");
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(stderr, "      %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
}

/* How many runs passed with a victim of each size class, up to 1 MiB:
 * proof that the seeds covered every kind of stack. */
static unsigned long by_size[8];

/* One storm in a child; 1 if it died as it should. */
static int run_one(uint64_t seed, unsigned tasks)
{
    struct plan p = make_plan(seed, tasks);
    int out = memfd_create("storm-stdout", MFD_CLOEXEC);
    int err = memfd_create("storm-stderr", MFD_CLOEXEC);
    if (out < 0 || err < 0) {
        perror("overflow_storm: memfd_create");
        exit(1);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("overflow_storm: fork");
        exit(1);
    }
    if (pid == 0) {
        /* A core file per run would fill the directory ("core" is the
         * usual core_pattern) and slow every death down. */
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        alarm(RUN_LIMIT_S);
        _exit(storm(seed, tasks));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("overflow_storm: waitpid");
            exit(1);
        }
    }
    char *got_out = slurp(out), *got_err = slurp(err);
    close(out);
    close(err);
    if (!got_out || !got_err) {
        fprintf(stderr, "overflow_storm: no memory\n");
        exit(1);
    }

    char expect_err[160], expect_out[128];
    snprintf(expect_err, sizeof expect_err, "urt: task \"worker-%u\" overflowed its stack (%zu bytes)\n",
             p.victim, granted(asked_size(&p, p.victim)));
    snprintf(expect_out, sizeof expect_out, "diving: worker-%u after ", p.victim);
    int ok = 1;
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "killed by %s", strsignal(WTERMSIG(status)));
    else
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) {
        fprintf(stderr, "  seed %llu: %s, expected SIGSEGV\n", (unsigned long long)seed, how);
        ok = 0;
    }
    if (strcmp(got_err, expect_err) != 0) {
        fprintf(stderr, "  seed %llu: stderr is not exactly the victim's overflow\n",
                (unsigned long long)seed);
        show("expected", expect_err);
        ok = 0;
    }
    /* One line, the victim's, and it dived once every task had run. */
    const char *nl = strchr(got_out, '\n');
    static const char tail[] = "every task running\n";
    if (strncmp(got_out, expect_out, strlen(expect_out)) != 0 || !nl || nl[1] != '\0' ||
        (size_t)(nl + 1 - got_out) < sizeof tail - 1 ||
        strcmp(nl + 1 - (sizeof tail - 1), tail) != 0) {
        fprintf(stderr, "  seed %llu: stdout does not say worker-%u dived once all had run\n",
                (unsigned long long)seed, p.victim);
        ok = 0;
    }
    if (!ok) {
        show("stdout", got_out);
        show("stderr", got_err);
    }
    free(got_out);
    free(got_err);
    if (ok)
        by_size[__builtin_ctzl(granted(asked_size(&p, p.victim)) / URT_STACK_MIN)]++;
    return ok;
}

static void usage(void)
{
    fprintf(stderr, "usage: overflow_storm [-r RUNS] [-s FIRST_SEED] [-n TASKS]\n"
                    "       overflow_storm -1 SEED [-n TASKS]\n");
    exit(2);
}

static unsigned long number(const char *s, unsigned long min, unsigned long max)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    unsigned long runs = 100, first = 1, tasks = 1000, single = 0;
    int one = 0, opt;
    while ((opt = getopt(argc, argv, "r:s:n:1:")) != -1) {
        switch (opt) {
        case 'r': runs = number(optarg, 1, 1000000); break;
        case 's': first = number(optarg, 0, ~0ul); break;
        case 'n': tasks = number(optarg, 1, 1000000); break;
        case '1': single = number(optarg, 0, ~0ul); one = 1; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (one)
        return storm(single, (unsigned)tasks);

    unsigned long passed = 0;
    for (unsigned long i = 0; i < runs; i++)
        passed += (unsigned long)run_one(first + i, (unsigned)tasks);
    printf("overflow storm: %lu runs of %lu tasks (seeds %lu to %lu), %lu died as they should\n",
           runs, tasks, first, first + runs - 1, passed);
    printf("victims' stacks:");
    const char *sep = " ";
    size_t smallest = 0, largest = 0;
    for (unsigned c = 0; c < sizeof by_size / sizeof by_size[0]; c++) {
        if (!by_size[c])
            continue;
        size_t kib = ((size_t)URT_STACK_MIN << c) / 1024;
        printf("%s%lu of %zu KiB", sep, by_size[c], kib);
        sep = ", ";
        if (!smallest)
            smallest = kib;
        largest = kib;
    }
    printf("\n");
    if (passed != runs)
        return 1;
    printf("figure: overflow storm: %lu runs of %lu tasks, each killed by SIGSEGV naming its task "
           "and stack size (%zu to %zu KiB)\n",
           runs, tasks, smallest, largest);
    return 0;
}
