/*
 * offsets.c: the per-partition segment FIFOs of offsets.h.
 *
 * A consumer owns a handful of partitions and has a handful of batches in
 * flight, so partitions live in a flat array searched linearly and each
 * FIFO is a small ring that grows when needed; marking a batch done visits
 * every segment, which is a few dozen compares.
 */
#include <stdlib.h>
#include <string.h>

#include "consume/offsets.h"
#include "core/buf.h"

typedef struct segment {
    uint64_t batch;
    int64_t last;
    int done;
} segment;

typedef struct part_state {
    char *topic;
    int32_t partition;
    segment *seg;
    size_t head, count, cap; /* ring buffer */
    int64_t committable;     /* -1: nothing yet */
    int advanced;
} part_state;

struct lp_offsets {
    part_state *parts;
    size_t n, cap;
};

lp_offsets *lp_offsets_new(void) { return lp_xcalloc(1, sizeof(lp_offsets)); }

void lp_offsets_free(lp_offsets *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->parts[i].topic);
        free(t->parts[i].seg);
    }
    free(t->parts);
    free(t);
}

static part_state *find(const lp_offsets *t, const char *topic, int32_t p)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->parts[i].partition == p && !strcmp(t->parts[i].topic, topic))
            return &t->parts[i];
    return NULL;
}

static part_state *find_or_add(lp_offsets *t, const char *topic, int32_t p)
{
    part_state *part = find(t, topic, p);
    if (part)
        return part;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->parts = lp_xrealloc(t->parts, t->cap * sizeof *t->parts);
    }
    part = &t->parts[t->n++];
    memset(part, 0, sizeof *part);
    part->topic = lp_xstrdup(topic);
    part->partition = p;
    part->committable = -1;
    return part;
}

static segment *at(part_state *p, size_t i) { return &p->seg[(p->head + i) % p->cap]; }

static void push(part_state *p, uint64_t batch, int64_t offset)
{
    if (p->count && at(p, p->count - 1)->batch == batch) {
        at(p, p->count - 1)->last = offset;
        return;
    }
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        segment *seg = lp_xmalloc(cap * sizeof *seg);
        for (size_t i = 0; i < p->count; i++)
            seg[i] = *at(p, i);
        free(p->seg);
        p->seg = seg;
        p->cap = cap;
        p->head = 0;
    }
    *at(p, p->count++) = (segment){batch, offset, 0};
}

void lp_offsets_track(lp_offsets *t, const char *topic, int32_t partition, int64_t offset,
                      uint64_t batch)
{
    push(find_or_add(t, topic, partition), batch, offset);
}

void lp_offsets_batch_done(lp_offsets *t, uint64_t batch)
{
    for (size_t i = 0; i < t->n; i++) {
        part_state *p = &t->parts[i];
        for (size_t k = 0; k < p->count; k++)
            if (at(p, k)->batch == batch)
                at(p, k)->done = 1;
        while (p->count && at(p, 0)->done) {
            p->committable = at(p, 0)->last + 1;
            p->advanced = 1;
            p->head = (p->head + 1) % p->cap;
            p->count--;
        }
    }
}

void lp_offsets_take_advanced(lp_offsets *t, lp_offsets_fn fn, void *ctx)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->parts[i].advanced) {
            t->parts[i].advanced = 0;
            fn(ctx, t->parts[i].topic, t->parts[i].partition, t->parts[i].committable);
        }
}

void lp_offsets_each(lp_offsets *t, lp_offsets_fn fn, void *ctx)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->parts[i].committable >= 0)
            fn(ctx, t->parts[i].topic, t->parts[i].partition, t->parts[i].committable);
}

void lp_offsets_set(lp_offsets *t, const char *topic, int32_t partition, int64_t next)
{
    find_or_add(t, topic, partition)->committable = next;
}

void lp_offsets_forget(lp_offsets *t, const char *topic, int32_t partition)
{
    part_state *p = find(t, topic, partition);
    if (!p)
        return;
    free(p->topic);
    free(p->seg);
    *p = t->parts[--t->n];
}

int64_t lp_offsets_committable(const lp_offsets *t, const char *topic, int32_t partition)
{
    const part_state *p = find(t, topic, partition);
    return p ? p->committable : -1;
}
