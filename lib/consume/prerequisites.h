/*
 * prerequisites.h: consume's start-up check of the grants it needs from Kafka
 * and Elasticsearch (see prerequisites.c), kept out of consumer.c's loop.
 */
#ifndef LP_PREREQUISITES_H
#define LP_PREREQUISITES_H

#include <librdkafka/rdkafka.h>

#include "consume/consume.h"

/* Checks the group, each dead-letter topic (creating a missing one) and the
 * Elasticsearch privileges; rk is the consumer, before it subscribes. Fails
 * with LP_EXIT_USAGE naming the ACL or privilege a grant is missing for. */
int lp_consume_check_prerequisites(rd_kafka_t *rk, lp_es *es, const lp_consume_opts *o, lp_error *e);

/* Its parts, for `logpipe check`: READ on the group (o->group, through an
 * OffsetFetch for o->topics[0]); the Elasticsearch privileges for
 * o->index_pattern (and the template, when o->install_template). */
int lp_consume_check_group(rd_kafka_t *rk, const lp_consume_opts *o, lp_error *e);
int lp_consume_check_es_privileges(lp_es *es, const lp_consume_opts *o, lp_error *e);

#endif
