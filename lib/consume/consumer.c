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
 * transaction's offset commit, about once a second (commit_txn). So the
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
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consume/consume.h"
#include "consume/lag.h"
#include "consume/offsets.h"
#include "consume/prerequisites.h"
#include "consume/watchdog.h"
#include "core/json.h"
#include "metrics/metrics.h"

/* A message of a batch that goes to the dead-letter topic. Dead letters are
 * written only when their batch completes in sequence order, into the same
 * Kafka transaction as the offsets that cover them (see commit_txn). */
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
    lp_producer *dlq;
    lp_parser *parser;
    lp_offsets *offsets;
    lp_offsets *stored; /* positions committed this run, for the summary */
    rd_kafka_topic_partition_list_t *pending; /* positions not yet committed */
    int txn_open;   /* the dead-letter producer's transaction */
    int txn_broken; /* it can no longer commit: abort at the next commit point */
    /* commit_transaction timed out (Kafka unreachable): the commit is still in
     * progress, and librdkafka allows nothing on the transaction but retrying
     * it, so completed batches wait (their dead letters and offsets would
     * belong to the next transaction) and an abort first retries the commit. */
    int committing;
    uint64_t txn_dead_letters; /* written in the open transaction: counted when it commits */
    /* Messages this run still stands behind: covered by committed
     * transactions, by the open one, or in a batch. --max-messages counts
     * these, so messages read again after an aborted transaction, or left to
     * a partition's new owner, are not counted twice (recount). */
    uint64_t taken, committed_msgs, txn_msgs;
    uint64_t consumed_bytes; /* keys and values taken: --metrics-listen's bytes counter */
    int rewinding;             /* completed batches are dropped, not committed (rewind) */
    int redo;                  /* the final commit was aborted: read again from the last commit */
    /* Reading again after an aborted final commit: up to the number of
     * messages the run had taken (redo_goal), within --drain-timeout of the
     * first abort (redo_until_ms); 0 when not reading again. */
    uint64_t redo_goal;
    int64_t redo_until_ms, started_ms;
    /* The dead-letter producer hit a fatal error (fenced: the coordinator
     * aborted its transaction while the broker was away). librdkafka allows
     * nothing more on it, so a new one takes over (renew_dlq); renewals
     * counts those since the last successful commit. */
    int dlq_fenced, renewals;
    /* A dead-letter write was refused without the producer being fatal (the
     * transaction is in an abortable state, e.g. its messages timed out while
     * the broker was away): abort and read again at the next commit point.
     * doomed_in_a_row stops a refusal that repeats (without a commit). */
    int txn_doomed, doomed_in_a_row;
    char txn_id[256];             /* the dead-letter producer's transactional.id */
    int64_t commit_failing_since; /* first periodic commit that could not complete, 0 if none */
    int64_t last_commit_ms;
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
    int64_t last_activity_ms, assigned_at_ms;
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

/* While messages flow, the loop reads the clock and checks Elasticsearch's
 * sockets and the dead-letter producer once per this many messages, not per
 * message: each check is a poll(2) or a clock read, and together they were
 * a third of consume's CPU. At 50 k msg/s that is every ~1 ms; with no
 * message the loop checks (and sleeps in poll) at once. */
#define CHECK_EVERY 64
/* How long the loop waits for a free slot before it pauses the partitions. */
#define FULL_PAUSE_MS 1000
/* How long periodic commits may fail before the dead-letter producer is
 * replaced: past transaction.timeout.ms (45 s), when the coordinator has
 * aborted the transaction anyway. */
#define TXN_STUCK_MS 60000

static volatile sig_atomic_t stop_signals;
static void on_signal(int sig) { (void)sig; stop_signals++; }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(const consumer *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const consumer *c, const char *fmt, ...)
{
    (void)c;
    va_list ap;
    fprintf(stderr, "logpipe consume: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void set_fatal(consumer *c, int code, const char *msg)
{
    if (!c->fatal[0]) {
        size_t n = strlen(msg) < sizeof c->fatal - 1 ? strlen(msg) : sizeof c->fatal - 1;
        memcpy(c->fatal, msg, n);
        c->fatal[n] = '\0';
        c->fatal_code = code;
    }
}

/* ---- offsets ----------------------------------------------------------------- */

/* A partition's position advanced: it joins the next transaction's offsets. */
static void store_offset(void *ctx, const char *topic, int32_t partition, int64_t next)
{
    consumer *c = ctx;
    rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(c->pending, topic, partition);
    if (!p)
        p = rd_kafka_topic_partition_list_add(c->pending, topic, partition);
    p->offset = next;
}

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

/* ---- dead-letter topic -------------------------------------------------------- */

/* A failed delivery makes the transaction's commit fail, which aborts it
 * and rewinds (commit_txn): nothing to count here. */
static void on_dlq_delivery(void *ctx, rd_kafka_resp_err_t err, void *opaque)
{
    consumer *c = ctx;
    (void)opaque;
    if (err && c->o->verbose)
        logf_(c, "dead-letter delivery failed: %s", rd_kafka_err2str(err));
}

static const char *dlq_topic_for(consumer *c, const char *topic, lp_buf *out)
{
    if (c->o->dlq_topic)
        return c->o->dlq_topic;
    lp_buf_reset(out);
    lp_buf_printf(out, "%s.dlq", topic);
    return lp_buf_cstr(out);
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

static void begin_txn(consumer *c)
{
    if (c->txn_open)
        return;
    rd_kafka_error_t *err = rd_kafka_begin_transaction(lp_producer_handle(c->dlq));
    if (err) {
        char msg[400];
        snprintf(msg, sizeof msg, "dead-letter transaction could not begin: %s", rd_kafka_error_string(err));
        if (rd_kafka_error_is_fatal(err)) {
            c->dlq_fenced = 1;
            logf_(c, "%s", msg);
        } else {
            c->txn_broken = 1;
            set_fatal(c, LP_EXIT_KAFKA, msg);
        }
        rd_kafka_error_destroy(err);
        return;
    }
    c->txn_open = 1;
}

/* Writes a completed batch's dead letters into the open transaction. */
static int dead_letter_batch(consumer *c, batch *b)
{
    if (b->nrejects == 0)
        return 0;
    begin_txn(c);
    if (!c->txn_open)
        return -1;
    lp_buf name = LP_BUF_INIT;
    for (size_t i = 0; i < b->nrejects; i++) {
        const reject *r = &b->rejects[i];
        const held *m = &b->msgs[r->msg];
        const char *topic = m->topic;
        char num[32];
        rd_kafka_headers_t *h = rd_kafka_headers_new(5);
        rd_kafka_header_add(h, "logpipe.reason", -1, b->reasons.data + r->reason_at, -1);
        rd_kafka_header_add(h, "logpipe.stage", -1, r->stage, -1);
        rd_kafka_header_add(h, "logpipe.topic", -1, topic, -1);
        snprintf(num, sizeof num, "%d", (int)m->partition);
        rd_kafka_header_add(h, "logpipe.partition", -1, num, -1);
        snprintf(num, sizeof num, "%lld", (long long)m->offset);
        rd_kafka_header_add(h, "logpipe.offset", -1, num, -1);
        lp_error err;
        lp_buf_reset(&name);
        const char *raw = b->raw.data + m->at;
        if (lp_producer_send(c->dlq, dlq_topic_for(c, topic, &name), RD_KAFKA_PARTITION_UA,
                             m->has_key ? raw : NULL, m->key_len, raw + m->key_len, m->len, h, NULL, &err)) {
            rd_kafka_headers_destroy(h);
            lp_buf_free(&name);
            if (rd_kafka_fatal_error(lp_producer_handle(c->dlq), NULL, 0)) {
                /* fenced: the transaction is lost anyway, and a new producer
                 * re-reads this batch (commit_txn) */
                c->dlq_fenced = 1;
                logf_(c, "the dead-letter producer was fenced: %s", err.msg);
                return -1;
            }
            if (++c->doomed_in_a_row <= 3) {
                c->txn_doomed = 1;
                logf_(c, "dead-letter write failed (%s): aborting the transaction, its messages are read again",
                      err.msg);
                return -1;
            }
            c->res->dlq_failed++;
            c->txn_broken = 1; /* part of this batch's dead letters are in the transaction */
            char msg[sizeof err.msg + 64];
            snprintf(msg, sizeof msg, "dead-letter write failed: %s", err.msg);
            set_fatal(c, LP_EXIT_PARTIAL, msg);
            return -1;
        }
    }
    lp_buf_free(&name);
    c->txn_dead_letters += b->nrejects;
    return 0;
}

/* Completes finished batches in sequence order: each one's dead letters go
 * into the open transaction, then its offsets become committable. Keeping
 * sequence order means every dead letter in a transaction is covered by the
 * offsets that transaction commits, so a crash can neither lose one (its
 * offsets commit with it) nor write one twice (an aborted transaction's
 * dead letters are invisible to read_committed readers). */
static void complete_in_order(consumer *c)
{
    for (;;) {
        batch *head = NULL;
        for (size_t i = 0; i < c->nbatches; i++)
            if (c->batches[i].in_use && (!head || c->batches[i].seq < head->seq))
                head = &c->batches[i];
        if (!head || !head->bulk_done || c->txn_broken || c->rewinding || c->committing || c->dlq_fenced ||
            c->txn_doomed)
            return;
        if (dead_letter_batch(c, head))
            return;
        c->txn_msgs += head->nmsgs - head->nrevoked;
        lp_offsets_batch_done(c->offsets, head->seq);
        lp_offsets_take_advanced(c->offsets, store_offset, c);
        release(head);
    }
}

/* ---- batches and bulk results ------------------------------------------------- */

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
    complete_in_order(c);
}

static batch *take_free_batch(consumer *c)
{
    for (size_t i = 0; i < c->nbatches; i++)
        if (!c->batches[i].in_use) {
            batch *b = &c->batches[i];
            b->in_use = 1;
            b->seq = c->next_seq++;
            b->opened_ms = now_ms();
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

/* ---- draining, rebalances ------------------------------------------------------ */

static size_t outstanding(const consumer *c)
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
    while (lp_es_pending(c->es) && now_ms() < deadline_ms && stop_signals < 2 && !c->fatal[0]) {
        if (lp_es_poll(c->es, 100, &e))
            set_fatal(c, e.code, e.msg);
        lp_producer_poll(c->dlq, 0);
    }
}

static void txn_failed(consumer *c, const char *what, rd_kafka_error_t *err)
{
    char msg[600];
    rd_kafka_t *p = lp_producer_handle(c->dlq);
    c->txn_broken = 1;
    if (rd_kafka_error_txn_requires_abort(err)) {
        lp_watchdog_arm("abort_transaction", 30000 + LP_WATCHDOG_GRACE_MS);
        rd_kafka_error_t *abort_err = rd_kafka_abort_transaction(p, 30000);
        lp_watchdog_disarm();
        if (abort_err)
            rd_kafka_error_destroy(abort_err);
        c->txn_open = 0;
        snprintf(msg, sizeof msg, "%s failed (%s): the transaction was aborted; its messages were not "
                 "committed and will be consumed again", what, rd_kafka_error_string(err));
        set_fatal(c, LP_EXIT_PARTIAL, msg);
    } else if (rd_kafka_error_is_fatal(err)) {
        c->txn_broken = 0; /* not this transaction's fault: the producer is replaced */
        c->dlq_fenced = 1;
        logf_(c, "%s failed: %s: a new dead-letter producer takes over", what, rd_kafka_error_string(err));
    } else {
        snprintf(msg, sizeof msg, "%s failed: %s", what, rd_kafka_error_string(err));
        set_fatal(c, LP_EXIT_PARTIAL, msg);
    }
    rd_kafka_error_destroy(err);
}

/* One try at committing the open transaction with the pending offsets:
 * 0 done, 1 retriable (the broker is away: try again later, with the
 * transaction still open), 2 the transaction must be aborted (a broker
 * restart can cause that: "not coordinator"), -1 failed (txn_failed set
 * the exit status). */
static int try_commit_once(consumer *c)
{
    lp_metrics_kafka_commit(1);
    rd_kafka_t *p = lp_producer_handle(c->dlq);
    begin_txn(c);
    if (!c->txn_open)
        return -1;
    rd_kafka_error_t *err = NULL;
    const char *what = "committing offsets";
    if (c->pending->cnt && !c->committing) {
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(c->rk);
        lp_watchdog_arm("send_offsets_to_transaction", 10000 + LP_WATCHDOG_GRACE_MS);
        err = rd_kafka_send_offsets_to_transaction(p, c->pending, md, 10000);
        lp_watchdog_disarm();
        rd_kafka_consumer_group_metadata_destroy(md);
    }
    if (!err) {
        what = "committing offsets and dead letters";
        lp_watchdog_arm("commit_transaction", 10000 + LP_WATCHDOG_GRACE_MS);
        err = rd_kafka_commit_transaction(p, 10000);
        lp_watchdog_disarm();
        c->committing = err && rd_kafka_error_is_retriable(err);
    }
    if (err && rd_kafka_error_is_retriable(err)) {
        if (c->o->verbose)
            logf_(c, "%s will be retried: %s", what, rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return 1;
    }
    if (err && rd_kafka_error_txn_requires_abort(err)) {
        logf_(c, "%s failed (%s): aborting the transaction", what, rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return 2;
    }
    if (err) {
        txn_failed(c, what, err);
        return -1;
    }
    c->txn_open = 0;
    c->renewals = c->doomed_in_a_row = 0;
    c->res->dead_lettered += c->txn_dead_letters;
    c->txn_dead_letters = 0;
    c->committed_msgs += c->txn_msgs;
    c->txn_msgs = 0;
    for (int i = 0; i < c->pending->cnt; i++)
        lp_offsets_set(c->stored, c->pending->elems[i].topic, c->pending->elems[i].partition,
                       c->pending->elems[i].offset);
    rd_kafka_topic_partition_list_destroy(c->pending);
    c->pending = rd_kafka_topic_partition_list_new(8);
    return 0;
}

static int try_commit(consumer *c)
{
    int rc = try_commit_once(c);
    lp_metrics_kafka_commit(rc == 1); /* /healthz: a retried commit waits since its first try */
    return rc;
}

static void discard_txn(consumer *c)
{
    /* An abort conflicts with a commit in progress: finish the commit first
     * (what it commits was acknowledged by Elasticsearch, so it may stand). */
    int64_t deadline = now_ms() + 30000;
    int rc = 1;
    while (c->committing && !c->dlq_fenced && (rc = try_commit(c)) == 1 && now_ms() < deadline)
        usleep(500 * 1000);
    if (c->committing && !c->dlq_fenced) {
        c->committing = 0;
        c->txn_broken = 1;
        set_fatal(c, LP_EXIT_PARTIAL, "Kafka did not complete a transaction commit in 30 s: the messages since "
                  "the last commit were not committed and will be consumed again");
    }
    if (rc == 0 && !c->txn_open)
        return;
    c->txn_dead_letters = c->txn_msgs = 0;
    c->committing = 0;
    if (c->txn_open && !c->dlq_fenced) {
        lp_watchdog_arm("abort_transaction", 30000 + LP_WATCHDOG_GRACE_MS);
        rd_kafka_error_t *err = rd_kafka_abort_transaction(lp_producer_handle(c->dlq), 30000);
        lp_watchdog_disarm();
        if (err)
            txn_failed(c, "aborting the dead-letter transaction", err);
        c->txn_open = 0;
    }
    rd_kafka_topic_partition_list_destroy(c->pending);
    c->pending = rd_kafka_topic_partition_list_new(8);
    lp_metrics_kafka_commit(0);
}

/* Messages this run still stands behind, after some were given up (an
 * aborted transaction, a revocation): committed, in the open transaction,
 * or in a batch for a partition still ours. */
static void recount(consumer *c)
{
    c->taken = c->committed_msgs + c->txn_msgs;
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
        rd_kafka_topic_partition_list_del(c->pending, parts->elems[i].topic, parts->elems[i].partition);
    }
    recount(c);
    if (dropped && c->o->verbose)
        logf_(c, "%zu message(s) still in flight were left to the revoked partitions' new owner", dropped);
}

/* ---- caught up: every assigned partition has reported its end ---------------- */

static void track_assignment(consumer *c, const rd_kafka_topic_partition_list_t *parts)
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

/* After an aborted transaction: everything since the last commit is read
 * again. In-flight bulks are finished (their documents are good, and
 * re-indexing them later overwrites by _id) but their batches are dropped,
 * and every assigned partition goes back to its committed offset. */
static void rewind_to_committed(consumer *c)
{
    lp_error e;
    c->rewinding = 1;
    submit_open(c);
    int64_t deadline = now_ms() + (int64_t)c->o->drain_timeout_s * 1000;
    while (lp_es_pending(c->es) && now_ms() < deadline && stop_signals < 2)
        if (lp_es_poll(c->es, 100, &e))
            set_fatal(c, e.code, e.msg);
    c->rewinding = 0;
    if (lp_es_pending(c->es)) {
        set_fatal(c, LP_EXIT_PARTIAL, "bulks still in flight after an aborted transaction: stopping; "
                                      "the messages since the last commit will be consumed again");
        return;
    }
    for (size_t i = 0; i < c->nbatches; i++)
        if (c->batches[i].in_use)
            release(&c->batches[i]);
    recount(c);
    c->open = take_free_batch(c);
    c->last_activity_ms = now_ms();
    if (!c->assigned)
        return;
    track_assignment(c, c->assigned); /* the re-read messages come before the ends again */
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_copy(c->assigned);
    /* The group coordinator may be moving or loading right after a broker
     * came back (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS): those pass. */
    rd_kafka_resp_err_t err;
    int64_t until = now_ms() + 60000;
    while ((err = rd_kafka_committed(c->rk, at, 30000)) && now_ms() < until && stop_signals < 2 &&
           (err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR || err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
            err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
            err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT))
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
        set_fatal(c, LP_EXIT_PARTIAL, msg);
    } else {
        logf_(c, "rewound %d partition(s) to their committed offsets", at->cnt);
    }
    if (serr)
        rd_kafka_error_destroy(serr);
    rd_kafka_topic_partition_list_destroy(at);
    if (c->paused) {
        rd_kafka_resume_partitions(c->rk, c->assigned);
        c->paused = 0;
    }
}

typedef enum { COMMIT_PERIODIC, COMMIT_REVOKE, COMMIT_FINAL } commit_point;

static lp_producer *open_dlq(const lp_consume_opts *o, consumer *c, lp_error *e);

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
    if (++c->renewals > 3) {
        set_fatal(c, LP_EXIT_KAFKA, "the dead-letter producer was fenced 3 times without a commit in between: "
                                    "stopping; the messages since the last commit will be consumed again");
        return -1;
    }
    lp_producer_free(c->dlq); /* first: two live instances of one id fence each other */
    c->dlq = open_dlq(c->o, c, &e);
    if (!c->dlq) {
        set_fatal(c, e.code, e.msg);
        return -1;
    }
    c->dlq_fenced = c->txn_open = c->committing = 0;
    logf_(c, "a new dead-letter producer took over: reading again from the last commit");
    return 0;
}

/* What an aborted transaction covered is read again: by this member now
 * (periodic), by this member before it stops (final), or by the partitions'
 * new owner (revocation). */
static void after_abort(consumer *c, commit_point at)
{
    if (c->dlq_fenced && renew_dlq(c))
        return;
    if (at == COMMIT_PERIODIC)
        rewind_to_committed(c);
    else if (at == COMMIT_FINAL)
        c->redo = 1;
}

/* Commits the stored offsets and the dead letters they cover in one Kafka
 * transaction (the consumer's own auto-commit is off): either both become
 * visible or neither does. Periodic commits that meet a missing broker try
 * again a second later. At a revocation the partitions must be settled
 * now: retried for --drain-timeout, then aborted (their new owner re-reads
 * those messages; the _ids make the overlap invisible in Elasticsearch, the
 * abort keeps the dead letters single), as when the assignment was lost.
 * Only the final commit's failure decides the exit status. */
static void commit_txn(consumer *c, commit_point at, int assignment_lost)
{
    c->last_commit_ms = now_ms();
    if (c->dlq_fenced || c->txn_doomed) { /* the transaction is lost either way */
        c->txn_doomed = 0;
        discard_txn(c);
        after_abort(c, at);
        return;
    }
    if (!c->txn_open && c->pending->cnt == 0)
        return;
    if (assignment_lost || c->txn_broken) {
        discard_txn(c);
        if (c->dlq_fenced)
            renew_dlq(c);
        return;
    }
    int64_t deadline = now_ms() + (at == COMMIT_PERIODIC ? 0 : (int64_t)c->o->drain_timeout_s * 1000 + 30000);
    int rc;
    for (;;) {
        while ((rc = try_commit(c)) == 1 && now_ms() < deadline && stop_signals < 2)
            usleep(500 * 1000);
        if (rc != 0)
            break;
        c->commit_failing_since = 0;
        complete_in_order(c); /* batches that waited for a commit in progress */
        /* At a revocation or the stop, what those batches completed is
         * committed now, while the partitions are still this member's. */
        if (at == COMMIT_PERIODIC || c->dlq_fenced || c->txn_doomed || c->txn_broken ||
            (!c->txn_open && c->pending->cnt == 0))
            break;
    }
    if (rc == 1 && at == COMMIT_PERIODIC && !c->commit_failing_since) {
        c->commit_failing_since = now_ms();
    } else if (rc == 1 && at == COMMIT_PERIODIC && now_ms() - c->commit_failing_since > TXN_STUCK_MS) {
        /* Seen after a broker restart: AddOffsetsToTxn timing out on every
         * retry while the broker answers everything else. The coordinator
         * has aborted that transaction by now (transaction.timeout.ms). */
        logf_(c, "the dead-letter transaction could not commit for %d s: replacing its producer",
              TXN_STUCK_MS / 1000);
        c->dlq_fenced = 1;
        c->commit_failing_since = 0;
    }
    if (rc == 2 || c->dlq_fenced || (at != COMMIT_PERIODIC && c->txn_doomed)) {
        c->txn_doomed = c->txn_doomed && at == COMMIT_PERIODIC;
        discard_txn(c);
        after_abort(c, at);
    } else if (rc == 1 && at == COMMIT_REVOKE) {
        logf_(c, "offsets could not be committed before the revocation: those messages will be re-read");
        discard_txn(c);
    } else if (rc == 1 && at == COMMIT_FINAL) {
        set_fatal(c, LP_EXIT_PARTIAL, "Kafka did not accept the final offset commit in time: the messages "
                                      "since the last commit were not committed and will be consumed again");
        discard_txn(c);
    }
    if (c->dlq_fenced) /* the abort above met a fenced producer */
        renew_dlq(c);
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
    set_fatal(c, LP_EXIT_KAFKA, msg);
    return 1;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    consumer *c = opaque;
    c->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (c->o->verbose)
            logf_(c, "assigned %d partition(s)", parts->cnt);
        if (assign_failed(c, rd_kafka_assign(rk, parts), "taking the assigned partitions"))
            return;
        if (c->assigned)
            rd_kafka_topic_partition_list_destroy(c->assigned);
        c->assigned = rd_kafka_topic_partition_list_copy(parts);
        track_assignment(c, parts);
        c->assigned_at_ms = c->last_activity_ms = now_ms();
        c->paused = 0;
        return;
    }
    if (c->o->verbose)
        logf_(c, "revoking %d partition(s): finishing in-flight bulks first", parts->cnt);
    drain(c, now_ms() + (int64_t)c->o->drain_timeout_s * 1000);
    commit_txn(c, COMMIT_REVOKE, rd_kafka_assignment_lost(rk));
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
    track_assignment(c, NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    consumer *c = opaque;
    char fatal[256];
    lp_kafka_note_error(err, reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        set_fatal(c, LP_EXIT_KAFKA, fatal);
    } else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        char msg[600];
        snprintf(msg, sizeof msg, "Kafka authentication failed (check the SASL settings): %s", reason);
        set_fatal(c, LP_EXIT_KAFKA, msg);
    }
}

/* ---- start-up ----------------------------------------------------------------- */

static int check_index_pattern(const char *p, lp_error *e)
{
    if (!*p)
        return lp_fail(e, LP_EXIT_USAGE, "--index is empty");
    for (const char *q = p; *q; q++)
        if (*q == '%' && q[1])
            q++; /* a conversion such as %Y */
        else if ((*q >= 'A' && *q <= 'Z') || strchr("\\/*?\"<>| ,#:", *q))
            return lp_fail(e, LP_EXIT_USAGE,
                           "--index: \"%s\" is not a valid index name (lowercase, none of \\/*?\"<>| ,#:)", p);
    if (p[0] == '_' || p[0] == '-' || p[0] == '+')
        return lp_fail(e, LP_EXIT_USAGE, "--index: \"%s\" must not start with _, - or +", p);
    return 0;
}

static int check_topics(consumer *c, lp_error *e)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(c->rk, 1, NULL, &md, c->o->connect_timeout_s * 1000);
    if (err)
        return lp_fail(e, LP_EXIT_KAFKA, "Kafka at %s (--brokers) did not answer within %d s: %s",
                       c->o->brokers, c->o->connect_timeout_s, rd_kafka_err2str(err));
    int rc = 0;
    for (size_t t = 0; t < c->o->ntopics && !rc; t++) {
        int found = 0;
        for (int i = 0; i < md->topic_cnt; i++)
            found |= !strcmp(md->topics[i].topic, c->o->topics[t]) && !md->topics[i].err;
        if (!found && lp_kafka_topic_error(c->rk, c->o->topics[t], c->o->connect_timeout_s * 1000) ==
                          RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
            rc = lp_fail(e, LP_EXIT_USAGE, "topic %s (--topic): Kafka does not let this principal read it: grant "
                         "it READ on topic %s (docs/deploy.md)", c->o->topics[t], c->o->topics[t]);
        else if (!found)
            rc = lp_fail(e, LP_EXIT_KAFKA, "topic %s (--topic) does not exist on %s", c->o->topics[t],
                         c->o->brokers);
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Settings of logpipe's own that -X may not change: each one would void
 * exactly-once (docs/guarantees.md) without a word, so the run refuses to
 * start rather than run with a weaker guarantee. */
static const lp_kafka_fixed guarantee_props[] = {
    {"enable.auto.commit", "false",
     "logpipe commits offsets itself, only for messages Elasticsearch acknowledged, in the dead-letter "
     "transaction; librdkafka's auto-commit would commit offsets of messages still in flight"},
    {"enable.auto.offset.store", "false",
     "it would store the offset of every message handed to logpipe, acknowledged or not, for a commit to pick up"},
    {"isolation.level", "read_committed",
     "a member must start from stable offsets (a crashed member's transaction decided, so no dead letter is "
     "written twice), and aborted transactional messages must not be indexed"},
    {"auto.offset.reset", "earliest",
     "a new group, or an offset gone with retention, would skip every message already in the topic"},
    {"offset.store.method", "broker",
     "offsets must be kept by the group in Kafka, where the dead-letter transactions commit them"},
    {"transactional.id", NULL,
     "the dead-letter producer's id is unique per process: two members with one id fence each other"},
};

/* The consumer is written for the eager rebalance protocol: a revocation
 * takes the whole assignment, which it drains, commits and releases with
 * rd_kafka_assign(). Under cooperative-sticky, librdkafka refuses that call
 * (only incremental_assign/unassign are allowed) and consumption stalls;
 * handling it would mean per-partition bookkeeping of the assignment and
 * its ends on top of librdkafka 2.0.2's young cooperative code, for a
 * benefit (fewer stops at a rebalance) that a minute-scale batch job does
 * not need. So it is refused before anything is read. */
static int check_assignment_strategy(rd_kafka_conf_t *conf, lp_error *e)
{
    char value[256];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, "partition.assignment.strategy", value, &size) != RD_KAFKA_CONF_OK ||
        !strstr(value, "cooperative"))
        return 0;
    return lp_fail(e, LP_EXIT_USAGE,
                   "-X partition.assignment.strategy=%s: the cooperative rebalance protocol is not supported "
                   "(logpipe drains and commits the whole assignment at a revocation); use range or roundrobin",
                   value);
}

static rd_kafka_t *open_kafka(consumer *c, lp_error *e)
{
    const lp_consume_opts *o = c->o;
    lp_kafka_props props = {0};
    if (lp_kafka_refuse_changes(&o->kafka_props, guarantee_props, sizeof guarantee_props / sizeof *guarantee_props,
                                e))
        return NULL;
    lp_kafka_props_set(&props, "bootstrap.servers", o->brokers);
    lp_kafka_props_set(&props, "group.id", o->group);
    /* Offsets are committed by us, only for acknowledged data, inside the
     * dead-letter producer's transactions (commit_txn). */
    lp_kafka_props_set(&props, "enable.auto.commit", "false");
    lp_kafka_props_set(&props, "enable.auto.offset.store", "false");
    /* A new group starts at the beginning: the seed's "latest" loses data. */
    lp_kafka_props_set(&props, "auto.offset.reset", "earliest");
    /* Bounds librdkafka's prefetch so memory does not grow with a backlog
     * (its 64 MiB default peaked at 180 MB). But librdkafka 2.0.2 backs a
     * partition's fetching off for up to a second once the queue is at the
     * bound (confluentinc/librdkafka#2879; fetch.queue.backoff.ms, which
     * tunes it, came in 2.1): the bound must hold about a second of
     * consumption or the loop starves. Measured on 400,000 messages (docs/
     * performance.md): 1, 2 and 4 MiB all took 12.3 s, 6 and 8 MiB 6.5 s;
     * with the copied messages and 2,500-document batches 8 MiB peaks at
     * 59 MB. */
    lp_kafka_props_set(&props, "queued.max.messages.kbytes", "8192");
    lp_kafka_props_set(&props, "fetch.max.bytes", "1048576");
    for (size_t i = 0; i < o->kafka_props.n; i++)
        lp_kafka_props_add(&props, o->kafka_props.kv[i], NULL);
    /* --until-idle knows a partition is read to its end from these events:
     * after -X so that it cannot be turned off. */
    lp_kafka_props_set(&props, "enable.partition.eof", "true");
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, e);
    lp_kafka_props_free(&props);
    if (!conf)
        return NULL;
    if (check_assignment_strategy(conf, e)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    lp_metrics_watch_kafka(conf);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        lp_fail(e, LP_EXIT_USAGE, "cannot create Kafka consumer: %s", err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static lp_producer *open_dlq(const lp_consume_opts *o, consumer *c, lp_error *e)
{
    lp_kafka_props props = {0};
    lp_kafka_props_set(&props, "bootstrap.servers", o->brokers);
    /* A dead letter is as large as the message it keeps; librdkafka's 1 MB
     * default would refuse the very messages most likely to be poison. */
    lp_kafka_props_set(&props, "message.max.bytes", "67108864");
    /* librdkafka's queue takes 1 GiB by default: with the broker slow, dead
     * letters of large messages would pile up there. Bounded at one largest
     * dead letter (message.max.bytes, plus room for headers); a full queue
     * makes lp_producer_send wait for deliveries, which holds the consume
     * loop back: the back-pressure that keeps memory bounded. */
    lp_kafka_props_set(&props, "queue.buffering.max.kbytes", "66560");
    /* -X is shared with the consumer, so its consumer-only properties land
     * here too and librdkafka warns about each (2.0.2 has no
     * log.configuration.warnings): keep this producer's log to errors. */
    lp_kafka_props_set(&props, "log_level", "3");
    /* Transactional, so dead letters and offsets commit together. The id is
     * unique per process: two members of a group must never fence each other.
     * A killed process's open transaction is aborted by the broker after
     * transaction.timeout.ms, and until then its partitions' offsets are
     * "unstable" and a restarted member waits. But a transaction that outlives
     * the timeout because the broker itself was away (a restart) is aborted
     * by the coordinator too, and the producer is then fenced for good
     * (INVALID_TXN_STATE, fatal): 10 s was shorter than a broker restart under
     * load (seen in CI). 45 s covers a restart and keeps a crashed member's
     * successor waiting less than librdkafka's 60 s default. */
    if (!c->txn_id[0]) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(c->txn_id, sizeof c->txn_id, "logpipe-%s-%s-%ld-%lld", o->group, host, (long)getpid(),
                 (long long)now_ms());
    }
    lp_kafka_props_set(&props, "transactional.id", c->txn_id);
    lp_kafka_props_set(&props, "transaction.timeout.ms", "45000");
    for (size_t i = 0; i < o->kafka_props.n; i++)
        lp_kafka_props_add(&props, o->kafka_props.kv[i], NULL);
    lp_producer *p = lp_producer_new(&props, on_dlq_delivery, c, e);
    lp_kafka_props_free(&props);
    if (!p)
        return NULL;
    if (o->verbose) /* the id, so an operator can find it in the broker's transaction state */
        logf_(c, "dead-letter producer transactional.id %s", c->txn_id);
    lp_watchdog_start("consume");
    lp_watchdog_arm("init_transactions", 30000 + LP_WATCHDOG_GRACE_MS);
    rd_kafka_error_t *err = rd_kafka_init_transactions(lp_producer_handle(p), 30000);
    lp_watchdog_disarm();
    if (err && rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        lp_fail(e, LP_EXIT_USAGE, "Kafka refuses the dead-letter producer's transactional.id %s: grant WRITE on "
                "transactional-id prefix logpipe-%s- (docs/deploy.md)", c->txn_id, o->group);
    else if (err)
        lp_fail(e, LP_EXIT_KAFKA, "the dead-letter producer's transactions could not start: %s",
                rd_kafka_error_string(err));
    if (err) {
        rd_kafka_error_destroy(err);
        lp_producer_free(p);
        return NULL;
    }
    return p;
}

static int start(consumer *c, lp_error *e)
{
    const lp_consume_opts *o = c->o;
    char version[64];
    if (check_index_pattern(o->index_pattern, e) || !(c->parser = lp_parser_new(&o->parse, e)) ||
        !(c->es = lp_es_new(&o->es, e)) || !(c->rk = open_kafka(c, e)))
        return -1;
    if (lp_kafka_check_reachable(c->rk, o->brokers, o->connect_timeout_s * 1000, e) || check_topics(c, e))
        return -1;
    if (lp_es_check(c->es, version, sizeof version, e) || lp_consume_check_prerequisites(c->rk, c->es, o, e))
        return -1;
    if (o->install_template) {
        lp_target t;
        lp_target_init(&t, o->index_pattern, o->data_stream, o->shards, o->replicas);
        int rc = lp_target_ensure_template(c->es, &t, o->verbose, e);
        lp_target_free(&t);
        if (rc)
            return -1;
    }
    if (!(c->dlq = open_dlq(o, c, e)))
        return -1;
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)o->ntopics);
    for (size_t i = 0; i < o->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, o->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err)
        return lp_fail(e, LP_EXIT_KAFKA, "subscribing to --topic failed: %s", rd_kafka_err2str(err));
    if (o->verbose)
        logf_(c, "Elasticsearch %s at %s; consuming as group %s", version, o->es.url, o->group);
    return 0;
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
        set_fatal(c, LP_EXIT_KAFKA, msg);
        break;
    }
    default:
        if (c->o->verbose)
            logf_(c, "Kafka: %s", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
}

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

static void show_status(consumer *c, int64_t start_ms, int64_t *last_ms)
{
    int64_t now = now_ms();
    if (now - *last_ms < 500)
        return;
    *last_ms = now;
    double secs = (double)(now - start_ms) / 1000.0;
    fprintf(stderr, "\rconsumed %llu  indexed %llu  rejected %llu  dead-lettered %llu  %.0f msg/s  lag %lld   ",
            (unsigned long long)c->res->consumed, (unsigned long long)c->res->indexed,
            (unsigned long long)c->res->rejected, (unsigned long long)c->res->dead_lettered,
            secs > 0 ? (double)c->res->consumed / secs : 0.0, (long long)total_lag(c));
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
    if (stop_signals || c->fatal[0] || taken_enough(c))
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
        set_fatal(c, LP_EXIT_PARTIAL, msg);
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
 * group going until one is free. Paused partitions deliver no messages;
 * one fetched before the pause is put back by seeking to it. */
static void wait_for_a_batch(consumer *c, int64_t now)
{
    lp_error e;
    if (c->assigned && !c->paused) {
        rd_kafka_pause_partitions(c->rk, c->assigned);
        c->paused = 1;
    }
    if (lp_es_pending(c->es) > 0 && lp_es_poll(c->es, 20, &e))
        set_fatal(c, e.code, e.msg);
    if (now - c->last_commit_ms >= 1000)
        commit_txn(c, COMMIT_PERIODIC, 0);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, lp_es_pending(c->es) > 0 ? 0 : 20);
    if (m && m->err)
        handle_kafka_error(c, m);
    else if (m)
        put_back(c, m);
    lp_producer_poll(c->dlq, 0);
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

/* --metrics-listen's view of the run, from the counts the summary keeps:
 * stored at each of the loop's checks (every 64 messages or each idle
 * turn) and at the stop, rather than a second, atomic count per message. */
static void publish_metrics(const consumer *c)
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

static void run_loop(consumer *c)
{
    const lp_consume_opts *o = c->o;
    size_t limit = (size_t)(o->es.max_inflight > 0 ? o->es.max_inflight : 2) + 1;
    int64_t status_ms = 0;
    int progress = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
    lp_error e;
    unsigned unchecked = 0; /* messages since the last clock read and checks */
    int64_t now = c->last_activity_ms = now_ms();
    for (;;) {
        if (unchecked == 0) {
            now = now_ms();
            publish_metrics(c);
        }
        if (should_stop(c, now))
            break;
        if (!c->open && !(c->open = take_free_batch(c))) {
            wait_for_a_batch(c, now);
            unchecked = 0;
            continue;
        }
        batch *b = c->open;
        /* Rejected messages count too: a batch of large unparseable ones
         * has an empty body, yet holds their bytes until it completes. */
        int full = b->nmsgs >= o->batch_docs || lp_bulk_bytes(b->bulk) + b->rejected_bytes >= o->batch_bytes;
        if (b->nmsgs && (full || now - b->opened_ms >= o->flush_ms) && in_flight(c) < limit) {
            submit_open(c);
            c->open = take_free_batch(c);
            full = 0;
        }
        /* A full batch and every slot in flight: take no message until a
         * bulk completes. Not polling is enough for a while, because
         * librdkafka's prefetch is bounded (queued.max.messages.kbytes).
         * Pausing at once would throw that prefetch away (a pause purges
         * the fetch queue; the resume fetches it again): with a bulk
         * completing every few hundred ms that refetch was the consume
         * loop's stall. Only a longer wait pauses, so that the loop polls
         * the consumer again (rebalances, max.poll.interval.ms). */
        int busy = lp_es_pending(c->es) > 0;
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
        /* Full and paused with no bulk in flight means waiting for a commit
         * in progress (Kafka away): the poll is then the loop's only wait. */
        unsigned rebalances = c->rebalances;
        rd_kafka_message_t *m = full && !c->paused ? NULL : rd_kafka_consumer_poll(c->rk, busy ? 0 : 100);
        if (m && !m->err && (c->rebalances != rebalances || !c->open) && !can_take(c, m))
            m = NULL;
        if (m && m->err) {
            handle_kafka_error(c, m);
        } else if (m) {
            if (c->open->nmsgs == 0)
                c->open->opened_ms = now;
            handle_message(c, m);
            rd_kafka_message_destroy(m);
            c->last_activity_ms = now;
            if (taken_enough(c) && c->assigned) { /* flagged: a rewind and a revocation resume it */
                rd_kafka_pause_partitions(c->rk, c->assigned);
                c->paused = 1;
            }
        }
        unchecked = m && ++unchecked < CHECK_EVERY ? unchecked : 0;
        if (unchecked)
            continue;
        if (busy && lp_es_poll(c->es, m ? 0 : 20, &e))
            set_fatal(c, e.code, e.msg);
        lp_producer_poll(c->dlq, 0);
        if (now - c->last_commit_ms >= 1000)
            commit_txn(c, COMMIT_PERIODIC, 0);
        if (progress)
            show_status(c, c->started_ms, &status_ms);
    }
    if (progress)
        fputc('\n', stderr);
}

/* ---- results ------------------------------------------------------------------- */

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

static void summary(consumer *c, lp_buf *out)
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

static void finish(consumer *c)
{
    lp_consume_result *r = c->res;
    size_t left = c->es ? outstanding(c) + (c->open && c->open->nmsgs) : 0;
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

int lp_consume_run(const lp_consume_opts *o, lp_consume_result *res, lp_buf *summary_json)
{
    consumer c = {.o = o, .res = res};
    lp_error e = {0, ""};
    memset(res, 0, sizeof *res);
    int64_t t0 = now_ms();
    c.started_ms = t0;
    lp_index_cache_init(&c.index, o->index_pattern);
    c.offsets = lp_offsets_new();
    c.stored = lp_offsets_new();
    c.pending = rd_kafka_topic_partition_list_new(8);
    c.nbatches = (size_t)(o->es.max_inflight > 0 ? o->es.max_inflight : 2) + 2;
    c.batches = lp_xcalloc(c.nbatches, sizeof *c.batches);
    for (size_t i = 0; i < c.nbatches; i++) {
        c.batches[i].bulk = lp_bulk_new();
        lp_bulk_set_create(c.batches[i].bulk, o->data_stream != NULL);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    stop_signals = 0;

    if (start(&c, &e) == 0) {
        run_loop(&c);
        /* A final commit that had to be aborted (the group lost this member
         * while the broker was away, say) reads again from the last commit
         * as many messages as the run had taken and stops again, a few times
         * at most and within --drain-timeout, rather than leave work for the
         * next run. */
        for (int round = 0;; round++) {
            if (o->verbose)
                logf_(&c, "stopping: finishing in-flight bulks, then the final commit");
            drain(&c, now_ms() + (int64_t)o->drain_timeout_s * 1000);
            commit_txn(&c, COMMIT_FINAL, 0);
            if (!c.redo || c.fatal[0] || stop_signals || round == 3)
                break;
            c.redo = 0;
            if (!c.redo_goal) {
                c.redo_goal = c.taken;
                c.redo_until_ms = now_ms() + (int64_t)o->drain_timeout_s * 1000;
            }
            logf_(&c, "the final commit was aborted: reading again from the last commit");
            rewind_to_committed(&c);
            run_loop(&c);
        }
        if (c.redo)
            set_fatal(&c, LP_EXIT_PARTIAL, "the final commit's transaction was aborted: the messages since "
                                           "the last commit were not committed and will be consumed again");
        publish_metrics(&c);
        /* What is left, as the group now stands: the next run's backlog. */
        int all_committed = !c.fatal[0] && !c.redo && !res->dlq_failed && !outstanding(&c) &&
                            !(c.open && c.open->nmsgs);
        if (c.assigned && c.fatal_code != LP_EXIT_KAFKA)
            lp_consume_lag_json(c.rk, c.assigned, all_committed, 5000, &c.lag_json);
        else if (!c.assigned) /* a member holding no partition (more members than partitions) */
            lp_buf_puts_lit(&c.lag_json, "\"lag\":{},\"backlog\":0");
        rd_kafka_consumer_close(c.rk);
    } else {
        set_fatal(&c, e.code, e.msg);
    }
    if (c.dlq)
        lp_producer_flush(c.dlq, 10000);
    lp_es_stats st = {0};
    if (c.es)
        lp_es_get_stats(c.es, &st);
    res->retries = st.request_retries + st.item_retries;
    res->duration_s = (double)(now_ms() - t0) / 1000.0;
    finish(&c);
    summary(&c, summary_json);

    for (size_t i = 0; i < c.nbatches; i++) {
        release(&c.batches[i]);
        lp_bulk_free(c.batches[i].bulk);
        free(c.batches[i].msgs);
        free(c.batches[i].item_msg);
        lp_buf_free(&c.batches[i].raw);
        free(c.batches[i].rejects);
        lp_buf_free(&c.batches[i].reasons);
    }
    free(c.batches);
    if (c.assigned)
        rd_kafka_topic_partition_list_destroy(c.assigned);
    free(c.at_end);
    lp_es_free(c.es);
    lp_producer_free(c.dlq);
    if (c.rk)
        rd_kafka_destroy(c.rk);
    lp_parser_free(c.parser);
    lp_offsets_free(c.offsets);
    lp_offsets_free(c.stored);
    rd_kafka_topic_partition_list_destroy(c.pending);
    lp_index_cache_free(&c.index);
    lp_buf_free(&c.id);
    lp_buf_free(&c.tmp);
    lp_buf_free(&c.lag_json);
    for (size_t i = 0; i < c.ntopic_names; i++)
        free(c.topic_names[i]);
    free(c.topic_names);
    return res->exit_code;
}
