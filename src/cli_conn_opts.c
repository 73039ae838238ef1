/*
 * cli_conn_opts.c: the connection options produce, setup, consume, check
 * and replay share (--brokers, -X, --connect-timeout, --secrets, --es and its
 * TLS and credential options), parsed once and described once. Each command's
 * getopt_long table takes the groups it needs from cli.h's macros, so an
 * option keeps one spelling, one range and one help line everywhere; the
 * values go into a cli_conn for cli_conn_resolve (cli.c).
 */
#include <getopt.h>
#include <stdint.h>

#include "cli.h"

const char cli_es_help[] =
    "      --es-ca FILE           CA bundle for https Elasticsearch (verification is on)\n"
    "      --es-insecure          do not verify Elasticsearch's TLS certificate (unsafe)\n"
    "      --es-user USER         basic auth user\n"
    "      --es-password REF      its password, by reference (default: LOGPIPE_ES_PASSWORD)\n"
    "      --es-api-key REF       API key, by reference (default: LOGPIPE_ES_API_KEY)\n";

/* Options that go into the Kafka properties or the Elasticsearch client
 * rather than into a setting to resolve. */
static int conn_target_option(const char *cmd, cli_conn *c, int opt, const char *arg)
{
    uint64_t v;
    switch (opt) {
    case 'X': return !c->props ? 0 : cli_kafka_property(cmd, c->props, arg) ? -1 : 1;
    case CLI_O_CA: return c->es ? (c->es->ca_file = arg, 1) : 0;
    case CLI_O_INSECURE: return c->es ? (c->es->insecure = 1, 1) : 0;
    case CLI_O_CONNECT:
        if (!c->connect_timeout_s)
            return 0;
        if (cli_parse_u64(cmd, "--connect-timeout", arg, 1, 3600, &v))
            return -1;
        *c->connect_timeout_s = (int)v;
        return 1;
    }
    return 0;
}

int cli_getopt(const char *cmd, cli_conn *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    int opt, taken;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1)
        if ((taken = cli_conn_option(cmd, c, opt, optarg)) <= 0)
            return taken < 0 ? CLI_OPT_FAILED : opt;
    return -1;
}

int cli_conn_option(const char *cmd, cli_conn *c, int opt, const char *arg)
{
    switch (opt) {
    case 'b': c->brokers = arg; return 1;
    case 'e': c->es_url = arg; return 1;
    case CLI_O_USER: c->es_user = arg; return 1;
    case CLI_O_APIKEY: c->es_api_key = arg; return 1;
    case CLI_O_PASSWORD: c->es_password = arg; return 1;
    case CLI_O_SECRETS: c->secrets = arg; return 1;
    }
    return conn_target_option(cmd, c, opt, arg);
}
