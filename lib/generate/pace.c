/* pace.c: rate pacing against the monotonic clock; see pace.h. */
#include "generate/pace.h"

#include <errno.h>

void lp_pace_start(lp_pace *p, uint64_t rate)
{
    p->rate = rate;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
}

void lp_pace_wait(lp_pace *p, uint64_t i)
{
    if (!p->rate)
        return;
    uint64_t due_ns = i * 1000000000ull / p->rate;
    struct timespec due = {p->start.tv_sec + (time_t)(due_ns / 1000000000ull),
                           p->start.tv_nsec + (long)(due_ns % 1000000000ull)};
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {
    }
}

double lp_pace_elapsed(const lp_pace *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - p->start.tv_sec) + (double)(now.tv_nsec - p->start.tv_nsec) / 1e9;
}
