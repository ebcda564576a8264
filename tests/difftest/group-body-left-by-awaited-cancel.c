/* difftest program c_group_body_left_by_awaited_cancel (seed 101786 of make stress, differed until the C side aborted the group with urt_group_cancel; settle_gather=1 settle_group=1 py_wait_for=0 without=-).
 * Replay: cc -std=gnu11 -Iinclude THIS.c build/liburt.a -luring -lpthread && ./a.out
 * (see tests/difftest/README). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "urt.h"

#define UNIT (24ull * URT_NS_PER_MS)
#define NTASKS 5
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


static intptr_t t4_fn(void *arg);
static intptr_t t3_fn(void *arg);
static intptr_t t2_fn(void *arg);
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
    urt_group g_1; int gk_1[8], ngk_1 = 0;
    urt_timeout tm_2; int seen_2 = 0, cc_2 = 0;
    urt_timeout tm_3; int seen_3 = 0, cc_3 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge;
    t0 = urt_now();
    P("t0 start\n");
    rc = sleep_until(5);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t0 caught cancel\n");
    }
    else P("t0 slept\n");
    P("t0 group#1 enter\n");
    urt_group_enter(&g_1); ngk_1 = 0;
    P("t0 spawn t3\n");
    rc = urt_group_spawn(&g_1, &h[3], t3_fn, NULL);
    if (rc == 0) { made[3] = 1; gk_1[ngk_1++] = 3; }
    else P("t0 spawn t3 -> %s\n", rc == -ESHUTDOWN ? "refused" : "error");
    dl = deadline(17);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    P("t0 create t1\n");
    urt_task_create(&h[1], t1_fn, NULL);
    made[1] = 1;
    kids[nk++] = 1;
    dl = deadline(8); v = 0;
    rc = urt_wait_for(h[1], dl ? until(dl) : URT_NO_TIMEOUT, &v);
    nx = newly_expired(2, &tm_2, &seen_2, 0);
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    outcome(b, sizeof b, rc, v, iscut);
    P("t0 wait_for t1 -> %s\n", b);
    if (iscut)
        { cut = rc; cut_syn = 0; goto out_2; }
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
    if (cut) urt_group_cancel(&g_1);
    rc = urt_group_exit(&g_1, ge, 8, &nge);
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
    dl = deadline(22);
    urt_timeout_enter_at(&tm_3, dl ? dl : URT_NO_TIMEOUT);
    seen_3 = 0; cc_3 = urt_task_cancelling(urt_task_current());
    P("t0 event 1\n");
    rc = urt_yield();
    nx = newly_expired(3, &tm_3, &seen_3, 0);
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_3; }
    }
    else P("t0 yielded\n");
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_3; }
    }
    rc = urt_yield();
    nx = newly_expired(3, &tm_3, &seen_3, 0);
    if (IS_CUT(rc)) {
        P("t0 cut\n");
        { cut = rc; cut_syn = 0; goto out_3; }
    }
    else P("t0 yielded\n");
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_3; }
    }
    out_3:
    rc = urt_timeout_exit(&tm_3);
    if (!cut)
        P("t0 timeout#3 -> ok expired=%d\n", urt_timeout_expired(&tm_3));
    else if ((cut_syn == 3 && urt_task_cancelling(urt_task_current()) <= cc_3) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t0 timeout#3 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t0 timeout#3 -> cancelled\n");
        if (cut_syn == 3) { cut = URT_ECANCELED; cut_syn = 0; }
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
    P("t1 create t2\n");
    urt_task_create(&h[2], t2_fn, NULL);
    made[2] = 1;
    kids[nk++] = 2;
    if (made[2]) P("t1 cancel t2 -> %d\n", urt_task_cancel(h[2]));
    else P("t1 cancel t2 -> none\n");
    dl = deadline(18); v = 0;
    rc = urt_wait_for(h[2], dl ? until(dl) : URT_NO_TIMEOUT, &v);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    outcome(b, sizeof b, rc, v, iscut);
    P("t1 wait_for t2 -> %s\n", b);
    if (iscut)
        {
            P("t1 cancelled\n");
            cleanup(1, kids, nk, 1);
            return URT_ECANCELED;
        }
    cleanup(1, kids, nk, 0);
    P("t1 return 44\n");
    return 44;
}

static intptr_t t2_fn(void *arg)
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
    urt_timeout tm_2; int seen_2 = 0, cc_2 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge;
    P("t2 start\n");
    P("t2 event 1\n");
    dl = deadline(15);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(2);
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
    dl = deadline(7);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(11);
    nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
    if (IS_CUT(rc)) {
        P("t2 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t2 slept\n");
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
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
    if (cut) goto out_1;
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
    }
    P("t2 event 2\n");
    rc = sleep_until(12);
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
        P("t2 caught cancel\n");
    }
    nx = 0;
    rc = sleep_until(16);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 caught cancel\n");
    }
    else P("t2 slept\n");
    P("t2 event 3\n");
    cleanup(2, kids, nk, 0);
    P("t2 fail 14\n");
    return -14;
}

static intptr_t t3_fn(void *arg)
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
    P("t3 start\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 cancelled\n");
        cleanup(3, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t3 yielded\n");
    P("t3 create t4\n");
    urt_task_create(&h[4], t4_fn, NULL);
    made[4] = 1;
    kids[nk++] = 4;
    v = 0; rc = urt_task_await(h[4], &v);
    nx = 0;
    iscut = IS_CUT(rc);
    outcome(b, sizeof b, rc, v, iscut);
    P("t3 awaited t4 -> %s\n", b);
    if (iscut)
        {
            P("t3 cancelled\n");
            cleanup(3, kids, nk, 1);
            return URT_ECANCELED;
        }
    P("t3 event 1\n");
    {
        urt_task g[1] = {h[4]};
        intptr_t vals[1] = {0}; int errs[1] = {0};
        rc = urt_gather(g, 1, 0, vals, errs);
        rs = settle(3);
        nx = 0;
        iscut = IS_CUT(rc) || IS_CUT(rs);
        if (rc == 0) {
            int o = snprintf(b, sizeof b, "[");
            for (int i = 0; i < 1; i++) {
                const char *sep = i ? ", " : "";
                o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);
            }
            snprintf(b + o, sizeof b - o, "]");
        } else outcome(b, sizeof b, rc, 0, IS_CUT(rc));
        P("t3 gather t4 -> %s\n", b);
    }
    if (iscut) {
        rc = IS_CUT(rc) ? rc : rs;
        {
            P("t3 cancelled\n");
            cleanup(3, kids, nk, 1);
            return URT_ECANCELED;
        }
    }
    rc = sleep_until(13);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 cancelled\n");
        cleanup(3, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t3 slept\n");
    P("t3 event 2\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 cancelled\n");
        cleanup(3, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t3 yielded\n");
    cleanup(3, kids, nk, 0);
    if (settle(3) == URT_ECANCELED) {
        P("t3 cancelled\n");
        cleanup(3, kids, nk, 1);
        return URT_ECANCELED;
    }
    P("t3 fail 2\n");
    return -2;
}

static intptr_t t4_fn(void *arg)
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
    P("t4 start\n");
    rc = sleep_until(3);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 cancelled\n");
        cleanup(4, kids, nk, 1);
        return URT_ECANCELED;
    }
    else P("t4 slept\n");
    dl = deadline(20);
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
    cleanup(4, kids, nk, 0);
    P("t4 fail 31\n");
    return -31;
}


int difftest_prog_c_group_body_left_by_awaited_cancel(void)
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
    return difftest_prog_c_group_body_left_by_awaited_cancel() ? 1 : 0;
}
#endif

