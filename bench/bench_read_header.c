/* bench_read_header.c - tacozip_read_header() calls per second: ours
 * (our libtacozip.so, linked) against the PyPI tacozip's libtacozip.so
 * (dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND so that its internal calls,
 * e.g. to tacozip_parse_header, stay inside it and ours stay in ours).
 *
 * Usage: bench_read_header ARCHIVE CALLS REPS [PEER_SO]
 * Output, one line per timed batch, interleaved ours/peer each repetition:
 *   ours REP SECONDS CALLS
 *   peer REP SECONDS CALLS
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tacozip.h"

typedef int (*read_header_fn)(const char *, taco_meta_array_t *);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time "calls" calls of fn on path; -1 on the first failure. */
static double run(read_header_fn fn, const char *path, long calls, uint64_t *sink) {
    taco_meta_array_t m;
    double t0 = now();
    for (long i = 0; i < calls; i++) {
        if (fn(path, &m) != 0) return -1;
        *sink += m.count + m.entries[0].length;
    }
    return now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s ARCHIVE CALLS REPS [PEER_SO]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    long calls = atol(argv[2]);
    int reps = atoi(argv[3]);
    read_header_fn peer = NULL;
    if (argc > 4) {
        void *h = dlopen(argv[4], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
        if (!h) {
            fprintf(stderr, "dlopen %s: %s\n", argv[4], dlerror());
            return 1;
        }
        peer = (read_header_fn)dlsym(h, "tacozip_read_header");
        if (!peer) {
            fprintf(stderr, "dlsym tacozip_read_header: %s\n", dlerror());
            return 1;
        }
        if (peer == tacozip_read_header) {
            fprintf(stderr, "the peer library resolved to our own tacozip_read_header\n");
            return 1;
        }
    }
    /* Both must decode the same header before anything is timed. */
    taco_meta_array_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (tacozip_read_header(path, &a) != 0) {
        fprintf(stderr, "our tacozip_read_header failed on %s\n", path);
        return 1;
    }
    if (peer) {
        if (peer(path, &b) != 0) {
            fprintf(stderr, "peer tacozip_read_header failed on %s\n", path);
            return 1;
        }
        for (int i = 0; i < TACO_HEADER_MAX_ENTRIES; i++)
            if (a.entries[i].offset != b.entries[i].offset || a.entries[i].length != b.entries[i].length) {
                fprintf(stderr, "headers differ at entry %d\n", i);
                return 1;
            }
    }
    uint64_t sink = 0;
    /* warm-up */
    run(tacozip_read_header, path, calls / 20 + 1, &sink);
    if (peer) run(peer, path, calls / 20 + 1, &sink);
    for (int r = 0; r < reps; r++) {
        /* alternate which goes first to share drift fairly */
        for (int k = 0; k < 2; k++) {
            int ours = (k == 0) == (r % 2 == 0);
            if (!ours && !peer) continue;
            double t = run(ours ? tacozip_read_header : peer, path, calls, &sink);
            if (t < 0) {
                fprintf(stderr, "%s read_header failed\n", ours ? "our" : "peer");
                return 1;
            }
            printf("%s %d %.6f %ld\n", ours ? "ours" : "peer", r, t, calls);
            fflush(stdout);
        }
    }
    fprintf(stderr, "(sink %llu)\n", (unsigned long long)sink);
    return 0;
}
