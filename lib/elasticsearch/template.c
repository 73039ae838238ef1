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
 * Shards and replicas are the cluster's defaults unless --shards/--replicas
 * say otherwise: they are an operator's decision, not a log shipper's.
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
 */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "elasticsearch/es.h"

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
    int comma = 0;
    if (t->shards > 0)
        lp_buf_printf(out, "\"index.number_of_shards\":%d", t->shards), comma = 1;
    if (t->replicas >= 0)
        lp_buf_printf(out, "%s\"index.number_of_replicas\":%d", comma ? "," : "", t->replicas);
    lp_buf_puts_lit(out, "},");
}

void lp_es_template_body(lp_buf *out, const lp_es_template *t, char stamp[17])
{
    size_t start = out->len, stamp_at;
    put_head(out, t, &stamp_at);
    lp_buf_puts_lit(out,
        "\"mappings\":{\"dynamic\":false,\"properties\":{"
        "\"@timestamp\":{\"type\":\"date\"},"
        "\"source\":{\"properties\":{\"ip\":{\"type\":\"ip\"},\"domain\":{\"type\":\"keyword\"}}},"
        "\"server\":{\"properties\":{\"ip\":{\"type\":\"ip\"},\"domain\":{\"type\":\"keyword\"},"
          "\"port\":{\"type\":\"long\"}}},"
        "\"user\":{\"properties\":{\"name\":{\"type\":\"keyword\"}}},"
        "\"http\":{\"properties\":{"
          "\"request\":{\"properties\":{\"method\":{\"type\":\"keyword\"},"
            "\"referrer\":{\"type\":\"keyword\",\"ignore_above\":8191}}},"
          "\"version\":{\"type\":\"keyword\"},"
          "\"response\":{\"properties\":{\"status_code\":{\"type\":\"long\"},"
            "\"body\":{\"properties\":{\"bytes\":{\"type\":\"long\"}}}}}}},"
        "\"url\":{\"properties\":{"
          "\"original\":{\"type\":\"keyword\",\"ignore_above\":8191,\"fields\":{\"text\":{\"type\":\"text\"}}},"
          "\"path\":{\"type\":\"keyword\",\"ignore_above\":8191},"
          "\"query\":{\"type\":\"keyword\",\"ignore_above\":8191}}},"
        "\"user_agent\":{\"properties\":{\"original\":{\"type\":\"keyword\",\"ignore_above\":8191,"
          "\"fields\":{\"text\":{\"type\":\"text\"}}}}},"
        "\"event\":{\"properties\":{\"original\":{\"type\":\"keyword\",\"index\":false,\"doc_values\":false}}},"
        "\"kafka\":{\"properties\":{\"topic\":{\"type\":\"keyword\"},\"partition\":{\"type\":\"integer\"},"
          "\"offset\":{\"type\":\"long\"}}}"
        "}}}}");
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a(out->data + start, out->len - start));
    memcpy(out->data + stamp_at, hex, 16);
    if (stamp)
        memcpy(stamp, hex, sizeof hex);
}
