/* error.c: filling lp_error; see error.h for the contract. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

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
