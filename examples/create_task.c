/*
 * create_task.c - the C twin of the seed note's first example
 * (examples/python/create_task.py): a task created with urt_task_create()
 * does not start until main reaches a suspension point, and main does not
 * wait for it.
 *
 * Prints:
 *   Main started
 *   Main continues running
 *   Task started
 *   Task finished
 *   Main finished
 *
 * The sleeps are scaled from seconds to tenths of a second (2 s -> 200 ms,
 * 3 s -> 300 ms) so that the test suite runs it quickly; the order does not
 * depend on the scale.
 */
#include <stdio.h>

#include "urt.h"

static intptr_t task(void *arg)
{
    (void)arg;
    puts("Task started");
    /* A sleep cut short by cancellation ends the task, as CancelledError
     * would end the coroutine. */
    int rc = urt_sleep_ms(200);
    if (rc < 0)
        return rc;
    puts("Task finished");
    return 0;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    puts("Main started");
    /* NULL handle: the task is detached, like a create_task() whose result
     * nobody keeps. */
    int rc = urt_task_create(NULL, task, NULL);
    if (rc < 0)
        return rc;
    puts("Main continues running");
    rc = urt_sleep_ms(300); /* keeps the loop alive while the task runs */
    if (rc < 0)
        return rc;
    puts("Main finished");
    return 0;
}

int main(void)
{
    int rc = urt_run(main_task, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "create_task: %s\n", urt_strerror(rc));
        return 1;
    }
    return 0;
}
