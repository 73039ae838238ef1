/*
 * fuzz_bulk_response.c: libFuzzer target for the _bulk response reader,
 * the one place that reads what a server (or a proxy) chooses to send. It
 * must never crash, never mark an item twice, and keep its pending count
 * equal to the items still pending.
 */
#include <stdlib.h>

#include "elasticsearch/bulk_internal.h"

int LLVMFuzzerTestOneInput(const char *data, size_t size)
{
    static lp_bulk *b;
    static lp_buf req = LP_BUF_INIT;
    if (!b)
        b = lp_bulk_new();
    lp_bulk_reset(b);
    for (int i = 0; i < 3; i++)
        lp_bulk_add(b, "i", 1, "id", 2, "{}", 2);
    const char *body;
    size_t len;
    lp_bulk_prepare_request(b, &req, &body, &len);
    lp_error e;
    long left = lp_bulk_read_response(b, data, size, &e);
    size_t pending = 0;
    for (size_t i = 0; i < lp_bulk_items(b); i++)
        pending += lp_bulk_item_state(b, i, NULL, NULL) == LP_ITEM_PENDING;
    if (left >= 0 && (size_t)left != pending)
        abort();
    if (left > 0) { /* a retry request and its response map back too */
        lp_bulk_prepare_request(b, &req, &body, &len);
        lp_bulk_read_response(b, data, size, &e);
    }
    return 0;
}
