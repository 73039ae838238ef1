/*
 * http_internal.h: the blocking HTTP call shared by the credential providers
 * and the Secrets Manager client (lib/aws/ only).
 */
#ifndef LP_AWS_HTTP_INTERNAL_H
#define LP_AWS_HTTP_INTERNAL_H

#include "aws/aws.h"

/* Sends method url with headers ("Name: value") and body (or NULL); the
 * response body goes to resp (NUL-terminated). Returns the HTTP status, -1
 * with err filled when no response arrived, or LP_AWS_HTTP_NO_TRUST when an
 * https URL cannot be verified for want of CA certificates (err says what
 * to set: a configuration error, lib/tls/tls.h). */
#define LP_AWS_HTTP_NO_TRUST (-2)
long lp_aws_http(const char *method, const char *url, const char *const *headers, size_t nheaders,
                 const char *body, long timeout_ms, lp_buf *resp, char *err, size_t errlen);

#endif
