/*
 * main.c: the logpipe command dispatcher. It only picks the subcommand; each
 * one parses its own options in cmd_<name>.c so that `logpipe <cmd> --help`
 * is owned by the code that implements the options it lists.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"generate", cmd_generate, "write synthetic access-log lines to stdout"},
    {"parse", cmd_parse, "read access-log lines on stdin, write ECS JSON documents (NDJSON)"},
    {"produce", cmd_produce, "publish log lines to a Kafka topic"},
    {"consume", cmd_consume, "consume a Kafka topic, parse, and bulk-index into Elasticsearch"},
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
                 "Exit codes: 0 ok, 1 I/O error, 2 usage or configuration error,\n"
                 "3 Kafka error, 4 Elasticsearch error, 5 partial failure.\n");
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
        printf("logpipe %s\n", LOGPIPE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "logpipe: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
