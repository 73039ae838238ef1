/*
 * log.c: text or JSON log lines on stderr (see log.h).
 *
 * JSON mode swaps stderr for a fopencookie stream. It is unbuffered, so each
 * fprintf reaches json_write at once, under the FILE's own lock; a line
 * written in pieces (a prefix, the message, "\n") is kept until its newline,
 * then written to fd 2 as one object with one write(2), which keeps lines
 * from several threads (librdkafka's) whole. The level of a line that did
 * not come through lp_log is read from it: librdkafka's "%3|..." syslog
 * level, "WARNING" in the text, else info.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"

static const char *json_command; /* non-NULL: JSON mode */
static lp_buf pending;           /* the line being written to the cookie stream */

static const char *level_name[] = {"error", "warning", "info"};

int lp_log_format_from_name(const char *name)
{
    return !strcmp(name, "text") ? 0 : !strcmp(name, "json") ? 1 : -1;
}

static void timestamp(lp_buf *out)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    lp_buf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

/* Writes one JSON object for msg[0..n) to fd 2. fields: NULL or the body of
 * an object ("\"k\":v,..."). */
static void emit(const char *level, const char *msg, size_t n, const char *fields)
{
    lp_buf line = LP_BUF_INIT;
    lp_buf_puts_lit(&line, "{\"timestamp\":\"");
    timestamp(&line);
    lp_buf_printf(&line, "\",\"level\":\"%s\",\"command\":", level);
    lp_json_str(&line, json_command, strlen(json_command));
    lp_buf_puts_lit(&line, ",\"message\":");
    lp_json_str(&line, msg, n);
    if (fields && *fields)
        lp_buf_printf(&line, ",\"fields\":{%s}", fields);
    lp_buf_puts_lit(&line, "}\n");
    for (size_t off = 0; off < line.len;) {
        ssize_t w = write(STDERR_FILENO, line.data + off, line.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    lp_buf_free(&line);
}

/* getopt's complaint ("consume: unrecognized option '--x'") and the hint
 * that follows it. */
static int usage_error(const char *s, size_t n)
{
    size_t c = strlen(json_command);
    return (n > c + 2 && !memcmp(s, json_command, c) && !memcmp(s + c, ": ", 2)) ||
           (n > 14 && !memcmp(s, "(see 'logpipe ", 14));
}

/* A line someone printed on stderr: its level and fields from its shape. */
static void emit_printed(const char *s, size_t n)
{
    char prefix[64];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "logpipe %s: ", json_command);
    if (n >= plen && !memcmp(s, prefix, plen))
        s += plen, n -= plen;
    else if (n >= 9 && !memcmp(s, "logpipe: ", 9))
        s += 9, n -= 9;
    /* librdkafka's default logger: "%7|1701335778.123|FAC|client| message" */
    int syslog_level, at = 0;
    char fac[64], client[128];
    lp_buf line = LP_BUF_INIT, fields = LP_BUF_INIT;
    lp_buf_append(&line, s, n);
    if (sscanf(lp_buf_cstr(&line), "%%%d|%*[^|]|%63[^|]|%127[^|]| %n", &syslog_level, fac, client, &at) == 3 && at) {
        lp_buf_puts_lit(&fields, "\"facility\":");
        lp_json_str(&fields, fac, strlen(fac));
        lp_buf_puts_lit(&fields, ",\"client\":");
        lp_json_str(&fields, client, strlen(client));
        emit(syslog_level <= 3 ? "error" : syslog_level == 4 ? "warning" : "info", s + at, n - (size_t)at,
             lp_buf_cstr(&fields));
    } else {
        emit(memmem(s, n, "WARNING", 7) ? "warning" : usage_error(s, n) ? "error" : "info", s, n, NULL);
    }
    lp_buf_free(&line);
    lp_buf_free(&fields);
}

static ssize_t json_write(void *cookie, const char *buf, size_t size)
{
    (void)cookie;
    for (size_t i = 0; i < size; i++) {
        if (buf[i] != '\n' && buf[i] != '\r') {
            lp_buf_putc(&pending, buf[i]);
        } else if (pending.len) {
            emit_printed(pending.data, pending.len);
            lp_buf_reset(&pending);
        }
    }
    return (ssize_t)size;
}

/* A last line without its newline still becomes an object. */
static void flush_pending(void)
{
    if (pending.len)
        emit_printed(pending.data, pending.len);
    lp_buf_free(&pending);
}

void lp_log_use_json(const char *command)
{
    FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t){.write = json_write});
    if (!f)
        return; /* stays text: better than no log */
    setvbuf(f, NULL, _IONBF, 0);
    json_command = command;
    stderr = f;
    atexit(flush_pending);
}

void lp_log(lp_log_level level, const char *command, int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (!json_command) {
        fprintf(stderr, "logpipe %s: %s\n", command, text);
    } else {
        char fields[32] = "";
        if (exit_code >= 0)
            snprintf(fields, sizeof fields, "\"exit_code\":%d", exit_code);
        fflush(stderr); /* whatever was printed before comes first */
        emit(level_name[level], text, (size_t)n, fields);
    }
    free(text);
}
