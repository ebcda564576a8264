/*
 * common.h - what every C bench program shares: the clock, the peak RSS and
 * the "RESULT name value" lines scripts/bench.py reads (bench/README.md has
 * the protocol).
 */
#ifndef URT_BENCH_COMMON_H
#define URT_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/* Exit status of a workload a program does not implement. */
#define BENCH_UNSUPPORTED 3

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline long bench_maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static inline void bench_result(const char *name, double value)
{
    printf("RESULT %s %.3f\n", name, value);
    fflush(stdout);
}

static inline int bench_unsupported(const char *workload)
{
    printf("UNSUPPORTED %s\n", workload);
    return BENCH_UNSUPPORTED;
}

/* A count argument: decimal, and at least 1. */
static inline long bench_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 ? v : -1;
}

#endif
