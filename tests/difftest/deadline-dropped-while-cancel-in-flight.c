/* difftest program c_deadline_dropped_while_cancel_in_flight (seed 33, minimised; settle_gather=1 settle_group=1 py_wait_for=0 without=group-in-timeout,late-queue).
 * Replay: cc -std=gnu11 -Iinclude THIS.c build/liburt.a -luring -lpthread && ./a.out
 * (see tests/difftest/README).
 * Its scope exit was brought up to the generator's rules by hand (cut_syn,
 * then urt_task_cancelling, 2026-12-02): it was emitted before either. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "urt.h"

#define UNIT (24ull * URT_NS_PER_MS)
#define NTASKS 6
static uint64_t t0;
static urt_task h[NTASKS];
static int made[NTASKS];
static urt_event ev[2];
static urt_queue qu[1];

#define P(...) do { printf(__VA_ARGS__); fflush(stdout); } while (0)
#define IS_CUT(rc) ((rc) == URT_ECANCELED || (rc) == URT_ETIMEDOUT)

static int sleep_until(int slot)
{
    uint64_t dl = t0 + (uint64_t)slot * UNIT, now = urt_now();
    if (now >= dl)
        return urt_yield();
    return urt_sleep(dl - now);
}

/* A slot's absolute deadline, or 0 once it has passed. */
static uint64_t deadline(int slot)
{
    uint64_t dl = t0 + (uint64_t)slot * UNIT;
    return urt_now() >= dl ? 0 : dl;
}

static uint64_t until(uint64_t dl)
{
    uint64_t now = urt_now();
    return dl > now ? dl - now : 1;
}

/* Sleep to this task's own sub-slot (4 + 2 * me ms into a unit), the next one
 * at least 1 ms ahead: used after a gather or a group (see --raw-gather). */
static int settle(int me)
{
    uint64_t now = urt_now() - t0, u = now / UNIT;
    uint64_t dl = u * UNIT + (4 + 2 * (uint64_t)me) * URT_NS_PER_MS;
    if (now + URT_NS_PER_MS >= dl)
        dl += UNIT;
    return urt_sleep(t0 + dl - urt_now());
}

/* 1 the first time the scope is seen expired. */
static int newly_expired(const urt_timeout *t, int *seen)
{
    if (*seen || urt_timeout_expired(t) != 1)
        return 0;
    return *seen = 1;
}

static void outcome(char *buf, size_t n, int rc, intptr_t v, int cut)
{
    if (cut)
        snprintf(buf, n, "cancelled");
    else if (rc == 0)
        snprintf(buf, n, "value %ld", (long)v);
    else if (rc == URT_ECANCELED)
        snprintf(buf, n, "cancelled");
    else if (rc == URT_ETIMEDOUT)
        snprintf(buf, n, "timeout");
    else
        snprintf(buf, n, "error %d", -rc);
}

static const char *word(int rc, int cut)
{
    static char b[32];
    if (cut)
        return "cancelled";
    if (rc == 0)
        return "ok";
    if (rc == URT_ETIMEDOUT)
        return "timeout";
    snprintf(b, sizeof b, "error %d", rc);
    return b;
}

static void cleanup(int me, const int *kids, int nk, int cancel)
{
    char b[64];
    if (cancel)
        for (int i = 0; i < nk; i++)
            if (urt_task_done(h[kids[i]]) == 0)
                urt_task_cancel(h[kids[i]]);
    for (int i = 0; i < nk; i++) {
        intptr_t v = 0;
        int rc = urt_task_await(h[kids[i]], &v);
        outcome(b, sizeof b, rc, v, 0);
        P("t%d cleanup t%d -> %s\n", me, kids[i], b);
    }
}

/* A failed group's exit: its code, the earliest failure, then all of them in
 * spawn order. */
static void group_failed(int me, int bid, int rc, const urt_group_error *ge, size_t nge,
                         const int *gk)
{
    char b[256];
    size_t n = nge < 8 ? nge : 8, order[8];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && ge[order[j]].index < ge[order[j - 1]].index; j--) {
            size_t x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    int o = snprintf(b, sizeof b, "t%d group#%d -> failed err %d first t%d all [", me, bid,
                     -rc, n ? gk[ge[0].index] : -1);
    for (size_t i = 0; i < n; i++)
        o += snprintf(b + o, sizeof b - o, "%st%d err %d", i ? ", " : "",
                      gk[ge[order[i]].index], -ge[order[i]].error);
    P("%s]\n", b);
}


static intptr_t t1_fn(void *arg);
static intptr_t t0_fn(void *arg);

static intptr_t t0_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    urt_timeout tm_1; int seen_1 = 0, cc_1 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge;
    t0 = urt_now();
    P("t0 start\n");
    dl = deadline(1);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    P("t0 create t1\n");
    urt_task_create(&h[1], t1_fn, NULL);
    made[1] = 1;
    kids[nk++] = 1;
    dl = deadline(2); v = 0;
    rc = urt_wait_for(h[1], dl ? until(dl) : URT_NO_TIMEOUT, &v);
    nx = (newly_expired(&tm_1, &seen_1));
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    outcome(b, sizeof b, rc, v, iscut);
    P("t0 wait_for t1 -> %s\n", b);
    if (iscut)
        { cut = rc; cut_syn = 0; goto out_1; }
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = 1; goto out_1; }
    }
    out_1:
    rc = urt_timeout_exit(&tm_1);
    if (!cut)
        P("t0 timeout#1 -> ok expired=%d\n", urt_timeout_expired(&tm_1));
    else if ((cut_syn == 1 && urt_task_cancelling(urt_task_current()) <= cc_1) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t0 timeout#1 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t0 timeout#1 -> cancelled\n");
        if (cut_syn == 1) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t0 caught cancel\n");
    }
    nx = 0;
    cleanup(0, kids, nk, 0);
    P("t0 return 0\n");
    return 0;
}

static intptr_t t1_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge;
    P("t1 start\n");
    rc = sleep_until(3);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t1 caught cancel\n");
    }
    else P("t1 slept\n");
    rc = sleep_until(4);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t1 caught cancel\n");
    }
    else P("t1 slept\n");
    cleanup(1, kids, nk, 0);
    P("t1 return 0\n");
    return 0;
}


int difftest_prog_c_deadline_dropped_while_cancel_in_flight(void)
{
    intptr_t v = 0;
    memset(h, 0, sizeof h);
    memset(made, 0, sizeof made);
    for (int i = 0; i < 2; i++)
        urt_event_init(&ev[i]);
    urt_queue_init(&qu[0], URT_QUEUE_FIFO, 2);
    int rc = urt_run(t0_fn, NULL, &v);
    for (int i = 0; i < 1; i++)
        urt_queue_destroy(&qu[i]);
    if (rc != 0)
        printf("urt_run -> %d\n", rc);
    else
        printf("main -> %ld\n", (long)v);
    fflush(stdout);
    return rc;
}

#ifndef DIFFTEST_BATCH
int main(void)
{
    return difftest_prog_c_deadline_dropped_while_cancel_in_flight() ? 1 : 0;
}
#endif

