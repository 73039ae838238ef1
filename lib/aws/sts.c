/*
 * sts.c: the two STS calls the credential chain makes to become a role:
 * AssumeRole (a role_arn profile, signed with its source credentials) and
 * AssumeRoleWithWebIdentity (a web identity token, EKS-style; unsigned as in
 * every SDK, since the token is the credential). Query protocol: a form
 * POST, an XML answer from which the three credential fields are taken. The
 * request (it holds the token) and the answer are wiped.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "aws/http_internal.h"

static void form_add(lp_buf *b, const char *name, const char *value)
{
    lp_buf_printf(b, "%s%s=", b->len ? "&" : "", name);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (isalnum(*p) || strchr("-_.~", *p))
            lp_buf_putc(b, (char)*p);
        else
            lp_buf_printf(b, "%%%02X", *p);
    }
}

/* The text of the first <tag>...</tag> (no nested markup, no entities: the
 * fields read here are base64 and identifiers). */
static int xml_text(const lp_buf *doc, const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(doc->data ? doc->data : "", open);
    const char *b = a ? strstr(a, close) : NULL;
    if (!b)
        return 0;
    a += strlen(open);
    size_t len = (size_t)(b - a);
    if (len >= n || memchr(a, '<', len) || memchr(a, '&', len))
        return 0;
    memcpy(out, a, len);
    out[len] = 0;
    return 1;
}

/* Region and endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else the
 * regional endpoint (the SDKs' default now), else the global one. */
static int sts_endpoint(lp_aws_url *u, char *region, size_t n, lp_error *e)
{
    if (lp_aws_region(region, n) || !*region)
        snprintf(region, n, "us-east-1");
    else if (!lp_aws_region_valid(region))
        return lp_fail(e, LP_EXIT_USAGE, "STS: \"%.64s\" is not an AWS region (such as eu-west-1)", region);
    return lp_aws_endpoint("AWS_ENDPOINT_URL_STS", "sts", region, u, e);
}

static int sts_call(const char *action, const char *form, const lp_aws_creds *signer, const char *role_arn,
                    const char *source, lp_aws_creds *out, lp_error *e)
{
    char region[64], err[256];
    lp_aws_url u;
    if (sts_endpoint(&u, region, sizeof region, e))
        return -1;
    lp_buf resp = LP_BUF_INIT;
    long status = lp_aws_post(&u, region, "sts", "application/x-www-form-urlencoded; charset=utf-8", NULL,
                              form, signer, &resp, err, sizeof err);
    char id[256], secret[256], token[4096], code[128] = "", msg[256] = "";
    int rc = -1;
    if (status < 0) {
        lp_fail(e, LP_EXIT_USAGE, "%s: STS %s for %s: %s is unreachable: %s", source, action, role_arn, u.url, err);
    } else if (status != 200) {
        xml_text(&resp, "Code", code, sizeof code);
        xml_text(&resp, "Message", msg, sizeof msg);
        lp_fail(e, LP_EXIT_USAGE, "%s: STS %s for %s: %s%s%.200s%s", source, action, role_arn,
                *code ? code : "HTTP error", *msg ? " (" : "", msg, *msg ? ")" : "");
        if (!*code)
            snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), " %ld", status);
    } else if (!xml_text(&resp, "AccessKeyId", id, sizeof id) ||
               !xml_text(&resp, "SecretAccessKey", secret, sizeof secret) ||
               !xml_text(&resp, "SessionToken", token, sizeof token)) {
        lp_fail(e, LP_EXIT_USAGE, "%s: STS %s for %s answered without credentials", source, action, role_arn);
    } else {
        char from[96];
        snprintf(from, sizeof from, "%.60s via STS", source);
        lp_aws_set_creds(out, id, secret, token, from);
        rc = 0;
    }
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(token, sizeof token);
    lp_buf_wipe(&resp);
    return rc;
}

int lp_aws_sts_assume_role(const lp_aws_creds *signer, const char *role_arn, const char *session,
                           const char *external_id, const char *source, lp_aws_creds *out, lp_error *e)
{
    lp_buf form = LP_BUF_INIT;
    form_add(&form, "Action", "AssumeRole");
    form_add(&form, "Version", "2011-06-15");
    form_add(&form, "RoleArn", role_arn);
    form_add(&form, "RoleSessionName", session);
    if (external_id)
        form_add(&form, "ExternalId", external_id);
    int rc = sts_call("AssumeRole", lp_buf_cstr(&form), signer, role_arn, source, out, e);
    lp_buf_wipe(&form);
    return rc;
}

int lp_aws_sts_web_identity(const char *role_arn, const char *session, const char *token, const char *source,
                            lp_aws_creds *out, lp_error *e)
{
    lp_buf form = LP_BUF_INIT;
    form_add(&form, "Action", "AssumeRoleWithWebIdentity");
    form_add(&form, "Version", "2011-06-15");
    form_add(&form, "RoleArn", role_arn);
    form_add(&form, "RoleSessionName", session);
    form_add(&form, "WebIdentityToken", token);
    int rc = sts_call("AssumeRoleWithWebIdentity", lp_buf_cstr(&form), NULL, role_arn, source, out, e);
    lp_buf_wipe(&form);
    return rc;
}
