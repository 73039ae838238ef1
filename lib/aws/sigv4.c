/*
 * sigv4.c: AWS Signature Version 4 for one request with headers.
 *
 * The steps are AWS's own (canonical request, string to sign, derived key,
 * signature); the unit test holds them to AWS's published test-suite vectors
 * and to a GetSecretValue request signed by botocore at a fixed time. The
 * canonical query is sorted here; the path and query arrive URI-encoded (the
 * only request logpipe signs is POST / with an empty query).
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws.h"
#include "tls/tls.h"

#define SHA256_LEN 32

static void sha256_hex(const void *data, size_t n, char out[2 * SHA256_LEN + 1])
{
    unsigned char md[SHA256_LEN];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[SHA256_LEN])
{
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

typedef struct hdr {
    char *name;       /* lower-cased */
    const char *value;
} hdr;

static int by_name(const void *a, const void *b) { return strcmp(((const hdr *)a)->name, ((const hdr *)b)->name); }

static int by_param(const void *a, const void *b)
{
    /* Sorted by name, then value: byte order of the encoded "name=value"
     * differs when one name is a prefix of another, so compare the parts. */
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
    int c = strncmp(x, y, nx < ny ? nx : ny);
    if (c || nx != ny)
        return c ? c : (nx < ny ? -1 : 1);
    return strcmp(x + nx, y + ny);
}

static void canonical_query(const char *query, lp_buf *out)
{
    char *copy = lp_xstrdup(query ? query : "");
    size_t n = 0, cap = 8;
    char **params = lp_xmalloc(cap * sizeof *params);
    for (char *save = NULL, *p = strtok_r(copy, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
        if (n == cap)
            params = lp_xrealloc(params, (cap *= 2) * sizeof *params);
        params[n++] = p;
    }
    qsort(params, n, sizeof *params, by_param);
    for (size_t i = 0; i < n; i++) {
        if (i)
            lp_buf_putc(out, '&');
        lp_buf_append(out, params[i], strlen(params[i]));
        if (!strchr(params[i], '='))
            lp_buf_putc(out, '=');
    }
    free(params);
    free(copy);
}

/* Header values are trimmed and inner runs of spaces collapse to one. */
static void append_trimmed(lp_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            lp_buf_putc(out, ' ');
        space = 0;
        lp_buf_putc(out, *v);
    }
}

void lp_sigv4_authorization(const lp_sigv4_request *r, const lp_aws_creds *c, lp_buf *out)
{
    lp_tls_init(); /* the first use of OpenSSL in a run: its configuration is fixed first */
    hdr *h = lp_xcalloc(r->nheaders, sizeof *h);
    for (size_t i = 0; i < r->nheaders; i++) {
        h[i].name = lp_xstrdup(r->headers[i].name);
        for (char *p = h[i].name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        h[i].value = r->headers[i].value;
    }
    qsort(h, r->nheaders, sizeof *h, by_name);

    lp_buf creq = LP_BUF_INIT, signed_names = LP_BUF_INIT, sts = LP_BUF_INIT;
    lp_buf_printf(&creq, "%s\n%s\n", r->method, r->path && *r->path ? r->path : "/");
    canonical_query(r->query, &creq);
    lp_buf_putc(&creq, '\n');
    for (size_t i = 0; i < r->nheaders; i++) {
        lp_buf_printf(&creq, "%s:", h[i].name);
        append_trimmed(&creq, h[i].value);
        lp_buf_putc(&creq, '\n');
        lp_buf_printf(&signed_names, "%s%s", i ? ";" : "", h[i].name);
    }
    char payload_hash[2 * SHA256_LEN + 1], creq_hash[2 * SHA256_LEN + 1];
    sha256_hex(r->payload ? r->payload : "", r->payload_len, payload_hash);
    lp_buf_printf(&creq, "\n%s\n%s", lp_buf_cstr(&signed_names), payload_hash);
    sha256_hex(creq.data, creq.len, creq_hash);

    char day[9];
    memcpy(day, r->amz_date, 8);
    day[8] = 0;
    lp_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date, day, r->region,
                  r->service, creq_hash);

    lp_buf secret = LP_BUF_INIT;
    lp_buf_printf(&secret, "AWS4%s", c->secret_access_key);
    unsigned char k[SHA256_LEN], sig[SHA256_LEN];
    hmac(secret.data, secret.len, day, k);
    hmac(k, sizeof k, r->region, k);
    hmac(k, sizeof k, r->service, k);
    hmac(k, sizeof k, "aws4_request", k);
    hmac(k, sizeof k, lp_buf_cstr(&sts), sig);
    explicit_bzero(k, sizeof k);
    lp_buf_wipe(&secret);

    lp_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=",
                  c->access_key_id, day, r->region, r->service, lp_buf_cstr(&signed_names));
    for (unsigned i = 0; i < SHA256_LEN; i++)
        lp_buf_printf(out, "%02x", sig[i]);

    for (size_t i = 0; i < r->nheaders; i++)
        free(h[i].name);
    free(h);
    lp_buf_free(&creq);
    lp_buf_free(&signed_names);
    lp_buf_free(&sts);
}
