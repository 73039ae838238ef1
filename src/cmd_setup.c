/*
 * cmd_setup.c: `logpipe setup`, the one-time step an administrator runs so
 * that `logpipe consume` can write with the privileges to write alone (as
 * Filebeat's `setup` before its least-privilege writer).
 *
 * It installs the index template for --index or --data-stream (lib/consume/
 * target.c names it; lib/elasticsearch/template.c builds it) and, with
 * --create-data-stream, the data stream itself. Every step is idempotent,
 * so it is also how an upgrade of logpipe refreshes a template whose stamp
 * changed. It needs manage_index_templates (and, for the data stream,
 * create_index on its name): docs/deploy.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "consume/consume.h"
#include "tls/tls.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: logpipe setup --es URL [--index PATTERN | --data-stream NAME] [options]\n\n"
            "Installs logpipe's index template on Elasticsearch (and the data stream, if asked),\n"
            "so that logpipe consume needs only the privileges to write. Run it again after an\n"
            "upgrade: it replaces a template whose _meta stamp is not this logpipe's.\n\n"
            "  -e, --es URL               Elasticsearch, e.g. https://es.example:9200\n"
            "  -i, --index PATTERN        the dated index pattern consume writes (default %s)\n"
            "      --data-stream NAME     the data stream consume writes (e.g. logs-access-default)\n"
            "      --create-data-stream   also create that data stream now (else the first write does)\n"
            "%s%s"
            "      --secrets REF          a JSON object of connection settings (docs/secrets.md)\n"
            "  -v, --verbose              print the template body installed\n"
            "  -h, --help                 this help\n\n"
            "A missing privilege exits 2.\n",
            LP_INDEX_PATTERN_DEFAULT, cli_index_settings_help, cli_es_help);
    lp_exit_codes_print(out, "Exit status:", "024");
}

int cli_target(const char *cmd, const char **index_pattern, const char *data_stream, int index_given)
{
    if (!data_stream)
        return 0;
    if (index_given) {
        cli_usage_error(cmd, "--index and --data-stream exclude each other: a data stream has one name");
        return -1;
    }
    if (strchr(data_stream, '%') || data_stream[0] == '.') {
        cli_usage_error(cmd, "--data-stream: \"%s\" must be a plain name (no %% conversions, not starting with .)",
                        data_stream);
        return -1;
    }
    *index_pattern = data_stream;
    return 0;
}

/* The template, then the data stream when asked; prints what it did. */
static int run_setup(const lp_es_opts *eo, const lp_target *t, int create_stream, int verbose)
{
    lp_error e;
    char version[64];
    lp_es *es = lp_es_new(eo, &e);
    int rc = !es || lp_es_check(es, version, sizeof version, &e) || lp_es_install_template(es, &t->tpl, &e);
    if (!rc) {
        char stamp[17];
        lp_buf body = LP_BUF_INIT;
        lp_es_template_body(&body, &t->tpl, stamp);
        printf("index template %s installed: pattern %s, priority %ld, %s, stamp %s\n", t->tpl.name,
               t->tpl.pattern, lp_es_template_priority(t->tpl.pattern),
               t->tpl.data_stream ? "data stream" : "indices", stamp);
        if (verbose)
            printf("%s\n", lp_buf_cstr(&body));
        lp_buf_free(&body);
    }
    if (!rc && create_stream) {
        int made = lp_es_create_data_stream(es, t->tpl.pattern, &e);
        rc = made < 0;
        if (!rc)
            printf("data stream %s %s\n", t->tpl.pattern, made ? "created" : "exists already");
    }
    lp_es_free(es);
    return rc ? cli_report("setup", &e) : 0;
}

int cmd_setup(int argc, char **argv)
{
    enum { O_STREAM = 256, O_CREATE };
    static const struct option longopts[] = {
        CLI_ES_LONGOPTS, CLI_SECRETS_LONGOPT, {"index", required_argument, NULL, 'i'},
        {"data-stream", required_argument, NULL, O_STREAM}, {"create-data-stream", no_argument, NULL, O_CREATE},
        CLI_INDEX_SETTINGS_LONGOPTS,
        {"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *cmd = "setup", *index_pattern = LP_INDEX_PATTERN_DEFAULT, *data_stream = NULL;
    lp_es_opts eo = {.max_inflight = 1};
    cli_conn conn = {.es_only = 1, .need_es = 1, .es = &eo};
    lp_kafka_props props = {0};
    int c, rc = LP_EXIT_USAGE, index_given = 0, create_stream = 0, verbose = 0;
    lp_index_settings settings = LP_INDEX_SETTINGS_DEFAULT;
    while ((c = cli_getopt(cmd, &conn, argc, argv, "e:i:vh", longopts)) >= 0) {
        int is_setting = cli_index_setting(cmd, c, optarg, &settings);
        if (is_setting < 0)
            goto out;
        if (is_setting)
            continue;
        switch (c) {
        case 'i': index_pattern = optarg; index_given = 1; break;
        case O_STREAM: data_stream = optarg; break;
        case O_CREATE: create_stream = 1; break;
        case 'v': verbose = 1; lp_tls_set_verbose(1); break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: cli_bad_option(cmd, argv); goto out;
        }
    }
    if (c == CLI_OPT_FAILED)
        goto out;
    if (optind < argc) { cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]); goto out; }
    if (cli_target(cmd, &index_pattern, data_stream, index_given)) goto out;
    if (create_stream && !data_stream) { cli_usage_error(cmd, "--create-data-stream needs --data-stream"); goto out; }
    if ((rc = cli_conn_resolve(cmd, &conn, &props)))
        goto out;
    eo.url = conn.r_es_url;
    eo.username = conn.r_es_user;
    eo.password = conn.r_es_password;
    eo.api_key = conn.r_es_api_key;
    eo.ca_pem = conn.r_es_ca_pem;
    lp_target t;
    lp_target_init(&t, index_pattern, data_stream, &settings);
    rc = run_setup(&eo, &t, create_stream, verbose);
    lp_target_free(&t);
out:
    cli_conn_free(&conn);
    lp_kafka_props_free(&props);
    return rc;
}
