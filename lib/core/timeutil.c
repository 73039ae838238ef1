/* timeutil.c: civil date <-> day number conversions; see timeutil.h. */
#include "core/timeutil.h"

#include <time.h>

const char lp_month_abbr[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int64_t lp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void lp_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int lp_is_leap_year(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned lp_days_in_month(int64_t y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12)
        return 0;
    return days[m - 1] + (m == 2 && lp_is_leap_year(y));
}

void lp_civil_from_epoch(int64_t t, lp_civil *c)
{
    int64_t days = lp_floor_div(t, 86400);
    int64_t secs = t - days * 86400;
    lp_civil_from_days(days, &c->year, &c->month, &c->day);
    c->hour = (unsigned)(secs / 3600);
    c->minute = (unsigned)(secs / 60 % 60);
    c->second = (unsigned)(secs % 60);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void lp_append_rfc3339(lp_buf *b, int64_t t)
{
    lp_civil c;
    lp_civil_from_epoch(t, &c);
    if (c.year < 0 || c.year > 9999) {
        lp_buf_printf(b, "%04lld-", (long long)c.year);
    } else {
        char y[5] = {(char)('0' + c.year / 1000), (char)('0' + c.year / 100 % 10),
                     (char)('0' + c.year / 10 % 10), (char)('0' + c.year % 10), '-'};
        lp_buf_append(b, y, 5);
    }
    char s[15] = "MM-DDTHH:MM:SSZ";
    put2(s, c.month);
    put2(s + 3, c.day);
    put2(s + 6, c.hour);
    put2(s + 9, c.minute);
    put2(s + 12, c.second);
    lp_buf_append(b, s, 15);
}

int64_t lp_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
