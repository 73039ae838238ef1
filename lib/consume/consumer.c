/*
 * consumer.c: the consume loop (see consume.h and docs/guarantees.md).
 *
 * One thread drives everything: rd_kafka_consumer_poll hands over one
 * message at a time; the message is parsed straight into the open batch's
 * bulk body (its _id from topic, partition and offset, so a replay
 * overwrites); full or lingering batches go to lp_es; lp_es_poll fires one
 * "done" per bulk. Batches complete in sequence order: a completed batch's
 * rejects (unparseable, or refused by Elasticsearch) are written to the
 * dead-letter topic inside a Kafka transaction, and its offsets join that
 * transaction's offset commit, about once a second (txn.c). So the
 * index is exactly-once by _id, and the dead-letter topic exactly-once for
 * read_committed readers, even across kill -9.
 *
 * Each message's key and value are copied into its batch and the message
 * is released at once, because a refused document must reach the
 * dead-letter topic with its original bytes when its bulk answers, and a
 * held rd_kafka_message_t pins the whole fetch response (or decompressed
 * message set, for a compressed topic) it came in, so memory would depend
 * on how producers batch. The copy (~250 bytes) costs a fraction of the
 * parse. Memory is bounded by the number of batches, which is fixed, and
 * by librdkafka's prefetch bound: when no batch can take a message the loop
 * stops polling messages, and pauses the assigned partitions if that lasts
 * (the group stays alive because rd_kafka_consumer_poll keeps being called).
 *
 * This file keeps the batch pool, message handling, rebalances and the
 * loop; the transaction, start-up and the report are beside it
 * (consumer_internal.h lists them).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consume/consumer_internal.h"
#include "consume/lag.h"
#include "core/json.h"

/* While messages flow, the loop reads the clock and checks Elasticsearch's
 * sockets and the dead-letter producer once per this many messages, not per
 * message: each check is a poll(2) or a clock read, and together they were
 * a third of consume's CPU. At 50 k msg/s that is every ~1 ms; with no
 * message the loop checks (and sleeps in poll) at once. */
#define CHECK_EVERY 64
/* How long the loop waits for a free slot before it pauses the partitions. */
#define FULL_PAUSE_MS 1000

volatile sig_atomic_t lp_consume_stop_signals;
static void on_signal(int sig) { (void)sig; lp_consume_stop_signals++; }

void lp_consume_log(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "logpipe consume: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void lp_consume_fatal(consumer *c, int code, const char *msg)
{
    if (!c->fatal[0]) {
        size_t n = strlen(msg) < sizeof c->fatal - 1 ? strlen(msg) : sizeof c->fatal - 1;
        memcpy(c->fatal, msg, n);
        c->fatal[n] = '\0';
        c->fatal_code = code;
    }
}

/* ---- batches and bulk results ------------------------------------------------ */

static void release(batch *b)
{
    b->nmsgs = b->nrevoked = 0;
    lp_buf_reset(&b->raw);
    b->rejected_bytes = 0;
    b->nrejects = 0;
    lp_buf_reset(&b->reasons);
    lp_bulk_reset(b->bulk);
    b->submitted = b->bulk_done = 0;
    b->in_use = 0;
}

/* Remembers that message mi of batch b goes to the dead-letter topic. */
static void note_reject(batch *b, size_t mi, const char *stage, const char *reason)
{
    if (b->nrejects == b->rejects_cap) {
        b->rejects_cap = b->rejects_cap ? b->rejects_cap * 2 : 16;
        b->rejects = lp_xrealloc(b->rejects, b->rejects_cap * sizeof *b->rejects);
    }
    b->rejects[b->nrejects++] = (reject){(uint32_t)mi, (uint32_t)b->reasons.len, stage};
    lp_buf_append(&b->reasons, reason, strlen(reason) + 1);
}

/* Completes finished batches in sequence order: each one's dead letters go
 * into the open transaction, then its offsets become committable. Keeping
 * sequence order means every dead letter in a transaction is covered by the
 * offsets that transaction commits, so a crash can neither lose one (its
 * offsets commit with it) nor write one twice (an aborted transaction's
 * dead letters are invisible to read_committed readers). */
void lp_consume_complete_in_order(consumer *c)
{
    for (;;) {
        batch *head = NULL;
        for (size_t i = 0; i < c->nbatches; i++)
            if (c->batches[i].in_use && (!head || c->batches[i].seq < head->seq))
                head = &c->batches[i];
        if (!head || !head->bulk_done || !lp_txn_may_complete(&c->txn) || lp_txn_add_batch(c, head))
            return;
        release(head);
    }
}

static void on_bulk_done(void *ctx, lp_bulk *bulk, void *opaque)
{
    consumer *c = ctx;
    batch *b = opaque;
    size_t n = lp_bulk_items(bulk);
    for (size_t i = 0; i < n; i++) {
        int status;
        const char *reason;
        if (lp_bulk_item_state(bulk, i, &status, &reason) == LP_ITEM_OK) {
            c->res->indexed++;
        } else if (!b->msgs[b->item_msg[i]].revoked) { /* else its new owner dead-letters it */
            c->res->refused++;
            note_reject(b, b->item_msg[i], "index", reason);
        }
    }
    b->bulk_done = 1;
    lp_consume_complete_in_order(c);
}

static batch *take_free_batch(consumer *c)
{
    for (size_t i = 0; i < c->nbatches; i++)
        if (!c->batches[i].in_use) {
            batch *b = &c->batches[i];
            b->in_use = 1;
            b->seq = c->next_seq++;
            b->opened_ms = lp_monotonic_ms();
            return b;
        }
    return NULL;
}

static void submit_open(consumer *c)
{
    batch *b = c->open;
    if (!b || b->nmsgs == 0)
        return;
    b->submitted = 1;
    c->open = NULL;
    lp_es_submit(c->es, b->bulk, on_bulk_done, c, b);
}

/* Re-opens the item under the right index when the name's width changed
 * (a year outside 1000..9999): rare, so a copy is fine here. */
static void reopen_item(consumer *c, lp_bulk *bulk, lp_buf *body, size_t doc_at)
{
    lp_buf_reset(&c->tmp);
    lp_buf_append(&c->tmp, body->data + doc_at, body->len - doc_at);
    lp_bulk_end(bulk, 0);
    body = lp_bulk_begin(bulk, c->index.name.data, c->index.name.len, c->id.data, c->id.len);
    lp_buf_append(body, c->tmp.data, c->tmp.len);
}

/* Closes the document with its Kafka coordinates (the field names of
 * Filebeat's kafka input): they let anyone, and the Airflow reconcile task,
 * count exactly which offsets of a run reached the index. The parser always
 * ends a document with its closing brace, which this reopens. */
static void add_kafka_fields(lp_buf *body, const char *topic, const rd_kafka_message_t *m)
{
    body->len--;
    lp_buf_puts_lit(body, ",\"kafka\":{\"topic\":");
    lp_json_str(body, topic, strlen(topic));
    lp_buf_puts_lit(body, ",\"partition\":");
    lp_buf_append_i64(body, m->partition);
    lp_buf_puts_lit(body, ",\"offset\":");
    lp_buf_append_i64(body, m->offset);
    lp_buf_puts_lit(body, "}}");
}

/* The topic's name, owned by the consumer: a held message outlives the
 * rd_kafka_message_t whose topic handle named it. One topic almost always. */
static const char *topic_of(consumer *c, const rd_kafka_message_t *m)
{
    if (m->rkt == c->last_rkt)
        return c->last_topic;
    const char *name = rd_kafka_topic_name(m->rkt);
    size_t i = 0;
    while (i < c->ntopic_names && strcmp(c->topic_names[i], name))
        i++;
    if (i == c->ntopic_names) {
        c->topic_names = lp_xrealloc(c->topic_names, (i + 1) * sizeof *c->topic_names);
        c->topic_names[c->ntopic_names++] = lp_xstrdup(name);
    }
    c->last_rkt = m->rkt;
    return c->last_topic = c->topic_names[i];
}

/* Copies the message into the open batch; the caller releases it. */
static size_t hold(batch *b, const rd_kafka_message_t *m, const char *topic)
{
    if (b->nmsgs == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->msgs = lp_xrealloc(b->msgs, b->cap * sizeof *b->msgs);
        b->item_msg = lp_xrealloc(b->item_msg, b->cap * sizeof *b->item_msg);
    }
    held *h = &b->msgs[b->nmsgs];
    *h = (held){topic, m->offset, m->partition, b->raw.len, m->key ? m->key_len : 0, m->len, m->key != NULL, 0};
    if (m->key_len)
        lp_buf_append(&b->raw, m->key, m->key_len);
    if (m->len)
        lp_buf_append(&b->raw, m->payload, m->len);
    return b->nmsgs++;
}

static void handle_message(consumer *c, const rd_kafka_message_t *m)
{
    batch *b = c->open;
    const char *topic = topic_of(c, m);
    size_t mi = hold(b, m, topic);
    lp_offsets_track(c->offsets, topic, m->partition, m->offset, b->seq);
    c->res->consumed++;
    c->consumed_bytes += m->key_len + m->len;
    c->taken++;

    /* _id from the message's coordinates: a replay overwrites. */
    lp_buf_reset(&c->id);
    lp_buf_append(&c->id, topic, strlen(topic));
    lp_buf_putc(&c->id, '-');
    lp_buf_append_i64(&c->id, m->partition);
    lp_buf_putc(&c->id, '-');
    lp_buf_append_i64(&c->id, m->offset);

    /* Parse straight into the bulk body behind an action line naming the
     * index of the previous document; patch the name if this one's hour
     * differs (same width, so in place). */
    size_t item = lp_bulk_items(b->bulk);
    lp_buf *body = lp_bulk_begin(b->bulk, c->index.name.data, c->index.name.len, c->id.data, c->id.len);
    size_t doc_at = body->len;
    lp_parse_result pr;
    if (lp_parse_line(c->parser, m->payload ? m->payload : "", m->len, body, &pr) != 0) {
        lp_bulk_end(b->bulk, 0);
        b->rejected_bytes += m->key_len + m->len;
        c->res->rejected++;
        note_reject(b, mi, "parse", pr.reject_reason);
        return;
    }
    add_kafka_fields(body, topic, m);
    if (lp_index_cache_set(&c->index, pr.timestamp) &&
        lp_bulk_set_index(b->bulk, c->index.name.data, c->index.name.len))
        reopen_item(c, b->bulk, body, doc_at);
    lp_bulk_end(b->bulk, 1);
    b->item_msg[item] = (uint32_t)mi;
}

/* ---- draining, revoked partitions -------------------------------------------- */

size_t lp_consume_outstanding(const consumer *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nbatches; i++)
        n += c->batches[i].in_use && c->batches[i].submitted;
    return n;
}

/* Bulks Elasticsearch has not answered yet: what --inflight bounds. A batch
 * whose bulk is done but waits for an earlier one (or for a commit in
 * progress) is not in flight: counting it could leave the open batch, when
 * it is the earliest after a rewind or a revocation, unsubmittable behind
 * batches that wait for it. Memory stays bounded by the number of batches. */
static size_t in_flight(const consumer *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nbatches; i++)
        n += c->batches[i].in_use && c->batches[i].submitted && !c->batches[i].bulk_done;
    return n;
}

/* Finishes in-flight bulks up to deadline (their dead letters are flushed
 * by the transaction's commit). */
static void drain(consumer *c, int64_t deadline_ms)
{
    lp_error e;
    submit_open(c);
    while (lp_es_pending(c->es) && lp_monotonic_ms() < deadline_ms && lp_consume_stop_signals < 2 && !c->fatal[0]) {
        if (lp_es_poll(c->es, 100, &e))
            lp_consume_fatal(c, e.code, e.msg);
        lp_producer_poll(c->txn.dlq, 0);
    }
}

/* Messages this run still stands behind, after some were given up (an
 * aborted transaction, a revocation): committed, in the open transaction,
 * or in a batch for a partition still ours. */
static void recount(consumer *c)
{
    c->taken = c->txn.committed_msgs + c->txn.msgs;
    for (size_t i = 0; i < c->nbatches; i++)
        if (c->batches[i].in_use)
            c->taken += c->batches[i].nmsgs - c->batches[i].nrevoked;
}

/* Marks batch b's messages of the revoked partitions as no longer ours and
 * drops their dead letters (rejects noted so far; on_bulk_done notes no
 * more for them). */
static void disown(batch *b, const rd_kafka_topic_partition_list_t *parts)
{
    for (size_t i = 0; i < b->nmsgs; i++) {
        held *m = &b->msgs[i];
        if (!m->revoked && rd_kafka_topic_partition_list_find(parts, m->topic, m->partition)) {
            m->revoked = 1;
            b->nrevoked++;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < b->nrejects; i++)
        if (!b->msgs[b->rejects[i].msg].revoked)
            b->rejects[kept++] = b->rejects[i];
    b->nrejects = kept;
}

/* The partitions are revoked, and whatever the revocation could not
 * commit (the drain timed out, or the commit failed) is their new owner's
 * to read again from the committed offsets, possibly this member's after
 * the next assignment. So nothing of theirs may be dead-lettered or
 * committed by this member later: batches still in flight finish (their
 * documents are good, and the re-read overwrites them by _id), but without
 * the revoked partitions' dead letters or offsets. */
static void let_go(consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    size_t dropped = 0;
    for (size_t i = 0; i < c->nbatches; i++)
        if (c->batches[i].in_use) {
            size_t before = c->batches[i].nrevoked;
            disown(&c->batches[i], parts);
            dropped += c->batches[i].nrevoked - before;
        }
    for (int i = 0; i < parts->cnt; i++) {
        lp_offsets_forget(c->offsets, parts->elems[i].topic, parts->elems[i].partition);
        rd_kafka_topic_partition_list_del(c->txn.pending, parts->elems[i].topic, parts->elems[i].partition);
    }
    recount(c);
    if (dropped && c->o->verbose)
        lp_consume_log("%zu message(s) still in flight were left to the revoked partitions' new owner", dropped);
}

/* ---- caught up: every assigned partition has reported its end ---------------- */

/* No partition of parts (the new assignment, or none) has reported its end
 * yet: --until-idle waits for each of them again. */
static void reset_ends(consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    free(c->at_end);
    c->at_end = parts && parts->cnt ? lp_xcalloc((size_t)parts->cnt, 1) : NULL;
}

/* The message's partition's index in the assignment, or -1 if not assigned. */
static int assigned_index(const consumer *c, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    for (int i = 0; c->assigned && i < c->assigned->cnt; i++)
        if (c->assigned->elems[i].partition == m->partition && !strcmp(c->assigned->elems[i].topic, topic))
            return i;
    return -1;
}

static void mark_end(consumer *c, const rd_kafka_message_t *m)
{
    int i = assigned_index(c, m);
    if (i >= 0)
        c->at_end[i] = 1;
}

static int caught_up(const consumer *c)
{
    if (!c->assigned)
        return 0;
    for (int i = 0; i < c->assigned->cnt; i++)
        if (!c->at_end[i])
            return 0;
    return 1;
}

/* ---- rewinds and rebalances -------------------------------------------------- */

/* The group coordinator may be moving or loading right after a broker
 * came back (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS): those pass. */
static int coordinator_settling(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR || err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
           err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT;
}

/* Seeks every assigned partition back to its committed offset. */
static void seek_to_committed(consumer *c)
{
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_copy(c->assigned);
    rd_kafka_resp_err_t err;
    int64_t until = lp_monotonic_ms() + 60000;
    while ((err = rd_kafka_committed(c->rk, at, 30000)) && lp_monotonic_ms() < until &&
           lp_consume_stop_signals < 2 && coordinator_settling(err))
        usleep(500 * 1000);
    for (int i = 0; !err && i < at->cnt; i++) {
        lp_offsets_forget(c->offsets, at->elems[i].topic, at->elems[i].partition);
        if (at->elems[i].offset < 0)
            at->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_error_t *serr = err ? NULL : rd_kafka_seek_partitions(c->rk, at, 30000);
    if (err || serr) {
        char msg[400];
        snprintf(msg, sizeof msg, "rewinding to the committed offsets failed (%s): stopping; the messages "
                 "since the last commit will be consumed again",
                 serr ? rd_kafka_error_string(serr) : rd_kafka_err2str(err));
        lp_consume_fatal(c, LP_EXIT_PARTIAL, msg);
    } else {
        lp_consume_log("rewound %d partition(s) to their committed offsets", at->cnt);
    }
    if (serr)
        rd_kafka_error_destroy(serr);
    rd_kafka_topic_partition_list_destroy(at);
}

/* After an aborted transaction: everything since the last commit is read
 * again. In-flight bulks are finished (their documents are good, and
 * re-indexing them later overwrites by _id) but their batches are dropped,
 * and every assigned partition goes back to its committed offset. */
void lp_consume_rewind(consumer *c)
{
    lp_error e;
    c->txn.rewinding = 1;
    submit_open(c);
    int64_t deadline = lp_monotonic_ms() + (int64_t)c->o->drain_timeout_s * 1000;
    while (lp_es_pending(c->es) && lp_monotonic_ms() < deadline && lp_consume_stop_signals < 2)
        if (lp_es_poll(c->es, 100, &e))
            lp_consume_fatal(c, e.code, e.msg);
    c->txn.rewinding = 0;
    if (lp_es_pending(c->es)) {
        lp_consume_fatal(c, LP_EXIT_PARTIAL, "bulks still in flight after an aborted transaction: stopping; "
                                             "the messages since the last commit will be consumed again");
        return;
    }
    for (size_t i = 0; i < c->nbatches; i++)
        if (c->batches[i].in_use)
            release(&c->batches[i]);
    recount(c);
    c->open = take_free_batch(c);
    c->last_activity_ms = lp_monotonic_ms();
    if (!c->assigned)
        return;
    reset_ends(c, c->assigned); /* the re-read messages come before the ends again */
    seek_to_committed(c);
    if (c->paused) {
        rd_kafka_resume_partitions(c->rk, c->assigned);
        c->paused = 0;
    }
}

/* rd_kafka_assign failed: with the assignment not applied, consumption
 * would stall (a failed assign) or go on reading revoked partitions (a
 * failed unassign), so the run stops; what it had not committed is read
 * again by the partitions' next owner. */
static int assign_failed(consumer *c, rd_kafka_resp_err_t err, const char *what)
{
    if (!err)
        return 0;
    char msg[300];
    snprintf(msg, sizeof msg, "%s failed: %s", what, rd_kafka_err2str(err));
    lp_consume_fatal(c, LP_EXIT_KAFKA, msg);
    return 1;
}

void lp_consume_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                             void *opaque)
{
    consumer *c = opaque;
    c->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (c->o->verbose)
            lp_consume_log("assigned %d partition(s)", parts->cnt);
        if (assign_failed(c, rd_kafka_assign(rk, parts), "taking the assigned partitions"))
            return;
        if (c->assigned)
            rd_kafka_topic_partition_list_destroy(c->assigned);
        c->assigned = rd_kafka_topic_partition_list_copy(parts);
        reset_ends(c, parts);
        c->last_activity_ms = lp_monotonic_ms();
        c->paused = 0;
        return;
    }
    if (c->o->verbose)
        lp_consume_log("revoking %d partition(s): finishing in-flight bulks first", parts->cnt);
    drain(c, lp_monotonic_ms() + (int64_t)c->o->drain_timeout_s * 1000);
    lp_txn_commit(c, COMMIT_REVOKE, rd_kafka_assignment_lost(rk));
    let_go(c, parts);
    /* librdkafka keeps a partition's pause across a revocation, so one that
     * comes back in the next assignment would deliver nothing, ever (and
     * --until-idle would wait for its end forever). Resume before letting
     * go rather than after the next assign: a pause or resume right after
     * assign() can outdate its fetch start (confluentinc/librdkafka#2190). */
    if (c->paused) {
        rd_kafka_resume_partitions(rk, parts);
        c->paused = 0;
    }
    assign_failed(c, rd_kafka_assign(rk, NULL), "releasing the revoked partitions");
    if (c->assigned)
        rd_kafka_topic_partition_list_destroy(c->assigned);
    c->assigned = NULL;
    reset_ends(c, NULL);
}

/* ---- the loop ---------------------------------------------------------------- */

static void handle_kafka_error(consumer *c, rd_kafka_message_t *m)
{
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        mark_end(c, m);
        break;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED: {
        char msg[512];
        snprintf(msg, sizeof msg, "Kafka refused the subscription: %s", rd_kafka_message_errstr(m));
        lp_consume_fatal(c, LP_EXIT_KAFKA, msg);
        break;
    }
    default:
        if (c->o->verbose)
            lp_consume_log("Kafka: %s", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
}

/* The run has taken as many messages as it may: --max-messages, or, when
 * reading again after an aborted final commit, as many as it had taken. */
static int taken_enough(const consumer *c)
{
    uint64_t limit = c->redo_goal ? c->redo_goal : c->o->max_messages;
    return limit && c->taken >= limit;
}

static int should_stop(consumer *c, int64_t now)
{
    const lp_consume_opts *o = c->o;
    if (lp_consume_stop_signals || c->fatal[0] || taken_enough(c))
        return 1;
    /* --max-seconds counts from the start of the run; reading again after
     * an aborted final commit has --drain-timeout of its own. */
    if (!c->redo_goal && o->max_seconds > 0 && (double)(now - c->started_ms) >= o->max_seconds * 1000)
        return 1;
    if (c->redo_goal && now >= c->redo_until_ms) {
        char msg[300];
        snprintf(msg, sizeof msg, "the final commit was aborted and only %llu of the %llu messages were read "
                 "again within --drain-timeout: the rest were not committed and will be consumed again",
                 (unsigned long long)c->taken, (unsigned long long)c->redo_goal);
        lp_consume_fatal(c, LP_EXIT_PARTIAL, msg);
        return 1;
    }
    /* Idle means caught up: every assigned partition read to its end, not
     * held back, nothing in flight. */
    return o->until_idle > 0 && caught_up(c) && !c->paused && lp_es_pending(c->es) == 0 &&
           (!c->open || c->open->nmsgs == 0) &&
           (double)(now - c->last_activity_ms) >= o->until_idle * 1000;
}

/* Returns a polled message to librdkafka: the next poll delivers it again. */
static void put_back(consumer *c, rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(at, rd_kafka_topic_name(m->rkt), m->partition)->offset = m->offset;
    rd_kafka_error_t *err = rd_kafka_seek_partitions(c->rk, at, 5000);
    if (err)
        rd_kafka_error_destroy(err);
    rd_kafka_topic_partition_list_destroy(at);
    rd_kafka_message_destroy(m);
}

/* Every batch is in flight or waits for a commit in progress (Kafka
 * unreachable): take no message, keep Elasticsearch, the commit and the
 * group going until one is free. A short wait with bulks in flight neither
 * polls nor pauses, as hold_back_if_full: a pause, and the seek that puts a
 * polled message back, purge librdkafka's prefetch, and refetching it waits
 * up to a second at the queue bound (librdkafka 2.0.2). That purge once a
 * commit period was most of the loop's stall when Elasticsearch answered
 * fast (docs/performance.md). Past FULL_PAUSE_MS, or with nothing in flight,
 * the partitions are paused and polled (rebalances, max.poll.interval.ms);
 * a message fetched before the pause is put back by seeking to it. */
static void wait_for_a_batch(consumer *c, int64_t now)
{
    lp_error e;
    /* Batches that completed while the transaction could take none (a commit
     * in progress, a fenced producer replaced since) are released here once
     * it can: with every batch done, no bulk completion is left to do it. A
     * revocation that renewed the producer left a consumer waiting so, for
     * ever (ASan CI, the frozen-broker test). */
    lp_consume_complete_in_order(c);
    if ((c->open = take_free_batch(c)))
        return;
    int busy = lp_es_pending(c->es) > 0;
    if (!c->waiting_since)
        c->waiting_since = now;
    if (c->assigned && !c->paused && (!busy || now - c->waiting_since >= FULL_PAUSE_MS)) {
        rd_kafka_pause_partitions(c->rk, c->assigned);
        c->paused = 1;
    }
    if (busy && lp_es_poll(c->es, 20, &e))
        lp_consume_fatal(c, e.code, e.msg);
    if (now - c->txn.last_commit_ms >= 1000)
        lp_txn_commit(c, COMMIT_PERIODIC, 0);
    if (c->paused || !c->assigned) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, lp_es_pending(c->es) > 0 ? 0 : 20);
        if (m && m->err)
            handle_kafka_error(c, m);
        else if (m)
            put_back(c, m);
    }
    lp_producer_poll(c->txn.dlq, 0);
}

/* For a message the loop was not ready for: a rebalance served inside the
 * poll that returned it (the revocation drained, submitting the open batch,
 * and the assignment may no longer include its partition), or no batch free
 * when the last one was submitted. A message of a partition no longer ours
 * is left to its owner; one of ours waits for a batch. Returns 1 to take it. */
static int can_take(consumer *c, rd_kafka_message_t *m)
{
    int ours = assigned_index(c, m) >= 0;
    if (ours && !c->open)
        c->open = take_free_batch(c);
    if (ours && c->open)
        return 1;
    if (ours)
        put_back(c, m);
    else
        rd_kafka_message_destroy(m);
    return 0;
}

/* How long the open batch may wait for more messages. With a bulk in
 * flight, --flush-ms: the batch fills meanwhile, and a free slot would not
 * send it sooner anyway. With none in flight, Elasticsearch is idle and the
 * whole wait would only add to each message's produce-to-searchable time,
 * so a quarter of it. Not zero, which is Nagle's rule: at 5,000 msg/s that
 * sent a bulk per round trip and cost 20-30% more CPU per event for no
 * better p99; a quarter cost ~3% and took ~85 ms off the p50
 * (docs/performance.md). */
static int64_t linger_ms(const consumer *c, size_t flying)
{
    return flying ? c->o->flush_ms : c->o->flush_ms / 4;
}

/* Submits the open batch when it is full or has lingered (linger_ms) and a
 * slot is free (in_flight below limit). Returns 1 if it is full and stays
 * open, waiting for a slot. */
static int submit_if_due(consumer *c, size_t limit, int64_t now)
{
    const lp_consume_opts *o = c->o;
    batch *b = c->open;
    /* Rejected messages count too: a batch of large unparseable ones
     * has an empty body, yet holds their bytes until it completes. */
    int full = b->nmsgs >= o->batch_docs || lp_bulk_bytes(b->bulk) + b->rejected_bytes >= o->batch_bytes;
    size_t flying = in_flight(c); /* one scan of the batches per message, not two */
    if (b->nmsgs && (full || now - b->opened_ms >= linger_ms(c, flying)) && flying < limit) {
        submit_open(c);
        c->open = take_free_batch(c);
        full = 0;
    }
    return full;
}

/* The consumer poll's wait with no bulk in flight: up to 100 ms, less when
 * the open batch is due sooner, so that a slow trickle of messages is sent
 * when its linger ends, not up to 100 ms after. */
static int idle_poll_ms(const consumer *c, int64_t now)
{
    if (!c->open || !c->open->nmsgs)
        return 100;
    int64_t left = c->open->opened_ms + linger_ms(c, in_flight(c)) - now;
    return left <= 0 ? 0 : left < 100 ? (int)left : 100;
}

/* A full batch and every slot in flight: take no message until a
 * bulk completes. Not polling is enough for a while, because
 * librdkafka's prefetch is bounded (queued.max.messages.kbytes).
 * Pausing at once would throw that prefetch away (a pause purges
 * the fetch queue; the resume fetches it again): with a bulk
 * completing every few hundred ms that refetch was the consume
 * loop's stall. Only a longer wait pauses, so that the loop polls
 * the consumer again (rebalances, max.poll.interval.ms). */
static void hold_back_if_full(consumer *c, int full, int busy, int64_t now)
{
    if (!full)
        c->full_since = 0;
    else if (!c->full_since)
        c->full_since = now;
    int pause = full && (!busy || now - c->full_since >= FULL_PAUSE_MS);
    if (c->assigned && pause != c->paused) {
        (pause ? rd_kafka_pause_partitions : rd_kafka_resume_partitions)(c->rk, c->assigned);
        c->paused = pause;
        c->last_activity_ms = now;
    }
}

/* A message for the open batch; once the run has taken enough, the
 * partitions are paused (flagged: a rewind and a revocation resume them). */
static void take_message(consumer *c, rd_kafka_message_t *m, int64_t now)
{
    if (c->open->nmsgs == 0)
        c->open->opened_ms = now;
    handle_message(c, m);
    rd_kafka_message_destroy(m);
    c->last_activity_ms = now;
    if (taken_enough(c) && c->assigned) {
        rd_kafka_pause_partitions(c->rk, c->assigned);
        c->paused = 1;
    }
}

static void run_loop(consumer *c)
{
    const lp_consume_opts *o = c->o;
    size_t limit = (size_t)(o->es.max_inflight > 0 ? o->es.max_inflight : LP_ES_MAX_INFLIGHT_DEFAULT) + 1;
    int64_t status_ms = 0;
    int progress = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
    lp_error e;
    unsigned unchecked = 0; /* messages since the last clock read and checks */
    int64_t now = c->last_activity_ms = lp_monotonic_ms();
    for (;;) {
        if (unchecked == 0) {
            now = lp_monotonic_ms();
            lp_consume_publish_metrics(c);
        }
        if (should_stop(c, now))
            break;
        if (!c->open && !(c->open = take_free_batch(c))) {
            wait_for_a_batch(c, now);
            unchecked = 0;
            continue;
        }
        c->waiting_since = 0;
        int full = submit_if_due(c, limit, now);
        int busy = lp_es_pending(c->es) > 0;
        hold_back_if_full(c, full, busy, now);
        /* Full and paused with no bulk in flight means waiting for a commit
         * in progress (Kafka away): the poll is then the loop's only wait. */
        unsigned rebalances = c->rebalances;
        int wait_ms = busy ? 0 : idle_poll_ms(c, now);
        rd_kafka_message_t *m = full && !c->paused ? NULL : rd_kafka_consumer_poll(c->rk, wait_ms);
        if (m && !m->err && (c->rebalances != rebalances || !c->open) && !can_take(c, m))
            m = NULL;
        if (m && m->err)
            handle_kafka_error(c, m);
        else if (m)
            take_message(c, m, now);
        /* A poll that may have waited makes `now` stale: a trickle of a
         * message every few tens of ms would otherwise hold a batch for
         * CHECK_EVERY messages, seconds past its linger. */
        unchecked = m && !wait_ms && ++unchecked < CHECK_EVERY ? unchecked : 0;
        if (unchecked)
            continue;
        if (busy && lp_es_poll(c->es, m ? 0 : 20, &e))
            lp_consume_fatal(c, e.code, e.msg);
        lp_producer_poll(c->txn.dlq, 0);
        if (now - c->txn.last_commit_ms >= 1000)
            lp_txn_commit(c, COMMIT_PERIODIC, 0);
        if (progress)
            lp_consume_show_status(c, c->started_ms, &status_ms);
    }
    if (progress)
        fputc('\n', stderr);
}

/* ---- the run ----------------------------------------------------------------- */

/* The run's batches and bookkeeping, before start-up. */
static void init_consumer(consumer *c)
{
    const lp_consume_opts *o = c->o;
    c->started_ms = lp_monotonic_ms();
    lp_index_cache_init(&c->index, o->index_pattern);
    c->offsets = lp_offsets_new();
    c->stored = lp_offsets_new();
    c->txn.pending = rd_kafka_topic_partition_list_new(8);
    c->nbatches = (size_t)(o->es.max_inflight > 0 ? o->es.max_inflight : LP_ES_MAX_INFLIGHT_DEFAULT) + 2;
    c->batches = lp_xcalloc(c->nbatches, sizeof *c->batches);
    for (size_t i = 0; i < c->nbatches; i++) {
        c->batches[i].bulk = lp_bulk_new();
        lp_bulk_set_create(c->batches[i].bulk, o->data_stream != NULL);
    }
}

/* Runs the loop, then stops: in-flight bulks finished, the final commit.
 * A final commit that had to be aborted (the group lost this member while
 * the broker was away, say) reads again from the last commit as many
 * messages as the run had taken and stops again, a few times at most and
 * within --drain-timeout, rather than leave work for the next run. */
static void consume_then_stop(consumer *c)
{
    const lp_consume_opts *o = c->o;
    run_loop(c);
    for (int round = 0;; round++) {
        if (o->verbose)
            lp_consume_log("stopping: finishing in-flight bulks, then the final commit");
        drain(c, lp_monotonic_ms() + (int64_t)o->drain_timeout_s * 1000);
        lp_txn_commit(c, COMMIT_FINAL, 0);
        if (!c->txn.redo || c->fatal[0] || lp_consume_stop_signals || round == 3)
            break;
        c->txn.redo = 0;
        if (!c->redo_goal) {
            c->redo_goal = c->taken;
            c->redo_until_ms = lp_monotonic_ms() + (int64_t)o->drain_timeout_s * 1000;
        }
        lp_consume_log("the final commit was aborted: reading again from the last commit");
        lp_consume_rewind(c);
        run_loop(c);
    }
    if (c->txn.redo)
        lp_consume_fatal(c, LP_EXIT_PARTIAL, "the final commit's transaction was aborted: the messages since "
                                             "the last commit were not committed and will be consumed again");
}

/* Notes what is left, as the group now stands (the next run's backlog),
 * for the summary, then leaves the group. */
static void leave_group(consumer *c)
{
    lp_consume_publish_metrics(c);
    int all_committed = !c->fatal[0] && !c->txn.redo && !c->res->dlq_failed && !lp_consume_outstanding(c) &&
                        !(c->open && c->open->nmsgs);
    if (c->assigned && c->fatal_code != LP_EXIT_KAFKA)
        lp_consume_lag_json(c->rk, c->assigned, all_committed, 5000, &c->lag_json);
    else if (!c->assigned) /* a member holding no partition (more members than partitions) */
        lp_buf_puts_lit(&c->lag_json, "\"lag\":{},\"backlog\":0");
    rd_kafka_consumer_close(c->rk);
}

static void free_consumer(consumer *c)
{
    for (size_t i = 0; i < c->nbatches; i++) {
        release(&c->batches[i]);
        lp_bulk_free(c->batches[i].bulk);
        free(c->batches[i].msgs);
        free(c->batches[i].item_msg);
        lp_buf_free(&c->batches[i].raw);
        free(c->batches[i].rejects);
        lp_buf_free(&c->batches[i].reasons);
    }
    free(c->batches);
    if (c->assigned)
        rd_kafka_topic_partition_list_destroy(c->assigned);
    free(c->at_end);
    lp_es_free(c->es);
    lp_producer_free(c->txn.dlq);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    lp_parser_free(c->parser);
    lp_offsets_free(c->offsets);
    lp_offsets_free(c->stored);
    rd_kafka_topic_partition_list_destroy(c->txn.pending);
    lp_index_cache_free(&c->index);
    lp_buf_free(&c->id);
    lp_buf_free(&c->tmp);
    lp_buf_free(&c->lag_json);
    for (size_t i = 0; i < c->ntopic_names; i++)
        free(c->topic_names[i]);
    free(c->topic_names);
}

int lp_consume_run(const lp_consume_opts *o, lp_consume_result *res, lp_buf *summary_json)
{
    consumer c = {.o = o, .res = res};
    lp_error e = {0, ""};
    memset(res, 0, sizeof *res);
    init_consumer(&c);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lp_consume_stop_signals = 0;

    if (lp_consume_start(&c, &e) == 0) {
        consume_then_stop(&c);
        leave_group(&c);
    } else {
        lp_consume_fatal(&c, e.code, e.msg);
    }
    if (c.txn.dlq)
        lp_producer_flush(c.txn.dlq, 10000);
    lp_es_stats st = {0};
    if (c.es)
        lp_es_get_stats(c.es, &st);
    res->retries = st.request_retries + st.item_retries;
    res->duration_s = (double)(lp_monotonic_ms() - c.started_ms) / 1000.0;
    lp_consume_finish(&c);
    lp_consume_summary(&c, summary_json);
    free_consumer(&c);
    return res->exit_code;
}
