/*
 * cmd_check.c: `logpipe check`, does this machine reach the endpoints a run
 * needs, through logpipe's own libraries?
 *
 * On a platform logpipe was not built on (an MWAA worker runs the bundle's
 * carried libcurl, libssl and librdkafka), the first thing to fail is
 * usually TLS: a trust store in another place, a cipher or a certificate
 * chain. So the check goes through the very code a run goes through: the
 * connection settings are resolved as produce and consume resolve them
 * (cli_conn_resolve, which reads a --secrets aws-sm:// reference from
 * Secrets Manager over its TLS), Kafka answers a metadata request (TLS
 * handshake and SASL login included) and Elasticsearch answers GET / (TLS
 * and credentials). Each is one row of the JSON verdict on stdout; a step
 * that fails does not stop the next one (a Kafka failure says nothing about
 * Elasticsearch), but nothing runs without settings. Exit status: 0 when
 * every row passed, else the first failure's code (2, 3 or 4).
 *
 * It moves no data: the Airflow DAG logpipe_worker_check adds a produce and
 * consume round trip through a scratch topic and index.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/json.h"
#include "elasticsearch/es.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: logpipe check [--secrets REF | --brokers HOST:PORT [-X key=value] --es URL] [options]\n\n"
            "Checks that this machine reaches Kafka and Elasticsearch with these settings, through\n"
            "the same libraries and TLS a run uses: resolves the settings (Secrets Manager for an\n"
            "aws-sm:// reference), asks Kafka for metadata and Elasticsearch for GET /. Prints one\n"
            "JSON object, {\"checks\": [{\"check\", \"ok\", \"detail\"}, ...]}, on stdout.\n\n"
            "options (as for consume; see 'logpipe consume --help'):\n"
            "  -b, --brokers LIST, -X key=value, -e, --es URL, --es-ca FILE, --es-insecure,\n"
            "  --es-user USER, --es-password REF, --es-api-key REF, --secrets REF\n"
            "      --connect-timeout S    per endpoint (default 10)\n"
            "  -h, --help                 this help\n\n"
            "Without --es (nor elasticsearch_URL in --secrets) Elasticsearch is not checked.\n"
            "Exit status: 0 every check passed, else the first failure's: 2 settings, 3 Kafka,\n"
            "4 Elasticsearch.\n");
}

typedef struct verdict {
    lp_buf json; /* the rows so far */
    int rows, exit_code;
} verdict;

static void row(verdict *v, const char *check, int code, const char *detail)
{
    lp_buf_printf(&v->json, "%s{\"check\":", v->rows++ ? "," : "");
    lp_json_str(&v->json, check, strlen(check));
    lp_buf_printf(&v->json, ",\"ok\":%s,\"detail\":", code ? "false" : "true");
    lp_json_str(&v->json, detail, strlen(detail));
    lp_buf_printf(&v->json, "}");
    if (code && !v->exit_code)
        v->exit_code = code;
}

static void check_kafka(verdict *v, const char *brokers, const lp_kafka_props *props, int timeout_s)
{
    lp_kafka_props all = {0};
    lp_error e;
    lp_kafka_props_set(&all, "bootstrap.servers", brokers);
    lp_kafka_props_set(&all, "log_level", "3");
    for (size_t i = 0; i < props->n; i++)
        lp_kafka_props_add(&all, props->kv[i], NULL);
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&all, &e);
    lp_kafka_props_free(&all);
    if (!conf) {
        row(v, "kafka", e.code, e.msg);
        return;
    }
    char err[512], protocol[64] = "plaintext";
    size_t n = sizeof protocol;
    rd_kafka_conf_get(conf, "security.protocol", protocol, &n);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        row(v, "kafka", LP_EXIT_USAGE, err);
        return;
    }
    if (lp_kafka_check_reachable(rk, brokers, timeout_s * 1000, &e)) {
        row(v, "kafka", e.code, e.msg);
    } else {
        char detail[600];
        snprintf(detail, sizeof detail, "%s answered a metadata request over %s", brokers, protocol);
        row(v, "kafka", 0, detail);
    }
    rd_kafka_destroy(rk);
}

static void check_elasticsearch(verdict *v, const lp_es_opts *opts)
{
    lp_error e;
    char version[64], detail[600];
    lp_es *es = lp_es_new(opts, &e);
    if (!es || lp_es_check(es, version, sizeof version, &e)) {
        row(v, "elasticsearch", e.code, e.msg);
    } else {
        snprintf(detail, sizeof detail, "Elasticsearch %s at %s answered", version, opts->url);
        row(v, "elasticsearch", 0, detail);
    }
    lp_es_free(es);
}

int cmd_check(int argc, char **argv)
{
    enum { O_CA = 256, O_INSECURE, O_USER, O_APIKEY, O_PASSWORD, O_SECRETS, O_CONNECT };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},        {"es", required_argument, NULL, 'e'},
        {"es-ca", required_argument, NULL, O_CA},         {"es-insecure", no_argument, NULL, O_INSECURE},
        {"es-user", required_argument, NULL, O_USER},     {"es-api-key", required_argument, NULL, O_APIKEY},
        {"es-password", required_argument, NULL, O_PASSWORD}, {"secrets", required_argument, NULL, O_SECRETS},
        {"connect-timeout", required_argument, NULL, O_CONNECT}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *cmd = "check";
    cli_conn conn = {.need_es = 0};
    lp_kafka_props props = {0};
    lp_es_opts es = {.max_inflight = 1};
    uint64_t timeout_s = 10;
    int c, rc = LP_EXIT_USAGE;
    cli_kafka_password(&props);
    while ((c = getopt_long(argc, argv, "b:e:X:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': conn.brokers = optarg; break;
        case 'e': conn.es_url = optarg; break;
        case O_CA: es.ca_file = optarg; break;
        case O_INSECURE: es.insecure = 1; break;
        case O_USER: conn.es_user = optarg; break;
        case O_APIKEY: conn.es_api_key = optarg; break;
        case O_PASSWORD: conn.es_password = optarg; break;
        case O_SECRETS: conn.secrets = optarg; break;
        case O_CONNECT: if (cli_parse_u64(cmd, "--connect-timeout", optarg, 1, 3600, &timeout_s)) goto out; break;
        case 'X': if (cli_kafka_property(cmd, &props, optarg)) goto out; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: cli_bad_option(cmd, argv); goto out;
        }
    }
    if (optind < argc) { cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]); goto out; }
    /* Elasticsearch is checked when it is configured, by option or secret. */
    conn.need_es = -1;
    verdict v = {LP_BUF_INIT, 0, 0};
    char detail[1200];
    int from_sm = conn.secrets && !strncmp(conn.secrets, "aws-sm://", 9);
    const char *first = from_sm ? "secrets manager" : "settings";
    if ((rc = cli_conn_resolve(cmd, &conn, &props))) {
        row(&v, first, rc, "the connection settings could not be resolved: the error is on stderr");
    } else {
        snprintf(detail, sizeof detail, "%s%s", from_sm ? "read " : "resolved", from_sm ? conn.secrets : "");
        row(&v, first, 0, detail);
        check_kafka(&v, conn.r_brokers, &props, (int)timeout_s);
        if (conn.r_es_url) {
            es.url = conn.r_es_url;
            es.username = conn.r_es_user;
            es.password = conn.r_es_password;
            es.api_key = conn.r_es_api_key;
            es.ca_pem = conn.r_es_ca_pem;
            check_elasticsearch(&v, &es);
        }
    }
    printf("{\"checks\":[%s]}\n", lp_buf_cstr(&v.json));
    fflush(stdout);
    lp_buf_free(&v.json);
    rc = v.exit_code;
out:
    cli_conn_free(&conn);
    lp_kafka_props_free(&props);
    return rc;
}
