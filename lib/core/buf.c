/*
 * buf.c: growth and formatting for lp_buf, plus the aborting allocators.
 * Growth doubles so appends are amortised O(1); the inline fast paths live in
 * buf.h so the per-field append is a compare and a memcpy.
 */
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "logpipe: out of memory allocating %zu bytes\n", n);
    abort();
}

void *lp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *lp_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        out_of_memory(count * n);
    return p;
}

void *lp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *lp_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = lp_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void lp_buf_grow(lp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1; /* +1 keeps room for lp_buf_cstr's NUL */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = lp_xrealloc(b->data, cap);
    b->cap = cap;
}

void lp_buf_free(lp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void lp_buf_append_u64(lp_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lp_buf_append(b, tmp + i, sizeof tmp - i);
}

void lp_buf_append_i64(lp_buf *b, int64_t v)
{
    if (v < 0) {
        lp_buf_putc(b, '-');
        lp_buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        lp_buf_append_u64(b, (uint64_t)v);
    }
}

void lp_buf_printf(lp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    lp_buf_grow(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *lp_buf_cstr(lp_buf *b)
{
    lp_buf_grow(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}

void lp_buf_wipe(lp_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    lp_buf_free(b);
}

void lp_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int lp_buf_read_file(lp_buf *out, const char *path, size_t max, struct stat *st_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    int err = 0;
    memset(&st, 0, sizeof st);
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        err = EINVAL;
    else if ((size_t)st.st_size > max)
        err = EFBIG;
    lp_buf_reset(out);
    if (!err) {
        lp_buf_grow(out, (size_t)st.st_size + 1);
        ssize_t n;
        while (out->len + 1 < out->cap && (n = read(fd, out->data + out->len, out->cap - out->len - 1)) != 0) {
            if (n < 0) {
                err = errno;
                break;
            }
            out->len += (size_t)n;
        }
    }
    close(fd);
    if (st_out)
        *st_out = st;
    if (err) {
        lp_buf_wipe(out);
        errno = err;
        return -1;
    }
    lp_buf_cstr(out);
    return 0;
}
