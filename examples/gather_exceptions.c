/*
 * gather_exceptions.c - the C twin of the seed note's two return_exceptions
 * examples (examples/python/gather_exceptions.py): task(2) fails at once,
 * task(1) and task(3) sleep 1 and 3 tenths of a second.
 *
 *   gather_exceptions
 *       urt_gather() without flags returns the first error as soon as it
 *       happens.  Python prints a traceback on stderr ending in
 *       "ValueError: Something went wrong!" and exits with status 1; this twin
 *       prints that last line alone on stderr, nothing on stdout, and exits
 *       with status 1.  The other two tasks are not waited for: main returns,
 *       and urt_run() cancels them, as asyncio.run() does.
 *
 *   gather_exceptions --return-exceptions
 *       urt_gather() with URT_RETURN_EXCEPTIONS waits for all three and
 *       reports the failure in place.  Prints:
 *         ['Task 1 done', ValueError('Something went wrong!'), 'Task 3 done']
 *
 * C has no exceptions: a urt task fails by returning a negative error code.
 * Here -EINVAL plays ValueError("Something went wrong!"), the nearest errno
 * ("invalid argument": the task rejects its n), and py_repr_error() prints it
 * where Python prints the exception's repr.  Any other error, from urt itself
 * (say io_uring is not allowed here), is printed as "gather_exceptions:
 * <urt_strerror>" so that it is never mistaken for the planned failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "urt.h"

struct job {
    int n;
    char result[32];
};

static intptr_t task(void *arg)
{
    struct job *job = arg;
    if (job->n == 2)
        return -EINVAL; /* raise ValueError("Something went wrong!") */
    int rc = urt_sleep_ms(100 * (uint64_t)job->n);
    if (rc < 0)
        return rc;
    snprintf(job->result, sizeof job->result, "Task %d done", job->n);
    return (intptr_t)job->result;
}

/* Python's repr() of the exception a urt error stands for. */
static void py_repr_error(int err, FILE *out)
{
    if (err == -EINVAL)
        fputs("ValueError('Something went wrong!')", out);
    else if (err == URT_ECANCELED)
        fputs("CancelledError()", out);
    else
        fprintf(out, "OSError(%d, '%s')", -err, urt_strerror(err));
}

/* Static so that tasks still running when main ends never point into main's
 * finished stack. */
static struct job jobs[] = {{.n = 1}, {.n = 2}, {.n = 3}};
#define NJOBS (sizeof jobs / sizeof jobs[0])

/* The error urt_gather() gave, told apart from urt_run()'s own errors. */
static int gather_error;

static intptr_t main_task(void *arg)
{
    unsigned flags = *(const unsigned *)arg;
    urt_task tasks[NJOBS];
    intptr_t results[NJOBS];
    int errors[NJOBS];

    for (size_t i = 0; i < NJOBS; i++) {
        int rc = urt_task_create(&tasks[i], task, &jobs[i]);
        if (rc < 0)
            return rc;
    }
    int rc = urt_gather(tasks, NJOBS, flags, results, errors);
    if (rc < 0) {
        gather_error = rc;
        return rc;
    }
    if (!(flags & URT_RETURN_EXCEPTIONS))
        return 0; /* Python's main ignores the results it never gets */

    fputs("[", stdout);
    for (size_t i = 0; i < NJOBS; i++) {
        fputs(i ? ", " : "", stdout);
        if (errors[i])
            py_repr_error(errors[i], stdout);
        else
            printf("'%s'", (const char *)results[i]);
    }
    puts("]");
    return 0;
}

int main(int argc, char **argv)
{
    unsigned flags = 0;
    if (argc == 2 && strcmp(argv[1], "--return-exceptions") == 0) {
        flags = URT_RETURN_EXCEPTIONS;
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--return-exceptions]\n", argv[0]);
        return 2;
    }

    int rc = urt_run(main_task, &flags, NULL);
    if (rc == -EINVAL && gather_error == -EINVAL) {
        fputs("ValueError: Something went wrong!\n", stderr);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "gather_exceptions: %s\n", urt_strerror(rc));
        return 1;
    }
    return 0;
}
