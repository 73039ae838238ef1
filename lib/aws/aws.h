/*
 * aws.h: the little of AWS that logpipe needs to read its credentials from
 * AWS Secrets Manager at start-up: Signature Version 4, the standard
 * credential provider chain, and GetSecretValue.
 *
 * Written against the published protocols rather than an SDK: the AWS C SDK
 * is not in Debian, and libcurl's CURLOPT_AWS_SIGV4 signs with the current
 * time only, so it cannot be checked against AWS's fixed-time test vectors.
 * Everything here runs once per process, before any data moves; nothing is
 * on the hot path. Credentials and secret values are wiped when released and
 * never appear in an error message.
 */
#ifndef LP_AWS_H
#define LP_AWS_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

typedef struct lp_aws_creds {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys */
    char source[96];     /* where they came from, for messages: "environment", "container" ... */
} lp_aws_creds;

/* The standard provider chain, in the order the AWS SDKs use: environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); web identity
 * (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: STS AssumeRoleWithWebIdentity,
 * as on EKS); the shared credentials and config files with AWS_PROFILE (keys,
 * or role_arn with source_profile, credential_source or
 * web_identity_token_file: STS AssumeRole; credential_process and SSO
 * profiles are refused naming the profile); container credentials
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]): how MWAA tasks get the execution
 * role; then EC2 instance metadata (IMDSv2) unless AWS_EC2_METADATA_DISABLED.
 * On failure the message lists what was tried. */
int lp_aws_creds_load(lp_aws_creds *out, lp_error *e);
void lp_aws_creds_wipe(lp_aws_creds *c);

/* The region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region` in
 * the config file. Returns 0 and fills out (size n), or -1 when none is set. */
int lp_aws_region(char *out, size_t n);

/* 1 when r has AWS's region syntax (us-east-1, us-gov-west-1, cn-north-1):
 * the region becomes part of a host name, so nothing else is accepted. */
int lp_aws_region_valid(const char *r);

/* One header of a request to sign. */
typedef struct lp_aws_header {
    const char *name, *value;
} lp_aws_header;

typedef struct lp_sigv4_request {
    const char *method;       /* "POST" */
    const char *path;         /* "/" (already URI-encoded) */
    const char *query;        /* "" or "a=1&b=2" (already URI-encoded, any order) */
    const lp_aws_header *headers; /* every header to sign, host and x-amz-date included */
    size_t nheaders;
    const void *payload;
    size_t payload_len;
    const char *region, *service;
    const char *amz_date; /* "20150830T123600Z": the x-amz-date header's value */
} lp_sigv4_request;

/* Appends the Authorization header's value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") for r signed with c. The caller adds
 * x-amz-security-token (when c has a session token) to r's headers itself,
 * so that it is signed. */
void lp_sigv4_authorization(const lp_sigv4_request *r, const lp_aws_creds *c, lp_buf *out);

/* Secrets Manager GetSecretValue: the secret's SecretString into value
 * (NUL-terminated; the caller wipes it with lp_buf_wipe). region NULL means
 * lp_aws_region(). The endpoint is AWS_ENDPOINT_URL_SECRETS_MANAGER, then
 * AWS_ENDPOINT_URL, then https://secretsmanager.<region>.amazonaws.com;
 * AWS_CA_BUNDLE names a CA file for it. Errors name the secret, the region
 * and AWS's error code. */
int lp_aws_get_secret(const char *secret_id, const char *region, lp_buf *value, lp_error *e);

/* While a secret is parsed with jansson, its allocations zero memory on
 * free. Everything parsed in between must be freed before _end. */
void lp_aws_json_wiping_begin(json_malloc_t *saved_m, json_free_t *saved_f);
void lp_aws_json_wiping_end(json_malloc_t saved_m, json_free_t saved_f);

#endif
