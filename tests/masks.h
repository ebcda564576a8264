/*
 * Running a test's main under a feature mask (URT_KERNEL=5.6,
 * URT_FEATURES_OFF=...), so that the fallback paths run on this kernel.
 * Each test file lists its own masks and what each must take away.
 */
#ifndef URT_TEST_MASKS_H
#define URT_TEST_MASKS_H

#include "harness.h"
#include "internal.h" /* the loop's feature table: did the mask take effect */

struct mask {
    const char *var, *value; /* environment for the run; NULL: none */
    unsigned char gone[8];   /* opcodes the mask must have taken away */
    unsigned ngone;
};

/* The mask of the run under way; NULL when unmasked. */
static const struct mask *mask_now;

/* The mask's variable is set for the run and given back its old value
 * after (the kernels tier of `make test` sets URT_KERNEL for the whole
 * binary). */
static char *mask_env_saved;

static inline void mask_apply(const struct mask *m)
{
    mask_now = m;
    if (!m->var) return;
    const char *old = getenv(m->var);
    mask_env_saved = old ? strdup(old) : NULL;
    setenv(m->var, m->value, 1);
}

static inline void mask_restore(const struct mask *m)
{
    mask_now = NULL;
    if (!m->var) return;
    if (mask_env_saved)
        setenv(m->var, mask_env_saved, 1);
    else
        unsetenv(m->var);
    free(mask_env_saved);
    mask_env_saved = NULL;
}

/* The first half of every file's check_mask: the running loop, after
 * checking that the mask under way (unmasked: unmasked, the file's first
 * entry) took away every opcode it must; NULL outside a loop, recorded as
 * a failure. */
static inline const struct urt_loop *mask_loop_checked(const struct mask *unmasked,
                                                       const struct mask **m)
{
    const struct urt_loop *loop = urt__loop;
    EXPECT(loop != NULL);
    *m = mask_now ? mask_now : unmasked;
    if (!loop) return NULL;
    for (unsigned i = 0; i < (*m)->ngone; i++) EXPECT_EQ(urt__has_op(loop, (*m)->gone[i]), 0);
    return loop;
}

/* urt_run under one mask.  The environment is restored before anything is
 * asserted, so that a failure cannot leak the mask into the next test; the
 * run must give back every fd and mapping (as run_checked). */
static inline void run_masked(const struct mask *m, urt_fn fn, void *arg)
{
    trace_reset();
    task_failure[0] = 0;
    mask_apply(m);
    int fds = count_open_fds();
    struct mappings_before maps = mappings_before_run();
    intptr_t value = -1;
    int rc = urt_run(fn, arg, &value);
    int fds_after = count_open_fds();
    bool maps_ok = mappings_given_back(&maps);
    mask_restore(m);
    if (rc != 0 || value != 0 || task_failure[0] || fds_after != fds)
        print_error("run with %s=%s: rc %d value %ld, fds %d -> %d\n",
                    m->var ? m->var : "(no mask)", m->value ? m->value : "", rc,
                    (long)value, fds, fds_after);
    assert_no_task_failure();
    assert_int_equal(rc, 0);
    assert_int_equal(value, 0);
    assert_int_equal(fds_after, fds);
    assert_true(maps_ok);
}

#endif
