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
 */
#include "core/json.h"
#include "elasticsearch/es.h"

void lp_es_template_body(lp_buf *out, const char *index_pattern)
{
    lp_buf_puts_lit(out, "{\"index_patterns\":[");
    lp_json_str(out, index_pattern, strlen(index_pattern));
    lp_buf_puts_lit(out,
        "],\"priority\":200,"
        "\"_meta\":{\"description\":\"access logs indexed by logpipe; see docs/schema.md\"},"
        "\"template\":{\"mappings\":{\"dynamic\":false,\"properties\":{"
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
}
