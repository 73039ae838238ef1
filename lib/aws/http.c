/*
 * http.c: the blocking HTTP calls the AWS code makes (credentials
 * endpoints, STS, GetSecretValue). Start-up only, so a plain easy handle per
 * call. Responses can hold credentials or secrets: the buffer is sized once
 * for the largest answer accepted, so it is not reallocated (which would
 * leave copies behind), anything larger is refused, and callers wipe it.
 * No Accept-Encoding is sent and none is decoded, so the cap is also the
 * size of what is parsed.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/http_internal.h"
#include "tls/tls.h"

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
    if (resp->cap < LP_AWS_RESPONSE_MAX)
        lp_buf_grow(resp, LP_AWS_RESPONSE_MAX);
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
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LP_AWS_RESPONSE_MAX);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else if (rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, errlen, "the response is larger than %u KiB, more than any credentials or secret: refused",
                 LP_AWS_RESPONSE_MAX >> 10);
    else
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    if (rc != CURLE_OK) { /* a partial answer is wiped at once */
        explicit_bzero(resp->data, resp->cap);
        lp_buf_reset(resp);
    }
    lp_buf_cstr(resp);
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
    return status;
}

int lp_aws_url_parse(const char *text, lp_aws_url *u)
{
    memset(u, 0, sizeof *u);
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *url = NULL, *part = NULL;
    int rc = -1;
    if (!h || curl_url_set(h, CURLUPART_URL, text, 0) || curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) || curl_url_get(h, CURLUPART_URL, &url, 0))
        goto out;
    if ((strcmp(scheme, "http") && strcmp(scheme, "https")) || !*host || strlen(host) >= sizeof u->host ||
        strlen(url) >= sizeof u->url)
        goto out;
    u->userinfo = !curl_url_get(h, CURLUPART_USER, &part, 0) || !curl_url_get(h, CURLUPART_PASSWORD, &part, 0) ||
                  !curl_url_get(h, CURLUPART_OPTIONS, &part, 0);
    curl_free(part);
    part = NULL;
    u->query = !curl_url_get(h, CURLUPART_QUERY, &part, 0) || !curl_url_get(h, CURLUPART_FRAGMENT, &part, 0);
    curl_free(part);
    curl_url_get(h, CURLUPART_PORT, &port, 0);
    snprintf(u->scheme, sizeof u->scheme, "%s", scheme);
    snprintf(u->host, sizeof u->host, "%s", host);
    snprintf(u->authority, sizeof u->authority, "%s%s%s", host, port ? ":" : "", port ? port : "");
    snprintf(u->url, sizeof u->url, "%s", url);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(url);
    curl_url_cleanup(h);
    return rc;
}

long lp_aws_post(const lp_aws_url *url, const char *region, const char *service, const char *content_type,
                 const char *target, const char *body, const lp_aws_creds *c, lp_buf *resp, char *err,
                 size_t errlen)
{
    char amz_date[17];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    lp_aws_header h[5] = {{"Content-Type", content_type}, {"Host", url->authority}, {"X-Amz-Date", amz_date}};
    size_t nh = 3;
    if (target)
        h[nh++] = (lp_aws_header){"X-Amz-Target", target};
    if (c && c->session_token)
        h[nh++] = (lp_aws_header){"X-Amz-Security-Token", c->session_token};
    lp_buf lines[6] = {LP_BUF_INIT, LP_BUF_INIT, LP_BUF_INIT, LP_BUF_INIT, LP_BUF_INIT, LP_BUF_INIT};
    const char *hdrs[6];
    size_t n = 0;
    for (; n < nh; n++) {
        lp_buf_printf(&lines[n], "%s: %s", h[n].name, h[n].value);
        hdrs[n] = lp_buf_cstr(&lines[n]);
    }
    if (c) {
        lp_buf authz = LP_BUF_INIT;
        lp_sigv4_request r = {"POST", "/", "", h, nh, body, strlen(body), region, service, amz_date};
        lp_sigv4_authorization(&r, c, &authz);
        lp_buf_printf(&lines[n], "Authorization: %s", lp_buf_cstr(&authz));
        hdrs[n] = lp_buf_cstr(&lines[n]);
        n++;
        lp_buf_wipe(&authz);
    }
    long status = lp_aws_http("POST", url->url, hdrs, n, body, 15000, resp, err, errlen);
    for (size_t i = 0; i < n; i++)
        lp_buf_wipe(&lines[i]);
    return status;
}

int lp_aws_endpoint(const char *env_var, const char *service, const char *region, lp_aws_url *u, lp_error *e)
{
    const char *var = env_var, *text = getenv(env_var);
    if (!text || !*text) {
        var = "AWS_ENDPOINT_URL";
        text = getenv(var);
    }
    char def[256];
    if (!text || !*text) {
        snprintf(def, sizeof def, "https://%s.%s.amazonaws.com%s", service, region,
                 !strncmp(region, "cn-", 3) ? ".cn" : "");
        var = NULL;
        text = def;
    }
    if (lp_aws_url_parse(text, u))
        return lp_fail(e, LP_EXIT_USAGE, "%s=%.200s is not an http:// or https:// URL with a host",
                       var ? var : "endpoint", text);
    if (u->userinfo || u->query)
        return lp_fail(e, LP_EXIT_USAGE, "%s: an endpoint URL takes neither user:password@ nor a ?query or "
                       "#fragment", var ? var : "endpoint");
    size_t l = strlen(u->url);
    while (l && u->url[l - 1] == '/')
        u->url[--l] = 0;
    return 0;
}
