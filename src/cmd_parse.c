/*
 * cmd_parse.c: `logpipe parse`, access-log lines on stdin to NDJSON ECS
 * documents on stdout.
 *
 * Lines of any length are read with getline (its buffer is reused), and
 * documents are appended to one output buffer written out in large chunks,
 * so the per-line cost is the parse itself. A rejected line is never
 * dropped: it goes to --rejects as {"reason","line_number","line"} and is
 * counted in the summary on stderr. Reading all input is success whatever
 * was rejected; only usage and I/O errors make the exit status non-zero.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/json.h"
#include "parse/parse.h"

#define FLUSH_AT (1u << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: logpipe parse [options] < access.log > docs.ndjson\n\n"
            "Reads access-log lines on stdin and writes one Elastic Common Schema JSON\n"
            "document per accepted line (NDJSON). Rejected lines are written as JSON\n"
            "objects {\"reason\", \"line_number\", \"line\"} to --rejects and counted.\n\n"
            "options:\n"
            "  -f, --format FMT     auto (default: recognise each line), combined_zoneless, combined,\n"
            "                       common, vhost_combined (seed: combined_zoneless's other name)\n"
            "  -z, --timezone TZ    zone of combined_zoneless's times: UTC (default),\n"
            "                       an offset such as +05:30, or a name such as Europe/Paris\n"
            "  -r, --rejects FILE   where rejected lines go (default: stderr)\n"
            "      --dataset NAME   event.dataset of every document (default access)\n"
            "      --keep-original  keep each raw line in event.original (off by default)\n"
            "  -h, --help           this help\n\n"
            "Rejected lines do not make the exit status non-zero.\n");
    lp_exit_codes_print(out, "Exit status:", "012");
}

static int write_all(FILE *f, lp_buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
        return -1;
    lp_buf_reset(b);
    return 0;
}

static void put_reject(lp_buf *b, const char *reason, unsigned long long line_no, const char *line,
                       size_t len)
{
    lp_buf_puts_lit(b, "{\"reason\":");
    lp_json_str(b, reason, strlen(reason));
    lp_buf_puts_lit(b, ",\"line_number\":");
    lp_buf_append_u64(b, line_no);
    lp_buf_puts_lit(b, ",\"line\":");
    lp_json_str(b, line, len);
    lp_buf_puts_lit(b, "}\n");
}

int cmd_parse(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},   {"timezone", required_argument, NULL, 'z'},
        {"rejects", required_argument, NULL, 'r'},  {"help", no_argument, NULL, 'h'},
        {"dataset", required_argument, NULL, 'D'},  {"keep-original", no_argument, NULL, 'O'},
        {NULL, 0, NULL, 0}};
    lp_parse_opts opts = {.format = LP_FORMAT_AUTO};
    const char *rejects_path = NULL;
    int c, fmt;
    while ((c = getopt_long(argc, argv, "f:z:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if ((fmt = lp_format_from_name(optarg)) < 0)
                return cli_usage_error("parse", "--format: \"%s\" is not one of " LP_FORMAT_NAMES, optarg);
            opts.format = (lp_format)fmt;
            break;
        case 'z': opts.timezone = optarg; break;
        case 'r': rejects_path = optarg; break;
        case 'D': opts.dataset = optarg; break;
        case 'O': opts.keep_original = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_bad_option("parse", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("parse", "unexpected argument \"%s\" (input is read from stdin)", argv[optind]);

    lp_error err;
    lp_parser *parser = lp_parser_new(&opts, &err);
    if (!parser)
        return cli_report("parse", &err);
    FILE *rejects = stderr;
    if (rejects_path && !(rejects = fopen(rejects_path, "w"))) {
        lp_parser_free(parser);
        return cli_usage_error("parse", "--rejects: cannot open \"%s\": %s", rejects_path, strerror(errno));
    }

    lp_buf out = LP_BUF_INIT, rej = LP_BUF_INIT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long long lines = 0, docs = 0, rejected = 0;
    int io_error = 0;
    lp_parse_result res;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        lines++;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        if (lp_parse_line(parser, line, len, &out, &res) == 0) {
            lp_buf_putc(&out, '\n');
            docs++;
        } else {
            rejected++;
            put_reject(&rej, res.reject_reason, lines, line, len);
            if (write_all(rejects, &rej) < 0)
                io_error = 1;
        }
        if (out.len >= FLUSH_AT && write_all(stdout, &out) < 0) {
            io_error = 1;
            break;
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "logpipe parse: error reading stdin: %s\n", strerror(errno));
        io_error = 1;
    }
    if (write_all(stdout, &out) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "logpipe parse: error writing stdout: %s\n", strerror(errno));
        io_error = 1;
    }
    if (rejects != stderr && fclose(rejects) != 0)
        io_error = 1;
    fprintf(stderr, "logpipe parse: %llu lines, %llu documents, %llu rejected\n", lines, docs, rejected);
    free(line);
    lp_buf_free(&out);
    lp_buf_free(&rej);
    lp_parser_free(parser);
    return io_error ? LP_EXIT_IO : LP_EXIT_OK;
}
