/*
 * error.h: how the library reports failure, and the process exit codes.
 *
 * Library calls return 0 or -1 and fill an lp_error with a one-line message
 * that names what was wrong and which option or setting is at fault, plus the
 * exit code the CLI should end with. Keeping the code with the message means
 * the CLI never has to guess which class of failure it is looking at.
 * Messages never contain credentials (see docs/guarantees.md).
 */
#ifndef LP_ERROR_H
#define LP_ERROR_H

#include <stdio.h>

enum lp_exit {
    LP_EXIT_OK = 0,
    LP_EXIT_IO = 1,      /* input/output error, internal failure */
    LP_EXIT_USAGE = 2,   /* bad flag, bad option value, bad configuration */
    LP_EXIT_KAFKA = 3,   /* Kafka unreachable or refused us */
    LP_EXIT_ES = 4,      /* Elasticsearch unreachable or not Elasticsearch */
    LP_EXIT_PARTIAL = 5, /* ran, but some messages were not delivered/committed */
};

/* The exit codes' one table: number, name and meaning, in the order of the
 * enum. `logpipe --help` and every command's --help print from it; the Airflow
 * operators keep their own copy of the meanings (they run where the binary
 * may be absent), and tests/integration/test_exit_codes.py holds the copy,
 * README's list and this table to the same words. */
typedef struct lp_exit_code {
    int code;
    const char *name;    /* a short identifier: usage, kafka, ... */
    const char *meaning; /* what the caller should read into it */
} lp_exit_code;

extern const lp_exit_code lp_exit_codes[];
extern const int lp_exit_ncodes;

/* Prints "<title> 0 ok, 1 input/output error, ..." for the codes listed in
 * `codes` (digits, e.g. "02345"), wrapped before 80 columns, ending ".\n". */
void lp_exit_codes_print(FILE *out, const char *title, const char *codes);

typedef struct lp_error {
    int code;
    char msg[1024];
} lp_error;

/* Sets e (if not NULL) and returns -1, so callers can `return lp_fail(...)`. */
int lp_fail(lp_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
