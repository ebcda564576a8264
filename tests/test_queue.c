/*
 * Queues (urt.h "Queues"; SEMANTICS 4): FIFO, LIFO and priority order, a
 * bounded queue's put waiting while it is full and get while it is empty,
 * hand-off to waiters in the order they came, cancelled and timed-out
 * waiters taking nothing with them, task_done/join, 3.13's shutdown, and
 * every documented error code.
 *
 * Tasks record what they see with trace(); the test compares the whole
 * trace after urt_run() returns.  Checks inside tasks use EXPECT*, never
 * cmocka's asserts (see test_gather.c).
 */
#include <errno.h>
#include <stdbool.h>

#include "harness.h"

/* Items are strings, so that traces read as what moved. */
#define I(s) ((void *)(s))

static const char *code(int rc)
{
    static char buf[8][16];
    static unsigned next;
    switch (rc) {
    case 0: return "0";
    case -EAGAIN: return "EAGAIN";
    case -ESHUTDOWN: return "ESHUTDOWN";
    case -EINVAL: return "EINVAL";
    case -EOVERFLOW: return "EOVERFLOW";
    case -EBUSY: return "EBUSY";
    case -ENOMEM: return "ENOMEM";
    case URT_ECANCELED: return "ECANCELED";
    case URT_ETIMEDOUT: return "ETIMEDOUT";
    case URT_ENOLOOP: return "ENOLOOP";
    }
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%d", rc);
    return b;
}

static uint64_t ms_since(uint64_t t0)
{
    return (urt_now() - t0) / URT_NS_PER_MS;
}

/* ---- waiting tasks ---- */

/* A task in get (timeout_ns: get_timeout, 0: get).  Records "<name> wait"
 * before and "<name> got <item>" or "<name> <code>" after; with then_yield,
 * also what its next suspension point returns ("<name> next <code>"). */
struct getter {
    urt_queue *q;
    const char *name;
    uint64_t timeout_ns;
    bool then_yield;
    int rc;
    void *item;
    uint64_t called, returned;
};

static intptr_t getter_fn(void *arg)
{
    struct getter *g = arg;
    trace("%s wait", g->name);
    g->called = urt_now();
    g->rc = g->timeout_ns ? urt_queue_get_timeout(g->q, &g->item, g->timeout_ns)
                          : urt_queue_get(g->q, &g->item);
    g->returned = urt_now();
    if (g->rc == 0)
        trace("%s got %s", g->name, (const char *)g->item);
    else
        trace("%s %s", g->name, code(g->rc));
    if (g->then_yield) trace("%s next %s", g->name, code(urt_yield()));
    return 0;
}

/* A task in put (or put_timeout); records "<name> put <item>" before and
 * "<name> <code>" after. */
struct putter {
    urt_queue *q;
    const char *name;
    void *item;
    uint64_t timeout_ns;
    int rc;
    uint64_t called, returned;
};

static intptr_t putter_fn(void *arg)
{
    struct putter *p = arg;
    trace("%s put %s", p->name, (const char *)p->item);
    p->called = urt_now();
    p->rc = p->timeout_ns ? urt_queue_put_timeout(p->q, p->item, p->timeout_ns)
                          : urt_queue_put(p->q, p->item);
    p->returned = urt_now();
    trace("%s %s", p->name, code(p->rc));
    return 0;
}

/* A task in join; records "<name> join" and "<name> joined <code>". */
struct joiner {
    urt_queue *q;
    const char *name;
    int rc;
};

static intptr_t joiner_fn(void *arg)
{
    struct joiner *j = arg;
    trace("%s join", j->name);
    j->rc = urt_queue_join(j->q);
    trace("%s joined %s", j->name, code(j->rc));
    return 0;
}

static intptr_t rec(void *arg)
{
    trace("%s ran", (const char *)arg);
    return 0;
}

static void await_ok(urt_task t)
{
    EXPECT_EQ(await_within(t, 5000, NULL), 0);
}

/* Gets every item left without waiting and records "left <item>"... */
static void trace_rest(urt_queue *q)
{
    void *item;
    int rc;
    while ((rc = urt_queue_try_get(q, &item)) == 0) trace("left %s", (const char *)item);
    trace("then %s", code(rc));
}

/* ---- order ---- */

static intptr_t main_kind_order(void *arg)
{
    int kind = (int)(intptr_t)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, kind, 0), 0);
    static const char *items[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) EXPECT_EQ(urt_queue_put(&q, I(items[i])), 0);
    EXPECT_EQ(urt_queue_size(&q), 5);
    trace_rest(&q);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_fifo_gives_items_in_put_order(void **state)
{
    (void)state;
    run_main(main_kind_order, (void *)(intptr_t)URT_QUEUE_FIFO);
    assert_trace("left a", "left b", "left c", "left d", "left e", "then EAGAIN");
}

static void test_queue_lifo_gives_newest_first(void **state)
{
    (void)state;
    run_main(main_kind_order, (void *)(intptr_t)URT_QUEUE_LIFO);
    assert_trace("left e", "left d", "left c", "left b", "left a", "then EAGAIN");
}

static intptr_t main_priority_order(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_PRIORITY, 0), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, 3, I("a3")), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, 1, I("b1")), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, 2, I("c2")), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, 1, I("d1")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("e0")), 0); /* plain put: priority 0 */
    EXPECT_EQ(urt_queue_put_prio(&q, 3, I("f3")), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, INT64_MIN, I("gmin")), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, INT64_MAX, I("hmax")), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, 1, I("i1")), 0);
    EXPECT_EQ(urt_queue_try_put_prio(&q, 0, I("j0")), 0);
    EXPECT_EQ(urt_queue_put_prio_timeout(&q, 3, I("k3"), URT_NS_PER_S), 0);
    trace_rest(&q);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* Lowest priority first; among equal priorities, put order (asyncio's
 * documented (priority, count, item) recipe). */
static void test_queue_priority_gives_lowest_first_and_fifo_among_equals(void **state)
{
    (void)state;
    run_main(main_priority_order, NULL);
    assert_trace("left gmin", "left e0", "left j0", "left b1", "left d1", "left i1", "left c2",
                 "left a3", "left f3", "left k3", "left hmax", "then EAGAIN");
}

/* The heap against the rule, with gets between the puts: every item comes
 * out after every item of lower priority and after the items of its own
 * priority put before it. */
static intptr_t main_priority_random(void *arg)
{
    (void)arg;
    enum { N = 3000, PRIOS = 37 };
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_PRIORITY, 0), 0);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    /* item = seq * PRIOS + prio, +1 so that no item is NULL. */
    intptr_t last = -1;
    size_t put = 0, got = 0;
    while (got < N) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (put < N && (x % 3 != 0 || urt_queue_empty(&q))) {
            int64_t prio = (int64_t)(x >> 32) % PRIOS;
            EXPECT_EQ(urt_queue_put_prio(&q, prio, (void *)(intptr_t)(put * PRIOS + prio + 1)), 0);
            put++;
            last = -1; /* a new item may be smaller than the last one got */
            continue;
        }
        void *item;
        EXPECT_EQ(urt_queue_try_get(&q, &item), 0);
        intptr_t v = (intptr_t)item - 1;
        /* Between two puts, the items come out in (prio, seq) order. */
        if (last >= 0) {
            intptr_t lp = last % PRIOS, vp = v % PRIOS;
            EXPECT(lp < vp || (lp == vp && last / PRIOS < v / PRIOS));
        }
        last = v;
        got++;
    }
    EXPECT_EQ(urt_queue_size(&q), 0);
    EXPECT_EQ(urt_queue_destroy(&q), 0);

    /* All in, then all out: a total order on (prio, seq). */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_PRIORITY, N), 0);
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t prio = (int64_t)(x >> 32) % PRIOS - PRIOS / 2;
        EXPECT_EQ(urt_queue_put_prio(&q, prio, (void *)(intptr_t)(i * PRIOS + (prio + PRIOS / 2) + 1)), 0);
    }
    EXPECT_EQ(urt_queue_full(&q), 1);
    last = -1;
    for (size_t i = 0; i < N; i++) {
        void *item;
        EXPECT_EQ(urt_queue_get(&q, &item), 0);
        intptr_t v = (intptr_t)item - 1;
        if (last >= 0) {
            intptr_t lp = last % PRIOS, vp = v % PRIOS;
            EXPECT(lp < vp || (lp == vp && last / PRIOS < v / PRIOS));
        }
        last = v;
    }
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_priority_heap_keeps_order_under_mixed_puts_and_gets(void **state)
{
    (void)state;
    run_main(main_priority_random, NULL);
}

/* An unbounded FIFO whose ring has wrapped when it grows keeps its order. */
static intptr_t main_fifo_grows_wrapped(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    intptr_t next_put = 1, next_get = 1;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 10 + round * 13; i++)
            EXPECT_EQ(urt_queue_put(&q, (void *)next_put++), 0);
        for (int i = 0; i < 7 + round * 5; i++) {
            void *item = NULL;
            EXPECT_EQ(urt_queue_get(&q, &item), 0);
            EXPECT_EQ((intptr_t)item, next_get++);
        }
    }
    EXPECT_EQ(urt_queue_size(&q), (size_t)(next_put - next_get));
    void *item;
    while (urt_queue_try_get(&q, &item) == 0) EXPECT_EQ((intptr_t)item, next_get++);
    EXPECT_EQ(next_get, next_put);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_unbounded_fifo_keeps_order_when_growing_wrapped(void **state)
{
    (void)state;
    run_main(main_fifo_grows_wrapped, NULL);
}

/* ---- waiting: bounded put, empty get ---- */

struct bounded {
    urt_queue q;
    uint64_t put_called[3], put_returned[3], got_at[3];
};

static intptr_t bounded_producer(void *arg)
{
    struct bounded *b = arg;
    static const char *items[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        b->put_called[i] = urt_now();
        int rc = urt_queue_put(&b->q, I(items[i]));
        b->put_returned[i] = urt_now();
        trace("put %s %s", items[i], code(rc));
    }
    return 0;
}

static intptr_t bounded_consumer(void *arg)
{
    struct bounded *b = arg;
    EXPECT_EQ(urt_sleep_ms(spaced_ms(20)), 0);
    for (int i = 0; i < 3; i++) {
        void *item = NULL;
        int rc = urt_queue_get(&b->q, &item);
        b->got_at[i] = urt_now();
        trace("get %s %s", code(rc), rc == 0 ? (const char *)item : "-");
        if (i == 0) EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
    }
    return 0;
}

static intptr_t main_bounded(void *arg)
{
    struct bounded *b = arg;
    EXPECT_EQ(urt_queue_init(&b->q, URT_QUEUE_FIFO, 2), 0);
    EXPECT_EQ(urt_queue_maxsize(&b->q), 2);
    urt_task p, c;
    EXPECT_EQ(urt_task_create(&p, bounded_producer, b), 0);
    EXPECT_EQ(urt_task_create(&c, bounded_consumer, b), 0);
    await_ok(p);
    await_ok(c);
    EXPECT_EQ(urt_queue_destroy(&b->q), 0);
    return 0;
}

/* Queue(2): the third put waits until the first get has freed a slot. */
static void test_queue_bounded_put_waits_until_get_frees_a_slot(void **state)
{
    (void)state;
    struct bounded b = {0};
    run_main(main_bounded, &b);
    assert_trace("put a 0", "put b 0", "get 0 a", "put c 0", "get 0 b", "get 0 c");
    assert_true(b.put_returned[2] >= b.got_at[0]);
    assert_true(b.put_returned[2] - b.put_called[2] >= spaced_ms(20) * URT_NS_PER_MS);
    /* The first two did not wait for the consumer. */
    assert_true(b.put_returned[1] < b.got_at[0]);
}

static intptr_t main_get_waits(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    struct getter g = {.q = &q, .name = "G"};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, getter_fn, &g), 0);
    EXPECT_EQ(urt_sleep_ms(spaced_ms(20)), 0);
    uint64_t put_at = urt_now();
    trace("put x %s", code(urt_queue_put(&q, I("x"))));
    await_ok(t);
    EXPECT(g.returned >= put_at);
    EXPECT(g.returned - g.called >= spaced_ms(20) * URT_NS_PER_MS);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_get_waits_while_empty(void **state)
{
    (void)state;
    run_main(main_get_waits, NULL);
    assert_trace("G wait", "put x 0", "G got x");
}

/* ---- hand-off, FIFO among waiters ---- */

static intptr_t main_getters_fifo(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_LIFO, 0), 0);
    struct getter g[3] = {{.q = &q, .name = "G1"}, {.q = &q, .name = "G2"}, {.q = &q, .name = "G3"}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) EXPECT_EQ(urt_task_create(&t[i], getter_fn, &g[i]), 0);
    yields(1);
    /* Each put goes to a waiting getter, not into the queue: a try_get that
     * runs before the woken getters cannot take their items. */
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("b")), 0);
    trace("size %zu", urt_queue_size(&q));
    void *item;
    trace("try_get %s", code(urt_queue_try_get(&q, &item)));
    EXPECT_EQ(urt_queue_put(&q, I("c")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("d")), 0); /* no getter left: stored */
    trace("size %zu", urt_queue_size(&q));
    for (int i = 0; i < 3; i++) await_ok(t[i]);
    trace_rest(&q);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* Waiting getters are handed the items in the order they began to wait (a
 * LIFO queue too: its order is that of items, not of getters). */
static void test_queue_waiting_getters_are_served_in_order_by_hand_off(void **state)
{
    (void)state;
    run_main(main_getters_fifo, NULL);
    assert_trace("G1 wait", "G2 wait", "G3 wait", "size 0", "try_get EAGAIN", "size 1",
                 "G1 got a", "G2 got b", "G3 got c", "left d", "then EAGAIN");
}

static intptr_t main_putters_fifo(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 1), 0);
    EXPECT_EQ(urt_queue_put(&q, I("x")), 0);
    struct putter p[3] = {{.q = &q, .name = "P1", .item = I("b")},
                          {.q = &q, .name = "P2", .item = I("c")},
                          {.q = &q, .name = "P3", .item = I("d")}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) EXPECT_EQ(urt_task_create(&t[i], putter_fn, &p[i]), 0);
    yields(1);
    /* Each get moves the first waiting putter's item in: a try_put that
     * runs before the woken putters cannot take their slot. */
    void *item;
    EXPECT_EQ(urt_queue_get(&q, &item), 0);
    trace("got %s", (const char *)item);
    trace("try_put %s", code(urt_queue_try_put(&q, I("z"))));
    trace("full %d", urt_queue_full(&q));
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ(urt_queue_try_get(&q, &item), 0);
        trace("got %s", (const char *)item);
    }
    trace("size %zu", urt_queue_size(&q));
    for (int i = 0; i < 3; i++) await_ok(t[i]);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_waiting_putters_are_admitted_in_order_by_hand_off(void **state)
{
    (void)state;
    run_main(main_putters_fifo, NULL);
    assert_trace("P1 put b", "P2 put c", "P3 put d", "got x", "try_put EAGAIN", "full 1",
                 "got b", "got c", "got d", "size 0", "P1 0", "P2 0", "P3 0");
}

/* ---- costs no suspension when none is needed ---- */

static intptr_t main_no_suspension(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 2), 0);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, rec, "T"), 0);
    void *item;
    trace("put %s", code(urt_queue_put(&q, I("a"))));
    trace("try_put %s", code(urt_queue_try_put(&q, I("b"))));
    trace("try_put %s", code(urt_queue_try_put(&q, I("c"))));
    trace("get %s", code(urt_queue_get(&q, &item)));
    trace("try_get %s", code(urt_queue_try_get(&q, &item)));
    trace("try_get %s", code(urt_queue_try_get(&q, &item)));
    trace("put_timeout %s", code(urt_queue_put_timeout(&q, I("d"), URT_NS_PER_S)));
    trace("get_timeout %s", code(urt_queue_get_timeout(&q, &item, URT_NS_PER_S)));
    for (int i = 0; i < 3; i++) EXPECT_EQ(urt_queue_task_done(&q), 0);
    trace("join %s", code(urt_queue_join(&q)));
    trace("join_timeout %s", code(urt_queue_join_timeout(&q, 0)));
    /* Even with a cancellation pending: a call that need not wait does not
     * suspend, so it does not deliver it. */
    EXPECT_EQ(urt_task_cancel(urt_task_current()), 1);
    trace("put %s", code(urt_queue_put(&q, I("e"))));
    trace("get %s", code(urt_queue_get(&q, &item)));
    trace("then %s", code(urt_yield()));
    await_ok(t);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* A task created before the calls does not run in between them. */
static void test_queue_calls_that_need_not_wait_do_not_suspend(void **state)
{
    (void)state;
    run_main(main_no_suspension, NULL);
    assert_trace("put 0", "try_put 0", "try_put EAGAIN", "get 0", "try_get 0", "try_get EAGAIN",
                 "put_timeout 0", "get_timeout 0", "join 0", "join_timeout 0", "put 0", "get 0",
                 "T ran", "then ECANCELED");
}

/* ---- try_put / try_get ---- */

static intptr_t main_try_codes(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 2), 0);
    void *item = I("untouched");
    trace("empty %d full %d", urt_queue_empty(&q), urt_queue_full(&q));
    trace("try_get %s %s", code(urt_queue_try_get(&q, &item)), (const char *)item);
    trace("try_put %s", code(urt_queue_try_put(&q, I("a"))));
    trace("empty %d full %d", urt_queue_empty(&q), urt_queue_full(&q));
    trace("try_put %s", code(urt_queue_try_put(&q, I("b"))));
    trace("empty %d full %d size %zu", urt_queue_empty(&q), urt_queue_full(&q),
          urt_queue_size(&q));
    trace("try_put %s", code(urt_queue_try_put(&q, I("c"))));
    trace("size %zu", urt_queue_size(&q));
    trace_rest(&q);
    EXPECT_EQ(urt_queue_destroy(&q), 0);

    /* Unbounded: never full. */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_LIFO, 0), 0);
    for (int i = 0; i < 100; i++) EXPECT_EQ(urt_queue_try_put(&q, I("x")), 0);
    trace("unbounded full %d maxsize %zu size %zu", urt_queue_full(&q), urt_queue_maxsize(&q),
          urt_queue_size(&q));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_try_put_and_try_get_give_eagain(void **state)
{
    (void)state;
    run_main(main_try_codes, NULL);
    assert_trace("empty 1 full 0", "try_get EAGAIN untouched", "try_put 0", "empty 0 full 0",
                 "try_put 0", "empty 0 full 1 size 2", "try_put EAGAIN", "size 2", "left a",
                 "left b", "then EAGAIN", "unbounded full 0 maxsize 0 size 100");
}

/* ---- task_done / join ---- */

struct worker {
    urt_queue *q;
    int n;
};

static intptr_t worker_fn(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        void *item;
        EXPECT_EQ(urt_queue_get(w->q, &item), 0);
        EXPECT_EQ(urt_sleep_ms(spaced_ms(5)), 0);
        trace("done %s", (const char *)item);
        EXPECT_EQ(urt_queue_task_done(w->q), 0);
    }
    return 0;
}

static intptr_t main_join(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("b")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("c")), 0);
    struct worker w = {&q, 3};
    struct joiner j2 = {.q = &q, .name = "J2"};
    urt_task wt, jt;
    EXPECT_EQ(urt_task_create(&wt, worker_fn, &w), 0);
    EXPECT_EQ(urt_task_create(&jt, joiner_fn, &j2), 0);
    uint64_t t0 = urt_now();
    trace("main join");
    trace("main joined %s", code(urt_queue_join(&q)));
    EXPECT(ms_since(t0) >= 3 * spaced_ms(5));
    EXPECT_EQ(urt_queue_size(&q), 0);
    await_ok(wt);
    await_ok(jt);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* join returns only once every item got has been task_done'd, and wakes
 * every joiner in the order they began to wait. */
static void test_queue_join_waits_until_every_item_is_done(void **state)
{
    (void)state;
    run_main(main_join, NULL);
    assert_trace("main join", "J2 join", "done a", "done b", "done c", "main joined 0",
                 "J2 joined 0");
}

static intptr_t main_join_empty(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_PRIORITY, 4), 0);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, rec, "T"), 0);
    trace("join %s", code(urt_queue_join(&q)));
    /* Put, got and done: nothing unfinished again. */
    void *item;
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_get(&q, &item), 0);
    EXPECT_EQ(urt_queue_task_done(&q), 0);
    trace("join %s", code(urt_queue_join(&q)));
    yields(1);
    /* One unfinished: a join that may not wait times out (and suspends). */
    EXPECT_EQ(urt_queue_put(&q, I("b")), 0);
    trace("join_timeout %s", code(urt_queue_join_timeout(&q, 0)));
    await_ok(t);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_join_returns_at_once_when_nothing_is_unfinished(void **state)
{
    (void)state;
    run_main(main_join_empty, NULL);
    assert_trace("join 0", "join 0", "T ran", "join_timeout ETIMEDOUT");
}

static intptr_t main_too_many_task_done(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    trace("fresh %s", code(urt_queue_task_done(&q)));
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("b")), 0);
    /* Put but not got: not yet anyone's to mark done. */
    trace("none got %s", code(urt_queue_task_done(&q)));
    void *item;
    EXPECT_EQ(urt_queue_get(&q, &item), 0);
    trace("one got %s", code(urt_queue_task_done(&q)));
    trace("again %s", code(urt_queue_task_done(&q)));
    EXPECT_EQ(urt_queue_get(&q, &item), 0);
    trace("second %s", code(urt_queue_task_done(&q)));
    trace("third %s", code(urt_queue_task_done(&q)));
    trace("join %s", code(urt_queue_join(&q)));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_task_done_more_than_got_is_eoverflow(void **state)
{
    (void)state;
    run_main(main_too_many_task_done, NULL);
    assert_trace("fresh EOVERFLOW", "none got EOVERFLOW", "one got 0", "again EOVERFLOW",
                 "second 0", "third EOVERFLOW", "join 0");
}

/* ---- timeouts ---- */

static intptr_t main_timeouts(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 1), 0);
    const uint64_t d = spaced_ms(20);
    void *item = I("untouched");

    uint64_t t0 = urt_now();
    trace("get_timeout %s %s", code(urt_queue_get_timeout(&q, &item, d * URT_NS_PER_MS)),
          (const char *)item);
    EXPECT(ms_since(t0) >= d);
    trace("get_timeout 0 %s", code(urt_queue_get_timeout(&q, &item, 0)));

    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    t0 = urt_now();
    trace("put_timeout %s", code(urt_queue_put_timeout(&q, I("b"), d * URT_NS_PER_MS)));
    EXPECT(ms_since(t0) >= d);
    trace("put_timeout 0 %s", code(urt_queue_put_timeout(&q, I("c"), 0)));
    trace("size %zu", urt_queue_size(&q));

    t0 = urt_now();
    trace("join_timeout %s", code(urt_queue_join_timeout(&q, d * URT_NS_PER_MS)));
    EXPECT(ms_since(t0) >= d);
    /* Neither timed-out put put anything, nor counts for join. */
    trace_rest(&q);
    EXPECT_EQ(urt_queue_task_done(&q), 0);
    trace("join %s", code(urt_queue_join(&q)));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_timeouts_expire_and_take_or_put_nothing(void **state)
{
    (void)state;
    run_main(main_timeouts, NULL);
    assert_trace("get_timeout ETIMEDOUT untouched", "get_timeout 0 ETIMEDOUT", "put_timeout ETIMEDOUT",
                 "put_timeout 0 ETIMEDOUT", "size 1", "join_timeout ETIMEDOUT", "left a",
                 "then EAGAIN", "join 0");
}

/* ---- cancellation and timeouts do not lose items ---- */

static intptr_t main_cancelled_getter(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    struct getter g[2] = {{.q = &q, .name = "G1"}, {.q = &q, .name = "G2"}};
    urt_task t[2];
    for (int i = 0; i < 2; i++) EXPECT_EQ(urt_task_create(&t[i], getter_fn, &g[i]), 0);
    yields(1);
    /* Cancelled, and not yet run: the put in the same turn must pass it
     * by, though it is still to resume. */
    EXPECT_EQ(urt_task_cancel(t[0]), 1);
    trace("put x %s", code(urt_queue_put(&q, I("x"))));
    for (int i = 0; i < 2; i++) await_ok(t[i]);
    trace("size %zu", urt_queue_size(&q));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* The lost wake-up: an item handed to a getter that was cancelled would be
 * gone with it.  It goes to the next getter. */
static void test_queue_cancelled_getter_does_not_take_the_item(void **state)
{
    (void)state;
    run_main(main_cancelled_getter, NULL);
    assert_trace("G1 wait", "G2 wait", "put x 0", "G1 ECANCELED", "G2 got x", "size 0");
}

static intptr_t main_timed_out_getter(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    struct getter g1 = {.q = &q, .name = "G1", .timeout_ns = spaced_ms(10) * URT_NS_PER_MS};
    struct getter g2 = {.q = &q, .name = "G2"};
    urt_task t1, t2;
    EXPECT_EQ(urt_task_create(&t1, getter_fn, &g1), 0);
    EXPECT_EQ(urt_task_create(&t2, getter_fn, &g2), 0);
    await_ok(t1);
    EXPECT(g1.returned - g1.called >= spaced_ms(10) * URT_NS_PER_MS);
    trace("put x %s", code(urt_queue_put(&q, I("x"))));
    trace("put y %s", code(urt_queue_put(&q, I("y"))));
    await_ok(t2);
    trace_rest(&q);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_timed_out_getter_does_not_take_the_item(void **state)
{
    (void)state;
    run_main(main_timed_out_getter, NULL);
    assert_trace("G1 wait", "G2 wait", "G1 ETIMEDOUT", "put x 0", "put y 0", "G2 got x",
                 "left y", "then EAGAIN");
}

static intptr_t main_item_wins_over_cancel(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    struct getter g = {.q = &q, .name = "G", .then_yield = true};
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, getter_fn, &g), 0);
    yields(1);
    /* Handed the item, then cancelled, before it runs: it keeps the item,
     * and the cancellation comes at its next suspension point. */
    EXPECT_EQ(urt_queue_put(&q, I("x")), 0);
    EXPECT_EQ(urt_task_cancel(t), 1);
    await_ok(t);
    trace("size %zu", urt_queue_size(&q));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_item_handed_over_wins_over_a_cancel_in_the_same_instant(void **state)
{
    (void)state;
    run_main(main_item_wins_over_cancel, NULL);
    assert_trace("G wait", "G got x", "G next ECANCELED", "size 0");
}

static intptr_t self_cancelled_getter(void *arg)
{
    urt_queue *q = arg;
    void *item = I("untouched");
    EXPECT_EQ(urt_task_cancel(urt_task_current()), 1);
    trace("get %s %s", code(urt_queue_get(q, &item)), (const char *)item);
    return 0;
}

static intptr_t main_pending_cancel(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, self_cancelled_getter, &q), 0);
    yields(1);
    /* It is on its way out with the cancellation, no longer a getter. */
    trace("put %s", code(urt_queue_put(&q, I("x"))));
    await_ok(t);
    trace_rest(&q);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* A cancellation pending when get would wait is delivered instead. */
static void test_queue_get_delivers_a_pending_cancel_before_waiting(void **state)
{
    (void)state;
    run_main(main_pending_cancel, NULL);
    assert_trace("put 0", "get ECANCELED untouched", "left x", "then EAGAIN");
}

static intptr_t main_cancelled_putter(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 1), 0);
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    struct putter p[3] = {{.q = &q, .name = "P1", .item = I("b")},
                          {.q = &q, .name = "P2", .item = I("c")},
                          {.q = &q, .name = "P3", .item = I("d"),
                           .timeout_ns = spaced_ms(10) * URT_NS_PER_MS}};
    urt_task t[3];
    for (int i = 0; i < 3; i++) EXPECT_EQ(urt_task_create(&t[i], putter_fn, &p[i]), 0);
    yields(1);
    EXPECT_EQ(urt_task_cancel(t[0]), 1);
    await_ok(t[2]); /* P3 times out */
    EXPECT(p[2].returned - p[2].called >= spaced_ms(10) * URT_NS_PER_MS);
    void *item;
    EXPECT_EQ(urt_queue_get(&q, &item), 0);
    trace("got %s", (const char *)item);
    for (int i = 0; i < 2; i++) await_ok(t[i]);
    trace_rest(&q);
    /* Two items went through (a, c): b and d were never put. */
    EXPECT_EQ(urt_queue_task_done(&q), 0);
    EXPECT_EQ(urt_queue_task_done(&q), 0);
    trace("task_done %s", code(urt_queue_task_done(&q)));
    trace("join %s", code(urt_queue_join(&q)));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

/* A putter cancelled or timed out while the queue is full puts nothing. */
static void test_queue_cancelled_or_timed_out_putter_puts_nothing(void **state)
{
    (void)state;
    run_main(main_cancelled_putter, NULL);
    assert_trace("P1 put b", "P2 put c", "P3 put d", "P1 ECANCELED", "P3 ETIMEDOUT", "got a",
                 "P2 0", "left c", "then EAGAIN", "task_done EOVERFLOW", "join 0");
}

/* ---- shutdown ---- */

static intptr_t main_shutdown(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    struct getter g[2] = {{.q = &q, .name = "G1"}, {.q = &q, .name = "G2"}};
    urt_task t[2];
    for (int i = 0; i < 2; i++) EXPECT_EQ(urt_task_create(&t[i], getter_fn, &g[i]), 0);
    yields(1);
    trace("shutdown %s", code(urt_queue_shutdown(&q, 0)));
    for (int i = 0; i < 2; i++) await_ok(t[i]);
    void *item;
    trace("put %s", code(urt_queue_put(&q, I("x"))));
    trace("try_put %s", code(urt_queue_try_put(&q, I("x"))));
    trace("get %s", code(urt_queue_get(&q, &item)));
    trace("try_get %s", code(urt_queue_try_get(&q, &item)));
    trace("get_timeout %s", code(urt_queue_get_timeout(&q, &item, URT_NS_PER_S)));
    trace("size %zu", urt_queue_size(&q));
    EXPECT_EQ(urt_queue_destroy(&q), 0);

    /* Full, with a putter waiting: the putter is refused, the items stay
     * for gets, and join still waits for them. */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 2), 0);
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("b")), 0);
    struct putter p = {.q = &q, .name = "P", .item = I("c")};
    struct joiner j = {.q = &q, .name = "J"};
    urt_task pt, jt;
    EXPECT_EQ(urt_task_create(&pt, putter_fn, &p), 0);
    EXPECT_EQ(urt_task_create(&jt, joiner_fn, &j), 0);
    yields(1);
    trace("shutdown %s", code(urt_queue_shutdown(&q, 0)));
    await_ok(pt);
    trace("size %zu", urt_queue_size(&q));
    for (int i = 0; i < 3; i++) {
        int rc = urt_queue_get(&q, &item);
        trace("get %s %s", code(rc), rc == 0 ? (const char *)item : "-");
    }
    trace("task_done %s", code(urt_queue_task_done(&q)));
    trace("task_done %s", code(urt_queue_task_done(&q)));
    await_ok(jt);
    trace("shutdown again %s", code(urt_queue_shutdown(&q, 0)));
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_shutdown_refuses_puts_and_ends_gets_once_empty(void **state)
{
    (void)state;
    run_main(main_shutdown, NULL);
    assert_trace("G1 wait", "G2 wait", "shutdown 0", "G1 ESHUTDOWN", "G2 ESHUTDOWN",
                 "put ESHUTDOWN", "try_put ESHUTDOWN", "get ESHUTDOWN", "try_get ESHUTDOWN",
                 "get_timeout ESHUTDOWN", "size 0",
                 "P put c", "J join", "shutdown 0", "P ESHUTDOWN", "size 2", "get 0 a",
                 "get 0 b", "get ESHUTDOWN -", "task_done 0", "task_done 0", "J joined 0",
                 "shutdown again 0");
}

static intptr_t main_shutdown_immediate(void *arg)
{
    (void)arg;
    urt_queue q;
    void *item;
    /* Items a, b, c; a got and not done yet; a putter waits with d. */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 2), 0);
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_put(&q, I("b")), 0);
    struct putter p = {.q = &q, .name = "P", .item = I("c")};
    struct putter p2 = {.q = &q, .name = "P2", .item = I("d")};
    struct joiner j = {.q = &q, .name = "J"};
    urt_task pt, p2t, jt;
    EXPECT_EQ(urt_task_create(&pt, putter_fn, &p), 0);
    EXPECT_EQ(urt_task_create(&p2t, putter_fn, &p2), 0);
    EXPECT_EQ(urt_task_create(&jt, joiner_fn, &j), 0);
    yields(1);
    EXPECT_EQ(urt_queue_get(&q, &item), 0); /* a; c moves in */
    trace("got %s", (const char *)item);
    trace("shutdown %s", code(urt_queue_shutdown(&q, 1)));
    trace("size %zu", urt_queue_size(&q));
    trace("get %s", code(urt_queue_try_get(&q, &item)));
    yields(2);
    /* b and c were dropped and counted done: only a keeps J waiting. */
    trace("task_done %s", code(urt_queue_task_done(&q)));
    trace("task_done %s", code(urt_queue_task_done(&q)));
    await_ok(pt);
    await_ok(p2t);
    await_ok(jt);
    EXPECT_EQ(urt_queue_destroy(&q), 0);

    /* Nothing got: dropping the items releases join at once, before the
     * getters and putters are woken (asyncio's order). */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_PRIORITY, 1), 0);
    EXPECT_EQ(urt_queue_put(&q, I("x")), 0);
    struct putter p3 = {.q = &q, .name = "P3", .item = I("y")};
    struct joiner j2 = {.q = &q, .name = "J2"};
    EXPECT_EQ(urt_task_create(&pt, putter_fn, &p3), 0);
    EXPECT_EQ(urt_task_create(&jt, joiner_fn, &j2), 0);
    yields(1);
    trace("shutdown %s", code(urt_queue_shutdown(&q, 1)));
    await_ok(pt);
    await_ok(jt);
    EXPECT_EQ(urt_queue_destroy(&q), 0);

    /* Getters waiting on an empty queue. */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_LIFO, 0), 0);
    struct getter g = {.q = &q, .name = "G"};
    EXPECT_EQ(urt_task_create(&jt, getter_fn, &g), 0);
    yields(1);
    trace("shutdown %s", code(urt_queue_shutdown(&q, 1)));
    await_ok(jt);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_shutdown_immediate_drops_items_and_counts_them_done(void **state)
{
    (void)state;
    run_main(main_shutdown_immediate, NULL);
    assert_trace("P put c", "P2 put d", "J join", "got a", "shutdown 0", "size 0",
                 "get ESHUTDOWN", "P 0", "P2 ESHUTDOWN", "task_done 0", "task_done EOVERFLOW",
                 "J joined 0",
                 "P3 put y", "J2 join", "shutdown 0", "J2 joined 0", "P3 ESHUTDOWN",
                 "G wait", "shutdown 0", "G ESHUTDOWN");
}

/* ---- many items ---- */

struct flow {
    urt_queue *q;
    int id;
    long n;            /* producer: items to put */
    unsigned char *seen[4]; /* consumers: per producer, items got */
    long last[4];      /* consumer: per producer, the last sequence got */
    long got;
};

static intptr_t flow_producer(void *arg)
{
    struct flow *f = arg;
    for (long i = 0; i < f->n; i++) {
        /* item: producer id in the low byte, sequence above; +1: never NULL */
        int rc = urt_queue_put(f->q, (void *)(intptr_t)((i << 8 | f->id) + 1));
        if (rc) {
            EXPECT_EQ(rc, 0);
            return rc;
        }
    }
    return 0;
}

static intptr_t flow_consumer(void *arg)
{
    struct flow *f = arg;
    for (int i = 0; i < 4; i++) f->last[i] = -1;
    for (;;) {
        void *item;
        int rc = urt_queue_get(f->q, &item);
        if (rc == -ESHUTDOWN) return 0;
        if (rc) {
            EXPECT_EQ(rc, 0);
            return rc;
        }
        intptr_t v = (intptr_t)item - 1;
        int id = (int)(v & 0xff);
        long seq = (long)(v >> 8);
        /* Every item once; and as the queue is FIFO and each producer puts
         * in order, each consumer gets each producer's items in order. */
        EXPECT_EQ(f->seen[id][seq], 0);
        f->seen[id][seq] = 1;
        EXPECT(seq > f->last[id]);
        f->last[id] = seq;
        f->got++;
        EXPECT_EQ(urt_queue_task_done(f->q), 0);
        if ((f->got & 63) == 0) urt_yield(); /* vary who waits on whom */
    }
}

static intptr_t main_many(void *arg)
{
    int producers = (int)(intptr_t)arg;
    const long total = small_scale() ? 10000 : 100000;
    const long each = total / producers;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 16), 0);
    unsigned char *seen[4] = {0};
    struct flow prod[4], cons[4];
    urt_task pt[4], ct[4];
    for (int i = 0; i < producers; i++) seen[i] = calloc((size_t)each, 1);
    for (int i = 0; i < producers; i++) {
        prod[i] = (struct flow){.q = &q, .id = i, .n = each};
        cons[i] = (struct flow){.q = &q, .seen = {seen[0], seen[1], seen[2], seen[3]}};
        EXPECT_EQ(urt_task_create(&ct[i], flow_consumer, &cons[i]), 0);
        EXPECT_EQ(urt_task_create(&pt[i], flow_producer, &prod[i]), 0);
    }
    for (int i = 0; i < producers; i++) EXPECT_EQ(await_within(pt[i], 60000, NULL), 0);
    EXPECT_EQ(urt_queue_join(&q), 0);
    EXPECT_EQ(urt_queue_shutdown(&q, 0), 0);
    long got = 0;
    for (int i = 0; i < producers; i++) {
        EXPECT_EQ(await_within(ct[i], 60000, NULL), 0);
        got += cons[i].got;
        /* A consumer that got nothing would say nothing about the order. */
        if (producers > 1) EXPECT(cons[i].got > 0);
    }
    EXPECT_EQ(got, each * producers);
    for (int i = 0; i < producers; i++) {
        for (long s = 0; s < each; s++) EXPECT_EQ(seen[i][s], 1);
        free(seen[i]);
    }
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_moves_100k_items_through_a_bounded_queue_in_order(void **state)
{
    (void)state;
    run_main(main_many, (void *)(intptr_t)1);
}

static void test_queue_many_producers_and_consumers_lose_and_reorder_nothing(void **state)
{
    (void)state;
    run_main(main_many, (void *)(intptr_t)4);
}

/* ---- destroy ---- */

static intptr_t main_destroy_busy(void *arg)
{
    (void)arg;
    /* On the heap, freed as soon as destroy succeeds: a woken or cancelled
     * waiter that touched q afterwards would be a use after free. */
    urt_queue *q = malloc(sizeof *q);
    EXPECT(q != NULL);
    EXPECT_EQ(urt_queue_init(q, URT_QUEUE_FIFO, 1), 0);
    struct getter g = {.q = q, .name = "G"};
    urt_task gt;
    EXPECT_EQ(urt_task_create(&gt, getter_fn, &g), 0);
    yields(1);
    trace("destroy %s", code(urt_queue_destroy(q)));
    EXPECT_EQ(urt_queue_shutdown(q, 0), 0);
    trace("destroy %s", code(urt_queue_destroy(q))); /* G woken, not yet run */
    free(q);
    await_ok(gt);

    q = malloc(sizeof *q);
    EXPECT_EQ(urt_queue_init(q, URT_QUEUE_FIFO, 1), 0);
    EXPECT_EQ(urt_queue_put(q, I("a")), 0);
    struct putter p = {.q = q, .name = "P", .item = I("b")};
    urt_task pt;
    EXPECT_EQ(urt_task_create(&pt, putter_fn, &p), 0);
    yields(1);
    trace("destroy %s", code(urt_queue_destroy(q)));
    EXPECT_EQ(urt_task_cancel(pt), 1);
    trace("destroy %s", code(urt_queue_destroy(q))); /* P cancelled, not yet run */
    free(q);
    await_ok(pt);

    q = malloc(sizeof *q);
    EXPECT_EQ(urt_queue_init(q, URT_QUEUE_FIFO, 0), 0);
    EXPECT_EQ(urt_queue_put(q, I("a")), 0);
    struct joiner j = {.q = q, .name = "J"};
    urt_task jt;
    EXPECT_EQ(urt_task_create(&jt, joiner_fn, &j), 0);
    yields(1);
    trace("destroy %s", code(urt_queue_destroy(q)));
    void *item;
    EXPECT_EQ(urt_queue_get(q, &item), 0);
    EXPECT_EQ(urt_queue_task_done(q), 0);
    trace("destroy %s", code(urt_queue_destroy(q))); /* J woken, not yet run */
    free(q);
    await_ok(jt);

    /* Items left are dropped by destroy (and freed by valgrind's count). */
    urt_queue q2;
    EXPECT_EQ(urt_queue_init(&q2, URT_QUEUE_PRIORITY, 0), 0);
    for (int i = 0; i < 40; i++) EXPECT_EQ(urt_queue_put_prio(&q2, i % 7, I("x")), 0);
    trace("destroy with items %s", code(urt_queue_destroy(&q2)));
    return 0;
}

static void test_queue_destroy_with_waiters_is_ebusy(void **state)
{
    (void)state;
    run_main(main_destroy_busy, NULL);
    assert_trace("G wait", "destroy EBUSY", "destroy 0", "G ESHUTDOWN",
                 "P put b", "destroy EBUSY", "destroy 0", "P ECANCELED",
                 "J join", "destroy EBUSY", "destroy 0", "J joined 0",
                 "destroy with items 0");
}

/* ---- bad input ---- */

static intptr_t main_bad_input(void *arg)
{
    (void)arg;
    void *item = NULL;
    /* NULL q */
    EXPECT_EQ(urt_queue_init(NULL, URT_QUEUE_FIFO, 0), -EINVAL);
    EXPECT_EQ(urt_queue_destroy(NULL), -EINVAL);
    EXPECT_EQ(urt_queue_put(NULL, item), -EINVAL);
    EXPECT_EQ(urt_queue_put_timeout(NULL, item, 0), -EINVAL);
    EXPECT_EQ(urt_queue_try_put(NULL, item), -EINVAL);
    EXPECT_EQ(urt_queue_put_prio(NULL, 0, item), -EINVAL);
    EXPECT_EQ(urt_queue_put_prio_timeout(NULL, 0, item, 0), -EINVAL);
    EXPECT_EQ(urt_queue_try_put_prio(NULL, 0, item), -EINVAL);
    EXPECT_EQ(urt_queue_get(NULL, &item), -EINVAL);
    EXPECT_EQ(urt_queue_get_timeout(NULL, &item, 0), -EINVAL);
    EXPECT_EQ(urt_queue_try_get(NULL, &item), -EINVAL);
    EXPECT_EQ(urt_queue_task_done(NULL), -EINVAL);
    EXPECT_EQ(urt_queue_join(NULL), -EINVAL);
    EXPECT_EQ(urt_queue_join_timeout(NULL, 0), -EINVAL);
    EXPECT_EQ(urt_queue_shutdown(NULL, 0), -EINVAL);
    EXPECT_EQ(urt_queue_size(NULL), 0);
    EXPECT_EQ(urt_queue_empty(NULL), 1);
    EXPECT_EQ(urt_queue_full(NULL), 0);
    EXPECT_EQ(urt_queue_maxsize(NULL), 0);

    /* Bad kind; never initialised (zeroed) or destroyed: -EINVAL too. */
    urt_queue q = {0};
    EXPECT_EQ(urt_queue_init(&q, 0, 0), -EINVAL);
    EXPECT_EQ(urt_queue_init(&q, 4, 0), -EINVAL);
    EXPECT_EQ(urt_queue_init(&q, -1, 5), -EINVAL);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 3), 0);
            EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
            EXPECT_EQ(urt_queue_destroy(&q), 0);
        }
        EXPECT_EQ(urt_queue_destroy(&q), -EINVAL);
        EXPECT_EQ(urt_queue_put(&q, item), -EINVAL);
        EXPECT_EQ(urt_queue_try_put(&q, item), -EINVAL);
        EXPECT_EQ(urt_queue_get(&q, &item), -EINVAL);
        EXPECT_EQ(urt_queue_try_get(&q, &item), -EINVAL);
        EXPECT_EQ(urt_queue_join(&q), -EINVAL);
        EXPECT_EQ(urt_queue_shutdown(&q, 1), -EINVAL);
        EXPECT_EQ(urt_queue_size(&q), 0);
        EXPECT_EQ(urt_queue_maxsize(&q), 0);
    }

    /* NULL item pointer; a priority on a queue that has none. */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 0), 0);
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_get(&q, NULL), -EINVAL);
    EXPECT_EQ(urt_queue_get_timeout(&q, NULL, 0), -EINVAL);
    EXPECT_EQ(urt_queue_try_get(&q, NULL), -EINVAL);
    EXPECT_EQ(urt_queue_put_prio(&q, 1, I("b")), -EINVAL);
    EXPECT_EQ(urt_queue_put_prio_timeout(&q, 1, I("b"), 0), -EINVAL);
    EXPECT_EQ(urt_queue_try_put_prio(&q, 1, I("b")), -EINVAL);
    EXPECT_EQ(urt_queue_size(&q), 1); /* nothing taken, nothing put */
    EXPECT_EQ(strcmp(q._getters._what, "Queue.get"), 0);
    EXPECT_EQ(strcmp(q._putters._what, "Queue.put"), 0);
    EXPECT_EQ(strcmp(q._joiners._what, "Queue.join"), 0);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_LIFO, 0), 0);
    EXPECT_EQ(urt_queue_put_prio(&q, 1, I("b")), -EINVAL);
    EXPECT_EQ(urt_queue_destroy(&q), 0);

    /* maxsize items cannot be counted in a size_t. */
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, SIZE_MAX / sizeof(void *) + 1), -ENOMEM);
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_PRIORITY, SIZE_MAX / 16), -ENOMEM);
    EXPECT_EQ(urt_queue_size(&q), 0);
    return 0;
}

static void test_queue_rejects_bad_input_with_einval(void **state)
{
    (void)state;
    run_main(main_bad_input, NULL);
}

/* Outside a loop: the calls that may make tasks ready need one; init,
 * destroy and the queries do not. */
static void test_queue_calls_outside_a_loop_are_enoloop(void **state)
{
    (void)state;
    urt_queue q;
    void *item = NULL;
    assert_int_equal(urt_queue_init(&q, URT_QUEUE_PRIORITY, 2), 0);
    assert_int_equal(urt_queue_put(&q, item), URT_ENOLOOP);
    assert_int_equal(urt_queue_put_timeout(&q, item, 0), URT_ENOLOOP);
    assert_int_equal(urt_queue_try_put(&q, item), URT_ENOLOOP);
    assert_int_equal(urt_queue_put_prio(&q, 0, item), URT_ENOLOOP);
    assert_int_equal(urt_queue_put_prio_timeout(&q, 0, item, 0), URT_ENOLOOP);
    assert_int_equal(urt_queue_try_put_prio(&q, 0, item), URT_ENOLOOP);
    assert_int_equal(urt_queue_get(&q, &item), URT_ENOLOOP);
    assert_int_equal(urt_queue_get_timeout(&q, &item, 0), URT_ENOLOOP);
    assert_int_equal(urt_queue_try_get(&q, &item), URT_ENOLOOP);
    assert_int_equal(urt_queue_task_done(&q), URT_ENOLOOP);
    assert_int_equal(urt_queue_join(&q), URT_ENOLOOP);
    assert_int_equal(urt_queue_join_timeout(&q, 0), URT_ENOLOOP);
    assert_int_equal(urt_queue_shutdown(&q, 1), URT_ENOLOOP);
    assert_int_equal(urt_queue_size(&q), 0);
    assert_int_equal(urt_queue_empty(&q), 1);
    assert_int_equal(urt_queue_full(&q), 0);
    assert_int_equal(urt_queue_maxsize(&q), 2);
    assert_int_equal(urt_queue_destroy(&q), 0);
}

static intptr_t noop(void *arg)
{
    (void)arg;
    return 0;
}

/* run_checked compares mappings before and after a run; the allocator maps
 * its arenas on first use, so one run happens before the tests. */
static int warm_up(void **state)
{
    (void)state;
    return urt_run(noop, NULL, NULL) == 0 ? 0 : -1;
}

/* A timeout of 0 gives up at once (the header's "0: at once unless an
 * item is there / there is room"): no trip through the loop, so a task
 * created just before has not run yet.  Found by the difftest. */
static intptr_t traced_start(void *arg)
{
    (void)arg;
    trace("other task ran");
    return 0;
}

static intptr_t main_zero_timeouts(void *arg)
{
    (void)arg;
    urt_queue q;
    EXPECT_EQ(urt_queue_init(&q, URT_QUEUE_FIFO, 1), 0);
    urt_task t;
    EXPECT_EQ(urt_task_create(&t, traced_start, NULL), 0);
    void *item = NULL;
    EXPECT_EQ(urt_queue_get_timeout(&q, &item, 0), URT_ETIMEDOUT);
    EXPECT_EQ(urt_queue_put(&q, I("a")), 0);
    EXPECT_EQ(urt_queue_put_timeout(&q, I("b"), 0), URT_ETIMEDOUT);
    trace("main went on");
    EXPECT_EQ(urt_task_await(t, NULL), 0);
    EXPECT_EQ(urt_task_release(t), 0);
    EXPECT_EQ(urt_queue_get(&q, &item), 0);
    EXPECT_EQ(urt_queue_destroy(&q), 0);
    return 0;
}

static void test_queue_zero_timeout_gives_up_without_suspending(void **state)
{
    (void)state;
    run_main(main_zero_timeouts, NULL);
    assert_trace("main went on", "other task ran");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_fifo_gives_items_in_put_order),
        cmocka_unit_test(test_queue_zero_timeout_gives_up_without_suspending),
        cmocka_unit_test(test_queue_lifo_gives_newest_first),
        cmocka_unit_test(test_queue_priority_gives_lowest_first_and_fifo_among_equals),
        cmocka_unit_test(test_queue_priority_heap_keeps_order_under_mixed_puts_and_gets),
        cmocka_unit_test(test_queue_unbounded_fifo_keeps_order_when_growing_wrapped),
        cmocka_unit_test(test_queue_bounded_put_waits_until_get_frees_a_slot),
        cmocka_unit_test(test_queue_get_waits_while_empty),
        cmocka_unit_test(test_queue_waiting_getters_are_served_in_order_by_hand_off),
        cmocka_unit_test(test_queue_waiting_putters_are_admitted_in_order_by_hand_off),
        cmocka_unit_test(test_queue_calls_that_need_not_wait_do_not_suspend),
        cmocka_unit_test(test_queue_try_put_and_try_get_give_eagain),
        cmocka_unit_test(test_queue_join_waits_until_every_item_is_done),
        cmocka_unit_test(test_queue_join_returns_at_once_when_nothing_is_unfinished),
        cmocka_unit_test(test_queue_task_done_more_than_got_is_eoverflow),
        cmocka_unit_test(test_queue_timeouts_expire_and_take_or_put_nothing),
        cmocka_unit_test(test_queue_cancelled_getter_does_not_take_the_item),
        cmocka_unit_test(test_queue_timed_out_getter_does_not_take_the_item),
        cmocka_unit_test(test_queue_item_handed_over_wins_over_a_cancel_in_the_same_instant),
        cmocka_unit_test(test_queue_get_delivers_a_pending_cancel_before_waiting),
        cmocka_unit_test(test_queue_cancelled_or_timed_out_putter_puts_nothing),
        cmocka_unit_test(test_queue_shutdown_refuses_puts_and_ends_gets_once_empty),
        cmocka_unit_test(test_queue_shutdown_immediate_drops_items_and_counts_them_done),
        cmocka_unit_test(test_queue_moves_100k_items_through_a_bounded_queue_in_order),
        cmocka_unit_test(test_queue_many_producers_and_consumers_lose_and_reorder_nothing),
        cmocka_unit_test(test_queue_destroy_with_waiters_is_ebusy),
        cmocka_unit_test(test_queue_rejects_bad_input_with_einval),
        cmocka_unit_test(test_queue_calls_outside_a_loop_are_enoloop),
    };
    return cmocka_run_group_tests(tests, warm_up, NULL);
}
