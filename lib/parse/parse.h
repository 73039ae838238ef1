/*
 * parse.h: access-log line -> Elastic Common Schema JSON document.
 *
 * This is the contract between the log formats (lib/formats/) and everything
 * that consumes parsed documents (`logpipe parse`, `logpipe consume`, the
 * benchmarks). One call parses one line straight from the caller's buffer and
 * appends one JSON object to the caller's output buffer: no regex, no
 * per-field allocation. docs/schema.md lists the fields.
 */
#ifndef LP_PARSE_H
#define LP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

typedef enum lp_format {
    LP_FORMAT_AUTO = 0, /* recognise each line's format on its own */
    LP_FORMAT_COMBINED_ZONELESS, /* combined's fields, a zone-less [Jan 21 2026, 22:23:40] read in --timezone */
    LP_FORMAT_COMBINED, /* Apache/nginx combined: [10/Oct/2000:13:55:36 -0700] + referrer/UA */
    LP_FORMAT_COMMON,   /* NCSA common log format: combined without referrer/UA */
    LP_FORMAT_VHOST_COMBINED, /* Apache's "%v:%p " + combined (Debian's other_vhosts_access.log) */
} lp_format;

/* All format names, "auto" first, for usage and error messages. */
#define LP_FORMAT_NAMES "auto, combined_zoneless, combined, common, vhost_combined"

/* "auto", "combined_zoneless", "combined", "common", "vhost_combined" ->
 * format; -1 when unknown. "seed" is accepted for combined_zoneless, the
 * name it was first given (DAG runs and scripts still pass it). */
int lp_format_from_name(const char *name);
const char *lp_format_name(lp_format f);

typedef struct lp_parse_opts {
    lp_format format;
    /* Zone for combined_zoneless's times: "UTC", "+05:30", "-0800",
     * or an IANA name such as "Europe/Paris". NULL means UTC. */
    const char *timezone;
    /* event.dataset (--dataset): NULL means LP_DATASET_DEFAULT. Elastic's
     * data stream naming logs-<dataset>-<namespace>: lower case letters,
     * digits, '_' and '.', at most 100 bytes (lp_parser_new checks). */
    const char *dataset;
    /* --keep-original: the whole line in event.original. */
    int keep_original;
} lp_parse_opts;

/* The ECS version every document declares in ecs.version: the one whose
 * field definitions docs/schema.md was checked against. */
#define LP_ECS_VERSION "8.11.0"
#define LP_DATASET_DEFAULT "access"

typedef struct lp_parser lp_parser;

/* Returns NULL and fills e (code LP_EXIT_USAGE, naming --timezone or
 * --dataset) when the options are invalid. */
lp_parser *lp_parser_new(const lp_parse_opts *opts, lp_error *e);
void lp_parser_free(lp_parser *p);

typedef struct lp_parse_result {
    const char *reject_reason; /* static string when the line was rejected */
    lp_format format;          /* the format the line was read as */
    int64_t timestamp;         /* @timestamp, seconds since the epoch, UTC */
} lp_parse_result;

/*
 * Parses line[0..len) (no trailing newline; may contain any bytes, NUL
 * included) and appends one JSON object, without a newline, to out.
 * Returns 0 on success. On reject returns -1, restores out->len to what it
 * was and sets res->reject_reason to a short static reason such as
 * "bad timestamp: day 30 does not exist in February".
 */
int lp_parse_line(lp_parser *p, const char *line, size_t len, lp_buf *out,
                  lp_parse_result *res);

#endif
