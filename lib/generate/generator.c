/*
 * generator.c: synthetic access-log traffic (see generate.h).
 *
 * Everything random comes from one xoshiro256** stream seeded through
 * splitmix64, so a seed and a start time fix every byte. Choices use integer
 * thresholds on 32-bit draws (no floating point per line) and the time
 * field is formatted once per second of simulated time, which keeps
 * generation well above the parser's speed, as a load source must be.
 *
 * --realistic adds what a public server logs besides requests: connections
 * that never sent a request line, TLS handshakes and other protocols' probes
 * on the plain-text port. Its draws are made only when it is on, so without
 * it a seed still gives exactly the bytes it always gave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "generate/generate.h"

typedef struct weighted {
    const char *s;
    unsigned weight;
} weighted;

static const weighted methods[] = {{"GET", 820}, {"POST", 100}, {"PUT", 30},
                                   {"DELETE", 20}, {"HEAD", 20}, {"PATCH", 10}};
static const struct {
    int code;
    unsigned weight;
} statuses[] = {{200, 700}, {201, 40},  {204, 30},  {206, 30}, {301, 20}, {302, 20}, {304, 40},
                {400, 20},  {401, 15},  {403, 10},  {404, 40}, {429, 5},  {500, 15}, {502, 6},
                {503, 6},   {504, 3}};
/* Endpoint popularity is Zipf-like: the weights fall as 1000/rank. */
static const char *const paths[] = {
    "/", "/index.html", "/api/v1/products", "/static/app.js", "/static/style.css", "/login",
    "/api/v1/cart", "/search", "/contact", "/about", "/api/v1/users/me", "/favicon.ico",
    "/products", "/api/v1/orders", "/static/logo.png", "/blog", "/checkout", "/api/v1/reviews",
    "/help", "/pricing", "/api/v2/inventory", "/careers", "/static/fonts/inter.woff2", "/signup",
    "/api/v1/recommendations", "/terms", "/privacy", "/robots.txt", "/sitemap.xml", "/admin",
    "/api/v1/payments", "/wp-login.php", "/static/img/hero.jpg", "/docs", "/status", "/health",
    "/api/v1/sessions", "/cart", "/orders/history", "/api/v1/notifications", "/feed.xml",
    "/downloads/report.pdf", "/api/internal/metrics", "/.env", "/news", "/support", "/events",
    "/api/v1/search", "/settings", "/logout"};
#define NPATHS (sizeof paths / sizeof paths[0])
static const weighted referrers[] = {{"-", 400}, {"https://example.com", 200},
                                     {"https://www.google.com/", 200}, {"https://example.com/products", 80},
                                     {"https://t.co/abc123", 40}, {"https://news.ycombinator.com/", 30},
                                     {"android-app://com.google.android.gm/", 20}, {"https://duckduckgo.com/", 30}};
static const weighted agents[] = {
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)", 250},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 300},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", 180},
    {"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", 90},
    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 60},
    {"curl/8.4.0", 40},
    {"python-requests/2.31.0", 40},
    {"-", 40}};
/* Virtual hosts of the vhost_combined format ("%v:%p"). */
static const weighted vhosts[] = {{"www.example.com:443", 600}, {"shop.example.com:443", 200},
                                  {"api.example.com:443", 150}, {"www.example.com:80", 50}};
/* Request lines that are not HTTP, as Apache and nginx log them (escaped):
 * a TLS ClientHello's first bytes on the plain-text port, an RDP scanner's
 * cookie, a bare word (fail2ban's nginx-bad-request test log has both). */
static const weighted probes[] = {
    {"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03", 650},
    {"\\x03\\x00\\x00/*\\xE0\\x00\\x00\\x00\\x00\\x00Cookie: mstshash=Administr", 250},
    {"HELP", 100}};
static const char *const users[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
static const char *const queries[] = {"page=2", "q=shoes&sort=price", "id=1042", "lang=en",
                                      "utm_source=newsletter&utm_medium=email", "limit=50&offset=100",
                                      "q=%22red+dress%22", "debug=true"};

struct lp_gen {
    lp_gen_opts opts;
    uint64_t s[4];
    int64_t now_ms;
    int64_t time_sec;      /* the second time_text was formatted for */
    char time_text[32];
    size_t time_len;
    uint32_t malformed_threshold;
    uint32_t path_cdf[NPATHS];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(lp_gen *g)
{
    uint64_t *s = g->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static uint32_t below(lp_gen *g, uint32_t n) { return (uint32_t)(((next_u64(g) >> 32) * n) >> 32); }

static const char *pick(lp_gen *g, const weighted *w, size_t n)
{
    unsigned total = 0;
    for (size_t i = 0; i < n; i++)
        total += w[i].weight;
    unsigned r = below(g, total);
    for (size_t i = 0; i < n; i++) {
        if (r < w[i].weight)
            return w[i].s;
        r -= w[i].weight;
    }
    return w[n - 1].s;
}

static int pick_status(lp_gen *g)
{
    unsigned r = below(g, 1000);
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        if (r < statuses[i].weight)
            return statuses[i].code;
        r -= statuses[i].weight;
    }
    return 200;
}

int lp_gen_format_from_name(const char *name)
{
    int f = lp_format_from_name(name);
    return f == LP_FORMAT_AUTO ? -1 : f;
}

lp_gen *lp_gen_new(const lp_gen_opts *opts)
{
    lp_gen *g = lp_xcalloc(1, sizeof *g);
    g->opts = *opts;
    if (g->opts.format == LP_FORMAT_AUTO)
        g->opts.format = LP_FORMAT_COMBINED_ZONELESS;
    uint64_t x = opts->seed;
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
    g->now_ms = opts->start * 1000;
    g->time_sec = INT64_MIN;
    double r = opts->malformed_ratio < 0 ? 0 : opts->malformed_ratio > 1 ? 1 : opts->malformed_ratio;
    g->malformed_threshold = r >= 1 ? UINT32_MAX : (uint32_t)(r * 4294967296.0);
    double total = 0, acc = 0;
    for (size_t i = 0; i < NPATHS; i++)
        total += 1000.0 / (double)(i + 1);
    for (size_t i = 0; i < NPATHS; i++) {
        acc += 1000.0 / (double)(i + 1);
        g->path_cdf[i] = (uint32_t)(acc / total * 4294967295.0);
    }
    g->path_cdf[NPATHS - 1] = UINT32_MAX;
    return g;
}

void lp_gen_free(lp_gen *g) { free(g); }

static const char *pick_path(lp_gen *g)
{
    uint32_t r = (uint32_t)(next_u64(g) >> 32);
    size_t lo = 0, hi = NPATHS - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->path_cdf[mid] < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return paths[lo];
}

static void put_ip(lp_gen *g, lp_buf *b)
{
    uint64_t r = next_u64(g);
    if (below(g, 10) == 0) { /* about one client in ten speaks IPv6 */
        lp_buf_printf(b, "2001:db8:%x:%x::%x", (unsigned)(r & 0xffff), (unsigned)(r >> 16 & 0xffff),
                      (unsigned)(r >> 32 & 0xfff) + 1);
        return;
    }
    unsigned a = 1 + (unsigned)(r % 223), c = (unsigned)(r >> 8 & 0xff), d = (unsigned)(r >> 16 & 0xff),
             e = 1 + (unsigned)(r >> 24 & 0xfe);
    lp_buf_append_u64(b, a == 127 ? 128 : a);
    lp_buf_putc(b, '.');
    lp_buf_append_u64(b, c);
    lp_buf_putc(b, '.');
    lp_buf_append_u64(b, d);
    lp_buf_putc(b, '.');
    lp_buf_append_u64(b, e);
}

static void format_time(lp_gen *g, int64_t sec)
{
    lp_civil c;
    lp_civil_from_epoch(sec, &c);
    const char *mon = lp_month_abbr[c.month - 1];
    int n;
    if (g->opts.format == LP_FORMAT_COMBINED_ZONELESS)
        n = snprintf(g->time_text, sizeof g->time_text, "%s %02u %04lld, %02u:%02u:%02u", mon, c.day,
                     (long long)c.year, c.hour, c.minute, c.second);
    else
        n = snprintf(g->time_text, sizeof g->time_text, "%02u/%s/%04lld:%02u:%02u:%02u +0000", c.day,
                     mon, (long long)c.year, c.hour, c.minute, c.second);
    g->time_len = n > 0 ? (size_t)n : 0;
    g->time_sec = sec;
}

/* "[vhost:port ]client - user [time] \"": every line starts so. */
static void put_prefix(lp_gen *g, lp_buf *b)
{
    if (g->opts.format == LP_FORMAT_VHOST_COMBINED) {
        const char *vhost = pick(g, vhosts, sizeof vhosts / sizeof vhosts[0]);
        lp_buf_append(b, vhost, strlen(vhost));
        lp_buf_putc(b, ' ');
    }
    put_ip(g, b);
    lp_buf_puts_lit(b, " - ");
    if (below(g, 20) == 0) {
        const char *user = users[below(g, sizeof users / sizeof users[0])];
        lp_buf_append(b, user, strlen(user));
    } else
        lp_buf_putc(b, '-');
    lp_buf_puts_lit(b, " [");
    if (g->now_ms / 1000 != g->time_sec)
        format_time(g, g->now_ms / 1000);
    lp_buf_append(b, g->time_text, g->time_len);
    lp_buf_puts_lit(b, "] \"");
}

/* " \"referrer\" \"agent\"" where the format has them. */
static void put_trailer(lp_buf *b, const char *ref, const char *ua)
{
    lp_buf_puts_lit(b, " \"");
    lp_buf_append(b, ref, strlen(ref));
    lp_buf_puts_lit(b, "\" \"");
    lp_buf_append(b, ua, strlen(ua));
    lp_buf_putc(b, '"');
}

/* Appends one well-formed line; returns the offset where the request's
 * closing quote is, for the malformed-line variants. A status of 0 is
 * written as '-'. */
static size_t put_good_line(lp_gen *g, lp_buf *b, int no_status)
{
    size_t start = b->len;
    const char *method = pick(g, methods, sizeof methods / sizeof methods[0]);
    const char *path = pick_path(g);
    int status = pick_status(g);
    put_prefix(g, b);
    lp_buf_append(b, method, strlen(method));
    lp_buf_putc(b, ' ');
    lp_buf_append(b, path, strlen(path));
    if (below(g, 5) == 0) {
        const char *q = queries[below(g, sizeof queries / sizeof queries[0])];
        lp_buf_putc(b, '?');
        lp_buf_append(b, q, strlen(q));
    }
    lp_buf_puts_lit(b, " HTTP/1.1");
    size_t quote = b->len - start;
    lp_buf_puts_lit(b, "\" ");
    if (no_status)
        lp_buf_putc(b, '-');
    else
        lp_buf_append_u64(b, (uint64_t)status);
    lp_buf_putc(b, ' ');
    if (status == 304 || status == 204 || method[0] == 'H')
        lp_buf_putc(b, '-');
    else
        lp_buf_append_u64(b, 200 + below(g, 1000) * (1 + below(g, 50)));
    if (g->opts.format != LP_FORMAT_COMMON) {
        const char *ref = pick(g, referrers, sizeof referrers / sizeof referrers[0]);
        const char *ua = pick(g, agents, sizeof agents / sizeof agents[0]);
        put_trailer(b, ref, ua);
    }
    return quote;
}

/*
 * The lines of requests that never completed, per 10,000 lines (--realistic;
 * docs/schema.md says where the rates come from):
 *   80  "-" 408   a connection that sent no request line before the timeout
 *                 (browsers' unused pre-opened connections; Apache's mod_reqtimeout)
 *   20  "" 400    the same closed by the client first (nginx)
 *   30  probe 400 a TLS handshake or another protocol on the plain-text port
 *    5  status -  a request logged without a status
 */
enum { INCOMPLETE_NONE = 80, INCOMPLETE_EMPTY = 100, INCOMPLETE_PROBE = 130, INCOMPLETE_NO_STATUS = 135 };

/* n random bytes as nginx logs them: printable ASCII as itself, any other
 * byte, a quote and a backslash as \xHH. */
static void put_escaped_bytes(lp_gen *g, lp_buf *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned c = below(g, 256);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            lp_buf_putc(b, (char)c);
        else
            lp_buf_printf(b, "\\x%02X", c);
    }
}

/* Writes one such line and returns 1, or returns 0 for an ordinary line. */
static int put_incomplete_line(lp_gen *g, lp_buf *b)
{
    unsigned r = below(g, 10000);
    if (r >= INCOMPLETE_NO_STATUS)
        return 0;
    if (r >= INCOMPLETE_PROBE) {
        put_good_line(g, b, 1);
        return 1;
    }
    put_prefix(g, b);
    if (r < INCOMPLETE_NONE) {
        lp_buf_puts_lit(b, "-\" 408 ");
        if (below(g, 2))
            lp_buf_putc(b, '-');
        else
            lp_buf_append_u64(b, 150 + below(g, 100));
    } else if (r < INCOMPLETE_EMPTY) {
        lp_buf_puts_lit(b, "\" 400 0");
    } else {
        const char *probe = pick(g, probes, sizeof probes / sizeof probes[0]);
        lp_buf_append(b, probe, strlen(probe));
        if (probe == probes[0].s) /* the handshake goes on with random bytes */
            put_escaped_bytes(g, b, 8 + below(g, 24));
        lp_buf_puts_lit(b, "\" 400 ");
        lp_buf_append_u64(b, 150 + below(g, 40));
    }
    if (g->opts.format != LP_FORMAT_COMMON)
        put_trailer(b, "-", "-");
    return 1;
}

/* Breaks the line just written at b[start..] in one of several ways a real
 * pipeline meets: cut short, an impossible date, a bad status, bytes that
 * are not UTF-8, a lost quote, or plain garbage. */
static void break_line(lp_gen *g, lp_buf *b, size_t start, size_t quote)
{
    char *line = b->data + start;
    switch (below(g, 6)) {
    case 0: /* truncated inside the request */
        b->len = start + 1 + below(g, (uint32_t)quote - 1);
        break;
    case 1: { /* impossible time: hour 99 */
        int zoneless = g->opts.format == LP_FORMAT_COMBINED_ZONELESS; /* "Jan 21 2026, HH" vs "10/Oct/2000:HH" */
        char *open = memchr(line, '[', quote);
        char *mark = open ? memchr(open, zoneless ? ',' : ':', quote - (size_t)(open - line)) : NULL;
        char *hour = mark ? mark + (zoneless ? 2 : 1) : NULL;
        if (hour) {
            hour[0] = '9';
            hour[1] = '9';
        }
        break;
    }
    case 2: { /* status is not a number */
        char *sp = line + quote + 2;
        if (sp + 3 <= b->data + b->len)
            memcpy(sp, "2x0", 3);
        break;
    }
    case 3: /* invalid UTF-8 and a NUL where the client address was */
        line[0] = '\xff';
        line[1] = '\0';
        break;
    case 4: /* the request's closing quote is lost */
        line[quote] = ' ';
        break;
    default:
        b->len = start;
        lp_buf_puts_lit(b, "GARBAGE \x01\x02 this is not an access log line");
    }
}

void lp_gen_line(lp_gen *g, lp_buf *out)
{
    size_t start = out->len;
    if (g->opts.realistic && put_incomplete_line(g, out)) {
        g->now_ms += below(g, 10);
        return;
    }
    size_t quote = put_good_line(g, out, 0);
    if (g->malformed_threshold && (uint32_t)(next_u64(g) >> 32) < g->malformed_threshold)
        break_line(g, out, start, quote);
    g->now_ms += below(g, 10); /* about 200 lines per second of log time */
}
