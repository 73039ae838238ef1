/*
 * http_internal.h: the blocking HTTP calls shared by the credential
 * providers, STS and the Secrets Manager client (lib/aws/ only), and the URL
 * parsing every endpoint check goes through.
 */
#ifndef LP_AWS_HTTP_INTERNAL_H
#define LP_AWS_HTTP_INTERNAL_H

#include "aws/aws.h"

/* The largest response accepted: SecretString is at most 64 KiB, and its
 * JSON envelope and escaping add more; credentials are far smaller. */
#define LP_AWS_RESPONSE_MAX (256u << 10)

/* Sends method url with headers ("Name: value") and body (or NULL); the
 * response body goes to resp (NUL-terminated, at most LP_AWS_RESPONSE_MAX).
 * Returns the HTTP status, -1 with err filled when no response arrived, or
 * LP_AWS_HTTP_NO_TRUST when an https URL cannot be verified for want of CA
 * certificates (err says what to set: a configuration error, lib/tls/tls.h). */
#define LP_AWS_HTTP_NO_TRUST (-2)
long lp_aws_http(const char *method, const char *url, const char *const *headers, size_t nheaders,
                 const char *body, long timeout_ms, lp_buf *resp, char *err, size_t errlen);

/* A URL as libcurl (the client that will fetch it) parses it, so that a
 * check on the host and the request cannot disagree about which host it is. */
typedef struct lp_aws_url {
    char url[2048];     /* normalised, as it will be requested */
    char scheme[8];     /* "http" or "https" */
    char host[256];     /* IPv6 in brackets, as in the URL */
    char authority[300]; /* host[:port], for the Host header */
    int userinfo, query; /* user:password@ present; ?query or #fragment present */
} lp_aws_url;

/* 0 and u filled, or -1 when text is not an http(s) URL with a host. */
int lp_aws_url_parse(const char *text, lp_aws_url *u);

/* A POST to url signed with SigV4 for region/service when c is not NULL
 * (unsigned otherwise: AssumeRoleWithWebIdentity), with the session token
 * header when c has one. target: the X-Amz-Target header or NULL. */
long lp_aws_post(const lp_aws_url *url, const char *region, const char *service, const char *content_type,
                 const char *target, const char *body, const lp_aws_creds *c, lp_buf *resp, char *err,
                 size_t errlen);

/* The endpoint of service in region: env_var (AWS_ENDPOINT_URL_<SERVICE>),
 * else AWS_ENDPOINT_URL, else https://<service>.<region>.amazonaws.com
 * (.com.cn in China). An override must be an http(s) URL with a host and
 * neither user:password@ nor a query; the error names the variable. */
int lp_aws_endpoint(const char *env_var, const char *service, const char *region, lp_aws_url *u, lp_error *e);

/* STS, for the credential chain (sts.c). AssumeRole is signed with signer;
 * AssumeRoleWithWebIdentity is unsigned, as in every SDK: the token is the
 * credential. Errors name the role and STS's error code, never a key. */
int lp_aws_sts_assume_role(const lp_aws_creds *signer, const char *role_arn, const char *session,
                           const char *external_id, const char *source, lp_aws_creds *out, lp_error *e);
int lp_aws_sts_web_identity(const char *role_arn, const char *session, const char *token, const char *source,
                            lp_aws_creds *out, lp_error *e);

/* Shared by the providers that keep what they receive (credentials.c). */
void lp_aws_set_creds(lp_aws_creds *c, const char *id, const char *secret, const char *token, const char *source);

#endif
