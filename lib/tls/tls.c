/*
 * tls.c: the one decision of which CA certificates logpipe's TLS clients
 * trust (see tls.h), and the OpenSSL start-up that makes the carried
 * libraries behave the same on every Linux.
 *
 * The well-known bundles are those Go's crypto/x509 tries on Linux, in the
 * order a Debian, Red Hat, SUSE or Alpine machine has them. The choice is
 * made once per process: every client then trusts the same file, and -v
 * reports it once.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tls/tls.h"

const char *const lp_tls_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Gentoo, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* RHEL, Fedora, Amazon Linux */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* the same, where the link is missing */
    "/etc/ssl/ca-bundle.pem",                            /* SUSE */
    "/etc/ssl/cert.pem",                                 /* Alpine */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
    NULL,
};

static pthread_once_t openssl_once = PTHREAD_ONCE_INIT;

static void init_openssl(void)
{
    const char *conf = getenv("OPENSSL_CONF");
    OPENSSL_init_crypto(conf && *conf ? OPENSSL_INIT_LOAD_CONFIG : OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}

void lp_tls_init(void) { pthread_once(&openssl_once, init_openssl); }

static struct {
    int looked_up, verbose;
    lp_tls_store store; /* file and dir both NULL: none found */
    char path[4096];
    char why_not[640]; /* when none: what was tried */
} system_store;

void lp_tls_set_verbose(int on) { system_store.verbose = on; }

static int is_kind(const char *path, mode_t kind)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind && (kind != S_IFREG || st.st_size > 0);
}

/* Fills system_store from the environment and the file system. */
static void look_up(void)
{
    const char *file = getenv("SSL_CERT_FILE"), *dir = getenv("SSL_CERT_DIR");
    lp_tls_store *s = &system_store.store;
    if (file && *file) {
        if (!is_kind(file, S_IFREG)) {
            snprintf(system_store.why_not, sizeof system_store.why_not,
                     "SSL_CERT_FILE=%s is not a readable, non-empty file (%s)", file,
                     errno ? strerror(errno) : "empty or not a regular file");
            return;
        }
        snprintf(system_store.path, sizeof system_store.path, "%s", file);
        s->file = system_store.path;
        s->origin = "SSL_CERT_FILE";
        return;
    }
    if (dir && *dir) {
        if (!is_kind(dir, S_IFDIR)) {
            snprintf(system_store.why_not, sizeof system_store.why_not, "SSL_CERT_DIR=%s is not a folder", dir);
            return;
        }
        snprintf(system_store.path, sizeof system_store.path, "%s", dir);
        s->dir = system_store.path;
        s->origin = "SSL_CERT_DIR";
        return;
    }
    size_t n = (size_t)snprintf(system_store.why_not, sizeof system_store.why_not,
                                "SSL_CERT_FILE and SSL_CERT_DIR are unset and none of the system bundles exists (");
    for (size_t i = 0; lp_tls_bundles[i]; i++) {
        if (is_kind(lp_tls_bundles[i], S_IFREG)) {
            s->file = lp_tls_bundles[i];
            s->origin = "the first well-known system bundle that exists";
            return;
        }
        if (n < sizeof system_store.why_not)
            n += (size_t)snprintf(system_store.why_not + n, sizeof system_store.why_not - n, "%s%s",
                                  i ? ", " : "", lp_tls_bundles[i]);
    }
    if (n < sizeof system_store.why_not)
        snprintf(system_store.why_not + n, sizeof system_store.why_not - n, ")");
}

const lp_tls_store *lp_tls_system_store(const char *peer, const char *option, lp_error *e)
{
    if (!system_store.looked_up) {
        errno = 0;
        look_up();
        system_store.looked_up = 1;
        const lp_tls_store *s = &system_store.store;
        if (system_store.verbose && (s->file || s->dir))
            fprintf(stderr, "logpipe: TLS: trusting the CA certificates in %s (%s)\n", s->file ? s->file : s->dir,
                    s->origin);
    }
    if (system_store.store.file || system_store.store.dir)
        return &system_store.store;
    lp_fail(e, LP_EXIT_USAGE,
            "TLS to %s: no CA certificates to verify it with: %s. Set SSL_CERT_FILE to a PEM bundle of CA "
            "certificates, or name the CA with %s",
            peer, system_store.why_not, option);
    return NULL;
}

void lp_tls_curl_trust(CURL *h, const char *ca_file, const char *ca_pem, const lp_tls_store *system)
{
    /* Debian's libcurl has /etc/ssl/certs built in: cleared, so that only
     * what is chosen here is trusted, on every machine alike. */
    curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    if (ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    if (ca_pem) {
        struct curl_blob pem = {(void *)ca_pem, strlen(ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &pem);
    }
    if (ca_file || ca_pem || !system)
        return;
    if (system->file)
        curl_easy_setopt(h, CURLOPT_CAINFO, system->file);
    else
        curl_easy_setopt(h, CURLOPT_CAPATH, system->dir);
}
