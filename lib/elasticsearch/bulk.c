/*
 * bulk.c: _bulk request bodies and the reader of _bulk responses.
 *
 * A bulk is one NDJSON body plus a span per item (where its action and
 * document lines sit in the body), so a retry can resend just the items that
 * came back 429/5xx by concatenating their spans, without rebuilding
 * anything. With gzip the body is compressed once, at its first attempt,
 * and released: a bulk in flight or done holds a seventh of its bytes, and
 * only the rare paths that need the documents again (a retry of some items,
 * a blocked item's index name) decompress it. Refusal reasons are kept in
 * one per-bulk string arena: nothing is allocated per item once the bulk
 * has grown.
 *
 * Response reading is the one place that must not trust its input (a proxy
 * can answer anything), so every shape is checked and a surprise is an
 * error, never a guess about which item failed. It also decides whose fault
 * a refused item is (is_document_fault): only a document that cannot fit
 * the index may go to the dead-letter topic.
 */
#include <jansson.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "elasticsearch/bulk_internal.h"

lp_bulk *lp_bulk_new(void) { return lp_xcalloc(1, sizeof(lp_bulk)); }

void lp_bulk_free(lp_bulk *b)
{
    if (!b)
        return;
    lp_buf_free(&b->body);
    lp_buf_free(&b->gz);
    lp_buf_free(&b->reasons);
    free(b->items);
    free(b->sent);
    free(b);
}

void lp_bulk_reset(lp_bulk *b)
{
    lp_buf_reset(&b->body);
    lp_buf_reset(&b->gz);
    b->body_released = 0;
    lp_buf_reset(&b->reasons);
    b->n = b->pending = b->nsent = 0;
    b->attempts = 0;
    b->retry_at_ms = b->first_failure_ms = 0;
    b->retry_note[0] = '\0';
    b->next = NULL;
}

lp_buf *lp_bulk_begin(lp_bulk *b, const char *index, size_t index_len, const char *id, size_t id_len)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->items = lp_xrealloc(b->items, b->cap * sizeof *b->items);
    }
    b->items[b->n].off = b->body.len;
    if (b->create)
        lp_buf_puts_lit(&b->body, "{\"create\":{\"_index\":");
    else
        lp_buf_puts_lit(&b->body, "{\"index\":{\"_index\":");
    b->open_index_at = b->body.len;
    lp_json_str(&b->body, index, index_len);
    b->open_index_len = b->body.len - b->open_index_at;
    lp_buf_puts_lit(&b->body, ",\"_id\":");
    lp_json_str(&b->body, id, id_len);
    lp_buf_puts_lit(&b->body, "}}\n");
    return &b->body;
}

void lp_bulk_set_create(lp_bulk *b, int create) { b->create = create; }

int lp_bulk_set_index(lp_bulk *b, const char *index, size_t index_len)
{
    lp_buf tmp = LP_BUF_INIT;
    lp_json_str(&tmp, index, index_len);
    int ok = tmp.len == b->open_index_len;
    if (ok)
        memcpy(b->body.data + b->open_index_at, tmp.data, tmp.len);
    lp_buf_free(&tmp);
    return ok ? 0 : -1;
}

void lp_bulk_end(lp_bulk *b, int keep)
{
    lp_bulk_item *it = &b->items[b->n];
    if (!keep) {
        b->body.len = it->off;
        return;
    }
    lp_buf_putc(&b->body, '\n');
    it->len = b->body.len - it->off;
    it->state = LP_ITEM_PENDING;
    it->status = 0;
    it->reason = 0;
    b->n++;
    b->pending++;
}

void lp_bulk_add(lp_bulk *b, const char *index, size_t index_len, const char *id, size_t id_len,
                 const char *doc, size_t doc_len)
{
    lp_buf_append(lp_bulk_begin(b, index, index_len, id, id_len), doc, doc_len);
    lp_bulk_end(b, 1);
}

size_t lp_bulk_items(const lp_bulk *b) { return b->n; }
size_t lp_bulk_bytes(const lp_bulk *b) { return b->body_released ? b->body_len : b->body.len; }

lp_item_state lp_bulk_item_state(const lp_bulk *b, size_t i, int *status, const char **reason)
{
    const lp_bulk_item *it = &b->items[i];
    if (status)
        *status = it->status;
    if (reason)
        *reason = it->state == LP_ITEM_REFUSED ? b->reasons.data + it->reason : NULL;
    return (lp_item_state)it->state;
}

/* The body back from its gzip copy, for the rare paths that need the
 * documents again: a retry of some items, a refusal's index name. */
static void restore_body(lp_bulk *b)
{
    if (!b->body_released)
        return;
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t n = 0;
    lp_buf_grow(&b->body, b->body_len);
    if (!d || libdeflate_gzip_decompress(d, b->gz.data, b->gz.len, b->body.data, b->body_len, &n) !=
                  LIBDEFLATE_SUCCESS || n != b->body_len)
        abort(); /* our own compression of our own memory, or no memory */
    libdeflate_free_decompressor(d);
    b->body.len = b->body_len;
    b->body_released = 0;
}

/* Records the pending items as the ones sent; returns 1 if that is all. */
static int mark_sent(lp_bulk *b)
{
    if (b->nsent_cap < b->n) {
        b->nsent_cap = b->cap;
        b->sent = lp_xrealloc(b->sent, b->nsent_cap * sizeof *b->sent);
    }
    b->nsent = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].state == LP_ITEM_PENDING)
            b->sent[b->nsent++] = i;
    return b->nsent == b->n;
}

static void copy_sent_spans(lp_bulk *b, lp_buf *req)
{
    restore_body(b);
    lp_buf_reset(req);
    for (size_t k = 0; k < b->nsent; k++) {
        const lp_bulk_item *it = &b->items[b->sent[k]];
        lp_buf_append(req, b->body.data + it->off, it->len);
    }
}

void lp_bulk_prepare_request(lp_bulk *b, lp_buf *req, const char **body, size_t *len)
{
    if (mark_sent(b)) { /* first attempt, or all failed: the body as built */
        restore_body(b);
        *body = b->body.data;
        *len = b->body.len;
        return;
    }
    copy_sent_spans(b, req);
    *body = req->data;
    *len = req->len;
}

/* Access-log JSON compresses about 10:1, so the output is first tried in
 * a quarter of the input, and in libdeflate's bound only if that is too
 * small: sized by the bound, each buffer would be as large as its body for
 * ~0.2 MB of output. libdeflate compresses a whole buffer in one call,
 * level 1 about 20% faster than zlib's level 1 and 7% smaller
 * (docs/performance.md). */
static void gzip_into(struct libdeflate_compressor *c, const char *src, size_t len, lp_buf *out)
{
    lp_buf_reset(out);
    lp_buf_grow(out, len / 4 + 4096);
    size_t n = libdeflate_gzip_compress(c, src, len, out->data, out->cap);
    if (n == 0) { /* did not fit: the bound always does */
        lp_buf_grow(out, libdeflate_gzip_compress_bound(c, len));
        n = libdeflate_gzip_compress(c, src, len, out->data, out->cap);
        if (n == 0)
            abort(); /* libdeflate's bound is a guarantee */
    }
    out->len = n;
}

void lp_bulk_prepare_gzip(lp_bulk *b, struct libdeflate_compressor *c, lp_buf *req, lp_buf *gz,
                          const char **body, size_t *len)
{
    if (mark_sent(b)) {
        if (!b->gz.len) /* the body is not changed once sent: one compression serves every attempt */
            gzip_into(c, b->body.data, b->body.len, &b->gz);
        if (!b->body_released) {
            b->body_len = b->body.len;
            lp_buf_free(&b->body);
            b->body_released = 1;
        }
        *body = b->gz.data;
        *len = b->gz.len;
        return;
    }
    copy_sent_spans(b, req);
    gzip_into(c, req->data, req->len, gz);
    *body = gz->data;
    *len = gz->len;
}

/* The error types that say the document itself is at fault, so that every
 * retry would fail the same way and the dead-letter topic is its place:
 * the document does not fit the index's mapping. Elasticsearch reports
 * those as mapper_parsing_exception (before 8.8) or document_parsing_exception
 * (8.8 on; strict_dynamic_mapping_exception is its subclass for a field a
 * strict mapping does not have), and Lucene's refusal of a term longer than
 * 32766 bytes as illegal_argument_exception "Document contains at least one
 * immense term". Every other illegal_argument_exception names the request
 * or the index, not the document (a data stream refusing the index op
 * type, an unknown pipeline), like index_closed_exception,
 * index_not_found_exception (action.auto_create_index), validation_exception
 * (the cluster's shard limit), security_exception and cluster_block_exception:
 * dead-lettering would lose every document of that index for a fault an
 * operator can fix, so those stop the run instead. Anything not named here
 * is treated the same way: when in doubt, stop and commit nothing. */
static int is_document_fault(const char *type, const char *reason)
{
    static const char *const document_types[] = {"mapper_parsing_exception", "document_parsing_exception",
                                                 "strict_dynamic_mapping_exception"};
    if (!type)
        return 0;
    for (size_t i = 0; i < sizeof document_types / sizeof *document_types; i++)
        if (!strcmp(type, document_types[i]))
            return 1;
    return !strcmp(type, "illegal_argument_exception") && reason &&
           strstr(reason, "Document contains at least one immense term");
}

/* An action line's or a response item's one member ("index" or "create"). */
static json_t *action_of(json_t *item)
{
    void *it = json_object_size(item) == 1 ? json_object_iter(item) : NULL;
    return it ? json_object_iter_value(it) : NULL;
}

/* A create answered 409 version_conflict_engine_exception: that _id (this
 * topic-partition-offset) is already in the target, so the document is. */
static int already_indexed(const lp_bulk *b, int status, const char *type)
{
    return b->create && status == 409 && type && !strcmp(type, "version_conflict_engine_exception");
}

/* The index an item was sent to, from its action line in the body. */
static void item_index(lp_bulk *b, const lp_bulk_item *it, char *out, size_t len)
{
    restore_body(b);
    const char *line = b->body.data + it->off, *nl = memchr(line, '\n', it->len);
    json_t *action = json_loadb(line, nl ? (size_t)(nl - line) : it->len, 0, NULL);
    const char *name = json_string_value(json_object_get(action_of(action), "_index"));
    snprintf(out, len, "%s", name ? name : "?");
    json_decref(action);
}

static void refuse(lp_bulk *b, lp_bulk_item *it, int status, const char *type, const char *why)
{
    it->state = LP_ITEM_REFUSED;
    it->status = (uint16_t)status;
    it->reason = b->reasons.len;
    lp_buf_printf(&b->reasons, "%.100s: %.400s", type ? type : "error", why ? why : "no reason given");
    lp_buf_putc(&b->reasons, '\0');
    b->pending--;
}

/* The answer of a bulk whose every item succeeded, exactly as filter_path
 * shapes it: {"errors":false,"items":[{"index":{"status":201}},...]}. Read
 * by comparing bytes instead of building a jansson tree (one node per item:
 * the tree was most of the response's cost). Accepts only that exact text
 * with one 2xx status per sent item; anything else (an error, whitespace,
 * another key, a count that differs) returns 0 and is left to the general
 * reader below, which checks every shape. */
static int read_all_ok(lp_bulk *b, const char *p, size_t len, size_t nsent)
{
    static const char head[] = "{\"errors\":false,\"items\":[", item[] = "{\"index\":{\"status\":";
    const size_t head_len = sizeof head - 1, item_len = sizeof item - 1;
    const char *end = p + len;
    if (len < head_len || memcmp(p, head, head_len))
        return 0;
    p += head_len;
    for (size_t k = 0; k < nsent; k++) { /* first pass: the whole text must match */
        if (k && (p == end || *p++ != ','))
            return 0;
        if ((size_t)(end - p) < item_len + 5 || memcmp(p, item, item_len))
            return 0;
        p += item_len;
        if (p[0] != '2' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' || p[3] != '}' || p[4] != '}')
            return 0;
        p += 5;
    }
    if (end - p != 2 || p[0] != ']' || p[1] != '}')
        return 0;
    p = end - 2;
    for (size_t k = nsent; k-- > 0;) { /* second pass, backwards: each item's 2xx status */
        lp_bulk_item *it = &b->items[b->nsent ? b->sent[k] : k];
        p -= 5; /* "2xx}}" */
        if (it->state == LP_ITEM_PENDING) {
            it->state = LP_ITEM_OK;
            it->status = (uint16_t)(200 + (p[1] - '0') * 10 + (p[2] - '0'));
            b->pending--;
        }
        p -= item_len + (k > 0); /* the item's opening and the comma before it */
    }
    b->retry_note[0] = '\0';
    return 1;
}

long lp_bulk_read_response(lp_bulk *b, const char *body, size_t len, lp_error *e)
{
    if (read_all_ok(b, body, len, b->nsent ? b->nsent : b->n))
        return (long)b->pending;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    size_t nsent = b->nsent ? b->nsent : b->n;
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return lp_fail(e, LP_EXIT_ES, "_bulk response is not a JSON object (%s)", root ? "wrong type" : jerr.text);
    }
    json_t *errors = json_object_get(root, "errors"), *items = json_object_get(root, "items");
    size_t got = json_is_array(items) ? json_array_size(items) : 0;
    if (!json_is_boolean(errors) || got != nsent) {
        json_decref(root);
        return lp_fail(e, LP_EXIT_ES,
                       "_bulk response does not list one result per item (sent %zu, got %zu)", nsent, got);
    }
    b->retry_note[0] = '\0';
    for (size_t k = 0; k < nsent; k++) {
        lp_bulk_item *it = &b->items[b->nsent ? b->sent[k] : k];
        json_t *result = action_of(json_array_get(items, k));
        json_t *status = json_object_get(result, "status");
        if (!json_is_integer(status)) {
            json_decref(root);
            return lp_fail(e, LP_EXIT_ES, "_bulk response item %zu has no index status", k);
        }
        int st = (int)json_integer_value(status);
        if (it->state != LP_ITEM_PENDING)
            continue;
        json_t *error = json_object_get(result, "error");
        const char *type = json_string_value(json_object_get(error, "type"));
        const char *why = json_is_string(error) ? json_string_value(error)
                                                : json_string_value(json_object_get(error, "reason"));
        char index[256];
        if ((st >= 200 && st < 300) || already_indexed(b, st, type)) {
            it->state = LP_ITEM_OK;
            it->status = (uint16_t)st;
            b->pending--;
        } else if (st == 429 || st >= 500) {
            it->status = (uint16_t)st; /* stays pending: retried */
            if (!b->retry_note[0]) {
                item_index(b, it, index, sizeof index);
                snprintf(b->retry_note, sizeof b->retry_note, "HTTP %d for index %.120s, %.60s: %.160s", st,
                         index, type ? type : "error", why ? why : "no reason given");
            }
        } else if (is_document_fault(type, why)) {
            refuse(b, it, st, type, why);
        } else {
            item_index(b, it, index, sizeof index);
            lp_fail(e, LP_EXIT_ES,
                    "Elasticsearch refused writing to index %.120s, not for the document's fault: nothing was "
                    "dead-lettered or committed; fix the index and run again (HTTP %d, %.60s: %.160s)",
                    index, st, type ? type : "error", why ? why : "no reason given");
            json_decref(root);
            return LP_BULK_BLOCKED;
        }
    }
    json_decref(root);
    return (long)b->pending;
}
