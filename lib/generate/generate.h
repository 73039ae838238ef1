/*
 * generate.h: synthetic access-log lines for demos, tests and benchmarks.
 *
 * Deterministic: the same seed and start time give the same bytes, so a test
 * can regenerate exactly what it produced. The mix is meant to look like real
 * traffic (skewed endpoint popularity, a status-code mix with errors, some
 * IPv6 clients, '-' referrers and sizes, query strings), because parsers and
 * index mappings are only tested by input that exercises them.
 */
#ifndef LP_GENERATE_H
#define LP_GENERATE_H

#include <stdint.h>

#include "core/buf.h"
#include "parse/parse.h"

typedef struct lp_gen_opts {
    lp_format format;       /* LP_FORMAT_COMBINED_ZONELESS (default), _COMBINED, _COMMON or _VHOST_COMBINED */
    uint64_t seed;
    int64_t start;          /* epoch seconds of the first line's timestamp */
    double malformed_ratio; /* 0..1: share of lines deliberately broken */
    int realistic;          /* 1: add the lines of requests that never completed, at the
                             * rates of docs/schema.md ("What a public server logs") */
} lp_gen_opts;

/* The formats the generator writes ("auto" is not one), for messages. */
#define LP_GEN_FORMAT_NAMES "combined_zoneless, combined, common, vhost_combined"

/* A format name the generator can write -> format; -1 otherwise. */
int lp_gen_format_from_name(const char *name);

typedef struct lp_gen lp_gen;

lp_gen *lp_gen_new(const lp_gen_opts *opts);
void lp_gen_free(lp_gen *g);
/* Appends one line, without a newline, to out. */
void lp_gen_line(lp_gen *g, lp_buf *out);

#endif
