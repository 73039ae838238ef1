/* test_bulk.c: _bulk bodies, response reading, retries mapped back, the template. */
#include <jansson.h>

#include "check.h"
#include "elasticsearch/bulk_internal.h"

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
                        "{\"index\":{\"status\":400,\"error\":{\"type\":\"illegal_argument_exception\",\"reason\":\"r\"}}}]}";
    CHECK_INT(lp_bulk_read_response(copy, retry, strlen(retry), &e), 0);
    CHECK_STR(state_name(copy, 0), "ok");
    CHECK_STR(state_name(copy, 2), "refused");
    lp_bulk_item_state(copy, 2, NULL, &reason);
    CHECK_STR(reason, "illegal_argument_exception: r");

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

    /* The template is valid JSON with the documented types. */
    lp_buf tpl = LP_BUF_INIT;
    lp_es_template_body(&tpl, "logs-access-*");
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
