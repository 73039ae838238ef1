/*
 * offsets.h: which Kafka offsets may be committed.
 *
 * The consumer keeps several bulks in flight and they finish in any order,
 * yet Kafka only records one position per partition: committing offset N
 * says everything below N is safely in Elasticsearch. So each partition keeps
 * a FIFO of segments, one per batch its messages went into, in offset order;
 * a batch is marked done when its bulk was acknowledged (and its dead
 * letters joined the transaction that commits the position); the committable position is one past the last
 * offset of the longest prefix of done segments. A later batch finishing
 * first therefore commits nothing until every earlier one is done.
 */
#ifndef LP_OFFSETS_H
#define LP_OFFSETS_H

#include <stdint.h>

typedef struct lp_offsets lp_offsets;

lp_offsets *lp_offsets_new(void);
void lp_offsets_free(lp_offsets *t);

/* Message (topic, partition, offset) went into batch. Offsets of one
 * partition must arrive in increasing order (Kafka's order). */
void lp_offsets_track(lp_offsets *t, const char *topic, int32_t partition, int64_t offset,
                      uint64_t batch);

/* Every message of batch is safely handled. */
void lp_offsets_batch_done(lp_offsets *t, uint64_t batch);

/* Calls fn for each partition whose committable position moved since the
 * last call, with the new position (next offset to consume). */
typedef void (*lp_offsets_fn)(void *ctx, const char *topic, int32_t partition, int64_t next);
void lp_offsets_take_advanced(lp_offsets *t, lp_offsets_fn fn, void *ctx);

/* Calls fn for every partition with a committable position, advanced or not. */
void lp_offsets_each(lp_offsets *t, lp_offsets_fn fn, void *ctx);

/* Records a committable position directly (for a plain position map). */
void lp_offsets_set(lp_offsets *t, const char *topic, int32_t partition, int64_t next);

/* Drops a partition's state (it was revoked). */
void lp_offsets_forget(lp_offsets *t, const char *topic, int32_t partition);

/* Committable position of a partition, or -1 when nothing is. */
int64_t lp_offsets_committable(const lp_offsets *t, const char *topic, int32_t partition);

#endif
