/*
 * parser.c: one access-log line in, one Elastic Common Schema document out.
 *
 * The line is tokenized into slices (formats/access_log.c), its time read by
 * the syntax it is written in (formats/timestamp.c), and each field is then
 * escaped straight from the input into the output buffer. On a reject the
 * output is rolled back to where it was, so callers can append documents
 * back to back into one bulk body without copying.
 *
 * Time zones: combined/common times carry their offset; combined_zoneless's
 * do not, and are read in --timezone. A fixed offset is a constant; an IANA
 * zone needs the offset in force at that local time (DST), found from
 * libc's zone data by a fixed rule (local_offset: ambiguous times are their
 * first occurrence), so @timestamp is a pure function of the line. That is
 * too slow per line, so the answer is cached per quarter hour of local time
 * (zone transitions fall on quarter hours), which for time-ordered logs
 * means one look-up per quarter hour of traffic.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/json.h"
#include "core/timeutil.h"
#include "formats/access_log.h"
#include "parse/parse.h"

struct lp_parser {
    lp_format format;
    int fixed_zone;        /* 1: offset below; 0: IANA zone (local_offset) */
    int32_t offset;        /* seconds east of UTC */
    int64_t cached_key;    /* local quarter hour of the cached offset */
    int32_t cached_offset;
    int keep_original;
    /* ,"ecs":{..},"event":{"dataset":".." without the event's closing
     * brace, formatted once: the constant fields cost one append a line. */
    char constant[160];
    size_t constant_len;
};

static const char *const format_names[] = {"auto", "combined_zoneless", "combined", "common", "vhost_combined"};
#define NFORMATS (sizeof format_names / sizeof format_names[0])

int lp_format_from_name(const char *name)
{
    if (!strcmp(name, "seed"))
        return LP_FORMAT_COMBINED_ZONELESS; /* its first name, kept as an alias */
    for (size_t i = 0; i < NFORMATS; i++)
        if (!strcmp(name, format_names[i]))
            return (int)i;
    return -1;
}

const char *lp_format_name(lp_format f)
{
    return (unsigned)f < NFORMATS ? format_names[f] : "unknown";
}

/* "+05:30", "-0800", "+05" -> seconds east of UTC; -1 when not an offset. */
static int parse_fixed_offset(const char *s, int32_t *out)
{
    unsigned h, m = 0;
    size_t n = strlen(s);
    if ((s[0] != '+' && s[0] != '-') || n < 3)
        return -1;
    char digits[5];
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] == ':' && i == 3)
            continue;
        if (s[i] < '0' || s[i] > '9' || k >= 4)
            return -1;
        digits[k++] = s[i];
    }
    if (k != 2 && k != 4)
        return -1;
    h = (unsigned)(digits[0] - '0') * 10 + (unsigned)(digits[1] - '0');
    if (k == 4)
        m = (unsigned)(digits[2] - '0') * 10 + (unsigned)(digits[3] - '0');
    if (h > 14 || m > 59)
        return -1;
    *out = (int32_t)((h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1));
    return 0;
}

static int is_iana_zone(const char *name)
{
    if (!*name || name[0] == '/' || strstr(name, ".."))
        return 0;
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Seconds east of UTC in force at instant t, from libc's zone data. */
static int32_t offset_at(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    return localtime_r(&tt, &tm) ? (int32_t)tm.tm_gmtoff : 0;
}

/* The offset for a wall-clock time (local: seconds since the epoch read as
 * if UTC). Most local times have one; at a fall-back an hour of them occurs
 * twice, and at a spring-forward an hour of them never occurs. mktime with
 * tm_isdst = -1 picks between the two from the previous call's state, so
 * the same line could get another @timestamp (and another daily index:
 * a duplicate under the same _id) in a replay. The rule here is fixed, and
 * the one Python's zoneinfo (fold=0) and java.time apply: the offset in
 * force before the change, i.e. an ambiguous time is its first occurrence
 * and a missing one is read as if the clock had not yet moved. The offsets
 * a day either side bracket the change (zones change at most once a day). */
static int32_t local_offset(int64_t local)
{
    int32_t before = offset_at(local - 86400), after = offset_at(local + 86400);
    if (offset_at(local - before) == before)
        return before; /* no change, before it, or its first occurrence */
    if (offset_at(local - after) == after)
        return after; /* after the change */
    return before;    /* in a spring-forward gap */
}

/* The offset is cached per quarter hour of local time: zone changes fall on
 * quarter hours, but for the rare historical one that does not (local mean
 * times), a quarter hour whose start and end differ is not cached. The key
 * is floored: before 1970 a truncated key would join two quarter hours. */
static int32_t iana_offset(void *ctx, int64_t local)
{
    lp_parser *p = ctx;
    int64_t key = lp_floor_div(local, 900);
    if (key == p->cached_key)
        return p->cached_offset;
    int32_t offset = local_offset(local);
    if (local_offset(key * 900) == offset && local_offset(key * 900 + 899) == offset) {
        p->cached_key = key;
        p->cached_offset = offset;
    }
    return offset;
}

/* Elastic's rule for the dataset part of a data stream's name (lower
 * case, no '-', which separates the parts), kept to the characters that
 * need no escaping anywhere. */
static int is_dataset_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

static int set_constant_fields(lp_parser *p, const lp_parse_opts *opts, lp_error *e)
{
    const char *dataset = opts->dataset ? opts->dataset : LP_DATASET_DEFAULT;
    if (!is_dataset_name(dataset))
        return lp_fail(e, LP_EXIT_USAGE,
                       "--dataset: \"%.100s\" is not a dataset name: 1 to 100 lower case letters, digits, "
                       "'_' or '.' (the <dataset> of logs-<dataset>-<namespace>)", dataset);
#define CONSTANT_PREFIX ",\"ecs\":{\"version\":\"" LP_ECS_VERSION "\"},\"event\":{\"dataset\":\""
    _Static_assert(sizeof CONSTANT_PREFIX + 100 + 1 <= sizeof p->constant, "room for a 100-byte dataset");
    int n = snprintf(p->constant, sizeof p->constant, CONSTANT_PREFIX "%s\"", dataset);
#undef CONSTANT_PREFIX
    p->constant_len = (size_t)n;
    p->keep_original = opts->keep_original;
    return 0;
}

lp_parser *lp_parser_new(const lp_parse_opts *opts, lp_error *e)
{
    lp_parser *p = lp_xcalloc(1, sizeof *p);
    const char *tz = opts->timezone;
    p->format = opts->format;
    p->fixed_zone = 1;
    p->cached_key = INT64_MIN;
    if (set_constant_fields(p, opts, e) != 0) {
        free(p);
        return NULL;
    }
    if (!tz || !strcmp(tz, "UTC") || !strcmp(tz, "Z") || !strcmp(tz, "utc")) {
        p->offset = 0;
    } else if (parse_fixed_offset(tz, &p->offset) == 0) {
        /* fixed offset */
    } else if (is_iana_zone(tz)) {
        /* localtime_r reads TZ: logpipe reads one zone per process, so setting it is safe. */
        setenv("TZ", tz, 1);
        tzset();
        p->fixed_zone = 0;
    } else {
        free(p);
        lp_fail(e, LP_EXIT_USAGE,
                "--timezone: \"%s\" is not UTC, an offset such as +05:30, or a time zone name such as Europe/Paris",
                tz);
        return NULL;
    }
    return p;
}

void lp_parser_free(lp_parser *p) { free(p); }

/* A quoted field that says something: not "-" and not "". */
static int has_value(lp_slice s) { return s.n && !lp_slice_is_dash(s); }

/* A quoted log field as a JSON string, with the escapes Apache and nginx
 * write inside quotes resolved (lp_json_str_unescaping says which). */
static void put_log_string(lp_buf *b, lp_slice s) { lp_json_str_unescaping(b, s.p, s.n); }

/* Letters, digits, '.', '-' and '_', not starting with '-' (so "-", a field
 * with no value, is not a host name). */
static int is_hostname(lp_slice s)
{
    if (s.n == 0 || s.n > 253 || s.p[0] == '-')
        return 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* inet_pton(AF_INET)'s grammar (glibc's: four decimal octets 0-255, no
 * leading zeros), read in place: the copy and the libc call were 6% of
 * `logpipe parse`'s instructions, and most clients are IPv4. */
static int is_ipv4(lp_slice s)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned v = 0;
        while (i < s.n && i - start < 3 && s.p[i] >= '0' && s.p[i] <= '9')
            v = v * 10 + (unsigned)(s.p[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && s.p[start] == '0'))
            return 0;
        if (part < 3 && (i >= s.n || s.p[i++] != '.'))
            return 0;
    }
    return i == s.n;
}

/* 1: an IP address (source.ip), 0: a host name (source.domain), -1: neither. */
static int classify_host(lp_slice h)
{
    char tmp[64];
    unsigned char addr[16];
    if (is_ipv4(h))
        return 1;
    if (h.n > 0 && h.n < sizeof tmp && memchr(h.p, ':', h.n)) {
        memcpy(tmp, h.p, h.n);
        tmp[h.n] = '\0';
        if (inet_pton(AF_INET6, tmp, addr) == 1)
            return 1;
    }
    return is_hostname(h) ? 0 : -1;
}

/* The format the line's shape says it is in, or NULL and a reason. */
static const char *recognise_format(const lp_access_line *a, lp_format *got)
{
    int clf = lp_time_is_clf(a->time);
    if (a->vhost.n) {
        if (!clf || !a->has_trailer)
            return "unrecognised format: a field before the client address, but not Apache's vhost_combined "
                   "(a time such as [10/Oct/2000:13:55:36 -0700], a referrer and a user agent)";
        *got = LP_FORMAT_VHOST_COMBINED;
        return NULL;
    }
    /* combined_zoneless always ends with referrer and agent: without them the
     * line was cut short, possibly inside the size field. */
    if (!clf && !a->has_trailer)
        return "truncated line: the combined_zoneless format ends with a referrer and a user agent";
    *got = !clf ? LP_FORMAT_COMBINED_ZONELESS : a->has_trailer ? LP_FORMAT_COMBINED : LP_FORMAT_COMMON;
    return NULL;
}

/* Why a line read as format got is not in the forced format want. */
static const char *wrong_format(lp_format want, lp_format got)
{
    switch (want) {
    case LP_FORMAT_COMBINED_ZONELESS:
        return "not the combined_zoneless format: expected a time such as [Jan 21 2026, 22:23:40]";
    case LP_FORMAT_VHOST_COMBINED:
        return "not the vhost_combined format: expected \"host:port\" before the client address";
    default:
        if (got == LP_FORMAT_VHOST_COMBINED)
            return want == LP_FORMAT_COMBINED ? "not the combined format: a virtual host before the client address"
                                              : "not the common format: a virtual host before the client address";
        if (got == LP_FORMAT_COMBINED_ZONELESS)
            return want == LP_FORMAT_COMBINED
                       ? "not the combined format: expected a time such as [10/Oct/2000:13:55:36 -0700]"
                       : "not the common format: expected a time such as [10/Oct/2000:13:55:36 -0700]";
        return want == LP_FORMAT_COMBINED ? "not the combined format: no referrer and user agent"
                                          : "not the common format: unexpected referrer and user agent";
    }
}

static const char *check_format(lp_format want, const lp_access_line *a, lp_format *got)
{
    const char *why = recognise_format(a, got);
    if (why || want == LP_FORMAT_AUTO || want == *got)
        return why;
    return wrong_format(want, *got);
}

/* Splits Apache's "%v:%p" (the virtual host's ServerName and its port) at
 * the last colon; "[v6]:port" loses its brackets. The port is required:
 * without it, a client address followed by a user name with a space in it
 * ("1.2.3.4 - john doe [") would pass for a virtual host. */
static int split_vhost(lp_slice v, lp_slice *name, int32_t *port)
{
    const char *colon = v.p + v.n;
    while (colon > v.p && colon[-1] != ':')
        colon--;
    size_t digits = (size_t)(v.p + v.n - colon);
    if (colon <= v.p + 1 || digits == 0 || digits > 5)
        return 0;
    *name = (lp_slice){v.p, (size_t)(colon - 1 - v.p)};
    if (name->p[name->n - 1] == ']' && name->p[0] == '[')
        *name = (lp_slice){name->p + 1, name->n - 2};
    else if (memchr(name->p, ':', name->n))
        return 0; /* an IPv6 name must be bracketed, or its last group would be the port */
    int32_t n = 0;
    for (const char *d = colon; d < v.p + v.n; d++) {
        if (*d < '0' || *d > '9')
            return 0;
        n = n * 10 + (*d - '0');
    }
    *port = n;
    return n >= 1 && n <= 65535 && name->n > 0;
}

/* The virtual host of a vhost_combined line, read. */
typedef struct lp_vhost {
    lp_slice name;
    int kind; /* as classify_host: 1 an address, 0 a host name */
    int32_t port;
} lp_vhost;

/*
 * Optional members: a member is written with its leading comma unless it is
 * the first of its object, and an object that got no member is taken back,
 * so a field that is not there is absent, never null or "". The usual line
 * (an HTTP request with a status) takes the same few literal appends it
 * always did; only the lines of requests that never completed go through
 * the checks.
 */
#define member(b, first, lit) \
    ((b)->len == (first) ? lp_buf_append((b), &(lit)[1], sizeof(lit) - 2) : lp_buf_puts_lit((b), lit))

/* Closes @timestamp's string too, saving an append per line. */
static void put_client(lp_buf *b, const lp_access_line *a, int host_kind)
{
    if (host_kind)
        lp_buf_puts_lit(b, "\",\"source\":{\"ip\":");
    else
        lp_buf_puts_lit(b, "\",\"source\":{\"domain\":");
    lp_json_str(b, a->host.p, a->host.n);
    lp_buf_putc(b, '}');
}

/* Apache's %v:%p: the virtual host that answered (ECS server.*). */
static void put_server(lp_buf *b, lp_slice name, int name_kind, int32_t port)
{
    if (name_kind)
        lp_buf_puts_lit(b, ",\"server\":{\"ip\":");
    else
        lp_buf_puts_lit(b, ",\"server\":{\"domain\":");
    lp_json_str(b, name.p, name.n);
    lp_buf_puts_lit(b, ",\"port\":");
    lp_buf_append_u64(b, (uint64_t)port);
    lp_buf_putc(b, '}');
}

static void put_http(lp_buf *b, const lp_access_line *a)
{
    static const char open_http[] = ",\"http\":{";
    size_t opened_at = b->len, first = b->len + sizeof open_http - 1;
    int referrer = a->has_trailer && has_value(a->referrer);
    if (a->method.n) {
        lp_buf_puts_lit(b, ",\"http\":{\"request\":{\"method\":");
        lp_json_str(b, a->method.p, a->method.n);
        if (referrer) {
            lp_buf_puts_lit(b, ",\"referrer\":");
            put_log_string(b, a->referrer);
        }
        lp_buf_putc(b, '}');
    } else if (referrer) { /* a referrer sent with a request line that was not HTTP */
        lp_buf_puts_lit(b, ",\"http\":{\"request\":{\"referrer\":");
        put_log_string(b, a->referrer);
        lp_buf_putc(b, '}');
    } else {
        lp_buf_puts_lit(b, ",\"http\":{");
    }
    if (a->protocol.n) {
        lp_buf_puts_lit(b, ",\"version\":");
        lp_json_str(b, a->protocol.p, a->protocol.n);
    }
    if (a->status) {
        member(b, first, ",\"response\":{\"status_code\":");
        lp_buf_append_u64(b, (uint64_t)a->status);
        if (a->bytes >= 0) {
            lp_buf_puts_lit(b, ",\"body\":{\"bytes\":");
            lp_buf_append_u64(b, (uint64_t)a->bytes);
            lp_buf_putc(b, '}');
        }
        lp_buf_putc(b, '}');
    } else if (a->bytes >= 0) {
        member(b, first, ",\"response\":{\"body\":{\"bytes\":");
        lp_buf_append_u64(b, (uint64_t)a->bytes);
        lp_buf_puts_lit(b, "}}");
    }
    if (b->len == first)
        b->len = opened_at; /* nothing at all was logged about the request */
    else
        lp_buf_putc(b, '}');
}

/* An HTTP request's target, split; any other request kept whole. */
static void put_url(lp_buf *b, const lp_access_line *a)
{
    if (a->request_kind == LP_REQUEST_NONE)
        return;
    lp_buf_puts_lit(b, ",\"url\":{\"original\":");
    if (a->request_kind == LP_REQUEST_RAW) {
        put_log_string(b, a->request);
        lp_buf_putc(b, '}');
        return;
    }
    put_log_string(b, a->target);
    lp_buf_puts_lit(b, ",\"path\":");
    put_log_string(b, a->path);
    if (a->query.p) {
        lp_buf_puts_lit(b, ",\"query\":");
        put_log_string(b, a->query);
    }
    lp_buf_putc(b, '}');
}

/* ecs.version, event.dataset and, when kept, event.original: the whole
 * line, escaped as any other field (so its invalid UTF-8 becomes U+FFFD). */
static void put_constant_fields(lp_buf *b, const lp_parser *p, const char *line, size_t len)
{
    lp_buf_append(b, p->constant, p->constant_len);
    if (p->keep_original) {
        lp_buf_puts_lit(b, ",\"original\":");
        lp_json_str(b, line, len);
    }
    lp_buf_puts_lit(b, "}}");
}

/* Leaves the object open: put_constant_fields closes it. */
static void put_document(lp_buf *b, const lp_access_line *a, int host_kind, const lp_vhost *vhost,
                         int64_t ts)
{
    lp_buf_puts_lit(b, "{\"@timestamp\":\"");
    lp_append_rfc3339(b, ts);
    put_client(b, a, host_kind);
    if (a->vhost.n)
        put_server(b, vhost->name, vhost->kind, vhost->port);
    if (!lp_slice_is_dash(a->user)) {
        lp_buf_puts_lit(b, ",\"user\":{\"name\":");
        lp_json_str(b, a->user.p, a->user.n);
        lp_buf_putc(b, '}');
    }
    put_http(b, a);
    put_url(b, a);
    if (a->has_trailer && has_value(a->agent)) {
        lp_buf_puts_lit(b, ",\"user_agent\":{\"original\":");
        put_log_string(b, a->agent);
        lp_buf_putc(b, '}');
    }
}

static int32_t fixed_offset(void *ctx, int64_t local)
{
    (void)local;
    return ((lp_parser *)ctx)->offset;
}

/* Reads the vhost_combined prefix; NULL or a reason. */
static const char *read_vhost(lp_slice v, lp_vhost *out)
{
    if (!split_vhost(v, &out->name, &out->port))
        return "bad virtual host: expected \"name:port\" (Apache's %v:%p) before the client address";
    if ((out->kind = classify_host(out->name)) < 0)
        return "bad virtual host: neither an IP address nor a host name";
    return NULL;
}

int lp_parse_line(lp_parser *p, const char *line, size_t len, lp_buf *out, lp_parse_result *res)
{
    lp_access_line a;
    lp_vhost vhost = {{NULL, 0}, 0, -1};
    const char *why = lp_access_tokenize(line, len, &a);
    int host_kind = 0;
    if (!why)
        why = check_format(p->format, &a, &res->format);
    if (!why) {
        why = lp_time_is_clf(a.time)
                  ? lp_time_read_clf(a.time, &res->timestamp)
                  : lp_time_read_zoneless(a.time, p->fixed_zone ? fixed_offset : iana_offset, p,
                                      &res->timestamp);
    }
    if (!why && a.vhost.n)
        why = read_vhost(a.vhost, &vhost);
    if (!why && (host_kind = classify_host(a.host)) < 0)
        why = "bad client address: neither an IP address nor a host name";
    res->reject_reason = why;
    if (why)
        return -1;
    put_document(out, &a, host_kind, &vhost, res->timestamp);
    put_constant_fields(out, p, line, len);
    return 0;
}
