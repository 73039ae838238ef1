/* test_json.c: JSON string escaping and UTF-8 repair (lib/core/json.c). */
#include <string.h>

#include "check.h"
#include "core/json.h"

static const char *esc(const char *s, size_t n)
{
    static lp_buf b = LP_BUF_INIT;
    lp_buf_reset(&b);
    lp_json_str(&b, s, n);
    return lp_buf_cstr(&b);
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

static const char *unesc(const char *s)
{
    static lp_buf b = LP_BUF_INIT;
    lp_buf_reset(&b);
    lp_json_str_unescaping(&b, s, strlen(s));
    return lp_buf_cstr(&b);
}

int main(void)
{
    CHECK_STR(ESC("plain"), "\"plain\"");
    CHECK_STR(ESC(""), "\"\"");
    CHECK_STR(ESC("a\"b\\c"), "\"a\\\"b\\\\c\"");
    CHECK_STR(ESC("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
    CHECK_STR(ESC("nul\0byte"), "\"nul\\u0000byte\"");
    CHECK_STR(ESC("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
    /* Well-formed multi-byte sequences pass through unchanged. */
    CHECK_STR(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* Invalid: stray continuation, overlong, surrogate, > U+10FFFF, truncated. */
    CHECK_STR(ESC("\x80"), "\"\xef\xbf\xbd\"");
    CHECK_STR(ESC("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK_STR(ESC("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK_STR(ESC("\xf4\x90\x80\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK_STR(ESC("ab\xe2\x82"), "\"ab\xef\xbf\xbd\xef\xbf\xbd\"");
    /* Past 16 bytes (the vector path): a byte to escape at every kind of
     * position, in the first block, a later block and the 1-15 byte tail. */
    CHECK_STR(ESC("0123456789abcdef0123456789abcdef"), "\"0123456789abcdef0123456789abcdef\"");
    CHECK_STR(ESC("0123456789abcde\"0123456789abcdef\n"), "\"0123456789abcde\\\"0123456789abcdef\\n\"");
    CHECK_STR(ESC("0123456789abcdef0123456\xc3\xa9" "789abcdef\x80" "xyz"),
              "\"0123456789abcdef0123456\xc3\xa9" "789abcdef\xef\xbf\xbd" "xyz\"");
    /* A web server's quoted field: \" and \\ resolved, anything else kept. */
    CHECK_STR(unesc("Mozilla \\\"quoted\\\" and \\\\ and \\x41 and a trailing \\"),
              "\"Mozilla \\\"quoted\\\" and \\\\ and \\\\x41 and a trailing \\\\\"");
    CHECK_STR(unesc("no escapes at all, but longer than sixteen bytes"),
              "\"no escapes at all, but longer than sixteen bytes\"");
    CHECK_INT(lp_utf8_seq_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    CHECK_INT(lp_utf8_seq_len((const unsigned char *)"\xf0\x9f\x98", 3), 0);
    return CHECK_DONE();
}
