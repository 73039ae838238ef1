/*
 * test_tls.c: the system trust store decision (lib/tls) from the
 * environment: SSL_CERT_FILE, then SSL_CERT_DIR, a bad one refused with the
 * setting and the client's option named, and the Kafka configuration handed
 * the chosen file only when it speaks TLS and names no CA. The decision is
 * made once per process, so each case runs in a child of its own. The
 * well-known bundles in /etc are the integration tests' (test_bundle.py:
 * chroots laid out like Amazon Linux 2023, Debian and Alpine).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kafka/kafka.h"
#include "tls/tls.h"

static char dir[] = "/tmp/lp-tls-XXXXXX";
static char pem[64];

/* Runs fn in a child (a fresh, undecided process state); its failures count here. */
static void in_child(void (*fn)(void))
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(check_failures ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void cert_file_wins(void)
{
    setenv("SSL_CERT_FILE", pem, 1);
    setenv("SSL_CERT_DIR", dir, 1);
    lp_error e;
    const lp_tls_store *s = lp_tls_system_store("Elasticsearch at https://h", "--es-ca FILE", &e);
    CHECK(s != NULL);
    CHECK_STR(s ? s->file : NULL, pem);
    CHECK(s && !s->dir);
    CHECK_STR(s ? s->origin : NULL, "SSL_CERT_FILE");
}

static void cert_dir_when_no_file(void)
{
    unsetenv("SSL_CERT_FILE");
    setenv("SSL_CERT_DIR", dir, 1);
    lp_error e;
    const lp_tls_store *s = lp_tls_system_store("AWS at https://h", "AWS_CA_BUNDLE=FILE", &e);
    CHECK(s && !s->file);
    CHECK_STR(s ? s->dir : NULL, dir);
}

static void missing_cert_file_is_a_configuration_error(void)
{
    setenv("SSL_CERT_FILE", "/nonexistent/ca.pem", 1);
    lp_error e = {0};
    CHECK(lp_tls_system_store("Elasticsearch at https://h (--es)", "--es-ca FILE", &e) == NULL);
    CHECK_INT(e.code, LP_EXIT_USAGE);
    CHECK_CONTAINS(e.msg, "TLS to Elasticsearch at https://h (--es)");
    CHECK_CONTAINS(e.msg, "SSL_CERT_FILE=/nonexistent/ca.pem");
    CHECK_CONTAINS(e.msg, "--es-ca FILE");
    /* decided once: the same answer for the next client */
    CHECK(lp_tls_system_store("Kafka", "-X ssl.ca.location=FILE", &e) == NULL);
    CHECK_CONTAINS(e.msg, "-X ssl.ca.location=FILE");
}

static const char *conf_value(rd_kafka_conf_t *conf, const char *key, char *buf, size_t len)
{
    size_t n = len;
    return rd_kafka_conf_get(conf, key, buf, &n) == RD_KAFKA_CONF_OK ? buf : "";
}

static void kafka_gets_the_store_only_for_tls_without_a_ca(void)
{
    setenv("SSL_CERT_FILE", pem, 1);
    lp_error e;
    char v[512];
    const char *plaintext[] = {"security.protocol=plaintext"};
    const char *tls[] = {"security.protocol=SASL_SSL"};
    const char *named[] = {"security.protocol=ssl", "ssl.ca.location=/named/ca.pem"};
    struct {
        const char **kv;
        size_t n;
        const char *expect;
    } cases[] = {{plaintext, 1, ""}, {tls, 1, pem}, {named, 2, "/named/ca.pem"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lp_kafka_props p = {0};
        for (size_t k = 0; k < cases[i].n; k++)
            lp_kafka_props_add(&p, cases[i].kv[k], &e);
        rd_kafka_conf_t *conf = lp_kafka_conf_new(&p, &e);
        CHECK(conf != NULL);
        if (conf) {
            CHECK_STR(conf_value(conf, "ssl.ca.location", v, sizeof v), cases[i].expect);
            rd_kafka_conf_destroy(conf);
        }
        lp_kafka_props_free(&p);
    }
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    snprintf(pem, sizeof pem, "%s/ca.pem", dir);
    FILE *f = fopen(pem, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", f);
        fclose(f);
    }
    in_child(cert_file_wins);
    in_child(cert_dir_when_no_file);
    in_child(missing_cert_file_is_a_configuration_error);
    in_child(kafka_gets_the_store_only_for_tls_without_a_ca);
    unlink(pem);
    rmdir(dir);
    return CHECK_DONE();
}
