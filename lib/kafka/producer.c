/*
 * producer.c: the idempotent librdkafka producer behind `logpipe produce`,
 * the consumer's dead-letter topic and replay; and the start of the latter
 * two's transactions, whose refusal names the grant to add in one place.
 *
 * Safe defaults are set before the caller's properties so -X can still
 * override them: idempotence (no duplicates on broker retries, per-partition
 * order kept), acks=all, and batching (linger.ms) rather than per-message
 * flushes. Messages are copied (RD_KAFKA_MSG_F_COPY) so callers can reuse
 * their buffers straight away.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"

struct lp_producer {
    rd_kafka_t *rk;
    lp_delivery_fn on_delivery;
    void *ctx;
    /* The topic handle of the last send: producev with a topic name looks
     * the topic up (and takes a lock) on every message; a producer almost
     * always writes one topic. */
    rd_kafka_topic_t *rkt;
    char *rkt_name;
};

static rd_kafka_topic_t *topic_handle(lp_producer *p, const char *topic)
{
    if (!p->rkt || strcmp(p->rkt_name, topic)) {
        if (p->rkt)
            rd_kafka_topic_destroy(p->rkt);
        free(p->rkt_name);
        p->rkt = rd_kafka_topic_new(p->rk, topic, NULL);
        p->rkt_name = lp_xstrdup(topic);
    }
    return p->rkt;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    lp_producer *p = opaque;
    if (p->on_delivery)
        p->on_delivery(p->ctx, m->err, m->_private);
}

lp_producer *lp_producer_new(const lp_kafka_props *props, lp_delivery_fn on_delivery, void *ctx,
                             lp_error *e)
{
    lp_kafka_props all = {0};
    lp_kafka_props_set(&all, "enable.idempotence", "true");
    lp_kafka_props_set(&all, "acks", "all");
    lp_kafka_props_set(&all, "linger.ms", "20");
    for (size_t i = 0; i < props->n; i++)
        lp_kafka_props_add(&all, props->kv[i], NULL);
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&all, e);
    lp_kafka_props_free(&all);
    if (!conf)
        return NULL;

    lp_producer *p = lp_xcalloc(1, sizeof *p);
    p->on_delivery = on_delivery;
    p->ctx = ctx;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    lp_metrics_watch_kafka(conf);
    char err[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        free(p);
        lp_fail(e, LP_EXIT_USAGE, "cannot create Kafka producer: %s", err);
        return NULL;
    }
    return p;
}

int lp_producer_send(lp_producer *p, const char *topic, int32_t partition, const void *key,
                     size_t klen, const void *val, size_t vlen, rd_kafka_headers_t *headers,
                     void *opaque, lp_error *e)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_RKT(topic_handle(p, topic)), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (!err)
            return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 100); /* make room by serving delivery reports */
            continue;
        }
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            return lp_fail(e, LP_EXIT_KAFKA,
                           "message of %zu bytes is larger than message.max.bytes (raise it with -X)",
                           vlen);
        return lp_fail(e, LP_EXIT_KAFKA, "cannot produce to topic %s: %s", topic,
                       rd_kafka_err2str(err));
    }
}

/* NULL is a producer that could not be replaced (consume's renew_dlq): the run is stopping. */
void lp_producer_poll(lp_producer *p, int timeout_ms)
{
    if (p)
        rd_kafka_poll(p->rk, timeout_ms);
}

int lp_producer_flush(lp_producer *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

rd_kafka_t *lp_producer_handle(lp_producer *p) { return p->rk; }

void lp_producer_free(lp_producer *p)
{
    if (!p)
        return;
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    free(p->rkt_name);
    rd_kafka_destroy(p->rk);
    free(p);
}

int lp_producer_init_transactions(lp_producer *p, const char *what, const char *id, const char *group,
                                  int timeout_ms, lp_error *e)
{
    rd_kafka_error_t *err = rd_kafka_init_transactions(p->rk, timeout_ms);
    if (!err)
        return 0;
    if (rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        lp_fail(e, LP_EXIT_USAGE, "Kafka refuses the %s producer's transactional.id %s: grant WRITE on "
                "transactional-id prefix logpipe-%s- (docs/deploy.md)", what, id, group);
    else
        lp_fail(e, LP_EXIT_KAFKA, "the %s producer's transactions (transactional.id %s) could not start: %s", what,
                id, rd_kafka_error_string(err));
    int rc = rd_kafka_error_is_retriable(err) ? 1 : -1;
    rd_kafka_error_destroy(err);
    return rc;
}
