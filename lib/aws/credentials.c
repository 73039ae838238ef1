/*
 * credentials.c: the AWS credential provider chain and the region, in the
 * order and with the variables every AWS SDK uses, so that logpipe finds the
 * same credentials the AWS CLI would on the same machine: a developer's
 * profile locally, the execution role's container credentials on MWAA, the
 * instance role on EC2. The first source that is configured decides: a
 * configured source that fails is an error, not a reason to try the next
 * (that would silently run with other credentials than intended).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/http_internal.h"

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void lp_aws_creds_wipe(lp_aws_creds *c)
{
    lp_wipe_free(c->access_key_id);
    lp_wipe_free(c->secret_access_key);
    lp_wipe_free(c->session_token);
    memset(c, 0, sizeof *c);
}

static void set_creds(lp_aws_creds *c, const char *id, const char *secret, const char *token, const char *source)
{
    c->access_key_id = lp_xstrdup(id);
    c->secret_access_key = lp_xstrdup(secret);
    c->session_token = token && *token ? lp_xstrdup(token) : NULL;
    snprintf(c->source, sizeof c->source, "%s", source);
}

/* ---- shared files ---------------------------------------------------------------- */

static const char *profile_name(void) { return env("AWS_PROFILE") ? env("AWS_PROFILE") : "default"; }

static void default_path(char *out, size_t n, const char *var, const char *file)
{
    const char *home = env("HOME");
    if (env(var))
        snprintf(out, n, "%s", env(var));
    else
        snprintf(out, n, "%s/.aws/%s", home ? home : "", file);
}

/* Reads `key` of the section for the profile into out: [name] in the
 * credentials file, [profile name] (or [default]) in the config file.
 * Returns 1 when found, 0 when not, -1 when the file cannot be read. */
static int ini_get(const char *path, int config_file, const char *profile, const char *key, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char want[300], line[4096];
    if (config_file && strcmp(profile, "default"))
        snprintf(want, sizeof want, "profile %s", profile);
    else
        snprintf(want, sizeof want, "%s", profile);
    int in = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t");
        s[strcspn(s, "\r\n")] = 0;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end) {
                *end = 0;
                char *name = s + 1 + strspn(s + 1, " \t");
                size_t l = strlen(name);
                while (l && (name[l - 1] == ' ' || name[l - 1] == '\t'))
                    name[--l] = 0;
                in = !strcmp(name, want);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq || *s == '#' || *s == ';')
            continue;
        char *k = s, *v = eq + 1;
        *eq = 0;
        k[strcspn(k, " \t")] = 0;
        v += strspn(v, " \t");
        size_t l = strlen(v);
        while (l && (v[l - 1] == ' ' || v[l - 1] == '\t'))
            v[--l] = 0;
        if (!strcasecmp(k, key)) {
            snprintf(out, n, "%s", v);
            found = 1;
        }
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    return found;
}

static int from_files(lp_aws_creds *c, char *tried, size_t tlen)
{
    const char *profile = profile_name();
    char path[1024], id[256] = "", secret[256] = "", token[4096] = "";
    int found = 0;
    for (int config_file = 0; config_file <= 1 && !found; config_file++) {
        default_path(path, sizeof path, config_file ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE",
                     config_file ? "config" : "credentials");
        if (ini_get(path, config_file, profile, "aws_access_key_id", id, sizeof id) == 1 &&
            ini_get(path, config_file, profile, "aws_secret_access_key", secret, sizeof secret) == 1) {
            ini_get(path, config_file, profile, "aws_session_token", token, sizeof token);
            char source[96];
            snprintf(source, sizeof source, "profile %s (%s)", profile, config_file ? "config file" : "credentials file");
            set_creds(c, id, secret, token, source);
            found = 1;
        }
    }
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(token, sizeof token);
    if (!found)
        snprintf(tried + strlen(tried), tlen - strlen(tried), "; shared files: no keys for profile %s", profile);
    return found;
}

/* ---- container and instance metadata endpoints --------------------------------- */

/* {"AccessKeyId":..,"SecretAccessKey":..,"Token":..} into c. */
static int parse_endpoint_json(lp_aws_creds *c, lp_buf *resp, const char *source)
{
    json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(j, "Token"));
    int ok = id && secret;
    if (ok)
        set_creds(c, id, secret, token, source);
    json_decref(j);
    return ok;
}

static int full_uri_allowed(const char *uri)
{
    /* As the SDKs: https anywhere; plain http only to this host or the ECS
     * and EKS link-local agents, where nothing can listen in between. */
    static const char *http_ok[] = {"http://127.0.0.1", "http://localhost", "http://[::1]",
                                    "http://169.254.170.2", "http://169.254.170.23", NULL};
    if (!strncmp(uri, "https://", 8))
        return 1;
    for (int i = 0; http_ok[i]; i++) {
        size_t l = strlen(http_ok[i]);
        if (!strncmp(uri, http_ok[i], l) && (uri[l] == ':' || uri[l] == '/' || !uri[l]))
            return 1;
    }
    return 0;
}

static int read_token_file(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(out, 1, n - 1, f);
    fclose(f);
    out[len] = 0;
    out[strcspn(out, "\r\n")] = 0;
    return 0;
}

/* 1 found, 0 not configured, -1 configured but failed (e filled). */
static int from_container(lp_aws_creds *c, lp_error *e)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return 0;
    char url[2048], token[4096] = "", hdr[4200] = "", err[768];
    if (rel) {
        snprintf(url, sizeof url, "%s%s", CONTAINER_HOST, rel);
    } else {
        if (!full_uri_allowed(full))
            return lp_fail(e, LP_EXIT_USAGE,
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback or the "
                           "container agent's address; got %s", full);
        snprintf(url, sizeof url, "%s", full);
    }
    const char *token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (token_file && read_token_file(token_file, token, sizeof token))
        return lp_fail(e, LP_EXIT_USAGE, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s cannot be read", token_file);
    if (!token_file && env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
        snprintf(token, sizeof token, "%s", env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    const char *headers[1] = {hdr};
    if (*token)
        snprintf(hdr, sizeof hdr, "Authorization: %s", token);
    lp_buf resp = LP_BUF_INIT;
    long status = lp_aws_http("GET", url, headers, *token ? 1 : 0, NULL, 5000, &resp, err, sizeof err);
    explicit_bzero(token, sizeof token);
    explicit_bzero(hdr, sizeof hdr);
    int rc = 1;
    if (status != 200 || !parse_endpoint_json(c, &resp, "container credentials")) {
        if (status < 0)
            lp_fail(e, LP_EXIT_USAGE, "AWS container credentials at %s: %s", url, err);
        else
            lp_fail(e, LP_EXIT_USAGE, "AWS container credentials at %s: HTTP %ld%s", url, status,
                    status == 200 ? " without AccessKeyId/SecretAccessKey" : "");
        rc = -1;
    }
    lp_buf_wipe(&resp);
    return rc;
}

static int metadata_disabled(void)
{
    const char *v = env("AWS_EC2_METADATA_DISABLED");
    return v && !strcasecmp(v, "true");
}

/* IMDSv2: a session token first (PUT), then the role, then its keys. */
static int from_imds(lp_aws_creds *c, char *tried, size_t tlen)
{
    const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? env("AWS_EC2_METADATA_SERVICE_ENDPOINT") : IMDS_DEFAULT;
    char url[1024], hdr[512], err[256], role[256];
    lp_buf resp = LP_BUF_INIT;
    size_t blen = strlen(base);
    const char *slash = blen && base[blen - 1] == '/' ? "" : "/";
    const char *ttl[1] = {"X-aws-ec2-metadata-token-ttl-seconds: 300"};
    snprintf(url, sizeof url, "%s%slatest/api/token", base, slash);
    long status = lp_aws_http("PUT", url, ttl, 1, "", 1000, &resp, err, sizeof err);
    int ok = 0;
    if (status == 200 && resp.len < 400) {
        snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", resp.data);
        const char *h[1] = {hdr};
        snprintf(url, sizeof url, "%s%slatest/meta-data/iam/security-credentials/", base, slash);
        status = lp_aws_http("GET", url, h, 1, NULL, 1000, &resp, err, sizeof err);
        if (status == 200 && resp.len && resp.len < sizeof role) {
            snprintf(role, sizeof role, "%.*s", (int)strcspn(resp.data, "\r\n"), resp.data);
            snprintf(url, sizeof url, "%s%slatest/meta-data/iam/security-credentials/%s", base, slash, role);
            status = lp_aws_http("GET", url, h, 1, NULL, 1000, &resp, err, sizeof err);
            ok = status == 200 && parse_endpoint_json(c, &resp, "instance metadata (IMDSv2)");
        }
        explicit_bzero(hdr, sizeof hdr);
    }
    if (!ok)
        snprintf(tried + strlen(tried), tlen - strlen(tried), "; instance metadata at %s: %s", base,
                 status < 0 ? err : "no role credentials");
    lp_buf_wipe(&resp);
    return ok;
}

int lp_aws_creds_load(lp_aws_creds *out, lp_error *e)
{
    memset(out, 0, sizeof *out);
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    if (id || secret) {
        if (!id || !secret)
            return lp_fail(e, LP_EXIT_USAGE, "%s is set but %s is not: set both, or neither",
                           id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                           id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        set_creds(out, id, secret, env("AWS_SESSION_TOKEN"), "environment");
        return 0;
    }
    char tried[1024] = "environment: AWS_ACCESS_KEY_ID not set";
    if (from_files(out, tried, sizeof tried))
        return 0;
    if (env("AWS_PROFILE"))
        return lp_fail(e, LP_EXIT_USAGE, "AWS_PROFILE=%s: no aws_access_key_id/aws_secret_access_key for it "
                       "in the shared credentials or config file", profile_name());
    int rc = from_container(out, e);
    if (rc)
        return rc > 0 ? 0 : -1;
    snprintf(tried + strlen(tried), sizeof tried - strlen(tried),
             "; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI not set");
    if (metadata_disabled())
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "; instance metadata: disabled");
    else if (from_imds(out, tried, sizeof tried))
        return 0;
    return lp_fail(e, LP_EXIT_USAGE, "no AWS credentials found (%s)", tried);
}

int lp_aws_region(char *out, size_t n)
{
    const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
    if (r) {
        snprintf(out, n, "%s", r);
        return 0;
    }
    char path[1024];
    default_path(path, sizeof path, "AWS_CONFIG_FILE", "config");
    return ini_get(path, 1, profile_name(), "region", out, n) == 1 ? 0 : -1;
}
