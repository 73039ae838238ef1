/*
 * metrics.h: what a running consume or produce exposes to Prometheus and to
 * a health check (--metrics-listen), and the one interface the pipeline
 * code uses to feed it.
 *
 * The pipeline thread must not slow down or block for the sake of a scrape,
 * so the registry is process-wide and lock-free on the write side: counters
 * and gauges are C11 atomics updated with relaxed ordering (an uncontended
 * add, no lock, no branch on whether anyone scrapes). The HTTP server runs
 * on libmicrohttpd's own thread and only reads them. The few things that
 * are not single numbers (lag per partition, the last Elasticsearch error)
 * change about once a second, off the per-message path, under a mutex.
 * Counting is always on; only the server is optional.
 */
#ifndef LP_METRICS_H
#define LP_METRICS_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

typedef enum lp_counter {
    LP_C_CONSUMED,         /* messages taken from Kafka (re-reads included, as the summary's) */
    LP_C_CONSUMED_BYTES,   /* their keys and values */
    LP_C_INDEXED,          /* documents Elasticsearch acknowledged */
    LP_C_REJECTED,         /* messages that did not parse */
    LP_C_REFUSED,          /* documents Elasticsearch refused for their own fault */
    LP_C_DEAD_LETTERED,    /* dead letters committed to the dead-letter topic */
    LP_C_RETRIES,          /* whole-request and per-item retries (the summary's "retries") */
    LP_C_BULK_OK,          /* _bulk requests answered with every item final */
    LP_C_BULK_PARTIAL,     /* answered, some items to retry (429/5xx per item) */
    LP_C_BULK_ERROR,       /* no usable answer: transport error, HTTP error status */
    LP_C_ES_BYTES,         /* _bulk bytes sent (after gzip) */
    LP_C_PRODUCED,         /* produce: messages handed to librdkafka */
    LP_C_PRODUCED_BYTES,   /* their keys and values */
    LP_C_DELIVERED,        /* produce: acknowledged by the brokers */
    LP_C_DELIVERY_FAILED,  /* produce: failed delivery reports */
    LP_C_N
} lp_counter;

typedef enum lp_gauge {
    LP_G_BULKS_IN_FLIGHT, /* _bulk requests Elasticsearch has not answered */
    LP_G_PAUSED,          /* partitions paused for back-pressure */
    LP_G_ASSIGNED,        /* partitions assigned to this member */
    LP_G_N
} lp_gauge;

extern _Atomic uint64_t lp_counters[LP_C_N];
extern _Atomic int64_t lp_gauges[LP_G_N];

static inline void lp_count(lp_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&lp_counters[c], n, memory_order_relaxed);
}

/* For a counter its owner already keeps (consume's run counts): a plain
 * store from time to time instead of an atomic add per event. */
static inline void lp_counter_set(lp_counter c, uint64_t v)
{
    atomic_store_explicit(&lp_counters[c], v, memory_order_relaxed);
}

static inline void lp_gauge_set(lp_gauge g, int64_t v)
{
    atomic_store_explicit(&lp_gauges[g], v, memory_order_relaxed);
}

/* One _bulk request's latency, into the histogram. */
void lp_metrics_observe_bulk(double seconds);

/* Elasticsearch answered a request (ok) or failed to (a transport error, an
 * HTTP 5xx or 429): /healthz turns 503 once failures have lasted longer
 * than the threshold with no answer in between. why is kept for the reason. */
void lp_metrics_es_result(int ok, const char *why);

/* consume's transaction commit started waiting for Kafka (1: the first
 * try, kept across retries) or is done, committed or given up (0): /healthz
 * turns 503 once one has waited longer than the threshold. */
void lp_metrics_kafka_commit(int waiting);

/* With a server running, makes librdkafka emit statistics every second to
 * a callback that keeps the lag of each partition this consumer fetches
 * and whether any broker connection is up (for /healthz). Call on the conf
 * before rd_kafka_new; without a server it does nothing. */
void lp_metrics_watch_kafka(rd_kafka_conf_t *conf);

/* The lag of one partition from librdkafka's statistics: the last stable
 * offset (the high watermark before 0.11 brokers) minus the next offset the
 * application reads (or the committed offset, before the first message);
 * -1 when unknown. Exposed for the unit test. */
int64_t lp_metrics_partition_lag(int64_t ls_offset, int64_t hi_offset, int64_t app_offset,
                                 int64_t committed_offset, int64_t lo_offset);

/* Reads one statistics JSON document (as librdkafka hands it to stats_cb)
 * of a client of the watched type ("consumer" by default, or "producer",
 * lp_metrics_start sets it from the command): others are ignored. */
void lp_metrics_watch_type(const char *client_type);
void lp_metrics_read_kafka_stats(const char *json, size_t len);

/* ---- the server ----------------------------------------------------------- */

typedef struct lp_metrics_server lp_metrics_server;

/* Checks --metrics-listen's HOST:PORT ([IPv6]:PORT, port 0..65535; the host
 * is required: logpipe binds only where told). Fails with LP_EXIT_USAGE
 * naming the flag. */
int lp_metrics_check_listen(const char *hostport, lp_error *e);

/* Binds hostport and serves GET /metrics and /healthz on a thread of its
 * own. command ("consume", "produce") picks what /healthz watches;
 * unhealthy_after_s is the threshold. A port in use or an address that is
 * not this machine's fails with LP_EXIT_USAGE naming the flag. The bound
 * address (port 0 picks one) is written to bound. */
lp_metrics_server *lp_metrics_start(const char *hostport, const char *command, double unhealthy_after_s,
                                    char *bound, size_t bound_len, lp_error *e);
void lp_metrics_stop(lp_metrics_server *s);

/* The Prometheus text and the health verdict, as the server answers them
 * for command (exposed for the unit test): the text holds that command's
 * metrics only. lp_metrics_health returns the HTTP status and writes the
 * reason ("ok: ..." when 200). */
void lp_metrics_render(const char *command, lp_buf *out);
int lp_metrics_health(const char *command, double unhealthy_after_s, lp_buf *reason);

/* libmicrohttpd's version, for --version. */
const char *lp_metrics_server_version(void);

#endif
