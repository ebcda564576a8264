/*
 * Introspection: the loop's tasks, and a dump of them on demand or on a
 * signal.  (Being written: only the loop's hooks exist so far.)
 */
#define _GNU_SOURCE
#include "internal.h"

void urt__dump_stop(struct urt_loop *loop)
{
    (void)loop;
}

void urt__dump_destroy(struct urt_loop *loop)
{
    (void)loop;
}
