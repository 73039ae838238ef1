/*
 * http.c: the one blocking HTTP call the AWS code makes (credentials
 * endpoints, GetSecretValue). Start-up only, so a plain easy handle per call.
 * Responses can hold credentials or secrets: the buffer is sized once for
 * the largest Secrets Manager answer, so it is not reallocated (which would
 * leave copies behind), and callers wipe it.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "aws/http_internal.h"
#include "tls/tls.h"

/* SecretString is at most 64 KiB; its JSON envelope and escaping add more. */
#define RESPONSE_RESERVE (256u << 10)

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    lp_buf *b = ctx;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap)
        return 0; /* larger than any answer we expect: fail rather than grow */
    lp_buf_append(b, p, len);
    return len;
}

/* AWS_CA_BUNDLE (the AWS SDKs' and CLI's variable) names the CA; otherwise
 * an https endpoint is verified with the system's trust store. */
static int set_trust(CURL *h, const char *url, char *err, size_t errlen)
{
    const char *ca = getenv("AWS_CA_BUNDLE");
    const lp_tls_store *system = NULL;
    if (!(ca && *ca) && !strncmp(url, "https://", 8)) {
        char peer[300];
        lp_error e;
        snprintf(peer, sizeof peer, "AWS at %.250s", url);
        if (!(system = lp_tls_system_store(peer, "AWS_CA_BUNDLE=FILE", &e))) {
            snprintf(err, errlen, "%s", e.msg);
            return -1;
        }
    }
    lp_tls_curl_trust(h, ca && *ca ? ca : NULL, NULL, system);
    return 0;
}

long lp_aws_http(const char *method, const char *url, const char *const *headers, size_t nheaders,
                 const char *body, long timeout_ms, lp_buf *resp, char *err, size_t errlen)
{
    lp_tls_init();
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    if (set_trust(h, url, err, errlen)) {
        curl_easy_cleanup(h);
        return LP_AWS_HTTP_NO_TRUST;
    }
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < nheaders; i++)
        list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:");
    lp_buf_reset(resp);
    if (resp->cap < RESPONSE_RESERVE)
        lp_buf_grow(resp, RESPONSE_RESERVE);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    lp_buf_cstr(resp);
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
    return status;
}
