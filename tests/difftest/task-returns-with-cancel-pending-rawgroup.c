/* difftest program c_task_returns_with_cancel_pending_rawgroup (seed 245, minimised; settle_gather=1 settle_group=0 py_wait_for=0 without=-).
 * Replay: cc -std=gnu11 -Iinclude THIS.c build/liburt.a -luring -lpthread && ./a.out
 * (see tests/difftest/README). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "urt.h"

#define UNIT (24ull * URT_NS_PER_MS)
#define NTASKS 3
static uint64_t t0;
static urt_task h[NTASKS];
static int made[NTASKS];
static urt_event ev[1];
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

/* Sleep to this task's own sub-slot (4 + 2 * me ms into a unit) of the next
 * unit: used after a gather or a group (see --raw-gather).  Never one of this
 * unit, which a settle that started this burst may be close to. */
static int settle(int me)
{
    uint64_t u = (urt_now() - t0) / UNIT;
    uint64_t dl = (u + 1) * UNIT + (4 + 2 * (uint64_t)me) * URT_NS_PER_MS;
    return urt_sleep(t0 + dl - urt_now());
}

/* bid if the scope is seen expired for the first time, else prev: nested
 * calls, innermost scope first, give the outermost one that newly expired. */
static int newly_expired(int bid, const urt_timeout *t, int *seen, int prev)
{
    if (*seen || urt_timeout_expired(t) != 1)
        return prev;
    *seen = 1;
    return bid;
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


static intptr_t t2_fn(void *arg);
static intptr_t t1_fn(void *arg);
static intptr_t t0_fn(void *arg);

static intptr_t t0_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    t0 = urt_now();
    P("t0 start\n");
    P("t0 create t1\n");
    urt_task_create(&h[1], t1_fn, NULL);
    made[1] = 1;
    kids[nk++] = 1;
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t0 caught cancel\n");
    }
    else P("t0 yielded\n");
    if (made[1]) P("t0 cancel t1 -> %d\n", urt_task_cancel(h[1]));
    else P("t0 cancel t1 -> none\n");
    cleanup(0, kids, nk, 0);
    P("t0 return 0\n");
    return 0;
}

static intptr_t t1_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    urt_group g_1; int gk_1[8], ngk_1 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t1 start\n");
    P("t1 group#1 enter\n");
    urt_group_enter(&g_1); ngk_1 = 0;
    P("t1 spawn t2\n");
    rc = urt_group_spawn(&g_1, &h[2], t2_fn, NULL);
    if (rc == 0) { made[2] = 1; gk_1[ngk_1++] = 2; }
    else P("t1 spawn t2 -> %s\n", rc == -ESHUTDOWN ? "refused" : "error");
    out_1:
    syn = cut && cut_syn;
    if (syn) urt_task_cancel(urt_task_current());
    rc = urt_group_exit(&g_1, ge, 8, &nge);
    if (syn) urt_task_uncancel(urt_task_current());
    rs = 0;
    if (URT_IS_ERROR(rc) && !IS_CUT(rc)) {
        group_failed(1, 1, rc, ge, nge, gk_1);
        cut = 0; cut_syn = 0;
    } else if (cut || IS_CUT(rc)) {
        P("t1 group#1 -> cancelled\n");
        if (!cut) { cut = rc; cut_syn = 0; }
    } else P("t1 group#1 -> ok\n");
    if (!cut && IS_CUT(rs)) { cut = rs; cut_syn = 0; }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t1 cancelled\n");
        cleanup(1, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    cleanup(1, kids, nk, 0);
    P("t1 return 0\n");
    return 0;
}

static intptr_t t2_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t2 start\n");
    cleanup(2, kids, nk, 0);
    P("t2 fail 32\n");
    return -32;
}


int difftest_prog_c_task_returns_with_cancel_pending_rawgroup(void)
{
    intptr_t v = 0;
    memset(h, 0, sizeof h);
    memset(made, 0, sizeof made);
    for (int i = 0; i < 0; i++)
        urt_event_init(&ev[i]);

    int rc = urt_run(t0_fn, NULL, &v);
    for (int i = 0; i < 0; i++)
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
    return difftest_prog_c_task_returns_with_cancel_pending_rawgroup() ? 1 : 0;
}
#endif

