/* Names for error codes: urt's own, then the C library's for errno values. */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

const char *urt_strerror(int err)
{
    switch (err) {
    case 0: return "Success";
    case URT_ECANCELED: return "Task cancelled";
    case URT_ETIMEDOUT: return "Deadline passed";
    case URT_EBADTASK: return "Invalid or released task handle";
    case URT_ENOLOOP: return "No urt loop running on this thread";
    case URT_ESTACKLIMIT:
        return "No more guarded stacks can be mapped (vm.max_map_count reached)";
    }
    if (err < 0 && err > -4000) return strerrordesc_np(-err) ? strerrordesc_np(-err) : "Unknown error";
    return "Unknown error";
}
