/*
 * conf.c: librdkafka properties, the way kcat passes them: an ordered list
 * of key=value applied in turn, where the first error names the property.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "kafka/kafka.h"
#include "tls/tls.h"

int lp_kafka_props_set(lp_kafka_props *p, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    char *kv = lp_xmalloc(kl + vl + 2);
    memcpy(kv, key, kl);
    kv[kl] = '=';
    memcpy(kv + kl + 1, value, vl + 1);
    p->kv = lp_xrealloc(p->kv, (p->n + 1) * sizeof *p->kv);
    p->kv[p->n++] = kv;
    return 0;
}

int lp_kafka_props_add(lp_kafka_props *p, const char *kv, lp_error *e)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return lp_fail(e, LP_EXIT_USAGE, "-X %s: expected key=value (a librdkafka property)", kv);
    p->kv = lp_xrealloc(p->kv, (p->n + 1) * sizeof *p->kv);
    p->kv[p->n++] = lp_xstrdup(kv);
    return 0;
}

void lp_kafka_props_free(lp_kafka_props *p)
{
    for (size_t i = 0; i < p->n; i++) {
        /* Properties may carry SASL passwords: wipe before freeing. */
        explicit_bzero(p->kv[i], strlen(p->kv[i]));
        free(p->kv[i]);
    }
    free(p->kv);
    p->kv = NULL;
    p->n = 0;
}

/* Credentials (references allowed); `secret`: refused as a literal. */
static const struct {
    const char *key;
    int secret;
} credentials[] = {
    {"sasl.username", 0},         {"sasl.password", 1},
    {"ssl.key.password", 1},      {"ssl.key.pem", 1},
    {"ssl.keystore.password", 1}, {"ssl.certificate.pem", 0},
    {"sasl.oauthbearer.client.id", 0}, {"sasl.oauthbearer.client.secret", 1},
    {"sasl.oauthbearer.config", 0},
};

static int credential_index(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof credentials / sizeof *credentials; i++)
        if (strlen(credentials[i].key) == len && !strncasecmp(key, credentials[i].key, len))
            return (int)i;
    return -1;
}

int lp_kafka_is_credential(const char *key, size_t len) { return credential_index(key, len) >= 0; }

int lp_kafka_is_secret(const char *key, size_t len)
{
    int i = credential_index(key, len);
    return i >= 0 && credentials[i].secret;
}

/* Values never shown in a message: the credentials, and by name anything
 * else that looks like one (librdkafka adds sasl.oauthbearer.* keys). */
static int is_hidden_key(const char *key, size_t n)
{
    return lp_kafka_is_credential(key, n) || (n >= 8 && !strncmp(key + n - 8, "password", 8)) ||
           (n >= 6 && !strncmp(key + n - 6, "secret", 6)) || strstr(key, "sasl.oauthbearer") != NULL;
}

/* The last connection-level error librdkafka reported. A failed start-up
 * check otherwise only knows that the broker "did not answer"; with this it
 * can say a password was refused or a certificate did not verify. */
static struct {
    int err;
    char reason[400];
} last_error;

void lp_kafka_note_error(int err, const char *reason)
{
    /* Authentication and TLS failures are the ones worth reporting: keep
     * them over the "all brokers down" that follows them. */
    int keep = last_error.err == RD_KAFKA_RESP_ERR__AUTHENTICATION || last_error.err == RD_KAFKA_RESP_ERR__SSL;
    if (keep && err != RD_KAFKA_RESP_ERR__AUTHENTICATION && err != RD_KAFKA_RESP_ERR__SSL)
        return;
    last_error.err = err;
    snprintf(last_error.reason, sizeof last_error.reason, "%s", reason ? reason : "");
}

static void note_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    lp_kafka_note_error(err, reason);
}

/* The property name of "key=value" into key[]; 0 if it does not fit. */
static size_t key_of(const char *kv, char *key, size_t len)
{
    size_t kl = strcspn(kv, "=");
    if (kl >= len)
        return 0;
    memcpy(key, kv, kl);
    key[kl] = '\0';
    return kl;
}

/* 1 when the property has a non-empty value. */
static int conf_has(rd_kafka_conf_t *conf, const char *key, char *value, size_t len)
{
    size_t n = len;
    return rd_kafka_conf_get(conf, key, value, &n) == RD_KAFKA_CONF_OK && *value;
}

/* TLS to the brokers with no CA named (ssl.ca.location, ssl.ca.pem):
 * librdkafka would look in the carried OpenSSL's built-in folder, Debian's
 * /usr/lib/ssl/certs. It gets the system's trust store instead (lib/tls). */
static int apply_system_trust(rd_kafka_conf_t *conf, lp_error *e)
{
    char v[512];
    if (!conf_has(conf, "security.protocol", v, sizeof v) || (strcasecmp(v, "ssl") && strcasecmp(v, "sasl_ssl")))
        return 0;
    if (conf_has(conf, "ssl.ca.location", v, sizeof v) || conf_has(conf, "ssl.ca.pem", v, sizeof v) ||
        (conf_has(conf, "enable.ssl.certificate.verification", v, sizeof v) && !strcmp(v, "false")))
        return 0;
    char peer[300] = "Kafka";
    if (conf_has(conf, "bootstrap.servers", v, sizeof v))
        snprintf(peer, sizeof peer, "Kafka at %.250s", v);
    const lp_tls_store *s = lp_tls_system_store(peer, "-X ssl.ca.location=FILE (or ssl.ca.pem)", e);
    if (!s)
        return -1;
    char err[256];
    if (rd_kafka_conf_set(conf, "ssl.ca.location", s->file ? s->file : s->dir, err, sizeof err) != RD_KAFKA_CONF_OK)
        return lp_fail(e, LP_EXIT_USAGE, "ssl.ca.location=%s (the system's trust store): %s",
                       s->file ? s->file : s->dir, err);
    return 0;
}

rd_kafka_conf_t *lp_kafka_conf_new(const lp_kafka_props *p, lp_error *e)
{
    lp_tls_init();
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_error_cb(conf, note_error_cb);
    char err[256];
    for (size_t i = 0; i < p->n; i++) {
        const char *kv = p->kv[i];
        char key[256];
        size_t kl = key_of(kv, key, sizeof key);
        if (!kl) {
            rd_kafka_conf_destroy(conf);
            lp_fail(e, LP_EXIT_USAGE, "-X: property name too long");
            return NULL;
        }
        const char *eq = kv + kl;
        if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            if (is_hidden_key(key, kl))
                lp_fail(e, LP_EXIT_USAGE, "-X %s: %s", key, err);
            else
                lp_fail(e, LP_EXIT_USAGE, "-X %s=%s: %s", key, eq + 1, err);
            return NULL;
        }
    }
    if (apply_system_trust(conf, e)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* The last user property that sets key, for the error message. */
static const char *last_setting(const lp_kafka_props *user, const char *key)
{
    const char *found = NULL;
    char k[256];
    for (size_t i = 0; i < user->n; i++)
        if (key_of(user->kv[i], k, sizeof k) && !strcmp(k, key))
            found = user->kv[i];
    return found;
}

int lp_kafka_refuse_changes(const lp_kafka_props *user, const lp_kafka_fixed *fixed, size_t n, lp_error *e)
{
    rd_kafka_conf_t *ours = rd_kafka_conf_new();
    char err[256], key[256], a[512], b[512];
    for (size_t i = 0; i < n; i++)
        if (fixed[i].value)
            rd_kafka_conf_set(ours, fixed[i].key, fixed[i].value, err, sizeof err);
    rd_kafka_conf_t *theirs = rd_kafka_conf_dup(ours);
    for (size_t i = 0; i < user->n; i++)
        if (key_of(user->kv[i], key, sizeof key))
            rd_kafka_conf_set(theirs, key, user->kv[i] + strlen(key) + 1, err, sizeof err);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *given = last_setting(user, fixed[i].key);
        size_t al = sizeof a, bl = sizeof b;
        int changed = fixed[i].value ? rd_kafka_conf_get(ours, fixed[i].key, a, &al) == RD_KAFKA_CONF_OK &&
                                           rd_kafka_conf_get(theirs, fixed[i].key, b, &bl) == RD_KAFKA_CONF_OK &&
                                           strcmp(a, b)
                                     : given != NULL;
        if (changed)
            rc = lp_fail(e, LP_EXIT_USAGE, "-X %s is refused: %s", given ? given : fixed[i].key, fixed[i].why);
    }
    rd_kafka_conf_destroy(ours);
    rd_kafka_conf_destroy(theirs);
    return rc;
}

/* A DNS name or IPv4 address, or a bracketed IPv6 address: nothing else
 * (a password taken for a broker list by mistake fails here). */
static int host_ok(const char *h, size_t n)
{
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
        allowed = "0123456789abcdefABCDEF:.";
    }
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!h[i] || !strchr(allowed, h[i]))
            return 0;
    return 1;
}

int lp_kafka_check_brokers(const char *brokers, lp_error *e)
{
    if (!brokers || !*brokers)
        return lp_fail(e, LP_EXIT_USAGE, "--brokers is required (host:port[,host:port...])");
    const char *s = brokers;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *scheme = memchr(s, ':', n);
        if (scheme && n - (size_t)(scheme - s) > 3 && !strncmp(scheme, "://", 3)) {
            n -= (size_t)(scheme + 3 - s);
            s = scheme + 3;
        }
        const char *colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ':')
                colon = s + i;
        int ok = colon && colon > s && (size_t)(colon - s) < n - 1;
        for (const char *q = colon ? colon + 1 : s; ok && q < s + n; q++)
            ok = isdigit((unsigned char)*q);
        if (ok)
            ok = host_ok(s, (size_t)(colon - s));
        if (ok) {
            long port = strtol(colon + 1, NULL, 10);
            ok = port > 0 && port < 65536;
        }
        if (!ok)
            return lp_fail(e, LP_EXIT_USAGE,
                           "--brokers: \"%.*s\" is not host:port (in \"%s\")", (int)n, s, brokers);
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

int lp_kafka_metadata_checked(rd_kafka_t *rk, const char *brokers, int all_topics, int timeout_ms,
                              const struct rd_kafka_metadata **md, lp_error *e)
{
    *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, all_topics, NULL, md, timeout_ms);
    if (err) {
        /* Serve the error events that explain it. */
        if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (m && m->err)
                lp_kafka_note_error(m->err, rd_kafka_message_errstr(m));
            if (m)
                rd_kafka_message_destroy(m);
        } else {
            rd_kafka_poll(rk, 100);
        }
        const char *why = last_error.reason;
        if (last_error.err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
            return lp_fail(e, LP_EXIT_USAGE, "Kafka authentication failed at %s (check sasl.username, "
                           "sasl.password and sasl.mechanisms): %s", brokers, why);
        if (last_error.err == RD_KAFKA_RESP_ERR__SSL || strstr(why, "SSL"))
            return lp_fail(e, LP_EXIT_USAGE, "TLS to Kafka at %s failed (check ssl.ca.location or ssl.ca.pem, "
                           "and security.protocol): %s", brokers, why);
        return lp_fail(e, LP_EXIT_KAFKA, "Kafka at %s (--brokers) did not answer within %d ms: %s%s%s",
                       brokers, timeout_ms, rd_kafka_err2str(err), *why ? "; last error: " : "", why);
    }
    return 0;
}

int lp_kafka_check_reachable(rd_kafka_t *rk, const char *brokers, int timeout_ms, lp_error *e)
{
    const struct rd_kafka_metadata *md;
    if (lp_kafka_metadata_checked(rk, brokers, 0, timeout_ms, &md, e))
        return -1;
    rd_kafka_metadata_destroy(md);
    return 0;
}

rd_kafka_resp_err_t lp_kafka_topic_error(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (!err)
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return err;
}

rd_kafka_t *lp_kafka_consumer_new(rd_kafka_conf_t *conf, lp_error *e)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        lp_fail(e, LP_EXIT_USAGE, "cannot create the Kafka consumer: %s", err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}
