/*
 * secrets.h: credentials and endpoints given by reference, resolved once at
 * start-up, so that no secret has to sit in argv, a DAG or a config file.
 *
 *   aws-sm://SECRET_ID[?region=R][#json_key]   AWS Secrets Manager
 *   env://NAME[#json_key]                      an environment variable (cleared once read)
 *   file:///path[#json_key]                    a regular file of mode 0600 or stricter,
 *                                              owned by this user or root
 *
 * With #json_key the value is a JSON object and the key selects one field.
 * Anything else is a literal value. `--secrets REF` loads a whole JSON object
 * whose keys map onto logpipe's settings (lp_secret_settings_load; the
 * mapping, which accepts the MWAA secret's key names such as kafka_secret,
 * is in docs/secrets.md).
 */
#ifndef LP_SECRETS_H
#define LP_SECRETS_H

#include "core/buf.h"
#include "core/error.h"

typedef enum { LP_SECRET_LITERAL, LP_SECRET_ENV, LP_SECRET_FILE, LP_SECRET_AWS_SM } lp_secret_kind;

typedef struct lp_secret_ref {
    lp_secret_kind kind;
    char id[1024];   /* variable name, file path or secret id (name or ARN) */
    char key[256];   /* JSON field; "" for the whole value */
    char region[64]; /* aws-sm only; "" for the default region */
} lp_secret_ref;

/* Takes a variable out of the environment: a copy (the caller wipes it
 * with lp_wipe_free) or NULL when unset; the environment's "NAME=value" is
 * zeroed and removed, so /proc/<pid>/environ no longer shows it. */
char *lp_secret_take_env(const char *name);

/* 1 when text starts with one of the reference schemes. */
int lp_secret_is_ref(const char *text);

/* Splits a reference into r; a literal gives kind LP_SECRET_LITERAL. Errors
 * name the option (`what`) and the part that is malformed. */
int lp_secret_ref_parse(const char *what, const char *text, lp_secret_ref *r, lp_error *e);

/* The one value text stands for, into out (NUL-terminated; wipe it with
 * lp_buf_wipe). A reference without #json_key that holds a JSON object is
 * refused ("did you forget #key?"): every caller wants a single value. Errors
 * name the option and the reference, never a value. */
int lp_secret_resolve(const char *what, const char *text, lp_buf *out, lp_error *e);

/* What a --secrets object can set. Every field is NULL or a heap string the
 * owner wipes with lp_secret_settings_wipe. */
typedef struct lp_secret_settings {
    char *brokers, *kafka_username, *kafka_password, *kafka_mechanism, *kafka_protocol, *kafka_ca_pem;
    char *es_url, *es_api_key, *es_username, *es_password, *es_ca_pem;
} lp_secret_settings;

/* Resolves ref (any reference form, without #json_key) to a JSON object and
 * fills s from the keys it knows; unknown keys are left alone (one
 * secret may serve other consumers too). */
int lp_secret_settings_load(const char *ref, lp_secret_settings *s, lp_error *e);
void lp_secret_settings_wipe(lp_secret_settings *s);

/* The setting a --secrets key maps onto ("--brokers", "sasl.password", ...),
 * or NULL for a key logpipe does not know. */
const char *lp_secret_key_option(const char *json_key);

#endif
