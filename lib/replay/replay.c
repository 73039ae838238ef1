/*
 * replay.c: the replay loop of replay.h.
 *
 * One consumer, assigned every partition of the dead-letter topic by hand
 * (no group rebalance to wait for: a replay is one process), starting at
 * the group's committed offsets, stopping when every partition reported its
 * end. One transactional producer with transactional.id
 * logpipe-<group>-replay: init_transactions, before the consumer reads its
 * starting offsets, fences a killed predecessor and aborts its open
 * transaction, so the offsets read are those of the last committed one and
 * what that one wrote is all that is visible. Every --txn-records records
 * read (matched or not) the transaction commits the writes with the
 * positions; a transaction that fails is aborted and the run stops (exit
 * 3): nothing it wrote is visible and the next run starts where the last
 * committed one ended.
 *
 * A record's progress is committed whether or not it matched the filters:
 * the group's position says "examined", so a second pass with other
 * filters takes another --group (docs/operations in README).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "replay/replay.h"

typedef struct reason_count {
    char *reason; /* the logpipe.reason header up to its first ": " (the error type) */
    uint64_t n;
} reason_count;

typedef struct replay {
    const lp_replay_opts *o;
    rd_kafka_t *rk;
    lp_producer *p;
    rd_kafka_topic_partition_list_t *positions; /* per dead-letter partition: next offset */
    unsigned char *at_end;                      /* one per element of positions */
    uint64_t read, matched, replayed, other_topic, in_txn, matched_in_txn;
    reason_count *reasons;
    size_t nreasons;
    int txn_open;
} replay;

static volatile sig_atomic_t stop_signals;
static void on_signal(int sig) { (void)sig; stop_signals++; }

/* A header's value as a NUL-terminated string in buf; NULL when absent. */
static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n) || !v)
        return NULL;
    if (n >= len)
        n = len - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

static int64_t number(const char *s)
{
    char *end;
    long long v = s ? strtoll(s, &end, 10) : -1;
    return s && *s && !*end ? (int64_t)v : -1;
}

static int reason_matches(const lp_replay_opts *o, const char *reason)
{
    if (!o->nreasons)
        return 1;
    for (size_t i = 0; i < o->nreasons; i++)
        if (!strncmp(reason, o->reasons[i], strlen(o->reasons[i])))
            return 1;
    return 0;
}

/* Is m a dead letter of o->topic that the filters select? */
static int matches(replay *r, const rd_kafka_message_t *m, const char *reason)
{
    const lp_replay_opts *o = r->o;
    char topic[256], stage[32], num[32];
    if (!header(m, "logpipe.topic", topic, sizeof topic) || strcmp(topic, o->topic)) {
        r->other_topic++;
        return 0;
    }
    if (o->stage && (!header(m, "logpipe.stage", stage, sizeof stage) || strcmp(stage, o->stage)))
        return 0;
    if (!reason_matches(o, reason))
        return 0;
    if (o->partition >= 0 && number(header(m, "logpipe.partition", num, sizeof num)) != o->partition)
        return 0;
    int64_t offset = number(header(m, "logpipe.offset", num, sizeof num));
    if (o->from_offset >= 0 && (offset < 0 || offset < o->from_offset))
        return 0;
    if (o->to_offset >= 0 && (offset < 0 || offset > o->to_offset))
        return 0;
    return 1;
}

static void count_reason(replay *r, const char *reason)
{
    size_t n = strcspn(reason, ":");
    for (size_t i = 0; i < r->nreasons; i++)
        if (strlen(r->reasons[i].reason) == n && !strncmp(r->reasons[i].reason, reason, n)) {
            r->reasons[i].n++;
            return;
        }
    r->reasons = lp_xrealloc(r->reasons, (r->nreasons + 1) * sizeof *r->reasons);
    r->reasons[r->nreasons].reason = lp_xmalloc(n + 1);
    memcpy(r->reasons[r->nreasons].reason, reason, n);
    r->reasons[r->nreasons].reason[n] = '\0';
    r->reasons[r->nreasons++].n = 1;
}

static int txn_error(rd_kafka_error_t *err, const char *what, lp_error *e)
{
    lp_fail(e, LP_EXIT_KAFKA, "%s failed: %s; nothing since the last commit is visible, and the next run "
            "starts there", what, rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    return -1;
}

static int begin(replay *r, lp_error *e)
{
    if (r->txn_open)
        return 0;
    rd_kafka_error_t *err = rd_kafka_begin_transaction(lp_producer_handle(r->p));
    if (err)
        return txn_error(err, "beginning a transaction", e);
    r->txn_open = 1;
    return 0;
}

/* Commits the open transaction: the writes and the positions together. */
static int commit(replay *r, lp_error *e)
{
    if (!r->txn_open)
        return 0;
    rd_kafka_t *p = lp_producer_handle(r->p);
    rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(r->rk);
    rd_kafka_topic_partition_list_t *done = rd_kafka_topic_partition_list_new(r->positions->cnt);
    for (int i = 0; i < r->positions->cnt; i++)
        if (r->positions->elems[i].offset >= 0)
            rd_kafka_topic_partition_list_add(done, r->positions->elems[i].topic, r->positions->elems[i].partition)
                ->offset = r->positions->elems[i].offset;
    rd_kafka_error_t *err = rd_kafka_send_offsets_to_transaction(p, done, md, 30000);
    rd_kafka_topic_partition_list_destroy(done);
    rd_kafka_consumer_group_metadata_destroy(md);
    if (!err)
        err = rd_kafka_commit_transaction(p, 30000);
    r->txn_open = 0;
    if (err) {
        rd_kafka_error_t *abort_err = rd_kafka_abort_transaction(p, 30000);
        if (abort_err)
            rd_kafka_error_destroy(abort_err);
        return txn_error(err, "committing the replay transaction", e);
    }
    r->replayed += r->matched_in_txn;
    r->matched_in_txn = r->in_txn = 0;
    if (r->o->verbose)
        fprintf(stderr, "logpipe replay: committed: %llu replayed, %llu read\n", (unsigned long long)r->replayed,
                (unsigned long long)r->read);
    return 0;
}

static int handle(replay *r, const rd_kafka_message_t *m, lp_error *e)
{
    const lp_replay_opts *o = r->o;
    char reason[600];
    if (!header(m, "logpipe.reason", reason, sizeof reason))
        snprintf(reason, sizeof reason, "(no logpipe.reason header)");
    r->read++;
    if (!o->dry_run && begin(r, e))
        return -1;
    if (matches(r, m, reason)) {
        r->matched++;
        count_reason(r, reason);
        if (!o->dry_run) {
            char from[320];
            rd_kafka_headers_t *h = rd_kafka_headers_new(1);
            snprintf(from, sizeof from, "%s/%d/%lld", rd_kafka_topic_name(m->rkt), (int)m->partition,
                     (long long)m->offset);
            rd_kafka_header_add(h, "logpipe.replayed-from", -1, from, -1);
            if (lp_producer_send(r->p, o->to_topic, RD_KAFKA_PARTITION_UA, m->key, m->key_len, m->payload,
                                 m->len, h, NULL, e)) {
                rd_kafka_headers_destroy(h);
                return -1;
            }
            r->matched_in_txn++;
        }
    }
    for (int i = 0; i < r->positions->cnt; i++)
        if (r->positions->elems[i].partition == m->partition)
            r->positions->elems[i].offset = m->offset + 1;
    if (!o->dry_run && ++r->in_txn >= o->txn_records)
        return commit(r, e);
    return 0;
}

static int all_at_end(const replay *r)
{
    for (int i = 0; i < r->positions->cnt; i++)
        if (!r->at_end[i])
            return 0;
    return 1;
}

static void mark(replay *r, const rd_kafka_message_t *m, int at_end)
{
    for (int i = 0; i < r->positions->cnt; i++)
        if (r->positions->elems[i].partition == m->partition)
            r->at_end[i] = (unsigned char)at_end;
}

static int loop(replay *r, lp_error *e)
{
    while (!all_at_end(r)) {
        if (stop_signals && !r->o->dry_run && commit(r, e))
            return -1;
        if (stop_signals)
            return lp_fail(e, LP_EXIT_PARTIAL, "stopped by a signal before the end of %s: a rerun continues "
                           "where this one committed", r->o->dlq_topic);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 200);
        if (!m)
            continue;
        int rc = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            mark(r, m, 1);
        else if (m->err)
            rc = lp_fail(e, LP_EXIT_KAFKA, "reading %s: %s", r->o->dlq_topic, rd_kafka_message_errstr(m));
        else {
            mark(r, m, 0);
            rc = handle(r, m, e);
        }
        rd_kafka_message_destroy(m);
        if (rc)
            return -1;
    }
    return r->o->dry_run ? 0 : commit(r, e);
}

static rd_kafka_t *open_consumer(const lp_replay_opts *o, lp_error *e)
{
    lp_kafka_props props = {0};
    lp_kafka_props_set(&props, "bootstrap.servers", o->brokers);
    lp_kafka_props_set(&props, "group.id", o->group);
    lp_kafka_props_set(&props, "auto.offset.reset", "earliest");
    lp_kafka_props_set(&props, "log_level", "3");
    for (size_t i = 0; i < o->kafka_props.n; i++)
        lp_kafka_props_add(&props, o->kafka_props.kv[i], NULL);
    /* After -X: consume's aborted transactions must stay invisible, progress
     * is committed only inside the transactions, and the end of each
     * partition is how the run knows it is done. */
    lp_kafka_props_set(&props, "enable.auto.commit", "false");
    lp_kafka_props_set(&props, "isolation.level", "read_committed");
    lp_kafka_props_set(&props, "enable.partition.eof", "true");
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, e);
    lp_kafka_props_free(&props);
    if (!conf)
        return NULL;
    return lp_kafka_consumer_new(conf, e);
}

static lp_producer *open_producer(const lp_replay_opts *o, lp_error *e)
{
    lp_kafka_props props = {0};
    char id[512];
    snprintf(id, sizeof id, "logpipe-%s-replay", o->group);
    lp_kafka_props_set(&props, "bootstrap.servers", o->brokers);
    lp_kafka_props_set(&props, "message.max.bytes", "67108864"); /* as the dead letters were written */
    lp_kafka_props_set(&props, "log_level", "3");
    for (size_t i = 0; i < o->kafka_props.n; i++)
        lp_kafka_props_add(&props, o->kafka_props.kv[i], NULL);
    lp_kafka_props_set(&props, "transactional.id", id);
    lp_producer *p = lp_producer_new(&props, NULL, NULL, e);
    lp_kafka_props_free(&props);
    if (!p)
        return NULL;
    if (lp_producer_init_transactions(p, "replay", id, o->group, 60000, e)) {
        lp_producer_free(p);
        return NULL;
    }
    return p;
}

/* The topic exists and may be described; fails naming the option. */
static int check_topic(rd_kafka_t *rk, const char *topic, const char *option, int timeout_ms, lp_error *e)
{
    rd_kafka_resp_err_t err = lp_kafka_topic_error(rk, topic, timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return lp_fail(e, LP_EXIT_USAGE, "topic %s (%s) does not exist", topic, option);
    if (err)
        return lp_fail(e, LP_EXIT_KAFKA, "topic %s (%s): %s", topic, option, rd_kafka_err2str(err));
    return 0;
}

/* Assigns every partition of the dead-letter topic at the group's offsets. */
static int assign_all(replay *r, lp_error *e)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, r->o->dlq_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(r->rk, 0, rkt, &md, r->o->connect_timeout_s * 1000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        if (md)
            rd_kafka_metadata_destroy(md);
        return lp_fail(e, LP_EXIT_KAFKA, "partitions of %s: %s", r->o->dlq_topic,
                       rd_kafka_err2str(err ? err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    }
    r->positions = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(r->positions, r->o->dlq_topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_STORED;
    rd_kafka_metadata_destroy(md);
    r->at_end = lp_xcalloc((size_t)r->positions->cnt + 1, 1);
    err = rd_kafka_assign(r->rk, r->positions);
    for (int i = 0; i < r->positions->cnt; i++)
        r->positions->elems[i].offset = -1; /* nothing read yet: nothing to commit */
    if (err)
        return lp_fail(e, LP_EXIT_KAFKA, "assigning %s: %s", r->o->dlq_topic, rd_kafka_err2str(err));
    return 0;
}

static void summary(const replay *r, int exit_code, lp_buf *out)
{
    const lp_replay_opts *o = r->o;
    lp_buf_puts_lit(out, "{\"dlq_topic\":");
    lp_json_str(out, o->dlq_topic, strlen(o->dlq_topic));
    lp_buf_puts_lit(out, ",\"to\":");
    lp_json_str(out, o->to_topic, strlen(o->to_topic));
    lp_buf_puts_lit(out, ",\"group\":");
    lp_json_str(out, o->group, strlen(o->group));
    lp_buf_printf(out, ",\"dry_run\":%s,\"read\":%llu,\"matched\":%llu,\"replayed\":%llu,\"other_topic\":%llu,"
                  "\"by_reason\":{",
                  o->dry_run ? "true" : "false", (unsigned long long)r->read, (unsigned long long)r->matched,
                  (unsigned long long)r->replayed, (unsigned long long)r->other_topic);
    for (size_t i = 0; i < r->nreasons; i++) {
        if (i)
            lp_buf_putc(out, ',');
        lp_json_str(out, r->reasons[i].reason, strlen(r->reasons[i].reason));
        lp_buf_printf(out, ":%llu", (unsigned long long)r->reasons[i].n);
    }
    lp_buf_printf(out, "},\"exit_code\":%d}", exit_code);
}

int lp_replay_run(const lp_replay_opts *o, lp_buf *summary_json, lp_error *e)
{
    replay r = {.o = o};
    int timeout_ms = o->connect_timeout_s * 1000;
    int rc = -1;
    stop_signals = 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (!(r.rk = open_consumer(o, e)))
        goto out;
    if (lp_kafka_check_reachable(r.rk, o->brokers, timeout_ms, e) ||
        check_topic(r.rk, o->dlq_topic, "the dead-letter topic", timeout_ms, e) ||
        (!o->dry_run && check_topic(r.rk, o->to_topic, o->to_topic == o->topic ? "--topic" : "--to", timeout_ms, e)))
        goto out;
    /* The producer first: its init_transactions settles a killed run's open
     * transaction, so the offsets the consumer starts from are final. */
    if (!o->dry_run && !(r.p = open_producer(o, e)))
        goto out;
    if (assign_all(&r, e))
        goto out;
    rc = loop(&r, e);
    if (rc && r.txn_open) {
        rd_kafka_error_t *err = rd_kafka_abort_transaction(lp_producer_handle(r.p), 30000);
        if (err)
            rd_kafka_error_destroy(err);
    }
out:
    summary(&r, rc ? e->code : 0, summary_json);
    if (r.rk) {
        rd_kafka_consumer_close(r.rk);
        rd_kafka_destroy(r.rk);
    }
    lp_producer_free(r.p);
    if (r.positions)
        rd_kafka_topic_partition_list_destroy(r.positions);
    free(r.at_end);
    for (size_t i = 0; i < r.nreasons; i++)
        free(r.reasons[i].reason);
    free(r.reasons);
    return rc ? e->code : 0;
}
