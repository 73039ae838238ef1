/*
 * client.c: the Elasticsearch HTTP client (see es.h for the contract).
 *
 * One libcurl multi handle with a fixed set of slots, one per request that
 * may be in flight; each slot keeps its easy handle, so connections stay
 * alive between requests. Bulks wait in a FIFO until a slot is free and
 * their retry time has come. Failures back off exponentially with full
 * jitter (delay drawn from [d/2, d]), shared across the client: when
 * Elasticsearch is down every request fails, and one shared delay is what
 * keeps a stopped cluster from being hammered. A bulk that makes no progress
 * for retry_limit_ms stops the client. Conditions no retry can fix
 * (rejected credentials, a body too large, a URL that is not Elasticsearch,
 * an item refused for a reason that is not the document's) are fatal and
 * reported to the caller, who stops without committing.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "elasticsearch/bulk_internal.h"
#include "core/timeutil.h"
#include "metrics/metrics.h"
#include "tls/tls.h"

/* A response body, collected up to max bytes as delivered to us, that is
 * after libcurl has decoded any Content-Encoding: the cap bounds the
 * decompressed size, so a small gzip bomb cannot fill memory. */
typedef struct sink {
    lp_buf buf;
    size_t max;
    int too_large;
} sink;

/* Start-up answers (GET /, the template) are a few KiB. */
#define SMALL_RESPONSE_MAX ((size_t)1 << 20)
/* A _bulk answer (filter_path keeps ~25 bytes an item) may carry an error
 * reason per item: allow 4 KiB an item on top of 1 MiB. */
#define BULK_RESPONSE_BASE ((size_t)1 << 20)
#define BULK_RESPONSE_PER_ITEM ((size_t)4 << 10)

typedef struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    lp_bulk *bulk; /* NULL when free */
    lp_buf req, gz;
    sink resp;
} slot;

struct lp_es {
    char *url;      /* without trailing slash */
    char *bulk_url;
    lp_es_opts opts;
    char *api_key_header;
    const lp_tls_store *trust; /* the system's, when https and no CA named */
    CURLM *multi;
    slot *slots;
    int nslots, busy;
    lp_bulk *head, *tail; /* waiting to be sent */
    size_t pending;       /* submitted, not done */
    unsigned failures;    /* consecutive, for the backoff */
    uint64_t rng;
    struct libdeflate_compressor *gzip; /* level 1: docs/performance.md has the measurement */
    lp_es_stats stats;
    char fatal[1024];
    int fatal_code; /* the exit code for fatal: LP_EXIT_ES unless set_auth_fatal said otherwise */
};

static char *dup_or_null(const char *s) { return s ? lp_xstrdup(s) : NULL; }

int lp_es_check_url(const char *url, lp_error *e)
{
    const char *rest;
    if (!strncmp(url, "http://", 7))
        rest = url + 7;
    else if (!strncmp(url, "https://", 8))
        rest = url + 8;
    else
        return lp_fail(e, LP_EXIT_USAGE, "--es: \"%s\" is not an http:// or https:// URL", url);
    const char *end = rest + strcspn(rest, "/?#");
    if (end == rest)
        return lp_fail(e, LP_EXIT_USAGE, "--es: no host in \"%s\"", url);
    if (memchr(rest, '@', (size_t)(end - rest)))
        return lp_fail(e, LP_EXIT_USAGE,
                       "--es: credentials in the URL are refused (they would show in logs and process "
                       "lists); use --es-user/--es-password or --es-api-key");
    return 0;
}

/* Options every request shares: TLS, auth, timeouts. */
static void apply_common(lp_es *es, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, es->opts.timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, es->opts.insecure ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, es->opts.insecure ? 0L : 2L);
    lp_tls_curl_trust(h, es->opts.ca_file, es->opts.ca_pem, es->trust);
    if (es->opts.username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, es->opts.username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, es->opts.password ? es->opts.password : "");
    }
}

static struct curl_slist *headers(lp_es *es, int ndjson, int gzip)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, ndjson ? "Content-Type: application/x-ndjson" : "Content-Type: application/json");
    if (gzip)
        h = curl_slist_append(h, "Content-Encoding: gzip");
    if (es->api_key_header)
        h = curl_slist_append(h, es->api_key_header);
    h = curl_slist_append(h, "Expect:");
    return h;
}

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
    sink *s = userdata;
    if (s->buf.len + size * n > s->max) {
        s->too_large = 1;
        return 0; /* ends the transfer */
    }
    lp_buf_append(&s->buf, p, size * n);
    return size * n;
}

static void sink_reset(sink *s, size_t max)
{
    lp_buf_reset(&s->buf);
    s->max = max;
    s->too_large = 0;
}

lp_es *lp_es_new(const lp_es_opts *opts, lp_error *e)
{
    if (!opts->url || !*opts->url) {
        lp_fail(e, LP_EXIT_USAGE, "--es is required (http://host:9200)");
        return NULL;
    }
    if (lp_es_check_url(opts->url, e))
        return NULL;
    if (opts->api_key && opts->username) {
        lp_fail(e, LP_EXIT_USAGE, "--es-api-key and --es-user exclude each other");
        return NULL;
    }
    lp_tls_init();
    const lp_tls_store *trust = NULL;
    if (!strncmp(opts->url, "https://", 8) && !opts->insecure && !opts->ca_file && !opts->ca_pem) {
        char peer[300];
        snprintf(peer, sizeof peer, "Elasticsearch at %.250s (--es)", opts->url);
        if (!(trust = lp_tls_system_store(peer, "--es-ca FILE", e)))
            return NULL;
    }
    lp_es *es = lp_xcalloc(1, sizeof *es);
    es->opts = *opts;
    es->trust = trust;
    if (es->opts.max_inflight <= 0)
        es->opts.max_inflight = LP_ES_MAX_INFLIGHT_DEFAULT;
    if (es->opts.timeout_ms <= 0)
        es->opts.timeout_ms = 60000;
    if (es->opts.backoff_base_ms <= 0)
        es->opts.backoff_base_ms = 100;
    if (es->opts.backoff_max_ms <= 0)
        es->opts.backoff_max_ms = 30000;
    if (es->opts.retry_limit_ms <= 0)
        es->opts.retry_limit_ms = LP_ES_RETRY_LIMIT_MS_DEFAULT;
    es->url = lp_xstrdup(opts->url);
    size_t ul = strlen(es->url);
    while (ul && es->url[ul - 1] == '/')
        es->url[--ul] = '\0';
    lp_buf u = LP_BUF_INIT;
    /* Only what the response reader uses: each item's status and error. The
     * full response is ~400 bytes per item (2 MB for 5,000 documents) to
     * buffer and parse; this is ~25. */
    lp_buf_printf(&u, "%s/_bulk?filter_path=errors,items.*.status,items.*.error", es->url);
    if (opts->pipeline) {
        char *escaped = curl_easy_escape(NULL, opts->pipeline, 0);
        lp_buf_printf(&u, "&pipeline=%s", escaped);
        curl_free(escaped);
    }
    es->bulk_url = lp_xstrdup(lp_buf_cstr(&u));
    lp_buf_free(&u);
    es->opts.url = es->url;
    es->opts.ca_file = dup_or_null(opts->ca_file);
    es->opts.ca_pem = dup_or_null(opts->ca_pem);
    es->opts.username = dup_or_null(opts->username);
    es->opts.password = dup_or_null(opts->password);
    es->opts.api_key = NULL;
    es->opts.pipeline = dup_or_null(opts->pipeline);
    if (opts->api_key) {
        lp_buf h = LP_BUF_INIT;
        lp_buf_printf(&h, "Authorization: ApiKey %s", opts->api_key);
        es->api_key_header = lp_xstrdup(lp_buf_cstr(&h));
        memset(h.data, 0, h.len);
        lp_buf_free(&h);
    }
    if (opts->insecure)
        fprintf(stderr, "logpipe: WARNING: --es-insecure: TLS certificates of %s are NOT verified\n", es->url);
    es->rng = (uint64_t)lp_monotonic_ms() * 6364136223846793005ULL + 1442695040888963407ULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    es->multi = curl_multi_init();
    curl_multi_setopt(es->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)es->opts.max_inflight);
    es->nslots = es->opts.max_inflight;
    es->slots = lp_xcalloc((size_t)es->nslots, sizeof *es->slots);
    if (!(es->gzip = libdeflate_alloc_compressor(1)))
        abort(); /* out of memory */
    return es;
}

void lp_es_free(lp_es *es)
{
    if (!es)
        return;
    for (int i = 0; i < es->nslots; i++) {
        slot *s = &es->slots[i];
        if (s->easy) {
            curl_multi_remove_handle(es->multi, s->easy);
            curl_easy_cleanup(s->easy);
        }
        curl_slist_free_all(s->hdrs);
        lp_buf_free(&s->req);
        lp_buf_free(&s->gz);
        lp_buf_free(&s->resp.buf);
    }
    free(es->slots);
    curl_multi_cleanup(es->multi);
    libdeflate_free_compressor(es->gzip);
    free(es->url);
    free(es->bulk_url);
    free((char *)es->opts.ca_file);
    free((char *)es->opts.ca_pem);
    free((char *)es->opts.pipeline);
    lp_wipe_free((char *)es->opts.username);
    lp_wipe_free((char *)es->opts.password);
    lp_wipe_free(es->api_key_header);
    free(es);
}

/* ---- blocking requests: start-up checks and the template ---------------- */

typedef struct reply {
    long status;
    sink body;
    int elastic_header; /* X-elastic-product: Elasticsearch */
    char curl_error[CURL_ERROR_SIZE];
    CURLcode code;
} reply;

static size_t header_line(char *p, size_t size, size_t n, void *userdata)
{
    reply *r = userdata;
    size_t len = size * n;
    if (len > 18 && !strncasecmp(p, "x-elastic-product:", 18))
        r->elastic_header = 1;
    return len;
}

static void request(lp_es *es, const char *method, const char *path, const char *body, long timeout_ms,
                    reply *r)
{
    CURL *h = curl_easy_init();
    lp_buf url = LP_BUF_INIT;
    lp_buf_printf(&url, "%s%s", es->url, path);
    apply_common(es, h);
    struct curl_slist *hdrs = headers(es, 0, 0);
    curl_easy_setopt(h, CURLOPT_URL, lp_buf_cstr(&url));
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SMALL_RESPONSE_MAX);
    sink_reset(&r->body, SMALL_RESPONSE_MAX);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_line);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_error);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    r->curl_error[0] = '\0';
    r->code = curl_easy_perform(h);
    r->status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    lp_buf_free(&url);
}

static int transport_error(lp_es *es, const reply *r, lp_error *e)
{
    const char *detail = r->curl_error[0] ? r->curl_error : curl_easy_strerror(r->code);
    if (r->body.too_large || r->code == CURLE_FILESIZE_EXCEEDED)
        return lp_fail(e, LP_EXIT_ES, "Elasticsearch at %s (--es) sent a response larger than %zu KiB "
                       "(decompressed): refused", es->url, SMALL_RESPONSE_MAX >> 10);
    switch (r->code) {
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
        return lp_fail(e, LP_EXIT_ES,
                       "TLS with Elasticsearch at %s (--es) failed: %s (check --es-ca)", es->url, detail);
    default:
        return lp_fail(e, LP_EXIT_ES, "Elasticsearch at %s (--es) is unreachable: %s", es->url, detail);
    }
}

/* A refused login is a configuration error (exit 2, as Kafka's): the
 * credentials are wrong or lack a privilege, and running again without
 * changing them cannot succeed. */
static int auth_error(lp_es *es, long status, lp_error *e)
{
    return lp_fail(e, LP_EXIT_USAGE,
                   "Elasticsearch at %s (--es) refused authentication (HTTP %ld): check the API key "
                   "or user and password",
                   es->url, status);
}

/* The version from GET /, else from the local node's info. */
static void es_version(lp_es *es, const char *from_root, char *out, size_t len)
{
    if (from_root) {
        snprintf(out, len, "%s", from_root);
        return;
    }
    reply r = {0};
    request(es, "GET", "/_nodes/_local?filter_path=nodes.*.version", NULL, 10000, &r);
    json_t *root = json_loadb(r.body.buf.data ? r.body.buf.data : "", r.body.buf.len, 0, NULL);
    json_t *nodes = json_object_get(root, "nodes");
    const char *v = NULL;
    void *it = json_object_iter(nodes);
    if (it)
        v = json_string_value(json_object_get(json_object_iter_value(it), "version"));
    snprintf(out, len, "%s", v ? v : "unknown");
    json_decref(root);
    lp_buf_free(&r.body.buf);
}

int lp_es_check(lp_es *es, char *version, size_t version_len, lp_error *e)
{
    reply r = {0};
    request(es, "GET", "/", NULL, 10000, &r);
    int rc = 0;
    if (r.code != CURLE_OK) {
        rc = transport_error(es, &r, e);
    } else if (r.status == 401) {
        rc = auth_error(es, r.status, e);
    } else if (r.status == 403 && !r.elastic_header) {
        rc = lp_fail(e, LP_EXIT_USAGE, "Elasticsearch at %s (--es) accepted the credentials but denies GET / "
                     "(HTTP 403): grant the cluster privilege monitor (docs/deploy.md)", es->url);
    } else {
        json_t *root = json_loadb(r.body.buf.data ? r.body.buf.data : "", r.body.buf.len, 0, NULL);
        const char *num = json_string_value(json_object_get(json_object_get(root, "version"), "number"));
        if (num || r.elastic_header) {
            /* Some distributions (integ-test builds, locked-down clusters) do
             * not serve GET /, and a writer without cluster monitor gets 403;
             * the product header every response carries is the check the
             * official clients use. */
            if (version && version_len)
                es_version(es, num, version, version_len);
        } else {
            rc = lp_fail(e, LP_EXIT_ES,
                         "%s (--es) is not Elasticsearch: GET / answered HTTP %ld without a version",
                         es->url, r.status);
        }
        json_decref(root);
    }
    lp_buf_free(&r.body.buf);
    return rc;
}

static json_t *string_array(const char *const *names)
{
    json_t *a = json_array();
    for (size_t i = 0; names && names[i]; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

/* Appends to out the names in the object `granted` whose value is false. */
static void list_missing(json_t *granted, const char *kind, const char *on, lp_buf *out)
{
    const char *name;
    json_t *v;
    json_object_foreach(granted, name, v) {
        if (json_is_false(v))
            lp_buf_printf(out, "%s%s privilege %s%s%s", out->len ? ", " : "", kind, name, on ? " on " : "",
                          on ? on : "");
    }
}

int lp_es_has_privileges(lp_es *es, const char *const *cluster, const char *index_pattern,
                         const char *const *index_privs, lp_buf *missing, lp_error *e)
{
    /* An empty list is a 400, which would read as "no security": ask only
     * for what is named. */
    json_t *req = json_object();
    if (cluster && cluster[0])
        json_object_set_new(req, "cluster", string_array(cluster));
    if (index_privs && index_privs[0])
        json_object_set_new(req, "index", json_pack("[{s:[s], s:o}]", "names", index_pattern, "privileges",
                                                     string_array(index_privs)));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    reply r = {0};
    request(es, "POST", "/_security/user/_has_privileges", body, 10000, &r);
    free(body);
    int rc = 1;
    if (r.code != CURLE_OK) {
        rc = transport_error(es, &r, e);
    } else if (r.status == 401) {
        rc = auth_error(es, r.status, e);
    } else if (r.status == 200) {
        json_t *root = json_loadb(r.body.buf.data ? r.body.buf.data : "", r.body.buf.len, 0, NULL);
        if (!json_is_true(json_object_get(root, "has_all_requested"))) {
            rc = 0;
            if (missing) {
                list_missing(json_object_get(root, "cluster"), "cluster", NULL, missing);
                list_missing(json_object_get(json_object_get(root, "index"), index_pattern), "index",
                             index_pattern, missing);
            }
        }
        json_decref(root);
    } /* anything else: security is not enabled, so no privilege can be missing */
    lp_buf_free(&r.body.buf);
    return rc;
}

int lp_es_check_pipeline_name(const char *name, lp_error *e)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return lp_fail(e, LP_EXIT_USAGE, "--pipeline: a pipeline name is 1 to 255 characters, not %zu", n);
    if (!strcmp(name, "_none"))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-' || c == '@' || c == ':'))
            return lp_fail(e, LP_EXIT_USAGE,
                           "--pipeline: \"%.100s\" has a character not allowed in a pipeline name at byte %zu "
                           "(allowed: letters, digits, '.', '_', '-', '@', ':')", name, i + 1);
    }
    return 0;
}

int lp_es_check_pipeline(lp_es *es, lp_error *e)
{
    const char *name = es->opts.pipeline;
    if (!name || !strcmp(name, "_none"))
        return 0;
    lp_buf path = LP_BUF_INIT;
    char *escaped = curl_easy_escape(NULL, name, 0);
    lp_buf_printf(&path, "/_ingest/pipeline/%s?filter_path=*.description", escaped);
    curl_free(escaped);
    reply r = {0};
    request(es, "GET", lp_buf_cstr(&path), NULL, 10000, &r);
    int rc = 0;
    if (r.code != CURLE_OK)
        rc = transport_error(es, &r, e);
    else if (r.status == 401)
        rc = auth_error(es, r.status, e);
    else if (r.status == 404)
        rc = lp_fail(e, LP_EXIT_USAGE, "--pipeline: Elasticsearch at %s (--es) has no ingest pipeline \"%s\" "
                     "(create it with PUT _ingest/pipeline/%s)", es->url, name, name);
    else if (r.status != 200 && r.status != 403) /* 403: may not read pipelines; the bulk will tell */
        rc = lp_fail(e, LP_EXIT_ES, "--pipeline: checking ingest pipeline \"%s\" failed (HTTP %ld): %.300s", name,
                     r.status, r.body.buf.data ? lp_buf_cstr(&r.body.buf) : "");
    lp_buf_free(&r.body.buf);
    lp_buf_free(&path);
    return rc;
}

int lp_es_check_privileges(lp_es *es, const char *const *cluster, const char *index_pattern,
                           const char *const *index_privs, lp_error *e)
{
    lp_buf missing = LP_BUF_INIT;
    int has = lp_es_has_privileges(es, cluster, index_pattern, index_privs, &missing, e);
    if (!has)
        lp_fail(e, LP_EXIT_USAGE, "Elasticsearch at %s (--es): the user or API key lacks %s "
                "(grant it in a role: docs/deploy.md lists what logpipe needs)", es->url,
                missing.len ? lp_buf_cstr(&missing) : "a privilege it needs");
    lp_buf_free(&missing);
    return has == 1 ? 0 : -1;
}

/* A blocking request's failure as an error naming what was asked: transport,
 * authentication, or the status and the start of the answer. */
static int request_failed(lp_es *es, const reply *r, const char *what, lp_error *e)
{
    if (r->code != CURLE_OK)
        return transport_error(es, r, e);
    if (r->status == 401)
        return auth_error(es, r->status, e);
    return lp_fail(e, r->status == 403 ? LP_EXIT_USAGE : LP_EXIT_ES, "%s failed (HTTP %ld): %.300s", what,
                   r->status, r->body.buf.data ? r->body.buf.data : "");
}

int lp_es_install_template(lp_es *es, const lp_es_template *t, lp_error *e)
{
    lp_buf body = LP_BUF_INIT, path = LP_BUF_INIT, what = LP_BUF_INIT;
    lp_es_template_body(&body, t, NULL);
    lp_buf_printf(&path, "/_index_template/%s", t->name);
    lp_buf_printf(&what, "installing index template %s", t->name);
    reply r = {0};
    request(es, "PUT", lp_buf_cstr(&path), lp_buf_cstr(&body), 30000, &r);
    int rc = r.code == CURLE_OK && r.status == 200 ? 0 : request_failed(es, &r, lp_buf_cstr(&what), e);
    lp_buf_free(&r.body.buf);
    lp_buf_free(&body);
    lp_buf_free(&path);
    lp_buf_free(&what);
    return rc;
}

int lp_es_template_check(lp_es *es, const lp_es_template *t, lp_es_template_state *state, lp_error *e)
{
    lp_buf path = LP_BUF_INIT, what = LP_BUF_INIT;
    lp_buf_printf(&path, "/_index_template/%s", t->name);
    lp_buf_printf(&what, "reading index template %s", t->name);
    reply r = {0};
    request(es, "GET", lp_buf_cstr(&path), NULL, 30000, &r);
    int rc = 0;
    *state = LP_TEMPLATE_MISSING;
    if (r.code == CURLE_OK && r.status == 200) {
        char want[17];
        lp_buf body = LP_BUF_INIT;
        lp_es_template_body(&body, t, want);
        lp_buf_free(&body);
        json_t *root = json_loadb(r.body.buf.data ? r.body.buf.data : "", r.body.buf.len, 0, NULL);
        json_t *tpl = json_object_get(json_array_get(json_object_get(root, "index_templates"), 0), "index_template");
        const char *have = json_string_value(json_object_get(json_object_get(tpl, "_meta"), LP_ES_TEMPLATE_STAMP_KEY));
        *state = have && !strcmp(have, want) ? LP_TEMPLATE_CURRENT : LP_TEMPLATE_STALE;
        json_decref(root);
    } else if (!(r.code == CURLE_OK && r.status == 404)) {
        rc = request_failed(es, &r, lp_buf_cstr(&what), e);
    }
    lp_buf_free(&r.body.buf);
    lp_buf_free(&path);
    lp_buf_free(&what);
    return rc;
}

int lp_es_create_data_stream(lp_es *es, const char *name, lp_error *e)
{
    lp_buf path = LP_BUF_INIT, what = LP_BUF_INIT;
    lp_buf_printf(&path, "/_data_stream/%s", name);
    lp_buf_printf(&what, "creating data stream %s", name);
    reply r = {0};
    request(es, "PUT", lp_buf_cstr(&path), NULL, 30000, &r);
    const char *answer = r.body.buf.data ? lp_buf_cstr(&r.body.buf) : "";
    int rc;
    if (r.code == CURLE_OK && r.status == 200)
        rc = 1;
    else if (r.code == CURLE_OK && r.status == 400 && strstr(answer, "resource_already_exists_exception"))
        rc = 0;
    else if (r.code == CURLE_OK && r.status == 405)
        rc = lp_fail(e, LP_EXIT_USAGE, "Elasticsearch at %s (--es) has no data stream API (HTTP 405 for PUT "
                     "_data_stream: a distribution without the data-streams module); the template is installed, "
                     "and the first write creates data stream %s", es->url, name);
    else
        rc = request_failed(es, &r, lp_buf_cstr(&what), e);
    lp_buf_free(&r.body.buf);
    lp_buf_free(&path);
    lp_buf_free(&what);
    return rc;
}

/* ---- bulk requests --------------------------------------------------------- */

void lp_es_submit(lp_es *es, lp_bulk *b, lp_bulk_done_fn on_done, void *ctx, void *opaque)
{
    b->on_done = on_done;
    b->ctx = ctx;
    b->opaque = opaque;
    b->retry_at_ms = 0;
    b->next = NULL;
    es->pending++; /* a bulk with no pending items completes at the next poll */
    if (es->tail)
        es->tail->next = b;
    else
        es->head = b;
    es->tail = b;
}

static void start_request(lp_es *es, slot *s, lp_bulk *b)
{
    const char *body;
    size_t len;
    if (es->opts.gzip)
        lp_bulk_prepare_gzip(b, es->gzip, &s->req, &s->gz, &body, &len);
    else
        lp_bulk_prepare_request(b, &s->req, &body, &len);
    if (!s->easy) {
        s->easy = curl_easy_init();
        apply_common(es, s->easy);
        curl_easy_setopt(s->easy, CURLOPT_URL, es->bulk_url);
        s->hdrs = headers(es, 1, es->opts.gzip);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->resp);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    }
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    size_t max = BULK_RESPONSE_BASE + BULK_RESPONSE_PER_ITEM * b->pending;
    curl_easy_setopt(s->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    sink_reset(&s->resp, max);
    s->bulk = b;
    b->attempts++;
    es->busy++;
    es->stats.requests++;
    es->stats.bytes_sent += len;
    lp_count(LP_C_ES_BYTES, len);
    lp_gauge_set(LP_G_BULKS_IN_FLIGHT, es->busy);
    curl_multi_add_handle(es->multi, s->easy);
}

static void finish(lp_es *es, lp_bulk *b)
{
    es->pending--;
    b->on_done(b->ctx, b, b->opaque);
}

/* Starts waiting bulks whose time has come on free slots; completes empty ones. */
static void dispatch(lp_es *es)
{
    int64_t now = lp_monotonic_ms();
    lp_bulk **link = &es->head, *prev = NULL;
    while (*link && es->busy < es->nslots) {
        lp_bulk *b = *link;
        if (b->retry_at_ms > now) {
            prev = b;
            link = &b->next;
            continue;
        }
        *link = b->next;
        if (es->tail == b)
            es->tail = prev;
        b->next = NULL;
        if (b->pending == 0) {
            finish(es, b);
            continue;
        }
        for (int i = 0; i < es->nslots; i++)
            if (!es->slots[i].bulk) {
                start_request(es, &es->slots[i], b);
                break;
            }
    }
}

static int64_t backoff_ms(lp_es *es)
{
    unsigned shift = es->failures < 20 ? es->failures : 20;
    int64_t d = es->opts.backoff_base_ms << shift;
    if (d > es->opts.backoff_max_ms)
        d = es->opts.backoff_max_ms;
    es->rng = es->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return d / 2 + (int64_t)((es->rng >> 33) % (uint64_t)(d / 2 + 1));
}

static void requeue(lp_es *es, lp_bulk *b, int64_t delay_ms)
{
    b->retry_at_ms = lp_monotonic_ms() + delay_ms;
    b->next = es->head; /* retries go first: their offsets block the commit */
    es->head = b;
    if (!es->tail)
        es->tail = b;
}

static void set_fatal(lp_es *es, const char *fmt, long status, const char *detail)
{
    snprintf(es->fatal, sizeof es->fatal, fmt, es->url, status, detail);
}

/* A bulk to try again after the backoff, unless it has made no progress
 * for retry_limit_ms: an Elasticsearch that keeps refusing (a 429 that
 * never clears, a shard that never comes back) would otherwise hold every
 * later commit back forever without a word. */
static void retry_later(lp_es *es, lp_bulk *b, const char *why)
{
    int64_t now = lp_monotonic_ms();
    if (!b->first_failure_ms)
        b->first_failure_ms = now;
    if (now - b->first_failure_ms >= es->opts.retry_limit_ms) {
        snprintf(es->fatal, sizeof es->fatal,
                 "Elasticsearch at %s (--es) did not acknowledge a bulk after %.0f s of retries (--retry-limit): "
                 "its messages were not committed and will be consumed again; last answer: %s",
                 es->url, (double)es->opts.retry_limit_ms / 1000.0, why);
        requeue(es, b, 0);
        return;
    }
    requeue(es, b, backoff_ms(es));
}

static void completed(lp_es *es, slot *s, CURLcode code)
{
    lp_bulk *b = s->bulk;
    long status = 0;
    char why[700] = "";
    double took = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME, &took);
    curl_multi_remove_handle(es->multi, s->easy);
    s->bulk = NULL;
    es->busy--;
    lp_gauge_set(LP_G_BULKS_IN_FLIGHT, es->busy);
    lp_metrics_observe_bulk(took);
    if (s->resp.too_large || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(es->fatal, sizeof es->fatal, "Elasticsearch at %s (--es) answered _bulk with more than %zu KiB "
                 "(decompressed), more than %zu items can need: refused", es->url, s->resp.max >> 10,
                 (size_t)b->pending);
    } else if (code == CURLE_OK && status == 200) {
        lp_error err;
        size_t before = b->pending;
        long left = lp_bulk_read_response(b, s->resp.buf.data ? s->resp.buf.data : "", s->resp.buf.len, &err);
        lp_metrics_es_result(1, NULL);
        lp_count(left == 0 ? LP_C_BULK_OK : left > 0 ? LP_C_BULK_PARTIAL : LP_C_BULK_ERROR, 1);
        if (left == 0) {
            es->failures = 0;
            finish(es, b);
            return;
        }
        if (left == LP_BULK_BLOCKED) { /* not the documents' fault: never complete this bulk */
            snprintf(es->fatal, sizeof es->fatal, "%s", err.msg);
            requeue(es, b, 0);
            return;
        }
        if (left > 0) {
            es->stats.item_retries += (uint64_t)left;
            lp_count(LP_C_RETRIES, (uint64_t)left);
            es->failures++;
            if ((size_t)left < before) /* progress: the limit counts from here */
                b->first_failure_ms = 0;
            retry_later(es, b, b->retry_note);
            return;
        }
        /* An unreadable response: resend the whole request. */
        snprintf(why, sizeof why, "%.600s", err.msg);
    } else if (code == CURLE_OK && (status == 401 || status == 403)) {
        set_fatal(es, "Elasticsearch at %s (--es) refused authentication (HTTP %ld)%s", status, "");
        if (status == 401) /* a refused login, as auth_error's; a 403 is a privilege lost mid-run: exit 4 */
            es->fatal_code = LP_EXIT_USAGE;
    } else if (code == CURLE_OK && status == 413) {
        set_fatal(es, "Elasticsearch at %s (--es) refused a _bulk request as too large (HTTP %ld)%s: "
                      "lower --batch-bytes", status, "");
    } else if (code == CURLE_OK && status >= 400 && status < 500 && status != 429 && status != 408) {
        set_fatal(es, "Elasticsearch at %s (--es) answered _bulk with HTTP %ld: %.300s", status,
                  s->resp.buf.data ? lp_buf_cstr(&s->resp.buf) : "");
    } else if (code == CURLE_OK) {
        snprintf(why, sizeof why, "_bulk answered HTTP %ld", status);
    } else {
        snprintf(why, sizeof why, "%s", curl_easy_strerror(code));
    }
    es->stats.request_retries++;
    lp_count(LP_C_RETRIES, 1);
    if (!(code == CURLE_OK && status == 200))
        lp_count(LP_C_BULK_ERROR, 1);
    if (code != CURLE_OK || status >= 500 || status == 429)
        lp_metrics_es_result(0, why);
    es->failures++;
    if (es->fatal[0])
        requeue(es, b, 0);
    else
        retry_later(es, b, why);
}

static int next_timer_ms(lp_es *es, int timeout_ms)
{
    if (es->busy >= es->nslots)
        return timeout_ms;
    int64_t now = lp_monotonic_ms();
    for (lp_bulk *b = es->head; b; b = b->next) {
        int64_t wait = b->retry_at_ms - now;
        if (wait <= 0)
            return 0;
        if (wait < timeout_ms)
            timeout_ms = (int)wait;
    }
    return timeout_ms;
}

int lp_es_poll(lp_es *es, int timeout_ms, lp_error *e)
{
    if (es->fatal[0])
        return lp_fail(e, es->fatal_code ? es->fatal_code : LP_EXIT_ES, "%s", es->fatal);
    dispatch(es);
    int running = 0;
    int wait = next_timer_ms(es, timeout_ms);
    if (wait > 0 && (es->busy || es->head))
        curl_multi_poll(es->multi, NULL, 0, wait, NULL);
    curl_multi_perform(es->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(es->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        slot *s;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        completed(es, s, m->data.result);
    }
    if (es->fatal[0])
        return lp_fail(e, es->fatal_code ? es->fatal_code : LP_EXIT_ES, "%s", es->fatal);
    dispatch(es);
    return 0;
}

size_t lp_es_pending(const lp_es *es) { return es->pending; }

void lp_es_get_stats(const lp_es *es, lp_es_stats *out) { *out = es->stats; }
