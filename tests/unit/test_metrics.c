/* test_metrics.c: --metrics-listen's address checks, the lag formula, the
 * statistics reader, the Prometheus text and the health verdict. */
#include <time.h>

#include "check.h"
#include "metrics/metrics.h"

static void listen_checks(void)
{
    lp_error e;
    CHECK_INT(lp_metrics_check_listen("127.0.0.1:9464", &e), 0);
    CHECK_INT(lp_metrics_check_listen("[::1]:0", &e), 0);
    CHECK_INT(lp_metrics_check_listen("localhost:65535", &e), 0);
    const char *bad[] = {":9464", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                         "127.0.0.1:12a", "::1:9464", "[::1]9464", "[]:1", "", "*:9464", "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_INT(lp_metrics_check_listen(bad[i], &e), -1);
        CHECK_INT(e.code, LP_EXIT_USAGE);
        CHECK(strstr(e.msg, "--metrics-listen") != NULL);
    }
}

static void lag(void)
{
    /* read_committed: the last stable offset is the end */
    CHECK_INT(lp_metrics_partition_lag(100, 120, 40, 10, 0), 60);
    /* nothing read yet: from the committed offset, else the log start */
    CHECK_INT(lp_metrics_partition_lag(100, 100, -1001, 10, 0), 90);
    CHECK_INT(lp_metrics_partition_lag(100, 100, -1001, -1001, 5), 95);
    CHECK_INT(lp_metrics_partition_lag(-1001, 100, 100, 10, 0), 0);
    CHECK_INT(lp_metrics_partition_lag(-1001, -1001, 3, 0, 0), -1);
}

static void stats_and_render(void)
{
    const char *stats =
        "{\"type\":\"consumer\",\"brokers\":{\"b:9092/1\":{\"state\":\"UP\",\"nodeid\":1}},"
        "\"topics\":{\"lo\\\"gs\":{\"partitions\":{"
        "\"0\":{\"fetch_state\":\"active\",\"ls_offset\":50,\"hi_offset\":50,\"app_offset\":20,"
        "\"committed_offset\":0,\"lo_offset\":0},"
        "\"1\":{\"fetch_state\":\"none\",\"ls_offset\":50,\"hi_offset\":50,\"app_offset\":20},"
        "\"-1\":{\"fetch_state\":\"none\"}}}}}";
    lp_metrics_read_kafka_stats(stats, strlen(stats));
    lp_count(LP_C_CONSUMED, 7);
    lp_metrics_observe_bulk(0.02);
    lp_metrics_observe_bulk(100);
    lp_buf out = LP_BUF_INIT;
    lp_metrics_render("consume", &out);
    const char *text = lp_buf_cstr(&out);
    CHECK(strstr(text, "logpipe_consumed_messages_total 7\n") != NULL);
    CHECK(strstr(text, "logpipe_partition_lag{topic=\"lo\\\"gs\",partition=\"0\"} 30\n") != NULL);
    CHECK(strstr(text, "partition=\"1\"") == NULL); /* not fetched by this member */
    CHECK(strstr(text, "logpipe_bulk_duration_seconds_bucket{le=\"0.01\"} 0\n") != NULL);
    CHECK(strstr(text, "logpipe_bulk_duration_seconds_bucket{le=\"0.025\"} 1\n") != NULL);
    CHECK(strstr(text, "logpipe_bulk_duration_seconds_bucket{le=\"60\"} 1\n") != NULL);
    CHECK(strstr(text, "logpipe_bulk_duration_seconds_bucket{le=\"+Inf\"} 2\n") != NULL);
    CHECK(strstr(text, "logpipe_bulk_duration_seconds_count 2\n") != NULL);
    CHECK(strstr(text, "logpipe_delivered_messages_total") == NULL);
    lp_buf_reset(&out);
    lp_metrics_render("produce", &out);
    CHECK(strstr(lp_buf_cstr(&out), "logpipe_delivered_messages_total 0\n") != NULL);
    CHECK(strstr(lp_buf_cstr(&out), "logpipe_consumed") == NULL);
    CHECK(strstr(lp_buf_cstr(&out), "process_resident_memory_bytes") != NULL);
    lp_buf_free(&out);

    /* a lag and fresh progress: healthy; Elasticsearch failing past the
     * threshold: 503 with the last error */
    lp_buf why = LP_BUF_INIT;
    CHECK_INT(lp_metrics_health("consume", 60, &why), 200);
    lp_buf_reset(&why);
    lp_metrics_es_result(0, "Connection refused");
    CHECK_INT(lp_metrics_health("consume", 60, &why), 200);
    lp_buf_reset(&why);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK_INT(lp_metrics_health("consume", 0.001, &why), 503);
    CHECK(strstr(lp_buf_cstr(&why), "Connection refused") != NULL);
    lp_metrics_es_result(1, NULL);
    lp_buf_reset(&why);
    const char *down = "{\"type\":\"consumer\",\"brokers\":{\"b:9092/1\":{\"state\":\"DOWN\",\"nodeid\":1}}}";
    lp_metrics_read_kafka_stats(down, strlen(down));
    nanosleep(&pause, NULL);
    CHECK_INT(lp_metrics_health("consume", 0.001, &why), 503);
    CHECK(strstr(lp_buf_cstr(&why), "Kafka unreachable") != NULL);
    const char *up = "{\"type\":\"consumer\",\"brokers\":{\"b:9092/1\":{\"state\":\"UP\",\"nodeid\":1}}}";
    lp_metrics_read_kafka_stats(up, strlen(up));
    /* a transaction commit waiting past the threshold, then done */
    lp_buf_reset(&why);
    lp_metrics_kafka_commit(1);
    nanosleep(&pause, NULL);
    lp_metrics_kafka_commit(1); /* a retry keeps the first try's time */
    CHECK_INT(lp_metrics_health("consume", 0.001, &why), 503);
    CHECK(strstr(lp_buf_cstr(&why), "transaction commit has waited") != NULL);
    lp_metrics_kafka_commit(0);
    lp_buf_reset(&why);
    CHECK(lp_metrics_health("consume", 60, &why) == 200);
    lp_buf_free(&why);
}

int main(void)
{
    listen_checks();
    lag();
    stats_and_render();
    return CHECK_DONE();
}
