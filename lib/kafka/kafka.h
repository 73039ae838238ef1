/*
 * kafka.h: librdkafka configuration and the producer shared by
 * `logpipe produce` and the consumer's dead-letter output.
 *
 * Configuration passes straight through as librdkafka properties (kcat's
 * -X key=value): logpipe's own options are only shorthands for properties,
 * applied first, so a -X given later wins. Every error names the property.
 */
#ifndef LP_KAFKA_H
#define LP_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* An ordered list of librdkafka properties. */
typedef struct lp_kafka_props {
    char **kv; /* "key=value" strings, owned */
    size_t n;
} lp_kafka_props;

/* Adds "key=value" (as given to -X); fails naming the argument when it has
 * no '=' or an empty key. */
int lp_kafka_props_add(lp_kafka_props *p, const char *kv, lp_error *e);
int lp_kafka_props_set(lp_kafka_props *p, const char *key, const char *value);
void lp_kafka_props_free(lp_kafka_props *p);

/* A property logpipe sets for a guarantee to hold, which -X must not change. */
typedef struct lp_kafka_fixed {
    const char *key;
    const char *value; /* logpipe's value; NULL: -X may not set the property at all */
    const char *why;   /* what another value would break, for the error */
} lp_kafka_fixed;

/* Fails with LP_EXIT_USAGE naming the -X argument when the user's
 * properties change one of fixed. Values are compared as librdkafka reads
 * them ("smallest" is "earliest", "TRUE" is "true"); a value librdkafka
 * refuses is left for lp_kafka_conf_new to report. */
int lp_kafka_refuse_changes(const lp_kafka_props *user, const lp_kafka_fixed *fixed, size_t n, lp_error *e);

/* librdkafka properties that hold credentials: the only ones whose -X value
 * may be a secret reference (lib/secrets), and whose value no message shows.
 * lp_kafka_is_secret: the subset that must not be given literally (argv is
 * readable by every local user). The list and why: docs/secrets.md. */
int lp_kafka_is_credential(const char *key, size_t len);
int lp_kafka_is_secret(const char *key, size_t len);

/* Checks a --brokers list (host:port[,host:port...], optional scheme://;
 * a host is a name or IPv4 of [A-Za-z0-9._-], or [IPv6]) before librdkafka
 * sees it, so a typo is a usage error and not a silent retry loop. */
int lp_kafka_check_brokers(const char *brokers, lp_error *e);

/* Builds a librdkafka configuration from the properties, in order. On a bad
 * property fails with LP_EXIT_USAGE naming it: "-X linger.ms=abc: ...". */
rd_kafka_conf_t *lp_kafka_conf_new(const lp_kafka_props *p, lp_error *e);

/* Records a connection-level error (the default error callback does; a
 * client with its own callback calls this too), for check_reachable. */
void lp_kafka_note_error(int err, const char *reason);

/* Waits up to timeout_ms for the cluster to answer a metadata request (for
 * no topic: a connection and login check). Fails naming the brokers: with
 * LP_EXIT_USAGE when the login or TLS failed (the settings are wrong),
 * else with LP_EXIT_KAFKA. */
int lp_kafka_check_reachable(rd_kafka_t *rk, const char *brokers, int timeout_ms, lp_error *e);

/* The same check, handing back the metadata answer (all topics when
 * all_topics is set) for the caller to read and rd_kafka_metadata_destroy,
 * so that a start-up looking for its topics asks the cluster once. */
int lp_kafka_metadata_checked(rd_kafka_t *rk, const char *brokers, int all_topics, int timeout_ms,
                              const struct rd_kafka_metadata **md, lp_error *e);

/* The topic's error in a metadata request for it alone: 0 when it exists and
 * may be described, UNKNOWN_TOPIC_OR_PART, TOPIC_AUTHORIZATION_FAILED (a
 * listing of all topics leaves such a topic out, as if it did not exist), or
 * the request's own error. Never creates the topic from a consumer (its
 * allow.auto.create.topics is false). */
rd_kafka_resp_err_t lp_kafka_topic_error(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* A consumer from conf (owned: destroyed on failure too), its events
 * redirected to rd_kafka_consumer_poll; fails with LP_EXIT_USAGE. */
rd_kafka_t *lp_kafka_consumer_new(rd_kafka_conf_t *conf, lp_error *e);

/* ---- producer ---------------------------------------------------------- */

typedef struct lp_producer lp_producer;

/* Delivery report: err is RD_KAFKA_RESP_ERR_NO_ERROR on success; opaque is
 * what was passed to lp_producer_send. */
typedef void (*lp_delivery_fn)(void *ctx, rd_kafka_resp_err_t err, void *opaque);

/* Creates an idempotent producer (enable.idempotence=true, acks=all) from
 * props; takes no ownership of props. on_delivery may be NULL. */
lp_producer *lp_producer_new(const lp_kafka_props *props, lp_delivery_fn on_delivery, void *ctx,
                             lp_error *e);

/* Enqueues one message (copied). headers may be NULL (ownership passes to
 * librdkafka on success). Blocks, serving delivery reports, while the local
 * queue is full. Returns 0, or -1 with e set on a non-retriable error. */
int lp_producer_send(lp_producer *p, const char *topic, int32_t partition, const void *key,
                     size_t klen, const void *val, size_t vlen, rd_kafka_headers_t *headers,
                     void *opaque, lp_error *e);

/* Serves delivery reports without blocking (timeout 0) or up to timeout_ms. */
void lp_producer_poll(lp_producer *p, int timeout_ms);

/* Waits until every message is delivered or failed, up to timeout_ms;
 * returns the number still outstanding. */
int lp_producer_flush(lp_producer *p, int timeout_ms);

rd_kafka_t *lp_producer_handle(lp_producer *p);
void lp_producer_free(lp_producer *p);

/* rd_kafka_init_transactions for the producer made with transactional.id
 * id, whose grant is the prefix logpipe-<group>-. Fails naming the producer
 * (`what`: "dead-letter", "replay") and the id: LP_EXIT_USAGE with the grant
 * to add when Kafka refuses the id, else LP_EXIT_KAFKA. Returns 0, or 1
 * when the call timed out (retriable: it may be called again), or -1. */
int lp_producer_init_transactions(lp_producer *p, const char *what, const char *id, const char *group,
                                  int timeout_ms, lp_error *e);

#endif
