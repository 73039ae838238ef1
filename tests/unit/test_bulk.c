/* test_bulk.c: _bulk bodies, response reading, retries mapped back, the template. */
#include <jansson.h>
#include <libdeflate.h>
#include <string.h>

#include "check.h"
#include "elasticsearch/bulk_internal.h"

/* A gzip request body, decompressed (at most 64 KiB). */
static const char *gunzip(const char *data, size_t len)
{
    static char out[1 << 16];
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t n = 0;
    if (libdeflate_gzip_decompress(d, data, len, out, sizeof out - 1, &n) != LIBDEFLATE_SUCCESS)
        n = 0;
    libdeflate_free_decompressor(d);
    out[n] = '\0';
    return out;
}

static const char *state_name(lp_bulk *b, size_t i)
{
    static const char *names[] = {"pending", "ok", "refused"};
    return names[lp_bulk_item_state(b, i, NULL, NULL)];
}

int main(void)
{
    lp_bulk *b = lp_bulk_new();
    lp_bulk_add(b, "logs-2026.01.21", 15, "t-0-1", 5, "{\"a\":1}", 7);
    lp_buf *body = lp_bulk_begin(b, "idx\"q", 5, "id", 2);
    lp_buf_puts_lit(body, "{\"b\":2}");
    lp_bulk_end(b, 1);
    lp_bulk_begin(b, "x", 1, "rejected", 8);
    lp_bulk_end(b, 0); /* a rejected document leaves no trace */
    CHECK_INT(lp_bulk_items(b), 2);
    CHECK_STR(lp_buf_cstr(&b->body),
              "{\"index\":{\"_index\":\"logs-2026.01.21\",\"_id\":\"t-0-1\"}}\n{\"a\":1}\n"
              "{\"index\":{\"_index\":\"idx\\\"q\",\"_id\":\"id\"}}\n{\"b\":2}\n");

    /* Same-width index renames happen in place; other widths are refused. */
    lp_bulk_begin(b, "logs-2026.01.21", 15, "t-0-3", 5);
    CHECK_INT(lp_bulk_set_index(b, "logs-2026.01.22", 15), 0);
    CHECK_INT(lp_bulk_set_index(b, "logs-10000.01.22", 16), -1);
    lp_buf_puts_lit(&b->body, "{}");
    lp_bulk_end(b, 1);
    CHECK_CONTAINS(lp_buf_cstr(&b->body), "\"logs-2026.01.22\",\"_id\":\"t-0-3\"");
    lp_bulk_add(b, "i", 1, "4", 1, "{}", 2);

    /* errors:false: all ok */
    lp_buf req = LP_BUF_INIT;
    const char *data;
    size_t len;
    lp_bulk_prepare_request(b, &req, &data, &len);
    CHECK_INT(len, b->body.len);
    lp_error e;
    const char *ok4 = "{\"took\":3,\"errors\":false,\"items\":[{\"index\":{\"status\":201}},"
                      "{\"index\":{\"status\":201}},{\"index\":{\"status\":200}},{\"index\":{\"status\":201}}]}";
    lp_bulk *copy = lp_bulk_new();
    CHECK_INT(lp_bulk_read_response(b, ok4, strlen(ok4), &e), 0);
    CHECK_STR(state_name(b, 3), "ok");

    /* Partial failure: a 429, a mapping error, a 503, an ok. */
    lp_bulk_reset(copy);
    for (int i = 0; i < 4; i++)
        lp_bulk_add(copy, "i", 1, "x", 1, "{}", 2);
    lp_bulk_prepare_request(copy, &req, &data, &len);
    const char *mixed =
        "{\"errors\":true,\"items\":["
        "{\"index\":{\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\",\"reason\":\"queue full\"}}},"
        "{\"index\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\",\"reason\":\"failed to parse field [http.response.status_code]\"}}},"
        "{\"index\":{\"status\":503,\"error\":{\"type\":\"unavailable_shards_exception\",\"reason\":\"x\"}}},"
        "{\"index\":{\"status\":201}}]}";
    CHECK_INT(lp_bulk_read_response(copy, mixed, strlen(mixed), &e), 2);
    CHECK_STR(state_name(copy, 0), "pending");
    CHECK_STR(state_name(copy, 1), "refused");
    CHECK_STR(state_name(copy, 2), "pending");
    CHECK_STR(state_name(copy, 3), "ok");
    int status;
    const char *reason;
    lp_bulk_item_state(copy, 1, &status, &reason);
    CHECK_INT(status, 400);
    CHECK_STR(reason, "mapper_parsing_exception: failed to parse field [http.response.status_code]");

    /* The retry request carries only items 0 and 2, and its response maps back. */
    lp_bulk_prepare_request(copy, &req, &data, &len);
    CHECK_INT(len, 2 * (copy->items[0].len));
    const char *retry = "{\"errors\":true,\"items\":[{\"index\":{\"status\":201}},"
                        "{\"index\":{\"status\":400,\"error\":{\"type\":\"document_parsing_exception\",\"reason\":\"r\"}}}]}";
    CHECK_INT(lp_bulk_read_response(copy, retry, strlen(retry), &e), 0);
    CHECK_STR(state_name(copy, 0), "ok");
    CHECK_STR(state_name(copy, 2), "refused");
    lp_bulk_item_state(copy, 2, NULL, &reason);
    CHECK_STR(reason, "document_parsing_exception: r");

    /* Whose fault: only a document that does not fit the mapping is refused
     * (dead-lettered); a refusal about the index, the cluster or the
     * credentials blocks the bulk, naming the index and the error. */
    static const struct {
        const char *error;
        int document_fault;
    } faults[] = {
        {"{\"type\":\"mapper_parsing_exception\",\"reason\":\"failed to parse\"}", 1},
        {"{\"type\":\"strict_dynamic_mapping_exception\",\"reason\":\"mapping set to strict\"}", 1},
        {"{\"type\":\"illegal_argument_exception\",\"reason\":\"Document contains at least one immense term in "
         "field=\\\"url.path\\\"\"}", 1},
        {"{\"type\":\"index_closed_exception\",\"reason\":\"closed\",\"index\":\"logs\"}", 0},
        {"{\"type\":\"index_not_found_exception\",\"reason\":\"no such index [logs] and "
         "[action.auto_create_index] contains [-logs*] which forbids automatic creation of the index\"}", 0},
        {"{\"type\":\"validation_exception\",\"reason\":\"Validation Failed: 1: this action would add [2] shards, "
         "but this cluster currently has [1000]/[1000] maximum normal shards open;\"}", 0},
        {"{\"type\":\"security_exception\",\"reason\":\"action [indices:data/write/bulk[s]] is unauthorized\"}", 0},
        {"{\"type\":\"illegal_argument_exception\",\"reason\":\"only write ops with an op_type of create are "
         "allowed in data streams\"}", 0},
        {"{\"type\":\"cluster_block_exception\",\"reason\":\"index [logs] blocked by: [FORBIDDEN/8/index write (api)];\"}", 0},
        {"{\"type\":\"version_conflict_engine_exception\",\"reason\":\"x\"}", 0},
        {"\"a bare string\"", 0},
    };
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        lp_bulk_reset(copy);
        lp_bulk_add(copy, "logs-2026.01.21", 15, "a", 1, "{}", 2);
        lp_bulk_add(copy, "logs-2026.01.21", 15, "b", 1, "{}", 2);
        lp_bulk_prepare_request(copy, &req, &data, &len);
        lp_buf resp = LP_BUF_INIT;
        lp_buf_printf(&resp, "{\"errors\":true,\"items\":[{\"index\":{\"status\":201}},"
                             "{\"index\":{\"status\":400,\"error\":%s}}]}", faults[i].error);
        long left = lp_bulk_read_response(copy, resp.data, resp.len, &e);
        if (faults[i].document_fault) {
            CHECK_INT(left, 0);
            CHECK_STR(state_name(copy, 1), "refused");
        } else {
            CHECK_INT(left, LP_BULK_BLOCKED);
            CHECK_INT(e.code, LP_EXIT_ES);
            CHECK_CONTAINS(e.msg, "refused writing to index logs-2026.01.21, not for the document's fault");
            CHECK_STR(state_name(copy, 1), "pending");
        }
        lp_buf_free(&resp);
    }
    lp_bulk_reset(copy);
    lp_bulk_add(copy, "logs-2026.01.21", 15, "a", 1, "{}", 2);
    lp_bulk_prepare_request(copy, &req, &data, &len);
    const char *blocked = "{\"errors\":true,\"items\":[{\"index\":{\"status\":400,\"error\":{\"type\":"
                          "\"index_closed_exception\",\"reason\":\"closed\"}}}]}";
    CHECK_INT(lp_bulk_read_response(copy, blocked, strlen(blocked), &e), LP_BULK_BLOCKED);
    CHECK_CONTAINS(e.msg, "(HTTP 400, index_closed_exception: closed)");
    /* A 429 stays pending, and the reason is kept for the retry limit's report. */
    const char *busy = "{\"errors\":true,\"items\":[{\"index\":{\"status\":429,\"error\":{\"type\":"
                       "\"es_rejected_execution_exception\",\"reason\":\"queue full\"}}}]}";
    CHECK_INT(lp_bulk_read_response(copy, busy, strlen(busy), &e), 1);
    CHECK_STR(copy->retry_note, "HTTP 429 for index logs-2026.01.21, es_rejected_execution_exception: queue full");

    /* Malformed responses are errors, not guesses. */
    lp_bulk_reset(copy);
    lp_bulk_add(copy, "i", 1, "x", 1, "{}", 2);
    lp_bulk_prepare_request(copy, &req, &data, &len);
    CHECK_INT(lp_bulk_read_response(copy, "not json", 8, &e), -1);
    CHECK_CONTAINS(e.msg, "not a JSON object");
    const char *short_items = "{\"errors\":false,\"items\":[]}";
    CHECK_INT(lp_bulk_read_response(copy, short_items, strlen(short_items), &e), -1);
    CHECK_CONTAINS(e.msg, "one result per item");
    const char *no_status = "{\"errors\":true,\"items\":[{\"index\":{}}]}";
    CHECK_INT(lp_bulk_read_response(copy, no_status, strlen(no_status), &e), -1);
    CHECK_STR(state_name(copy, 0), "pending");

    /* The all-succeeded answer as filter_path shapes it is read without a
     * tree (read_all_ok); a retry's answer maps back through sent[]; its
     * statuses are kept. */
    lp_bulk_reset(copy);
    for (int i = 0; i < 3; i++)
        lp_bulk_add(copy, "i", 1, "x", 1, "{}", 2);
    lp_bulk_prepare_request(copy, &req, &data, &len);
    const char *exact = "{\"errors\":false,\"items\":[{\"index\":{\"status\":201}},"
                        "{\"index\":{\"status\":429}},{\"index\":{\"status\":200}}]}";
    CHECK_INT(lp_bulk_read_response(copy, exact, strlen(exact), &e), 1); /* a 429 is not 2xx: general reader */
    CHECK_STR(state_name(copy, 1), "pending");
    lp_bulk_prepare_request(copy, &req, &data, &len);
    const char *one = "{\"errors\":false,\"items\":[{\"index\":{\"status\":201}}]}";
    CHECK_INT(lp_bulk_read_response(copy, one, strlen(one), &e), 0);
    lp_bulk_item_state(copy, 1, &status, NULL);
    CHECK_INT(status, 201);
    lp_bulk_item_state(copy, 2, &status, NULL);
    CHECK_INT(status, 200);
    /* Near misses of the exact text go to the general reader, which still
     * refuses a count that differs and accepts what it can parse. */
    static const struct {
        const char *body;
        long left;
    } near[] = {
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}},{\"index\":{\"status\":201}}]}", 0},
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}},{\"index\":{\"status\":201}}]} ", 0},
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}}]}", -1},
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}},{\"index\":{\"status\":201}},"
         "{\"index\":{\"status\":201}}]}", -1},
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}},{\"index\":{\"status\":2x1}}]}", -1},
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}},{\"index\":{\"status\":201", -1},
        {"{\"errors\":false,\"items\":[{\"index\":{\"status\":201}}{\"index\":{\"status\":201}}]}", -1},
    };
    for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
        lp_bulk_reset(copy);
        lp_bulk_add(copy, "i", 1, "x", 1, "{}", 2);
        lp_bulk_add(copy, "i", 1, "y", 1, "{}", 2);
        lp_bulk_prepare_request(copy, &req, &data, &len);
        CHECK_INT(lp_bulk_read_response(copy, near[i].body, strlen(near[i].body), &e), near[i].left);
        CHECK_STR(state_name(copy, 1), near[i].left == 0 ? "ok" : "pending");
    }

    /* With gzip, the first attempt compresses the whole body into the bulk
     * and releases the body; a resend of every item sends those same bytes;
     * a retry of some items and a blocked item's index name restore it. */
    struct libdeflate_compressor *gzc = libdeflate_alloc_compressor(1);
    lp_buf gz = LP_BUF_INIT;
    lp_bulk_reset(copy);
    lp_bulk_add(copy, "logs-a", 6, "1", 1, "{\"n\":1}", 7);
    lp_bulk_add(copy, "logs-b", 6, "2", 1, "{\"n\":2}", 7);
    lp_bulk_add(copy, "logs-c", 6, "3", 1, "{\"n\":3}", 7);
    lp_buf whole = LP_BUF_INIT;
    lp_buf_append(&whole, copy->body.data, copy->body.len);
    lp_bulk_prepare_gzip(copy, gzc, &req, &gz, &data, &len);
    CHECK(copy->body_released && copy->body.data == NULL);
    CHECK_INT(lp_bulk_bytes(copy), whole.len);
    CHECK(data == copy->gz.data);
    CHECK_STR(gunzip(data, len), lp_buf_cstr(&whole));
    const char *down = "{\"errors\":true,\"items\":[{\"index\":{\"status\":503}},{\"index\":{\"status\":503}},"
                       "{\"index\":{\"status\":503}}]}";
    CHECK_INT(lp_bulk_read_response(copy, down, strlen(down), &e), 3);
    const char *first = data;
    lp_bulk_prepare_gzip(copy, gzc, &req, &gz, &data, &len);
    CHECK(data == first); /* not compressed again */
    CHECK_STR(gunzip(data, len), lp_buf_cstr(&whole));
    const char *middle = "{\"errors\":true,\"items\":[{\"index\":{\"status\":201}},{\"index\":{\"status\":429}},"
                         "{\"index\":{\"status\":201}}]}";
    CHECK_INT(lp_bulk_read_response(copy, middle, strlen(middle), &e), 1);
    lp_bulk_prepare_gzip(copy, gzc, &req, &gz, &data, &len);
    CHECK(data == gz.data);
    CHECK_STR(gunzip(data, len), "{\"index\":{\"_index\":\"logs-b\",\"_id\":\"2\"}}\n{\"n\":2}\n");
    CHECK(!copy->body_released);
    lp_bulk_reset(copy);
    lp_bulk_add(copy, "logs-closed", 11, "1", 1, "{}", 2);
    lp_bulk_prepare_gzip(copy, gzc, &req, &gz, &data, &len);
    CHECK(copy->body_released);
    CHECK_INT(lp_bulk_read_response(copy, blocked, strlen(blocked), &e), LP_BULK_BLOCKED);
    CHECK_CONTAINS(e.msg, "refused writing to index logs-closed,");
    lp_bulk_reset(copy); /* a reused bulk builds its body afresh */
    lp_bulk_add(copy, "i", 1, "x", 1, "{}", 2);
    CHECK(!copy->body_released && copy->gz.len == 0);
    CHECK_STR(lp_buf_cstr(&copy->body), "{\"index\":{\"_index\":\"i\",\"_id\":\"x\"}}\n{}\n");
    lp_buf_free(&whole);
    lp_buf_free(&gz);
    libdeflate_free_compressor(gzc);

    /* The template is valid JSON with the documented types. */
    lp_buf tpl = LP_BUF_INIT;
    lp_es_template_body(&tpl, &(lp_es_template){.name = "t", .pattern = "logs-access-*", .settings = LP_INDEX_SETTINGS_DEFAULT}, NULL);
    json_error_t jerr;
    json_t *t = json_loadb(tpl.data, tpl.len, 0, &jerr);
    CHECK(t != NULL);
    json_t *props = json_object_get(json_object_get(json_object_get(t, "template"), "mappings"), "properties");
    CHECK_STR(json_string_value(json_object_get(json_object_get(props, "@timestamp"), "type")), "date");
    json_t *http = json_object_get(json_object_get(props, "http"), "properties");
    json_t *resp = json_object_get(json_object_get(http, "response"), "properties");
    CHECK_STR(json_string_value(json_object_get(json_object_get(resp, "status_code"), "type")), "long");
    json_t *src = json_object_get(json_object_get(props, "source"), "properties");
    CHECK_STR(json_string_value(json_object_get(json_object_get(src, "ip"), "type")), "ip");
    json_t *server = json_object_get(json_object_get(props, "server"), "properties");
    CHECK_STR(json_string_value(json_object_get(json_object_get(server, "ip"), "type")), "ip");
    CHECK_STR(json_string_value(json_object_get(json_object_get(server, "port"), "type")), "long");
    json_t *url = json_object_get(json_object_get(props, "url"), "properties");
    CHECK_STR(json_string_value(json_object_get(json_object_get(url, "path"), "type")), "keyword");
    CHECK_STR(json_string_value(json_array_get(json_object_get(t, "index_patterns"), 0)), "logs-access-*");
    json_decref(t);
    lp_buf_free(&tpl);
    lp_buf_free(&req);
    lp_bulk_free(b);
    lp_bulk_free(copy);
    return CHECK_DONE();
}
