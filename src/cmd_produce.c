/*
 * cmd_produce.c: `logpipe produce`, log lines to a Kafka topic.
 *
 * Lines come from the generator (--count) or from a file (--input). The
 * producer is idempotent (no duplicates when librdkafka retries) and batches
 * by linger and batch size; nothing is flushed per message. Every delivery
 * report is waited for, so the summary's "delivered" is what the brokers
 * acknowledged, and a run with any undelivered message exits 5, or 3 when
 * the cluster refused every message (e.g. min.insync.replicas not met).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "generate/generate.h"
#include "generate/pace.h"
#include "kafka/kafka.h"
#include "tls/tls.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

typedef struct counts {
    uint64_t sent, delivered, failed, skipped;
    rd_kafka_resp_err_t last_error;
} counts;

static void on_delivery(void *ctx, rd_kafka_resp_err_t err, void *opaque)
{
    (void)opaque;
    counts *c = ctx;
    lp_count(err ? LP_C_DELIVERY_FAILED : LP_C_DELIVERED, 1);
    if (err) {
        c->failed++;
        c->last_error = err;
    } else {
        c->delivered++;
    }
}

typedef struct produce_opts {
    const char *brokers, *topic, *input, *compression, *summary, *metrics_listen;
    double unhealthy_after;
    uint64_t count, rate, linger_ms, batch_size;
    int connect_timeout_s, key_ip, have_count;
    lp_gen_opts gen;
    lp_kafka_props user_props;
    cli_conn conn;
} produce_opts;

/* produce's defaults: a run starts from these and --help prints them (the
 * generator's seed and start time come from the clock at each run). */
static const produce_opts produce_defaults = {
    .compression = "zstd", .count = 1000, .linger_ms = 20, .batch_size = 1000000,
    .connect_timeout_s = CLI_CONNECT_TIMEOUT_DEFAULT_S, .gen = {.format = LP_FORMAT_COMBINED_ZONELESS}};

static void usage(FILE *out)
{
    const produce_opts *d = &produce_defaults;
    fprintf(out,
            "usage: logpipe produce --brokers HOST:PORT --topic TOPIC [options]\n\n"
            "Publishes log lines to a Kafka topic: generated on the fly (--count) or read\n"
            "from --input. Idempotent, batched, compressed; waits for every delivery report.\n\n"
            "options:\n"
            "  -b, --brokers LIST       bootstrap brokers, host:port[,host:port] (required)\n"
            "  -t, --topic TOPIC        topic to write to (required)\n"
            "  -i, --input FILE|-       read lines from FILE or stdin instead of generating\n"
            "  -n, --count N            generate N lines (default %" PRIu64 " when no --input)\n"
            "  -f, --format FMT         generated format: combined_zoneless, combined, common,\n"
            "                           vhost_combined (default %s; seed is combined_zoneless)\n"
            "  -r, --rate N             messages per second (default 0 = as fast as possible)\n"
            "  -s, --seed S             generator seed; --start TIME first timestamp\n"
            "      --malformed-ratio R  share of broken generated lines, 0..1 (default 0)\n"
            "      --realistic          also generate what a public server logs besides requests\n"
            "                           (timeouts, TLS and other probes: ~1.35%%; docs/schema.md)\n"
            "  -k, --key ip|none        message key: the client IP (per-client order) or none (default)\n"
            "  -z, --compression C      zstd, lz4, gzip, snappy, none (default %s)\n"
            "      --linger-ms MS       batching delay (default %" PRIu64 ")\n"
            "      --batch-size BYTES   maximum batch size (default %" PRIu64 ")\n"
            "      --connect-timeout S  fail if Kafka does not answer within S seconds (default %d)\n"
            "      --summary json       also print the summary as one JSON line on stdout\n"
            "      --secrets REF        a JSON object of connection settings (keys\n"
            "                           kafka_bootstrap_server, kafka_username, kafka_secret;\n"
            "                           docs/secrets.md). REF is env://NAME, file:///path (mode 0600)\n"
            "                           or aws-sm://SECRET[?region=R]; --brokers and the -X credential\n"
            "                           properties may be references too, e.g.\n"
            "                           -X sasl.password=aws-sm://S#kafka_secret\n"
            "  -X key=value             any librdkafka property (repeatable; wins over the above).\n"
            "                           Secrets (sasl.password, ssl.key.password, ssl.key.pem, ...)\n"
            "                           only by reference or LOGPIPE_KAFKA_PASSWORD, never literally\n"
            "%s"
            "  -v, --verbose            say which CA certificates TLS trusts (the system's store)\n"
            "  -h, --help               this help\n\n"
            "Empty input lines are skipped and counted. Exit 3 when Kafka refused every message,\n"
            "5 when some were not delivered.\n",
            d->count, lp_format_name(d->gen.format), d->compression, d->linger_ms, d->batch_size, d->connect_timeout_s, cli_metrics_help);
    lp_exit_codes_print(out, "Exit status:", "01235");
}


/* Next line from the source into line (without newline); 0 at the end. */
typedef struct source {
    FILE *in;
    lp_gen *gen;
    uint64_t remaining; /* generator: lines left, UINT64_MAX = unbounded */
    char *buf;
    size_t cap;
} source;

static int next_line(source *s, lp_buf *line)
{
    lp_buf_reset(line);
    if (s->gen) {
        if (s->remaining == 0)
            return 0;
        if (s->remaining != UINT64_MAX)
            s->remaining--;
        lp_gen_line(s->gen, line);
        return 1;
    }
    ssize_t n = getline(&s->buf, &s->cap, s->in);
    if (n < 0)
        return 0;
    size_t len = (size_t)n;
    if (len && s->buf[len - 1] == '\n')
        len--;
    if (len && s->buf[len - 1] == '\r')
        len--;
    lp_buf_append(line, s->buf, len);
    return 1;
}

/* The client address: the first space-delimited token, or the second when
 * four tokens come before the [time] (vhost_combined's "%v:%p" leads). */
static const char *key_slice(const lp_buf *line, size_t *len)
{
    const char *p = line->data, *end = line->data + line->len, *sp[4];
    for (int i = 0; i < 4; i++) {
        sp[i] = memchr(p, ' ', (size_t)(end - p));
        if (!sp[i])
            break;
        if (i == 3 && sp[i] + 1 < end && sp[i][1] == '[') {
            *len = (size_t)(sp[1] - sp[0] - 1);
            return sp[0] + 1;
        }
        p = sp[i] + 1;
    }
    const char *first = memchr(line->data, ' ', line->len);
    *len = first ? (size_t)(first - line->data) : line->len;
    return line->data;
}

static int parse_args(int argc, char **argv, produce_opts *o)
{
    static const struct option longopts[] = {
        CLI_KAFKA_LONGOPTS, CLI_SECRETS_LONGOPT, {"topic", required_argument, NULL, 't'},
        {"input", required_argument, NULL, 'i'},    {"count", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'f'},   {"rate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},     {"start", required_argument, NULL, 'S'},
        {"malformed-ratio", required_argument, NULL, 'm'}, {"key", required_argument, NULL, 'k'},
        {"realistic", no_argument, NULL, 'R'},
        {"compression", required_argument, NULL, 'z'}, {"linger-ms", required_argument, NULL, 'L'},
        {"batch-size", required_argument, NULL, 'B'}, {"summary", required_argument, NULL, 'J'},
        {"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
        {"metrics-listen", required_argument, NULL, 'M'}, {"unhealthy-after", required_argument, NULL, 'U'},
        {NULL, 0, NULL, 0}};
    int c, fmt;
    const char *cmd = "produce";
    o->conn = (cli_conn){.props = &o->user_props, .connect_timeout_s = &o->connect_timeout_s};
    while ((c = cli_getopt(cmd, &o->conn, argc, argv, "b:t:i:n:f:r:s:k:z:X:vh", longopts)) >= 0) {
        switch (c) {
        case 't': o->topic = optarg; break;
        case 'i': o->input = optarg; break;
        case 'n': if (cli_parse_u64(cmd, "--count", optarg, 0, UINT64_MAX, &o->count)) return -1; o->have_count = 1; break;
        case 'r': if (cli_parse_u64(cmd, "--rate", optarg, 0, 100000000, &o->rate)) return -1; break;
        case 's': if (cli_parse_u64(cmd, "--seed", optarg, 0, UINT64_MAX, &o->gen.seed)) return -1; break;
        case 'S': if (cli_parse_time(cmd, "--start", optarg, &o->gen.start)) return -1; break;
        case 'm': if (cli_parse_double(cmd, "--malformed-ratio", optarg, 0, 1, &o->gen.malformed_ratio)) return -1; break;
        case 'R': o->gen.realistic = 1; break;
        case 'L': if (cli_parse_u64(cmd, "--linger-ms", optarg, 0, 900000, &o->linger_ms)) return -1; break;
        case 'B': if (cli_parse_u64(cmd, "--batch-size", optarg, 1, 2147483647, &o->batch_size)) return -1; break;
        case 'f':
            if ((fmt = lp_gen_format_from_name(optarg)) < 0)
                return cli_usage_error(cmd, "--format: \"%s\" is not one of " LP_GEN_FORMAT_NAMES, optarg), -1;
            o->gen.format = (lp_format)fmt;
            break;
        case 'k':
            if (strcmp(optarg, "ip") && strcmp(optarg, "none"))
                return cli_usage_error(cmd, "--key: \"%s\" is not one of ip, none", optarg), -1;
            o->key_ip = !strcmp(optarg, "ip");
            break;
        case 'z':
            if (strcmp(optarg, "zstd") && strcmp(optarg, "lz4") && strcmp(optarg, "gzip") &&
                strcmp(optarg, "snappy") && strcmp(optarg, "none"))
                return cli_usage_error(cmd, "--compression: \"%s\" is not one of zstd, lz4, gzip, snappy, none", optarg), -1;
            o->compression = optarg;
            break;
        case 'J':
            if (strcmp(optarg, "json"))
                return cli_usage_error(cmd, "--summary: \"%s\" is not json", optarg), -1;
            o->summary = optarg;
            break;
        case 'M': o->metrics_listen = optarg; break;
        case 'U': if (cli_parse_double(cmd, "--unhealthy-after", optarg, 0.1, 86400, &o->unhealthy_after)) return -1; break;
        case 'v': lp_tls_set_verbose(1); break;
        case 'h': usage(stdout); exit(0);
        default: cli_bad_option(cmd, argv); return -1;
        }
    }
    if (c == CLI_OPT_FAILED)
        return -1;
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]), -1;
    if (!o->topic || !*o->topic)
        return cli_usage_error(cmd, "--topic is required"), -1;
    if (o->input && o->have_count)
        return cli_usage_error(cmd, "--count and --input exclude each other"), -1;
    if (cli_conn_resolve(cmd, &o->conn, &o->user_props))
        return -1;
    o->brokers = o->conn.r_brokers;
    return 0;
}

static void print_summary(const produce_opts *o, const counts *c, double secs)
{
    double rate = secs > 0 ? (double)c->delivered / secs : 0;
    fprintf(stderr,
            "logpipe produce: sent %llu, delivered %llu, failed %llu, skipped %llu empty lines, "
            "%.0f msgs/s, %.2f s\n",
            (unsigned long long)c->sent, (unsigned long long)c->delivered,
            (unsigned long long)c->failed, (unsigned long long)c->skipped, rate, secs);
    if (c->failed)
        fprintf(stderr, "logpipe produce: last delivery error: %s\n", rd_kafka_err2str(c->last_error));
    if (o->summary)
        printf("{\"topic\":\"%s\",\"sent\":%llu,\"delivered\":%llu,\"failed\":%llu,\"skipped\":%llu,"
               "\"duration_s\":%.3f,\"msgs_per_s\":%.0f}\n",
               o->topic, (unsigned long long)c->sent, (unsigned long long)c->delivered,
               (unsigned long long)c->failed, (unsigned long long)c->skipped, secs, rate);
}

static lp_producer *open_producer(const produce_opts *o, counts *c, lp_error *err)
{
    lp_kafka_props props = {0};
    char num[32];
    lp_kafka_props_set(&props, "bootstrap.servers", o->brokers);
    lp_kafka_props_set(&props, "compression.codec", o->compression);
    /* librdkafka's sticky partitioner keeps unkeyed messages on one partition
     * for 10 ms at a time, which at these rates is most of a run: measured,
     * 100,000 lines landed 46567/53431/2 over 3 partitions. Consumers scale by
     * partitions, so spread per message (33540/33168/33292) unless -X says
     * otherwise. */
    lp_kafka_props_set(&props, "sticky.partitioning.linger.ms", "0");
    snprintf(num, sizeof num, "%llu", (unsigned long long)o->linger_ms);
    lp_kafka_props_set(&props, "linger.ms", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)o->batch_size);
    lp_kafka_props_set(&props, "batch.size", num);
    for (size_t i = 0; i < o->user_props.n; i++)
        lp_kafka_props_add(&props, o->user_props.kv[i], NULL);
    lp_producer *p = lp_producer_new(&props, on_delivery, c, err);
    lp_kafka_props_free(&props);
    if (p && lp_kafka_check_reachable(lp_producer_handle(p), o->brokers,
                                      o->connect_timeout_s * 1000, err)) {
        lp_producer_free(p);
        return NULL;
    }
    return p;
}

int cmd_produce(int argc, char **argv)
{
    produce_opts o = produce_defaults;
    o.gen.start = (int64_t)time(NULL);
    o.gen.seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    cli_kafka_password(&o.user_props);
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        lp_kafka_props_free(&o.user_props);
        cli_conn_free(&o.conn);
        return LP_EXIT_USAGE;
    }
    lp_metrics_server *metrics = NULL;
    if ((rc = cli_metrics_start("produce", o.metrics_listen, o.unhealthy_after, &metrics))) {
        lp_kafka_props_free(&o.user_props);
        cli_conn_free(&o.conn);
        return rc;
    }
    source src = {0};
    if (o.input) {
        src.in = strcmp(o.input, "-") ? fopen(o.input, "r") : stdin;
        if (!src.in) {
            lp_metrics_stop(metrics);
            lp_kafka_props_free(&o.user_props);
            cli_conn_free(&o.conn);
            return cli_usage_error("produce", "--input: cannot open \"%s\": %s", o.input, strerror(errno));
        }
    } else {
        src.gen = lp_gen_new(&o.gen);
        src.remaining = o.count ? o.count : UINT64_MAX;
    }

    counts c = {0};
    lp_error err;
    lp_producer *p = open_producer(&o, &c, &err);
    lp_kafka_props_free(&o.user_props);
    if (!p) {
        rc = cli_report("produce", &err);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    lp_pace pace;
    lp_pace_start(&pace, o.rate);
    lp_buf line = LP_BUF_INIT;
    while (!stop_requested && next_line(&src, &line)) {
        if (line.len == 0) {
            c.skipped++;
            continue;
        }
        lp_pace_wait(&pace, c.sent);
        size_t klen = 0;
        const char *key = o.key_ip ? key_slice(&line, &klen) : NULL;
        if (lp_producer_send(p, o.topic, RD_KAFKA_PARTITION_UA, klen ? key : NULL, klen,
                             line.data, line.len, NULL, NULL, &err)) {
            fprintf(stderr, "logpipe produce: %s\n", err.msg);
            c.failed++;
            break;
        }
        lp_count(LP_C_PRODUCED, 1);
        lp_count(LP_C_PRODUCED_BYTES, klen + line.len);
        /* Delivery reports are served every 64 messages, and whenever the
         * local queue is full (lp_producer_send), not after each message. */
        if ((++c.sent & 63) == 0)
            lp_producer_poll(p, 0);
    }
    if (src.in && ferror(src.in))
        fprintf(stderr, "logpipe produce: error reading --input: %s\n", strerror(errno));
    /* Wait for every delivery report; librdkafka gives up per message.timeout.ms. */
    while (lp_producer_flush(p, 1000) > 0 && !(stop_requested > 1)) {
    }
    print_summary(&o, &c, lp_pace_elapsed(&pace));
    /* Nothing acknowledged and every message refused (min.insync.replicas
     * not met, no leader within message.timeout.ms): the cluster refused
     * us, exit 3. Some delivered and some not: exit 5. */
    if (c.failed && c.delivered == 0 && c.failed == c.sent)
        rc = LP_EXIT_KAFKA;
    else
        rc = (c.failed || c.delivered != c.sent) ? LP_EXIT_PARTIAL : LP_EXIT_OK;
    if (src.in && ferror(src.in))
        rc = LP_EXIT_IO;
    lp_buf_free(&line);
    lp_producer_free(p);
out:
    lp_metrics_stop(metrics);
    if (src.gen)
        lp_gen_free(src.gen);
    if (src.in && src.in != stdin)
        fclose(src.in);
    free(src.buf);
    cli_conn_free(&o.conn);
    return rc;
}
