/* difftest program c_deadline_while_gather_cancel_in_flight (seed 122, differed until a second deadline cancelled the gather children again; settle_gather=1 settle_group=1 py_wait_for=0 without=-).
 * Replay: cc -std=gnu11 -Iinclude THIS.c build/liburt.a -luring -lpthread && ./a.out
 * (see tests/difftest/README). */
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


static intptr_t t5_fn(void *arg);
static intptr_t t4_fn(void *arg);
static intptr_t t3_fn(void *arg);
static intptr_t t2_fn(void *arg);
static intptr_t t1_fn(void *arg);
static intptr_t t0_fn(void *arg);

static intptr_t t0_fn(void *arg)
{
    (void)arg;
    int kids[2], nk = 0, rc = 0, rs = 0, cut = 0, cut_syn = 0, nx = 0, iscut = 0, syn = 0;
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
    t0 = urt_now();
    P("t0 start\n");
    P("t0 create t1\n");
    urt_task_create(&h[1], t1_fn, NULL);
    made[1] = 1;
    kids[nk++] = 1;
    dl = deadline(18);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    dl = deadline(1);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    {
        urt_task g[1] = {h[1]};
        intptr_t vals[1] = {0}; int errs[1] = {0};
        rc = urt_gather(g, 1, URT_RETURN_EXCEPTIONS, vals, errs);
        rs = settle(0);
        nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
        iscut = IS_CUT(rc) || IS_CUT(rs);
        if (rc == 0) {
            int o = snprintf(b, sizeof b, "[");
            for (int i = 0; i < 1; i++) {
                const char *sep = i ? ", " : "";
                if (errs[i] == URT_ECANCELED) o += snprintf(b + o, sizeof b - o, "%scancelled", sep);
                else if (errs[i]) o += snprintf(b + o, sizeof b - o, "%serr %d", sep, -errs[i]);
                else o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);
            }
            snprintf(b + o, sizeof b - o, "]");
        } else outcome(b, sizeof b, rc, 0, IS_CUT(rc));
        P("t0 gather_rex t1 -> %s\n", b);
    }
    if (iscut) {
        rc = IS_CUT(rc) ? rc : rs;
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    {
        urt_task g[1] = {h[1]};
        intptr_t vals[1] = {0}; int errs[1] = {0};
        rc = urt_gather(g, 1, 0, vals, errs);
        rs = settle(0);
        nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
        iscut = IS_CUT(rc) || IS_CUT(rs);
        if (rc == 0) {
            int o = snprintf(b, sizeof b, "[");
            for (int i = 0; i < 1; i++) {
                const char *sep = i ? ", " : "";
                o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);
            }
            snprintf(b + o, sizeof b - o, "]");
        } else outcome(b, sizeof b, rc, 0, IS_CUT(rc));
        P("t0 gather t1 -> %s\n", b);
    }
    if (iscut) {
        rc = IS_CUT(rc) ? rc : rs;
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    {
        urt_task g[1] = {h[1]};
        intptr_t vals[1] = {0}; int errs[1] = {0};
        rc = urt_gather(g, 1, URT_RETURN_EXCEPTIONS, vals, errs);
        rs = settle(0);
        nx = newly_expired(1, &tm_1, &seen_1, newly_expired(2, &tm_2, &seen_2, 0));
        iscut = IS_CUT(rc) || IS_CUT(rs);
        if (rc == 0) {
            int o = snprintf(b, sizeof b, "[");
            for (int i = 0; i < 1; i++) {
                const char *sep = i ? ", " : "";
                if (errs[i] == URT_ECANCELED) o += snprintf(b + o, sizeof b - o, "%scancelled", sep);
                else if (errs[i]) o += snprintf(b + o, sizeof b - o, "%serr %d", sep, -errs[i]);
                else o += snprintf(b + o, sizeof b - o, "%s%ld", sep, (long)vals[i]);
            }
            snprintf(b + o, sizeof b - o, "]");
        } else outcome(b, sizeof b, rc, 0, IS_CUT(rc));
        P("t0 gather_rex t1 -> %s\n", b);
    }
    if (iscut) {
        rc = IS_CUT(rc) ? rc : rs;
        { cut = rc; cut_syn = 0; goto out_2; }
    }
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
    nx = newly_expired(1, &tm_1, &seen_1, 0);
    if (nx) {
        P("t0 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_1; }
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
    {
        urt_task g[1] = {h[1]};
        intptr_t vals[1] = {0}; int errs[1] = {0};
        rc = urt_gather(g, 1, 0, vals, errs);
        rs = settle(0);
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
        P("t0 gather t1 -> %s\n", b);
    }
    if (iscut) {
        rc = IS_CUT(rc) ? rc : rs;
        {
            P("t0 caught cancel\n");
        }
    }
    dl = deadline(19); v = 0;
    rc = urt_wait_for(h[1], dl ? until(dl) : URT_NO_TIMEOUT, &v);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    outcome(b, sizeof b, rc, v, iscut);
    P("t0 wait_for t1 -> %s\n", b);
    if (iscut)
        {
            P("t0 caught cancel\n");
        }
    P("t0 event 1\n");
    P("t0 create t3\n");
    urt_task_create(&h[3], t3_fn, NULL);
    made[3] = 1;
    kids[nk++] = 3;
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
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t1 caught cancel\n");
    }
    else P("t1 yielded\n");
    P("t1 create t2\n");
    urt_task_create(&h[2], t2_fn, NULL);
    made[2] = 1;
    kids[nk++] = 2;
    v = 0; rc = urt_task_await(h[2], &v);
    nx = 0;
    iscut = IS_CUT(rc);
    outcome(b, sizeof b, rc, v, iscut);
    P("t1 awaited t2 -> %s\n", b);
    if (iscut)
        {
            P("t1 caught cancel\n");
        }
    dl = deadline(7); v = 0;
    rc = urt_wait_for(h[2], dl ? until(dl) : URT_NO_TIMEOUT, &v);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    outcome(b, sizeof b, rc, v, iscut);
    P("t1 wait_for t2 -> %s\n", b);
    if (iscut)
        {
            P("t1 caught cancel\n");
        }
    P("t1 create t4\n");
    urt_task_create(&h[4], t4_fn, NULL);
    made[4] = 1;
    kids[nk++] = 4;
    dl = deadline(43);
    rc = urt_event_wait_timeout(&ev[0], dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t1 ev0 wait -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t1 caught cancel\n");
        }
    dl = deadline(52);
    rc = urt_event_wait_timeout(&ev[0], dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t1 ev0 wait -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t1 caught cancel\n");
        }
    cleanup(1, kids, nk, 0);
    P("t1 return 77\n");
    return 77;
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
    urt_timeout tm_3; int seen_3 = 0, cc_3 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t2 start\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 caught cancel\n");
    }
    else P("t2 yielded\n");
    rc = sleep_until(13);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 caught cancel\n");
    }
    else P("t2 slept\n");
    P("t2 event 1\n");
    rc = sleep_until(21);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 caught cancel\n");
    }
    else P("t2 slept\n");
    dl = deadline(23);
    urt_timeout_enter_at(&tm_1, dl ? dl : URT_NO_TIMEOUT);
    seen_1 = 0; cc_1 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(24);
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
    rc = sleep_until(25);
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
    P("t2 event 2\n");
    rc = sleep_until(27);
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
    P("t2 event 3\n");
    rc = sleep_until(35);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t2 caught cancel\n");
    }
    else P("t2 slept\n");
    dl = deadline(38);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(40);
    nx = newly_expired(2, &tm_2, &seen_2, 0);
    if (IS_CUT(rc)) {
        P("t2 cut\n");
        { cut = rc; cut_syn = 0; goto out_2; }
    }
    else P("t2 slept\n");
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_2; }
    }
    dl = deadline(41);
    urt_timeout_enter_at(&tm_3, dl ? dl : URT_NO_TIMEOUT);
    seen_3 = 0; cc_3 = urt_task_cancelling(urt_task_current());
    rc = urt_yield();
    nx = newly_expired(2, &tm_2, &seen_2, newly_expired(3, &tm_3, &seen_3, 0));
    if (IS_CUT(rc)) {
        P("t2 cut\n");
        { cut = rc; cut_syn = 0; goto out_3; }
    }
    else P("t2 yielded\n");
    if (nx) {
        P("t2 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_3; }
    }
    out_3:
    rc = urt_timeout_exit(&tm_3);
    if (!cut)
        P("t2 timeout#3 -> ok expired=%d\n", urt_timeout_expired(&tm_3));
    else if ((cut_syn == 3 && urt_task_cancelling(urt_task_current()) <= cc_3) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t2 timeout#3 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t2 timeout#3 -> cancelled\n");
        if (cut_syn == 3) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) goto out_2;
    nx = newly_expired(2, &tm_2, &seen_2, 0);
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
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t2 caught cancel\n");
    }
    nx = 0;
    cleanup(2, kids, nk, 0);
    P("t2 return 60\n");
    return 60;
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
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t3 start\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 caught cancel\n");
    }
    else P("t3 yielded\n");
    rc = sleep_until(9);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t3 caught cancel\n");
    }
    else P("t3 slept\n");
    dl = deadline(31);
    rc = urt_event_wait_timeout(&ev[0], dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t3 ev0 wait -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t3 caught cancel\n");
        }
    P("t3 ev0 set\n"); urt_event_set(&ev[0]);
    dl = deadline(45);
    rc = urt_event_wait_timeout(&ev[0], dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t3 ev0 wait -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t3 caught cancel\n");
        }
    P("t3 ev0 is_set -> %d\n", urt_event_is_set(&ev[0]));
    cleanup(3, kids, nk, 0);
    P("t3 return 38\n");
    return 38;
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
    urt_group g_1; int gk_1[8], ngk_1 = 0;
    urt_timeout tm_2; int seen_2 = 0, cc_2 = 0;
    urt_timeout tm_3; int seen_3 = 0, cc_3 = 0;
    urt_timeout tm_4; int seen_4 = 0, cc_4 = 0;
    urt_timeout tm_5; int seen_5 = 0, cc_5 = 0;
    urt_timeout tm_6; int seen_6 = 0, cc_6 = 0;
    (void)rc; (void)rs; (void)v; (void)b; (void)kids; (void)cut_syn; (void)nx;
    (void)iscut; (void)dl; (void)it; (void)nge; (void)ge; (void)syn;
    P("t4 start\n");
    P("t4 group#1 enter\n");
    urt_group_enter(&g_1); ngk_1 = 0;
    dl = deadline(3);
    urt_timeout_enter_at(&tm_2, dl ? dl : URT_NO_TIMEOUT);
    seen_2 = 0; cc_2 = urt_task_cancelling(urt_task_current());
    P("t4 event 1\n");
    out_2:
    rc = urt_timeout_exit(&tm_2);
    if (!cut)
        P("t4 timeout#2 -> ok expired=%d\n", urt_timeout_expired(&tm_2));
    else if ((cut_syn == 2 && urt_task_cancelling(urt_task_current()) <= cc_2) || (!cut_syn && rc == URT_ETIMEDOUT)) {
        P("t4 timeout#2 -> timeout\n");
        cut = 0; cut_syn = 0;
    } else {
        P("t4 timeout#2 -> cancelled\n");
        if (cut_syn == 2) { cut = URT_ECANCELED; cut_syn = 0; }
    }
    if (cut) goto out_1;
    nx = 0;
    P("t4 spawn t5\n");
    rc = urt_group_spawn(&g_1, &h[5], t5_fn, NULL);
    if (rc == 0) { made[5] = 1; gk_1[ngk_1++] = 5; }
    else P("t4 spawn t5 -> %s\n", rc == -ESHUTDOWN ? "refused" : "error");
    rc = urt_yield();
    nx = 0;
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_1; }
    }
    else P("t4 yielded\n");
    out_1:
    syn = cut && cut_syn;
    if (syn) urt_task_cancel(urt_task_current());
    rc = urt_group_exit(&g_1, ge, 8, &nge);
    if (syn) urt_task_uncancel(urt_task_current());
    rs = settle(4);
    if (URT_IS_ERROR(rc) && !IS_CUT(rc)) {
        group_failed(4, 1, rc, ge, nge, gk_1);
        cut = 0; cut_syn = 0;
    } else if (cut || IS_CUT(rc)) {
        P("t4 group#1 -> cancelled\n");
        if (!cut) { cut = rc; cut_syn = 0; }
    } else P("t4 group#1 -> ok\n");
    if (!cut && IS_CUT(rs)) { cut = rs; cut_syn = 0; }
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t4 caught cancel\n");
    }
    nx = 0;
    rc = sleep_until(6);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 caught cancel\n");
    }
    else P("t4 slept\n");
    rc = sleep_until(8);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 caught cancel\n");
    }
    else P("t4 slept\n");
    dl = deadline(11);
    urt_timeout_enter_at(&tm_3, dl ? dl : URT_NO_TIMEOUT);
    seen_3 = 0; cc_3 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(12);
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
        P("t4 caught cancel\n");
    }
    nx = 0;
    dl = deadline(28);
    urt_timeout_enter_at(&tm_4, dl ? dl : URT_NO_TIMEOUT);
    seen_4 = 0; cc_4 = urt_task_cancelling(urt_task_current());
    rc = sleep_until(15);
    nx = newly_expired(4, &tm_4, &seen_4, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_4; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_4; }
    }
    rc = sleep_until(20);
    nx = newly_expired(4, &tm_4, &seen_4, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_4; }
    }
    else P("t4 slept\n");
    if (nx) {
        P("t4 deadline passed\n");
        { cut = URT_ETIMEDOUT; cut_syn = nx; goto out_4; }
    }
    rc = sleep_until(34);
    nx = newly_expired(4, &tm_4, &seen_4, 0);
    if (IS_CUT(rc)) {
        P("t4 cut\n");
        { cut = rc; cut_syn = 0; goto out_4; }
    }
    else P("t4 slept\n");
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
    if (cut) {
        cut = 0; cut_syn = 0;
        P("t4 caught cancel\n");
    }
    nx = 0;
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 caught cancel\n");
    }
    else P("t4 yielded\n");
    rc = urt_yield();
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t4 caught cancel\n");
    }
    else P("t4 yielded\n");
    dl = deadline(50);
    urt_timeout_enter_at(&tm_5, dl ? dl : URT_NO_TIMEOUT);
    seen_5 = 0; cc_5 = urt_task_cancelling(urt_task_current());
    dl = deadline(51);
    urt_timeout_enter_at(&tm_6, dl ? dl : URT_NO_TIMEOUT);
    seen_6 = 0; cc_6 = urt_task_cancelling(urt_task_current());
    P("t4 event 2\n");
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
    rc = sleep_until(36);
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
        P("t4 caught cancel\n");
    }
    nx = 0;
    cleanup(4, kids, nk, 0);
    P("t4 return 78\n");
    return 78;
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
    dl = deadline(5);
    rc = urt_event_wait_timeout(&ev[0], dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t5 ev0 wait -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t5 caught cancel\n");
        }
    rc = sleep_until(30);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 caught cancel\n");
    }
    else P("t5 slept\n");
    P("t5 event 1\n");
    rc = sleep_until(37);
    nx = 0;
    if (rc == URT_ECANCELED) {
        P("t5 caught cancel\n");
    }
    else P("t5 slept\n");
    dl = deadline(42);
    rc = urt_event_wait_timeout(&ev[0], dl ? until(dl) : 0);
    nx = 0;
    iscut = (rc == URT_ECANCELED || (rc == URT_ETIMEDOUT && nx));
    P("t5 ev0 wait -> %s\n", word(rc, iscut));
    if (iscut)
        {
            P("t5 caught cancel\n");
        }
    cleanup(5, kids, nk, 0);
    P("t5 return 85\n");
    return 85;
}


int difftest_prog_c_deadline_while_gather_cancel_in_flight(void)
{
    intptr_t v = 0;
    memset(h, 0, sizeof h);
    memset(made, 0, sizeof made);
    for (int i = 0; i < 1; i++)
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
    return difftest_prog_c_deadline_while_gather_cancel_in_flight() ? 1 : 0;
}
#endif

