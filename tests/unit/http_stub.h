/*
 * http_stub.h: a one-file HTTP/1.1 server for unit tests that need an
 * endpoint (container credentials, instance metadata, Secrets Manager
 * errors). It runs in a forked child on 127.0.0.1, answers each request from
 * a route table, and records the requests it saw to a file the test reads.
 * Only for tests: no keep-alive, one request per connection.
 */
#ifndef LP_HTTP_STUB_H
#define LP_HTTP_STUB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct stub_route {
    const char *method, *path;
    const char *need_header; /* "Name: value" the request must carry, else 401 */
    int status;
    const char *body;
} stub_route;

typedef struct http_stub {
    pid_t pid;
    int port;
    char log[64]; /* file of "METHOD PATH\n" + headers per request */
} http_stub;

static void stub_serve(int fd, const stub_route *routes, size_t n, const char *log)
{
    char req[16384];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof req - 1 && (r = read(fd, req + len, sizeof req - 1 - len)) > 0) {
        len += (size_t)r;
        req[len] = 0;
        char *end = strstr(req, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(req, "\r\nContent-Length:");
            size_t want = (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            if (len >= want)
                break;
        }
    }
    req[len] = 0;
    FILE *f = fopen(log, "a");
    if (f) {
        fprintf(f, "%s\n----\n", req);
        fclose(f);
    }
    char method[16] = "", path[1024] = "";
    sscanf(req, "%15s %1023s", method, path);
    int status = 404;
    const char *body = "{\"message\":\"no route\"}";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(routes[i].method, method) || strcmp(routes[i].path, path))
            continue;
        if (routes[i].need_header && !strcasestr(req, routes[i].need_header)) {
            status = 401;
            body = "{\"message\":\"missing or wrong authorization\"}";
        } else {
            status = routes[i].status;
            body = routes[i].body;
        }
        break;
    }
    char head[256];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen(body));
    if (write(fd, head, (size_t)hl) < 0 || write(fd, body, strlen(body)) < 0)
        return;
}

static int stub_start(http_stub *s, const stub_route *routes, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    snprintf(s->log, sizeof s->log, "/tmp/lp-stub-%d-%d.log", (int)getpid(), s->port);
    unlink(s->log);
    s->pid = fork();
    if (s->pid == 0) {
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                _exit(0);
            stub_serve(c, routes, n, s->log);
            close(c);
        }
    }
    close(fd);
    return s->pid > 0 ? 0 : -1;
}

static void stub_stop(http_stub *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    unlink(s->log);
}

/* Everything the stub received so far (static buffer). */
static const char *stub_seen(const http_stub *s)
{
    static char buf[65536];
    FILE *f = fopen(s->log, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

#endif
