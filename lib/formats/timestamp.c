/*
 * timestamp.c: the two time syntaxes of the access-log formats.
 *
 * Both are fixed-width-ish, so they are read with direct digit arithmetic on
 * the slice (no sscanf, no strptime: both are slow, locale-dependent, and
 * strptime would accept "Feb 30"). Every field is range-checked and the day
 * is checked against the month's real length: an impossible date is a
 * reject, never a guess.
 */
#include "core/timeutil.h"
#include "formats/access_log.h"

/* Reads exactly n digits at p into *v; 0 when any is not a digit. */
static int read_digits(const char *p, size_t n, unsigned *v)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

static int read_month(const char *p, unsigned *m)
{
    for (unsigned i = 0; i < 12; i++)
        if (p[0] == lp_month_abbr[i][0] && p[1] == lp_month_abbr[i][1] && p[2] == lp_month_abbr[i][2]) {
            *m = i + 1;
            return 1;
        }
    return 0;
}

/* Validates the civil fields and turns them into seconds as if UTC. */
static const char *civil_to_seconds(unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
                                    unsigned s, int64_t *out)
{
    if (h > 23)
        return "bad timestamp: hour out of range";
    if (mi > 59)
        return "bad timestamp: minute out of range";
    if (s > 59)
        return "bad timestamp: second out of range (leap seconds are not accepted)";
    if (d < 1 || d > lp_days_in_month(y, mo))
        return mo == 2 ? "bad timestamp: day does not exist in February of that year"
                       : "bad timestamp: day does not exist in that month";
    *out = lp_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return NULL;
}

/* "HH:MM:SS" at p (8 bytes). */
static int read_clock(const char *p, unsigned *h, unsigned *mi, unsigned *s)
{
    return read_digits(p, 2, h) && p[2] == ':' && read_digits(p + 3, 2, mi) && p[5] == ':' &&
           read_digits(p + 6, 2, s);
}

const char *lp_time_read_zoneless(lp_slice t, lp_local_offset_fn local_offset, void *ctx, int64_t *out)
{
    /* "Jan 21 2026, 22:23:40": 21 bytes; a one-digit day ("Jan 1 2026, ...") is
     * accepted too, as %d-less writers produce it. */
    const char *p = t.p;
    unsigned mo, d, y, h, mi, s;
    size_t dn;
    if (t.n < 20 || !read_month(p, &mo))
        return "bad timestamp: expected \"Mon DD YYYY, HH:MM:SS\"";
    if (p[3] != ' ')
        return "bad timestamp: expected \"Mon DD YYYY, HH:MM:SS\"";
    dn = (p[5] == ' ') ? 1 : 2;
    if (t.n != 19 + dn || !read_digits(p + 4, dn, &d) || p[4 + dn] != ' ' ||
        !read_digits(p + 5 + dn, 4, &y) || p[9 + dn] != ',' || p[10 + dn] != ' ' ||
        !read_clock(p + 11 + dn, &h, &mi, &s))
        return "bad timestamp: expected \"Mon DD YYYY, HH:MM:SS\"";
    int64_t local;
    const char *why = civil_to_seconds(y, mo, d, h, mi, s, &local);
    if (why)
        return why;
    *out = local - (local_offset ? local_offset(ctx, local) : 0);
    return NULL;
}

const char *lp_time_read_clf(lp_slice t, int64_t *out)
{
    /* "10/Oct/2000:13:55:36 -0700": exactly 26 bytes. */
    const char *p = t.p;
    unsigned d, mo, y, h, mi, s, zh, zm;
    if (t.n != 26 || !read_digits(p, 2, &d) || p[2] != '/' || !read_month(p + 3, &mo) ||
        p[6] != '/' || !read_digits(p + 7, 4, &y) || p[11] != ':' || !read_clock(p + 12, &h, &mi, &s) ||
        p[20] != ' ' || (p[21] != '+' && p[21] != '-') || !read_digits(p + 22, 2, &zh) ||
        !read_digits(p + 24, 2, &zm))
        return "bad timestamp: expected \"DD/Mon/YYYY:HH:MM:SS +ZZZZ\"";
    if (zh > 14 || zm > 59 || (zh == 14 && zm))
        return "bad timestamp: zone offset out of range";
    int64_t local;
    const char *why = civil_to_seconds(y, mo, d, h, mi, s, &local);
    if (why)
        return why;
    int64_t offset = (int64_t)(zh * 3600 + zm * 60);
    *out = p[21] == '+' ? local - offset : local + offset;
    return NULL;
}
