/*
 * metrics.c: the process-wide registry behind --metrics-listen (see
 * metrics.h), its Prometheus text rendering and the /healthz verdict.
 *
 * Writers are the pipeline's thread (counters, gauges, the histogram: plain
 * relaxed atomics) and librdkafka's statistics callback, which runs on the
 * same thread inside a poll, about once a second (the lag table and the
 * broker state, under table_lock). The HTTP thread reads. The health check
 * keeps its own memory of when the progress counters last moved, so the
 * per-message path never writes a timestamp.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <jansson.h>
#include "metrics/metrics.h"
#include "core/timeutil.h"

_Atomic uint64_t lp_counters[LP_C_N];
_Atomic int64_t lp_gauges[LP_G_N];

/* Bulk latency buckets (seconds): a bulk takes tens to hundreds of ms when
 * healthy, up to the 60 s request timeout when not. */
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBUCKETS (sizeof bucket_le / sizeof *bucket_le)
static _Atomic uint64_t bucket_count[NBUCKETS + 1]; /* the last one is +Inf */
static _Atomic uint64_t bulk_micros;                /* sum, in microseconds */

/* Health inputs: milliseconds (CLOCK_MONOTONIC) since failures began, 0 = fine. */
static _Atomic int64_t es_failing_since, kafka_down_since;
/* Since when consume's transaction commit has waited for Kafka (0: none
 * waiting). Statistics cannot show a broker that went away while the loop
 * is inside a blocking transaction call: librdkafka serves them from the
 * same loop, so they arrive only after the call returns, stamped late. */
static _Atomic int64_t kafka_commit_waiting_since;

#define MAX_LAGS 1024
typedef struct lag_entry {
    char topic[250];
    int32_t partition;
    int64_t lag;
} lag_entry;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static lag_entry lags[MAX_LAGS];
static size_t nlags;
static char es_last_error[300];

void lp_metrics_observe_bulk(double seconds)
{
    size_t i = 0;
    while (i < NBUCKETS && seconds > bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&bucket_count[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bulk_micros, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void lp_metrics_es_result(int ok, const char *why)
{
    if (ok) {
        atomic_store_explicit(&es_failing_since, 0, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&table_lock);
    snprintf(es_last_error, sizeof es_last_error, "%s", why);
    pthread_mutex_unlock(&table_lock);
    int64_t zero = 0;
    atomic_compare_exchange_strong(&es_failing_since, &zero, lp_monotonic_ms());
}

void lp_metrics_kafka_commit(int waiting)
{
    int64_t zero = 0;
    if (waiting)
        atomic_compare_exchange_strong(&kafka_commit_waiting_since, &zero, lp_monotonic_ms());
    else
        atomic_store(&kafka_commit_waiting_since, 0);
}

/* ---- lag, from librdkafka's statistics ---------------------------------------- */

int64_t lp_metrics_partition_lag(int64_t ls_offset, int64_t hi_offset, int64_t app_offset,
                                 int64_t committed_offset, int64_t lo_offset)
{
    int64_t end = ls_offset >= 0 ? ls_offset : hi_offset;
    int64_t at = app_offset >= 0 ? app_offset : committed_offset >= 0 ? committed_offset : lo_offset;
    if (end < 0 || at < 0)
        return -1;
    return end > at ? end - at : 0;
}

static int64_t int_field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Partitions this member fetches: fetch_state "active" (others are known
 * to the client, e.g. after a revocation, but not ours to read). */
static void read_partitions(const char *topic, json_t *parts, lag_entry *out, size_t *n)
{
    const char *key;
    json_t *p;
    json_object_foreach(parts, key, p) {
        json_t *state = json_object_get(p, "fetch_state");
        if (!strcmp(key, "-1") || !json_is_string(state) || strcmp(json_string_value(state), "active") ||
            *n == MAX_LAGS)
            continue;
        lag_entry *l = &out[(*n)++];
        snprintf(l->topic, sizeof l->topic, "%s", topic);
        l->partition = (int32_t)atoi(key);
        l->lag = lp_metrics_partition_lag(int_field(p, "ls_offset"), int_field(p, "hi_offset"),
                                          int_field(p, "app_offset"), int_field(p, "committed_offset"),
                                          int_field(p, "lo_offset"));
    }
}

/* Whose broker connections say whether Kafka is reachable: the consumer's
 * for consume (its dead-letter producer may idle without a connection),
 * the producer's for produce. */
static char watched_type[16] = "consumer";

void lp_metrics_watch_type(const char *client_type)
{
    snprintf(watched_type, sizeof watched_type, "%s", client_type);
}

void lp_metrics_read_kafka_stats(const char *json, size_t len)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    if (!root)
        return;
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), watched_type)) {
        json_decref(root);
        return;
    }
    int up = 0;
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(root, "brokers"), key, v) {
        json_t *state = json_object_get(v, "state");
        up |= json_is_string(state) && !strcmp(json_string_value(state), "UP");
    }
    static lag_entry fresh[MAX_LAGS]; /* only the polling thread gets here */
    size_t n = 0;
    int consumer = !strcmp(watched_type, "consumer");
    if (consumer)
        json_object_foreach(json_object_get(root, "topics"), key, v)
            read_partitions(key, json_object_get(v, "partitions"), fresh, &n);
    json_decref(root);
    int64_t now = lp_monotonic_ms(), zero = 0;
    if (up)
        atomic_store(&kafka_down_since, 0);
    else
        atomic_compare_exchange_strong(&kafka_down_since, &zero, now);
    if (consumer) {
        pthread_mutex_lock(&table_lock);
        memcpy(lags, fresh, n * sizeof *fresh);
        nlags = n;
        pthread_mutex_unlock(&table_lock);
    }
}

/* ---- rendering ---------------------------------------------------------------- */

static uint64_t counter(lp_counter c) { return atomic_load_explicit(&lp_counters[c], memory_order_relaxed); }
static int64_t gauge(lp_gauge g) { return atomic_load_explicit(&lp_gauges[g], memory_order_relaxed); }

static void family(lp_buf *out, const char *name, const char *type, const char *help)
{
    lp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(lp_buf *out, const char *name, const char *type, const char *help, unsigned long long v)
{
    family(out, name, type, help);
    lp_buf_printf(out, "%s %llu\n", name, v);
}

/* A label value: Prometheus escapes backslash, quote and newline. */
static void label(lp_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            lp_buf_putc(out, '\\');
        if (*s == '\n')
            lp_buf_puts_lit(out, "\\n");
        else
            lp_buf_putc(out, *s);
    }
}

static long resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* Each counter belongs to one command: a scrape shows only its own. */
static const struct {
    lp_counter c;
    const char *command, *name, *help;
} counters[] = {
    {LP_C_CONSUMED, "consume", "logpipe_consumed_messages_total", "Messages taken from Kafka (re-reads included)."},
    {LP_C_CONSUMED_BYTES, "consume", "logpipe_consumed_bytes_total", "Bytes of the consumed messages' keys and values."},
    {LP_C_INDEXED, "consume", "logpipe_indexed_documents_total", "Documents Elasticsearch acknowledged."},
    {LP_C_REJECTED, "consume", "logpipe_rejected_messages_total", "Messages that did not parse (dead-lettered)."},
    {LP_C_REFUSED, "consume", "logpipe_refused_documents_total", "Documents Elasticsearch refused for their own fault (dead-lettered)."},
    {LP_C_DEAD_LETTERED, "consume", "logpipe_dead_lettered_messages_total", "Dead letters committed to the dead-letter topic."},
    {LP_C_RETRIES, "consume", "logpipe_retries_total", "Elasticsearch requests and items sent again after 429/5xx or a failure."},
    {LP_C_ES_BYTES, "consume", "logpipe_bulk_sent_bytes_total", "Bytes of _bulk request bodies sent (after gzip)."},
    {LP_C_PRODUCED, "produce", "logpipe_produced_messages_total", "Messages handed to the Kafka producer."},
    {LP_C_PRODUCED_BYTES, "produce", "logpipe_produced_bytes_total", "Bytes of the produced messages' keys and values."},
    {LP_C_DELIVERED, "produce", "logpipe_delivered_messages_total", "Produced messages the brokers acknowledged."},
    {LP_C_DELIVERY_FAILED, "produce", "logpipe_delivery_failures_total", "Produced messages whose delivery failed."},
};

static void render_lags(lp_buf *out)
{
    family(out, "logpipe_partition_lag", "gauge",
           "Messages between the next offset this member reads and the partition's end, per assigned partition.");
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < nlags; i++) {
        if (lags[i].lag < 0)
            continue;
        lp_buf_puts_lit(out, "logpipe_partition_lag{topic=\"");
        label(out, lags[i].topic);
        lp_buf_printf(out, "\",partition=\"%d\"} %lld\n", lags[i].partition, (long long)lags[i].lag);
    }
    pthread_mutex_unlock(&table_lock);
}

static void render_histogram(lp_buf *out)
{
    family(out, "logpipe_bulk_duration_seconds", "histogram", "Time from sending a _bulk request to its answer.");
    uint64_t cum = 0;
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cum += atomic_load_explicit(&bucket_count[i], memory_order_relaxed);
        if (i < NBUCKETS)
            lp_buf_printf(out, "logpipe_bulk_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i],
                          (unsigned long long)cum);
        else
            lp_buf_printf(out, "logpipe_bulk_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    lp_buf_printf(out, "logpipe_bulk_duration_seconds_sum %.6f\nlogpipe_bulk_duration_seconds_count %llu\n",
                  (double)atomic_load(&bulk_micros) / 1e6, (unsigned long long)cum);
}

void lp_metrics_render(const char *command, lp_buf *out)
{
    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++)
        if (!strcmp(counters[i].command, command))
            one(out, counters[i].name, "counter", counters[i].help, counter(counters[i].c));
    if (strcmp(command, "consume"))
        goto process;
    family(out, "logpipe_bulk_requests_total", "counter",
           "_bulk requests by outcome: ok (every item final), partial (items to retry), error (no usable answer).");
    lp_buf_printf(out, "logpipe_bulk_requests_total{outcome=\"ok\"} %llu\n", (unsigned long long)counter(LP_C_BULK_OK));
    lp_buf_printf(out, "logpipe_bulk_requests_total{outcome=\"partial\"} %llu\n",
                  (unsigned long long)counter(LP_C_BULK_PARTIAL));
    lp_buf_printf(out, "logpipe_bulk_requests_total{outcome=\"error\"} %llu\n",
                  (unsigned long long)counter(LP_C_BULK_ERROR));
    render_histogram(out);
    one(out, "logpipe_bulks_in_flight", "gauge", "_bulk requests Elasticsearch has not answered yet.",
        (unsigned long long)gauge(LP_G_BULKS_IN_FLIGHT));
    one(out, "logpipe_partitions_assigned", "gauge", "Partitions assigned to this consumer group member.",
        (unsigned long long)gauge(LP_G_ASSIGNED));
    one(out, "logpipe_partitions_paused", "gauge", "Assigned partitions paused while every batch is in flight.",
        (unsigned long long)gauge(LP_G_PAUSED));
    render_lags(out);
process:
    one(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
        (unsigned long long)resident_bytes());
    family(out, "logpipe_build_info", "gauge", "logpipe's version and its libraries'.");
    lp_buf_printf(out, "logpipe_build_info{version=\"%s\",librdkafka=\"%s\",libcurl=\"%s\",libmicrohttpd=\"%s\"} 1\n",
                  LOGPIPE_VERSION, rd_kafka_version_str(), curl_version_info(CURLVERSION_NOW)->version,
                  lp_metrics_server_version());
}

/* ---- health ------------------------------------------------------------------- */

/* Progress (consume: messages consumed and documents indexed) and what
 * waits for it (the lag). Not for produce: its delivery reports are served
 * between input lines, so a producer waiting on a quiet stdin would look
 * stalled; a producer that cannot deliver fails its messages after
 * message.timeout.ms, and a broker that is away shows in its statistics. */
static void progress_and_backlog(uint64_t *progress, int64_t *backlog)
{
    *progress = counter(LP_C_CONSUMED) + counter(LP_C_INDEXED);
    *backlog = 0;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < nlags; i++)
        *backlog += lags[i].lag > 0 ? lags[i].lag : 0;
    pthread_mutex_unlock(&table_lock);
}

int lp_metrics_health(const char *command, double unhealthy_after_s, lp_buf *reason)
{
    /* When the progress counters last moved, as seen by the health checks. */
    static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last_progress;
    static int64_t last_moved_ms;
    int64_t now = lp_monotonic_ms(), limit = (int64_t)(unhealthy_after_s * 1000);
    int64_t es = atomic_load(&es_failing_since), kafka = atomic_load(&kafka_down_since);
    if (es && now - es > limit) {
        pthread_mutex_lock(&table_lock);
        lp_buf_printf(reason, "Elasticsearch has not accepted a _bulk request for %.0f s (unreachable or failing; the last: %s)", (double)(now - es) / 1000,
                      es_last_error);
        pthread_mutex_unlock(&table_lock);
        return 503;
    }
    if (kafka && now - kafka > limit) {
        lp_buf_printf(reason, "Kafka unreachable for %.0f s: no broker connection is up", (double)(now - kafka) / 1000);
        return 503;
    }
    int64_t commit = atomic_load(&kafka_commit_waiting_since);
    if (commit && now - commit > limit) {
        lp_buf_printf(reason, "Kafka unreachable or slow: a transaction commit has waited %.0f s for it",
                      (double)(now - commit) / 1000);
        return 503;
    }
    uint64_t progress = 0;
    int64_t backlog = 0;
    if (strcmp(command, "produce"))
        progress_and_backlog(&progress, &backlog);
    pthread_mutex_lock(&seen_lock);
    if (progress != last_progress || !last_moved_ms || backlog <= 0) {
        last_progress = progress;
        last_moved_ms = now;
    }
    int64_t still = now - last_moved_ms;
    pthread_mutex_unlock(&seen_lock);
    if (still > limit) {
        lp_buf_printf(reason, "no progress for %.0f s with %lld message(s) waiting", (double)still / 1000,
                      (long long)backlog);
        return 503;
    }
    lp_buf_printf(reason, "%s", !strcmp(command, "produce") ? "ok" : backlog > 0 ? "ok: making progress" : "ok: caught up");
    return 200;
}

