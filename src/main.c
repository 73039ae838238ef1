/*
 * main.c: the logpipe command dispatcher. It only picks the subcommand; each
 * one parses its own options in cmd_<name>.c so that `logpipe <cmd> --help`
 * is owned by the code that implements the options it lists.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"
#include "core/log.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"generate", cmd_generate, "write synthetic access-log lines to stdout"},
    {"parse", cmd_parse, "read access-log lines on stdin, write ECS JSON documents (NDJSON)"},
    {"produce", cmd_produce, "publish log lines to a Kafka topic"},
    {"consume", cmd_consume, "consume a Kafka topic, parse, and bulk-index into Elasticsearch"},
    {"replay", cmd_replay, "write dead letters back to their topic, exactly once"},
    {"check", cmd_check, "check this machine reaches Kafka and Elasticsearch (TLS, credentials)"},
    {"setup", cmd_setup, "install the index template (and data stream) consume writes under"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "logpipe %s: a log pipeline from access logs through Kafka to Elasticsearch\n\n"
            "usage: logpipe <command> [options]\n\ncommands:\n",
            LOGPIPE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'logpipe <command> --help' for the options of one command.\n"
                 "Every command also takes:\n"
                 "  --log-format text|json  log lines on stderr as text (default) or one JSON object\n"
                 "                          a line (timestamp, level, command, message, fields)\n"
                 "  --version               logpipe's version and its libraries'\n");
    lp_exit_codes_print(out, "Exit codes:", "012345");
}

/* logpipe's version and the libraries' it runs with (the bundle carries
 * its own: these say which). */
static void print_versions(void)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    printf("logpipe %s\nlibrdkafka %s\nlibcurl %s%s%s\nlibmicrohttpd %s\n", LOGPIPE_VERSION, rd_kafka_version_str(),
           curl->version, curl->ssl_version ? " " : "", curl->ssl_version ? curl->ssl_version : "",
           lp_metrics_server_version());
}

/* The options every subcommand takes, taken out of argv here so that each
 * cmd_<name>.c's getopt never sees them: --version (prints, returns 0) and
 * --log-format text|json (or --log-format=json). Stops at "--". Returns -1
 * to go on with the subcommand, else the exit code. */
static int common_options(const char *cmd, int *argc, char **argv)
{
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *format = NULL;
        if (!strcmp(a, "--")) {
            while (i < *argc)
                argv[kept++] = argv[i++];
            break;
        }
        if (!strcmp(a, "--version")) {
            print_versions();
            return 0;
        }
        if (!strcmp(a, "--log-format")) {
            if (i + 1 == *argc)
                return cli_usage_error(cmd, "--log-format needs a value: text or json");
            format = argv[++i];
        } else if (!strncmp(a, "--log-format=", 13)) {
            format = a + 13;
        } else {
            argv[kept++] = argv[i];
            continue;
        }
        int json = lp_log_format_from_name(format);
        if (json < 0)
            return cli_usage_error(cmd, "--log-format: \"%s\" is not one of text, json", format);
        if (json)
            lp_log_use_json(cmd);
    }
    *argc = kept;
    argv[kept] = NULL;
    return -1;
}

/* The process holds the SASL password, the Elasticsearch API key and AWS
 * credentials in memory: no core file may write them to disk, and no other
 * process of the same user may ptrace it or read its /proc/<pid>/mem or
 * environ (non-dumpable: those files become root's). */
static void protect_memory(void)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    const struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
}

int main(int argc, char **argv)
{
    protect_memory();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        print_versions();
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) {
            int sub_argc = argc - 1, rc = common_options(name, &sub_argc, argv + 1);
            return rc >= 0 ? rc : commands[i].run(sub_argc, argv + 1);
        }
    fprintf(stderr, "logpipe: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
