/*
 * server.c: the HTTP side of --metrics-listen, on libmicrohttpd (Debian's
 * libmicrohttpd12; libcurl is a client only). One internal polling thread
 * answers GET /metrics (Prometheus text format 0.0.4) and GET /healthz
 * (200 or 503 with the reason, text); everything else is 404/405.
 *
 * logpipe opens the listening socket itself and hands it to libmicrohttpd:
 * so a port in use or an address that is not this machine's is reported
 * with its errno and the flag's name, at start-up, before any data moves.
 * The host is required: the metrics bind where the operator says, and
 * "0.0.0.0:9464" is how to say every interface.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/metrics.h"

struct lp_metrics_server {
    struct MHD_Daemon *daemon;
    int fd;
    char command[16];
    double unhealthy_after_s;
};

static int watching; /* a server runs: lp_metrics_watch_kafka turns statistics on */

const char *lp_metrics_server_version(void) { return MHD_get_version(); }

/* Splits HOST:PORT or [V6]:PORT; 0 and the parts, or -1. */
static int split(const char *hostport, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    size_t hl;
    int bracketed = hostport[0] == '[';
    if (bracketed) {
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':')
            return -1;
        hl = (size_t)(close - hostport - 1);
        hostport++;
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon || memchr(hostport, ':', (size_t)(colon - hostport)))
            return -1;
        hl = (size_t)(colon - hostport);
    }
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (hl == 0 || hl >= hostlen || pl == 0 || pl > 5 || pl >= portlen || strspn(p, "0123456789") != pl ||
        atol(p) > 65535)
        return -1;
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    /* A name or an address, nothing getaddrinfo would read as a wildcard
     * ("*"): every interface is said with 0.0.0.0 or [::]. */
    if (strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:%") != hl ||
        (strchr(host, ':') && !bracketed))
        return -1;
    memcpy(port, p, pl + 1);
    return 0;
}

int lp_metrics_check_listen(const char *hostport, lp_error *e)
{
    char host[256], port[8];
    if (split(hostport, host, sizeof host, port, sizeof port))
        return lp_fail(e, LP_EXIT_USAGE, "--metrics-listen: expected HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464, "
                       "0.0.0.0:9464 for every interface), got \"%s\"", hostport);
    return 0;
}

static int bind_listen(const char *hostport, char *bound, size_t bound_len, lp_error *e)
{
    char host[256], port[8];
    if (lp_metrics_check_listen(hostport, e))
        return -1;
    split(hostport, host, sizeof host, port, sizeof port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc)
        return lp_fail(e, LP_EXIT_USAGE, "--metrics-listen %s: cannot resolve %s: %s", hostport, host, gai_strerror(rc));
    int fd = -1, err = 0;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return lp_fail(e, LP_EXIT_USAGE, "--metrics-listen %s: cannot listen there: %s%s", hostport, strerror(err),
                       err == EADDRINUSE ? " (another process has that port: pick another one)" : "");
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char addr[INET6_ADDRSTRLEN] = "?";
    getsockname(fd, (struct sockaddr *)&sa, &len);
    int is6 = sa.ss_family == AF_INET6;
    inet_ntop(sa.ss_family, is6 ? (void *)&((struct sockaddr_in6 *)&sa)->sin6_addr : (void *)&((struct sockaddr_in *)&sa)->sin_addr,
              addr, sizeof addr);
    snprintf(bound, bound_len, is6 ? "[%s]:%u" : "%s:%u", addr,
             ntohs(is6 ? ((struct sockaddr_in6 *)&sa)->sin6_port : ((struct sockaddr_in *)&sa)->sin_port));
    return fd;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, lp_buf *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(body->len, body->data ? body->data : (char *)"",
                                                             MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    lp_buf_free(body);
    return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    lp_metrics_server *s = cls;
    (void)version;
    (void)upload;
    (void)state;
    lp_buf body = LP_BUF_INIT;
    if (*upload_size) /* nothing here takes a body */
        *upload_size = 0;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        lp_buf_printf(&body, "only GET\n");
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", &body);
    }
    if (!strcmp(url, "/metrics")) {
        lp_metrics_render(s->command, &body);
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &body);
    }
    if (!strcmp(url, "/healthz")) {
        int status = lp_metrics_health(s->command, s->unhealthy_after_s, &body);
        lp_buf_putc(&body, '\n');
        return reply(conn, (unsigned)status, "text/plain; charset=utf-8", &body);
    }
    lp_buf_printf(&body, "not found: try /metrics or /healthz\n");
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", &body);
}

lp_metrics_server *lp_metrics_start(const char *hostport, const char *command, double unhealthy_after_s,
                                    char *bound, size_t bound_len, lp_error *e)
{
    int fd = bind_listen(hostport, bound, bound_len, e);
    if (fd < 0)
        return NULL;
    lp_metrics_server *s = lp_xcalloc(1, sizeof *s);
    s->fd = fd;
    s->unhealthy_after_s = unhealthy_after_s;
    snprintf(s->command, sizeof s->command, "%s", command);
    /* A few scrapers at most: a small connection limit and a short timeout
     * keep a slow or hostile client from holding the thread's resources. */
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, answer, s,
                                 MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 16,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10, MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        free(s);
        lp_fail(e, LP_EXIT_USAGE, "--metrics-listen %s: the HTTP server could not start", hostport);
        return NULL;
    }
    lp_metrics_watch_type(strcmp(command, "produce") ? "consumer" : "producer");
    watching = 1;
    return s;
}

void lp_metrics_stop(lp_metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    close(s->fd);
    free(s);
    watching = 0;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)opaque;
    lp_metrics_read_kafka_stats(json, len);
    return 0; /* librdkafka frees json */
}

void lp_metrics_watch_kafka(rd_kafka_conf_t *conf)
{
    if (!watching)
        return;
    char err[256];
    rd_kafka_conf_set(conf, "statistics.interval.ms", "1000", err, sizeof err);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
}
