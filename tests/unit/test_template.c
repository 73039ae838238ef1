/* test_template.c: the template's head (priority, data_stream, settings, the
 * _meta stamp), the data-stream target's names, and "create" bulks whose
 * replays (409 version_conflict_engine_exception) count as indexed. */
#include <jansson.h>

#include "check.h"
#include "consume/consume.h"
#include "elasticsearch/bulk_internal.h"

static json_t *body_of(const lp_es_template *t, char stamp[17])
{
    lp_buf b = LP_BUF_INIT;
    lp_es_template_body(&b, t, stamp);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    lp_buf_free(&b);
    return j;
}

static void test_priorities(void)
{
    /* Nested deployments: the more specific wins; all above the built-in logs (100) and 500. */
    CHECK_INT(lp_es_template_priority("logs-access-*"), 525);
    CHECK_INT(lp_es_template_priority("logs-access-eu-*"), 531);
    CHECK(lp_es_template_priority("logs-access-eu-*") > lp_es_template_priority("logs-access-*"));
    /* An exact name beats a same-length prefix pattern that would match it. */
    CHECK(lp_es_template_priority("abc") > lp_es_template_priority("abc*"));
    CHECK(lp_es_template_priority("*") > 500);
}

static void test_head(void)
{
    lp_target ds, dated;
    lp_target_init(&ds, "ignored", "logs-access-default", &(lp_index_settings){.shards = 2, .replicas = 0, .refresh_ms = 500});
    CHECK_STR(ds.tpl.name, "logpipe-logs-access-default@data-stream");
    CHECK_STR(ds.tpl.pattern, "logs-access-default");
    char s1[17], s2[17];
    json_t *j = body_of(&ds.tpl, s1);
    CHECK(json_is_object(json_object_get(j, "data_stream")));
    CHECK_INT(json_integer_value(json_object_get(j, "priority")), 540);
    json_t *settings = json_object_get(json_object_get(j, "template"), "settings");
    CHECK_INT(json_integer_value(json_object_get(settings, "index.number_of_shards")), 2);
    CHECK_INT(json_integer_value(json_object_get(settings, "index.number_of_replicas")), 0);
    CHECK_STR(json_string_value(json_object_get(settings, "index.refresh_interval")), "500ms");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "_meta"), LP_ES_TEMPLATE_STAMP_KEY)), s1);
    CHECK_INT(strlen(s1), 16);
    json_decref(j);

    lp_target_init(&dated, "logs-access-%Y.%m.%d", NULL, &(lp_index_settings)LP_INDEX_SETTINGS_DEFAULT);
    CHECK_STR(dated.tpl.name, "logpipe-logs-access");
    j = body_of(&dated.tpl, s2);
    CHECK(json_object_get(j, "data_stream") == NULL);
    CHECK_INT(json_object_size(json_object_get(json_object_get(j, "template"), "settings")), 0);
    CHECK(strcmp(s1, s2) != 0);
    json_decref(j);
    /* Any change to the body changes the stamp; the same body keeps it. */
    dated.tpl.settings.refresh_ms = 1000;
    json_decref(body_of(&dated.tpl, s1));
    CHECK(strcmp(s1, s2) != 0);
    dated.tpl.settings.refresh_ms = 0;
    json_decref(body_of(&dated.tpl, s1));
    CHECK_STR(s1, s2);
    lp_target_free(&ds);
    lp_target_free(&dated);
}

static void test_create_bulks(void)
{
    lp_bulk *b = lp_bulk_new();
    lp_error e;
    lp_bulk_set_create(b, 1);
    lp_bulk_add(b, "logs-access-default", 19, "t-0-1", 5, "{}", 2);
    lp_bulk_add(b, "logs-access-default", 19, "t-0-2", 5, "{}", 2);
    lp_bulk_add(b, "logs-access-default", 19, "t-0-3", 5, "{}", 2);
    CHECK(strncmp(lp_buf_cstr(&b->body), "{\"create\":{\"_index\":\"logs-access-default\",\"_id\":\"t-0-1\"}}\n", 58) == 0);
    lp_buf req = LP_BUF_INIT;
    const char *data;
    size_t len;
    lp_bulk_prepare_request(b, &req, &data, &len);
    const char *resp =
        "{\"errors\":true,\"items\":["
        "{\"create\":{\"status\":201}},"
        "{\"create\":{\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"exists\"}}},"
        "{\"create\":{\"status\":400,\"error\":{\"type\":\"document_parsing_exception\",\"reason\":\"bad\"}}}]}";
    CHECK_INT(lp_bulk_read_response(b, resp, strlen(resp), &e), 0);
    CHECK_INT(lp_bulk_item_state(b, 0, NULL, NULL), LP_ITEM_OK);
    CHECK_INT(lp_bulk_item_state(b, 1, NULL, NULL), LP_ITEM_OK);
    CHECK_INT(lp_bulk_item_state(b, 2, NULL, NULL), LP_ITEM_REFUSED);

    /* An index action answered 409 is not a replay of logpipe's: it stops the run. */
    lp_bulk_reset(b);
    lp_bulk_set_create(b, 0);
    lp_bulk_add(b, "i", 1, "x", 1, "{}", 2);
    lp_bulk_prepare_request(b, &req, &data, &len);
    const char *conflict =
        "{\"errors\":true,\"items\":[{\"index\":{\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\"}}}]}";
    CHECK_INT(lp_bulk_read_response(b, conflict, strlen(conflict), &e), LP_BULK_BLOCKED);
    CHECK_CONTAINS(e.msg, "index i");
    lp_buf_free(&req);
    lp_bulk_free(b);
}

int main(void)
{
    test_priorities();
    test_head();
    test_create_bulks();
    return CHECK_DONE();
}
