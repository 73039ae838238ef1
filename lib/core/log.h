/*
 * log.h: where logpipe's log lines go, and in what shape (--log-format).
 *
 * Text (the default) is what a person reads: "logpipe consume: message".
 * JSON is one object per line on stderr, for CloudWatch Logs Insights on
 * MWAA and any other collector:
 *   {"timestamp":"2026-11-30T09:16:18.123Z","level":"error","command":"consume",
 *    "message":"...","fields":{"exit_code":4}}
 * In JSON mode stderr itself is replaced by a stream that turns every line
 * written to it into such an object, so that lines from anywhere (getopt,
 * librdkafka's own logger, every fprintf(stderr) of the code base) come out
 * as JSON too, without each call site knowing the format. Messages carry
 * no credentials by construction (core/error.h): the JSON shape changes the
 * quoting, not what is said.
 */
#ifndef LP_LOG_H
#define LP_LOG_H

typedef enum lp_log_level { LP_LOG_ERROR, LP_LOG_WARNING, LP_LOG_INFO } lp_log_level;

/* "text" or "json"; -1 for anything else. */
int lp_log_format_from_name(const char *name);

/* Switches stderr to JSON lines for command (text needs no call). */
void lp_log_use_json(const char *command);

/* One log line: "logpipe <command>: <message>" in text; an object with
 * level, message and, when exit_code >= 0, fields.exit_code in JSON. */
void lp_log(lp_log_level level, const char *command, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
