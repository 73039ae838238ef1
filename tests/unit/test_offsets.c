/* test_offsets.c: only contiguously acknowledged offsets become committable. */
#include "check.h"
#include "consume/offsets.h"

static int calls;
static int64_t last_next;
static void seen(void *ctx, const char *topic, int32_t partition, int64_t next)
{
    (void)ctx;
    (void)topic;
    (void)partition;
    calls++;
    last_next = next;
}

int main(void)
{
    lp_offsets *t = lp_offsets_new();
    /* batch 1: offsets 0..9 of p0; batch 2: 10..19; batch 3: 20..24 */
    for (int64_t o = 0; o < 25; o++)
        lp_offsets_track(t, "logs", 0, o, o < 10 ? 1 : o < 20 ? 2 : 3);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), -1);
    /* A later batch finishing first commits nothing. */
    lp_offsets_batch_done(t, 2);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), -1);
    lp_offsets_take_advanced(t, seen, NULL);
    CHECK_INT(calls, 0);
    /* Batch 1 done: both 1 and 2 are a contiguous prefix now. */
    lp_offsets_batch_done(t, 1);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), 20);
    lp_offsets_take_advanced(t, seen, NULL);
    CHECK_INT(calls, 1);
    CHECK_INT(last_next, 20);
    lp_offsets_take_advanced(t, seen, NULL);
    CHECK_INT(calls, 1); /* reported once */
    lp_offsets_batch_done(t, 3);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), 25);

    /* Gaps in offsets (compaction, transaction markers) are fine. */
    lp_offsets_track(t, "logs", 1, 100, 4);
    lp_offsets_track(t, "logs", 1, 107, 4);
    lp_offsets_batch_done(t, 4);
    CHECK_INT(lp_offsets_committable(t, "logs", 1), 108);

    /* One batch spanning partitions and topics; another partition pending. */
    lp_offsets_track(t, "logs", 0, 25, 5);
    lp_offsets_track(t, "other", 0, 0, 5);
    lp_offsets_track(t, "logs", 0, 26, 6);
    lp_offsets_track(t, "other", 0, 1, 6);
    lp_offsets_batch_done(t, 6);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), 25);
    CHECK_INT(lp_offsets_committable(t, "other", 0), -1);
    lp_offsets_batch_done(t, 5);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), 27);
    CHECK_INT(lp_offsets_committable(t, "other", 0), 2);

    /* Revocation forgets; a batch finishing later touches nothing. */
    lp_offsets_track(t, "logs", 0, 27, 7);
    lp_offsets_forget(t, "logs", 0);
    lp_offsets_batch_done(t, 7);
    CHECK_INT(lp_offsets_committable(t, "logs", 0), -1);

    /* Many batches in flight on many partitions, completed in reverse. */
    for (int p = 0; p < 32; p++)
        for (int64_t o = 0; o < 100; o++)
            lp_offsets_track(t, "wide", p, o, 100 + (uint64_t)o / 10);
    for (int b = 109; b >= 101; b--)
        lp_offsets_batch_done(t, (uint64_t)b);
    CHECK_INT(lp_offsets_committable(t, "wide", 31), -1);
    lp_offsets_batch_done(t, 100);
    for (int p = 0; p < 32; p++)
        CHECK_INT(lp_offsets_committable(t, "wide", p), 100);
    lp_offsets_free(t);
    return CHECK_DONE();
}
