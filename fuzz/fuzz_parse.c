/*
 * fuzz_parse.c: libFuzzer target for the line parser (every format, auto
 * detection). Whatever the bytes, the parser must not crash, must leave the
 * output untouched on a reject, and every document it accepts must be valid
 * JSON whose @timestamp reads back. event.original is kept: the whole line,
 * whatever its bytes, goes through the string writer once more.
 */
#include <jansson.h>
#include <stdlib.h>

#include "parse/parse.h"

int LLVMFuzzerTestOneInput(const char *data, size_t size)
{
    static lp_parser *parser;
    static lp_buf out = LP_BUF_INIT;
    if (!parser) {
        lp_parse_opts o = {.format = LP_FORMAT_AUTO, .timezone = "Europe/Paris", .keep_original = 1};
        parser = lp_parser_new(&o, NULL);
    }
    lp_buf_reset(&out);
    lp_buf_puts_lit(&out, "x");
    lp_parse_result r;
    if (lp_parse_line(parser, data, size, &out, &r) != 0) {
        if (out.len != 1 || !r.reject_reason)
            abort();
        return 0;
    }
    json_error_t err;
    json_t *doc = json_loadb(out.data + 1, out.len - 1, JSON_ALLOW_NUL, &err);
    if (!doc || !json_string_value(json_object_get(doc, "@timestamp")) ||
        !json_string_value(json_object_get(json_object_get(doc, "event"), "original")))
        abort();
    json_decref(doc);
    return 0;
}
