/*
 * secretsmanager.c: GetSecretValue, the one Secrets Manager call logpipe
 * makes. A JSON 1.1 POST signed with SigV4; the answer's SecretString is
 * copied into the caller's buffer and everything else that held it is wiped.
 * jansson's allocations are pointed at wiping functions while the answer is
 * parsed, so its copies of the secret are zeroed too.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/http_internal.h"
#include "core/json.h"

/* ---- jansson allocations that wipe on free (only while a secret is parsed) ----- */

static void *wiping_malloc(size_t n)
{
    size_t *p = malloc(sizeof(size_t) + n);
    if (!p)
        return NULL;
    *p = n;
    return p + 1;
}

static void wiping_free(void *q)
{
    if (!q)
        return;
    size_t *p = (size_t *)q - 1;
    explicit_bzero(q, *p);
    free(p);
}

/* Parses a JSON secret with wiping allocations; the caller must json_decref
 * it before calling lp_aws_json_wiping_end. */
void lp_aws_json_wiping_begin(json_malloc_t *saved_m, json_free_t *saved_f)
{
    json_get_alloc_funcs(saved_m, saved_f);
    json_set_alloc_funcs(wiping_malloc, wiping_free);
}

void lp_aws_json_wiping_end(json_malloc_t saved_m, json_free_t saved_f)
{
    json_set_alloc_funcs(saved_m, saved_f);
}

/* ---- the request --------------------------------------------------------------- */

/* An ARN names its region: arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME */
static int region_from_arn(const char *id, char *out, size_t n)
{
    if (strncmp(id, "arn:", 4))
        return -1;
    const char *p = id;
    for (int i = 0; i < 3 && p; i++)
        p = strchr(p + 1, ':');
    if (!p)
        return -1;
    size_t len = strcspn(p + 1, ":");
    if (!len || len >= n)
        return -1;
    snprintf(out, n, "%.*s", (int)len, p + 1);
    return 0;
}

static int aws_error(const char *secret_id, const char *region, long status, lp_buf *resp, lp_error *e)
{
    json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "__type"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(j, "Message"));
    if (type && strchr(type, '#'))
        type = strchr(type, '#') + 1;
    /* Signature and credential errors can come as XML (<Code>..</Code>). */
    char code[128] = "", text[256] = "";
    const char *c0 = j ? NULL : strstr(resp->data ? resp->data : "", "<Code>");
    const char *m0 = j ? NULL : strstr(resp->data ? resp->data : "", "<Message>");
    if (c0 && sscanf(c0, "<Code>%127[^<]", code) == 1)
        type = code;
    if (m0 && sscanf(m0, "<Message>%255[^<]", text) == 1)
        msg = text;
    lp_fail(e, LP_EXIT_USAGE, "AWS Secrets Manager: secret \"%s\" in region %s: %s%s%.200s%s", secret_id, region,
            type ? type : "HTTP error", msg ? " (" : "", msg ? msg : "", msg ? ")" : "");
    if (!type)
        snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), " %ld", status);
    json_decref(j);
    return -1;
}

int lp_aws_get_secret(const char *secret_id, const char *region_arg, lp_buf *value, lp_error *e)
{
    char region[64], err[768];
    lp_aws_url url;
    if (region_arg && *region_arg)
        snprintf(region, sizeof region, "%s", region_arg);
    else if (region_from_arn(secret_id, region, sizeof region) && lp_aws_region(region, sizeof region))
        return lp_fail(e, LP_EXIT_USAGE, "AWS Secrets Manager: no region for secret \"%s\": set AWS_REGION "
                       "(or AWS_DEFAULT_REGION, a profile's region, or ?region= in the reference)", secret_id);
    /* The region becomes the endpoint's host name: "evil.example/" would
     * send the signed request, session token included, elsewhere. */
    if (!lp_aws_region_valid(region))
        return lp_fail(e, LP_EXIT_USAGE, "AWS Secrets Manager: secret \"%s\": \"%.64s\" is not an AWS region "
                       "(such as eu-west-1)", secret_id, region);
    if (lp_aws_endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER", "secretsmanager", region, &url, e))
        return -1;
    lp_aws_creds creds;
    lp_error ce;
    if (lp_aws_creds_load(&creds, &ce))
        return lp_fail(e, ce.code, "AWS Secrets Manager: secret \"%s\" in region %s: %s", secret_id, region, ce.msg);
    lp_buf body = LP_BUF_INIT, resp = LP_BUF_INIT;
    lp_buf_puts_lit(&body, "{\"SecretId\":");
    lp_json_str(&body, secret_id, strlen(secret_id));
    lp_buf_putc(&body, '}');
    long status = lp_aws_post(&url, region, "secretsmanager", "application/x-amz-json-1.1",
                              "secretsmanager.GetSecretValue", lp_buf_cstr(&body), &creds, &resp, err, sizeof err);
    lp_aws_creds_wipe(&creds);
    lp_buf_free(&body);

    int rc = -1;
    if (status == LP_AWS_HTTP_NO_TRUST) {
        lp_fail(e, LP_EXIT_USAGE, "AWS Secrets Manager: secret \"%s\": %s", secret_id, err);
    } else if (status < 0) {
        lp_fail(e, LP_EXIT_USAGE, "AWS Secrets Manager: secret \"%s\" in region %s: %s is unreachable: %s", secret_id,
                region, url.url, err);
    } else if (status != 200) {
        aws_error(secret_id, region, status, &resp, e);
    } else {
        json_malloc_t m;
        json_free_t f;
        lp_aws_json_wiping_begin(&m, &f);
        json_t *j = json_loadb(resp.data, resp.len, 0, NULL);
        json_t *s = json_object_get(j, "SecretString");
        if (json_is_string(s)) {
            lp_buf_reset(value);
            if (value->cap < json_string_length(s) + 1)
                lp_buf_grow(value, json_string_length(s) + 1);
            lp_buf_append(value, json_string_value(s), json_string_length(s));
            lp_buf_cstr(value);
            rc = 0;
        } else {
            lp_fail(e, LP_EXIT_USAGE, "AWS Secrets Manager: secret \"%s\" in region %s has no SecretString "
                    "(a binary secret?): logpipe reads text secrets", secret_id, region);
        }
        json_decref(j);
        lp_aws_json_wiping_end(m, f);
    }
    lp_buf_wipe(&resp);
    return rc;
}
