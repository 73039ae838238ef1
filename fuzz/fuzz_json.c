/*
 * fuzz_json.c: libFuzzer target for the JSON string writer. The output must
 * always be a valid JSON string; when the input is valid UTF-8, decoding it
 * with jansson must give back exactly the input bytes (NUL included).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static int valid_utf8(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = lp_utf8_seq_len(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const char *data, size_t size)
{
    static lp_buf out = LP_BUF_INIT;
    lp_buf_reset(&out);
    lp_buf_puts_lit(&out, "[");
    lp_json_str(&out, data, size);
    lp_buf_puts_lit(&out, "]");
    json_error_t err;
    json_t *arr = json_loadb(out.data, out.len, JSON_ALLOW_NUL, &err);
    if (!arr)
        abort();
    json_t *s = json_array_get(arr, 0);
    if (valid_utf8((const unsigned char *)data, size) &&
        (json_string_length(s) != size || memcmp(json_string_value(s), data, size)))
        abort();
    json_decref(arr);
    return 0;
}
