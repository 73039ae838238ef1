/*
 * gzip_levels.c: how the _bulk body's gzip was chosen (docs/performance.md,
 * "CPU per event"). Reads one bulk body on stdin and prints, for zlib levels
 * 1-2 and libdeflate levels 1-6, the CPU time per compression (process CPU
 * clock, best of 5 runs of 20, so a noisy shared machine disturbs it less
 * than wall time) and the compression ratio.
 *
 *   build/bench_gzip_levels < body.ndjson
 */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

#include "core/buf.h"

#define RUNS 5
#define REPS 20

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t zlib_gzip(int level, const lp_buf *in, char *out, size_t cap)
{
    z_stream z = {0};
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    deflateEnd(&z);
    return cap - z.avail_out;
}

static void report(const char *lib, int level, const lp_buf *in, char *out, size_t cap,
                   struct libdeflate_compressor *c)
{
    double best = 1e9;
    size_t n = 0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = cpu_s();
        for (int i = 0; i < REPS; i++)
            n = c ? libdeflate_gzip_compress(c, in->data, in->len, out, cap) : zlib_gzip(level, in, out, cap);
        double t = (cpu_s() - t0) / REPS;
        best = t < best ? t : best;
    }
    printf("%-10s level %d: %6.2f ms per body, ratio %5.2f\n", lib, level, best * 1e3, (double)in->len / (double)n);
}

int main(void)
{
    lp_buf in = LP_BUF_INIT;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        lp_buf_append(&in, chunk, got);
    size_t cap = in.len + in.len / 8 + 4096;
    char *out = malloc(cap);
    if (!in.len || !out)
        return 2;
    for (int level = 1; level <= 2; level++)
        report("zlib", level, &in, out, cap, NULL);
    for (int level = 1; level <= 6; level++) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
        report("libdeflate", level, &in, out, cap, c);
        libdeflate_free_compressor(c);
    }
    free(out);
    lp_buf_free(&in);
    return 0;
}
