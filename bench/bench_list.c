/* bench_list.c - time listing an archive through the C API:
 * tacozip_open() + tacozip_member_at() for every member + tacozip_close().
 *
 * Usage: bench_list ARCHIVE [REPS]
 * Prints one line per repetition: "SECONDS MEMBERS".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tacozip.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ARCHIVE [REPS]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 1;
    uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        tacozip_archive *ar = NULL;
        tacozip_error err = TACOZIP_ERROR_INIT;
        int rc = tacozip_open_ex(argv[1], 0, &ar, &err);
        if (rc) {
            fprintf(stderr, "open %s: %s\n", argv[1], err.message);
            return 1;
        }
        size_t n = tacozip_count(ar);
        tacozip_member m = TACOZIP_MEMBER_INIT;
        for (size_t i = 0; i < n; i++) {
            if (tacozip_member_at(ar, i, &m) != 0) return 1;
            sink += m.data_offset + m.size + m.name_len + m.crc32;
        }
        tacozip_close(ar);
        double t = now() - t0;
        printf("%.6f %zu\n", t, n);
    }
    fprintf(stderr, "(sink %llu)\n", (unsigned long long)sink);
    return 0;
}
