/*
 * cli.h: what every subcommand shares: its entry point signature, option
 * value parsing that names the option at fault, and the usage-error exit.
 * Each subcommand lives in its own cmd_<name>.c (as git's builtin/<cmd>.c)
 * and uses getopt_long; these helpers keep their messages uniform:
 *   logpipe produce: --count: expected a whole number >= 0, got "abc"
 */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stdint.h>

#include "core/error.h"
#include "elasticsearch/es.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"

int cmd_generate(int argc, char **argv);
int cmd_parse(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_setup(int argc, char **argv);

/* --index and --data-stream, which exclude each other: a data stream's name
 * is written to as it is (no %Y conversion, not starting with "." or "_");
 * *index_pattern becomes it. Prints a usage error and returns -1 when not. */
int cli_target(const char *cmd, const char **index_pattern, const char *data_stream, int index_given);

/* Prints "logpipe <cmd>: <message>" and a hint to --help on stderr; returns
 * LP_EXIT_USAGE so callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "logpipe <cmd>: <e->msg>" on stderr and returns e->code. */
int cli_report(const char *cmd, const lp_error *e);

/* Value parsers: 0 on success; on failure print a usage error naming opt
 * and return -1. */
int cli_parse_u64(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                  uint64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *val, double min, double max,
                     double *out);
/* Accepts an epoch number, or RFC 3339 "2026-01-21T22:23:40Z" / with offset. */
int cli_parse_time(const char *cmd, const char *opt, const char *val, int64_t *out);

/* -X key=value: checked and added as cli_add_property does, or the error
 * printed and -1 returned. */
int cli_kafka_property(const char *cmd, lp_kafka_props *props, const char *kv);

/* LOGPIPE_KAFKA_PASSWORD, when set, becomes the first property (sasl.password)
 * so that a -X given on the command line still wins. */
void cli_kafka_password(lp_kafka_props *props);

/* The connection settings produce and consume share, as given on the
 * command line, and what they resolve to. Every one may be a secret
 * reference (lib/secrets/secrets.h); credentials may only be references.
 * Precedence: the option, then the LOGPIPE_* variable, then --secrets. */
typedef struct cli_conn {
    int es_only; /* setup: no Kafka settings needed */
    int need_es; /* 1 (consume): Elasticsearch settings are required; -1 (check): resolved when given */
    const char *secrets, *brokers, *es_url, *es_user, *es_api_key, *es_password;
    /* where cli_conn_option puts what it parses besides the settings above
     * (NULL when the command takes none of those options) */
    lp_kafka_props *props;  /* -X */
    lp_es_opts *es;         /* --es-ca, --es-insecure */
    int *connect_timeout_s; /* --connect-timeout */
    /* resolved (owned; cli_conn_free wipes them) */
    char *r_brokers, *r_es_url, *r_es_user, *r_es_api_key, *r_es_password, *r_es_ca_pem;
} cli_conn;

/* The connection options produce, setup, consume, check and replay share, parsed in
 * one place (cli_conn_opts.c). A command's getopt_long table lists the
 * groups it takes (Kafka's: --brokers, --connect-timeout; Elasticsearch's:
 * --es and its TLS and credentials; --secrets for either) and its option
 * string "b:" / "e:" / "X:" as it takes them; each option getopt returns
 * goes to cli_conn_option first. cli_es_help is the Elasticsearch options'
 * help lines, printed by the commands that take them. */
enum { CLI_O_SECRETS = 1000, CLI_O_CONNECT, CLI_O_CA, CLI_O_INSECURE, CLI_O_USER, CLI_O_APIKEY, CLI_O_PASSWORD };
#define CLI_SECRETS_LONGOPT {"secrets", required_argument, NULL, CLI_O_SECRETS}
#define CLI_KAFKA_LONGOPTS                                                                                   \
    {"brokers", required_argument, NULL, 'b'}, {"connect-timeout", required_argument, NULL, CLI_O_CONNECT}
#define CLI_ES_LONGOPTS                                                                                      \
    {"es", required_argument, NULL, 'e'}, {"es-ca", required_argument, NULL, CLI_O_CA},                      \
        {"es-insecure", no_argument, NULL, CLI_O_INSECURE}, {"es-user", required_argument, NULL, CLI_O_USER}, \
        {"es-api-key", required_argument, NULL, CLI_O_APIKEY},                                                \
        {"es-password", required_argument, NULL, CLI_O_PASSWORD}
/* --connect-timeout's default, seconds: every command that reaches Kafka. */
#define CLI_CONNECT_TIMEOUT_DEFAULT_S 10
extern const char cli_es_help[];

/* 1: opt was a connection option and went into c; 0: not one (the caller's
 * own); -1: its value was wrong (the usage error printed). */
int cli_conn_option(const char *cmd, cli_conn *c, int opt, const char *arg);

/* getopt_long that takes the connection options into c itself: returns the
 * next option that is the command's own, -1 at the end, or CLI_OPT_FAILED
 * when a connection option's value was wrong (the error printed). */
#define CLI_OPT_FAILED (-2)
struct option;
int cli_getopt(const char *cmd, cli_conn *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* Resolves c and rebuilds props: --secrets' Kafka settings first, then
 * props as given (-X wins), with the references among -X credential values
 * resolved. --brokers and --es are validated here: an error about a value
 * read through a reference names the reference, not the value.
 * Prints the error and returns its exit code on failure. */
int cli_conn_resolve(const char *cmd, cli_conn *c, lp_kafka_props *props);
void cli_conn_free(cli_conn *c);

/* -X key=value: added to props unless a reference is given for a key that
 * is not a credential, or a secret key (sasl.password, ...) is given a
 * literal; the error names the key, never the value. */
int cli_add_property(lp_kafka_props *props, const char *kv, lp_error *e);

/* --metrics-listen and --unhealthy-after (cli_metrics.c): their --help
 * lines, and the server started (nothing when listen is NULL). A command
 * leaves unhealthy_after_s 0 unless --unhealthy-after was given: then the
 * default below applies, and a value given without --metrics-listen is a
 * usage error. Returns 0, or prints the error and returns its exit code
 * (2: the flag is named). */
#define CLI_UNHEALTHY_AFTER_DEFAULT_S 60
extern const char cli_metrics_help[];
int cli_metrics_start(const char *cmd, const char *listen, double unhealthy_after_s, lp_metrics_server **out);

/* --shards, --replicas, --refresh-ms (consume, setup): the settings of the
 * index template logpipe installs. cli_index_setting returns 1 when opt was
 * one of them (its value now in s), 0 when not, -1 when its value was wrong
 * (the usage error printed). */
enum { CLI_O_SHARDS = 1100, CLI_O_REPLICAS, CLI_O_REFRESH };
#define CLI_INDEX_SETTINGS_LONGOPTS                                                                           \
    {"shards", required_argument, NULL, CLI_O_SHARDS}, {"replicas", required_argument, NULL, CLI_O_REPLICAS}, \
        {"refresh-ms", required_argument, NULL, CLI_O_REFRESH}
extern const char cli_index_settings_help[];
int cli_index_setting(const char *cmd, int opt, const char *arg, lp_index_settings *s);

/* getopt_long's unknown-option and missing-argument cases, uniformly. */
int cli_bad_option(const char *cmd, char **argv);

#endif
