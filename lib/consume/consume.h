/*
 * consume.h: a Kafka consumer group member that parses, normalizes and
 * bulk-indexes into Elasticsearch, losing nothing and duplicating nothing.
 *
 * The pieces: librdkafka's poll-per-message consumer (Debian's 2.0.2 has
 * unsafe batch-consume calls around rebalances), lp_parser writing each
 * document straight into a bulk body, lp_es sending bulks, lp_offsets
 * deciding what may be committed, and an lp_producer for the dead-letter
 * topic. docs/guarantees.md states what this promises and why it holds.
 */
#ifndef LP_CONSUME_H
#define LP_CONSUME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "elasticsearch/es.h"
#include "kafka/kafka.h"
#include "parse/parse.h"

/* --index's default, for consume, check and setup alike. */
#define LP_INDEX_PATTERN_DEFAULT "logs-access-%Y.%m.%d"

typedef struct lp_consume_opts {
    const char *brokers;
    const char *const *topics;
    size_t ntopics;
    const char *group;
    const char *index_pattern; /* strftime-like: %Y %m %d %H %%, from @timestamp */
    const char *data_stream;   /* --data-stream: index_pattern is this name, written with "create" */
    lp_index_settings index;   /* the template's settings (LP_INDEX_SETTINGS_DEFAULT: the cluster's) */
    const char *dlq_topic;     /* NULL: "<topic>.dlq" per source topic */
    lp_kafka_props kafka_props; /* -X, applied after logpipe's own settings */
    lp_es_opts es;
    lp_parse_opts parse;
    size_t batch_docs, batch_bytes;
    int flush_ms;
    uint64_t max_messages;  /* 0: no limit */
    double max_seconds;     /* 0: no limit */
    double until_idle;      /* 0: off */
    int drain_timeout_s;
    int connect_timeout_s;
    int install_template;
    int progress; /* -1: when stderr is a terminal, 0: never, 1: always */
    int verbose;
} lp_consume_opts;

typedef struct lp_consume_result {
    uint64_t consumed, indexed, rejected, refused, dead_lettered, dlq_failed;
    uint64_t retries;
    double duration_s;
    int exit_code;
    char message[512]; /* why the run ended badly, when it did */
} lp_consume_result;

/* Runs until a stop condition; always fills res. Returns the exit code. */
int lp_consume_run(const lp_consume_opts *opts, lp_consume_result *res, lp_buf *summary_json);

/* Formats the index name for a document at epoch seconds t. */
void lp_index_name(const char *pattern, int64_t t, lp_buf *out);

/* The index name for a document's time, formatted once per hour of time
 * (the finest conversion is %H): the consumer asks for every message. */
typedef struct lp_index_cache {
    const char *pattern;
    int fixed;    /* no conversion: one name for every time */
    int64_t hour; /* the hour name was formatted for (floor of t / 3600) */
    lp_buf name;
} lp_index_cache;

void lp_index_cache_init(lp_index_cache *c, const char *pattern);
/* Makes c->name the index for epoch seconds t; returns 1 when it changed. */
int lp_index_cache_set(lp_index_cache *c, int64_t t);
void lp_index_cache_free(lp_index_cache *c);

/* The index template's name and pattern for an index name pattern:
 * "logs-access-%Y.%m.%d" -> "logpipe-logs-access", "logs-access-*". */
void lp_index_template_names(const char *pattern, lp_buf *name, lp_buf *index_pattern);

/* Where consume writes and the template covering it (target.c). */
typedef struct lp_target {
    lp_es_template tpl; /* points into name and pattern */
    lp_buf name, pattern;
} lp_target;

/* The template for --index index_pattern, or for --data-stream data_stream
 * when not NULL ("logpipe-<name>@data-stream", the exact name). */
void lp_target_init(lp_target *t, const char *index_pattern, const char *data_stream,
                    const lp_index_settings *settings);
void lp_target_free(lp_target *t);

/* consume's start-up: with manage_index_templates, installs the template
 * when it is missing or stale; without, leaves it to `logpipe setup`. */
int lp_target_ensure_template(lp_es *es, const lp_target *t, int verbose, lp_error *e);

#endif
