/*
 * fuzz_timestamp.c: libFuzzer target for the two time readers. An accepted
 * time must be a real calendar instant: formatting it back as RFC 3339 and
 * re-reading the civil fields must agree with the day-count arithmetic.
 */
#include <stdlib.h>

#include "core/timeutil.h"
#include "formats/access_log.h"

static int32_t offset(void *ctx, int64_t local)
{
    (void)ctx;
    return (int32_t)(local % 3600); /* any offset: the reader must not care */
}

int LLVMFuzzerTestOneInput(const char *data, size_t size)
{
    lp_slice s = {data, size};
    int64_t t;
    const char *why = lp_time_is_clf(s) ? lp_time_read_clf(s, &t) : lp_time_read_zoneless(s, offset, NULL, &t);
    if (why)
        return 0;
    lp_civil c;
    lp_civil_from_epoch(t, &c);
    if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > lp_days_in_month(c.year, c.month) ||
        c.hour > 23 || c.minute > 59 || c.second > 59)
        abort();
    if (lp_days_from_civil(c.year, c.month, c.day) * 86400 + c.hour * 3600 + c.minute * 60 + c.second != t)
        abort();
    return 0;
}
