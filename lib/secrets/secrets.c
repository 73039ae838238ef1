/*
 * secrets.c: resolving secret references (see secrets.h). Each scheme is a
 * small reader; the JSON field selection and the --secrets mapping are shared
 * by all three, so a value kept in a file while developing and in Secrets
 * Manager in production is read the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/aws.h"
#include "secrets/secrets.h"

static const struct {
    const char *prefix;
    lp_secret_kind kind;
} schemes[] = {{"aws-sm://", LP_SECRET_AWS_SM}, {"env://", LP_SECRET_ENV}, {"file://", LP_SECRET_FILE}};

int lp_secret_is_ref(const char *text)
{
    for (size_t i = 0; text && i < sizeof schemes / sizeof *schemes; i++)
        if (!strncmp(text, schemes[i].prefix, strlen(schemes[i].prefix)))
            return 1;
    return 0;
}

/* ?region=R, before or after #key */
static int take_query(const char *what, const char *text, char *q, lp_secret_ref *r, lp_error *e)
{
    char *save = NULL;
    for (char *p = strtok_r(q, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
        if (strncmp(p, "region=", 7) || !p[7] || strlen(p + 7) >= sizeof r->region)
            return lp_fail(e, LP_EXIT_USAGE, "%s: \"%s\": the only query parameter is ?region=REGION", what, text);
        snprintf(r->region, sizeof r->region, "%s", p + 7);
    }
    return 0;
}

int lp_secret_ref_parse(const char *what, const char *text, lp_secret_ref *r, lp_error *e)
{
    memset(r, 0, sizeof *r);
    size_t i = 0, n = sizeof schemes / sizeof *schemes;
    while (i < n && strncmp(text, schemes[i].prefix, strlen(schemes[i].prefix)))
        i++;
    if (i == n)
        return 0; /* a literal */
    r->kind = schemes[i].kind;
    char rest[1400];
    if (strlen(text) - strlen(schemes[i].prefix) >= sizeof rest)
        return lp_fail(e, LP_EXIT_USAGE, "%s: the reference is too long", what);
    snprintf(rest, sizeof rest, "%s", text + strlen(schemes[i].prefix));
    char *hash = strchr(rest, '#');
    if (hash) {
        *hash++ = 0;
        char *q = strchr(hash, '?');
        if (q) {
            *q++ = 0;
            if (take_query(what, text, q, r, e))
                return -1;
        }
        if (!*hash || strlen(hash) >= sizeof r->key)
            return lp_fail(e, LP_EXIT_USAGE, "%s: \"%s\": expected a JSON key after '#'", what, text);
        memcpy(r->key, hash, strlen(hash) + 1);
    }
    char *q = strchr(rest, '?');
    if (q) {
        *q++ = 0;
        if (take_query(what, text, q, r, e))
            return -1;
    }
    if (*r->region && r->kind != LP_SECRET_AWS_SM)
        return lp_fail(e, LP_EXIT_USAGE, "%s: \"%s\": ?region= applies to aws-sm:// only", what, text);
    if (!*rest)
        return lp_fail(e, LP_EXIT_USAGE, "%s: \"%s\": expected %s after %s", what, text,
                       r->kind == LP_SECRET_AWS_SM ? "a secret name or ARN"
                       : r->kind == LP_SECRET_ENV  ? "a variable name" : "an absolute path",
                       schemes[i].prefix);
    if (r->kind == LP_SECRET_FILE && rest[0] != '/')
        return lp_fail(e, LP_EXIT_USAGE, "%s: \"%s\": file:// takes an absolute path (file:///etc/logpipe/key)",
                       what, text);
    if (strlen(rest) >= sizeof r->id)
        return lp_fail(e, LP_EXIT_USAGE, "%s: the reference is too long", what);
    memcpy(r->id, rest, strlen(rest) + 1);
    return 0;
}

/* ---- the readers ------------------------------------------------------------------ */

char *lp_secret_take_env(const char *name)
{
    char *v = getenv(name);
    if (!v)
        return NULL;
    char *copy = lp_xstrdup(v);
    /* The environment block's "NAME=value" too, name included: it is what
     * /proc/<pid>/environ shows, and unsetenv only unlinks it. */
    size_t nl = strlen(name);
    char *entry = v - nl - 1;
    if (!memcmp(entry, name, nl) && entry[nl] == '=')
        explicit_bzero(entry, nl + 1 + strlen(v));
    else
        explicit_bzero(v, strlen(v));
    unsetenv(name);
    return copy;
}

static int read_env(const char *what, const lp_secret_ref *r, lp_buf *out, lp_error *e)
{
    char *v = lp_secret_take_env(r->id);
    if (!v)
        return lp_fail(e, LP_EXIT_USAGE, "%s: env://%s: the variable is not set", what, r->id);
    lp_buf_reset(out);
    lp_buf_append(out, v, strlen(v));
    lp_buf_cstr(out);
    lp_wipe_free(v);
    return 0;
}

/* Larger than any credential or certificate chain: a file this big is not a secret. */
#define FILE_MAX (1u << 20)

/* Read with lp_buf_read_file (O_NONBLOCK, so a FIFO or a device cannot block
 * start-up; regular files only), then refused unless owned by this user or
 * root (another owner can change it, whatever its mode) and unreadable by
 * others. Symbolic links are followed on purpose: Kubernetes mounts secrets,
 * and EKS its web identity token, as links into ..data/; the checks apply to
 * the target, through the descriptor that was read. */
static int read_file(const char *what, const lp_secret_ref *r, lp_buf *out, lp_error *e)
{
    struct stat st;
    if (lp_buf_read_file(out, r->id, FILE_MAX, &st))
        return lp_fail(e, LP_EXIT_USAGE, "%s: file://%s: %s", what, r->id,
                       errno == EINVAL ? "not a regular file (FIFOs, devices and directories are refused)"
                       : errno == EFBIG ? "larger than 1 MiB, which no credential is" : strerror(errno));
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        lp_buf_wipe(out);
        return lp_fail(e, LP_EXIT_USAGE, "%s: file://%s: owned by uid %u, neither this user (uid %u) nor root: "
                       "another user could change it; chown it", what, r->id, (unsigned)st.st_uid,
                       (unsigned)geteuid());
    }
    if (st.st_mode & 077) {
        lp_buf_wipe(out);
        return lp_fail(e, LP_EXIT_USAGE, "%s: file://%s: mode %04o lets other users read it: chmod 600 it", what,
                       r->id, (unsigned)(st.st_mode & 07777));
    }
    while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
        out->data[--out->len] = 0; /* the newline an editor adds is not part of a key */
    return 0;
}

static void describe(const lp_secret_ref *r, char *out, size_t n)
{
    static const char *names[] = {"", "env://", "file://", "aws-sm://"};
    snprintf(out, n, "%s%s%s%s", names[r->kind], r->id, *r->key ? "#" : "", r->key);
}

/* Replaces out (a JSON object) with its field r->key. */
static int select_key(const char *what, const lp_secret_ref *r, lp_buf *out, lp_error *e)
{
    char ref[1400];
    describe(r, ref, sizeof ref);
    json_malloc_t m;
    json_free_t f;
    lp_aws_json_wiping_begin(&m, &f);
    json_t *j = json_loadb(out->data, out->len, 0, NULL);
    json_t *v = json_object_get(j, r->key);
    int rc = 0;
    if (!json_is_object(j)) {
        rc = lp_fail(e, LP_EXIT_USAGE, "%s: %s: the value is not a JSON object, so it has no key \"%s\"", what,
                     ref, r->key);
    } else if (!json_is_string(v)) {
        rc = lp_fail(e, LP_EXIT_USAGE, "%s: %s: %s", what, ref,
                     v ? "the key's value is not a string" : "no such key in the secret");
    } else {
        lp_buf field = LP_BUF_INIT;
        lp_buf_grow(&field, json_string_length(v) + 1);
        lp_buf_append(&field, json_string_value(v), json_string_length(v));
        lp_buf_cstr(&field);
        lp_buf_wipe(out);
        *out = field;
    }
    json_decref(j);
    lp_aws_json_wiping_end(m, f);
    return rc;
}

/* The value text stands for, whole: a JSON object stays one. */
static int resolve_any(const char *what, const char *text, lp_secret_ref *r, lp_buf *out, lp_error *e)
{
    if (lp_secret_ref_parse(what, text, r, e))
        return -1;
    int rc = 0;
    switch (r->kind) {
    case LP_SECRET_LITERAL:
        lp_buf_reset(out);
        lp_buf_append(out, text, strlen(text));
        lp_buf_cstr(out);
        return 0;
    case LP_SECRET_ENV: rc = read_env(what, r, out, e); break;
    case LP_SECRET_FILE: rc = read_file(what, r, out, e); break;
    case LP_SECRET_AWS_SM: {
        lp_error ae;
        if ((rc = lp_aws_get_secret(r->id, *r->region ? r->region : NULL, out, &ae)))
            lp_fail(e, ae.code, "%s: %s", what, ae.msg);
        break;
    }
    }
    if (!rc && *r->key)
        rc = select_key(what, r, out, e);
    if (rc)
        lp_buf_wipe(out);
    return rc;
}

static int is_json_object(const lp_buf *v)
{
    size_t i = 0;
    while (i < v->len && strchr(" \t\r\n", v->data[i]))
        i++;
    if (i == v->len || v->data[i] != '{')
        return 0;
    json_malloc_t m;
    json_free_t f;
    lp_aws_json_wiping_begin(&m, &f);
    json_t *j = json_loadb(v->data, v->len, 0, NULL);
    int object = json_is_object(j);
    json_decref(j);
    lp_aws_json_wiping_end(m, f);
    return object;
}

int lp_secret_resolve(const char *what, const char *text, lp_buf *out, lp_error *e)
{
    lp_secret_ref r;
    if (resolve_any(what, text, &r, out, e))
        return -1;
    if (r.kind != LP_SECRET_LITERAL && !*r.key && is_json_object(out)) {
        /* A --secrets secret is one JSON object: without #key the whole of it
         * would become this one value, and then a message quoting it. */
        lp_buf_wipe(out);
        char ref[1400];
        describe(&r, ref, sizeof ref);
        return lp_fail(e, LP_EXIT_USAGE, "%s: %s holds a JSON object, not one value: did you forget #key? "
                       "(%s#KEY selects one field)", what, ref, ref);
    }
    return 0;
}

/* ---- --secrets: one JSON object onto many settings ------------------------------ */

static const struct {
    const char *key; /* matched case-insensitively */
    size_t field;
    const char *option; /* what it sets, for lp_secret_key_option */
} mapping[] = {
    {"kafka_bootstrap_server", offsetof(lp_secret_settings, brokers), "--brokers"},
    {"kafka_bootstrap_servers", offsetof(lp_secret_settings, brokers), "--brokers"},
    {"kafka_username", offsetof(lp_secret_settings, kafka_username), "sasl.username"},
    {"kafka_secret", offsetof(lp_secret_settings, kafka_password), "sasl.password"},
    {"kafka_password", offsetof(lp_secret_settings, kafka_password), "sasl.password"},
    {"kafka_sasl_mechanism", offsetof(lp_secret_settings, kafka_mechanism), "sasl.mechanisms"},
    {"kafka_security_protocol", offsetof(lp_secret_settings, kafka_protocol), "security.protocol"},
    {"kafka_ca_pem", offsetof(lp_secret_settings, kafka_ca_pem), "ssl.ca.pem"},
    {"elasticsearch_url", offsetof(lp_secret_settings, es_url), "--es"},
    {"elasticsearch_api_key", offsetof(lp_secret_settings, es_api_key), "--es-api-key"},
    {"elasticsearch_username", offsetof(lp_secret_settings, es_username), "--es-user"},
    {"elasticsearch_password", offsetof(lp_secret_settings, es_password), "--es-password"},
    {"elasticsearch_ca_pem", offsetof(lp_secret_settings, es_ca_pem), "--es-ca"},
};

const char *lp_secret_key_option(const char *json_key)
{
    for (size_t i = 0; i < sizeof mapping / sizeof *mapping; i++)
        if (!strcasecmp(json_key, mapping[i].key))
            return mapping[i].option;
    return NULL;
}

#define FIELD(s, off) ((char **)((char *)(s) + (off)))

int lp_secret_settings_load(const char *ref, lp_secret_settings *s, lp_error *e)
{
    memset(s, 0, sizeof *s);
    lp_secret_ref r;
    if (lp_secret_ref_parse("--secrets", ref, &r, e))
        return -1;
    if (r.kind == LP_SECRET_LITERAL)
        return lp_fail(e, LP_EXIT_USAGE, "--secrets: expected a reference (aws-sm://NAME, env://NAME or "
                       "file:///path), got something else");
    if (*r.key)
        return lp_fail(e, LP_EXIT_USAGE, "--secrets: the whole JSON object is read: drop the \"#%s\"", r.key);
    lp_buf text = LP_BUF_INIT;
    if (resolve_any("--secrets", ref, &r, &text, e))
        return -1;
    json_malloc_t m;
    json_free_t f;
    lp_aws_json_wiping_begin(&m, &f);
    json_t *j = json_loadb(text.data, text.len, 0, NULL);
    int rc = 0;
    if (!json_is_object(j)) {
        /* jerr.text can quote the input: say only that it is not an object. */
        char name[1400];
        describe(&r, name, sizeof name);
        rc = lp_fail(e, LP_EXIT_USAGE, "--secrets: %s: the value is not a JSON object%s", name,
                     j ? "" : " (invalid JSON)");
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            for (size_t i = 0; i < sizeof mapping / sizeof *mapping; i++) {
                if (strcasecmp(key, mapping[i].key))
                    continue;
                if (!json_is_string(v)) {
                    rc = lp_fail(e, LP_EXIT_USAGE, "--secrets: key \"%s\" must be a string", key);
                    break;
                }
                char **dst = FIELD(s, mapping[i].field);
                lp_wipe_free(*dst);
                *dst = lp_xstrdup(json_string_value(v));
            }
        }
    }
    json_decref(j);
    lp_aws_json_wiping_end(m, f);
    lp_buf_wipe(&text);
    if (rc)
        lp_secret_settings_wipe(s);
    return rc;
}

void lp_secret_settings_wipe(lp_secret_settings *s)
{
    for (size_t i = 0; i < sizeof mapping / sizeof *mapping; i++) {
        char **p = FIELD(s, mapping[i].field);
        lp_wipe_free(*p);
        *p = NULL;
    }
}
