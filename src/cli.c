/*
 * cli.c: option value parsing and error printing shared by the subcommands.
 * Every message names the command and the option, so a scheduler's log shows
 * exactly which setting stopped the run.
 */
#include "cli.h"
#include "core/timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "logpipe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'logpipe %s --help')\n", cmd);
    return LP_EXIT_USAGE;
}

int cli_report(const char *cmd, const lp_error *e)
{
    fprintf(stderr, "logpipe %s: %s\n", cmd, e->msg);
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

int cli_bad_option(const char *cmd, char **argv)
{
    /* getopt_long already printed what was wrong ("unrecognized option"). */
    (void)argv;
    fprintf(stderr, "(see 'logpipe %s --help')\n", cmd);
    return LP_EXIT_USAGE;
}

char *cli_take_env(const char *name)
{
    char *v = getenv(name);
    if (!v)
        return NULL;
    char *copy = strdup(v);
    memset(v, 0, strlen(v)); /* the environment block's copy too */
    unsetenv(name);
    return copy;
}

void cli_kafka_password(lp_kafka_props *props)
{
    char *pw = cli_take_env("LOGPIPE_KAFKA_PASSWORD");
    if (!pw)
        return;
    lp_kafka_props_set(props, "sasl.password", pw);
    memset(pw, 0, strlen(pw));
    free(pw);
}
