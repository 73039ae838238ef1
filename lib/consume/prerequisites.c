/*
 * prerequisites.c: what `logpipe consume` needs from Kafka and Elasticsearch,
 * checked once at start-up, before the first message is read.
 *
 * Without this, a missing grant shows only when the run first needs it: a
 * dead-letter topic that does not exist (or may not be written) at the first
 * unparseable line, a denied index privilege at the first bulk. By then
 * documents are indexed and the run has to unwind. Here every missing
 * prerequisite stops the run with exit 2 (a configuration error: retrying
 * cannot fix a grant) and a message naming the ACL or privilege to grant, as
 * docs/deploy.md lists them:
 *
 *   - the group: READ on group <group> (OffsetFetch, the group's commits);
 *   - each dead-letter topic: it exists and may be seen, or it is created
 *     here (CREATE on the topic or the cluster), so that a broker without
 *     auto.create.topics.enable (MSK, Confluent Cloud) does not fail at the
 *     first dead letter;
 *   - Elasticsearch: create_index and index on the indices (create_doc on
 *     a data stream, with auto_configure for its creation by the first
 *     write); no cluster privilege.
 *
 * The source topics (READ) are check_kafka_and_topics' and the transactional.id
 * (WRITE on the prefix logpipe-<group>-) the dead-letter producer's, in
 * startup.c; both name their ACL too.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "consume/consume.h"
#include "consume/prerequisites.h"

static int is_authorization_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
}

/* One OffsetFetch for the group through the Admin API (the consumer's own
 * committed() retries a refused coordinator look-up until it times out,
 * with no word of why); why[] says what went wrong. */
static rd_kafka_resp_err_t fetch_group_offsets(rd_kafka_t *rk, const lp_consume_opts *o, int timeout_ms,
                                               char *why, size_t whylen)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, o->topics[0], 0);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(o->group, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    snprintf(why, whylen, "no answer within %d ms", timeout_ms);
    if (ev && rd_kafka_event_error(ev)) {
        err = rd_kafka_event_error(ev);
        snprintf(why, whylen, "%s", rd_kafka_event_error_string(ev));
    } else if (ev) {
        size_t n = 0;
        const rd_kafka_group_result_t **groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(groups[0]) : NULL;
        const rd_kafka_topic_partition_list_t *got = n ? rd_kafka_group_result_partitions(groups[0]) : NULL;
        err = ge ? rd_kafka_error_code(ge) : got && got->cnt ? got->elems[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
        snprintf(why, whylen, "%s", ge ? rd_kafka_error_string(ge) : rd_kafka_err2str(err));
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    return err;
}

/* The group's offsets can be read: refused unless the principal may use the
 * group. A coordinator that is still loading or moving (a new cluster's
 * __consumer_offsets, a broker restart; librdkafka 2.0.2's Admin API does
 * not retry those, reporting "Not coordinator" as a parse failure) is
 * asked again until --connect-timeout. */
int lp_consume_check_group(rd_kafka_t *rk, const lp_consume_opts *o, lp_error *e)
{
    struct timespec pause = {0, 200 * 1000000L};
    int waited_ms = 0, timeout_ms = o->connect_timeout_s * 1000;
    char why[512];
    rd_kafka_resp_err_t err;
    while ((err = fetch_group_offsets(rk, o, timeout_ms, why, sizeof why)) &&
           err != RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED && waited_ms < timeout_ms) {
        nanosleep(&pause, NULL);
        waited_ms += 200;
    }
    if (err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
        return lp_fail(e, LP_EXIT_USAGE, "Kafka refuses consumer group %s (--group) to this principal: "
                       "grant it READ on group %s (docs/deploy.md)", o->group, o->group);
    if (err)
        return lp_fail(e, LP_EXIT_KAFKA, "reading consumer group %s's committed offsets failed: %s", o->group, why);
    return 0;
}

/* CreateTopics with the broker's default partitions and replication. */
static rd_kafka_resp_err_t create_topic(rd_kafka_t *rk, const char *topic, int timeout_ms, char *why,
                                        size_t whylen)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, -1, -1, why, whylen);
    if (!nt)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    snprintf(why, whylen, "no answer within %d ms", timeout_ms);
    if (ev && rd_kafka_event_error(ev)) {
        err = rd_kafka_event_error(ev);
        snprintf(why, whylen, "%s", rd_kafka_event_error_string(ev));
    } else if (ev) {
        size_t n = 0;
        const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(ev), &n);
        err = n ? rd_kafka_topic_result_error(res[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *s = n ? rd_kafka_topic_result_error_string(res[0]) : NULL;
        snprintf(why, whylen, "%s", s ? s : rd_kafka_err2str(err));
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return err;
}

static int check_dead_letter_topic(rd_kafka_t *rk, const lp_consume_opts *o, const char *dlq, lp_error *e)
{
    int timeout_ms = o->connect_timeout_s * 1000;
    rd_kafka_resp_err_t err = lp_kafka_topic_error(rk, dlq, timeout_ms);
    if (!err)
        return 0;
    if (is_authorization_error(err))
        return lp_fail(e, LP_EXIT_USAGE, "dead-letter topic %s: Kafka does not let this principal see it: grant "
                       "it WRITE on topic %s (and CREATE, if the topic does not exist yet; docs/deploy.md)",
                       dlq, dlq);
    if (err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return lp_fail(e, LP_EXIT_KAFKA, "dead-letter topic %s: the metadata request failed: %s", dlq,
                       rd_kafka_err2str(err));
    char why[512];
    err = create_topic(rk, dlq, timeout_ms, why, sizeof why);
    if (!err || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        if (o->verbose)
            fprintf(stderr, "logpipe consume: created the dead-letter topic %s\n", dlq);
        return 0;
    }
    if (is_authorization_error(err))
        return lp_fail(e, LP_EXIT_USAGE, "dead-letter topic %s does not exist and this principal may not create "
                       "it: create the topic, or grant CREATE on topic %s (docs/deploy.md)", dlq, dlq);
    return lp_fail(e, LP_EXIT_KAFKA, "dead-letter topic %s does not exist and creating it failed: %s", dlq, why);
}

/* Only the privileges to write: the template is `logpipe setup`'s (or
 * installed here only when the credentials happen to have
 * manage_index_templates, target.c), and GET / needs no monitor (a 403
 * from Elasticsearch is still Elasticsearch, lp_es_check). */
int lp_consume_check_es_privileges(lp_es *es, const lp_consume_opts *o, lp_error *e)
{
    static const char *const cluster[] = {NULL};
    static const char *const dated[] = {"create_index", "index", NULL};
    static const char *const stream[] = {"create_doc", "auto_configure", NULL};
    lp_target t;
    lp_target_init(&t, o->index_pattern, o->data_stream, &o->index);
    int rc = lp_es_check_privileges(es, cluster, t.tpl.pattern, o->data_stream ? stream : dated, e);
    lp_target_free(&t);
    return rc;
}

int lp_consume_check_prerequisites(rd_kafka_t *rk, lp_es *es, const lp_consume_opts *o, lp_error *e)
{
    /* Elasticsearch first: nothing is created (the dead-letter topic) unless
     * everything else is in place. */
    if (lp_consume_check_es_privileges(es, o, e) || lp_es_check_pipeline(es, e) || lp_consume_check_group(rk, o, e))
        return -1;
    lp_buf name = LP_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < o->ntopics && !rc; i++) {
        if (o->dlq_topic) {
            rc = i ? 0 : check_dead_letter_topic(rk, o, o->dlq_topic, e);
        } else {
            lp_buf_reset(&name);
            lp_buf_printf(&name, "%s.dlq", o->topics[i]);
            rc = check_dead_letter_topic(rk, o, lp_buf_cstr(&name), e);
        }
    }
    lp_buf_free(&name);
    return rc;
}
