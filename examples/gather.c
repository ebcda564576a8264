/*
 * gather.c - the C twin of the seed note's gather example
 * (examples/python/gather.py): three tasks sleep 2, 1 and 3 tenths of a
 * second; urt_gather() gives their results in input order, not in the order
 * they finished.
 *
 * Prints:
 *   ['Task 2 done', 'Task 1 done', 'Task 3 done']
 *
 * The Python tasks return f-strings.  A urt task returns an intptr_t, so each
 * task formats its string into a buffer that the caller owns and returns a
 * pointer to it; the list is printed the way Python prints a list of str.
 */
#include <stdio.h>

#include "urt.h"

struct job {
    int n;
    char result[32];
};

static intptr_t task(void *arg)
{
    struct job *job = arg;
    int rc = urt_sleep_ms(100 * (uint64_t)job->n);
    if (rc < 0)
        return rc;
    snprintf(job->result, sizeof job->result, "Task %d done", job->n);
    return (intptr_t)job->result;
}

/* Static rather than on main's stack: if main fails half-way, the tasks it
 * already created run on (until urt_run cancels them) and must not point into
 * a stack that is gone. */
static struct job jobs[] = {{.n = 2}, {.n = 1}, {.n = 3}};
#define NJOBS (sizeof jobs / sizeof jobs[0])

static intptr_t main_task(void *arg)
{
    (void)arg;
    urt_task tasks[NJOBS];
    intptr_t results[NJOBS];

    for (size_t i = 0; i < NJOBS; i++) {
        int rc = urt_task_create(&tasks[i], task, &jobs[i]);
        if (rc < 0)
            return rc;
    }
    int rc = urt_gather(tasks, NJOBS, 0, results, NULL);
    if (rc < 0)
        return rc;

    fputs("[", stdout);
    for (size_t i = 0; i < NJOBS; i++)
        printf("%s'%s'", i ? ", " : "", (const char *)results[i]);
    puts("]");
    return 0;
}

int main(void)
{
    int rc = urt_run(main_task, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "gather: %s\n", urt_strerror(rc));
        return 1;
    }
    return 0;
}
