/*
 * test_cli.c: the logpipe binary's contract with its users: help, exit
 * codes, and errors that name the option at fault, all before any network
 * connection is attempted (127.0.0.1:1 is never listened on).
 */
#include <stdlib.h>
#include <sys/wait.h>

#include "check.h"
#include "consume/consume.h"

static char output[65536];

/* Runs a shell command line with $LOGPIPE; returns the exit status. */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "{ \"%s\" %s ; } 2>&1", getenv("LOGPIPE_BIN"), args);
    FILE *f = popen(cmd, "r");
    size_t n = fread(output, 1, sizeof output - 1, f);
    output[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_help(void)
{
    CHECK_INT(run("--help"), 0);
    const char *cmds[] = {"generate", "parse", "produce", "consume"};
    for (int i = 0; i < 4; i++)
        CHECK_CONTAINS(output, cmds[i]);
    CHECK_INT(run("consume --help"), 0);
    CHECK_CONTAINS(output, "--until-idle");
    CHECK_CONTAINS(output, "--dlq-topic");
    CHECK_INT(run("produce --help"), 0);
    CHECK_CONTAINS(output, "--compression");
    CHECK_INT(run("bogus"), 2);
    CHECK_CONTAINS(output, "unknown command 'bogus'");
}

static void test_usage_errors(void)
{
    CHECK_INT(run("generate --count abc"), 2);
    CHECK_CONTAINS(output, "--count");
    CHECK_INT(run("generate --malformed-ratio 1.5"), 2);
    CHECK_CONTAINS(output, "--malformed-ratio");
    CHECK_INT(run("generate --format xml"), 2);
    CHECK_INT(run("generate --nope"), 2);
    CHECK_INT(run("parse --timezone Nowhere/Land < /dev/null"), 2);
    CHECK_CONTAINS(output, "--timezone");
    CHECK_INT(run("parse --rejects /nonexistent/dir/x < /dev/null"), 2);
    CHECK_CONTAINS(output, "--rejects");
    CHECK_INT(run("produce --topic t"), 2);
    CHECK_CONTAINS(output, "--brokers is required");
    CHECK_INT(run("produce --brokers 127.0.0.1:1"), 2);
    CHECK_CONTAINS(output, "--topic is required");
    CHECK_INT(run("produce --brokers 'host:notaport' --topic t"), 2);
    CHECK_CONTAINS(output, "--brokers");
    CHECK_INT(run("produce --brokers 127.0.0.1:1 --topic t -X linger.ms=abc"), 2);
    CHECK_CONTAINS(output, "linger.ms");
    CHECK_INT(run("produce --brokers 127.0.0.1:1 --topic t -X nonsense"), 2);
    CHECK_CONTAINS(output, "-X nonsense");
    CHECK_INT(run("consume --brokers 127.0.0.1:1 --topic t --group g"), 2);
    CHECK_CONTAINS(output, "--es is required");
    CHECK_INT(run("consume --brokers 127.0.0.1:1 --topic t --es http://127.0.0.1:1"), 2);
    CHECK_CONTAINS(output, "--group is required");
    CHECK_INT(run("consume -b 127.0.0.1:1 -t t -g g -e ftp://x"), 2);
    CHECK_CONTAINS(output, "--es");
    CHECK_INT(run("consume -b 127.0.0.1:1 -t t -g g -e http://user:pw@127.0.0.1:1"), 2);
    CHECK_CONTAINS(output, "credentials in the URL");
    CHECK(!strstr(output, "pw@")); /* the secret is not echoed */
    CHECK_INT(run("consume -b 127.0.0.1:1 -t t -g g -e http://127.0.0.1:1 --index Bad/Name"), 2);
    CHECK_CONTAINS(output, "--index");
    CHECK_INT(run("consume -b 127.0.0.1:1 -t t -g g -e http://127.0.0.1:1 -X socket.timeout.ms=x"), 2);
    CHECK_CONTAINS(output, "socket.timeout.ms");
}

static void test_unreachable(void)
{
    CHECK_INT(run("produce -b 127.0.0.1:1 -t t --count 1 --connect-timeout 1"), 3);
    CHECK_CONTAINS(output, "--brokers");
    CHECK_INT(run("consume -b 127.0.0.1:1 -t t -g g -e http://127.0.0.1:1 --connect-timeout 1"), 3);
    CHECK_CONTAINS(output, "\"exit_code\":3");
}

static void test_parse_cli(void)
{
    CHECK_INT(run("generate --count 1000 --seed 7 | \"$LOGPIPE_BIN\" parse | wc -l"), 0);
    CHECK_CONTAINS(output, "1000 lines, 1000 documents, 0 rejected");
    CHECK_INT(run("generate --count 2000 --seed 7 --malformed-ratio 0.1 | \"$LOGPIPE_BIN\" parse "
                  "--rejects /tmp/logpipe-test-rejects.ndjson > /dev/null"),
              0);
    CHECK_CONTAINS(output, "2000 lines, ");
    unsigned docs = 0, rejected = 0, lines = 0, reasons = 0;
    const char *summary = strstr(output, "2000 lines, ");
    CHECK(summary && sscanf(summary, "2000 lines, %u documents, %u rejected", &docs, &rejected) == 2);
    CHECK_INT(docs + rejected, 2000);
    CHECK(rejected > 100 && rejected < 300);
    /* every rejected line is in the rejects file, each with a reason */
    CHECK_INT(run("--version >/dev/null; wc -l < /tmp/logpipe-test-rejects.ndjson; "
                  "grep -c '^{\"reason\":\"[^\"]' /tmp/logpipe-test-rejects.ndjson"), 0);
    CHECK(sscanf(output, "%u %u", &lines, &reasons) == 2);
    CHECK_INT(lines, rejected);
    CHECK_INT(reasons, rejected);
    /* usage output goes to the right place and nothing is read */
    CHECK_INT(run("parse extra-arg < /dev/null"), 2);
}

static void test_index_names(void)
{
    lp_buf b = LP_BUF_INIT, n = LP_BUF_INIT, p = LP_BUF_INIT;
    lp_index_name("logs-access-%Y.%m.%d", 1769034220, &b);
    CHECK_STR(lp_buf_cstr(&b), "logs-access-2026.01.21");
    lp_buf_reset(&b);
    lp_index_name("h-%Y%m%d%H-100%%", 1769034220, &b);
    CHECK_STR(lp_buf_cstr(&b), "h-2026012122-100%");
    lp_buf_reset(&b);
    lp_index_name("fixed", 1769034220, &b);
    CHECK_STR(lp_buf_cstr(&b), "fixed");
    /* The consumer's hourly cache floors the hour: one second before 1970
     * is another hour (and day) than 1970's first, as in every other year. */
    lp_index_cache ic;
    lp_index_cache_init(&ic, "h-%Y.%m.%d.%H");
    CHECK_INT(lp_index_cache_set(&ic, -1), 1);
    CHECK_STR(lp_buf_cstr(&ic.name), "h-1969.12.31.23");
    CHECK_INT(lp_index_cache_set(&ic, 0), 1);
    CHECK_STR(lp_buf_cstr(&ic.name), "h-1970.01.01.00");
    CHECK_INT(lp_index_cache_set(&ic, 3599), 0);
    CHECK_INT(lp_index_cache_set(&ic, -3600), 1);
    CHECK_STR(lp_buf_cstr(&ic.name), "h-1969.12.31.23");
    CHECK_INT(lp_index_cache_set(&ic, -3601), 1);
    CHECK_STR(lp_buf_cstr(&ic.name), "h-1969.12.31.22");
    CHECK_INT(lp_index_cache_set(&ic, -86401), 1);
    CHECK_STR(lp_buf_cstr(&ic.name), "h-1969.12.30.23");
    lp_index_cache_free(&ic);
    lp_index_cache_init(&ic, "fixed");
    CHECK_INT(lp_index_cache_set(&ic, -1), 0);
    CHECK_STR(lp_buf_cstr(&ic.name), "fixed");
    lp_index_cache_free(&ic);
    lp_index_template_names("logs-access-%Y.%m.%d", &n, &p);
    CHECK_STR(lp_buf_cstr(&n), "logpipe-logs-access");
    CHECK_STR(lp_buf_cstr(&p), "logs-access-*");
    lp_buf_reset(&n);
    lp_buf_reset(&p);
    lp_index_template_names("demo", &n, &p);
    CHECK_STR(lp_buf_cstr(&p), "demo");
    lp_buf_free(&b);
    lp_buf_free(&n);
    lp_buf_free(&p);
}

int main(void)
{
    if (!getenv("LOGPIPE_BIN")) {
        fprintf(stderr, "LOGPIPE_BIN is not set (ctest sets it)\n");
        return 1;
    }
    test_help();
    test_usage_errors();
    test_unreachable();
    test_parse_cli();
    test_index_names();
    return CHECK_DONE();
}
