/*
 * cmd_consume.c: `logpipe consume`, options to an lp_consume_opts and the
 * run's JSON summary on stdout. The pipeline itself is lib/consume/.
 *
 * Credentials are never taken from argv (other users can read a process's
 * arguments): the Elasticsearch password and API key come from references
 * (--es-api-key env://..., aws-sm://...), the environment (cleared once
 * read) or a --secrets object; see cli_conn_resolve.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/log.h"
#include "consume/consume.h"
#include "tls/tls.h"

/* consume's defaults: a run starts from these and --help prints them, so
 * each is written here alone (the client's own, for a caller that leaves
 * a setting 0, are lib/elasticsearch/es.h's). */
static const lp_consume_opts consume_defaults = {
    .index_pattern = LP_INDEX_PATTERN_DEFAULT,
    .es = {.gzip = 1, .max_inflight = LP_ES_MAX_INFLIGHT_DEFAULT, .retry_limit_ms = LP_ES_RETRY_LIMIT_MS_DEFAULT},
    .batch_docs = 2500, .batch_bytes = 5u << 20, .flush_ms = 500, .drain_timeout_s = 30,
    .connect_timeout_s = CLI_CONNECT_TIMEOUT_DEFAULT_S, .install_template = 1, .progress = -1, .index = LP_INDEX_SETTINGS_DEFAULT};

static void usage(FILE *out)
{
    const lp_consume_opts *d = &consume_defaults;
    fprintf(out,
            "usage: logpipe consume --brokers HOST:PORT --topic TOPIC --group GROUP --es URL [options]\n\n"
            "A Kafka consumer group member that parses access-log messages into Elastic Common\n"
            "Schema documents and bulk-indexes them into Elasticsearch. Each document's _id is\n"
            "<topic>-<partition>-<offset>, and offsets are committed only for acknowledged\n"
            "documents: a crash or a replay never loses or duplicates anything. Unparseable\n"
            "messages and documents Elasticsearch refuses go to the dead-letter topic with\n"
            "their original bytes and a logpipe.reason header.\n\n"
            "required:\n"
            "  -b, --brokers LIST         bootstrap brokers, host:port[,host:port]\n"
            "  -t, --topic TOPIC          topic to consume (repeatable, or comma-separated)\n"
            "  -g, --group GROUP          consumer group id\n"
            "  -e, --es URL               Elasticsearch, e.g. http://127.0.0.1:9200\n"
            "options:\n"
            "  -i, --index PATTERN        index name; %%Y %%m %%d %%H from @timestamp (default %s)\n"
            "      --data-stream NAME     write into data stream NAME (e.g. logs-access-default) with\n"
            "                             create actions, instead of --index\n"
            "      --dlq-topic TOPIC      dead-letter topic (default <topic>.dlq)\n"
            "  -f, --format FMT           auto (default), combined_zoneless (alias seed), combined,\n"
            "                             common, vhost_combined\n"
            "  -z, --timezone TZ          zone of combined_zoneless's times (default UTC)\n"
            "      --batch-docs N         documents per bulk request (default %zu)\n"
            "      --batch-bytes N        bytes per bulk request before gzip (default %zu)\n"
            "      --flush-ms MS          send a partial bulk after MS, or after MS/4 when no\n"
            "                             bulk is in flight (default %d)\n"
            "      --inflight N           concurrent bulk requests (default %d)\n"
            "      --no-gzip              send bulk bodies uncompressed\n"
            "      --no-template          never check nor install the index template (logpipe setup's)\n"
            "%s"
            "      --dataset NAME         event.dataset of every document (default access; the <dataset>\n"
            "                             of logs-<dataset>-<namespace>)\n"
            "      --keep-original        keep each raw line in event.original (off by default)\n"
            "      --pipeline NAME        send documents through this Elasticsearch ingest pipeline\n"
            "      --max-messages N       stop after N messages\n"
            "      --max-seconds S        stop after S seconds\n"
            "      --until-idle S         stop when caught up and nothing arrived for S seconds\n"
            "      --drain-timeout S      at stop or rebalance, wait up to S s for in-flight bulks (default %d)\n"
            "      --retry-limit S        stop (exit 4) when a bulk Elasticsearch keeps failing or answering\n"
            "                             429/5xx makes no progress for S s (default %ld)\n"
            "      --connect-timeout S    fail if Kafka does not answer within S s (default %d)\n"
            "%s"
            "      --secrets REF          a JSON object of connection settings (keys\n"
            "                             kafka_bootstrap_server, kafka_username, kafka_secret,\n"
            "                             elasticsearch_URL, elasticsearch_API_Key; docs/secrets.md)\n"
            "  REF is env://NAME, file:///path (mode 0600) or aws-sm://SECRET[?region=R][#json_key];\n"
            "  --brokers, --es, --es-user and the -X credential properties may be references too.\n"
            "  -X key=value               any librdkafka property (repeatable; wins over the above).\n"
            "                             Secrets (sasl.password, ssl.key.password, ...) only by\n"
            "                             reference or LOGPIPE_KAFKA_PASSWORD, never literally\n"
            "%s"
            "      --progress | --no-progress  force the live status line on stderr on or off (default:\n"
            "                             on when stderr is a terminal); logs are not affected.\n"
            "                             --quiet is the same as --no-progress\n"
            "  -v, --verbose              log assignments, revocations and Kafka errors, and which\n"
            "                             CA certificates TLS trusts (the system's store)\n"
            "  -h, --help                 this help\n\n"
            "Without --max-messages/--max-seconds/--until-idle it runs until SIGINT or SIGTERM; on\n"
            "any stop it finishes in-flight bulks, commits and leaves the group, then prints one\n"
            "JSON summary line on stdout.\n",
            d->index_pattern, d->batch_docs, d->batch_bytes, d->flush_ms, d->es.max_inflight, cli_index_settings_help,
            d->drain_timeout_s,
            d->es.retry_limit_ms / 1000, d->connect_timeout_s, cli_es_help, cli_metrics_help);
    lp_exit_codes_print(out, "Exit status:", "02345");
}

static void add_topics(const char **topics, size_t *n, char *arg)
{
    for (char *save = NULL, *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t && *n < 64)
            topics[(*n)++] = t;
}

/*
 * glibc's allocator, left alone, gives each of librdkafka's threads an arena
 * of its own, and raises its mmap threshold each time a large block is freed,
 * so a batch body or a decompressed message set (1-2 MB) ends up carved from
 * an arena that never shrinks. One arena and a fixed 256 KiB threshold
 * (large blocks mapped and returned whole) cut consume's peak RSS from
 * 73-75 MB to 57-59 MB on 300,000 messages, at the same CPU-seconds
 * (docs/performance.md). Set before any thread starts; other C libraries
 * have no such knobs and need none.
 */
static void bound_the_heap(void)
{
#if defined(M_ARENA_MAX) && defined(M_MMAP_THRESHOLD)
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

int cmd_consume(int argc, char **argv)
{
    bound_the_heap();
    enum { O_DLQ = 256, O_BDOCS, O_BBYTES, O_FLUSH, O_INFLIGHT, O_NOGZIP, O_NOTPL, O_MAXMSG,
           O_MAXSEC, O_IDLE, O_DRAIN, O_PROGRESS, O_QUIET, O_RETRY, O_METRICS, O_UNHEALTHY,
           O_DATASET, O_KEEP_ORIGINAL, O_PIPELINE, O_STREAM };
    static const struct option longopts[] = {
        CLI_KAFKA_LONGOPTS, CLI_ES_LONGOPTS, CLI_SECRETS_LONGOPT,
        {"topic", required_argument, NULL, 't'}, {"group", required_argument, NULL, 'g'},
        {"index", required_argument, NULL, 'i'}, {"dlq-topic", required_argument, NULL, O_DLQ},
        {"format", required_argument, NULL, 'f'}, {"timezone", required_argument, NULL, 'z'},
        {"batch-docs", required_argument, NULL, O_BDOCS}, {"batch-bytes", required_argument, NULL, O_BBYTES},
        {"flush-ms", required_argument, NULL, O_FLUSH}, {"inflight", required_argument, NULL, O_INFLIGHT},
        {"no-gzip", no_argument, NULL, O_NOGZIP}, {"no-template", no_argument, NULL, O_NOTPL},
        {"max-messages", required_argument, NULL, O_MAXMSG}, {"max-seconds", required_argument, NULL, O_MAXSEC},
        {"until-idle", required_argument, NULL, O_IDLE}, {"drain-timeout", required_argument, NULL, O_DRAIN},
        {"retry-limit", required_argument, NULL, O_RETRY},
        {"metrics-listen", required_argument, NULL, O_METRICS},
        {"unhealthy-after", required_argument, NULL, O_UNHEALTHY},
        {"data-stream", required_argument, NULL, O_STREAM}, CLI_INDEX_SETTINGS_LONGOPTS,
        {"progress", no_argument, NULL, O_PROGRESS}, {"no-progress", no_argument, NULL, O_QUIET},
        {"quiet", no_argument, NULL, O_QUIET},
        {"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
        {"dataset", required_argument, NULL, O_DATASET}, {"keep-original", no_argument, NULL, O_KEEP_ORIGINAL},
        {"pipeline", required_argument, NULL, O_PIPELINE}, {NULL, 0, NULL, 0}};
    const char *cmd = "consume";
    const char *topics[64];
    lp_consume_opts o = consume_defaults;
    o.topics = topics;
    cli_conn conn = {.need_es = 1, .props = &o.kafka_props, .es = &o.es, .connect_timeout_s = &o.connect_timeout_s};
    const char *metrics_listen = NULL;
    double unhealthy_after = 0; /* not given: cli_metrics_start's default */
    lp_metrics_server *metrics = NULL;
    uint64_t v;
    int c, fmt, rc = LP_EXIT_USAGE, index_given = 0;
    lp_error perr;
    cli_kafka_password(&o.kafka_props);
    while ((c = cli_getopt(cmd, &conn, argc, argv, "b:t:g:e:i:f:z:X:vh", longopts)) >= 0) {
        int is_setting = cli_index_setting(cmd, c, optarg, &o.index);
        if (is_setting < 0)
            goto out;
        if (is_setting)
            continue;
        switch (c) {
        case 't': add_topics(topics, &o.ntopics, optarg); break;
        case 'g': o.group = optarg; break;
        case 'i': o.index_pattern = optarg; index_given = 1; break;
        case O_DLQ: o.dlq_topic = optarg; break;
        case O_STREAM: o.data_stream = optarg; break;
        case 'z': o.parse.timezone = optarg; break;
        case 'f':
            if ((fmt = lp_format_from_name(optarg)) < 0) {
                cli_usage_error(cmd, "--format: \"%s\" is not one of " LP_FORMAT_NAMES, optarg);
                goto out;
            }
            o.parse.format = (lp_format)fmt;
            break;
        case O_BDOCS: if (cli_parse_u64(cmd, "--batch-docs", optarg, 1, 1000000, &v)) goto out; o.batch_docs = v; break;
        case O_BBYTES: if (cli_parse_u64(cmd, "--batch-bytes", optarg, 1024, 1u << 30, &v)) goto out; o.batch_bytes = v; break;
        case O_FLUSH: if (cli_parse_u64(cmd, "--flush-ms", optarg, 1, 3600000, &v)) goto out; o.flush_ms = (int)v; break;
        case O_INFLIGHT: if (cli_parse_u64(cmd, "--inflight", optarg, 1, 64, &v)) goto out; o.es.max_inflight = (int)v; break;
        case O_NOGZIP: o.es.gzip = 0; break;
        case O_NOTPL: o.install_template = 0; break;
        case O_MAXMSG: if (cli_parse_u64(cmd, "--max-messages", optarg, 1, UINT64_MAX, &o.max_messages)) goto out; break;
        case O_MAXSEC: if (cli_parse_double(cmd, "--max-seconds", optarg, 0.001, 1e9, &o.max_seconds)) goto out; break;
        case O_IDLE: if (cli_parse_double(cmd, "--until-idle", optarg, 0.001, 1e9, &o.until_idle)) goto out; break;
        case O_DRAIN: if (cli_parse_u64(cmd, "--drain-timeout", optarg, 0, 86400, &v)) goto out; o.drain_timeout_s = (int)v; break;
        case O_RETRY: if (cli_parse_u64(cmd, "--retry-limit", optarg, 1, 86400, &v)) goto out; o.es.retry_limit_ms = (long)v * 1000; break;
        case O_METRICS: metrics_listen = optarg; break;
        case O_UNHEALTHY: if (cli_parse_double(cmd, "--unhealthy-after", optarg, 0.1, 86400, &unhealthy_after)) goto out; break;
        case O_PROGRESS: o.progress = 1; break;
        case O_QUIET: o.progress = 0; break;
        case 'v': o.verbose = 1; lp_tls_set_verbose(1); break;
        case O_DATASET: o.parse.dataset = optarg; break;
        case O_KEEP_ORIGINAL: o.parse.keep_original = 1; break;
        case O_PIPELINE: o.es.pipeline = optarg; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: cli_bad_option(cmd, argv); goto out;
        }
    }
    if (c == CLI_OPT_FAILED)
        goto out;
    if (optind < argc) { cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]); goto out; }
    if (!o.ntopics) { cli_usage_error(cmd, "--topic is required"); goto out; }
    if (!o.group || !*o.group) { cli_usage_error(cmd, "--group is required"); goto out; }
    if (cli_target(cmd, &o.index_pattern, o.data_stream, index_given)) goto out;
    if (o.es.pipeline && lp_es_check_pipeline_name(o.es.pipeline, &perr)) { rc = cli_report(cmd, &perr); goto out; }
    if ((rc = cli_metrics_start(cmd, metrics_listen, unhealthy_after, &metrics)) ||
        (rc = cli_conn_resolve(cmd, &conn, &o.kafka_props)))
        goto out;
    o.brokers = conn.r_brokers;
    o.es.url = conn.r_es_url;
    o.es.username = conn.r_es_user;
    o.es.password = conn.r_es_password;
    o.es.api_key = conn.r_es_api_key;
    o.es.ca_pem = conn.r_es_ca_pem;
    lp_consume_result res;
    lp_buf summary = LP_BUF_INIT;
    rc = lp_consume_run(&o, &res, &summary);
    if (rc)
        lp_log(LP_LOG_ERROR, cmd, rc, "%s", res.message[0] ? res.message : "failed");
    printf("%s\n", lp_buf_cstr(&summary));
    fflush(stdout);
    lp_buf_free(&summary);
out:
    lp_metrics_stop(metrics);
    cli_conn_free(&conn);
    lp_kafka_props_free(&o.kafka_props);
    return rc;
}
