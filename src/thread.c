/*
 * Work on threads: urt_to_thread and the loop's pool of worker threads.
 * (Being written: only the loop's hooks exist so far.)
 */
#define _GNU_SOURCE
#include "internal.h"

void urt__pool_stop(struct urt_loop *loop)
{
    (void)loop;
}

void urt__pool_destroy(struct urt_loop *loop)
{
    (void)loop;
}
