/*
 * json.h: the JSON string writer used on the hot path.
 *
 * Log lines are arbitrary bytes; JSON output must be valid UTF-8 whatever
 * comes in. lp_json_str copies runs of safe bytes with one memcpy, escapes
 * '"', '\\' and control characters (NUL included), and replaces every byte
 * that is not part of a well-formed UTF-8 sequence (overlongs, surrogates,
 * code points above U+10FFFF, truncated sequences) with U+FFFD, so a document
 * can always be indexed. Reading JSON (Elasticsearch responses) is jansson's
 * job; this file only writes.
 */
#ifndef LP_JSON_H
#define LP_JSON_H

#include "core/buf.h"

/* Appends s[0..n) as a quoted, escaped JSON string. */
void lp_json_str(lp_buf *b, const char *s, size_t n);

/* Appends the escaped body without the surrounding quotes. */
void lp_json_str_body(lp_buf *b, const char *s, size_t n);

/* As lp_json_str, for a field a web server wrote inside quotes: there \"
 * is a quote and \\ a backslash, so the backslash of those two pairs is
 * dropped. Any other backslash is kept as written (escaped as JSON): \xHH
 * is how the server chose to show a byte it would not log raw. */
void lp_json_str_unescaping(lp_buf *b, const char *s, size_t n);

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 if s[0..n) does
 * not start with one. Exposed for the fuzz and unit tests. */
size_t lp_utf8_seq_len(const unsigned char *s, size_t n);

#endif
