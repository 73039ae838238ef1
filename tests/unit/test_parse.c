/*
 * test_parse.c: access-log line -> ECS document (lib/parse, lib/formats).
 * Every accepted line's output is loaded back with jansson, so a test fails
 * on invalid JSON as well as on a wrong field.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>

#include "check.h"
#include "parse/parse.h"

static lp_parser *parser;
static lp_buf out = LP_BUF_INIT;
static lp_parse_result res;
static json_t *doc;

/* Parses line; returns the document (NULL on reject, reason in res). */
static json_t *parse_n(const char *line, size_t len)
{
    json_decref(doc);
    doc = NULL;
    lp_buf_reset(&out);
    if (lp_parse_line(parser, line, len, &out, &res) != 0) {
        CHECK_INT(out.len, 0); /* a reject leaves the output as it was */
        return NULL;
    }
    json_error_t err;
    doc = json_loadb(out.data, out.len, JSON_ALLOW_NUL, &err);
    if (!doc)
        fprintf(stderr, "invalid JSON (%s): %.*s\n", err.text, (int)out.len, out.data);
    CHECK(doc != NULL);
    return doc;
}

static json_t *parse(const char *line) { return parse_n(line, strlen(line)); }

/* Field by dotted path through nested objects. */
static json_t *field(const char *path)
{
    json_t *v = doc;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
        json_t *next = json_object_get(v, k);
        if (!next && !strcmp(k, "@timestamp"))
            next = json_object_get(v, "@timestamp");
        v = next;
    }
    return v;
}

static const char *str(const char *path) { return json_string_value(field(path)); }
static long long num(const char *path) { return json_is_integer(field(path)) ? json_integer_value(field(path)) : -1; }

static void use_parser(lp_format f, const char *tz)
{
    lp_parser_free(parser);
    lp_parse_opts o = {.format = f, .timezone = tz};
    lp_error e;
    parser = lp_parser_new(&o, &e);
    CHECK(parser != NULL);
}

static void test_combined_zoneless_format(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    CHECK(parse("9.180.123.170 - - [Jan 21 2026, 22:23:40] \"DELETE /contact HTTP/1.1\" 404 13444 "
                "\"https://example.com\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)\""));
    CHECK_INT(res.format, LP_FORMAT_COMBINED_ZONELESS);
    CHECK_STR(str("@timestamp"), "2026-01-21T22:23:40Z");
    CHECK_STR(str("source.ip"), "9.180.123.170");
    CHECK(field("user") == NULL);
    CHECK_STR(str("http.request.method"), "DELETE");
    CHECK_STR(str("url.original"), "/contact");
    CHECK_STR(str("url.path"), "/contact");
    CHECK(field("url.query") == NULL);
    CHECK_STR(str("http.version"), "1.1");
    CHECK_INT(num("http.response.status_code"), 404);
    CHECK_INT(num("http.response.body.bytes"), 13444);
    CHECK_STR(str("http.request.referrer"), "https://example.com");
    CHECK_STR(str("user_agent.original"), "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)");
    CHECK_INT(res.timestamp, 1769034220);
}

static void test_combined_format(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    CHECK(parse("127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif?a=1&b=2 HTTP/1.0\" 200 2326 "
                "\"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\""));
    CHECK_INT(res.format, LP_FORMAT_COMBINED);
    CHECK_STR(str("@timestamp"), "2000-10-10T20:55:36Z");
    CHECK_STR(str("user.name"), "frank");
    CHECK_STR(str("url.original"), "/apache_pb.gif?a=1&b=2");
    CHECK_STR(str("url.path"), "/apache_pb.gif");
    CHECK_STR(str("url.query"), "a=1&b=2");
    CHECK_STR(str("http.version"), "1.0");
    CHECK_STR(str("user_agent.original"), "Mozilla/4.08 [en] (Win98; I ;Nav)");
    /* '-' referrer, agent and size are absent, not "-" */
    CHECK(parse("10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"HEAD / HTTP/1.1\" 304 - \"-\" \"-\""));
    CHECK(field("http.request.referrer") == NULL);
    CHECK(field("user_agent") == NULL);
    CHECK(field("http.response.body") == NULL);
    CHECK_INT(num("http.response.status_code"), 304);
}

static void test_common_format(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    CHECK(parse("2001:db8::1 - bob [01/Jan/2024:00:00:00 +0000] \"POST /api/v1/orders HTTP/2.0\" 201 17"));
    CHECK_INT(res.format, LP_FORMAT_COMMON);
    CHECK_STR(str("source.ip"), "2001:db8::1");
    CHECK_STR(str("user.name"), "bob");
    CHECK_STR(str("http.version"), "2.0");
    CHECK(field("http.request.referrer") == NULL);
    /* A host name where the address goes (HostnameLookups On) is source.domain. */
    CHECK(parse("www.example.org - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1"));
    CHECK_STR(str("source.domain"), "www.example.org");
    CHECK(field("source.ip") == NULL);
}

/* logpipe reads IPv4 addresses itself: it must agree with inet_pton(AF_INET)
 * on every one of these, and what is not an address but is a valid host name
 * becomes source.domain (as glibc's inet_pton would have decided). */
static void test_ipv4_agrees_with_inet_pton(void)
{
    static const char *cases[] = {"1.2.3.4", "01.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1",
                                  "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.04", "1.2.3.400",
                                  "1234.1.1.1", ".1.2.3", "9.180.123.170", "10.0.0.255"};
    use_parser(LP_FORMAT_AUTO, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char line[256];
        unsigned char addr[4];
        snprintf(line, sizeof line, "%s - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1", cases[i]);
        CHECK(parse(line));
        int want_ip = inet_pton(AF_INET, cases[i], addr) == 1;
        CHECK_STR(str(want_ip ? "source.ip" : "source.domain"), cases[i]);
    }
}

static void test_forced_format(void)
{
    const char *seed = "1.2.3.4 - - [Jan 21 2026, 22:23:40] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"";
    const char *combined = "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"";
    use_parser(LP_FORMAT_COMBINED_ZONELESS, NULL);
    CHECK(parse(seed));
    CHECK(!parse(combined));
    CHECK_CONTAINS(res.reject_reason, "not the combined_zoneless format");
    use_parser(LP_FORMAT_COMBINED, NULL);
    CHECK(parse(combined));
    CHECK(!parse(seed));
    use_parser(LP_FORMAT_COMMON, NULL);
    CHECK(!parse(combined));
    CHECK_CONTAINS(res.reject_reason, "not the common format");
    CHECK_INT(lp_format_from_name("combined"), LP_FORMAT_COMBINED);
    /* the zone-less format's name, and "seed", the alias scripts still pass */
    CHECK_INT(lp_format_from_name("combined_zoneless"), LP_FORMAT_COMBINED_ZONELESS);
    CHECK_INT(lp_format_from_name("seed"), LP_FORMAT_COMBINED_ZONELESS);
    CHECK(!strcmp(lp_format_name(LP_FORMAT_COMBINED_ZONELESS), "combined_zoneless"));
    CHECK_INT(lp_format_from_name("json"), -1);
}

static void expect_time(const char *clf_time, const char *want)
{
    char line[256];
    snprintf(line, sizeof line, "1.2.3.4 - - [%s] \"GET / HTTP/1.1\" 200 1", clf_time);
    CHECK(parse(line));
    CHECK_STR(str("@timestamp"), want);
}

static void expect_reject(const char *line, const char *reason_part)
{
    CHECK(parse(line) == NULL);
    CHECK_CONTAINS(res.reject_reason, reason_part);
}

static void test_timestamps(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    expect_time("31/Dec/2025:23:30:00 -0100", "2026-01-01T00:30:00Z"); /* crosses midnight and year */
    expect_time("01/Jan/2026:00:30:00 +0100", "2025-12-31T23:30:00Z");
    expect_time("29/Feb/2024:12:00:00 +0000", "2024-02-29T12:00:00Z"); /* leap day */
    expect_time("29/Feb/2000:12:00:00 +0000", "2000-02-29T12:00:00Z"); /* 400-year leap */
    expect_time("01/Mar/2024:01:00:00 +1400", "2024-02-29T11:00:00Z");
    expect_time("28/Feb/2023:23:00:00 -1200", "2023-03-01T11:00:00Z");
    expect_time("01/Jan/1970:00:00:00 +0000", "1970-01-01T00:00:00Z");
    expect_reject("1.2.3.4 - - [29/Feb/2023:12:00:00 +0000] \"GET / HTTP/1.1\" 200 1", "February");
    expect_reject("1.2.3.4 - - [29/Feb/1900:12:00:00 +0000] \"GET / HTTP/1.1\" 200 1", "February");
    expect_reject("1.2.3.4 - - [31/Apr/2024:12:00:00 +0000] \"GET / HTTP/1.1\" 200 1", "day does not exist");
    expect_reject("1.2.3.4 - - [Feb 30 2024, 10:00:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "February");
    expect_reject("1.2.3.4 - - [Jan 21 2026, 99:00:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "hour");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:60:00 -0700] \"GET / HTTP/1.1\" 200 1", "minute");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:60 -0700] \"GET / HTTP/1.1\" 200 1", "second");
    expect_reject("1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1", "bad timestamp");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 +1500] \"GET / HTTP/1.1\" 200 1", "zone offset");
    expect_reject("1.2.3.4 - - [10/Oct/2000 13:55:36] \"GET / HTTP/1.1\" 200 1", "bad timestamp");
}

static void test_timezones(void)
{
    const char *line = "1.2.3.4 - - [Jul 01 2025, 12:00:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"";
    use_parser(LP_FORMAT_AUTO, "+05:30");
    CHECK(parse(line));
    CHECK_STR(str("@timestamp"), "2025-07-01T06:30:00Z");
    use_parser(LP_FORMAT_AUTO, "-0800");
    CHECK(parse(line));
    CHECK_STR(str("@timestamp"), "2025-07-01T20:00:00Z");
    use_parser(LP_FORMAT_AUTO, "Europe/Paris"); /* summer: +02:00 */
    CHECK(parse(line));
    CHECK_STR(str("@timestamp"), "2025-07-01T10:00:00Z");
    /* winter: +01:00; and across the October DST change in one parser */
    CHECK(parse("1.2.3.4 - - [Jan 15 2025, 12:00:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""));
    CHECK_STR(str("@timestamp"), "2025-01-15T11:00:00Z");
    CHECK(parse("1.2.3.4 - - [Oct 26 2025, 01:30:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""));
    CHECK_STR(str("@timestamp"), "2025-10-25T23:30:00Z");
    CHECK(parse("1.2.3.4 - - [Oct 26 2025, 04:30:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""));
    CHECK_STR(str("@timestamp"), "2025-10-26T03:30:00Z");
    /* Zone-carrying formats ignore --timezone. */
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1"));
    CHECK_STR(str("@timestamp"), "2000-10-10T20:55:36Z");
    lp_parse_opts bad = {.format = LP_FORMAT_AUTO, .timezone = "Mars/Olympus"};
    lp_error e;
    CHECK(lp_parser_new(&bad, &e) == NULL);
    CHECK_CONTAINS(e.msg, "--timezone");
    CHECK_INT(e.code, LP_EXIT_USAGE);
    bad.timezone = "+25:00";
    CHECK(lp_parser_new(&bad, &e) == NULL);
}

/* The time of a seed line in zone tz, after parser state left by prime. */
static const char *seed_time_after(const char *tz, const char *prime, const char *when)
{
    static char buf[64];
    char line[200];
    use_parser(LP_FORMAT_AUTO, tz);
    if (prime) {
        snprintf(line, sizeof line, "1.2.3.4 - - [%s] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", prime);
        CHECK(parse(line));
        use_parser(LP_FORMAT_AUTO, tz); /* a fresh parser: only libc's state is left */
    }
    snprintf(line, sizeof line, "1.2.3.4 - - [%s] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", when);
    CHECK(parse(line));
    snprintf(buf, sizeof buf, "%s", str("@timestamp") ? str("@timestamp") : "(none)");
    return buf;
}

/* A wall-clock time that occurs twice (the fall-back hour) or never (the
 * spring-forward hour) has one reading whatever was parsed before it, so a
 * replay gives the same @timestamp and index: the offset in force before
 * the change (the first occurrence; a missing time as if the clock had not
 * moved). mktime answered from its previous call's state. */
static void test_ambiguous_local_times(void)
{
    static const char *const primes[] = {NULL, "Jan 15 2025, 12:00:00", "Jul 01 2025, 12:00:00",
                                         "Oct 26 2025, 03:10:00", "Oct 26 2025, 01:50:00"};
    for (size_t i = 0; i < sizeof primes / sizeof *primes; i++) {
        CHECK_STR(seed_time_after("Europe/Paris", primes[i], "Oct 26 2025, 02:30:00"), "2025-10-26T00:30:00Z");
        CHECK_STR(seed_time_after("Europe/Paris", primes[i], "Oct 26 2025, 02:59:59"), "2025-10-26T00:59:59Z");
        CHECK_STR(seed_time_after("Europe/Paris", primes[i], "Oct 26 2025, 03:00:00"), "2025-10-26T02:00:00Z");
        CHECK_STR(seed_time_after("Europe/Paris", primes[i], "Mar 30 2025, 02:30:00"), "2025-03-30T01:30:00Z");
        CHECK_STR(seed_time_after("America/New_York", primes[i], "Nov 02 2025, 01:30:00"), "2025-11-02T05:30:00Z");
        CHECK_STR(seed_time_after("America/New_York", primes[i], "Mar 09 2025, 02:30:00"), "2025-03-09T07:30:00Z");
    }
    /* Before 1970 (negative local times): New York was on EST then. */
    CHECK_STR(seed_time_after("America/New_York", NULL, "Dec 31 1969, 23:50:00"), "1970-01-01T04:50:00Z");
    CHECK_STR(seed_time_after("America/New_York", "Jan 01 1970, 00:05:00", "Dec 31 1969, 23:59:59"),
              "1970-01-01T04:59:59Z");
    /* Paris kept its mean time (+00:09:21) until 1911: an offset that is
     * not whole quarter hours. */
    CHECK_STR(seed_time_after("Europe/Paris", NULL, "Jan 01 1900, 12:00:00"), "1900-01-01T11:50:39Z");
}

static void test_rejects(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    expect_reject("", "empty line");
    expect_reject("   ", "unrecognised format");
    expect_reject("garbage", "unrecognised format");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 2x0 1", "status");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 600 1", "status");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1k", "bytes");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1", "quoted request");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"-\" -- 0", "status");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"-\" 408", "truncated");
    expect_reject("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\"", "referrer");
    expect_reject("\xff\xfe - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1", "client address");
    /* Truncated at every byte: never accepted, never a crash. */
    const char *full = "9.180.123.170 - - [Jan 21 2026, 22:23:40] \"DELETE /contact HTTP/1.1\" 404 13444 \"https://example.com\" \"UA\"";
    size_t n = strlen(full), accepted = 0;
    for (size_t i = 0; i < n; i++)
        accepted += parse_n(full, i) != NULL;
    CHECK_INT(accepted, 0);
}

/*
 * Real servers' lines, one per shape, each with the whole document it must
 * become (so a field that should be absent and is there fails as surely as
 * a wrong value), and lines that are not access logs at all, with the
 * reject reason. Every line is copied from the named source: a web server's
 * documentation or a log parser's own test suite. docs/schema.md lists the
 * shapes.
 */
typedef struct shape_case {
    const char *line, *document;
} shape_case;

typedef struct reject_case {
    const char *line, *reason;
} reject_case;

static const shape_case shapes[] = {
    /* Apache's own example, mod_log_config docs (httpd.apache.org/docs/2.4/logs.html): a request that completed */
    {"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"",
     "{\"@timestamp\":\"2000-10-10T20:55:36Z\",\"source\":{\"ip\":\"127.0.0.1\"},\"user\":{\"name\":\"frank\"},\"http\":{\"request\":{\"method\":\"GET\",\"referrer\":\"http://www.example.com/start.html\"},\"version\":\"1.0\",\"response\":{\"status_code\":200,\"body\":{\"bytes\":2326}}},\"url\":{\"original\":\"/apache_pb.gif\",\"path\":\"/apache_pb.gif\"},\"user_agent\":{\"original\":\"Mozilla/4.08 [en] (Win98; I ;Nav)\"}}"},
    /* "-" request, Apache 408, common: elastic/beats filebeat/module/apache/access/test/test.log */
    {"::1 - - [26/Dec/2016:16:16:48 +0200] \"-\" 408 -",
     "{\"@timestamp\":\"2016-12-26T14:16:48Z\",\"source\":{\"ip\":\"::1\"},\"http\":{\"response\":{\"status_code\":408}}}"},
    /* "-" request, Apache 408, combined with %O: elastic/beats filebeat/module/apache/access/test/test.log */
    {"127.0.0.1 - - [02/Feb/2019:05:38:45 +0100] \"-\" 408 152 \"-\" \"-\"",
     "{\"@timestamp\":\"2019-02-02T04:38:45Z\",\"source\":{\"ip\":\"127.0.0.1\"},\"http\":{\"response\":{\"status_code\":408,\"body\":{\"bytes\":152}}}}"},
    /* "-" request, Apache 408 with a 0 size: mvar/apache2-log-parser tests/MVar/Apache2LogParser/AccessLogParserTest.php */
    {"192.168.25.1 - - [25/Jun/2012:14:00:14 -0700] \"-\" 408 0 \"-\" \"-\"",
     "{\"@timestamp\":\"2012-06-25T21:00:14Z\",\"source\":{\"ip\":\"192.168.25.1\"},\"http\":{\"response\":{\"status_code\":408,\"body\":{\"bytes\":0}}}}"},
    /* "" request, nginx 400 (connection closed before a request line): elastic/beats filebeat/module/nginx/access/test/test.log */
    {"127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] \"\" 400 0 \"-\" \"-\"",
     "{\"@timestamp\":\"2018-04-12T07:48:40Z\",\"source\":{\"ip\":\"127.0.0.1\"},\"http\":{\"response\":{\"status_code\":400,\"body\":{\"bytes\":0}}}}"},
    /* "" request with a user and a trailing field: fail2ban/fail2ban fail2ban/tests/files/logs/nginx-bad-request */
    {"12.34.56.78 - root [20/Jan/2015:19:53:28 +0100] \"\" 400 47 \"-\" \"-\" \"-\"",
     "{\"@timestamp\":\"2015-01-20T18:53:28Z\",\"source\":{\"ip\":\"12.34.56.78\"},\"user\":{\"name\":\"root\"},\"http\":{\"response\":{\"status_code\":400,\"body\":{\"bytes\":47}}}}"},
    /* TLS handshake on nginx's plain-text port, 400: VilleSalonen/villesalonen.fi _posts/2015-12-30-lets-encrypt.md */
    {"91.157.67.239 - - [30/Dec/2015:12:11:01 +0200] \"\\x16\\x03\\x01\\x00\\xCA\\x01\\x00\\x00\\xC6\\x03\\x03\\xA9\\x0B}\\xEA\\xE1A\\xAB\\xF5\\xF6\\xFA\\xCC\\xC5{U\\xC9\\xA61\\x16\\xFF\\x83Q\\xDB\\x05\\xA1\\x96R\\xC57q3\\x80\\x9E\\x00\\x00\\x1E\\xC0+\\xC0/\\x00\\x9E\\xCC\\x14\\xCC\\x13\\xC0\" 400 181 \"-\" \"-\"",
     "{\"@timestamp\":\"2015-12-30T10:11:01Z\",\"source\":{\"ip\":\"91.157.67.239\"},\"http\":{\"response\":{\"status_code\":400,\"body\":{\"bytes\":181}}},\"url\":{\"original\":\"\\\\x16\\\\x03\\\\x01\\\\x00\\\\xCA\\\\x01\\\\x00\\\\x00\\\\xC6\\\\x03\\\\x03\\\\xA9\\\\x0B}\\\\xEA\\\\xE1A\\\\xAB\\\\xF5\\\\xF6\\\\xFA\\\\xCC\\\\xC5{U\\\\xC9\\\\xA61\\\\x16\\\\xFF\\\\x83Q\\\\xDB\\\\x05\\\\xA1\\\\x96R\\\\xC57q3\\\\x80\\\\x9E\\\\x00\\\\x00\\\\x1E\\\\xC0+\\\\xC0/\\\\x00\\\\x9E\\\\xCC\\\\x14\\\\xCC\\\\x13\\\\xC0\"}}"},
    /* RDP scanner on the HTTP port, 400: fail2ban/fail2ban fail2ban/tests/files/logs/nginx-bad-request */
    {"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] \"\\x03\\x00\\x00/*\\xE0\\x00\\x00\\x00\\x00\\x00Cookie: mstshash=Administr\" 400 47 \"-\" \"-\" \"-\"",
     "{\"@timestamp\":\"2015-01-20T18:53:28Z\",\"source\":{\"ip\":\"12.34.56.78\"},\"http\":{\"response\":{\"status_code\":400,\"body\":{\"bytes\":47}}},\"url\":{\"original\":\"\\\\x03\\\\x00\\\\x00/*\\\\xE0\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00Cookie: mstshash=Administr\"}}"},
    /* one word, not HTTP, 400: fail2ban/fail2ban fail2ban/tests/files/logs/nginx-bad-request */
    {"12.34.56.78 - - [20/Jan/2015:19:54:28 +0100] \"HELP\" 400 47 \"-\" \"-\" \"-\"",
     "{\"@timestamp\":\"2015-01-20T18:54:28Z\",\"source\":{\"ip\":\"12.34.56.78\"},\"http\":{\"response\":{\"status_code\":400,\"body\":{\"bytes\":47}}},\"url\":{\"original\":\"HELP\"}}"},
    /* CONNECT to a proxy that is not one, 400 (an HTTP request line: kept as one): fail2ban/fail2ban fail2ban/tests/files/logs/nginx-bad-request */
    {"7.8.9.10 - root [20/Jan/2015:01:17:07 +0100] \"CONNECT 123.123.123.123 HTTP/1.1\" 400 162 \"-\" \"-\" \"-\"",
     "{\"@timestamp\":\"2015-01-20T00:17:07Z\",\"source\":{\"ip\":\"7.8.9.10\"},\"user\":{\"name\":\"root\"},\"http\":{\"request\":{\"method\":\"CONNECT\"},\"version\":\"1.1\",\"response\":{\"status_code\":400,\"body\":{\"bytes\":162}}},\"url\":{\"original\":\"123.123.123.123\",\"path\":\"123.123.123.123\"}}"},
    /* status logged as "-": logstash-plugins/logstash-patterns-core spec/patterns/httpd_spec.rb ("sample OPTIONS line") */
    {"83.149.9.216 - a.user [11/Jan/2020:23:05:27 +0100] \"OPTIONS /remote.php/ HTTP/1.1\" - 7908 \"-\" \"monitoring-client (v2.2)\"",
     "{\"@timestamp\":\"2020-01-11T22:05:27Z\",\"source\":{\"ip\":\"83.149.9.216\"},\"user\":{\"name\":\"a.user\"},\"http\":{\"request\":{\"method\":\"OPTIONS\"},\"version\":\"1.1\",\"response\":{\"body\":{\"bytes\":7908}}},\"url\":{\"original\":\"/remote.php/\",\"path\":\"/remote.php/\"},\"user_agent\":{\"original\":\"monitoring-client (v2.2)\"}}"},
    /* empty referrer "": logstash-plugins/logstash-patterns-core spec/patterns/httpd_spec.rb ("email address in auth field") */
    {"10.0.0.1 - username@example.com [07/Apr/2016:18:42:24 +0000] \"GET /bar/foo/users/1/username%40example.com/authenticate?token=blargh&client_id=15 HTTP/1.1\" 400 75 \"\" \"Mozilla/5.0 (iPad; CPU OS 9_3_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Version/9.0 Mobile/13E238 Safari/601.1\"",
     "{\"@timestamp\":\"2016-04-07T18:42:24Z\",\"source\":{\"ip\":\"10.0.0.1\"},\"user\":{\"name\":\"username@example.com\"},\"http\":{\"request\":{\"method\":\"GET\"},\"version\":\"1.1\",\"response\":{\"status_code\":400,\"body\":{\"bytes\":75}}},\"url\":{\"original\":\"/bar/foo/users/1/username%40example.com/authenticate?token=blargh&client_id=15\",\"path\":\"/bar/foo/users/1/username%40example.com/authenticate\",\"query\":\"token=blargh&client_id=15\"},\"user_agent\":{\"original\":\"Mozilla/5.0 (iPad; CPU OS 9_3_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Version/9.0 Mobile/13E238 Safari/601.1\"}}"},
    /* vhost_combined, Ubuntu's Apache (%v is an address): mvar/apache2-log-parser tests/MVar/Apache2LogParser/AccessLogParserTest.php */
    {"127.0.1.1:80 127.0.0.1 - - [26/Jun/2012:10:41:10 -0700] \"OPTIONS * HTTP/1.0\" 200 126 \"-\" \"Apache/2.2.22 (Ubuntu) (internal dummy connection)\"",
     "{\"@timestamp\":\"2012-06-26T17:41:10Z\",\"source\":{\"ip\":\"127.0.0.1\"},\"server\":{\"ip\":\"127.0.1.1\",\"port\":80},\"http\":{\"request\":{\"method\":\"OPTIONS\"},\"version\":\"1.0\",\"response\":{\"status_code\":200,\"body\":{\"bytes\":126}}},\"url\":{\"original\":\"*\",\"path\":\"*\"},\"user_agent\":{\"original\":\"Apache/2.2.22 (Ubuntu) (internal dummy connection)\"}}"},
    /* vhost_combined, "-" request, 408 behind a load balancer, a field appended: Server Fault question as copied at serverdevworker.com/13936b110 */
    {"www.example.com:80 10.240.1.8 - - [06/Mar/2013:00:39:19 +0000] \"-\" 408 0 \"-\" \"-\" -",
     "{\"@timestamp\":\"2013-03-06T00:39:19Z\",\"source\":{\"ip\":\"10.240.1.8\"},\"server\":{\"domain\":\"www.example.com\",\"port\":80},\"http\":{\"response\":{\"status_code\":408,\"body\":{\"bytes\":0}}}}"},
};

static const reject_case not_access_logs[] = {
    /* "%v %h ..." (a virtual host without its port: not vhost_combined, and not told apart from a user name with a space): elastic/beats filebeat/module/apache/access/test/test.log */
    {"vhost1.domaine.fr 123.123.123.123 - - [04/Jul/2019:09:20:46 +0200] \"GET / HTTP/1.1\" 200 32953 \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.100 Safari/537.36\"", "bad virtual host"},
    /* Apache's error log: logstash-plugins/logstash-patterns-core spec/patterns/httpd_spec.rb */
    {"[Mon Aug 31 16:27:04 2015] [error] [client 10.17.42.3] Premature end of script headers: example.com", "unrecognised format"},
    /* nginx's error log: VilleSalonen/villesalonen.fi _posts/2015-12-30-lets-encrypt.md */
    {"2015/12/30 12:14:28 [debug] 1383#0: *46 HTTP/1.1 400 Bad Request", "unrecognised format"},
    /* HAProxy's log: logstash-plugins/logstash-patterns-core spec/patterns/haproxy_spec.rb */
    {"Dec  9 13:01:26 localhost haproxy[28029]: 127.0.0.1:39759 [09/Dec/2013:12:59:46.633] loadbalancer default/instance8 0/51536/1/48082/99627 200 83285 - - ---- 87/87/87/1/0 0/67 {77.24.148.74} \"GET /path/to/image HTTP/1.1\"", "unrecognised format"},
    /* Apache's TLS log (%t %h %{SSL_PROTOCOL}x ...): elastic/beats filebeat/module/apache/access/test/ssl-request.log */
    {"[10/Aug/2018:09:45:56 +0200] 172.30.0.119 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 \"GET /nagiosxi/ajaxhelper.php?cmd=getxicoreajax HTTP/1.1\" 1375", "unrecognised format"},
    /* Python http.server's error message among its access lines: Ryboster/Uni-year2 reflections/security_threats_RESTfulAPI.md */
    {"162.142.125.119 - - [26/Oct/2025 13:42:57] code 505, message Invalid HTTP version (2.0)", "quoted request"},
};

/* Checks the fields every document carries whatever the line (ecs.version,
 * event.dataset; no event.original by default) and removes them, so the
 * shapes below list only what the line decided. */
static int strip_constant_fields(void)
{
    int ok = str("ecs.version") && !strcmp(str("ecs.version"), LP_ECS_VERSION) && str("event.dataset") &&
             !strcmp(str("event.dataset"), LP_DATASET_DEFAULT) && !field("event.original") &&
             json_object_size(json_object_get(doc, "event")) == 1;
    json_object_del(doc, "ecs");
    json_object_del(doc, "event");
    return ok;
}

static void test_real_world_shapes(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        json_error_t err;
        json_t *want = json_loads(shapes[i].document, 0, &err);
        CHECK(want != NULL);
        if (!parse(shapes[i].line)) {
            fprintf(stderr, "rejected (%s): %s\n", res.reject_reason, shapes[i].line);
            CHECK(0);
        } else if (!strip_constant_fields()) {
            CHECK(0);
        } else if (!json_equal(doc, want)) {
            char *got = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
            char *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            fprintf(stderr, "line: %s\n  got:      %s\n  expected: %s\n", shapes[i].line, got, exp);
            free(got);
            free(exp);
            CHECK(0);
        }
        json_decref(want);
    }
    for (size_t i = 0; i < sizeof not_access_logs / sizeof *not_access_logs; i++)
        expect_reject(not_access_logs[i].line, not_access_logs[i].reason);

    /* Apache cut a request line that was too long (414) before the protocol:
     * mvar/apache2-log-parser's test has 7995 bytes of target. */
    char line[8192];
    int n = snprintf(line, sizeof line, "192.168.139.1 - - [10/Oct/2013:00:26:32 +0300] \"GET /");
    memset(line + n, 'a', 7995);
    snprintf(line + n + 7995, sizeof line - (size_t)n - 7995, "\" 414 540 \"-\" \"-\"");
    CHECK(parse(line));
    CHECK_STR(str("http.request.method"), "GET");
    CHECK_INT(json_string_length(field("url.original")), 7996);
    CHECK(field("http.version") == NULL);
    CHECK_INT(num("http.response.status_code"), 414);
}

/* Where the request is not HTTP, it is kept whole; where a line frames no
 * request at all, it is rejected. */
static void test_request_shapes(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    static const char *raw[] = {"get / HTTP/1.1", "GET / HTTP/x.y", "GET  HTTP/1.1", "GET", "- -",
                                "SSH-2.0-Go", "GET /a HTTP/1.1234567890"};
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
        char line[256];
        snprintf(line, sizeof line, "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"%s\" 400 0", raw[i]);
        CHECK(parse(line));
        CHECK_STR(str("url.original"), raw[i]);
        CHECK(field("url.path") == NULL);
        CHECK(field("http.request") == NULL);
        CHECK(field("http.version") == NULL);
    }
    /* escapes in a raw request are resolved as in any quoted field */
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"\\x16\\\"q\" 400 0"));
    CHECK_STR(str("url.original"), "\\x16\"q");
    /* "-" everywhere it may be: nothing but the frame is left */
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"-\" - - \"-\" \"-\""));
    CHECK(field("http") == NULL && field("url") == NULL && field("user_agent") == NULL);
    CHECK_STR(str("source.ip"), "1.2.3.4");
    /* a referrer without a request still belongs under http.request */
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"-\" 408 - \"https://a.example/\" \"-\""));
    CHECK_STR(str("http.request.referrer"), "https://a.example/");
    CHECK(field("http.request.method") == NULL);
}

/* vhost_combined: detected, forced, and its first field read strictly. */
static void test_vhost_combined(void)
{
    const char *vhost = "shop.example.com:443 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"";
    const char *combined = "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"";
    use_parser(LP_FORMAT_AUTO, NULL);
    CHECK(parse(vhost));
    CHECK_INT(res.format, LP_FORMAT_VHOST_COMBINED);
    CHECK_STR(str("server.domain"), "shop.example.com");
    CHECK_INT(num("server.port"), 443);
    CHECK(parse("[2001:db8::1]:8080 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""));
    CHECK_STR(str("server.ip"), "2001:db8::1");
    CHECK_INT(num("server.port"), 8080);
    expect_reject("a.example:0 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    expect_reject("a.example:65536 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    expect_reject("a.example: 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    expect_reject(":80 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    expect_reject("a,b:80 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    /* a virtual host, but without referrer and agent, or with a zone-less time */
    expect_reject("a.example:80 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1", "vhost_combined");
    expect_reject("a.example:80 1.2.3.4 - - [Jan 21 2026, 22:23:40] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "vhost_combined");
    /* a user name with a space in it does not make the client address a virtual host */
    expect_reject("1.2.3.4 - john doe [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    expect_reject("2001:db8::1 - john doe [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "virtual host");
    expect_reject("a.example:80 - john doe [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "client address");
    /* nginx's X-Forwarded-For list before the address is not a virtual host */
    expect_reject("10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] \"GET /ocelot HTTP/1.1\" 200 571 \"-\" \"-\"",
                  "unrecognised format");
    use_parser(LP_FORMAT_VHOST_COMBINED, NULL);
    CHECK(parse(vhost));
    expect_reject(combined, "not the vhost_combined format");
    use_parser(LP_FORMAT_COMBINED, NULL);
    expect_reject(vhost, "not the combined format: a virtual host");
    use_parser(LP_FORMAT_COMMON, NULL);
    expect_reject(vhost, "not the common format: a virtual host");
    CHECK_INT(lp_format_from_name("vhost_combined"), LP_FORMAT_VHOST_COMBINED);
    CHECK_STR(lp_format_name(LP_FORMAT_VHOST_COMBINED), "vhost_combined");
}

static void test_hostile_bytes(void)
{
    use_parser(LP_FORMAT_AUTO, NULL);
    /* Escaped quotes inside quoted fields (Apache writes \" ) */
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a\\\"b HTTP/1.1\" 200 1 \"-\" \"say \\\"hi\\\" \\\\o/\""));
    CHECK_STR(str("url.original"), "/a\"b");
    CHECK_STR(str("user_agent.original"), "say \"hi\" \\o/");
    /* Invalid UTF-8, control characters and NUL in the agent: valid JSON out. */
    static const char raw[] = "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /x HTTP/1.1\" 200 1 \"-\" \"a\xff\xc0\x01\x00z\"";
    CHECK(parse_n(raw, sizeof raw - 1));
    CHECK_INT(json_string_length(field("user_agent.original")), 10);
    CHECK(!memcmp(str("user_agent.original"), "a\xef\xbf\xbd\xef\xbf\xbd\x01\0z", 10));
    /* A 2 MB user agent */
    size_t big = 2u << 20;
    char *line = malloc(big + 200);
    int k = snprintf(line, 200, "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1 \"-\" \"");
    memset(line + k, 'A', big);
    line[k + big] = '"';
    CHECK(parse_n(line, (size_t)k + big + 1));
    CHECK_INT(json_string_length(field("user_agent.original")), big);
    free(line);
    /* Outputs appended back to back (as into a bulk body) stay intact. */
    lp_buf_reset(&out);
    lp_parse_result r;
    CHECK_INT(lp_parse_line(parser, "x", 1, &out, &r), -1);
    const char *good = "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1";
    CHECK_INT(lp_parse_line(parser, good, strlen(good), &out, &r), 0);
    size_t one = out.len;
    CHECK_INT(lp_parse_line(parser, "bad", 3, &out, &r), -1);
    CHECK_INT(out.len, one);
}

static void use_options(const char *dataset, int keep_original)
{
    lp_parser_free(parser);
    lp_parse_opts o = {.format = LP_FORMAT_AUTO, .dataset = dataset, .keep_original = keep_original};
    lp_error e;
    parser = lp_parser_new(&o, &e);
    CHECK(parser != NULL);
}

/* event.original is the line as received: every byte that is valid UTF-8
 * comes back exactly (quotes, backslashes, escapes as the server wrote
 * them, control characters, NUL); each byte of an invalid sequence
 * becomes U+FFFD, as in every other field. */
static void test_event_original(void)
{
    static const char hostile[] =
        "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a\\\"b\\\\c?q HTTP/1.1\" 200 1 "
        "\"\\x16\x01\t\x7f\" \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \x00 \xff\xc0\xaf\xed\xa0\x80\xe2\x82\"";
    size_t n = sizeof hostile - 1;
    use_options(NULL, 1);
    CHECK(parse_n(hostile, n) != NULL);
    const char *got = str("event.original");
    size_t got_n = json_string_length(field("event.original"));
    static const char want_tail[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \x00 "
                                    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                    "\xef\xbf\xbd\xef\xbf\xbd\"";
    size_t valid = (size_t)(strchr(hostile, '\xc3') - hostile);
    CHECK(got != NULL && got_n == valid + sizeof want_tail - 1);
    CHECK(got && !memcmp(got, hostile, valid) && !memcmp(got + valid, want_tail, sizeof want_tail - 1));
    CHECK_STR(str("event.dataset"), "access");
    CHECK_STR(str("ecs.version"), LP_ECS_VERSION);

    /* a reject still leaves the output as it was (parse_n checks) */
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 2x0 1") == NULL);

    use_options("nginx.access", 0);
    CHECK(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1") != NULL);
    CHECK_STR(str("event.dataset"), "nginx.access");
    CHECK(field("event.original") == NULL);

    static const char *const bad[] = {"", "Access", "a-b", "a b", "a\"b", "a/b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lp_parse_opts o = {.format = LP_FORMAT_AUTO, .dataset = bad[i]};
        lp_error e;
        CHECK(lp_parser_new(&o, &e) == NULL);
        CHECK_INT(e.code, LP_EXIT_USAGE);
        CHECK_CONTAINS(e.msg, "--dataset");
    }
    char longest[102];
    memset(longest, 'a', 101);
    longest[101] = '\0';
    lp_parse_opts o = {.format = LP_FORMAT_AUTO, .dataset = longest};
    lp_error e;
    CHECK(lp_parser_new(&o, &e) == NULL);
    longest[100] = '\0';
    use_options(longest, 0);
}

int main(void)
{
    test_combined_zoneless_format();
    test_combined_format();
    test_common_format();
    test_ipv4_agrees_with_inet_pton();
    test_forced_format();
    test_timestamps();
    test_timezones();
    test_ambiguous_local_times();
    test_rejects();
    test_real_world_shapes();
    test_request_shapes();
    test_vhost_combined();
    test_hostile_bytes();
    test_event_original();
    json_decref(doc);
    lp_parser_free(parser);
    lp_buf_free(&out);
    return CHECK_DONE();
}
