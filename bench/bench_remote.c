/* bench_remote.c - one remote-reading measurement through the C API:
 * tacozip_open_ex(URL) + tacozip_member_at() over every member (the
 * listing) + tacozip_find() and tacozip_read_members() for the names asked.
 *
 * Usage: bench_remote URL NAMES_FILE LOCAL_ARCHIVE [MAX_GAP]
 *   NAMES_FILE     one member name a line (anything after a tab is ignored)
 *   LOCAL_ARCHIVE  the same archive on disk: every member read is compared
 *                  with it afterwards (untimed)
 *   MAX_GAP        coalescing gap in bytes; "default" or absent: the library's
 * Prints one line: "SECONDS REQUESTS BYTES MEMBERS_LISTED" (requests and body
 * bytes as counted by tacozip_remote_stats()).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tacozip.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "bench_remote: %s: %s\n", what, detail);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL NAMES_FILE LOCAL_ARCHIVE [MAX_GAP]\n", argv[0]);
        return 2;
    }
    uint64_t gap = TACOZIP_DEFAULT_GAP;
    if (argc > 4 && strcmp(argv[4], "default") != 0) gap = strtoull(argv[4], NULL, 10);

    /* names (untimed) */
    FILE *nf = fopen(argv[2], "r");
    if (!nf) die(argv[2], "cannot open");
    size_t cap = 128, k = 0;
    char **names = malloc(cap * sizeof *names);
    char line[4096];
    while (fgets(line, sizeof line, nf)) {
        line[strcspn(line, "\t\r\n")] = '\0';
        if (!line[0]) continue;
        if (k == cap) names = realloc(names, (cap *= 2) * sizeof *names);
        names[k++] = strdup(line);
    }
    fclose(nf);
    size_t *idx = malloc(k * sizeof *idx);
    void **bufs = calloc(k, sizeof *bufs);

    double t0 = now();
    tacozip_archive *ar = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    /* The library reads no environment: S3 settings as the command takes them. */
    const char *endpoint = getenv("AWS_ENDPOINT_URL_S3");
    if (!endpoint || !*endpoint) endpoint = getenv("AWS_ENDPOINT_URL");
    tacozip_remote_options ro = {.struct_size = sizeof ro,
                                 .access_key_id = getenv("AWS_ACCESS_KEY_ID"),
                                 .secret_access_key = getenv("AWS_SECRET_ACCESS_KEY"),
                                 .session_token = getenv("AWS_SESSION_TOKEN"),
                                 .region = getenv("AWS_REGION"),
                                 .endpoint_url = endpoint};
    if (tacozip_open_remote(argv[1], 0, &ro, &ar, &err)) die("open", err.message);
    size_t n = tacozip_count(ar);
    tacozip_member m = TACOZIP_MEMBER_INIT;
    uint64_t sink = 0;
    for (size_t i = 0; i < n; i++) { /* the listing */
        if (tacozip_member_at(ar, i, &m)) die("member_at", "failed");
        sink += m.data_offset + m.size + m.name_len;
    }
    for (size_t i = 0; i < k; i++) {
        if (tacozip_find(ar, names[i], (size_t)-1, &idx[i])) die(names[i], "not in the archive");
        tacozip_member_at(ar, idx[i], &m);
        if (!(bufs[i] = malloc(m.size ? (size_t)m.size : 1))) die("malloc", "out of memory");
    }
    if (tacozip_read_members_ex(ar, idx, k, bufs, gap, &err)) die("read_members", err.message);
    double t = now() - t0;
    uint64_t req = 0, bytes = 0;
    tacozip_remote_stats(ar, &req, &bytes);

    /* verify against the local copy (untimed) */
    int fd = open(argv[3], O_RDONLY);
    if (fd < 0) die(argv[3], "cannot open");
    for (size_t i = 0; i < k; i++) {
        tacozip_member_at(ar, idx[i], &m);
        char *want = malloc(m.size ? (size_t)m.size : 1);
        if (pread(fd, want, (size_t)m.size, (off_t)m.data_offset) != (ssize_t)m.size) die(argv[3], "short read");
        if (memcmp(want, bufs[i], (size_t)m.size) != 0) die(names[i], "bytes differ from the local archive");
        free(want);
        free(bufs[i]);
        free(names[i]);
    }
    close(fd);
    tacozip_close(ar);
    printf("%.6f %llu %llu %zu\n", t, (unsigned long long)req, (unsigned long long)bytes, n);
    fprintf(stderr, "(sink %llu)\n", (unsigned long long)sink);
    free(idx), free(bufs), free(names);
    return 0;
}
