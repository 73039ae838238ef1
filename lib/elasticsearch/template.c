/*
 * template.c: the composable index template logpipe installs before its
 * first write, so every field of docs/schema.md has an explicit type.
 *
 * Without it Elasticsearch guesses: status codes become long only by luck,
 * IPs become text, and url.path needs ".keyword" to be aggregated. Keyword
 * fields that can be long (URLs, user agents) carry ignore_above 8191: at up
 * to 4 bytes per character that stays under Lucene's 32766-byte term limit,
 * so a huge URL is kept in _source and searchable through its text
 * sub-field instead of getting the whole document refused. "dynamic": false
 * keeps anything unexpected in _source without letting it grow the mapping.
 * Shards and replicas are left to the cluster's defaults: they are an
 * operator's decision, not a log shipper's.
 *
 * The properties are expanded from fields.def, the table docs/schema.md's
 * field table is generated from too (tests/unit/test_schema.c), so a field
 * cannot be documented and left unmapped, or the other way round.
 */
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

void lp_es_template_body(lp_buf *out, const char *index_pattern)
{
    lp_buf_puts_lit(out, "{\"index_patterns\":[");
    lp_json_str(out, index_pattern, strlen(index_pattern));
    lp_buf_puts_lit(out,
        "],\"priority\":200,"
        "\"_meta\":{\"description\":\"access logs indexed by logpipe; see docs/schema.md\"},"
        "\"template\":{\"mappings\":{\"dynamic\":false,\"properties\":{");
    put_properties(out);
    lp_buf_puts_lit(out, "}}}}");
}
