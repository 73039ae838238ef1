/*
 * access_log.h: the NCSA family of access-log formats.
 *
 * Apache/nginx "combined", combined_zoneless (combined's fields with a
 * zone-less "Jan 21 2026, 22:23:40" time), the NCSA common log format and
 * Apache's vhost_combined share one shape:
 *
 *   [vhost:port] host ident user [time] "request" status bytes ["referrer" "user agent"]
 *
 * and differ only in how the time is written, whether the virtual host
 * leads and whether the last two quoted fields are there. So there is one
 * tokenizer, which cuts a line into slices of the caller's buffer (no
 * copies, no allocation), and one timestamp reader per time syntax
 * (timestamp.c). Which format a line is in follows from those three facts,
 * so auto-detection costs nothing extra.
 *
 * A request that never completed still leaves a line: Apache writes "-" for
 * a request line that never came (408 from mod_reqtimeout), nginx "" for a
 * connection closed before one, and both write whatever bytes arrived when
 * they were not HTTP (a TLS handshake on the plain-text port, escaped as
 * \x16\x03\x01...). The tokenizer says which of these the request is rather
 * than rejecting the line, and takes "-" where a status is usual.
 */
#ifndef LP_ACCESS_LOG_H
#define LP_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "parse/parse.h"

typedef struct lp_slice {
    const char *p;
    size_t n;
} lp_slice;

/* "-": how both servers write a field they have no value for. */
static inline int lp_slice_is_dash(lp_slice s) { return s.n == 1 && s.p[0] == '-'; }

/* What the quoted request field held. */
typedef enum lp_request_kind {
    LP_REQUEST_HTTP = 0, /* "METHOD target [HTTP/x.y]": method, target... are set */
    LP_REQUEST_NONE,     /* "-" or "": no request line was received */
    LP_REQUEST_RAW,      /* anything else: only request is set */
} lp_request_kind;

typedef struct lp_access_line {
    lp_slice vhost;                     /* Apache %v:%p, empty when the format has none */
    lp_slice host, ident, user;
    lp_slice time;                      /* between [ and ] */
    lp_slice request;                   /* between the quotes, escapes still in */
    lp_request_kind request_kind;
    lp_slice method, target, protocol;  /* parts of an HTTP request; protocol may be empty */
    lp_slice path, query;               /* parts of target; query without '?' */
    lp_slice referrer, agent;           /* between the quotes, escapes still in */
    int status;                         /* 100..599, 0 when '-' */
    int64_t bytes;                      /* -1 when '-' */
    int has_trailer;                    /* referrer and agent present */
} lp_access_line;

/* Cuts line into fields. Returns NULL on success, else a static reason. */
const char *lp_access_tokenize(const char *line, size_t len, lp_access_line *out);

/* Time syntaxes. Each returns NULL and the instant in UTC seconds, or a
 * static reason. local_offset is only used by the zone-less syntax:
 * it is called with the civil time read and returns the zone's offset
 * (seconds east of UTC) at that local time. */
typedef int32_t (*lp_local_offset_fn)(void *ctx, int64_t local_epoch);

/* "Jan 21 2026, 22:23:40" (%b %d %Y, %H:%M:%S, no zone: combined_zoneless) */
const char *lp_time_read_zoneless(lp_slice t, lp_local_offset_fn local_offset, void *ctx,
                                  int64_t *out);
/* "10/Oct/2000:13:55:36 -0700" (Apache %t, nginx $time_local) */
const char *lp_time_read_clf(lp_slice t, int64_t *out);

/* Which syntax a time slice is written in, from its first byte. */
static inline int lp_time_is_clf(lp_slice t) { return t.n && t.p[0] >= '0' && t.p[0] <= '9'; }

#endif
