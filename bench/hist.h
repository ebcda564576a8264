/*
 * hist.h - a latency histogram with logarithmic buckets, HdrHistogram style:
 * each power of two is split into 2^HIST_SUB_BITS equal sub-buckets, so any
 * recorded value is known to within 1/128 (0.8%) whatever its size, in a
 * fixed 64 KiB of counts and with no allocation or division per record.
 * Values are nanoseconds.  Header-only: every bench program, urt's and the
 * peers', measures latency with the same code.
 */
#ifndef URT_BENCH_HIST_H
#define URT_BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Values below HIST_SUB are exact, one bucket each; above, 64 - SUB_BITS
 * powers of two of HIST_SUB sub-buckets each. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t counts[HIST_BUCKETS];
};

static inline void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    unsigned shift = top - HIST_SUB_BITS;
    /* The leading 1 is implied by the power; the next SUB_BITS bits pick the
     * sub-bucket. */
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* The largest value that lands in bucket i: a percentile is reported as the
 * upper edge of its bucket, so it never understates a latency. */
static inline uint64_t hist_upper(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t base = (uint64_t)(HIST_SUB + i % HIST_SUB) << shift;
    return base + ((uint64_t)1 << shift) - 1;
}

static inline void hist_record(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

static inline void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

/* The value at percentile p (0 < p <= 100): the smallest bucket edge with at
 * least p% of the records at or below it; 0 for an empty histogram. */
static inline uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)((double)h->count * p / 100.0 + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t up = hist_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}

#endif
