/*
 * bulk_internal.h: the inside of lp_bulk, shared by bulk.c (bodies and
 * responses) and client.c (sending and retrying). Not part of es.h: callers
 * only see items and their outcomes.
 */
#ifndef LP_BULK_INTERNAL_H
#define LP_BULK_INTERNAL_H

#include "elasticsearch/es.h"

typedef struct lp_bulk_item {
    size_t off, len; /* action + document lines in body */
    size_t reason;   /* offset of the refusal reason in reasons */
    uint16_t status;
    uint8_t state; /* lp_item_state */
} lp_bulk_item;

struct lp_bulk {
    lp_buf body;
    /* With gzip, the whole body compressed at its first attempt; the body is
     * then released (body_released, its size in body_len) until a rare path
     * needs the documents again (restore_body): in-flight and completed
     * batches would otherwise each hold ~1.3 MB of NDJSON for ~0.2 MB sent. */
    lp_buf gz;
    size_t body_len;
    int body_released;
    lp_buf reasons;
    lp_bulk_item *items;
    size_t n, cap, pending;
    size_t open_index_at, open_index_len; /* the open item's escaped index name */
    int create;                           /* "create" actions, not "index" (lp_bulk_set_create) */
    size_t *sent; /* item indices in the request in flight */
    size_t nsent, nsent_cap;
    /* owned by the client while submitted */
    lp_bulk_done_fn on_done;
    void *ctx, *opaque;
    unsigned attempts;
    int64_t retry_at_ms;
    int64_t first_failure_ms; /* first failed attempt since the last success, 0 if none */
    char retry_note[640];     /* why items of the last response stay pending, for the report */
    struct lp_bulk *next;
};

struct libdeflate_compressor;

/* Points body/len at the request for the pending items: the whole body on a
 * first attempt, else their spans copied into req. Records which items are
 * sent, so lp_bulk_read_response can map results back. */
void lp_bulk_prepare_request(lp_bulk *b, lp_buf *req, const char **body, size_t *len);
/* The same request gzip-compressed: the whole body is compressed once into
 * the bulk (resent as is if every item fails) and the body released; a
 * retry of some items is compressed into gz. */
void lp_bulk_prepare_gzip(lp_bulk *b, struct libdeflate_compressor *c, lp_buf *req, lp_buf *gz,
                          const char **body, size_t *len);

#endif
