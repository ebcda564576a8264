/*
 * timeout.c - a timeout scope (asyncio.timeout) and wait_for, the C twin
 * of examples/python/timeout.py.
 *
 * Prints:
 *   slow() timed out
 *   fast
 *   wait_for timed out
 *
 * The scope cuts whatever its code waits on when the deadline passes; the
 * exit says whether it was this scope's deadline.  wait_for cancels a task
 * that is late, waits for it to end, and reports the timeout.
 */
#include <stdio.h>

#include "urt.h"

static intptr_t slow(void *arg)
{
    (void)arg;
    return urt_sleep_s(10);
}

static intptr_t fast(void *arg)
{
    int rc = urt_sleep_ms(50);
    return rc < 0 ? rc : (intptr_t)arg;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    urt_timeout scope;
    int rc = urt_timeout_enter(&scope, 100 * URT_NS_PER_MS);
    if (rc < 0) return rc;
    slow(NULL);
    if (urt_timeout_exit(&scope) == URT_ETIMEDOUT) puts("slow() timed out");

    urt_task task;
    intptr_t value;
    if ((rc = urt_task_create(&task, fast, "fast")) < 0) return rc;
    if ((rc = urt_wait_for(task, URT_NS_PER_S, &value)) < 0) return rc;
    puts((const char *)value);
    urt_task_release(task);

    if ((rc = urt_task_create(&task, slow, NULL)) < 0) return rc;
    rc = urt_wait_for(task, 100 * URT_NS_PER_MS, NULL);
    urt_task_release(task);
    if (rc == URT_ETIMEDOUT) puts("wait_for timed out");
    else if (rc < 0) return rc;
    return 0;
}

int main(void)
{
    int rc = urt_run(main_task, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "timeout: %s\n", urt_strerror(rc));
        return 1;
    }
    fflush(stdout);
    return 0;
}
