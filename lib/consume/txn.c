/*
 * txn.c: the dead-letter transaction (see txn.h, docs/guarantees.md).
 *
 * A completed batch's dead letters are written to the dead-letter topic
 * inside a Kafka transaction, and its offsets join that transaction's
 * offset commit (the consumer's own auto-commit is off): either both become
 * visible or neither does, so a crash can neither lose a dead letter nor
 * write one twice for read_committed readers. Batches join in sequence
 * order (lp_consume_complete_in_order asks lp_txn_may_complete first), so
 * every dead letter is covered by the offsets its transaction commits.
 *
 * The state machine. The states are lp_txn's flags; the events are a
 * completed batch (lp_txn_add_batch) and a commit point (lp_txn_commit:
 * PERIODIC about once a second from the loop, REVOKE after a revocation's
 * drain, FINAL at the stop).
 *
 *   state       completed batch            commit point
 *   ----------  -------------------------  ------------------------------------------
 *   idle        joins: begins a            nothing pending: nothing; else begins a
 *   (!open)     transaction if it has      transaction and commits as "open"
 *               dead letters
 *   open        joins: dead letters        commit: done -> idle, its counts credited;
 *               written, offsets pending   Kafka away -> stays open, retried at the
 *                                          next PERIODIC (after 60 s of that ->
 *                                          fenced) or for --drain-timeout + 30 s
 *                                          (REVOKE, FINAL: then aborted);
 *                                          "abort required" -> aborted
 *   committing  waits                      commit_transaction retried, nothing else
 *                                          allowed; an abort first retries it for
 *                                          30 s (a commit that completes stands),
 *                                          then -> broken
 *   doomed      waits                      aborted
 *   fenced      waits                      dropped without an abort; a new producer
 *                                          (renew_dlq, its init aborts the old
 *                                          transaction) -> idle; the 4th renewal
 *                                          without a commit stops the run
 *   broken      waits                      aborted; the run stops (exit status set)
 *   rewinding   dropped, not committed     (only inside lp_consume_rewind)
 *
 *   How the states are entered: a dead-letter write refused with the
 *   producer fatal -> fenced; refused otherwise -> doomed (the 4th time
 *   without a commit -> broken, LP_EXIT_PARTIAL); begin_transaction failing
 *   -> fenced (fatal) or broken (LP_EXIT_KAFKA); a commit timing out in
 *   commit_transaction -> committing; an abort timing out -> fenced; any
 *   other commit error (txn_failed) -> broken, or fenced if the producer
 *   is fatal. At a revocation with the
 *   assignment lost, or in broken, the transaction is aborted at once.
 *
 *   Aborted means: pending offsets and the transaction's counts dropped
 *   (discard_txn), then what it covered is read again (after_abort): by this
 *   member now (PERIODIC: rewinding, then seek to the committed offsets), by
 *   this member before it stops (FINAL: redo, lp_consume_run reads again),
 *   or by the partitions' new owner (REVOKE).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "consume/consumer_internal.h"
#include "consume/watchdog.h"
#include "metrics/metrics.h"

/* How long periodic commits may fail before the dead-letter producer is
 * replaced: past transaction.timeout.ms (45 s), when the coordinator has
 * aborted the transaction anyway. */
#define TXN_STUCK_MS 60000

/* A partition's position advanced: it joins the next transaction's offsets. */
static void store_offset(void *ctx, const char *topic, int32_t partition, int64_t next)
{
    consumer *c = ctx;
    rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(c->txn.pending, topic, partition);
    if (!p)
        p = rd_kafka_topic_partition_list_add(c->txn.pending, topic, partition);
    p->offset = next;
}

/* --dlq-topic, or the message's topic with ".dlq" appended. */
static const char *dlq_topic_for(consumer *c, const char *topic, lp_buf *out)
{
    if (c->o->dlq_topic)
        return c->o->dlq_topic;
    lp_buf_reset(out);
    lp_buf_printf(out, "%s.dlq", topic);
    return lp_buf_cstr(out);
}

/* Opens a transaction unless one is open; a failure leaves it closed
 * (fenced or broken, see the table above). */
static void begin_txn(consumer *c)
{
    if (c->txn.open)
        return;
    rd_kafka_error_t *err = rd_kafka_begin_transaction(lp_producer_handle(c->txn.dlq));
    if (err) {
        char msg[400];
        snprintf(msg, sizeof msg, "dead-letter transaction could not begin: %s", rd_kafka_error_string(err));
        if (rd_kafka_error_is_fatal(err)) {
            c->txn.fenced = 1;
            lp_consume_log("%s", msg);
        } else {
            c->txn.broken = 1;
            lp_consume_fatal(c, LP_EXIT_KAFKA, msg);
        }
        rd_kafka_error_destroy(err);
        return;
    }
    c->txn.open = 1;
}

/* The headers a dead letter carries: why and at which stage it was
 * refused, and where in Kafka it came from. */
static rd_kafka_headers_t *dead_letter_headers(const batch *b, const reject *r)
{
    const held *m = &b->msgs[r->msg];
    char num[32];
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "logpipe.reason", -1, b->reasons.data + r->reason_at, -1);
    rd_kafka_header_add(h, "logpipe.stage", -1, r->stage, -1);
    rd_kafka_header_add(h, "logpipe.topic", -1, m->topic, -1);
    snprintf(num, sizeof num, "%d", (int)m->partition);
    rd_kafka_header_add(h, "logpipe.partition", -1, num, -1);
    snprintf(num, sizeof num, "%lld", (long long)m->offset);
    rd_kafka_header_add(h, "logpipe.offset", -1, num, -1);
    return h;
}

/* A dead-letter write was refused: fenced, doomed or broken (the table
 * above). Returns -1: the batch did not join the transaction. */
static int write_refused(consumer *c, const lp_error *err)
{
    if (rd_kafka_fatal_error(lp_producer_handle(c->txn.dlq), NULL, 0)) {
        /* fenced: the transaction is lost anyway, and a new producer
         * re-reads this batch (lp_txn_commit) */
        c->txn.fenced = 1;
        lp_consume_log("the dead-letter producer was fenced: %s", err->msg);
        return -1;
    }
    if (++c->txn.doomed_in_a_row <= 3) {
        c->txn.doomed = 1;
        lp_consume_log("dead-letter write failed (%s): aborting the transaction, its messages are read again",
                       err->msg);
        return -1;
    }
    c->res->dlq_failed++;
    c->txn.broken = 1; /* part of this batch's dead letters are in the transaction */
    char msg[sizeof err->msg + 64];
    snprintf(msg, sizeof msg, "dead-letter write failed: %s", err->msg);
    lp_consume_fatal(c, LP_EXIT_PARTIAL, msg);
    return -1;
}

/* Writes a completed batch's dead letters into the open transaction. */
static int dead_letter_batch(consumer *c, batch *b)
{
    if (b->nrejects == 0)
        return 0;
    begin_txn(c);
    if (!c->txn.open)
        return -1;
    lp_buf name = LP_BUF_INIT;
    for (size_t i = 0; i < b->nrejects; i++) {
        const held *m = &b->msgs[b->rejects[i].msg];
        rd_kafka_headers_t *h = dead_letter_headers(b, &b->rejects[i]);
        lp_error err;
        lp_buf_reset(&name);
        const char *raw = b->raw.data + m->at;
        if (lp_producer_send(c->txn.dlq, dlq_topic_for(c, m->topic, &name), RD_KAFKA_PARTITION_UA,
                             m->has_key ? raw : NULL, m->key_len, raw + m->key_len, m->len, h, NULL, &err)) {
            rd_kafka_headers_destroy(h);
            lp_buf_free(&name);
            return write_refused(c, &err);
        }
    }
    lp_buf_free(&name);
    c->txn.dead_letters += b->nrejects;
    return 0;
}

/* Not while it can no longer commit (broken, fenced, doomed), while a
 * commit is in progress (the batch's dead letters and offsets would belong
 * to the next transaction), nor while a rewind drops completed batches. */
int lp_txn_may_complete(const lp_txn *t)
{
    return !(t->broken || t->rewinding || t->committing || t->fenced || t->doomed);
}

int lp_txn_add_batch(consumer *c, batch *b)
{
    if (dead_letter_batch(c, b))
        return -1;
    c->txn.msgs += b->nmsgs - b->nrevoked;
    lp_offsets_batch_done(c->offsets, b->seq);
    lp_offsets_take_advanced(c->offsets, store_offset, c);
    return 0;
}

/* A transaction call failed for good: broken and the exit status set
 * (aborting first if librdkafka requires it), or fenced if the producer
 * itself is fatal. */
static void txn_failed(consumer *c, const char *what, rd_kafka_error_t *err)
{
    char msg[600];
    rd_kafka_t *p = lp_producer_handle(c->txn.dlq);
    c->txn.broken = 1;
    if (rd_kafka_error_txn_requires_abort(err)) {
        lp_watchdog_arm("abort_transaction", 30000 + LP_WATCHDOG_GRACE_MS);
        rd_kafka_error_t *abort_err = rd_kafka_abort_transaction(p, 30000);
        lp_watchdog_disarm();
        if (abort_err)
            rd_kafka_error_destroy(abort_err);
        c->txn.open = 0;
        snprintf(msg, sizeof msg, "%s failed (%s): the transaction was aborted; its messages were not "
                 "committed and will be consumed again", what, rd_kafka_error_string(err));
        lp_consume_fatal(c, LP_EXIT_PARTIAL, msg);
    } else if (rd_kafka_error_is_fatal(err)) {
        c->txn.broken = 0; /* not this transaction's fault: the producer is replaced */
        c->txn.fenced = 1;
        lp_consume_log("%s failed: %s: a new dead-letter producer takes over", what, rd_kafka_error_string(err));
    } else {
        snprintf(msg, sizeof msg, "%s failed: %s", what, rd_kafka_error_string(err));
        lp_consume_fatal(c, LP_EXIT_PARTIAL, msg);
    }
    rd_kafka_error_destroy(err);
}

/* The next transaction starts with no offsets. */
static void clear_pending(lp_txn *t)
{
    rd_kafka_topic_partition_list_destroy(t->pending);
    t->pending = rd_kafka_topic_partition_list_new(8);
}

/* The open transaction committed: its dead letters and messages are
 * counted, its offsets are the run's committed positions (the summary). */
static void credit_commit(consumer *c)
{
    c->txn.open = 0;
    c->txn.renewals = c->txn.doomed_in_a_row = 0;
    c->res->dead_lettered += c->txn.dead_letters;
    c->txn.dead_letters = 0;
    c->txn.committed_msgs += c->txn.msgs;
    c->txn.msgs = 0;
    for (int i = 0; i < c->txn.pending->cnt; i++)
        lp_offsets_set(c->stored, c->txn.pending->elems[i].topic, c->txn.pending->elems[i].partition,
                       c->txn.pending->elems[i].offset);
    clear_pending(&c->txn);
}

/* One try at committing the open transaction with the pending offsets:
 * 0 done, 1 retriable (the broker is away: try again later, with the
 * transaction still open), 2 the transaction must be aborted (a broker
 * restart can cause that: "not coordinator"), -1 failed (txn_failed set
 * the exit status). */
static int try_commit_once(consumer *c)
{
    lp_metrics_kafka_commit(1);
    rd_kafka_t *p = lp_producer_handle(c->txn.dlq);
    begin_txn(c);
    if (!c->txn.open)
        return -1;
    rd_kafka_error_t *err = NULL;
    const char *what = "committing offsets";
    if (c->txn.pending->cnt && !c->txn.committing) {
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(c->rk);
        lp_watchdog_arm("send_offsets_to_transaction", 10000 + LP_WATCHDOG_GRACE_MS);
        err = rd_kafka_send_offsets_to_transaction(p, c->txn.pending, md, 10000);
        lp_watchdog_disarm();
        rd_kafka_consumer_group_metadata_destroy(md);
    }
    if (!err) {
        what = "committing offsets and dead letters";
        lp_watchdog_arm("commit_transaction", 10000 + LP_WATCHDOG_GRACE_MS);
        err = rd_kafka_commit_transaction(p, 10000);
        lp_watchdog_disarm();
        c->txn.committing = err && rd_kafka_error_is_retriable(err);
    }
    if (err && rd_kafka_error_is_retriable(err)) {
        if (c->o->verbose)
            lp_consume_log("%s will be retried: %s", what, rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return 1;
    }
    if (err && rd_kafka_error_txn_requires_abort(err)) {
        lp_consume_log("%s failed (%s): aborting the transaction", what, rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return 2;
    }
    if (err) {
        txn_failed(c, what, err);
        return -1;
    }
    credit_commit(c);
    return 0;
}

static int try_commit(consumer *c)
{
    int rc = try_commit_once(c);
    if (rc != 1) /* /healthz: a retried commit keeps waiting since its first try */
        lp_metrics_kafka_commit(0);
    return rc;
}

/* An abort that timed out (the coordinator unreachable: a broker restart,
 * or Kafka away past session.timeout.ms, which is how a revocation with the
 * assignment lost meets it) loses nothing: the transaction never committed,
 * and the producer's replacement (renew_dlq) makes the coordinator abort it
 * once Kafka answers. So the producer is treated as fenced, not the run as
 * failed. */
static void abort_timed_out(consumer *c, rd_kafka_error_t *err)
{
    lp_consume_log("aborting the dead-letter transaction did not complete (%s): a new dead-letter producer "
                   "takes over and aborts it", rd_kafka_error_string(err));
    c->txn.fenced = 1;
    rd_kafka_error_destroy(err);
}

/* Aborts the open transaction (dropped without an abort when fenced: the
 * next producer's init aborts it) and forgets its offsets and counts; a
 * commit in progress is let finish first, and then stands. */
static void discard_txn(consumer *c)
{
    /* An abort conflicts with a commit in progress: finish the commit first
     * (what it commits was acknowledged by Elasticsearch, so it may stand). */
    int64_t deadline = lp_monotonic_ms() + 30000;
    int rc = 1;
    while (c->txn.committing && !c->txn.fenced && (rc = try_commit(c)) == 1 && lp_monotonic_ms() < deadline)
        usleep(500 * 1000);
    if (c->txn.committing && !c->txn.fenced) {
        c->txn.committing = 0;
        c->txn.broken = 1;
        lp_consume_fatal(c, LP_EXIT_PARTIAL, "Kafka did not complete a transaction commit in 30 s: the messages since "
                                             "the last commit were not committed and will be consumed again");
    }
    if (rc == 0 && !c->txn.open)
        return;
    c->txn.dead_letters = c->txn.msgs = 0;
    c->txn.committing = 0;
    if (c->txn.open && !c->txn.fenced) {
        lp_watchdog_arm("abort_transaction", 30000 + LP_WATCHDOG_GRACE_MS);
        rd_kafka_error_t *err = rd_kafka_abort_transaction(lp_producer_handle(c->txn.dlq), 30000);
        lp_watchdog_disarm();
        if (err && rd_kafka_error_is_retriable(err))
            abort_timed_out(c, err);
        else if (err)
            txn_failed(c, "aborting the dead-letter transaction", err);
        c->txn.open = 0;
    }
    clear_pending(&c->txn);
    lp_metrics_kafka_commit(0);
}

/* Replaces a fenced or stuck dead-letter producer with a new instance of
 * the same transactional.id: its init_transactions makes the coordinator
 * abort whatever the old one left open (and fences it), so nothing the old
 * one wrote in that transaction is visible and its offsets are not
 * committed; the caller reads those messages again from the committed
 * offsets, which are stable by then. A broker that keeps fencing new
 * producers stops the run. */
static int renew_dlq(consumer *c)
{
    lp_error e;
    if (c->fatal[0])
        return -1;
    if (++c->txn.renewals > 3) {
        lp_consume_fatal(c, LP_EXIT_KAFKA, "the dead-letter producer was fenced 3 times without a commit in between: "
                                           "stopping; the messages since the last commit will be consumed again");
        return -1;
    }
    lp_producer_free(c->txn.dlq); /* first: two live instances of one id fence each other */
    c->txn.dlq = lp_consume_open_dlq(c, &e);
    if (!c->txn.dlq) {
        lp_consume_fatal(c, e.code, e.msg);
        return -1;
    }
    c->txn.fenced = c->txn.open = c->txn.committing = 0;
    lp_consume_log("a new dead-letter producer took over: reading again from the last commit");
    return 0;
}

/* What an aborted transaction covered is read again: by this member now
 * (periodic), by this member before it stops (final), or by the partitions'
 * new owner (revocation). */
static void after_abort(consumer *c, commit_point at)
{
    if (c->txn.fenced && renew_dlq(c))
        return;
    if (at == COMMIT_PERIODIC)
        lp_consume_rewind(c);
    else if (at == COMMIT_FINAL)
        c->txn.redo = 1;
}

/* Commits, retrying while Kafka is away: not at all at a periodic commit
 * (the next one retries), else for --drain-timeout + 30 s. At a revocation
 * or the stop, what the batches that waited for the commit complete is
 * committed too, while the partitions are still this member's. Returns
 * try_commit's last answer. */
static int commit_until_done(consumer *c, commit_point at)
{
    int64_t patience = at == COMMIT_PERIODIC ? 0 : (int64_t)c->o->drain_timeout_s * 1000 + 30000;
    int64_t deadline = lp_monotonic_ms() + patience;
    int rc;
    for (;;) {
        while ((rc = try_commit(c)) == 1 && lp_monotonic_ms() < deadline && lp_consume_stop_signals < 2)
            usleep(500 * 1000);
        if (rc != 0)
            break;
        c->txn.failing_since = 0;
        lp_consume_complete_in_order(c); /* batches that waited for a commit in progress */
        if (at == COMMIT_PERIODIC || c->txn.fenced || c->txn.doomed || c->txn.broken ||
            (!c->txn.open && c->txn.pending->cnt == 0))
            break;
    }
    return rc;
}

/* A periodic commit could not complete: past TXN_STUCK_MS of that, the
 * producer is replaced. Seen after a broker restart: AddOffsetsToTxn timing
 * out on every retry while the broker answers everything else. The
 * coordinator has aborted that transaction by now (transaction.timeout.ms). */
static void note_stuck(consumer *c)
{
    if (!c->txn.failing_since) {
        c->txn.failing_since = lp_monotonic_ms();
    } else if (lp_monotonic_ms() - c->txn.failing_since > TXN_STUCK_MS) {
        lp_consume_log("the dead-letter transaction could not commit for %d s: replacing its producer",
                       TXN_STUCK_MS / 1000);
        c->txn.fenced = 1;
        c->txn.failing_since = 0;
    }
}

/* Commits the stored offsets and the dead letters they cover in one Kafka
 * transaction (the consumer's own auto-commit is off): either both become
 * visible or neither does. Periodic commits that meet a missing broker try
 * again a second later. At a revocation the partitions must be settled
 * now: retried for --drain-timeout, then aborted (their new owner re-reads
 * those messages; the _ids make the overlap invisible in Elasticsearch, the
 * abort keeps the dead letters single), as when the assignment was lost.
 * Only the final commit's failure decides the exit status. */
void lp_txn_commit(consumer *c, commit_point at, int assignment_lost)
{
    c->txn.last_commit_ms = lp_monotonic_ms();
    if (c->txn.fenced || c->txn.doomed) { /* the transaction is lost either way */
        c->txn.doomed = 0;
        discard_txn(c);
        after_abort(c, at);
        return;
    }
    if (!c->txn.open && c->txn.pending->cnt == 0)
        return;
    if (assignment_lost || c->txn.broken) {
        discard_txn(c);
        if (c->txn.fenced)
            renew_dlq(c);
        return;
    }
    int rc = commit_until_done(c, at);
    if (rc == 1 && at == COMMIT_PERIODIC)
        note_stuck(c);
    if (rc == 2 || c->txn.fenced || (at != COMMIT_PERIODIC && c->txn.doomed)) {
        c->txn.doomed = c->txn.doomed && at == COMMIT_PERIODIC;
        discard_txn(c);
        after_abort(c, at);
    } else if (rc == 1 && at == COMMIT_REVOKE) {
        lp_consume_log("offsets could not be committed before the revocation: those messages will be re-read");
        discard_txn(c);
    } else if (rc == 1 && at == COMMIT_FINAL) {
        lp_consume_fatal(c, LP_EXIT_PARTIAL, "Kafka did not accept the final offset commit in time: the messages "
                                             "since the last commit were not committed and will be consumed again");
        discard_txn(c);
    }
    if (c->txn.fenced) /* the abort above met a fenced producer */
        renew_dlq(c);
}
