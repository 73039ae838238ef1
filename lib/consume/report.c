/*
 * report.c: what a consume run tells about itself: the progress line on
 * stderr while it runs (--progress), --metrics-listen's counters, and at
 * the end its exit status and the JSON summary on stdout. Kept apart from
 * the loop because none of it decides what is consumed or committed: it
 * only reads the run's counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consume/consumer_internal.h"
#include "consume/lag.h"
#include "core/json.h"
#include "metrics/metrics.h"

/* Messages behind the end on the assigned partitions, from librdkafka's
 * cached watermarks (no round trip): the progress line's "lag". */
static int64_t total_lag(consumer *c)
{
    if (!c->assigned)
        return 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(c->assigned);
    int64_t *lags = lp_xcalloc((size_t)l->cnt + 1, sizeof *lags);
    rd_kafka_position(c->rk, l);
    int64_t lag = lp_consume_lag(c->rk, l, 0, lags);
    free(lags);
    rd_kafka_topic_partition_list_destroy(l);
    return lag;
}

/* The progress line, rewritten in place at most twice a second. */
void lp_consume_show_status(consumer *c, int64_t start_ms, int64_t *last_ms)
{
    int64_t now = lp_monotonic_ms();
    if (now - *last_ms < 500)
        return;
    *last_ms = now;
    double secs = (double)(now - start_ms) / 1000.0;
    fprintf(stderr, "\rconsumed %llu  indexed %llu  rejected %llu  dead-lettered %llu  %.0f msg/s  lag %lld   ",
            (unsigned long long)c->res->consumed, (unsigned long long)c->res->indexed,
            (unsigned long long)c->res->rejected, (unsigned long long)c->res->dead_lettered,
            secs > 0 ? (double)c->res->consumed / secs : 0.0, (long long)total_lag(c));
}

/* --metrics-listen's view of the run, from the counts the summary keeps:
 * stored at each of the loop's checks (every 64 messages or each idle
 * turn) and at the stop, rather than a second, atomic count per message. */
void lp_consume_publish_metrics(const consumer *c)
{
    const lp_consume_result *r = c->res;
    lp_counter_set(LP_C_CONSUMED, r->consumed);
    lp_counter_set(LP_C_CONSUMED_BYTES, c->consumed_bytes);
    lp_counter_set(LP_C_INDEXED, r->indexed);
    lp_counter_set(LP_C_REJECTED, r->rejected);
    lp_counter_set(LP_C_REFUSED, r->refused);
    lp_counter_set(LP_C_DEAD_LETTERED, r->dead_lettered);
    lp_gauge_set(LP_G_ASSIGNED, c->assigned ? c->assigned->cnt : 0);
    lp_gauge_set(LP_G_PAUSED, c->assigned && c->paused ? c->assigned->cnt : 0);
}

/* The summary's "committed" object: one key per topic, its partitions in
 * it. Partitions enter c->stored in the order they first commit, so topics
 * alternate there; each topic is written once, with all of its partitions. */
typedef struct json_ctx {
    lp_buf *out;
    const char *topic; /* the one being written */
    lp_offsets *stored;
    const char **seen; /* topics written so far */
    size_t nseen;
    int first_part;
} json_ctx;

static void put_partition(void *ctx, const char *topic, int32_t partition, int64_t next)
{
    json_ctx *j = ctx;
    if (strcmp(j->topic, topic))
        return;
    lp_buf_printf(j->out, "%s\"%d\":%lld", j->first_part ? "" : ",", partition, (long long)next);
    j->first_part = 0;
}

static void put_topic(void *ctx, const char *topic, int32_t partition, int64_t next)
{
    json_ctx *j = ctx;
    (void)partition;
    (void)next;
    for (size_t i = 0; i < j->nseen; i++)
        if (!strcmp(j->seen[i], topic))
            return;
    j->seen = lp_xrealloc(j->seen, (j->nseen + 1) * sizeof *j->seen);
    if (j->nseen++)
        lp_buf_putc(j->out, ',');
    j->seen[j->nseen - 1] = topic;
    lp_json_str(j->out, topic, strlen(topic));
    lp_buf_puts_lit(j->out, ":{");
    json_ctx part = {.out = j->out, .topic = topic, .first_part = 1};
    lp_offsets_each(j->stored, put_partition, &part);
    lp_buf_putc(j->out, '}');
}

/* The JSON summary consume prints on stdout (docs/guarantees.md). */
void lp_consume_summary(consumer *c, lp_buf *out)
{
    const lp_consume_result *r = c->res;
    lp_buf_printf(out,
                  "{\"consumed\":%llu,\"indexed\":%llu,\"rejected\":%llu,\"refused\":%llu,"
                  "\"dead_lettered\":%llu,\"dead_letter_failed\":%llu,\"retries\":%llu,"
                  "\"duration_s\":%.3f,\"group\":",
                  (unsigned long long)r->consumed, (unsigned long long)r->indexed,
                  (unsigned long long)r->rejected, (unsigned long long)r->refused,
                  (unsigned long long)r->dead_lettered, (unsigned long long)r->dlq_failed,
                  (unsigned long long)r->retries, r->duration_s);
    lp_json_str(out, c->o->group, strlen(c->o->group));
    lp_buf_puts_lit(out, ",\"topics\":[");
    for (size_t i = 0; i < c->o->ntopics; i++) {
        if (i)
            lp_buf_putc(out, ',');
        lp_json_str(out, c->o->topics[i], strlen(c->o->topics[i]));
    }
    lp_buf_puts_lit(out, "],\"committed\":{");
    json_ctx j = {.out = out, .stored = c->stored};
    lp_offsets_each(c->stored, put_topic, &j);
    free(j.seen);
    lp_buf_puts_lit(out, "},");
    if (c->lag_json.len)
        lp_buf_append(out, c->lag_json.data, c->lag_json.len);
    else
        lp_buf_puts_lit(out, "\"lag\":{},\"backlog\":null");
    lp_buf_printf(out, ",\"exit_code\":%d}", r->exit_code);
}

/* The run's exit status and message: its first fatal error, else failed
 * dead-letter writes, else batches Elasticsearch did not acknowledge. */
void lp_consume_finish(consumer *c)
{
    lp_consume_result *r = c->res;
    size_t left = c->es ? lp_consume_outstanding(c) + (c->open && c->open->nmsgs) : 0;
    if (c->fatal[0]) {
        r->exit_code = c->fatal_code;
        snprintf(r->message, sizeof r->message, "%s", c->fatal);
    } else if (r->dlq_failed) {
        r->exit_code = LP_EXIT_PARTIAL;
        snprintf(r->message, sizeof r->message,
                 "%llu dead-letter write(s) failed; the offsets of their batches were not committed "
                 "and will be consumed again",
                 (unsigned long long)r->dlq_failed);
    } else if (left) {
        r->exit_code = r->indexed == 0 && r->consumed > 0 ? LP_EXIT_ES : LP_EXIT_PARTIAL;
        snprintf(r->message, sizeof r->message,
                 "%zu batch(es) were not acknowledged by Elasticsearch before the drain timeout; "
                 "their offsets were not committed and they will be consumed again",
                 left);
    } else if (c->fatal_code) {
        r->exit_code = c->fatal_code;
    }
}
