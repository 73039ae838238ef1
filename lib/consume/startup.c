/*
 * startup.c: a consume run's start-up, as Fluent Bit keeps its
 * Elasticsearch output's configuration in es_conf.c: the options checked
 * (--index, the topics, -X settings that would void exactly-once), the
 * Kafka consumer and the transactional dead-letter producer configured and
 * created, Elasticsearch and the prerequisites checked, the topics
 * subscribed. Kept apart from the loop because all of it runs once, before
 * the first message, and fails with a message naming the option to fix.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "consume/consumer_internal.h"
#include "consume/prerequisites.h"
#include "consume/watchdog.h"
#include "metrics/metrics.h"

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

/* Kafka answers (the login and TLS checked) and lists every --topic: one
 * metadata request for all topics serves both. */
static int check_kafka_and_topics(consumer *c, lp_error *e)
{
    const struct rd_kafka_metadata *md;
    if (lp_kafka_metadata_checked(c->rk, c->o->brokers, 1, c->o->connect_timeout_s * 1000, &md, e))
        return -1;
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

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    consumer *c = opaque;
    char fatal[256];
    lp_kafka_note_error(err, reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        lp_consume_fatal(c, LP_EXIT_KAFKA, fatal);
    } else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        char msg[600];
        snprintf(msg, sizeof msg, "Kafka authentication failed (check the SASL settings): %s", reason);
        /* exit 2 as lp_kafka_check_reachable's: wrong credentials are configuration */
        lp_consume_fatal(c, LP_EXIT_USAGE, msg);
    }
}

/* The consumer's librdkafka properties: logpipe's own, then -X's. */
static void consumer_props(const lp_consume_opts *o, lp_kafka_props *props)
{
    lp_kafka_props_set(props, "bootstrap.servers", o->brokers);
    lp_kafka_props_set(props, "group.id", o->group);
    /* Offsets are committed by us, only for acknowledged data, inside the
     * dead-letter producer's transactions (lp_txn_commit). */
    lp_kafka_props_set(props, "enable.auto.commit", "false");
    lp_kafka_props_set(props, "enable.auto.offset.store", "false");
    /* A new group starts at the beginning: librdkafka's default, "latest", would
     * skip every message produced before the group's first run. */
    lp_kafka_props_set(props, "auto.offset.reset", "earliest");
    /* Bounds librdkafka's prefetch so memory does not grow with a backlog
     * (its 64 MiB default peaked at 180 MB). But librdkafka 2.0.2 stops
     * fetching for up to a second once the queue is at the bound
     * (confluentinc/librdkafka#2879; fetch.queue.backoff.ms, which tunes it,
     * came in 2.2.0), so the bound must hold about a second of consumption:
     * 6 MiB feeds the loop at Elasticsearch's pace. The bound is checked
     * before a Fetch, so the queue overshoots it by one Fetch answer,
     * decompressed, and each queued byte costs about three in librdkafka's
     * heap. 128 KiB answers hold about one record batch of a producer's
     * default 1 MB batches (zstd: ~100 KiB on the wire, 1 MB of messages);
     * 256 KiB answers held two or three, 1 MiB ones nine. Measured on
     * 300,000 messages (docs/performance.md): peak RSS 59-67 MB with 8 MiB
     * and 1 MiB answers, 46-54 MB with 6 MiB and 256 KiB, 42-46 MB with
     * these. One consumer then reads up to ~7 MiB/s (~34 k access-log
     * lines/s; ~8.5 with 256 KiB answers); a 4 MiB bound (37-40 MB) fell
     * behind the local Elasticsearch on some runs. A message or record
     * batch bigger than an answer still comes whole (KIP-74). The
     * consumer's message.max.bytes (the largest request it sends) must not
     * exceed fetch.max.bytes. */
    lp_kafka_props_set(props, "queued.max.messages.kbytes", "6144");
    lp_kafka_props_set(props, "fetch.max.bytes", "131072");
    lp_kafka_props_set(props, "message.max.bytes", "131072");
    for (size_t i = 0; i < o->kafka_props.n; i++)
        lp_kafka_props_add(props, o->kafka_props.kv[i], NULL);
    /* --until-idle knows a partition is read to its end from these events:
     * after -X so that it cannot be turned off. */
    lp_kafka_props_set(props, "enable.partition.eof", "true");
}

static rd_kafka_t *open_kafka(consumer *c, lp_error *e)
{
    const lp_consume_opts *o = c->o;
    lp_kafka_props props = {0};
    if (lp_kafka_refuse_changes(&o->kafka_props, guarantee_props, sizeof guarantee_props / sizeof *guarantee_props,
                                e))
        return NULL;
    consumer_props(o, &props);
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, e);
    lp_kafka_props_free(&props);
    if (!conf)
        return NULL;
    if (check_assignment_strategy(conf, e)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, lp_consume_rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    lp_metrics_watch_kafka(conf);
    return lp_kafka_consumer_new(conf, e);
}

/* A failed delivery makes the transaction's commit fail, which aborts it
 * and rewinds (lp_txn_commit): nothing to count here. */
static void on_dlq_delivery(void *ctx, rd_kafka_resp_err_t err, void *opaque)
{
    consumer *c = ctx;
    (void)opaque;
    if (err && c->o->verbose)
        lp_consume_log("dead-letter delivery failed: %s", rd_kafka_err2str(err));
}

/* The dead-letter producer's librdkafka properties: logpipe's own, then
 * -X's. Its transactional.id is made once per run (c->txn.id) and kept by
 * the producers that replace a fenced one (renew_dlq). */
static void dlq_props(consumer *c, lp_kafka_props *props)
{
    const lp_consume_opts *o = c->o;
    lp_kafka_props_set(props, "bootstrap.servers", o->brokers);
    /* A dead letter is as large as the message it keeps; librdkafka's 1 MB
     * default would refuse the very messages most likely to be poison. */
    lp_kafka_props_set(props, "message.max.bytes", "67108864");
    /* librdkafka's queue takes 1 GiB by default: with the broker slow, dead
     * letters of large messages would pile up there. Bounded at one largest
     * dead letter (message.max.bytes, plus room for headers); a full queue
     * makes lp_producer_send wait for deliveries, which holds the consume
     * loop back: the back-pressure that keeps memory bounded. */
    lp_kafka_props_set(props, "queue.buffering.max.kbytes", "66560");
    /* -X is shared with the consumer, so its consumer-only properties land
     * here too and librdkafka warns about each (2.0.2 has no
     * log.configuration.warnings): keep this producer's log to errors. */
    lp_kafka_props_set(props, "log_level", "3");
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
    if (!c->txn.id[0]) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(c->txn.id, sizeof c->txn.id, "logpipe-%s-%s-%ld-%lld", o->group, host, (long)getpid(),
                 (long long)lp_monotonic_ms());
    }
    lp_kafka_props_set(props, "transactional.id", c->txn.id);
    lp_kafka_props_set(props, "transaction.timeout.ms", "45000");
    for (size_t i = 0; i < o->kafka_props.n; i++)
        lp_kafka_props_add(props, o->kafka_props.kv[i], NULL);
}

lp_producer *lp_consume_open_dlq(consumer *c, lp_error *e)
{
    const lp_consume_opts *o = c->o;
    lp_kafka_props props = {0};
    dlq_props(c, &props);
    lp_producer *p = lp_producer_new(&props, on_dlq_delivery, c, e);
    lp_kafka_props_free(&props);
    if (!p)
        return NULL;
    if (o->verbose) /* the id, so an operator can find it in the broker's transaction state */
        lp_consume_log("dead-letter producer transactional.id %s", c->txn.id);
    lp_watchdog_start("consume");
    /* A renewal can come while Kafka is still restarting (an abort timed
     * out): a timed-out init may be called again, and is, for 90 s in all. */
    int rc = 1;
    for (int try = 1; rc == 1 && try <= 3; try++) {
        if (try > 1)
            lp_consume_log("starting the dead-letter producer's transactions will be retried: %s", e->msg);
        lp_watchdog_arm("init_transactions", 30000 + LP_WATCHDOG_GRACE_MS);
        rc = lp_producer_init_transactions(p, "dead-letter", c->txn.id, o->group, 30000, e);
        lp_watchdog_disarm();
    }
    if (rc) {
        lp_producer_free(p);
        return NULL;
    }
    return p;
}

int lp_consume_start(consumer *c, lp_error *e)
{
    const lp_consume_opts *o = c->o;
    char version[64];
    if (check_index_pattern(o->index_pattern, e) || !(c->parser = lp_parser_new(&o->parse, e)) ||
        !(c->es = lp_es_new(&o->es, e)) || !(c->rk = open_kafka(c, e)))
        return -1;
    if (check_kafka_and_topics(c, e))
        return -1;
    if (lp_es_check(c->es, version, sizeof version, e) || lp_consume_check_prerequisites(c->rk, c->es, o, e))
        return -1;
    if (o->install_template) {
        lp_target t;
        lp_target_init(&t, o->index_pattern, o->data_stream, &o->index);
        int rc = lp_target_ensure_template(c->es, &t, o->verbose, e);
        lp_target_free(&t);
        if (rc)
            return -1;
    }
    if (!(c->txn.dlq = lp_consume_open_dlq(c, e)))
        return -1;
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)o->ntopics);
    for (size_t i = 0; i < o->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, o->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err)
        return lp_fail(e, LP_EXIT_KAFKA, "subscribing to --topic failed: %s", rd_kafka_err2str(err));
    if (o->verbose)
        lp_consume_log("Elasticsearch %s at %s; consuming as group %s", version, o->es.url, o->group);
    return 0;
}
