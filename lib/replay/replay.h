/*
 * replay.h: `logpipe replay`, dead letters written back to their topic once
 * their cause is fixed (a mapping, a template, a parser), exactly once.
 *
 * The dead-letter topic is read as a consumer group with read_committed
 * (consume's aborted transactions stay invisible); each record that passes
 * the filters is written to the target topic with its original key and
 * value, inside a Kafka transaction that also commits the group's position
 * on the dead-letter topic (send_offsets_to_transaction). The
 * transactional.id is fixed per group, so a rerun after kill -9 fences the
 * killed process and aborts its open transaction: each record reaches the
 * target once for read_committed readers (logpipe consume is one).
 */
#ifndef LP_REPLAY_H
#define LP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "kafka/kafka.h"

typedef struct lp_replay_opts {
    const char *brokers;
    const char *topic;     /* the source topic: records whose logpipe.topic is another are skipped */
    const char *dlq_topic; /* the dead-letter topic read (default "<topic>.dlq", set by the caller) */
    const char *to_topic;  /* where records are written (the caller defaults it to topic) */
    const char *group;     /* whose progress on the dead-letter topic is kept */
    const char *const *reasons; /* logpipe.reason prefixes, any of which matches; none: all */
    size_t nreasons;
    const char *stage;    /* logpipe.stage ("parse", "index"); NULL: any */
    int32_t partition;    /* source partition (logpipe.partition); -1: any */
    int64_t from_offset;  /* source offsets (logpipe.offset), inclusive; -1: unbounded */
    int64_t to_offset;
    size_t txn_records;   /* records per transaction */
    int dry_run;          /* count what would be replayed, write and commit nothing */
    int connect_timeout_s;
    int verbose;
    lp_kafka_props kafka_props; /* -X, after logpipe's own settings */
} lp_replay_opts;

/* Runs to the end of the dead-letter topic (its last stable offset, per
 * partition, as reached); appends the JSON summary to summary_json. Returns
 * 0, or the exit code with e set (the summary is still written). */
int lp_replay_run(const lp_replay_opts *o, lp_buf *summary_json, lp_error *e);

#endif
