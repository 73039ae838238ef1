/*
 * cli_metrics.c: --metrics-listen and --unhealthy-after, shared by consume
 * and produce: the flags' help, their checks, and starting the server
 * (lib/metrics/) before the command touches any data, so a bad address or
 * a port in use stops the run at once with the flag's name.
 */
#include <stdio.h>

#include "cli.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char cli_metrics_help[] =
    "      --metrics-listen HOST:PORT  serve Prometheus metrics on /metrics and a health check\n"
    "                             on /healthz there (e.g. 127.0.0.1:9464; 0.0.0.0:9464 for every\n"
    "                             interface; port 0 picks a free one, printed on stderr)\n"
    "      --unhealthy-after S    /healthz answers 503 once Kafka or Elasticsearch has been\n"
    "                             unreachable, or nothing progressed with work waiting, for S s\n"
    "                             (default " STR(CLI_UNHEALTHY_AFTER_DEFAULT_S) "; needs --metrics-listen)\n";

int cli_metrics_start(const char *cmd, const char *listen, double unhealthy_after_s, lp_metrics_server **out)
{
    char bound[300];
    lp_error e;
    *out = NULL;
    if (!listen && unhealthy_after_s > 0)
        /* The threshold is only ever read by /healthz, which only exists with
         * --metrics-listen: accepting it alone would promise a health check
         * nothing serves. */
        return cli_usage_error(cmd, "--unhealthy-after needs --metrics-listen: /healthz is served there");
    if (!listen)
        return 0;
    if (unhealthy_after_s <= 0)
        unhealthy_after_s = CLI_UNHEALTHY_AFTER_DEFAULT_S;
    if (!(*out = lp_metrics_start(listen, cmd, unhealthy_after_s, bound, sizeof bound, &e)))
        return cli_report(cmd, &e);
    fprintf(stderr, "logpipe %s: metrics on http://%s/metrics, health on http://%s/healthz\n", cmd, bound, bound);
    return 0;
}
