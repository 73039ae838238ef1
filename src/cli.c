/*
 * cli.c: option value parsing and error printing shared by the subcommands.
 * Every message names the command and the option, so a scheduler's log shows
 * exactly which setting stopped the run.
 */
#include "cli.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "elasticsearch/es.h"
#include "secrets/secrets.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    char msg[2048];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lp_log(LP_LOG_ERROR, cmd, LP_EXIT_USAGE, "%s\n(see 'logpipe %s --help')", msg, cmd);
    return LP_EXIT_USAGE;
}

int cli_report(const char *cmd, const lp_error *e)
{
    lp_log(LP_LOG_ERROR, cmd, e->code ? e->code : LP_EXIT_IO, "%s", e->msg);
    return e->code ? e->code : LP_EXIT_IO;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                  uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (!*val || *end || errno || val[0] == '-' || v < min || v > max) {
        cli_usage_error(cmd, "%s: expected a whole number from %" PRIu64 " to %" PRIu64 ", got \"%s\"",
                        opt, min, max, val);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *val, double min, double max,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || isnan(v) || v < min || v > max) {
        cli_usage_error(cmd, "%s: expected a number from %g to %g, got \"%s\"", opt, min, max, val);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_time(const char *cmd, const char *opt, const char *val, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (*val && !*end && !errno) {
        *out = v;
        return 0;
    }
    int y, mo, d, h, mi, s, n = 0;
    if (sscanf(val, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) == 6 && mo >= 1 &&
        mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60) {
        const char *z = val + n;
        int off = 0, oh, om;
        if (!strcmp(z, "Z")) {
            off = 0;
        } else if ((z[0] == '+' || z[0] == '-') && sscanf(z + 1, "%2d:%2d", &oh, &om) == 2 &&
                   strlen(z) == 6) {
            off = (oh * 60 + om) * 60 * (z[0] == '-' ? -1 : 1);
        } else {
            goto bad;
        }
        *out = lp_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s - off;
        return 0;
    }
bad:
    cli_usage_error(cmd, "%s: expected epoch seconds or an RFC 3339 time such as 2026-01-21T22:23:40Z, got \"%s\"",
                    opt, val);
    return -1;
}

const char cli_index_settings_help[] =
    "      --shards N             the template's index.number_of_shards (default: the cluster's)\n"
    "      --replicas N           the template's index.number_of_replicas (default: the cluster's)\n"
    "      --refresh-ms MS        the template's index.refresh_interval: how soon a document becomes\n"
    "                             searchable (default: the cluster's, 1000; shorter costs Elasticsearch\n"
    "                             indexing throughput)\n";

int cli_index_setting(const char *cmd, int opt, const char *arg, lp_index_settings *s)
{
    uint64_t v;
    switch (opt) {
    case CLI_O_SHARDS: if (cli_parse_u64(cmd, "--shards", arg, 1, 1024, &v)) return -1; s->shards = (int)v; return 1;
    case CLI_O_REPLICAS: if (cli_parse_u64(cmd, "--replicas", arg, 0, 1000, &v)) return -1; s->replicas = (int)v; return 1;
    case CLI_O_REFRESH: if (cli_parse_u64(cmd, "--refresh-ms", arg, 1, 3600000, &v)) return -1; s->refresh_ms = (int)v; return 1;
    default: return 0;
    }
}

int cli_bad_option(const char *cmd, char **argv)
{
    /* getopt_long already printed what was wrong ("unrecognized option"). */
    (void)argv;
    fprintf(stderr, "(see 'logpipe %s --help')\n", cmd);
    return LP_EXIT_USAGE;
}

int cli_kafka_property(const char *cmd, lp_kafka_props *props, const char *kv)
{
    lp_error e;
    if (!cli_add_property(props, kv, &e))
        return 0;
    cli_report(cmd, &e);
    return -1;
}

void cli_kafka_password(lp_kafka_props *props)
{
    char *pw = lp_secret_take_env("LOGPIPE_KAFKA_PASSWORD");
    if (!pw)
        return;
    lp_kafka_props_set(props, "sasl.password", pw);
    lp_wipe_free(pw);
}

/* ---- connection settings and secret references ----------------------------------- */

/* Resolves one option's value (a literal or a reference) into *out. */
static int resolve_into(const char *what, const char *text, char **out, lp_error *e)
{
    /* An endpoint read from a --secrets object's credential key would go to DNS,
     * librdkafka's log and our messages as a host name: refuse it first. */
    lp_secret_ref r;
    const char *option;
    if (!lp_secret_ref_parse(what, text, &r, NULL) && *r.key && (option = lp_secret_key_option(r.key)) &&
        (!strcmp(what, "--brokers") || !strcmp(what, "--es")) && strcmp(option, what))
        return lp_fail(e, LP_EXIT_USAGE, "%s: #%s is the --secrets key for %s, not for %s: did you mean #%s?", what,
                       r.key, option, what, !strcmp(what, "--es") ? "elasticsearch_URL" : "kafka_bootstrap_server");
    lp_buf v = LP_BUF_INIT;
    if (lp_secret_resolve(what, text, &v, e))
        return -1;
    lp_wipe_free(*out);
    *out = lp_xstrdup(lp_buf_cstr(&v));
    lp_buf_wipe(&v);
    return 0;
}

/* A credential option takes references only: a literal would sit in argv,
 * which every local user can read in /proc. */
static int resolve_credential(const char *what, const char *text, const char *env_name, char **fallback,
                              char **out, lp_error *e)
{
    if (text) {
        if (!lp_secret_is_ref(text))
            return lp_fail(e, LP_EXIT_USAGE, "%s takes a reference (env://NAME, file:///path or aws-sm://ID#key), "
                           "not the credential itself: the command line is readable by every local user", what);
        return resolve_into(what, text, out, e);
    }
    char *from_env = lp_secret_take_env(env_name);
    if (from_env) {
        *out = from_env;
    } else if (*fallback) {
        *out = *fallback;
        *fallback = NULL;
    }
    return 0;
}

static void take(char **dst, char **src)
{
    if (!*dst && *src) {
        *dst = *src;
        *src = NULL;
    }
}

int cli_add_property(lp_kafka_props *props, const char *kv, lp_error *e)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return lp_kafka_props_add(props, kv, e); /* its error names the argument */
    int klen = (int)(eq - kv);
    if (lp_secret_is_ref(eq + 1) && !lp_kafka_is_credential(kv, (size_t)klen))
        /* A reference anywhere else would let whoever writes -X (a connection's
         * extra) read any secret the process can, into a property of theirs. */
        return lp_fail(e, LP_EXIT_USAGE, "-X %.*s: references (aws-sm://, env://, file://) are resolved only for "
                       "credential properties (sasl.username, sasl.password, ssl.key.pem, ...; docs/secrets.md): "
                       "give %.*s's value itself", klen, kv, klen, kv);
    if (!lp_secret_is_ref(eq + 1) && lp_kafka_is_secret(kv, (size_t)klen))
        return lp_fail(e, LP_EXIT_USAGE, "-X %.*s takes a reference (env://NAME, file:///path or aws-sm://ID#key), "
                       "not the secret itself: the command line is readable by every local user%s", klen, kv,
                       klen == 13 && !strncasecmp(kv, "sasl.password", 13) ? " (or set LOGPIPE_KAFKA_PASSWORD)" : "");
    return lp_kafka_props_add(props, kv, e);
}

/* -X key=aws-sm://... : the value is resolved, the key kept. Only the -X
 * values the user gave (cli_add_property let references through for
 * credentials alone): a value from --secrets is never read as a reference. */
static int resolve_props(lp_kafka_props *props, lp_error *e)
{
    for (size_t i = 0; i < props->n; i++) {
        char *eq = strchr(props->kv[i], '=');
        size_t klen = eq ? (size_t)(eq - props->kv[i]) : 0;
        if (!eq || !lp_secret_is_ref(eq + 1) || !lp_kafka_is_credential(props->kv[i], klen))
            continue;
        char what[300];
        snprintf(what, sizeof what, "-X %.*s", (int)klen, props->kv[i]);
        lp_buf v = LP_BUF_INIT;
        if (lp_secret_resolve(what, eq + 1, &v, e))
            return -1;
        char *kv = lp_xmalloc(klen + 1 + v.len + 1);
        memcpy(kv, props->kv[i], klen + 1);
        memcpy(kv + klen + 1, v.data, v.len + 1);
        lp_buf_wipe(&v);
        lp_wipe_free(props->kv[i]);
        props->kv[i] = kv;
    }
    return 0;
}

/* Validates an endpoint once resolved. A value given literally may be
 * quoted back; one read through a reference may not (it could be any
 * secret, taken by mistake), so then the message names where it came from. */
static int check_endpoint(const char *what, const char *source, const char *value,
                          int (*check)(const char *, lp_error *), const char *expected, lp_error *e)
{
    lp_error ce;
    if (!check(value, &ce))
        return 0;
    if (!source) {
        *e = ce;
        return -1;
    }
    return lp_fail(e, LP_EXIT_USAGE, "%s: the value of %s is not %s", what, source, expected);
}

/* Where a resolved setting came from, for check_endpoint: NULL when literal. */
static const char *source_of(const char *given, const char *secrets_key, const char *secrets, char *buf, size_t n)
{
    if (given)
        return lp_secret_is_ref(given) ? given : NULL;
    snprintf(buf, n, "%s in --secrets %s", secrets_key, secrets);
    return buf;
}

static void kafka_from_secrets(const lp_secret_settings *s, lp_kafka_props *out)
{
    if (s->kafka_username) {
        /* A username alone means a managed Kafka such as Confluent Cloud, which
         * takes SASL_SSL + PLAIN: the other keys are then optional. */
        lp_kafka_props_set(out, "security.protocol", s->kafka_protocol ? s->kafka_protocol : "SASL_SSL");
        lp_kafka_props_set(out, "sasl.mechanisms", s->kafka_mechanism ? s->kafka_mechanism : "PLAIN");
        lp_kafka_props_set(out, "sasl.username", s->kafka_username);
    } else {
        if (s->kafka_protocol)
            lp_kafka_props_set(out, "security.protocol", s->kafka_protocol);
        if (s->kafka_mechanism)
            lp_kafka_props_set(out, "sasl.mechanisms", s->kafka_mechanism);
    }
    if (s->kafka_password)
        lp_kafka_props_set(out, "sasl.password", s->kafka_password);
    if (s->kafka_ca_pem)
        lp_kafka_props_set(out, "ssl.ca.pem", s->kafka_ca_pem);
}

static int conn_resolve(cli_conn *c, lp_kafka_props *props, lp_error *e)
{
    lp_secret_settings s = {0};
    char src[1200];
    int rc = -1;
    if (c->secrets && lp_secret_settings_load(c->secrets, &s, e))
        return -1;
    if (c->brokers ? resolve_into("--brokers", c->brokers, &c->r_brokers, e) : 0)
        goto out;
    take(&c->r_brokers, &s.brokers);
    if (!c->r_brokers && c->es_only)
        goto es;
    if (!c->r_brokers) {
        lp_fail(e, LP_EXIT_USAGE, "--brokers is required (or kafka_bootstrap_server in the --secrets object)");
        goto out;
    }
    if (check_endpoint("--brokers", source_of(c->brokers, "kafka_bootstrap_server", c->secrets, src, sizeof src),
                       c->r_brokers, lp_kafka_check_brokers, "a host:port[,host:port] list", e))
        goto out;
es:
    if (c->need_es) {
        if (c->es_url ? resolve_into("--es", c->es_url, &c->r_es_url, e) : 0)
            goto out;
        take(&c->r_es_url, &s.es_url);
        if (!c->r_es_url && c->need_es < 0)
            goto kafka; /* optional, and not configured */
        if (!c->r_es_url) {
            lp_fail(e, LP_EXIT_USAGE, "--es is required, e.g. http://127.0.0.1:9200 (or elasticsearch_URL in the "
                    "--secrets object)");
            goto out;
        }
        if (check_endpoint("--es", source_of(c->es_url, "elasticsearch_URL", c->secrets, src, sizeof src),
                           c->r_es_url, lp_es_check_url, "an http:// or https:// URL without credentials", e))
            goto out;
        if (c->es_user ? resolve_into("--es-user", c->es_user, &c->r_es_user, e) : 0)
            goto out;
        take(&c->r_es_user, &s.es_username);
        if (resolve_credential("--es-api-key", c->es_api_key, "LOGPIPE_ES_API_KEY", &s.es_api_key,
                               &c->r_es_api_key, e) ||
            resolve_credential("--es-password", c->es_password, "LOGPIPE_ES_PASSWORD", &s.es_password,
                               &c->r_es_password, e))
            goto out;
        take(&c->r_es_ca_pem, &s.es_ca_pem);
    }
kafka:
    if (resolve_props(props, e))
        goto out;
    lp_kafka_props all = {0};
    kafka_from_secrets(&s, &all);
    for (size_t i = 0; i < props->n; i++)
        lp_kafka_props_add(&all, props->kv[i], NULL);
    lp_kafka_props_free(props);
    *props = all;
    rc = 0;
out:
    lp_secret_settings_wipe(&s);
    return rc;
}

/* AWS credentials are needed only to resolve references, at start-up: after
 * that they leave the environment (and /proc/<pid>/environ), zeroed. */
static void forget_aws_credentials(void)
{
    static const char *vars[] = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        lp_wipe_free(lp_secret_take_env(vars[i]));
}

int cli_conn_resolve(const char *cmd, cli_conn *c, lp_kafka_props *props)
{
    lp_error e;
    int failed = conn_resolve(c, props, &e);
    forget_aws_credentials();
    return failed ? cli_report(cmd, &e) : 0;
}

void cli_conn_free(cli_conn *c)
{
    lp_wipe_free(c->r_brokers);
    lp_wipe_free(c->r_es_url);
    lp_wipe_free(c->r_es_user);
    lp_wipe_free(c->r_es_api_key);
    lp_wipe_free(c->r_es_password);
    lp_wipe_free(c->r_es_ca_pem);
    c->r_brokers = c->r_es_url = c->r_es_user = c->r_es_api_key = c->r_es_password = c->r_es_ca_pem = NULL;
}
