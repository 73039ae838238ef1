/*
 * buf.h: the growable byte buffer every stage writes into.
 *
 * The hot path appends parsed fields straight into one of these and reuses it
 * for the next message (lp_buf_reset keeps the memory), so per-message work
 * allocates nothing once the buffer has grown to the largest message seen.
 * Allocation failure aborts: a log pipeline that cannot get a few kilobytes
 * has no sensible way to go on, and checking every append would hide the
 * real logic.
 */
#ifndef LP_BUF_H
#define LP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct lp_buf {
    char *data;
    size_t len;
    size_t cap;
} lp_buf;

#define LP_BUF_INIT {NULL, 0, 0}

void lp_buf_grow(lp_buf *b, size_t extra);  /* ensure cap >= len + extra */
void lp_buf_free(lp_buf *b);
void lp_buf_append_u64(lp_buf *b, uint64_t v);
void lp_buf_append_i64(lp_buf *b, int64_t v);
/* Appends printf-formatted text; for cold paths only. */
void lp_buf_printf(lp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns data as a NUL-terminated C string (the NUL is not counted in len). */
const char *lp_buf_cstr(lp_buf *b);

static inline void lp_buf_reset(lp_buf *b) { b->len = 0; }

static inline void lp_buf_append(lp_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n)
        lp_buf_grow(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void lp_buf_putc(lp_buf *b, char c)
{
    if (b->cap == b->len)
        lp_buf_grow(b, 1);
    b->data[b->len++] = c;
}

/* String literals only: ("" lit) does not compile for a pointer, which would
 * otherwise silently append sizeof(char *) - 1 bytes. */
#define lp_buf_puts_lit(b, lit) lp_buf_append((b), ("" lit), sizeof(lit) - 1)

/* For credentials and secret values: zero the memory (in a way the compiler
 * cannot drop) before it is freed. lp_buf_wipe also resets b to empty. */
void lp_buf_wipe(lp_buf *b);
void lp_wipe_free(char *s);

struct stat;
/* A small file that may hold a secret, read with read(2) into out sized
 * once (no stdio buffer or reallocation leaves a copy behind). Opened with
 * O_NONBLOCK, so a FIFO cannot block; refused unless a regular file of at
 * most max bytes. Returns 0, or -1 with errno set (EINVAL: not a regular
 * file, EFBIG: larger than max) and out wiped. st_out, when not NULL,
 * receives the file's fstat (for owner and mode checks). */
int lp_buf_read_file(lp_buf *out, const char *path, size_t max, struct stat *st_out);

/* Allocation helpers that abort with a message instead of returning NULL. */
void *lp_xmalloc(size_t n);
void *lp_xcalloc(size_t count, size_t n);
void *lp_xrealloc(void *p, size_t n);
char *lp_xstrdup(const char *s);

#endif
