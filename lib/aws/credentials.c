/*
 * credentials.c: the AWS credential provider chain and the region, in the
 * order and with the variables the AWS SDKs use, so that logpipe finds the
 * same credentials the AWS CLI would on the same machine: a developer's
 * profile locally, the execution role's container credentials on MWAA, the
 * pod's web identity on EKS, the instance role on EC2. The first source that
 * is configured decides: a configured source that fails, or that logpipe
 * cannot use (credential_process, SSO), is an error naming it, not a reason
 * to try the next (that would silently run with other credentials than
 * intended).
 *
 * Whatever held a credential is wiped: the shared files are read with
 * read(2) into a buffer that is zeroed (no stdio buffer), endpoint answers
 * are parsed with jansson's wiping allocator and their buffers zeroed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws/http_internal.h"

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define SMALL_FILE_MAX (1u << 20) /* credentials, config and token files */
#define ROLE_CHAIN_MAX 5          /* source_profile hops, as the SDKs bound them */

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

void lp_aws_set_creds(lp_aws_creds *c, const char *id, const char *secret, const char *token, const char *source)
{
    c->access_key_id = lp_xstrdup(id);
    c->secret_access_key = lp_xstrdup(secret);
    c->session_token = token && *token ? lp_xstrdup(token) : NULL;
    snprintf(c->source, sizeof c->source, "%.*s", (int)sizeof c->source - 1, source);
}

/* A header value must not end the header: no CR, LF or other control byte. */
static int header_safe(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return 0;
    return 1;
}

/* ---- region ------------------------------------------------------------------------ */

/* AWS's region syntax: two letters, one or more -word parts, -number
 * (us-east-1, us-gov-west-1, cn-north-1, eu-central-2). The region becomes a
 * host name: anything else could point a signed request elsewhere. */
int lp_aws_region_valid(const char *r)
{
    size_t n = strlen(r), i = 0;
    if (n < 6 || n > 40 || !islower((unsigned char)r[0]) || !islower((unsigned char)r[1]) || r[2] != '-')
        return 0;
    int words = 0;
    for (i = 2; r[i] == '-';) {
        size_t start = ++i;
        if (isdigit((unsigned char)r[i])) {
            while (isdigit((unsigned char)r[i]))
                i++;
            return words > 0 && i == n && i > start;
        }
        while (islower((unsigned char)r[i]))
            i++;
        if (i == start)
            return 0;
        words++;
    }
    return 0;
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

/* `key` of the profile's section in one file's text: [name] in the
 * credentials file, [profile name] (or [default]) in the config file.
 * Returns 1 when found, 0 when not. */
static int ini_find(const lp_buf *text, int config_file, const char *profile, const char *key, char *out, size_t n)
{
    char want[300], line[4096];
    if (config_file && strcmp(profile, "default"))
        snprintf(want, sizeof want, "profile %s", profile);
    else
        snprintf(want, sizeof want, "%s", profile);
    int in = 0, found = 0;
    for (size_t pos = 0; !found && pos < text->len;) {
        const char *nl = memchr(text->data + pos, '\n', text->len - pos);
        size_t len = nl ? (size_t)(nl - (text->data + pos)) : text->len - pos;
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), text->data + pos);
        pos += len + 1;
        char *s = line + strspn(line, " \t");
        s[strcspn(s, "\r")] = 0;
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
    return found;
}

/* The shared credentials and config files, read once per look-up chain. */
typedef struct shared_files {
    lp_buf creds, config;
} shared_files;

static void files_load(shared_files *f)
{
    char path[1024];
    default_path(path, sizeof path, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    lp_buf_read_file(&f->creds, path, SMALL_FILE_MAX, NULL); /* absent: empty */
    default_path(path, sizeof path, "AWS_CONFIG_FILE", "config");
    lp_buf_read_file(&f->config, path, SMALL_FILE_MAX, NULL);
}

static void files_wipe(shared_files *f)
{
    lp_buf_wipe(&f->creds);
    lp_buf_wipe(&f->config);
}

/* A profile's key, the credentials file first (as the SDKs merge them). */
static int profile_get(const shared_files *f, const char *profile, const char *key, char *out, size_t n)
{
    return ini_find(&f->creds, 0, profile, key, out, n) || ini_find(&f->config, 1, profile, key, out, n);
}

/* Whether the profile configures credentials at all: a [default] that only
 * sets a region leaves the rest of the chain (container, instance) to it. */
static int profile_has_credentials(const shared_files *f, const char *profile)
{
    char v[8];
    static const char *keys[] = {"aws_access_key_id", "role_arn", "credential_process", "sso_start_url",
                                 "sso_session", "sso_account_id", NULL};
    for (int i = 0; keys[i]; i++)
        if (profile_get(f, profile, keys[i], v, sizeof v))
            return 1;
    return 0;
}

static int from_profile(const shared_files *f, const char *profile, int depth, lp_aws_creds *c, lp_error *e);

static const char *session_name(char *buf, size_t n)
{
    const char *s = env("AWS_ROLE_SESSION_NAME");
    if (s)
        return s;
    snprintf(buf, n, "logpipe-%ld-%d", (long)time(NULL), (int)getpid());
    return buf;
}

/* role_arn: AssumeRole signed with the source profile's (or the named
 * credential_source's) credentials, or AssumeRoleWithWebIdentity with the
 * profile's web_identity_token_file. */
static int assume_profile_role(const shared_files *f, const char *profile, const char *role_arn, int depth,
                               lp_aws_creds *c, lp_error *e);

static int web_identity(const char *token_file, const char *role_arn, const char *source, lp_aws_creds *c,
                        lp_error *e)
{
    lp_buf token = LP_BUF_INIT;
    if (lp_buf_read_file(&token, token_file, SMALL_FILE_MAX, NULL))
        return lp_fail(e, LP_EXIT_USAGE, "%s: the web identity token file %s cannot be read: %s", source, token_file,
                       errno == EINVAL ? "not a regular file" : strerror(errno));
    while (token.len && isspace((unsigned char)token.data[token.len - 1]))
        token.data[--token.len] = 0;
    char buf[64];
    int rc = token.len ? lp_aws_sts_web_identity(role_arn, session_name(buf, sizeof buf), token.data, source, c, e)
                       : lp_fail(e, LP_EXIT_USAGE, "%s: the web identity token file %s is empty", source, token_file);
    lp_buf_wipe(&token);
    return rc;
}

static int from_container(lp_aws_creds *c, lp_error *e);
static int from_imds(lp_aws_creds *c, char *tried, size_t tlen);

static int assume_profile_role(const shared_files *f, const char *profile, const char *role_arn, int depth,
                               lp_aws_creds *c, lp_error *e)
{
    char source_profile[256], credential_source[64], token_file[1024], external_id[1300], what[400], buf[64];
    snprintf(what, sizeof what, "AWS profile %s (role_arn)", profile);
    if (profile_get(f, profile, "mfa_serial", buf, sizeof buf))
        return lp_fail(e, LP_EXIT_USAGE, "%s: mfa_serial needs a code typed in, which logpipe cannot ask for: "
                       "use a role without MFA for it", what);
    if (profile_get(f, profile, "web_identity_token_file", token_file, sizeof token_file))
        return web_identity(token_file, role_arn, what, c, e);
    lp_aws_creds signer = {0};
    int rc;
    if (profile_get(f, profile, "source_profile", source_profile, sizeof source_profile)) {
        if (depth >= ROLE_CHAIN_MAX)
            return lp_fail(e, LP_EXIT_USAGE, "%s: more than %d source_profile hops (a loop?)", what, ROLE_CHAIN_MAX);
        /* A source profile that is this very profile means "its own keys". */
        if (!strcmp(source_profile, profile)) {
            char id[256] = "", secret[256] = "";
            rc = profile_get(f, profile, "aws_access_key_id", id, sizeof id) &&
                         profile_get(f, profile, "aws_secret_access_key", secret, sizeof secret)
                     ? 0
                     : lp_fail(e, LP_EXIT_USAGE, "%s: source_profile is itself but it has no keys", what);
            if (!rc)
                lp_aws_set_creds(&signer, id, secret, NULL, what);
            explicit_bzero(secret, sizeof secret);
        } else {
            rc = from_profile(f, source_profile, depth + 1, &signer, e);
        }
    } else if (profile_get(f, profile, "credential_source", credential_source, sizeof credential_source)) {
        char tried[512] = "";
        if (!strcmp(credential_source, "Environment")) {
            rc = env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")
                     ? (lp_aws_set_creds(&signer, env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                                         env("AWS_SESSION_TOKEN"), "environment"), 0)
                     : lp_fail(e, LP_EXIT_USAGE, "%s: credential_source Environment, but AWS_ACCESS_KEY_ID/"
                               "AWS_SECRET_ACCESS_KEY are not set", what);
        } else if (!strcmp(credential_source, "EcsContainer")) {
            rc = from_container(&signer, e) > 0 ? 0 : -1;
            if (rc && !*e->msg)
                lp_fail(e, LP_EXIT_USAGE, "%s: credential_source EcsContainer, but no container credentials are "
                        "configured", what);
        } else if (!strcmp(credential_source, "Ec2InstanceMetadata")) {
            rc = from_imds(&signer, tried, sizeof tried) ? 0
                 : lp_fail(e, LP_EXIT_USAGE, "%s: credential_source Ec2InstanceMetadata%s", what, tried);
        } else {
            return lp_fail(e, LP_EXIT_USAGE, "%s: credential_source \"%.40s\" is not one of Environment, "
                           "EcsContainer, Ec2InstanceMetadata", what, credential_source);
        }
    } else {
        return lp_fail(e, LP_EXIT_USAGE, "%s: needs source_profile, credential_source or web_identity_token_file",
                       what);
    }
    if (rc)
        return -1;
    int have_external = profile_get(f, profile, "external_id", external_id, sizeof external_id);
    char session[128];
    if (!profile_get(f, profile, "role_session_name", session, sizeof session))
        session_name(session, sizeof session);
    rc = lp_aws_sts_assume_role(&signer, role_arn, session, have_external ? external_id : NULL, what, c, e);
    lp_aws_creds_wipe(&signer);
    return rc;
}

/* 0 with c filled, or -1 with e naming the profile and what is wrong. */
static int from_profile(const shared_files *f, const char *profile, int depth, lp_aws_creds *c, lp_error *e)
{
    char v[2048], id[256] = "", secret[256] = "", token[4096] = "";
    if (profile_get(f, profile, "role_arn", v, sizeof v))
        return assume_profile_role(f, profile, v, depth, c, e);
    int rc = 0;
    if (profile_get(f, profile, "aws_access_key_id", id, sizeof id) &&
        profile_get(f, profile, "aws_secret_access_key", secret, sizeof secret)) {
        profile_get(f, profile, "aws_session_token", token, sizeof token);
        char source[96];
        snprintf(source, sizeof source, "profile %s", profile);
        lp_aws_set_creds(c, id, secret, token, source);
    } else if (profile_get(f, profile, "credential_process", v, sizeof v)) {
        rc = lp_fail(e, LP_EXIT_USAGE, "AWS profile %s uses credential_process, which logpipe does not run (it "
                     "would execute a command from a config file): give the profile keys, a role_arn, or use "
                     "another credential source", profile);
    } else if (profile_get(f, profile, "sso_session", v, sizeof v) ||
               profile_get(f, profile, "sso_start_url", v, sizeof v) ||
               profile_get(f, profile, "sso_account_id", v, sizeof v)) {
        rc = lp_fail(e, LP_EXIT_USAGE, "AWS profile %s is an IAM Identity Center (SSO) profile, which logpipe "
                     "does not support (its cached token needs an interactive login): export the role's "
                     "keys (aws configure export-credentials) or use a role_arn profile", profile);
    } else {
        rc = lp_fail(e, LP_EXIT_USAGE, "AWS profile %s: no aws_access_key_id/aws_secret_access_key, role_arn, "
                     "credential_process or sso_* for it in the shared credentials or config file", profile);
    }
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(token, sizeof token);
    return rc;
}

/* 1 found, 0 not configured, -1 configured but failed (e filled). */
static int from_files(lp_aws_creds *c, char *tried, size_t tlen, lp_error *e)
{
    shared_files f = {LP_BUF_INIT, LP_BUF_INIT};
    files_load(&f);
    const char *profile = profile_name();
    int rc;
    if (env("AWS_PROFILE") || profile_has_credentials(&f, profile))
        rc = from_profile(&f, profile, 0, c, e) ? -1 : 1;
    else
        rc = 0;
    files_wipe(&f);
    if (!rc)
        snprintf(tried + strlen(tried), tlen - strlen(tried), "; shared files: no profile %s", profile);
    return rc;
}

/* ---- container and instance metadata endpoints --------------------------------- */

/* {"AccessKeyId":..,"SecretAccessKey":..,"Token":..} into c, with jansson's
 * copies of the keys wiped when freed. */
static int parse_endpoint_json(lp_aws_creds *c, lp_buf *resp, const char *source)
{
    json_malloc_t m;
    json_free_t f;
    lp_aws_json_wiping_begin(&m, &f);
    json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(j, "Token"));
    int ok = id && secret;
    if (ok)
        lp_aws_set_creds(c, id, secret, token, source);
    json_decref(j);
    lp_aws_json_wiping_end(m, f);
    return ok;
}

/* As the AWS SDKs allow: https to any host; plain http only to a loopback
 * address (127.0.0.0/8, ::1, localhost) or the ECS and EKS agents
 * (169.254.170.2, 169.254.170.23, fd00:ec2::23), where nothing can listen
 * in between. The host is libcurl's parse of the URL, the one it fetches:
 * "http://127.0.0.1:80@evil.example/" has host evil.example. */
static int container_host_allowed(const lp_aws_url *u)
{
    if (!strcmp(u->scheme, "https"))
        return 1;
    struct in_addr a4;
    struct in6_addr a6, ecs6;
    char inner[256];
    size_t hl = strlen(u->host);
    if (inet_pton(AF_INET, u->host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127 || !strcmp(u->host, "169.254.170.2") ||
               !strcmp(u->host, "169.254.170.23");
    if (hl > 2 && u->host[0] == '[' && u->host[hl - 1] == ']') {
        snprintf(inner, sizeof inner, "%.*s", (int)(hl - 2), u->host + 1);
        inet_pton(AF_INET6, "fd00:ec2::23", &ecs6);
        return inet_pton(AF_INET6, inner, &a6) == 1 &&
               (!memcmp(&a6, &in6addr_loopback, sizeof a6) || !memcmp(&a6, &ecs6, sizeof a6));
    }
    return !strcasecmp(u->host, "localhost");
}

/* The token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN into out;
 * a trailing newline is dropped, any other control byte refused (it would
 * end the Authorization header and start another). */
static int container_token(char *out, size_t n, lp_error *e)
{
    const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    out[0] = 0;
    if (file) {
        lp_buf b = LP_BUF_INIT;
        if (lp_buf_read_file(&b, file, n - 1, NULL))
            return lp_fail(e, LP_EXIT_USAGE, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s cannot be read: %s", file,
                           errno == EINVAL ? "not a regular file" : strerror(errno));
        while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
            b.data[--b.len] = 0;
        snprintf(out, n, "%s", b.data ? b.data : "");
        lp_buf_wipe(&b);
    } else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        snprintf(out, n, "%s", env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    if (!header_safe(out)) {
        explicit_bzero(out, n);
        return lp_fail(e, LP_EXIT_USAGE, "%s holds a line break or another control character: refused (it would "
                       "inject headers into the request)", file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
                                                                : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    return 0;
}

/* 1 found, 0 not configured, -1 configured but failed (e filled). */
static int from_container(lp_aws_creds *c, lp_error *e)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return 0;
    char text[2048], token[4096], hdr[4200] = "", err[768];
    lp_aws_url u;
    if (rel) {
        /* A path on the ECS agent: "@evil.example/" would make the agent's
         * address a user name. */
        snprintf(text, sizeof text, "%s%s", CONTAINER_HOST, rel);
        if (rel[0] != '/' || lp_aws_url_parse(text, &u) || u.userinfo || strcmp(u.host, "169.254.170.2"))
            return lp_fail(e, LP_EXIT_USAGE, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path on the "
                           "container agent (/v2/credentials/...); got %.200s", rel);
    } else if (lp_aws_url_parse(full, &u) || u.userinfo || !container_host_allowed(&u)) {
        return lp_fail(e, LP_EXIT_USAGE,
                       "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or the "
                       "ECS/EKS container agent, without user:password@; got %.200s", full);
    }
    if (container_token(token, sizeof token, e))
        return -1;
    const char *headers[1] = {hdr};
    if (*token)
        snprintf(hdr, sizeof hdr, "Authorization: %s", token);
    lp_buf resp = LP_BUF_INIT;
    long status = lp_aws_http("GET", u.url, headers, *token ? 1 : 0, NULL, 5000, &resp, err, sizeof err);
    explicit_bzero(token, sizeof token);
    explicit_bzero(hdr, sizeof hdr);
    int rc = 1;
    if (status != 200 || !parse_endpoint_json(c, &resp, "container credentials")) {
        if (status < 0)
            lp_fail(e, LP_EXIT_USAGE, "AWS container credentials at %s: %s", u.url, err);
        else
            lp_fail(e, LP_EXIT_USAGE, "AWS container credentials at %s: HTTP %ld%s", u.url, status,
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

/* An IMDS role name goes into a URL path: the IAM name characters only. */
static int role_name_ok(const char *r)
{
    return *r && strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-") == strlen(r);
}

/* IMDSv2: a session token first (PUT), then the role, then its keys. */
static int from_imds(lp_aws_creds *c, char *tried, size_t tlen)
{
    const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? env("AWS_EC2_METADATA_SERVICE_ENDPOINT") : IMDS_DEFAULT;
    char url[1024], hdr[512] = "", err[256] = "", role[256] = "";
    lp_buf resp = LP_BUF_INIT;
    size_t blen = strlen(base);
    const char *slash = blen && base[blen - 1] == '/' ? "" : "/";
    const char *ttl[1] = {"X-aws-ec2-metadata-token-ttl-seconds: 300"};
    snprintf(url, sizeof url, "%s%slatest/api/token", base, slash);
    long status = lp_aws_http("PUT", url, ttl, 1, "", 1000, &resp, err, sizeof err);
    int ok = 0;
    if (status == 200 && resp.len < 400 && header_safe(resp.data)) {
        snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", resp.data);
        const char *h[1] = {hdr};
        snprintf(url, sizeof url, "%s%slatest/meta-data/iam/security-credentials/", base, slash);
        status = lp_aws_http("GET", url, h, 1, NULL, 1000, &resp, err, sizeof err);
        if (status == 200 && resp.len && resp.len < sizeof role) {
            snprintf(role, sizeof role, "%.*s", (int)strcspn(resp.data, "\r\n"), resp.data);
            if (role_name_ok(role)) {
                snprintf(url, sizeof url, "%s%slatest/meta-data/iam/security-credentials/%s", base, slash, role);
                status = lp_aws_http("GET", url, h, 1, NULL, 1000, &resp, err, sizeof err);
                ok = status == 200 && parse_endpoint_json(c, &resp, "instance metadata (IMDSv2)");
            }
        }
        explicit_bzero(hdr, sizeof hdr);
    }
    if (!ok)
        snprintf(tried + strlen(tried), tlen - strlen(tried), "; instance metadata at %s: %s", base,
                 status < 0 ? err : "no role credentials");
    lp_buf_wipe(&resp);
    return ok;
}

/* ---- the chain ------------------------------------------------------------------- */

/* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (EKS IRSA, GitHub OIDC, ...):
 * 1 found, 0 not configured, -1 configured but failed. */
static int from_web_identity_env(lp_aws_creds *c, lp_error *e)
{
    const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    if (!file && !role)
        return 0;
    if (!file || !role)
        return lp_fail(e, LP_EXIT_USAGE, "%s is set but %s is not: web identity needs both",
                       file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                       file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
    return web_identity(file, role, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)", c, e) ? -1 : 1;
}

int lp_aws_creds_load(lp_aws_creds *out, lp_error *e)
{
    memset(out, 0, sizeof *out);
    e->msg[0] = 0;
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    if (id || secret) {
        if (!id || !secret)
            return lp_fail(e, LP_EXIT_USAGE, "%s is set but %s is not: set both, or neither",
                           id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                           id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        lp_aws_set_creds(out, id, secret, env("AWS_SESSION_TOKEN"), "environment");
        return 0;
    }
    char tried[1024] = "environment: AWS_ACCESS_KEY_ID not set; web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set";
    int rc = from_web_identity_env(out, e);
    if (!rc)
        rc = from_files(out, tried, sizeof tried, e);
    if (!rc)
        rc = from_container(out, e);
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
    shared_files f = {LP_BUF_INIT, LP_BUF_INIT};
    files_load(&f);
    int found = ini_find(&f.config, 1, profile_name(), "region", out, n);
    files_wipe(&f);
    return found ? 0 : -1;
}
