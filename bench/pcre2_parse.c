/*
 * pcre2_parse.c: the "generic regex parser" baseline for bench/run.py.
 *
 * What Fluent Bit's regex parser does, in C: one PCRE2 pattern with named
 * groups per format, JIT-compiled, matched against each line; every named
 * group becomes a JSON string field, the time group is parsed with strptime
 * and written as RFC 3339 UTC, numeric groups as numbers. It writes through
 * logpipe's own JSON string writer, so the comparison isolates the parsing
 * approach (regex + generic record vs. logpipe's fixed-grammar tokenizer).
 * Not part of logpipe; built only with -DLOGPIPE_BENCH=ON.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/json.h"

static const char *SEED_RE =
    "^(?<host>\\S+) \\S+ (?<user>\\S+) \\[(?<time>[^\\]]+)\\] \"(?<method>\\S+) (?<path>\\S+) "
    "HTTP/(?<version>[^\"]+)\" (?<code>\\d{3}) (?<size>\\d+|-) \"(?<referer>[^\"]*)\" \"(?<agent>[^\"]*)\"";

typedef struct group {
    const char *name;
    int number, numeric, is_time;
} group;

int main(int argc, char **argv)
{
    const char *fmt = argc > 1 ? argv[1] : "seed";
    const char *time_fmt = strcmp(fmt, "seed") ? "%d/%b/%Y:%H:%M:%S %z" : "%b %d %Y, %H:%M:%S";
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)SEED_RE, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
    if (!re || pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0) {
        fprintf(stderr, "pcre2_parse: compiling the pattern failed\n");
        return 1;
    }
    static const char *names[] = {"host", "user", "time", "method", "path", "version", "code", "size",
                                  "referer", "agent"};
    group groups[10];
    for (int i = 0; i < 10; i++)
        groups[i] = (group){names[i], pcre2_substring_number_from_name(re, (PCRE2_SPTR)names[i]),
                            !strcmp(names[i], "code") || !strcmp(names[i], "size"), !strcmp(names[i], "time")};
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mctx = pcre2_match_context_create(NULL);
    pcre2_jit_stack *stack = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
    pcre2_jit_stack_assign(mctx, NULL, stack);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lines = 0, rejected = 0;
    lp_buf out = LP_BUF_INIT;
    char tbuf[64];
    while ((n = getline(&line, &cap, stdin)) > 0) {
        lines++;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (pcre2_jit_match(re, (PCRE2_SPTR)line, (size_t)n, 0, 0, md, mctx) < 0) {
            rejected++;
            continue;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        lp_buf_putc(&out, '{');
        for (int i = 0; i < 10; i++) {
            const char *v = line + ov[2 * groups[i].number];
            size_t len = ov[2 * groups[i].number + 1] - ov[2 * groups[i].number];
            if (i)
                lp_buf_putc(&out, ',');
            lp_json_str(&out, groups[i].name, strlen(groups[i].name));
            lp_buf_putc(&out, ':');
            if (groups[i].is_time) {
                struct tm tm = {0};
                memcpy(tbuf, v, len < sizeof tbuf - 1 ? len : sizeof tbuf - 1);
                tbuf[len < sizeof tbuf - 1 ? len : sizeof tbuf - 1] = '\0';
                strptime(tbuf, time_fmt, &tm);
                time_t t = timegm(&tm) - tm.tm_gmtoff;
                gmtime_r(&t, &tm);
                strftime(tbuf, sizeof tbuf, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
                lp_buf_append(&out, tbuf, strlen(tbuf));
            } else if (groups[i].numeric && !(len == 1 && *v == '-')) {
                lp_buf_append(&out, v, len);
            } else {
                lp_json_str(&out, v, len);
            }
        }
        lp_buf_puts_lit(&out, "}\n");
        if (out.len > (1 << 16)) {
            fwrite(out.data, 1, out.len, stdout);
            lp_buf_reset(&out);
        }
    }
    fwrite(out.data, 1, out.len, stdout);
    fprintf(stderr, "pcre2_parse: %lu lines, %lu documents, %lu rejected\n", lines, lines - rejected, rejected);
    lp_buf_free(&out);
    free(line);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
    pcre2_code_free(re);
    return 0;
}
