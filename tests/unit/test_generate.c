/* test_generate.c: determinism, format shapes and the realistic mix. */
#include "check.h"
#include "generate/generate.h"
#include "parse/parse.h"

static void generate(lp_gen_opts o, size_t n, lp_buf *out)
{
    lp_gen *g = lp_gen_new(&o);
    for (size_t i = 0; i < n; i++) {
        lp_gen_line(g, out);
        lp_buf_putc(out, '\n');
    }
    lp_gen_free(g);
}

int main(void)
{
    lp_gen_opts o = {LP_FORMAT_COMBINED_ZONELESS, 7, 1769034220, 0, 0};
    lp_buf a = LP_BUF_INIT, b = LP_BUF_INIT;
    generate(o, 5000, &a);
    generate(o, 5000, &b);
    CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len)); /* same seed+start: same bytes */
    lp_buf_reset(&b);
    o.seed = 8;
    generate(o, 5000, &b);
    CHECK(a.len != b.len || memcmp(a.data, b.data, a.len));
    CHECK(!strncmp(strstr(a.data, "["), "[Jan 21 2026, 22:23:40] \"", 25));

    /* Every line of every format parses as that format; the mix is realistic. */
    lp_parse_opts po = {.format = LP_FORMAT_AUTO};
    lp_error e;
    lp_parser *p = lp_parser_new(&po, &e);
    lp_format formats[] = {LP_FORMAT_COMBINED_ZONELESS, LP_FORMAT_COMBINED, LP_FORMAT_COMMON, LP_FORMAT_VHOST_COMBINED};
    for (int f = 0; f < 4; f++) {
        lp_buf_reset(&a);
        o.format = formats[f];
        generate(o, 20000, &a);
        size_t ok = 0, v6 = 0, s5xx = 0, s2xx = 0, dash = 0, query = 0;
        lp_buf doc = LP_BUF_INIT;
        for (char *line = a.data, *nl; (nl = memchr(line, '\n', (size_t)(a.data + a.len - line))); line = nl + 1) {
            lp_parse_result r;
            lp_buf_reset(&doc);
            if (lp_parse_line(p, line, (size_t)(nl - line), &doc, &r) == 0 && r.format == formats[f])
                ok++;
            const char *client = formats[f] == LP_FORMAT_VHOST_COMBINED ? strchr(line, ' ') + 1 : line;
            v6 += memchr(client, ':', 8) != NULL;
            const char *st = strstr(line, "\" ");
            s5xx += st && st[2] == '5';
            s2xx += st && st[2] == '2';
            dash += st && !strncmp(st + 6, "-", 1);
            query += memchr(line, '?', (size_t)(nl - line)) != NULL;
        }
        lp_buf_free(&doc);
        CHECK_INT(ok, 20000);
        CHECK(v6 > 1000 && v6 < 3000);      /* ~10% IPv6 */
        CHECK(s2xx > 15000 && s2xx < 17500); /* ~80% 2xx */
        CHECK(s5xx > 300 && s5xx < 900);     /* ~3% 5xx */
        CHECK(dash > 500);                   /* '-' sizes (304, 204, HEAD) */
        CHECK(query > 2000);
    }

    /* --malformed-ratio: about that share is rejected, and only those. */
    o.format = LP_FORMAT_COMBINED_ZONELESS;
    o.malformed_ratio = 0.05;
    lp_buf_reset(&a);
    generate(o, 20000, &a);
    size_t rejected = 0;
    lp_buf doc = LP_BUF_INIT;
    for (char *line = a.data, *nl; (nl = memchr(line, '\n', (size_t)(a.data + a.len - line))); line = nl + 1) {
        lp_parse_result r;
        rejected += lp_parse_line(p, line, (size_t)(nl - line), &doc, &r) != 0;
    }
    CHECK(rejected > 800 && rejected < 1200);

    /* --realistic: every line of every format is a document of that format,
     * and the shapes come at their rates over the 50,000 lines (per 10,000:
     * 80 "-", 20 "", 30 probes, 5 without a status); the rest is the
     * ordinary mix. */
    size_t none = 0, empty = 0, raw = 0, no_status = 0;
    for (int f = 0; f < 4; f++) {
        o.format = formats[f];
        o.malformed_ratio = 0;
        o.realistic = 1;
        lp_buf_reset(&a);
        generate(o, 12500, &a);
        size_t docs = 0, ok_format = 0;
        for (char *line = a.data, *nl; (nl = memchr(line, '\n', (size_t)(a.data + a.len - line))); line = nl + 1) {
            lp_parse_result r;
            lp_buf_reset(&doc);
            if (lp_parse_line(p, line, (size_t)(nl - line), &doc, &r) != 0)
                continue;
            docs++;
            ok_format += r.format == formats[f];
            lp_buf_putc(&doc, '\0');
            int has_method = strstr(doc.data, "\"method\":") != NULL, has_url = strstr(doc.data, "\"url\":") != NULL;
            none += !has_url && strstr(doc.data, "\"status_code\":408") != NULL;
            empty += !has_url && strstr(doc.data, "\"status_code\":400") != NULL;
            raw += has_url && !has_method;
            no_status += has_method && !strstr(doc.data, "\"status_code\"");
        }
        CHECK_INT(docs, 12500);
        CHECK_INT(ok_format, 12500);
    }
    CHECK(none > 320 && none < 480);   /* 400 expected */
    CHECK(empty > 60 && empty < 140);  /* 100 */
    CHECK(raw > 100 && raw < 200);     /* 150 */
    CHECK(no_status > 8 && no_status < 45); /* 25 */
    /* ...and without it, a seed gives the bytes it always gave */
    o = (lp_gen_opts){LP_FORMAT_COMBINED, 7, 1769034220, 0, 0};
    lp_buf_reset(&a);
    generate(o, 1, &a);
    CHECK_STR(lp_buf_cstr(&a), "190.114.128.31 - - [21/Jan/2026:22:23:40 +0000] \"GET /index.html?page=2 HTTP/1.1\" 302 3424 "
                               "\"https://example.com\" \"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\"\n");
    lp_buf_free(&doc);
    lp_parser_free(p);
    lp_buf_free(&a);
    lp_buf_free(&b);
    return CHECK_DONE();
}
