/*
 * cmd_replay.c: `logpipe replay`, options to an lp_replay_opts and the run's
 * JSON summary on stdout. The replay itself is lib/replay/.
 *
 * Every option is checked before Kafka is contacted: a typo in a filter
 * must not replay (or mark as examined) the wrong records.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/buf.h"
#include "replay/replay.h"

/* replay's defaults: a run starts from these and --help prints them. */
static const lp_replay_opts replay_defaults = {.partition = -1, .from_offset = -1, .to_offset = -1,
                                               .txn_records = 500, .connect_timeout_s = CLI_CONNECT_TIMEOUT_DEFAULT_S};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: logpipe replay --brokers HOST:PORT --topic TOPIC --group GROUP [filters] [options]\n\n"
            "Writes dead letters (records of TOPIC.dlq that logpipe consume could not parse or that\n"
            "Elasticsearch refused) back to TOPIC, once their cause is fixed: the original key and\n"
            "value, with a logpipe.replayed-from header. Reads the dead-letter topic read_committed\n"
            "to its end; writes and the group's progress commit in one Kafka transaction\n"
            "(transactional.id logpipe-GROUP-replay), so a rerun after a crash continues where the\n"
            "last commit left off and no record is written twice. The progress covers every record\n"
            "examined, matched or not: another pass with other filters takes another --group.\n\n"
            "required:\n"
            "  -b, --brokers LIST         bootstrap brokers, host:port[,host:port]\n"
            "  -t, --topic TOPIC          the source topic: its dead letters are replayed\n"
            "  -g, --group GROUP          consumer group keeping the progress on the dead-letter topic\n"
            "filters (all must match):\n"
            "      --reason TEXT          logpipe.reason starts with TEXT (repeatable: any of them)\n"
            "      --stage STAGE          logpipe.stage: parse or index\n"
            "      --partition N          source partition (logpipe.partition)\n"
            "      --from-offset N        source offset (logpipe.offset) >= N\n"
            "      --to-offset N          source offset <= N\n"
            "options:\n"
            "      --dlq-topic TOPIC      the dead-letter topic (default TOPIC.dlq)\n"
            "      --to TOPIC             write to TOPIC instead of the source topic\n"
            "      --dry-run              count what would be replayed, by reason; write and commit nothing\n"
            "      --txn-records N        records per transaction (default %zu)\n"
            "      --connect-timeout S    fail if Kafka does not answer within S s (default %d)\n"
            "      --secrets REF          Kafka settings from a JSON object (see 'logpipe consume --help')\n"
            "  -X key=value               any librdkafka property (credentials by reference only)\n"
            "  -v, --verbose              log each transaction commit\n"
            "  -h, --help                 this help\n\n"
            "Prints one JSON summary line on stdout: read, matched, replayed, counts by reason.\n"
            "A run stopped by a signal exits 5; a rerun continues from the last commit.\n",
            replay_defaults.txn_records, replay_defaults.connect_timeout_s);
    lp_exit_codes_print(out, "Exit status:", "0235");
}

/* Checks that the options make one coherent replay: 0, or the usage error printed. */
static int check_options(const char *cmd, const lp_replay_opts *o)
{
    if (!o->topic || !*o->topic)
        return cli_usage_error(cmd, "--topic is required");
    if (!o->group || !*o->group)
        return cli_usage_error(cmd, "--group is required");
    if (o->stage && strcmp(o->stage, "parse") && strcmp(o->stage, "index"))
        return cli_usage_error(cmd, "--stage: \"%s\" is not one of parse, index", o->stage);
    if (o->from_offset >= 0 && o->to_offset >= 0 && o->from_offset > o->to_offset)
        return cli_usage_error(cmd, "--from-offset %lld is past --to-offset %lld", (long long)o->from_offset,
                               (long long)o->to_offset);
    for (size_t i = 0; i < o->nreasons; i++)
        if (!*o->reasons[i])
            return cli_usage_error(cmd, "--reason: empty text matches every record; leave --reason out for that");
    if (o->to_topic && !strcmp(o->to_topic, o->dlq_topic))
        return cli_usage_error(cmd, "--to %s is the dead-letter topic being read", o->to_topic);
    return 0;
}

int cmd_replay(int argc, char **argv)
{
    enum { O_DLQ = 256, O_TO, O_REASON, O_STAGE, O_PARTITION, O_FROM, O_UNTIL, O_DRY, O_TXN };
    static const struct option longopts[] = {
        CLI_KAFKA_LONGOPTS, CLI_SECRETS_LONGOPT, {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'}, {"dlq-topic", required_argument, NULL, O_DLQ},
        {"to", required_argument, NULL, O_TO}, {"reason", required_argument, NULL, O_REASON},
        {"stage", required_argument, NULL, O_STAGE}, {"partition", required_argument, NULL, O_PARTITION},
        {"from-offset", required_argument, NULL, O_FROM}, {"to-offset", required_argument, NULL, O_UNTIL},
        {"dry-run", no_argument, NULL, O_DRY}, {"txn-records", required_argument, NULL, O_TXN},
        {"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *cmd = "replay";
    const char *reasons[64];
    lp_replay_opts o = replay_defaults;
    o.reasons = reasons;
    cli_conn conn = {.need_es = 0, .props = &o.kafka_props, .connect_timeout_s = &o.connect_timeout_s};
    lp_buf dlq = LP_BUF_INIT, out = LP_BUF_INIT;
    uint64_t v;
    int c, rc = LP_EXIT_USAGE;
    cli_kafka_password(&o.kafka_props);
    while ((c = cli_getopt(cmd, &conn, argc, argv, "b:t:g:X:vh", longopts)) >= 0) {
        switch (c) {
        case 't': o.topic = optarg; break;
        case 'g': o.group = optarg; break;
        case O_DLQ: o.dlq_topic = optarg; break;
        case O_TO: o.to_topic = optarg; break;
        case O_REASON:
            if (o.nreasons == sizeof reasons / sizeof *reasons) { cli_usage_error(cmd, "--reason: at most 64"); goto out; }
            reasons[o.nreasons++] = optarg;
            break;
        case O_STAGE: o.stage = optarg; break;
        case O_PARTITION: if (cli_parse_u64(cmd, "--partition", optarg, 0, INT32_MAX, &v)) goto out; o.partition = (int32_t)v; break;
        case O_FROM: if (cli_parse_u64(cmd, "--from-offset", optarg, 0, INT64_MAX, &v)) goto out; o.from_offset = (int64_t)v; break;
        case O_UNTIL: if (cli_parse_u64(cmd, "--to-offset", optarg, 0, INT64_MAX, &v)) goto out; o.to_offset = (int64_t)v; break;
        case O_DRY: o.dry_run = 1; break;
        case O_TXN: if (cli_parse_u64(cmd, "--txn-records", optarg, 1, 1000000, &v)) goto out; o.txn_records = v; break;
        case 'v': o.verbose = 1; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: cli_bad_option(cmd, argv); goto out;
        }
    }
    if (c == CLI_OPT_FAILED)
        goto out;
    if (optind < argc) { cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]); goto out; }
    if (o.topic && !o.dlq_topic) {
        lp_buf_printf(&dlq, "%s.dlq", o.topic);
        o.dlq_topic = lp_buf_cstr(&dlq);
    }
    if (check_options(cmd, &o))
        goto out;
    if (!o.to_topic)
        o.to_topic = o.topic;
    if ((rc = cli_conn_resolve(cmd, &conn, &o.kafka_props)))
        goto out;
    o.brokers = conn.r_brokers;
    lp_error e = {0, ""};
    rc = lp_replay_run(&o, &out, &e);
    if (rc)
        cli_report(cmd, &e);
    printf("%s\n", lp_buf_cstr(&out));
    fflush(stdout);
out:
    lp_buf_free(&dlq);
    lp_buf_free(&out);
    cli_conn_free(&conn);
    lp_kafka_props_free(&o.kafka_props);
    return rc;
}
