/* error.c: filling lp_error, and the exit codes' table; see error.h for the contract. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const lp_exit_code lp_exit_codes[] = {
    {LP_EXIT_OK, "ok", "ok"},
    {LP_EXIT_IO, "io", "input/output error"},
    {LP_EXIT_USAGE, "usage", "usage or configuration error"},
    {LP_EXIT_KAFKA, "kafka", "Kafka error"},
    {LP_EXIT_ES, "elasticsearch", "Elasticsearch error"},
    {LP_EXIT_PARTIAL, "partial", "partial run: some messages were not acknowledged, were not committed "
                                 "and will be consumed again"},
};
const int lp_exit_ncodes = (int)(sizeof lp_exit_codes / sizeof *lp_exit_codes);

void lp_exit_codes_print(FILE *out, const char *title, const char *codes)
{
    int col = fprintf(out, "%s", title);
    for (const char *c = codes; *c; c++) {
        int i = *c - '0';
        if (i < 0 || i >= lp_exit_ncodes)
            continue;
        /* Words, so that a long meaning wraps between them. */
        char item[256];
        snprintf(item, sizeof item, "%d %s%s", lp_exit_codes[i].code, lp_exit_codes[i].meaning,
                 c[1] ? "," : ".");
        for (char *save = NULL, *w = strtok_r(item, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            int n = (int)strlen(w);
            if (col + 1 + n > 79) {
                fputc('\n', out);
                col = 0;
            } else if (col) {
                fputc(' ', out);
                col++;
            }
            col += fprintf(out, "%s", w);
        }
    }
    fputc('\n', out);
}

int lp_fail(lp_error *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return -1;
}
