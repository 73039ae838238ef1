/*
 * timeutil.h: calendar arithmetic without libc's time zone machinery.
 *
 * gmtime/timegm/strftime are too slow for the per-line path and mktime
 * depends on the process's TZ, so logpipe converts civil dates itself
 * (Howard Hinnant's days_from_civil algorithms: exact for the proleptic
 * Gregorian calendar) and formats RFC 3339 by hand.
 */
#ifndef LP_TIMEUTIL_H
#define LP_TIMEUTIL_H

#include <stdint.h>

#include "core/buf.h"

/* a / b rounded towards minus infinity (b > 0): C's division truncates
 * towards zero, which puts -1 and 0 in the same hour, day or quarter hour,
 * so every bucket of times (cache keys, days) must use this one. */
static inline int64_t lp_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - (a % b < 0);
}

/* Milliseconds of the monotonic clock: for timeouts and durations, which
 * must not jump with the wall clock. */
int64_t lp_monotonic_ms(void);

/* Days since 1970-01-01 of year-month-day (month 1..12). */
int64_t lp_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Inverse of lp_days_from_civil. */
void lp_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
int lp_is_leap_year(int64_t y);
unsigned lp_days_in_month(int64_t y, unsigned m);

/* Appends "YYYY-MM-DDTHH:MM:SSZ" for epoch seconds t. */
void lp_append_rfc3339(lp_buf *b, int64_t t);

/* Civil fields of epoch seconds t in UTC. */
typedef struct lp_civil {
    int64_t year;
    unsigned month, day, hour, minute, second;
} lp_civil;
void lp_civil_from_epoch(int64_t t, lp_civil *c);

/* Month abbreviations "Jan".."Dec" (index 0..11) as used by access logs. */
extern const char lp_month_abbr[12][4];

#endif
