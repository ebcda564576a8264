/*
 * common.h - what every C bench program shares: the clock, the peak RSS,
 * the "RESULT name value" lines scripts/bench.py reads (bench/README.md has
 * the protocol), the servers' address form and the file workload's random
 * offsets.
 */
#ifndef URT_BENCH_COMMON_H
#define URT_BENCH_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* "a.b.c.d:port" into sa: the echo servers' one address form (port 0: the
 * kernel picks).  0, or -1 when it is not that. */
static inline int bench_parse_hostport(const char *arg, struct sockaddr_in *sa)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg)
        return -1;
    char host[64];
    size_t hl = (size_t)(colon - arg);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, arg, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* splitmix64: a full-period 64-bit generator whose whole state is one
 * word, so each reader of the file workload carries its own stream. */
static inline uint64_t bench_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
