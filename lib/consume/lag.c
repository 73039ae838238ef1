/*
 * lag.c: a partition's lag, its end minus the next offset to read (lag.h).
 *
 * The cached watermarks are what librdkafka last saw in a fetch response,
 * free to read and at most a fetch old; a query is a ListOffsets request per
 * partition, exact but a round trip each, so it is for the summary only.
 * A position past the end (the end was read before a truncation) is lag 0,
 * never negative.
 */
#include <stdlib.h>
#include <string.h>

#include "consume/lag.h"
#include "core/json.h"
#include "metrics/metrics.h"

int64_t lp_consume_lag(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts, int timeout_ms,
                       int64_t *lags)
{
    int64_t total = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err =
            timeout_ms > 0 ? rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi, timeout_ms)
                           : rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi);
        /* The arithmetic is the metrics' (from the position, else the low
         * watermark; never negative), on the high watermark: the figures
         * differ only in where the end comes from. */
        lags[i] = err ? -1 : lp_metrics_partition_lag(-1, hi, p->offset, -1, lo);
        if (lags[i] > 0)
            total += lags[i];
    }
    return total;
}

int64_t lp_consume_lag_json(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts, int all_committed,
                            int timeout_ms, lp_buf *out)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_topic_partition_list_sort(l, NULL, NULL); /* by topic, then partition */
    int64_t *lags = lp_xcalloc((size_t)l->cnt + 1, sizeof *lags), backlog = -1;
    int known = rd_kafka_committed(rk, l, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (known && all_committed) {
        /* Past the committed offset only transaction markers (the consumer
         * commits one past its last message; a transactional topic's
         * partition ends with a commit marker, which would read as lag 1). */
        rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_copy(l);
        rd_kafka_position(rk, at);
        for (int i = 0; i < l->cnt; i++)
            if (at->elems[i].offset > l->elems[i].offset)
                l->elems[i].offset = at->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(at);
    }
    if (known)
        backlog = lp_consume_lag(rk, l, timeout_ms, lags);
    lp_buf_puts_lit(out, "\"lag\":{");
    for (int i = 0; i < l->cnt; i++) {
        const char *topic = l->elems[i].topic;
        int first = i == 0 || strcmp(topic, l->elems[i - 1].topic);
        if (first) {
            if (i)
                lp_buf_puts_lit(out, "},");
            lp_json_str(out, topic, strlen(topic));
            lp_buf_putc(out, ':');
            lp_buf_putc(out, '{');
        }
        lp_buf_printf(out, "%s\"%d\":", first ? "" : ",", (int)l->elems[i].partition);
        if (known && lags[i] >= 0 && !l->elems[i].err)
            lp_buf_append_i64(out, lags[i]);
        else {
            lp_buf_puts_lit(out, "null");
            backlog = -1;
        }
    }
    if (l->cnt)
        lp_buf_putc(out, '}');
    lp_buf_puts_lit(out, "},\"backlog\":");
    if (backlog >= 0)
        lp_buf_append_i64(out, backlog);
    else
        lp_buf_puts_lit(out, "null");
    free(lags);
    rd_kafka_topic_partition_list_destroy(l);
    return backlog;
}
