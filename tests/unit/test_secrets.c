/*
 * test_secrets.c: secret references, AWS Signature Version 4, the AWS
 * credential provider chain and Secrets Manager errors, without AWS: SigV4
 * is held to AWS's published test-suite vectors and to botocore, the chain
 * and GetSecretValue to a local HTTP stub. The integration tests run the
 * same code against moto with signature checking on.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/aws.h"
#include "check.h"
#include "http_stub.h"
#include "secrets/secrets.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const char *signature(const char *authz)
{
    const char *s = strstr(authz, "Signature=");
    return s ? s + 10 : "";
}

/* AWS's aws-sig-v4-test-suite: get-vanilla, post-vanilla and
 * get-vanilla-query-order-key-case (host example.amazonaws.com, region
 * us-east-1, service "service", 20150830T123600Z). */
static void test_sigv4_published_vectors(void)
{
    lp_aws_creds c = {AKID, SECRET, NULL, ""};
    lp_aws_header h[2] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
    struct {
        const char *method, *query, *sig;
    } v[] = {
        {"GET", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        {"POST", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
        {"GET", "Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        lp_buf out = LP_BUF_INIT;
        lp_sigv4_request r = {v[i].method, "/", v[i].query, h, 2, "", 0, "us-east-1", "service", "20150830T123600Z"};
        lp_sigv4_authorization(&r, &c, &out);
        CHECK_STR(signature(lp_buf_cstr(&out)), v[i].sig);
        if (i == 0)
            CHECK_STR(lp_buf_cstr(&out), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                      "aws4_request, SignedHeaders=host;x-amz-date, Signature=" "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        lp_buf_free(&out);
    }
}

/* The request logpipe sends, signed the same way by botocore 1.44.8
 * (SigV4Auth with get_current_datetime patched to 2015-08-30T12:36:00):
 * without and with a session token. */
static void test_sigv4_get_secret_value_matches_botocore(void)
{
    const char *body = "{\"SecretId\":\"MWAA_Secrets\"}";
    lp_aws_header h[5] = {{"Content-Type", "application/x-amz-json-1.1"},
                          {"Host", "secretsmanager.us-east-1.amazonaws.com"},
                          {"X-Amz-Date", "20150830T123600Z"},
                          {"X-Amz-Target", "secretsmanager.GetSecretValue"},
                          {"X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLETOKEN"}};
    lp_aws_creds c = {AKID, SECRET, NULL, ""};
    lp_buf out = LP_BUF_INIT;
    lp_sigv4_request r = {"POST", "/", "", h, 4, body, strlen(body), "us-east-1", "secretsmanager", "20150830T123600Z"};
    lp_sigv4_authorization(&r, &c, &out);
    CHECK_CONTAINS(lp_buf_cstr(&out), "SignedHeaders=content-type;host;x-amz-date;x-amz-target,");
    CHECK_STR(signature(lp_buf_cstr(&out)), "3d290e4c592292a8d4df9bed3e3eecf457330dd6ecf1f3a97d0f9580f87388cc");
    lp_buf_reset(&out);
    r.nheaders = 5;
    lp_sigv4_authorization(&r, &c, &out);
    CHECK_CONTAINS(lp_buf_cstr(&out), "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,");
    CHECK_STR(signature(lp_buf_cstr(&out)), "742486ce967eebdaa4c46d2cbb51c652642e3382dffb98252e4ca62cc35b9eae");
    CHECK(!strstr(lp_buf_cstr(&out), SECRET));
    lp_buf_free(&out);
}

static void test_reference_parsing(void)
{
    lp_secret_ref r;
    lp_error e;
    CHECK_INT(lp_secret_ref_parse("--x", "plain-value", &r, &e), 0);
    CHECK_INT(r.kind, LP_SECRET_LITERAL);
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://MWAA_Secrets", &r, &e), 0);
    CHECK_INT(r.kind, LP_SECRET_AWS_SM);
    CHECK_STR(r.id, "MWAA_Secrets");
    CHECK_STR(r.key, "");
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://MWAA_Secrets?region=eu-west-1#kafka_secret", &r, &e), 0);
    CHECK_STR(r.id, "MWAA_Secrets");
    CHECK_STR(r.key, "kafka_secret");
    CHECK_STR(r.region, "eu-west-1");
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://MWAA_Secrets#kafka_secret?region=us-west-2", &r, &e), 0);
    CHECK_STR(r.key, "kafka_secret");
    CHECK_STR(r.region, "us-west-2");
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:logs-AbCdEf#k",
                                  &r, &e), 0);
    CHECK_STR(r.id, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:logs-AbCdEf");
    CHECK_INT(lp_secret_ref_parse("--x", "env://ES_KEY", &r, &e), 0);
    CHECK_INT(r.kind, LP_SECRET_ENV);
    CHECK_STR(r.id, "ES_KEY");
    CHECK_INT(lp_secret_ref_parse("--x", "file:///etc/logpipe/secret.json#elasticsearch_API_Key", &r, &e), 0);
    CHECK_INT(r.kind, LP_SECRET_FILE);
    CHECK_STR(r.id, "/etc/logpipe/secret.json");
    CHECK_STR(r.key, "elasticsearch_API_Key");

    CHECK_INT(lp_secret_ref_parse("--es-api-key", "file://relative/path", &r, &e), -1);
    CHECK_CONTAINS(e.msg, "--es-api-key");
    CHECK_CONTAINS(e.msg, "absolute path");
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://", &r, &e), -1);
    CHECK_CONTAINS(e.msg, "secret name or ARN");
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://s#", &r, &e), -1);
    CHECK_CONTAINS(e.msg, "JSON key");
    CHECK_INT(lp_secret_ref_parse("--x", "aws-sm://s?zone=1", &r, &e), -1);
    CHECK_CONTAINS(e.msg, "?region=");
    CHECK_INT(lp_secret_ref_parse("--x", "env://X?region=eu-west-1", &r, &e), -1);
    CHECK_CONTAINS(e.msg, "aws-sm:// only");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        perror(path);
    close(fd);
    chmod(path, mode);
}

#define VALUE "s3cr3t-Value-9f2"

static void test_env_and_file_references(void)
{
    lp_buf v = LP_BUF_INIT;
    lp_error e;
    setenv("LP_TEST_SECRET", VALUE, 1);
    CHECK_INT(lp_secret_resolve("--es-api-key", "env://LP_TEST_SECRET", &v, &e), 0);
    CHECK_STR(lp_buf_cstr(&v), VALUE);
    CHECK(getenv("LP_TEST_SECRET") == NULL); /* cleared once read */
    CHECK_INT(lp_secret_resolve("--es-api-key", "env://LP_TEST_SECRET", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "env://LP_TEST_SECRET: the variable is not set");

    char path[64], ref[128];
    snprintf(path, sizeof path, "/tmp/lp-secret-%d.json", (int)getpid());
    snprintf(ref, sizeof ref, "file://%s#elasticsearch_API_Key", path);
    write_file(path, "{\"elasticsearch_API_Key\":\"" VALUE "\",\"kafka_secret\":\"k-" VALUE "\"}\n", 0644);
    CHECK_INT(lp_secret_resolve("--es-api-key", ref, &v, &e), -1);
    CHECK_CONTAINS(e.msg, "mode 0644");
    CHECK_CONTAINS(e.msg, path);
    chmod(path, 0600);
    CHECK_INT(lp_secret_resolve("--es-api-key", ref, &v, &e), 0);
    CHECK_STR(lp_buf_cstr(&v), VALUE);

    /* The whole file, trailing newline dropped. */
    snprintf(ref, sizeof ref, "file://%s", path);
    write_file(path, VALUE "\n", 0400);
    CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), 0);
    CHECK_STR(lp_buf_cstr(&v), VALUE);

    /* No error quotes the value, whatever goes wrong with it. */
    snprintf(ref, sizeof ref, "file://%s#kafka_secret", path);
    CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), -1);
    CHECK_CONTAINS(e.msg, "not a JSON object");
    CHECK(!strstr(e.msg, VALUE));
    write_file(path, "{\"other\":\"" VALUE "\",\"n\":5}", 0600);
    CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), -1);
    CHECK_CONTAINS(e.msg, "no such key");
    CHECK(!strstr(e.msg, VALUE));
    snprintf(ref, sizeof ref, "file://%s#n", path);
    CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), -1);
    CHECK_CONTAINS(e.msg, "not a string");
    write_file(path, "{\"kafka_secret\": \"" VALUE, 0600); /* broken JSON */
    lp_secret_settings s;
    snprintf(ref, sizeof ref, "file://%s", path);
    CHECK_INT(lp_secret_settings_load(ref, &s, &e), -1);
    CHECK_CONTAINS(e.msg, "invalid JSON");
    CHECK(!strstr(e.msg, VALUE));
    unlink(path);
    lp_buf_wipe(&v);
}

/* A whole JSON object for one value: refused, naming the reference, quoting
 * nothing; a FIFO does not block and another user's file is refused. */
static void test_single_values_and_hostile_files(void)
{
    char path[64], ref[128];
    lp_buf v = LP_BUF_INIT;
    lp_error e;
    snprintf(path, sizeof path, "/tmp/lp-whole-%d.json", (int)getpid());
    snprintf(ref, sizeof ref, "file://%s", path);
    write_file(path, " {\"kafka_secret\":\"" VALUE "\",\"url\":\"http://x\"}\n", 0600);
    CHECK_INT(lp_secret_resolve("--brokers", ref, &v, &e), -1);
    CHECK_CONTAINS(e.msg, "--brokers: ");
    CHECK_CONTAINS(e.msg, "did you forget #key?");
    CHECK(!strstr(e.msg, VALUE) && !strstr(e.msg, "http://x"));
    CHECK_INT(v.len, 0);
    setenv("LP_TEST_WHOLE", "{\"k\":\"" VALUE "\"}", 1);
    CHECK_INT(lp_secret_resolve("-X sasl.password", "env://LP_TEST_WHOLE", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "did you forget #key?");
    CHECK(!strstr(e.msg, VALUE));
    /* a literal that looks like JSON is the user's own, and a non-object JSON is one value */
    CHECK_INT(lp_secret_resolve("--x", "{\"a\":1}", &v, &e), 0);
    write_file(path, "[\"" VALUE "\"]", 0600);
    CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), 0);

    if (geteuid() == 0) { /* chown needs root; CI and the stack run as root */
        write_file(path, VALUE, 0600);
        CHECK_INT(chown(path, 65534, 65534), 0);
        CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), -1);
        CHECK_CONTAINS(e.msg, "owned by uid 65534");
    }
    unlink(path);
    CHECK_INT(mkfifo(path, 0600), 0);
    alarm(10); /* today's blocking open would hang here: fail instead */
    CHECK_INT(lp_secret_resolve("--x", ref, &v, &e), -1);
    alarm(0);
    CHECK_CONTAINS(e.msg, "not a regular file");
    unlink(path);
    CHECK_INT(lp_secret_resolve("--x", "file:///dev/zero", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "not a regular file");
    lp_buf_wipe(&v);
}

static void test_settings_mapping_accepts_the_seed_keys(void)
{
    char path[64], ref[128];
    snprintf(path, sizeof path, "/tmp/lp-settings-%d.json", (int)getpid());
    write_file(path,
               "{\"kafka_bootstrap_server\":\"b1:9092\",\"kafka_username\":\"u\",\"kafka_secret\":\"p\","
               "\"elasticsearch_URL\":\"https://es:9200\",\"elasticsearch_API_Key\":\"k\",\"unrelated\":\"x\"}",
               0600);
    snprintf(ref, sizeof ref, "file://%s", path);
    lp_secret_settings s;
    lp_error e;
    CHECK_INT(lp_secret_settings_load(ref, &s, &e), 0);
    CHECK_STR(s.brokers, "b1:9092");
    CHECK_STR(s.kafka_username, "u");
    CHECK_STR(s.kafka_password, "p");
    CHECK_STR(s.es_url, "https://es:9200");
    CHECK_STR(s.es_api_key, "k");
    CHECK(s.es_username == NULL);
    lp_secret_settings_wipe(&s);
    CHECK(s.brokers == NULL);
    CHECK_INT(lp_secret_settings_load("plain", &s, &e), -1);
    CHECK_CONTAINS(e.msg, "--secrets: expected a reference");
    snprintf(ref, sizeof ref, "file://%s#kafka_secret", path);
    CHECK_INT(lp_secret_settings_load(ref, &s, &e), -1);
    CHECK_CONTAINS(e.msg, "drop the \"#kafka_secret\"");
    unlink(path);
}

/* ---- the credential chain ------------------------------------------------------- */

static const char *chain_vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                   "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
                                   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                   "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                   "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_REGION",
                                   "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                                   "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL_STS"};

static void clear_chain(void)
{
    for (size_t i = 0; i < sizeof chain_vars / sizeof *chain_vars; i++)
        unsetenv(chain_vars[i]);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

#define CONTAINER_JSON "{\"AccessKeyId\":\"ASIACONTAINER\",\"SecretAccessKey\":\"container-secret\"," \
                       "\"Token\":\"container-token\",\"Expiration\":\"2099-01-01T00:00:00Z\"}"
#define IMDS_JSON "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAIMDS\",\"SecretAccessKey\":\"imds-secret\"," \
                  "\"Token\":\"imds-token\"}"

static void test_credential_chain_order(void)
{
    stub_route routes[] = {
        {"GET", "/v2/credentials/abc", "Authorization: task-token", 200, CONTAINER_JSON},
        {"PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds:", 200, "imds-session"},
        {"GET", "/latest/meta-data/iam/security-credentials/", "X-aws-ec2-metadata-token: imds-session", 200,
         "logpipe-role"},
        {"GET", "/latest/meta-data/iam/security-credentials/logpipe-role", "X-aws-ec2-metadata-token: imds-session",
         200, IMDS_JSON},
    };
    http_stub stub;
    CHECK_INT(stub_start(&stub, routes, sizeof routes / sizeof *routes), 0);
    char url[128], creds_path[64], token_path[64];
    snprintf(creds_path, sizeof creds_path, "/tmp/lp-creds-%d", (int)getpid());
    snprintf(token_path, sizeof token_path, "/tmp/lp-token-%d", (int)getpid());
    write_file(creds_path, "[default]\naws_access_key_id = AKIAFILEDEFAULT\naws_secret_access_key = file-secret\n\n"
                           "[ci]\naws_access_key_id=AKIAFILECI\naws_secret_access_key=ci-secret\n"
                           "aws_session_token=ci-token\n", 0600);
    write_file(token_path, "task-token\n", 0600);
    lp_aws_creds c;
    lp_error e;

    /* Nothing configured: the error lists what was tried. */
    clear_chain();
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "no AWS credentials found");
    CHECK_CONTAINS(e.msg, "AWS_ACCESS_KEY_ID not set");
    CHECK_CONTAINS(e.msg, "instance metadata: disabled");

    /* 4. instance metadata (IMDSv2: token, role, keys) */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    snprintf(url, sizeof url, "http://127.0.0.1:%d", stub.port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), 0);
    CHECK_STR(c.access_key_id, "ASIAIMDS");
    CHECK_STR(c.session_token, "imds-token");
    lp_aws_creds_wipe(&c);

    /* 3. container credentials win over instance metadata; the token file is sent */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/credentials/abc", stub.port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path, 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), 0);
    CHECK_STR(c.access_key_id, "ASIACONTAINER");
    CHECK_STR(c.secret_access_key, "container-secret");
    CHECK_STR(c.session_token, "container-token");
    CHECK_STR(c.source, "container credentials");
    lp_aws_creds_wipe(&c);
    /* a wrong token is an error naming the endpoint, not a fall-through */
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "HTTP 401");
    CHECK(!strstr(e.msg, "wrong-token"));
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "task-token", 1);
    /* plain http to a remote host is refused */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);

    /* 2. shared files win over the container; AWS_PROFILE picks the section */
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds_path, 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), 0);
    CHECK_STR(c.access_key_id, "AKIAFILEDEFAULT");
    CHECK(c.session_token == NULL);
    lp_aws_creds_wipe(&c);
    setenv("AWS_PROFILE", "ci", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), 0);
    CHECK_STR(c.access_key_id, "AKIAFILECI");
    CHECK_STR(c.session_token, "ci-token");
    lp_aws_creds_wipe(&c);
    setenv("AWS_PROFILE", "missing", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS profile missing: no aws_access_key_id");
    unsetenv("AWS_PROFILE");

    /* 1. the environment wins over everything */
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), 0);
    CHECK_STR(c.access_key_id, "AKIAENV");
    CHECK_STR(c.session_token, "env-token");
    CHECK_STR(c.source, "environment");
    lp_aws_creds_wipe(&c);
    CHECK(c.access_key_id == NULL);

    stub_stop(&stub);
    unlink(creds_path);
    unlink(token_path);
}

/* Hostile or unusable settings fail naming the setting, before any request
 * leaves (the stub would record it). */
static void test_regions_endpoints_and_unsupported_sources(void)
{
    const char *good[] = {"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1", "ap-southeast-2", "il-central-1",
                          "us-isob-east-1"};
    const char *bad[] = {"evil.example/", "us-east-1.evil.example", "US-EAST-1", "us-east", "useast1", "us--east-1",
                         "us-east-1/", "e-west-1", "us-east-1a", ""};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(lp_aws_region_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!lp_aws_region_valid(bad[i]));

    stub_route routes[] = {{"POST", "/", NULL, 200, "{\"SecretString\":\"x\"}"},
                           {"GET", "/creds", NULL, 200, CONTAINER_JSON}};
    http_stub stub;
    CHECK_INT(stub_start(&stub, routes, 2), 0);
    char url[128];
    lp_buf v = LP_BUF_INIT;
    lp_aws_creds c;
    lp_error e;
    clear_chain();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret-key", 1);
    setenv("AWS_SESSION_TOKEN", "env-session-token", 1);
    /* a region that is a host: refused, nothing sent (no endpoint override) */
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://s?region=evil.example/", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "\"evil.example/\" is not an AWS region");
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ENDPOINT_URL", "http://AKIA:pw@127.0.0.1:1/", 1);
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://s", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_ENDPOINT_URL: an endpoint URL takes neither user:password@");
    setenv("AWS_ENDPOINT_URL", "ftp://127.0.0.1/", 1);
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://s", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_ENDPOINT_URL=ftp://127.0.0.1/ is not an http:// or https:// URL");
    CHECK(!strstr(stub_seen(&stub), "POST"));
    unsetenv("AWS_ENDPOINT_URL");
    clear_chain();

    /* container URLs are parsed, not prefix-matched */
    const char *refused[] = {"http://127.0.0.1:80@evil.example/creds", "http://localhost.evil.example/creds",
                             "http://127.0.0.1.evil.example/creds", "http://10.0.0.1/creds",
                             "http://user@127.0.0.1/creds", "file:///etc/passwd"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        CHECK_INT(lp_aws_creds_load(&c, &e), -1);
        CHECK_CONTAINS(e.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https");
    }
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@evil.example/creds", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path");
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *allowed[] = {"http://127.0.0.2:%d/creds", "http://localhost:%d/creds", "http://[::1]:%d/creds"};
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        snprintf(url, sizeof url, allowed[i], stub.port);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
        int rc = lp_aws_creds_load(&c, &e);
        /* the stub listens on 127.0.0.1 only: reaching it or failing to connect, never refused */
        CHECK(rc == 0 || strstr(e.msg, "AWS container credentials at "));
        if (!rc)
            lp_aws_creds_wipe(&c);
    }
    /* a token that would inject a header */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/creds", stub.port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok\r\nX-Injected: 1", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a line break");
    CHECK(!strstr(e.msg, "tok"));
    CHECK(!strstr(stub_seen(&stub), "X-Injected"));
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char token_path[64];
    snprintf(token_path, sizeof token_path, "/tmp/lp-token-crlf-%d", (int)getpid());
    write_file(token_path, "tok\nX-Injected: 1\n", 0600);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path, 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE holds a line break");
    unlink(token_path);
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

    /* profiles logpipe cannot use fail naming the profile, not fall through
     * to the container credentials configured below them */
    char cfg[64];
    snprintf(cfg, sizeof cfg, "/tmp/lp-config-%d", (int)getpid());
    write_file(cfg, "[default]\nregion = eu-west-1\n[profile proc]\ncredential_process = /bin/echo hi\n"
                    "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = R\n"
                    "[profile loop]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop2\n"
                    "[profile loop2]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop\n"
                    "[profile mfa]\nrole_arn = arn:aws:iam::123456789012:role/r\nmfa_serial = x\n"
                    "source_profile = proc\n", 0600);
    setenv("AWS_CONFIG_FILE", cfg, 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_PROFILE", "proc", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS profile proc uses credential_process, which logpipe does not run");
    setenv("AWS_PROFILE", "sso", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS profile sso is an IAM Identity Center (SSO) profile");
    setenv("AWS_PROFILE", "loop", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "source_profile hops");
    setenv("AWS_PROFILE", "mfa", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS profile mfa (role_arn): mfa_serial");
    /* a [default] that only sets the region leaves the chain to the container */
    unsetenv("AWS_PROFILE");
    CHECK_INT(lp_aws_creds_load(&c, &e), 0);
    CHECK_STR(c.source, "container credentials");
    lp_aws_creds_wipe(&c);
    /* web identity needs both variables */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    CHECK_INT(lp_aws_creds_load(&c, &e), -1);
    CHECK_CONTAINS(e.msg, "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
    unsetenv("AWS_ROLE_ARN");
    unlink(cfg);
    stub_stop(&stub);

    /* an answer larger than any secret is refused, saying so */
    static char big[300 << 10];
    memset(big, 'x', sizeof big - 1);
    stub_route huge[] = {{"POST", "/", NULL, 200, big}};
    CHECK_INT(stub_start(&stub, huge, 1), 0);
    clear_chain();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret-key", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", stub.port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://s", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "the response is larger than 256 KiB");
    stub_stop(&stub);
    clear_chain();
    lp_buf_wipe(&v);
}

/* ---- GetSecretValue against a stub: request shape and error messages ----------- */

static void test_get_secret_value(void)
{
    stub_route routes[] = {{"POST", "/", "X-Amz-Target: secretsmanager.GetSecretValue", 200,
                            "{\"Name\":\"MWAA_Secrets\",\"SecretString\":\"{\\\"kafka_secret\\\":\\\"" VALUE "\\\"}\"}"}};
    stub_route missing[] = {{"POST", "/", NULL, 400,
                             "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Secrets Manager can't find the specified secret.\"}"}};
    http_stub stub;
    char url[64];
    lp_buf v = LP_BUF_INIT;
    lp_error e;
    clear_chain();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret-key", 1);
    setenv("AWS_SESSION_TOKEN", "env-session-token", 1);

    CHECK_INT(lp_secret_resolve("--es-api-key", "aws-sm://MWAA_Secrets#kafka_secret", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "no region for secret \"MWAA_Secrets\"");

    CHECK_INT(stub_start(&stub, routes, 1), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", stub.port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://MWAA_Secrets#kafka_secret", &v, &e), 0);
    CHECK_STR(lp_buf_cstr(&v), VALUE);
    const char *seen = stub_seen(&stub);
    CHECK_CONTAINS(seen, "POST / HTTP/1.1");
    CHECK_CONTAINS(seen, "Credential=AKIAENV/");
    CHECK_CONTAINS(seen, "/eu-west-1/secretsmanager/aws4_request");
    CHECK_CONTAINS(seen, "X-Amz-Security-Token: env-session-token");
    CHECK_CONTAINS(seen, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target");
    CHECK_CONTAINS(seen, "{\"SecretId\":\"MWAA_Secrets\"}");
    CHECK(!strstr(seen, "env-secret-key"));
    /* ?region= wins over AWS_REGION */
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://MWAA_Secrets?region=ap-south-1#kafka_secret", &v, &e), 0);
    CHECK_CONTAINS(stub_seen(&stub), "/ap-south-1/secretsmanager/aws4_request");
    stub_stop(&stub);

    CHECK_INT(stub_start(&stub, missing, 1), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", stub.port);
    setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url, 1); /* wins over AWS_ENDPOINT_URL */
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
    CHECK_INT(lp_secret_resolve("--secrets", "aws-sm://nope", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "secret \"nope\" in region eu-west-1: ResourceNotFoundException");
    CHECK(!strstr(e.msg, "env-secret-key") && !strstr(e.msg, "env-session-token"));
    stub_stop(&stub);

    unsetenv("AWS_ENDPOINT_URL_SECRETS_MANAGER");
    CHECK_INT(lp_secret_resolve("--x", "aws-sm://MWAA_Secrets", &v, &e), -1);
    CHECK_CONTAINS(e.msg, "is unreachable");
    CHECK_CONTAINS(e.msg, "http://127.0.0.1:1");
    lp_buf_wipe(&v);
    clear_chain();
}

int main(void)
{
    test_sigv4_published_vectors();
    test_sigv4_get_secret_value_matches_botocore();
    test_reference_parsing();
    test_env_and_file_references();
    test_single_values_and_hostile_files();
    test_settings_mapping_accepts_the_seed_keys();
    test_credential_chain_order();
    test_get_secret_value();
    test_regions_endpoints_and_unsupported_sources();
    return CHECK_DONE();
}
