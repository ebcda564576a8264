/* difftest program c_group_failure_keeps_outside_cancel (seed 283, differed until a failing group kept the outside cancellation and Python 3.13 rules; settle_gather=1 settle_group=1 py_wait_for=0 without=-).
 * Replay: cc -std=gnu11 -Iinclude THIS.c build/liburt.a -luring -lpthread && ./a.out
 * (see tests/difftest/README). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "urt.h"

#define UNIT (24ull * URT_NS_PER_MS)
#define NTASKS 7
static uint64_t t0;
static urt_task h[NTASKS];
static int made[NTASKS];
static urt_event ev[1];
static urt_queue qu[2];

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


static intptr_t t6_fn(void *arg);
static intptr_t t5_fn(void *arg);
static intptr_t t4_fn(void *arg);
static intptr_t t3_fn(void *arg);
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
    urt_group g_1; int gk_1[8], ngk_1 = 0;
    urt_timeout tm_2; int seen_2 = 0, cc_2 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    t0 = urt_now();
    P("t0 start\n");
    rc = sleep_until(16);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t0 caught cancel\n");
    }
    else P("t0 slept\n");
    rc = urt_queue_try_get(&qu[1], &it);
    if (rc == 0) P("t0 q1 try_get -> %ld\n", (long)(intptr_t)it);
    else P("t0 q1 try_get -> %s\n", rc == -EAGAIN ? "empty" : "error");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t0 caught cancel\n");
    }
    else P("t0 yielded\n");
    P("t0 event 1\n");
    rc = urt_queue_try_get(&qu[1], &it);
    if (rc == 0) P("t0 q1 try_get -> %ld\n", (long)(intptr_t)it);
    else P("t0 q1 try_get -> %s\n", rc == -EAGAIN ? "empty" : "error");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t0 caught cancel\n");
    }
    else P("t0 yielded\n");
    P("t0 group#1 enter\n");
    urt_group_enter(&g_1); ngk_1 = 0;
    rc = urt_yield();
    nx = 0;
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t0 yielded\n");
    P("t0 spawn t1\n");
    rc = urt_group_spawn(&g_1, &h[1], t1_fn, NULL);
    if (rc == 0) { made[1] = 1; gk_1[ngk_1++] = 1; }
    else P("t0 spawn t1 -> %s\n", rc == -ESHUTDOWN ? "refused" : "error");
    rc = sleep_until(21);
    nx = 0;
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t0 slept\n");
    dl = deadline(62);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    rc = urt_yield();
    nx = newly_expired(2, &tm_2, &seen_2, 0);
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t0 yielded\n");
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    rc = sleep_until(53);
    nx = newly_expired(2, &tm_2, &seen_2, 0);
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t0 slept\n");
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    dl = deadline(68);
    rc = urt_queue_get_timeout(&qu[1], &it, dl ? until(dl) : 0);
    nx = newly_expired(2, &tm_2, &seen_2, 0);
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    if (rc == 0) P("t0 q1 get -> %ld\n", (long)(intptr_t)it);
    else P("t0 q1 get -> %s\n", word(rc, iscut));
    if (iscut)
        { cut = rc; cut_syn = 0; goto out_2; }
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    rc = urt_yield();
    nx = newly_expired(2, &tm_2, &seen_2, 0);
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t0 yielded\n");
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    out_2:
    rc = urt_timeout_exit(&tm_2);
    if (!cut)
        P("t0 timeout#2 -> ok expired=%d\n", urt_timeout_expired(&tm_2));
    else if ((cut_syn == 2 && urt_task_cancelling(urt_task_current()) <= cc_2) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t0 timeout#2 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t0 timeout#2 -> cancelled\n");
        if (cut_syn == 2) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) goto out_1;
    nx = 0;
    out_1:
    syn = cut && cut_syn;
    if (syn) urt_task_cancel(urt_task_current());
    rc = urt_group_exit(&g_1, ge, 8, &nge);
    if (syn) urt_task_uncancel(urt_task_current());
    rs = settle(0);
    if (URT_IS_ERROR(rc) && !IS_CUT(rc)) {
        group_failed(0, 1, rc, ge, nge, gk_1);
        cut = 0; cut_syn = 0;
    } else if (cut || IS_CUT(rc)) {
        P("t0 group#1 -> cancelled\n");
        if (!cut) { cut = rc; cut_syn = 0; }
    } else P("t0 group#1 -> ok\n");
    if (!cut && IS_CUT(rs)) { cut = rs; cut_syn = 0; }
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
    int kids[2], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t1 start\n");
    P("t1 create t2\n");
    urt_task_create(&h[2], t2_fn, NULL);
    made[2] = 1;
    kids[nk++] = 2;
    P("t1 create t3\n");
    urt_task_create(&h[3], t3_fn, NULL);
    made[3] = 1;
    kids[nk++] = 3;
    v = 0; rc = urt_task_await(h[2], &v);
    nx = 0;
    iscut = IS_CUT(rc);
    outcome(b, sizeof b, rc, v, iscut);
    P("t1 awaited t2 -> %s\n", b);
    if (iscut)
        {
            P("t1 caught cancel\n");
        }
    dl = deadline(17);
    rc = urt_queue_get_timeout(&qu[0], &it, dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    if (rc == 0) P("t1 q0 get -> %ld\n", (long)(intptr_t)it);
    else P("t1 q0 get -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t1 caught cancel\n");
        }
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t1 caught cancel\n");
    }
    else P("t1 yielded\n");
    rc = urt_queue_try_put(&qu[1], (void *)201);
    P("t1 q1 try_put 201 -> %s\n", rc == 0 ? "ok" : rc == -EAGAIN ? "full" : "error");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t1 caught cancel\n");
    }
    else P("t1 yielded\n");
    rc = urt_queue_try_put(&qu[1], (void *)200);
    P("t1 q1 try_put 200 -> %s\n", rc == 0 ? "ok" : rc == -EAGAIN ? "full" : "error");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t1 caught cancel\n");
    }
    else P("t1 yielded\n");
    cleanup(1, kids, nk, 0);
    P("t1 return 47\n");
    return 47;
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
    urt_timeout tm_1; int seen_1 = 0, cc_1 = 0;
    urt_timeout tm_2; int seen_2 = 0, cc_2 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t2 start\n");
    rc = sleep_until(3);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 cancelled\n");
        cleanup(2, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t2 slept\n");
    dl = deadline(41);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(26);
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t2 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t2 slept\n");
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    rc = sleep_until(37);
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t2 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t2 slept\n");
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    rc = sleep_until(42);
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t2 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t2 slept\n");
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    out_1:
    rc = urt_timeout_exit(&tm_1);
    if (!cut)
        P("t2 timeout#1 -> ok expired=%d\n", urt_timeout_expired(&tm_1));
    else if ((cut_syn == 1 && urt_task_cancelling(urt_task_current()) <= cc_1) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t2 timeout#1 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t2 timeout#1 -> cancelled\n");
        if (cut_syn == 1) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t2 cancelled\n");
        cleanup(2, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    dl = deadline(43);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    P("t2 event 1\n");
    P("t2 event 2\n");
    out_2:
    rc = urt_timeout_exit(&tm_2);
    if (!cut)
        P("t2 timeout#2 -> ok expired=%d\n", urt_timeout_expired(&tm_2));
    else if ((cut_syn == 2 && urt_task_cancelling(urt_task_current()) <= cc_2) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t2 timeout#2 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t2 timeout#2 -> cancelled\n");
        if (cut_syn == 2) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t2 cancelled\n");
        cleanup(2, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    rc = sleep_until(45);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 cancelled\n");
        cleanup(2, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t2 slept\n");
    rc = sleep_until(59);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 cancelled\n");
        cleanup(2, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t2 slept\n");
    rc = sleep_until(61);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 cancelled\n");
        cleanup(2, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t2 slept\n");
    P("t2 event 3\n");
    cleanup(2, kids, nk, 0);
    P("t2 return 44\n");
    return 44;
}

static intptr_t t3_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    urt_timeout tm_1; int seen_1 = 0, cc_1 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t3 start\n");
    P("t3 create t4\n");
    urt_task_create(&h[4], t4_fn, NULL);
    made[4] = 1;
    kids[nk++] = 4;
    dl = deadline(18); v = 0;
    rc = urt_wait_for(h[4], dl ? until(dl) : URT_NO_TIMEOUT, &v);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    outcome(b, sizeof b, rc, v, iscut);
    P("t3 wait_for t4 -> %s\n", b);
    if (iscut)
        {
            P("t3 caught cancel\n");
        }
    dl = deadline(32);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(20);
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t3 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t3 slept\n");
    if (nx) {
        P("t3 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    out_1:
    rc = urt_timeout_exit(&tm_1);
    if (!cut)
        P("t3 timeout#1 -> ok expired=%d\n", urt_timeout_expired(&tm_1));
    else if ((cut_syn == 1 && urt_task_cancelling(urt_task_current()) <= cc_1) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t3 timeout#1 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t3 timeout#1 -> cancelled\n");
        if (cut_syn == 1) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t3 caught cancel\n");
    }
    nx = 0;
    dl = deadline(40);
    rc = urt_queue_put_timeout(&qu[0], (void *)101, dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t3 q0 put 101 -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t3 caught cancel\n");
        }
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 caught cancel\n");
    }
    else P("t3 yielded\n");
    dl = deadline(44);
    rc = urt_queue_put_timeout(&qu[0], (void *)100, dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t3 q0 put 100 -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t3 caught cancel\n");
        }
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 caught cancel\n");
    }
    else P("t3 yielded\n");
    cleanup(3, kids, nk, 0);
    P("t3 fail 9\n");
    return -9;
}

static intptr_t t4_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    urt_timeout tm_1; int seen_1 = 0, cc_1 = 0;
    urt_group g_2; int gk_2[8], ngk_2 = 0;
    urt_timeout tm_3; int seen_3 = 0, cc_3 = 0;
    urt_timeout tm_4; int seen_4 = 0, cc_4 = 0;
    urt_timeout tm_5; int seen_5 = 0, cc_5 = 0;
    urt_timeout tm_6; int seen_6 = 0, cc_6 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t4 start\n");
    dl = deadline(14);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    rc = urt_yield();
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t4 yielded\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    rc = sleep_until(15);
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    out_1:
    rc = urt_timeout_exit(&tm_1);
    if (!cut)
        P("t4 timeout#1 -> ok expired=%d\n", urt_timeout_expired(&tm_1));
    else if ((cut_syn == 1 && urt_task_cancelling(urt_task_current()) <= cc_1) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t4 timeout#1 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t4 timeout#1 -> cancelled\n");
        if (cut_syn == 1) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    P("t4 group#2 enter\n");
    urt_group_enter(&g_2); ngk_2 = 0;
    P("t4 spawn t5\n");
    rc = urt_group_spawn(&g_2, &h[5], t5_fn, NULL);
    if (rc == 0) { made[5] = 1; gk_2[ngk_2++] = 5; }
    else P("t4 spawn t5 -> %s\n", rc == -ESHUTDOWN ? "refused" : "error");
    P("t4 spawn t6\n");
    rc = urt_group_spawn(&g_2, &h[6], t6_fn, NULL);
    if (rc == 0) { made[6] = 1; gk_2[ngk_2++] = 6; }
    else P("t4 spawn t6 -> %s\n", rc == -ESHUTDOWN ? "refused" : "error");
    if (made[6]) P("t4 cancel t6 -> %d\n", urt_task_cancel(h[6]));
    else P("t4 cancel t6 -> none\n");
    out_2:
    syn = cut && cut_syn;
    if (syn) urt_task_cancel(urt_task_current());
    rc = urt_group_exit(&g_2, ge, 8, &nge);
    if (syn) urt_task_uncancel(urt_task_current());
    rs = settle(4);
    if (URT_IS_ERROR(rc) && !IS_CUT(rc)) {
        group_failed(4, 2, rc, ge, nge, gk_2);
        cut = 0; cut_syn = 0;
    } else if (cut || IS_CUT(rc)) {
        P("t4 group#2 -> cancelled\n");
        if (!cut) { cut = rc; cut_syn = 0; }
    } else P("t4 group#2 -> ok\n");
    if (!cut && IS_CUT(rs)) { cut = rs; cut_syn = 0; }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    rc = sleep_until(23);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t4 slept\n");
    P("t4 event 1\n");
    dl = deadline(24);
    urt_timeout_enter_at(&tm_3, dl ? dl : URT_NO_TIMEOUT);
    seen_3 = 0; cc_3 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(25);
    nx = newly_expired(3, &tm_3, &seen_3, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_3; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_3; }
    }
    dl = deadline(27);
    urt_timeout_enter_at(&tm_4, dl ? dl : URT_NO_TIMEOUT);
    seen_4 = 0; cc_4 = urt_task_cancelling(urt_task_current());
    rc = urt_yield();
    nx = newly_expired(3, &tm_3, &seen_3, newly_expired(4, &tm_4, &seen_4, 0));
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_4; }
    }
    else P("t4 yielded\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_4; }
    }
    out_4:
    rc = urt_timeout_exit(&tm_4);
    if (!cut)
        P("t4 timeout#4 -> ok expired=%d\n", urt_timeout_expired(&tm_4));
    else if ((cut_syn == 4 && urt_task_cancelling(urt_task_current()) <= cc_4) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t4 timeout#4 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t4 timeout#4 -> cancelled\n");
        if (cut_syn == 4) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) goto out_3;
    nx = newly_expired(3, &tm_3, &seen_3, 0);
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_3; }
    }
    rc = sleep_until(29);
    nx = newly_expired(3, &tm_3, &seen_3, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_3; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_3; }
    }
    P("t4 event 2\n");
    out_3:
    rc = urt_timeout_exit(&tm_3);
    if (!cut)
        P("t4 timeout#3 -> ok expired=%d\n", urt_timeout_expired(&tm_3));
    else if ((cut_syn == 3 && urt_task_cancelling(urt_task_current()) <= cc_3) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t4 timeout#3 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t4 timeout#3 -> cancelled\n");
        if (cut_syn == 3) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    dl = deadline(46);
    urt_timeout_enter_at(&tm_5, dl ? dl : URT_NO_TIMEOUT);
    seen_5 = 0; cc_5 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(36);
    nx = newly_expired(5, &tm_5, &seen_5, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_5; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_5; }
    }
    dl = deadline(47);
    urt_timeout_enter_at(&tm_6, dl ? dl : URT_NO_TIMEOUT);
    seen_6 = 0; cc_6 = urt_task_cancelling(urt_task_current());
    rc = urt_yield();
    nx = newly_expired(5, &tm_5, &seen_5, newly_expired(6, &tm_6, &seen_6, 0));
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_6; }
    }
    else P("t4 yielded\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_6; }
    }
    rc = sleep_until(38);
    nx = newly_expired(5, &tm_5, &seen_5, newly_expired(6, &tm_6, &seen_6, 0));
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_6; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_6; }
    }
    rc = urt_yield();
    nx = newly_expired(5, &tm_5, &seen_5, newly_expired(6, &tm_6, &seen_6, 0));
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_6; }
    }
    else P("t4 yielded\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_6; }
    }
    out_6:
    rc = urt_timeout_exit(&tm_6);
    if (!cut)
        P("t4 timeout#6 -> ok expired=%d\n", urt_timeout_expired(&tm_6));
    else if ((cut_syn == 6 && urt_task_cancelling(urt_task_current()) <= cc_6) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t4 timeout#6 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t4 timeout#6 -> cancelled\n");
        if (cut_syn == 6) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) goto out_5;
    nx = newly_expired(5, &tm_5, &seen_5, 0);
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_5; }
    }
    out_5:
    rc = urt_timeout_exit(&tm_5);
    if (!cut)
        P("t4 timeout#5 -> ok expired=%d\n", urt_timeout_expired(&tm_5));
    else if ((cut_syn == 5 && urt_task_cancelling(urt_task_current()) <= cc_5) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t4 timeout#5 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t4 timeout#5 -> cancelled\n");
        if (cut_syn == 5) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    nx = 0;
    rc = sleep_until(63);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t4 slept\n");
    rc = sleep_until(66);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t4 slept\n");
    cleanup(4, kids, nk, 0);
    P("t4 return 82\n");
    return 82;
}

static intptr_t t5_fn(void *arg)
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
    P("t5 start\n");
    rc = sleep_until(2);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 cancelled\n");
        cleanup(5, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t5 slept\n");
    P("t5 event 1\n");
    rc = sleep_until(31);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 cancelled\n");
        cleanup(5, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t5 slept\n");
    rc = sleep_until(33);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 cancelled\n");
        cleanup(5, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t5 slept\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 cancelled\n");
        cleanup(5, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t5 yielded\n");
    rc = sleep_until(51);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 cancelled\n");
        cleanup(5, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t5 slept\n");
    cleanup(5, kids, nk, 0);
    P("t5 return 67\n");
    return 67;
}

static intptr_t t6_fn(void *arg)
{
    (void)arg;
    int kids[1], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
    intptr_t v = 0;
    uint64_t dl = 0;
    void *it = NULL;
    size_t nge = 0;
    urt_group_error ge[8];
    char b[256];
    urt_timeout tm_1; int seen_1 = 0, cc_1 = 0;
    urt_timeout tm_2; int seen_2 = 0, cc_2 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t6 start\n");
    rc = sleep_until(1);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t6 caught cancel\n");
    }
    else P("t6 slept\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t6 caught cancel\n");
    }
    else P("t6 yielded\n");
    dl = deadline(13);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    dl = deadline(7);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(4);
    nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
    if (IS_CUT(rc)) {
        P("t6 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t6 slept\n");
    if (nx) {
        P("t6 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    rc = sleep_until(35);
    nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
    if (IS_CUT(rc)) {
        P("t6 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t6 slept\n");
    if (nx) {
        P("t6 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    rc = sleep_until(52);
    nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
    if (IS_CUT(rc)) {
        P("t6 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t6 slept\n");
    if (nx) {
        P("t6 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    out_2:
    rc = urt_timeout_exit(&tm_2);
    if (!cut)
        P("t6 timeout#2 -> ok expired=%d\n", urt_timeout_expired(&tm_2));
    else if ((cut_syn == 2 && urt_task_cancelling(urt_task_current()) <= cc_2) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t6 timeout#2 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t6 timeout#2 -> cancelled\n");
        if (cut_syn == 2) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) goto out_1;
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (nx) {
        P("t6 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    rc = urt_yield();
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (IS_CUT(rc)) {
        P("t6 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t6 yielded\n");
    if (nx) {
        P("t6 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    out_1:
    rc = urt_timeout_exit(&tm_1);
    if (!cut)
        P("t6 timeout#1 -> ok expired=%d\n", urt_timeout_expired(&tm_1));
    else if ((cut_syn == 1 && urt_task_cancelling(urt_task_current()) <= cc_1) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t6 timeout#1 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t6 timeout#1 -> cancelled\n");
        if (cut_syn == 1) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t6 caught cancel\n");
    }
    nx = 0;
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t6 caught cancel\n");
    }
    else P("t6 yielded\n");
    rc = sleep_until(56);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t6 caught cancel\n");
    }
    else P("t6 slept\n");
    rc = sleep_until(58);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t6 caught cancel\n");
    }
    else P("t6 slept\n");
    P("t6 event 1\n");
    P("t6 event 2\n");
    rc = sleep_until(70);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t6 caught cancel\n");
    }
    else P("t6 slept\n");
    cleanup(6, kids, nk, 0);
    while (settle(6) == URT_ECANCELED)
        P("t6 caught cancel\n");
    P("t6 fail 9\n");
    return -9;
}


int difftest_prog_c_group_failure_keeps_outside_cancel(void)
{
    intptr_t v = 0;
    memset(h, 0, sizeof h);
    memset(made, 0, sizeof made);
    for (int i = 0; i < 0; i++)
        urt_event_init(&ev[i]);
    urt_queue_init(&qu[0], URT_QUEUE_FIFO, 2);
    urt_queue_init(&qu[1], URT_QUEUE_FIFO, 1);
    int rc = urt_run(t0_fn, NULL, &v);
    for (int i = 0; i < 2; i++)
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
    return difftest_prog_c_group_failure_keeps_outside_cancel() ? 1 : 0;
}
#endif

