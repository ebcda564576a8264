/*
 * taskgroup.c - a task group (asyncio.TaskGroup), the C twin of
 * examples/python/taskgroup.py: three tasks, of which b fails at 0.2 s.
 * The failure cancels c, still sleeping; a has finished.  The group's exit
 * waits for all three and lists every failure, with the child's place in
 * spawn order.
 *
 * Prints:
 *   all started
 *   a done
 *   c cancelled
 *   error: b failed
 *   group closed
 *
 * A group is the structured way to run tasks: none can be forgotten, and
 * one failure stops the rest instead of leaving them running.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "urt.h"

struct fetch {
    const char *name;
    unsigned delay_ms;
    bool fail;
};

static intptr_t fetch(void *arg)
{
    const struct fetch *f = arg;
    int rc = urt_sleep_ms(f->delay_ms);
    if (rc == URT_ECANCELED) {
        printf("%s cancelled\n", f->name);
        return rc;
    }
    if (rc < 0) return rc;
    if (f->fail) return -EIO;
    printf("%s done\n", f->name);
    return 0;
}

/* Static: a child may outlive a main that returned early on an error. */
static const struct fetch fetches[] = {
    {"a", 100, false},
    {"b", 200, true},
    {"c", 300, false},
};
#define NFETCHES (sizeof fetches / sizeof fetches[0])

static intptr_t main_task(void *arg)
{
    (void)arg;
    urt_group group;
    int rc = urt_group_enter(&group);
    if (rc < 0) return rc;
    for (size_t i = 0; i < NFETCHES; i++)
        if ((rc = urt_group_spawn(&group, NULL, fetch, (void *)&fetches[i])) < 0) break;
    if (rc == 0) puts("all started");

    urt_group_error errors[NFETCHES];
    size_t nerrors = 0;
    rc = urt_group_exit(&group, errors, NFETCHES, &nerrors);
    for (size_t i = 0; i < nerrors && i < NFETCHES; i++)
        printf("error: %s failed\n", fetches[errors[i].index].name);
    puts("group closed");
    /* The failures are handled, as `except*` handles them in the twin. */
    return rc == -EIO ? 0 : rc;
}

int main(void)
{
    int rc = urt_run(main_task, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "taskgroup: %s\n", urt_strerror(rc));
        return 1;
    }
    fflush(stdout);
    return 0;
}
