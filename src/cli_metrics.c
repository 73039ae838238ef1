/*
 * cli_metrics.c: --metrics-listen and --unhealthy-after, shared by consume
 * and produce: the flags' help, their checks, and starting the server
 * (lib/metrics/) before the command touches any data, so a bad address or
 * a port in use stops the run at once with the flag's name.
 */
#include <stdio.h>

#include "cli.h"

const char cli_metrics_help[] =
    "      --metrics-listen HOST:PORT  serve Prometheus metrics on /metrics and a health check\n"
    "                             on /healthz there (e.g. 127.0.0.1:9464; 0.0.0.0:9464 for every\n"
    "                             interface; port 0 picks a free one, printed on stderr)\n"
    "      --unhealthy-after S    /healthz answers 503 once Kafka or Elasticsearch has been\n"
    "                             unreachable, or nothing progressed with work waiting, for S s\n"
    "                             (default 60)\n";

int cli_metrics_start(const char *cmd, const char *listen, double unhealthy_after_s, lp_metrics_server **out)
{
    char bound[300];
    lp_error e;
    *out = NULL;
    if (!listen)
        return 0;
    if (!(*out = lp_metrics_start(listen, cmd, unhealthy_after_s, bound, sizeof bound, &e)))
        return cli_report(cmd, &e);
    fprintf(stderr, "logpipe %s: metrics on http://%s/metrics, health on http://%s/healthz\n", cmd, bound, bound);
    return 0;
}
