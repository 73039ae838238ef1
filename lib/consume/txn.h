/*
 * txn.h: the dead-letter transaction of a consume run (txn.c). Its state is
 * a handful of interacting flags; they live together here so that the rest
 * of the consumer asks one question of them, "may a completed batch join
 * the transaction now?" (lp_txn_may_complete), and drives the transaction
 * only through its commit points (lp_txn_commit). txn.c's head comment has
 * the state machine.
 */
#ifndef LP_CONSUME_TXN_H
#define LP_CONSUME_TXN_H

#include <stdint.h>

#include "kafka/kafka.h"

typedef struct lp_txn {
    lp_producer *dlq;                         /* transactional: dead letters and offsets commit together */
    rd_kafka_topic_partition_list_t *pending; /* positions not yet committed: the next commit's offsets */
    int open;   /* the dead-letter producer's transaction */
    int broken; /* it can no longer commit: abort at the next commit point */
    /* commit_transaction timed out (Kafka unreachable): the commit is still in
     * progress, and librdkafka allows nothing on the transaction but retrying
     * it, so completed batches wait (their dead letters and offsets would
     * belong to the next transaction) and an abort first retries the commit. */
    int committing;
    int rewinding; /* completed batches are dropped, not committed (lp_consume_rewind) */
    int redo;      /* the final commit was aborted: read again from the last commit */
    /* The dead-letter producer hit a fatal error (fenced: the coordinator
     * aborted its transaction while the broker was away). librdkafka allows
     * nothing more on it, so a new one takes over (renew_dlq); renewals
     * counts those since the last successful commit. */
    int fenced, renewals;
    /* A dead-letter write was refused without the producer being fatal (the
     * transaction is in an abortable state, e.g. its messages timed out while
     * the broker was away): abort and read again at the next commit point.
     * doomed_in_a_row stops a refusal that repeats (without a commit). */
    int doomed, doomed_in_a_row;
    uint64_t dead_letters;   /* written in the open transaction: counted when it commits */
    uint64_t msgs;           /* messages the open transaction's offsets cover */
    uint64_t committed_msgs; /* messages covered by the run's committed transactions */
    char id[256];            /* the dead-letter producer's transactional.id */
    int64_t failing_since;   /* first periodic commit that could not complete, 0 if none */
    int64_t last_commit_ms;
} lp_txn;

/* Where a commit happens: about once a second from the loop, at a
 * revocation (the partitions must be settled now), at the run's stop. */
typedef enum { COMMIT_PERIODIC, COMMIT_REVOKE, COMMIT_FINAL } commit_point;

struct consumer;
struct batch;

/* 1 if a completed batch may join the open transaction now. */
int lp_txn_may_complete(const lp_txn *t);
/* Adds a completed batch (the earliest in sequence) to the transaction: its
 * dead letters, then its offsets. -1 if it could not (the state changed). */
int lp_txn_add_batch(struct consumer *c, struct batch *b);
void lp_txn_commit(struct consumer *c, commit_point at, int assignment_lost);

#endif
