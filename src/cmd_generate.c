/*
 * cmd_generate.c: `logpipe generate`, synthetic access-log lines on stdout.
 *
 * Lines are built in one buffer and written in large chunks. --rate paces
 * output against CLOCK_MONOTONIC by the number of lines that should have
 * been written by now, so the rate holds over long runs without bursts of a
 * whole second. A closed pipe (`logpipe generate | head`) is a normal end.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "generate/generate.h"
#include "generate/pace.h"

/* generate's defaults: --count's, and the format; --help prints them. */
#define GENERATE_COUNT_DEFAULT 10
static const lp_gen_opts generate_defaults = {.format = LP_FORMAT_COMBINED_ZONELESS};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: logpipe generate [options] > access.log\n\n"
            "Writes synthetic access-log lines: a realistic mix of endpoints (Zipf-like\n"
            "popularity), methods, status codes (~80%% 2xx, 8%% 3xx, 9%% 4xx, 3%% 5xx),\n"
            "IPv6 clients, '-' referrers and sizes, and query strings. --realistic adds\n"
            "what a public server logs besides requests: connections that sent no request\n"
            "(\"-\" 408, \"\" 400), TLS handshakes and other protocols on the plain-text\n"
            "port (400), a request without a status; 1.35%% of lines (docs/schema.md).\n\n"
            "options:\n"
            "  -n, --count N            lines to write (default %d; 0 = until interrupted)\n"
            "  -f, --format FMT         combined_zoneless, combined, common, vhost_combined\n"
            "                           (default %s; seed is combined_zoneless)\n"
            "  -r, --rate N             lines per second (default 0 = as fast as possible)\n"
            "  -s, --seed S             random seed (default: from the clock and pid)\n"
            "      --start TIME         first timestamp: epoch seconds or RFC 3339 (default: now)\n"
            "      --malformed-ratio R  share of deliberately broken lines, 0..1 (default 0)\n"
            "      --realistic          add the lines of requests that never completed\n"
            "  -h, --help               this help\n\n"
            "The same --seed and --start give the same bytes.\n",
            GENERATE_COUNT_DEFAULT, lp_format_name(generate_defaults.format));
    lp_exit_codes_print(out, "Exit status:", "012");
}

int cmd_generate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'n'}, {"format", required_argument, NULL, 'f'},
        {"rate", required_argument, NULL, 'r'},  {"seed", required_argument, NULL, 's'},
        {"start", required_argument, NULL, 'S'}, {"malformed-ratio", required_argument, NULL, 'm'},
        {"realistic", no_argument, NULL, 'R'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    lp_gen_opts opts = generate_defaults;
    opts.start = (int64_t)time(NULL);
    uint64_t count = GENERATE_COUNT_DEFAULT, rate = 0;
    int have_seed = 0, c, fmt;
    while ((c = getopt_long(argc, argv, "n:f:r:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': if (cli_parse_u64("generate", "--count", optarg, 0, UINT64_MAX, &count)) return LP_EXIT_USAGE; break;
        case 'r': if (cli_parse_u64("generate", "--rate", optarg, 0, 100000000, &rate)) return LP_EXIT_USAGE; break;
        case 's': if (cli_parse_u64("generate", "--seed", optarg, 0, UINT64_MAX, &opts.seed)) return LP_EXIT_USAGE; have_seed = 1; break;
        case 'S': if (cli_parse_time("generate", "--start", optarg, &opts.start)) return LP_EXIT_USAGE; break;
        case 'm': if (cli_parse_double("generate", "--malformed-ratio", optarg, 0, 1, &opts.malformed_ratio)) return LP_EXIT_USAGE; break;
        case 'R': opts.realistic = 1; break;
        case 'f':
            if ((fmt = lp_gen_format_from_name(optarg)) < 0)
                return cli_usage_error("generate", "--format: \"%s\" is not one of " LP_GEN_FORMAT_NAMES, optarg);
            opts.format = (lp_format)fmt;
            break;
        case 'h': usage(stdout); return 0;
        default: return cli_bad_option("generate", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("generate", "unexpected argument \"%s\"", argv[optind]);
    if (!have_seed)
        opts.seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    signal(SIGPIPE, SIG_IGN);

    lp_gen *gen = lp_gen_new(&opts);
    lp_pace pace;
    lp_pace_start(&pace, rate);
    lp_buf out = LP_BUF_INIT;
    int rc = LP_EXIT_OK;
    for (uint64_t i = 0; count == 0 || i < count; i++) {
        lp_gen_line(gen, &out);
        lp_buf_putc(&out, '\n');
        /* Paced output is flushed per line so a reader sees it when due. */
        if (out.len >= (1u << 16) || rate) {
            if (rate)
                lp_pace_wait(&pace, i);
            if (fwrite(out.data, 1, out.len, stdout) != out.len || (rate && fflush(stdout))) {
                rc = errno == EPIPE ? LP_EXIT_OK : LP_EXIT_IO;
                break;
            }
            lp_buf_reset(&out);
        }
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len && errno != EPIPE)
        rc = LP_EXIT_IO;
    if (fflush(stdout) && errno != EPIPE)
        rc = LP_EXIT_IO;
    if (rc == LP_EXIT_IO)
        fprintf(stderr, "logpipe generate: error writing stdout: %s\n", strerror(errno));
    lp_buf_free(&out);
    lp_gen_free(gen);
    return rc;
}
