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
 * and credentials). Given the run's --topic, --group and --index, it checks
 * what consume's start-up checks (lib/consume/prerequisites.c) without
 * creating anything: the topic, the dead-letter topic, READ on the group,
 * the Elasticsearch privileges and the index template. Each is one row of
 * the JSON verdict on stdout and of the table on stderr; a step
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
#include "consume/consume.h"
#include "consume/prerequisites.h"
#include "elasticsearch/es.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: logpipe check [--secrets REF | --brokers HOST:PORT [-X key=value] --es URL]\n"
            "                     [--topic TOPIC] [--group GROUP] [--index PATTERN] [options]\n\n"
            "Checks that this machine reaches Kafka and Elasticsearch with these settings, through\n"
            "the same libraries and TLS a run uses: resolves the settings (Secrets Manager for an\n"
            "aws-sm:// reference), asks Kafka for metadata and Elasticsearch for GET /; with\n"
            "--topic, that the topic and its dead-letter topic may be used; with --group, READ on\n"
            "the group; with Elasticsearch, the privileges consume needs on --index and its index\n"
            "template. It creates nothing. Prints a table of what is ready on stderr and one JSON\n"
            "object, {\"checks\": [{\"check\", \"ok\", \"detail\"}, ...]}, on stdout.\n\n"
            "options (as for consume; see 'logpipe consume --help'):\n"
            "  -b, --brokers LIST, -X key=value, -e, --es URL, --es-ca FILE, --es-insecure,\n"
            "  --es-user USER, --es-password REF, --es-api-key REF, --secrets REF\n"
            "  -t, --topic TOPIC          the topic a run consumes (dead-letter topic: TOPIC.dlq)\n"
            "      --dlq-topic TOPIC      the dead-letter topic, as consume's --dlq-topic\n"
            "  -g, --group GROUP          the consumer group a run uses\n"
            "  -i, --index PATTERN        as consume's --index (default %s)\n"
            "      --no-template          as consume's: the index template must already be installed\n"
            "      --connect-timeout S    per endpoint (default %d)\n"
            "  -h, --help                 this help\n\n"
            "Without --es (nor elasticsearch_URL in --secrets) Elasticsearch is not checked.\n"
            "A failing run exits with its first failed check's code (2: a setting or a grant).\n",
            LP_INDEX_PATTERN_DEFAULT, CLI_CONNECT_TIMEOUT_DEFAULT_S);
    lp_exit_codes_print(out, "Exit status:", "0234");
}

typedef struct verdict {
    lp_buf json; /* the rows so far */
    int rows, exit_code;
} verdict;

static void row(verdict *v, const char *check, int code, const char *detail)
{
    if (!v->rows)
        fprintf(stderr, "%-36s %-5s %s\n", "CHECK", "READY", "DETAIL");
    fprintf(stderr, "%-36s %-5s %s\n", check, code ? "NO" : "yes", detail);
    lp_buf_printf(&v->json, "%s{\"check\":", v->rows++ ? "," : "");
    lp_json_str(&v->json, check, strlen(check));
    lp_buf_printf(&v->json, ",\"ok\":%s,\"detail\":", code ? "false" : "true");
    lp_json_str(&v->json, detail, strlen(detail));
    lp_buf_printf(&v->json, "}");
    if (code && !v->exit_code)
        v->exit_code = code;
}

/* A topic's row: ready when it exists; a principal that may not see it
 * lacks a grant (2); a missing one is missing_code (the source topic: 3, as
 * consume; the dead-letter topic: 0, consume creates it) with that detail. */
static void check_topic(verdict *v, rd_kafka_t *rk, const char *what, const char *topic, const char *grant,
                        int missing_code, const char *missing, int timeout_ms)
{
    char name[300], detail[600];
    snprintf(name, sizeof name, "%s %s", what, topic);
    rd_kafka_resp_err_t err = lp_kafka_topic_error(rk, topic, timeout_ms);
    if (!err)
        row(v, name, 0, "exists");
    else if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        row(v, name, missing_code, missing);
    else if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
        snprintf(detail, sizeof detail, "Kafka does not let this principal see it: grant %s on topic %s", grant,
                 topic);
        row(v, name, LP_EXIT_USAGE, detail);
    } else
        row(v, name, LP_EXIT_KAFKA, rd_kafka_err2str(err));
}

static void check_group(verdict *v, rd_kafka_t *rk, const lp_consume_opts *o)
{
    char name[300];
    lp_error e;
    snprintf(name, sizeof name, "group %s", o->group);
    if (lp_consume_check_group(rk, o, &e))
        row(v, name, e.code, e.msg);
    else
        row(v, name, 0, "its committed offsets may be read");
}

static void check_kafka(verdict *v, const char *brokers, const lp_kafka_props *props, const lp_consume_opts *o)
{
    int timeout_s = o->connect_timeout_s;
    lp_kafka_props all = {0};
    lp_error e;
    lp_kafka_props_set(&all, "bootstrap.servers", brokers);
    lp_kafka_props_set(&all, "log_level", "3");
    for (size_t i = 0; i < props->n; i++)
        lp_kafka_props_add(&all, props->kv[i], NULL);
    /* A check creates nothing: a producer's metadata request for a missing
     * topic would have a broker with auto.create.topics.enable create it. */
    lp_kafka_props_set(&all, "allow.auto.create.topics", "false");
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
        if (o->ntopics)
            check_topic(v, rk, "topic", o->topics[0], "READ", LP_EXIT_KAFKA, "does not exist (--topic)",
                        timeout_s * 1000);
        if (o->ntopics && o->dlq_topic)
            check_topic(v, rk, "dead-letter topic", o->dlq_topic, "WRITE", 0,
                        "does not exist yet: consume creates it at start (CREATE on the topic)", timeout_s * 1000);
        if (o->ntopics && o->group)
            check_group(v, rk, o);
    }
    rd_kafka_destroy(rk);
}

/* The index template, judged as consume judges it at start (target.c):
 * credentials without manage_index_templates cannot read templates, so
 * consume then trusts `logpipe setup`, and so does this row. */
static void check_template(verdict *v, lp_es *es, const lp_consume_opts *o)
{
    static const char *const manage[] = {"manage_index_templates", NULL};
    static const char *const none[] = {NULL};
    lp_target t;
    lp_error e;
    lp_es_template_state state;
    char title[300], detail[600];
    lp_target_init(&t, o->index_pattern, o->data_stream, &o->index);
    snprintf(title, sizeof title, "index template %s", t.tpl.name);
    int may = lp_es_has_privileges(es, manage, t.tpl.pattern, none, NULL, &e);
    if (may < 0 || (may && lp_es_template_check(es, &t.tpl, &state, &e)))
        row(v, title, e.code, e.msg);
    else if (!may)
        row(v, title, 0, "not readable without manage_index_templates: consume trusts that logpipe setup installed it");
    else if (state == LP_TEMPLATE_CURRENT)
        row(v, title, 0, "installed and current");
    else if (o->install_template)
        row(v, title, 0, state == LP_TEMPLATE_MISSING ? "not installed yet: consume installs it at start"
                                                      : "another logpipe's stamp: consume replaces it at start");
    else if (state == LP_TEMPLATE_STALE)
        row(v, title, 0, "installed with another logpipe's stamp; --no-template leaves it as it is");
    else {
        snprintf(detail, sizeof detail, "not installed, and --no-template: run logpipe setup (indices %s would "
                 "get dynamic mappings)", t.tpl.pattern);
        row(v, title, LP_EXIT_USAGE, detail);
    }
    lp_target_free(&t);
}

/* run: a run's --topic or --index was given, so its privileges and template are checked too. */
static void check_elasticsearch(verdict *v, const lp_es_opts *opts, const lp_consume_opts *o, int run)
{
    lp_error e;
    char version[64], detail[600];
    lp_es *es = lp_es_new(opts, &e);
    if (!es || lp_es_check(es, version, sizeof version, &e)) {
        row(v, "elasticsearch", e.code, e.msg);
    } else {
        snprintf(detail, sizeof detail, "Elasticsearch %s at %s answered", version, opts->url);
        row(v, "elasticsearch", 0, detail);
        if (run && lp_consume_check_es_privileges(es, o, &e))
            row(v, "elasticsearch privileges", e.code, e.msg);
        else if (run) {
            snprintf(detail, sizeof detail, "what consume needs for --index %s", o->index_pattern);
            row(v, "elasticsearch privileges", 0, detail);
        }
        if (run)
            check_template(v, es, o);
    }
    lp_es_free(es);
}

int cmd_check(int argc, char **argv)
{
    enum { O_DLQ = 256, O_NOTPL };
    static const struct option longopts[] = {
        CLI_KAFKA_LONGOPTS, CLI_ES_LONGOPTS, CLI_SECRETS_LONGOPT, {"help", no_argument, NULL, 'h'},
        {"topic", required_argument, NULL, 't'}, {"group", required_argument, NULL, 'g'},
        {"index", required_argument, NULL, 'i'}, {"dlq-topic", required_argument, NULL, O_DLQ},
        {"no-template", no_argument, NULL, O_NOTPL},
        {NULL, 0, NULL, 0}};
    const char *cmd = "check";
    lp_kafka_props props = {0};
    lp_es_opts es = {.max_inflight = 1};
    const char *topic = NULL;
    lp_consume_opts o = {.topics = &topic, .index_pattern = LP_INDEX_PATTERN_DEFAULT, .install_template = 1,
                         .connect_timeout_s = CLI_CONNECT_TIMEOUT_DEFAULT_S, .index = LP_INDEX_SETTINGS_DEFAULT};
    cli_conn conn = {.need_es = 0, .props = &props, .es = &es, .connect_timeout_s = &o.connect_timeout_s};
    lp_buf dlq = LP_BUF_INIT;
    int c, index_given = 0, rc = LP_EXIT_USAGE;
    cli_kafka_password(&props);
    while ((c = cli_getopt(cmd, &conn, argc, argv, "b:e:X:t:g:i:h", longopts)) >= 0) {
        switch (c) {
        case 't': topic = optarg; o.ntopics = 1; break;
        case 'g': o.group = optarg; break;
        case 'i': o.index_pattern = optarg; index_given = 1; break;
        case O_DLQ: o.dlq_topic = optarg; break;
        case O_NOTPL: o.install_template = 0; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: cli_bad_option(cmd, argv); goto out;
        }
    }
    if (c == CLI_OPT_FAILED)
        goto out;
    if (optind < argc) { cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]); goto out; }
    if (o.group && !topic) { cli_usage_error(cmd, "--group is checked on a topic: give --topic too"); goto out; }
    if (topic && !o.dlq_topic) {
        lp_buf_printf(&dlq, "%s.dlq", topic);
        o.dlq_topic = lp_buf_cstr(&dlq);
    }
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
        check_kafka(&v, conn.r_brokers, &props, &o);
        if (conn.r_es_url) {
            es.url = conn.r_es_url;
            es.username = conn.r_es_user;
            es.password = conn.r_es_password;
            es.api_key = conn.r_es_api_key;
            es.ca_pem = conn.r_es_ca_pem;
            check_elasticsearch(&v, &es, &o, topic || index_given);
        }
    }
    printf("{\"checks\":[%s]}\n", lp_buf_cstr(&v.json));
    fflush(stdout);
    lp_buf_free(&v.json);
    rc = v.exit_code;
out:
    lp_buf_free(&dlq);
    cli_conn_free(&conn);
    lp_kafka_props_free(&props);
    return rc;
}
