/*
 * access_log.c: the tokenizer shared by the combined, combined_zoneless,
 * common and vhost_combined formats (see access_log.h for the shape).
 *
 * It walks the line once with memchr and never copies: every field is a
 * slice of the input. Quoted fields may contain backslash escapes (Apache
 * writes a quote inside a field as \"), so the closing quote is the first
 * unescaped one; the escapes themselves are resolved later, while the field
 * is written out as JSON. Whatever follows the user agent (nginx formats
 * often append "$http_x_forwarded_for") is ignored.
 *
 * What makes a line an access log is its frame (addresses, [time], a quoted
 * request, a status); the request inside the quotes is whatever the client
 * sent, so a request line that is not HTTP is described (LP_REQUEST_RAW)
 * rather than rejected: those are the scanners and misconfigured TLS
 * clients an operator looks for first.
 */
#include <string.h>

#include "formats/access_log.h"

typedef struct cursor {
    const char *p, *end;
} cursor;

/* A space-delimited token; fails on an empty one. */
static int take_token(cursor *c, lp_slice *out)
{
    const char *sp = memchr(c->p, ' ', (size_t)(c->end - c->p));
    if (!sp || sp == c->p)
        return 0;
    out->p = c->p;
    out->n = (size_t)(sp - c->p);
    c->p = sp + 1;
    return 1;
}

/* A field between open and close characters, then a space or end of line. */
static int take_bracketed(cursor *c, lp_slice *out)
{
    if (c->p >= c->end || *c->p != '[')
        return 0;
    const char *close = memchr(c->p + 1, ']', (size_t)(c->end - c->p - 1));
    if (!close)
        return 0;
    out->p = c->p + 1;
    out->n = (size_t)(close - out->p);
    c->p = close + 1;
    return 1;
}

/* A double-quoted field; a backslash escapes the next byte. */
static int take_quoted(cursor *c, lp_slice *out)
{
    if (c->p >= c->end || *c->p != '"')
        return 0;
    const char *q = c->p + 1;
    for (;;) {
        const char *quote = memchr(q, '"', (size_t)(c->end - q));
        if (!quote)
            return 0;
        /* The quote is escaped if an odd number of backslashes precede it. */
        size_t bs = 0;
        while (quote - bs > c->p + 1 && quote[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0) {
            out->p = c->p + 1;
            out->n = (size_t)(quote - out->p);
            c->p = quote + 1;
            return 1;
        }
        q = quote + 1;
    }
}

static int skip_space(cursor *c)
{
    if (c->p >= c->end || *c->p != ' ')
        return 0;
    c->p++;
    return 1;
}

/* Three digits from 100 to 599, or '-' (0) when the server logged none. */
static int read_status(lp_slice s, int *status)
{
    if (lp_slice_is_dash(s)) {
        *status = 0;
        return 1;
    }
    if (s.n != 3 || s.p[0] < '1' || s.p[0] > '5' || s.p[1] < '0' || s.p[1] > '9' || s.p[2] < '0' ||
        s.p[2] > '9')
        return 0;
    *status = (s.p[0] - '0') * 100 + (s.p[1] - '0') * 10 + (s.p[2] - '0');
    return 1;
}

static int read_bytes(lp_slice s, int64_t *bytes)
{
    if (lp_slice_is_dash(s)) {
        *bytes = -1;
        return 1;
    }
    if (s.n == 0 || s.n > 18)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return 0;
        v = v * 10 + d;
    }
    *bytes = v;
    return 1;
}

static int is_method_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_' || c == '-'; }

/* An HTTP version after "HTTP/": a digit first, at most "x.y" plus room. */
static int is_http_version(lp_slice v) { return v.n && v.n <= 8 && v.p[0] >= '0' && v.p[0] <= '9'; }

/* "METHOD target HTTP/x.y" or the HTTP/0.9 form "METHOD target"; 0 when
 * the request is not in either form. */
static int split_http_request(lp_access_line *a)
{
    lp_slice r = a->request;
    const char *sp1 = memchr(r.p, ' ', r.n);
    if (!sp1 || sp1 == r.p || sp1 - r.p > 32 || r.p[0] < 'A' || r.p[0] > 'Z')
        return 0;
    for (const char *q = r.p; q < sp1; q++)
        if (!is_method_char(*q))
            return 0;
    a->method = (lp_slice){r.p, (size_t)(sp1 - r.p)};
    const char *t = sp1 + 1, *end = r.p + r.n;
    /* The protocol is after the last space, so a target with spaces survives. */
    const char *sp2 = end;
    while (sp2 > t && sp2[-1] != ' ')
        sp2--;
    if (sp2 > t && (size_t)(end - sp2) >= 5 && !memcmp(sp2, "HTTP/", 5)) {
        a->target = (lp_slice){t, (size_t)(sp2 - 1 - t)};
        a->protocol = (lp_slice){sp2 + 5, (size_t)(end - sp2 - 5)};
        if (!is_http_version(a->protocol))
            return 0;
    } else {
        a->target = (lp_slice){t, (size_t)(end - t)};
        a->protocol = (lp_slice){end, 0};
    }
    if (a->target.n == 0)
        return 0;
    const char *qm = memchr(a->target.p, '?', a->target.n);
    if (qm) {
        a->path = (lp_slice){a->target.p, (size_t)(qm - a->target.p)};
        a->query = (lp_slice){qm + 1, (size_t)(a->target.p + a->target.n - qm - 1)};
    } else {
        a->path = a->target;
        a->query = (lp_slice){NULL, 0};
    }
    return 1;
}

/* Says what the request field holds; the line is an access log whatever it is. */
static void classify_request(lp_access_line *a)
{
    if (a->request.n == 0 || lp_slice_is_dash(a->request)) {
        a->request_kind = LP_REQUEST_NONE;
    } else if (split_http_request(a)) {
        a->request_kind = LP_REQUEST_HTTP;
        return;
    } else {
        a->request_kind = LP_REQUEST_RAW;
    }
    a->method = a->target = a->protocol = a->path = a->query = (lp_slice){NULL, 0};
}

const char *lp_access_tokenize(const char *line, size_t len, lp_access_line *a)
{
    cursor c = {line, line + len};
    lp_slice status, bytes;
    if (len == 0)
        return "empty line";
    if (!take_token(&c, &a->host) || !take_token(&c, &a->ident) || !take_token(&c, &a->user))
        return "unrecognised format: expected \"host ident user [time] ...\"";
    a->vhost = (lp_slice){NULL, 0};
    if (c.p < c.end && *c.p != '[') {
        /* Apache's vhost_combined: "%v:%p" comes before the client address. */
        a->vhost = a->host;
        a->host = a->ident;
        a->ident = a->user;
        if (!take_token(&c, &a->user))
            return "unrecognised format: expected \"host ident user [time] ...\"";
    }
    if (!take_bracketed(&c, &a->time) || !skip_space(&c))
        return "unrecognised format: expected [time] after the user field";
    if (!take_quoted(&c, &a->request))
        return "unrecognised format: expected a quoted request after [time]";
    if (!skip_space(&c))
        return "truncated line: nothing after the request";
    if (!take_token(&c, &status))
        return "truncated line: no bytes field after the status";
    if (!read_status(status, &a->status))
        return "bad status code: expected three digits from 100 to 599, or -";
    /* bytes ends at a space or at the end of the line. */
    const char *sp = memchr(c.p, ' ', (size_t)(c.end - c.p));
    bytes = (lp_slice){c.p, sp ? (size_t)(sp - c.p) : (size_t)(c.end - c.p)};
    if (!read_bytes(bytes, &a->bytes))
        return "bad bytes field: expected a whole number or '-'";
    c.p = sp ? sp + 1 : c.end;
    a->has_trailer = 0;
    if (sp) {
        if (!take_quoted(&c, &a->referrer) || !skip_space(&c) || !take_quoted(&c, &a->agent))
            return "malformed referrer or user agent: expected two quoted fields";
        a->has_trailer = 1;
    }
    classify_request(a);
    return NULL;
}
