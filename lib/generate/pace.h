/*
 * pace.h: holding a steady rate (lines or messages per second).
 * Waits until item i is due at start + i/rate on CLOCK_MONOTONIC, so a slow
 * step is caught up on and the long-run rate is exact; rate 0 never waits.
 * Shared by `generate --rate` and `produce --rate`.
 */
#ifndef LP_PACE_H
#define LP_PACE_H

#include <stdint.h>
#include <time.h>

typedef struct lp_pace {
    uint64_t rate;
    struct timespec start;
} lp_pace;

void lp_pace_start(lp_pace *p, uint64_t rate);
void lp_pace_wait(lp_pace *p, uint64_t i);
/* Seconds since lp_pace_start, for summaries. */
double lp_pace_elapsed(const lp_pace *p);

#endif
