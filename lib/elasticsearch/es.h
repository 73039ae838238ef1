/*
 * es.h: the Elasticsearch client behind `logpipe consume`.
 *
 * Built around _bulk because that is the only way to index at the rate Kafka
 * delivers: the caller fills an lp_bulk with (index, _id, document) items,
 * submits it, and keeps consuming while several requests are in flight on one
 * libcurl multi handle (keep-alive connections, gzip bodies). The client owns
 * retries: a request that fails as a whole (connection refused, timeout, HTTP
 * 429/5xx) is re-sent with exponential backoff and jitter; items that come
 * back 429 or 5xx are re-sent on their own in a smaller request, for up to
 * retry_limit_ms, after which the client stops with a report. The caller
 * hears about a bulk once, when every item in it is final: indexed, or
 * refused for the document's own fault (it does not fit the mapping) with a
 * reason. A refusal that is not the document's fault (a closed index, an
 * index that may not be created, a missing privilege) stops the client: the
 * bulk never completes, so nothing of it is committed. That single
 * "done" event is what lets the consumer commit Kafka offsets only for data
 * Elasticsearch has acknowledged.
 *
 * Single-threaded: everything happens inside lp_es_poll, on the caller's thread.
 */
#ifndef LP_ES_H
#define LP_ES_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* The client's defaults for the settings a caller leaves 0: written here
 * once, for lp_es_new and for the CLI's help text. */
#define LP_ES_MAX_INFLIGHT_DEFAULT 2
#define LP_ES_RETRY_LIMIT_MS_DEFAULT 300000L

typedef struct lp_es_opts {
    const char *url;      /* --es: http(s)://host:port[/prefix], no trailing slash needed */
    int max_inflight;     /* concurrent _bulk requests, default LP_ES_MAX_INFLIGHT_DEFAULT */
    int gzip;             /* gzip request bodies (default on) */
    long timeout_ms;      /* per HTTP request, default 60000 */
    long backoff_base_ms; /* first retry delay, default 100; doubles, with jitter */
    long backoff_max_ms;  /* cap, default 30000 */
    long retry_limit_ms;  /* a bulk still failing this long after its first failure is fatal; default LP_ES_RETRY_LIMIT_MS_DEFAULT */
    /* Transport security and auth (credentials never appear in messages). */
    const char *ca_file;  /* PEM CA bundle; verification is always on unless insecure */
    const char *ca_pem;   /* the same, as PEM text (from a --secrets object) */
    int insecure;         /* --es-insecure: skip TLS verification (loudly warned) */
    const char *api_key;  /* "Authorization: ApiKey <api_key>" */
    const char *username; /* basic auth */
    const char *password;
    /* --pipeline: the ingest pipeline every _bulk names (NULL: none, so the
     * index's default_pipeline, if any, applies). Checked by
     * lp_es_check_pipeline_name. */
    const char *pipeline;
} lp_es_opts;

typedef struct lp_es lp_es;

lp_es *lp_es_new(const lp_es_opts *opts, lp_error *e);

/* Checks an --es URL (http:// or https://, a host, no credentials in it);
 * lp_es_new does too, the CLI earlier so it can word the error itself. */
int lp_es_check_url(const char *url, lp_error *e);
void lp_es_free(lp_es *es);

/* GET / : checks the URL answers and is Elasticsearch (or OpenSearch),
 * returning its version in version[] when not NULL. Fails with LP_EXIT_ES
 * naming --es (unreachable, TLS error, 401/403, not Elasticsearch). */
int lp_es_check(lp_es *es, char *version, size_t version_len, lp_error *e);

/* POST _security/user/_has_privileges: fails with LP_EXIT_USAGE naming every
 * privilege the credentials lack (the NULL-terminated cluster privileges, and
 * index_privs on index_pattern), so a missing grant stops the run at
 * start-up rather than refusing its first bulk. A cluster without the
 * security feature (nothing to lack) passes. */
int lp_es_check_privileges(lp_es *es, const char *const *cluster, const char *index_pattern,
                           const char *const *index_privs, lp_error *e);

/* An ingest pipeline name logpipe accepts: 1 to 255 of letters, digits,
 * '.', '_', '-', '@' and ':' (Elastic's own names: logs@default-pipeline,
 * logs-nginx.access@custom), or "_none" (Elasticsearch's word for "not
 * even the index's default pipeline"). Fails with LP_EXIT_USAGE naming
 * --pipeline and the first character refused. */
int lp_es_check_pipeline_name(const char *name, lp_error *e);

/* GET _ingest/pipeline/<name> for opts.pipeline, so a missing pipeline stops
 * the run before anything is consumed: fails with LP_EXIT_USAGE naming it.
 * Without read_pipeline (HTTP 403) it passes: the first bulk then stops
 * the run instead, committing nothing. No pipeline or "_none" passes. */
int lp_es_check_pipeline(lp_es *es, lp_error *e);

/* Like lp_es_check_privileges, but only asks: 1 when the credentials have
 * every privilege named (or the cluster has no security feature), 0 when
 * not (missing, when not NULL, lists what lacks), -1 and e on a transport or
 * authentication failure. */
int lp_es_has_privileges(lp_es *es, const char *const *cluster, const char *index_pattern,
                         const char *const *index_privs, lp_buf *missing, lp_error *e);

/* ---- the index template (template.c, setup.c) ---------------------------- */

/* The _meta key holding the template's stamp (a hash of its body). */
#define LP_ES_TEMPLATE_STAMP_KEY "logpipe_stamp"

/* The settings logpipe's template gives the indices it creates, each the
 * cluster's default unless an operator sets it (--shards, --replicas,
 * --refresh-ms): they spend Elasticsearch's resources, which is the
 * operator's decision, not a log shipper's. */
typedef struct lp_index_settings {
    int shards;     /* index.number_of_shards; 0: the cluster's default */
    int replicas;   /* index.number_of_replicas; -1: the cluster's default */
    int refresh_ms; /* index.refresh_interval in ms; 0: the cluster's default (1 s) */
} lp_index_settings;
#define LP_INDEX_SETTINGS_DEFAULT {.shards = 0, .replicas = -1, .refresh_ms = 0}

typedef struct lp_es_template {
    const char *name;    /* e.g. "logpipe-logs-access" */
    const char *pattern; /* "logs-access-*", or a data stream's exact name */
    int data_stream;     /* names matching pattern become data streams */
    lp_index_settings settings;
} lp_es_template;

/* 501 + 2 x the pattern's literal prefix length (+1 for an exact name):
 * the more specific of two overlapping patterns wins, every one wins over
 * the built-in logs-*-* (100). */
long lp_es_template_priority(const char *pattern);

/* The template body (JSON) for t, with the mappings of docs/schema.md and
 * its stamp in _meta, also copied to stamp (16 hex digits) when not NULL. */
void lp_es_template_body(lp_buf *out, const lp_es_template *t, char stamp[17]);

/* PUT _index_template/<t->name>. Blocking. */
int lp_es_install_template(lp_es *es, const lp_es_template *t, lp_error *e);

/* What GET _index_template/<t->name> finds: */
typedef enum lp_es_template_state {
    LP_TEMPLATE_MISSING = 0,
    LP_TEMPLATE_CURRENT,  /* its stamp is the one this logpipe would install */
    LP_TEMPLATE_STALE,    /* another stamp, or none */
} lp_es_template_state;

/* Fills *state; -1 and e when the request fails (403 included). */
int lp_es_template_check(lp_es *es, const lp_es_template *t, lp_es_template_state *state, lp_error *e);

/* PUT _data_stream/<name>: 1 created, 0 it existed already; -1 and e on
 * failure. A distribution without the data-streams module (the
 * integ-test-zip) answers 405: -1 with LP_EXIT_USAGE and a message saying
 * the first write will create it instead. */
int lp_es_create_data_stream(lp_es *es, const char *name, lp_error *e);

/* ---- bulk requests ----------------------------------------------------- */

typedef struct lp_bulk lp_bulk;

lp_bulk *lp_bulk_new(void);
void lp_bulk_free(lp_bulk *b);
/* Empties b for reuse, keeping its memory. */
void lp_bulk_reset(lp_bulk *b);

/* Items added from now on are "create" actions (a data stream takes no
 * other) instead of "index": a replayed _id is answered 409
 * version_conflict_engine_exception, which counts as indexed (the document
 * is already there, from the same offset). */
void lp_bulk_set_create(lp_bulk *b, int create);

/* Appends an "index" action (overwrite by _id: a replay never duplicates)
 * for doc (one JSON object, no newline) into index with the given _id. */
void lp_bulk_add(lp_bulk *b, const char *index, size_t index_len, const char *id, size_t id_len,
                 const char *doc, size_t doc_len);

/* Zero-copy form of lp_bulk_add for the hot path: writes the action line
 * and returns the body buffer, into which the caller appends the document
 * (e.g. with lp_parse_line); lp_bulk_end(b, 1) then closes the item, and
 * lp_bulk_end(b, 0) removes it again (the document was rejected). */
lp_buf *lp_bulk_begin(lp_bulk *b, const char *index, size_t index_len, const char *id, size_t id_len);
void lp_bulk_end(lp_bulk *b, int keep);
/* Between begin and end: replaces the open item's index name with one of the
 * same length (date patterns have fixed widths). Returns -1, changing
 * nothing, when the lengths differ. */
int lp_bulk_set_index(lp_bulk *b, const char *index, size_t index_len);

size_t lp_bulk_items(const lp_bulk *b);
size_t lp_bulk_bytes(const lp_bulk *b); /* uncompressed NDJSON body size */

/* Per-item outcome, valid once the bulk is done. */
typedef enum lp_item_state {
    LP_ITEM_PENDING = 0,
    LP_ITEM_OK,      /* indexed (201/200) */
    LP_ITEM_REFUSED, /* refused for the document's own fault (mapping): dead-letter it */
} lp_item_state;

lp_item_state lp_bulk_item_state(const lp_bulk *b, size_t i, int *status, const char **reason);

/* Reads a _bulk response body into the items' states: 2xx -> OK, 429 and 5xx
 * -> stay PENDING (to be retried), other 4xx whose error type says the
 * document does not fit the index -> REFUSED with the error type and reason.
 * Returns the number of items still pending; -1 when the body is not a bulk
 * response (e fills with why: resend it); LP_BULK_BLOCKED when an item was
 * refused for a reason that is not the document's (e names the index and
 * the error: stop, the bulk must not complete). Exposed for unit and fuzz
 * tests. */
#define LP_BULK_BLOCKED (-2L)
long lp_bulk_read_response(lp_bulk *b, const char *body, size_t len, lp_error *e);

/* Called once per submitted bulk when every item is final (OK or REFUSED).
 * The callback may inspect b but must not free it; ownership returns to the
 * caller after the callback (so it can lp_bulk_reset and reuse it). */
typedef void (*lp_bulk_done_fn)(void *ctx, lp_bulk *b, void *opaque);

/* Submits b; the client owns it until on_done. Never blocks. */
void lp_es_submit(lp_es *es, lp_bulk *b, lp_bulk_done_fn on_done, void *ctx, void *opaque);

/* Drives transfers and retry timers for up to timeout_ms (0: no waiting),
 * firing on_done callbacks. Returns -1 and fills e on a fatal condition that
 * retrying cannot fix (401/403, URL not Elasticsearch): the caller should stop. */
int lp_es_poll(lp_es *es, int timeout_ms, lp_error *e);

/* Bulks submitted and not yet done (in flight or waiting to retry). */
size_t lp_es_pending(const lp_es *es);

typedef struct lp_es_stats {
    uint64_t requests;       /* HTTP _bulk requests sent, retries included */
    uint64_t request_retries;/* whole-request retries (connection, 429, 5xx) */
    uint64_t item_retries;   /* items re-sent after a per-item 429/5xx */
    uint64_t bytes_sent;     /* bytes on the wire (compressed when gzip) */
} lp_es_stats;

void lp_es_get_stats(const lp_es *es, lp_es_stats *out);

#endif
