/*
 * conf.c: librdkafka properties, the way kcat passes them: an ordered list
 * of key=value applied in turn, where the first error names the property.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "kafka/kafka.h"

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

static int is_secret_key(const char *key, size_t n)
{
    return (n >= 8 && !strncmp(key + n - 8, "password", 8)) ||
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

rd_kafka_conf_t *lp_kafka_conf_new(const lp_kafka_props *p, lp_error *e)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_error_cb(conf, note_error_cb);
    char err[256];
    for (size_t i = 0; i < p->n; i++) {
        const char *kv = p->kv[i], *eq = strchr(kv, '=');
        size_t kl = (size_t)(eq - kv);
        char key[256];
        if (kl >= sizeof key) {
            rd_kafka_conf_destroy(conf);
            lp_fail(e, LP_EXIT_USAGE, "-X: property name too long");
            return NULL;
        }
        memcpy(key, kv, kl);
        key[kl] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            if (is_secret_key(key, kl))
                lp_fail(e, LP_EXIT_USAGE, "-X %s: %s", key, err);
            else
                lp_fail(e, LP_EXIT_USAGE, "-X %s=%s: %s", key, eq + 1, err);
            return NULL;
        }
    }
    return conf;
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
        for (const char *q = s; ok && q < colon; q++)
            ok = !isspace((unsigned char)*q);
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

int lp_kafka_check_reachable(rd_kafka_t *rk, const char *brokers, int timeout_ms, lp_error *e)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
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
