/*
 * tls.h: which certificates logpipe trusts, decided in one place for every
 * TLS client it has: libcurl (Elasticsearch, AWS) and librdkafka (Kafka).
 *
 * The bundle ships Debian's libcurl and OpenSSL, whose built-in paths
 * (/etc/ssl/certs/ca-certificates.crt, /usr/lib/ssl) exist on Debian only:
 * on Amazon Linux, RHEL, SUSE or Alpine they would find no certificate and
 * refuse every peer. So when the user names no CA (--es-ca, AWS_CA_BUNDLE,
 * -X ssl.ca.location / ssl.ca.pem), the clients are handed the machine's own
 * trust store, found the way OpenSSL and Go look for it: SSL_CERT_FILE, else
 * SSL_CERT_DIR, else the first well-known bundle that exists. None found is
 * a configuration error (exit 2) naming the paths tried and what to set:
 * there is no fallback to an unverified connection.
 */
#ifndef LP_TLS_H
#define LP_TLS_H

#include <curl/curl.h>

#include "core/error.h"

/* Where the machine's trust store is: exactly one of file and dir is set. */
typedef struct lp_tls_store {
    const char *file;   /* a PEM bundle of CA certificates */
    const char *dir;    /* an OpenSSL hashed certificate folder */
    const char *origin; /* why this one, for -v: "SSL_CERT_FILE", ... */
} lp_tls_store;

/* Fixes OpenSSL's configuration before any library initialises it: none is
 * read unless OPENSSL_CONF names a file. The carried libssl would otherwise
 * look for Debian's /usr/lib/ssl/openssl.cnf, present or not depending on the
 * machine. Called by every TLS client's constructor; idempotent. */
void lp_tls_init(void);

/* With on set, the first look-up of the system store prints on stderr which
 * file or folder was chosen and why (the commands' -v). */
void lp_tls_set_verbose(int on);

/* The machine's trust store for `peer` (e.g. "Elasticsearch at https://h"),
 * looked up once per process, at start-up (the clients' constructors, on
 * the main thread: not meant to be called from several threads). NULL when there is none, with e set to
 * LP_EXIT_USAGE naming the paths tried and `option`, the setting with which
 * the user can name a CA for this client instead. */
const lp_tls_store *lp_tls_system_store(const char *peer, const char *option, lp_error *e);

/* The well-known bundles, in the order they are tried (NULL-terminated). */
extern const char *const lp_tls_bundles[];

/* Sets a libcurl handle's trust: ca_file or ca_pem when the user named one,
 * else the system store. Exactly those, never libcurl's built-in paths. */
void lp_tls_curl_trust(CURL *h, const char *ca_file, const char *ca_pem, const lp_tls_store *system);

#endif
