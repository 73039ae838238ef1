/*
 * index_name.c: index names from a date pattern and a document's
 * @timestamp (logs-access-%Y.%m.%d), and the template that covers them.
 *
 * Only the conversions a time-based index needs are supported (%Y %m %d %H
 * and %%), written by hand because strftime would need a struct tm per
 * document; the consumer caches the result per hour anyway (lp_index_cache).
 * The name is a pure function of the time: a replay of a message must land
 * in the index that holds its _id, so the hour is floored (before 1970 too).
 */
#include <ctype.h>
#include <string.h>

#include "consume/consume.h"
#include "core/timeutil.h"

static void put2(lp_buf *b, unsigned v)
{
    lp_buf_putc(b, (char)('0' + v / 10 % 10));
    lp_buf_putc(b, (char)('0' + v % 10));
}

void lp_index_name(const char *pattern, int64_t t, lp_buf *out)
{
    lp_civil c;
    lp_civil_from_epoch(t, &c);
    for (const char *p = pattern; *p; p++) {
        if (*p != '%' || !p[1]) {
            lp_buf_putc(out, *p);
            continue;
        }
        switch (*++p) {
        case 'Y': lp_buf_printf(out, "%04lld", (long long)c.year); break;
        case 'm': put2(out, c.month); break;
        case 'd': put2(out, c.day); break;
        case 'H': put2(out, c.hour); break;
        default: lp_buf_putc(out, *p); /* "%%" and anything else: the character */
        }
    }
}

void lp_index_cache_init(lp_index_cache *c, const char *pattern)
{
    c->pattern = pattern;
    c->fixed = strchr(pattern, '%') == NULL;
    c->hour = INT64_MIN;
    c->name = (lp_buf)LP_BUF_INIT;
    lp_index_name(pattern, 0, &c->name);
    lp_buf_cstr(&c->name);
}

int lp_index_cache_set(lp_index_cache *c, int64_t t)
{
    int64_t hour = lp_floor_div(t, 3600);
    if (c->fixed || hour == c->hour)
        return 0;
    lp_buf_reset(&c->name);
    lp_index_name(c->pattern, t, &c->name);
    lp_buf_cstr(&c->name);
    c->hour = hour;
    return 1;
}

void lp_index_cache_free(lp_index_cache *c) { lp_buf_free(&c->name); }

void lp_index_template_names(const char *pattern, lp_buf *name, lp_buf *index_pattern)
{
    const char *pct = strchr(pattern, '%');
    size_t prefix = pct ? (size_t)(pct - pattern) : strlen(pattern);
    lp_buf_append(index_pattern, pattern, prefix);
    if (pct)
        lp_buf_putc(index_pattern, '*');
    lp_buf_puts_lit(name, "logpipe-");
    size_t start = name->len;
    for (size_t i = 0; i < prefix; i++) {
        char ch = (char)tolower((unsigned char)pattern[i]);
        lp_buf_putc(name, isalnum((unsigned char)ch) || ch == '-' || ch == '_' ? ch : '-');
    }
    while (name->len > start && strchr("-_.", name->data[name->len - 1]))
        name->len--;
    if (name->len == start)
        lp_buf_puts_lit(name, "logs");
}
