/*
 * template.c: the composable index template logpipe installs (`logpipe
 * setup`, or consume when it may and must), so every field of
 * docs/schema.md has an explicit type.
 *
 * Without it Elasticsearch guesses: status codes become long only by luck,
 * IPs become text, and url.path needs ".keyword" to be aggregated. Keyword
 * fields that can be long (URLs, user agents) carry ignore_above 8191: at up
 * to 4 bytes per character that stays under Lucene's 32766-byte term limit,
 * so a huge URL is kept in _source and searchable through its text
 * sub-field instead of getting the whole document refused. "dynamic": false
 * keeps anything unexpected in _source without letting it grow the mapping.
 * Shards, replicas and the refresh interval are the cluster's defaults
 * unless --shards/--replicas/--refresh-ms say otherwise: they are an
 * operator's decision, not a log shipper's.
 *
 * Priority. Elasticsearch refuses two templates of equal priority whose
 * patterns overlap, and picks the highest priority among those matching a
 * new index. Every default distribution ships `logs` (logs-*-*, priority
 * 100, a data stream), and Elastic advises custom templates above 500. So a
 * template's priority is 501 + twice the length of its literal prefix, plus
 * one for an exact name (a data stream's): nested deployments
 * (logs-access-* and logs-access-eu-*) get distinct priorities, the more
 * specific one winning, and all of them win over `logs`. Two patterns with
 * the same literal prefix are the same pattern, so the same template.
 *
 * The _meta stamp is a hash of the body itself (computed with the stamp
 * zeroed), so any change to mappings, settings or patterns makes an
 * installed template stale without anyone remembering to bump a number.
 *
 * The properties are expanded from fields.def, the table docs/schema.md's
 * field table is generated from too (tests/unit/test_schema.c), so a field
 * cannot be documented and left unmapped, or the other way round.
 */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "elasticsearch/es.h"
#include "parse/parse.h"

typedef struct lp_field_mapping {
    const char *name, *type, *params;
} lp_field_mapping;

static const lp_field_mapping fields[] = {
#define LP_FIELD(name, type, params, note, from, absent) {name, type, params},
#include "elasticsearch/fields.def"
#undef LP_FIELD
};

/* Length of the object part of a dotted name ("http.response" of
 * "http.response.status_code"), 0 for a top-level field. */
static size_t object_len(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

/* Opens the objects of path[from..n) ("a.b" -> "a":{"properties":{"b":{...). */
static void open_objects(lp_buf *out, const char *path, size_t from, size_t n, int *comma)
{
    while (from < n) {
        const char *dot = memchr(path + from, '.', n - from);
        size_t end = dot ? (size_t)(dot - path) : n;
        if (*comma)
            lp_buf_putc(out, ',');
        lp_json_str(out, path + from, end - from);
        lp_buf_puts_lit(out, ":{\"properties\":{");
        *comma = 0;
        from = end + 1;
    }
}

/* Closes the objects of path[0..n) deeper than its first `keep` bytes. */
static void close_objects(lp_buf *out, const char *path, size_t keep, size_t n)
{
    for (size_t i = n; i > keep; i--)
        if (i == n || path[i] == '.')
            lp_buf_puts_lit(out, "}}");
}

/* The length of the leading whole components object paths a and b share:
 * "http.request" and "http.response" share "http" (4). */
static size_t shared_objects(const char *a, size_t an, const char *b, size_t bn)
{
    size_t shared = 0;
    for (size_t i = 0;; i++) {
        int a_end = i == an || a[i] == '.', b_end = i == bn || b[i] == '.';
        if (a_end && b_end) {
            shared = i;
            if (i == an || i == bn)
                return shared;
        } else if (a_end || b_end || a[i] != b[i]) {
            return shared;
        }
    }
}

/* The mappings' properties, nested from the dotted names of fields.def. */
static void put_properties(lp_buf *out)
{
    const char *prev = "";
    size_t prev_n = 0;
    int comma = 0;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const lp_field_mapping *f = &fields[i];
        size_t n = object_len(f->name), keep = shared_objects(prev, prev_n, f->name, n);
        close_objects(out, prev, keep, prev_n);
        if (keep < prev_n)
            comma = 1;
        open_objects(out, f->name, keep ? keep + 1 : 0, n, &comma);
        const char *leaf = f->name + (n ? n + 1 : 0);
        if (comma)
            lp_buf_putc(out, ',');
        lp_json_str(out, leaf, strlen(leaf));
        lp_buf_printf(out, ":{\"type\":\"%s\"%s}", f->type, f->params);
        comma = 1;
        prev = f->name;
        prev_n = n;
    }
    close_objects(out, prev, 0, prev_n);
}

#define STAMP_ZERO "0000000000000000"

long lp_es_template_priority(const char *pattern)
{
    const char *star = strchr(pattern, '*');
    size_t prefix = star ? (size_t)(star - pattern) : strlen(pattern);
    return 501 + 2 * (long)prefix + (star ? 0 : 1);
}

/* FNV-1a, 64 bits: a change detector, not a security measure. */
static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

/* Everything before the mappings: patterns, priority, _meta (with a zeroed
 * stamp, at *stamp_at), data_stream, settings. */
static void put_head(lp_buf *out, const lp_es_template *t, size_t *stamp_at)
{
    lp_buf_puts_lit(out, "{\"index_patterns\":[");
    lp_json_str(out, t->pattern, strlen(t->pattern));
    lp_buf_printf(out, "],\"priority\":%ld,", lp_es_template_priority(t->pattern));
    lp_buf_puts_lit(out, "\"_meta\":{\"description\":\"access logs indexed by logpipe; see docs/schema.md\","
                         "\"managed_by\":\"logpipe\",\"" LP_ES_TEMPLATE_STAMP_KEY "\":\"");
    *stamp_at = out->len;
    lp_buf_puts_lit(out, STAMP_ZERO "\"},");
    if (t->data_stream)
        lp_buf_puts_lit(out, "\"data_stream\":{},");
    lp_buf_puts_lit(out, "\"template\":{\"settings\":{");
    const lp_index_settings *s = &t->settings;
    const char *sep = "";
    if (s->shards > 0)
        lp_buf_printf(out, "\"index.number_of_shards\":%d", s->shards), sep = ",";
    if (s->replicas >= 0)
        lp_buf_printf(out, "%s\"index.number_of_replicas\":%d", sep, s->replicas), sep = ",";
    if (s->refresh_ms > 0)
        lp_buf_printf(out, "%s\"index.refresh_interval\":\"%dms\"", sep, s->refresh_ms);
    lp_buf_puts_lit(out, "},");
}

void lp_es_template_body(lp_buf *out, const lp_es_template *t, char stamp[17])
{
    size_t start = out->len, stamp_at;
    put_head(out, t, &stamp_at);
    lp_buf_puts_lit(out,
        "\"mappings\":{\"dynamic\":false,\"properties\":{");
    put_properties(out);
    lp_buf_puts_lit(out, "}}}}");
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a(out->data + start, out->len - start));
    memcpy(out->data + stamp_at, hex, 16);
    if (stamp)
        memcpy(stamp, hex, sizeof hex);
}
