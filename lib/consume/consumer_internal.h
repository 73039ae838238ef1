/*
 * consumer_internal.h: the inside of a consume run, shared by the files the
 * consumer is split into along its seams:
 *   consumer.c  the batch pool, message handling, rebalances and the loop
 *   txn.c       the dead-letter transaction (txn.h: its state and commits)
 *   startup.c   options checked, Kafka clients configured and created
 *   report.c    the status line, --metrics-listen's counts, the summary
 * Not part of consume.h: callers only see lp_consume_run and its result.
 * One struct (consumer) holds a run, because every part acts on the same
 * batches, assignment and exit status; the transaction's interacting flags
 * are grouped apart in lp_txn so that only txn.c reasons about them.
 */
#ifndef LP_CONSUMER_INTERNAL_H
#define LP_CONSUMER_INTERNAL_H

#include <signal.h>
#include <stdint.h>

#include "consume/consume.h"
#include "core/timeutil.h"
#include "consume/offsets.h"
#include "consume/txn.h"

/* A message of a batch that goes to the dead-letter topic. Dead letters are
 * written only when their batch completes in sequence order, into the same
 * Kafka transaction as the offsets that cover them (lp_txn_add_batch). */
typedef struct reject {
    uint32_t msg;       /* index in the batch's held */
    uint32_t reason_at; /* offset of its NUL-terminated reason in the batch's reasons */
    const char *stage;  /* "parse" or "index" */
} reject;

/* A message of a batch, copied: its key then its value at raw + at. */
typedef struct held {
    const char *topic; /* interned (consumer.topic_names) */
    int64_t offset;
    int32_t partition;
    size_t at, key_len, len;
    int has_key;
    int revoked; /* its partition was revoked while the batch was in flight (let_go) */
} held;

typedef struct batch {
    uint64_t seq;
    lp_bulk *bulk;
    held *msgs;         /* all messages of the batch */
    lp_buf raw;         /* their keys and values */
    size_t rejected_bytes; /* raw bytes of messages that did not parse: in no bulk body, yet held */
    uint32_t *item_msg; /* bulk item -> index in msgs */
    size_t nmsgs, cap;
    size_t nrevoked; /* messages of msgs whose partition was revoked */
    reject *rejects;
    size_t nrejects, rejects_cap;
    lp_buf reasons;
    int submitted, bulk_done, in_use;
    int64_t opened_ms;
} batch;

typedef struct consumer {
    const lp_consume_opts *o;
    rd_kafka_t *rk;
    lp_es *es;
    lp_parser *parser;
    lp_offsets *offsets;
    lp_offsets *stored; /* positions committed this run, for the summary */
    lp_txn txn;         /* the dead-letter transaction, its producer and offsets */
    /* Messages this run still stands behind: covered by committed
     * transactions (txn.committed_msgs), by the open one (txn.msgs), or in
     * a batch. --max-messages counts these, so messages read again after an
     * aborted transaction, or left to a partition's new owner, are not
     * counted twice (recount). */
    uint64_t taken;
    uint64_t consumed_bytes; /* keys and values taken: --metrics-listen's bytes counter */
    /* Reading again after an aborted final commit (txn.redo): up to the
     * number of messages the run had taken (redo_goal), within
     * --drain-timeout of the first abort (redo_until_ms); 0 when not reading
     * again. */
    uint64_t redo_goal;
    int64_t redo_until_ms, started_ms;
    batch *batches;
    size_t nbatches;
    batch *open; /* receiving messages */
    uint64_t next_seq;
    rd_kafka_topic_partition_list_t *assigned;
    /* Partitions of the assignment whose end librdkafka has reported since it
     * was assigned (a rewind re-reads messages, which resets the idle clock
     * anyway): --until-idle needs all of them, because a
     * member can sit with no messages for seconds before it has a position
     * (a killed member's open transaction keeps the group's offsets unstable
     * until the broker aborts it) and that is not being caught up. */
    unsigned char *at_end; /* one per element of assigned */
    int paused;
    unsigned rebalances; /* rebalance callbacks served so far (run_loop) */
    int64_t full_since; /* when the open batch became full with every slot in flight */
    int64_t waiting_since; /* when the loop found no batch free (wait_for_a_batch) */
    int64_t last_activity_ms;
    lp_index_cache index; /* the open document's index */
    lp_buf id, tmp;
    lp_buf lag_json; /* the summary's "lag" and "backlog", taken before leaving the group */
    char **topic_names; /* every topic name seen, owned here (held.topic) */
    size_t ntopic_names;
    const rd_kafka_topic_t *last_rkt;
    const char *last_topic;
    lp_consume_result *res;
    char fatal[512];
    int fatal_code;
} consumer;

/* SIGINT and SIGTERM received: one stops the run gracefully, a second stops
 * its waits (drains, commit retries) too. */
extern volatile sig_atomic_t lp_consume_stop_signals;

/* A line on stderr, prefixed "logpipe consume: ". */
void lp_consume_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records the run's first fatal error: the run stops and exits with code. */
void lp_consume_fatal(consumer *c, int code, const char *msg);

/* consumer.c */
void lp_consume_complete_in_order(consumer *c);
void lp_consume_rewind(consumer *c);
size_t lp_consume_outstanding(const consumer *c);
void lp_consume_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                             void *opaque);

/* startup.c */
int lp_consume_start(consumer *c, lp_error *e);
lp_producer *lp_consume_open_dlq(consumer *c, lp_error *e);

/* report.c */
void lp_consume_show_status(consumer *c, int64_t start_ms, int64_t *last_ms);
void lp_consume_publish_metrics(const consumer *c);
void lp_consume_finish(consumer *c);
void lp_consume_summary(consumer *c, lp_buf *out);

#endif
