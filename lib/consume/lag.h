/*
 * lag.h: how far a consumer is behind, per partition: the partition's end
 * (high watermark; the last stable offset for a read_committed consumer)
 * minus the consumer's position. One function, shared by the exit summary,
 * the live status line and the metrics gauge, so they all mean the same.
 */
#ifndef LP_LAG_H
#define LP_LAG_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "core/buf.h"

/* For each element of parts (topic, partition, offset = the next offset to
 * read: a position or a committed offset; negative when there is none, which
 * counts from the partition's low watermark, as auto.offset.reset=earliest
 * would), stores its lag in lags[i], or -1 when the end is unknown.
 * timeout_ms 0 uses librdkafka's cached watermarks (no request: fit for the
 * loop and a scrape); > 0 asks the broker (exact: the exit summary).
 * Returns the sum of the known lags. */
int64_t lp_consume_lag(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts, int timeout_ms,
                       int64_t *lags);

/* The exit summary's view: the group's committed offsets for parts (asked
 * of the coordinator) against the partitions' ends (asked of the leaders),
 * appended to out as "lag":{"<topic>":{"<partition>":N,...},...},"backlog":N
 * (backlog the sum; null, and a partition's lag null, when Kafka did not
 * answer). all_committed: every message the consumer read is committed, so
 * where its position is past the committed offset only transaction markers
 * lie between, and the position counts. Returns the backlog, or -1. */
int64_t lp_consume_lag_json(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts, int all_committed,
                            int timeout_ms, lp_buf *out);

#endif
