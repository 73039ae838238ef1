/*
 * test_schema.c: the field table (lib/elasticsearch/fields.def) against what
 * it generates and what it describes.
 *
 * Three promises: the index template maps every field of the table with its
 * type, once (no duplicate key, so the grouping of rows is right); every
 * field a document can carry is in the table (documents of every shape, with
 * --keep-original, plus the Kafka fields consume adds); and docs/schema.md's
 * field table is exactly the one the table renders. When it is not, this
 * prints the expected table; `test_schema --write` rewrites docs/schema.md.
 */
#include <jansson.h>
#include <stdlib.h>

#include "check.h"
#include "core/buf.h"
#include "elasticsearch/es.h"
#include "parse/parse.h"

typedef struct row {
    const char *name, *type, *params, *note, *from, *absent;
} row;

static const row rows[] = {
#define LP_FIELD(name, type, params, note, from, absent) {name, type, params, note, from, absent},
#include "elasticsearch/fields.def"
#undef LP_FIELD
};
#define NROWS (sizeof rows / sizeof *rows)

static const char begin_marker[] = "<!-- generated from lib/elasticsearch/fields.def";
static const char end_marker[] = "<!-- end of the generated table -->";

static const row *find_row(const char *name)
{
    for (size_t i = 0; i < NROWS; i++)
        if (!strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

/* The mapping of a dotted name in a template body's properties. */
static json_t *mapping_of(json_t *properties, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", name);
    json_t *m = NULL;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        if (m)
            properties = json_object_get(m, "properties");
        m = json_object_get(properties, k);
    }
    return m;
}

static void test_template_maps_every_field(void)
{
    lp_buf body = LP_BUF_INIT;
    lp_es_template_body(&body, &(lp_es_template){.name = "t", .pattern = "logs-access-*", .settings = LP_INDEX_SETTINGS_DEFAULT}, NULL);
    json_error_t err;
    json_t *t = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, &err);
    if (!t)
        fprintf(stderr, "template body: %s: %.*s\n", err.text, (int)body.len, body.data);
    CHECK(t != NULL);
    json_t *props = json_object_get(json_object_get(json_object_get(t, "template"), "mappings"), "properties");
    size_t leaves = 0;
    for (size_t i = 0; i < NROWS; i++) {
        json_t *m = mapping_of(props, rows[i].name);
        if (!m || !json_string_value(json_object_get(m, "type")) ||
            strcmp(json_string_value(json_object_get(m, "type")), rows[i].type)) {
            fprintf(stderr, "%s: not mapped as %s\n", rows[i].name, rows[i].type);
            CHECK(0);
        }
        leaves++;
    }
    CHECK_INT(leaves, NROWS);
    CHECK_STR(json_string_value(json_object_get(mapping_of(props, "url.original"), "type")), "keyword");
    CHECK_INT(json_integer_value(json_object_get(mapping_of(props, "url.original"), "ignore_above")), 8191);
    CHECK(json_is_false(json_object_get(mapping_of(props, "event.original"), "index")));
    json_decref(t);
    lp_buf_free(&body);
}

/* Every leaf of doc (prefix: its dotted path so far) must be a row. */
static void check_leaves(json_t *obj, const char *prefix, const char *line)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (json_is_object(v)) {
            check_leaves(v, path, line);
        } else if (!find_row(path)) {
            fprintf(stderr, "%s (from %s) is not in fields.def\n", path, line);
            CHECK(0);
        }
    }
}

static void test_documents_carry_only_mapped_fields(void)
{
    static const char *const lines[] = {
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif?x=1 HTTP/1.0\" 200 2326 \"http://e.com/\" \"Mozilla/4.08\"",
        "www.example.com:80 host.example.com - - [06/Mar/2013:00:39:19 +0000] \"-\" 408 0 \"-\" \"-\"",
        "127.0.1.1:80 ::1 - - [26/Jun/2012:10:41:10 -0700] \"OPTIONS * HTTP/1.0\" 200 126 \"-\" \"Apache\"",
        "9.180.123.170 - - [Jan 21 2026, 22:23:40] \"\\x16\\x03\" 400 181 \"-\" \"-\"",
    };
    lp_parse_opts o = {.format = LP_FORMAT_AUTO, .keep_original = 1};
    lp_error e;
    lp_parser *p = lp_parser_new(&o, &e);
    lp_buf out = LP_BUF_INIT;
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        lp_parse_result res;
        lp_buf_reset(&out);
        CHECK_INT(lp_parse_line(p, lines[i], strlen(lines[i]), &out, &res), 0);
        json_t *doc = json_loadb(out.data, out.len, 0, NULL);
        CHECK(doc != NULL);
        check_leaves(doc, "", lines[i]);
        json_decref(doc);
    }
    /* what consume appends (consumer.c's add_kafka_fields) */
    CHECK(find_row("kafka.topic") && find_row("kafka.partition") && find_row("kafka.offset"));
    lp_buf_free(&out);
    lp_parser_free(p);
}

static void render_table(lp_buf *t)
{
    lp_buf_puts_lit(t, "| field | mapping | from | absent when |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        lp_buf_printf(t, "| `%s` | `%s`%s%s | %s | %s |\n", r->name, r->type, *r->note ? " " : "", r->note, r->from,
                      r->absent);
    }
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    lp_buf b = LP_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        lp_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    lp_buf_cstr(&b); /* NUL-terminates, for strstr */
    return b.data;
}

/* docs/schema.md's table: between the line after the begin marker and the end marker. */
static void test_docs_table(const char *doc_path, int write)
{
    size_t len = 0;
    char *md = read_file(doc_path, &len);
    CHECK(md != NULL);
    if (!md)
        return;
    char *begin = strstr(md, begin_marker), *end = begin ? strstr(begin, end_marker) : NULL;
    char *body = begin ? strchr(begin, '\n') : NULL;
    CHECK(begin && end && body && body < end);
    if (!(begin && end && body && body < end)) {
        free(md);
        return;
    }
    body++;
    lp_buf want = LP_BUF_INIT;
    render_table(&want);
    int same = (size_t)(end - body) == want.len && !memcmp(body, want.data, want.len);
    if (!same && write) {
        FILE *f = fopen(doc_path, "wb");
        CHECK(f != NULL);
        if (f) {
            fwrite(md, 1, (size_t)(body - md), f);
            fwrite(want.data, 1, want.len, f);
            fwrite(end, 1, len - (size_t)(end - md), f);
            CHECK(fclose(f) == 0);
            fprintf(stderr, "rewrote the field table of %s\n", doc_path);
        }
    } else if (!same) {
        fprintf(stderr, "%s's field table differs from lib/elasticsearch/fields.def: edit fields.def and "
                "run `build/test_schema --write`. Expected:\n%s", doc_path, lp_buf_cstr(&want));
        CHECK(0);
    }
    lp_buf_free(&want);
    free(md);
}

int main(int argc, char **argv)
{
    /* the source tree, from this file's path as CMake compiles it */
    char doc_path[4096];
    const char *self = __FILE__, *tail = strstr(self, "tests/unit/test_schema.c");
    snprintf(doc_path, sizeof doc_path, "%.*sdocs/schema.md", tail ? (int)(tail - self) : 0, self);
    test_template_maps_every_field();
    test_documents_carry_only_mapped_fields();
    test_docs_table(doc_path, argc > 1 && !strcmp(argv[1], "--write"));
    return CHECK_DONE();
}
