/* upload_driver.c - uploads a file through the internal uploader
 * (src/source/upload.c) for tests/remote/test_upload.py.  Not a ctest:
 * it needs an S3 server.
 *
 *   upload_driver FILE s3://bucket/key [options]
 *     --part-size N        bytes (0: the uploader chooses)
 *     --parallel N         parts in flight (0: default)
 *     --total N|unknown    the expected size given at open (default: the file's)
 *     --chunk N            bytes per tz_upload_write() (default 65536)
 *     --hold OFF:LEN@AT    tz_upload_hold(OFF, LEN) once AT bytes are written
 *     --release AT         tz_upload_hold(0, 0) once AT bytes are written
 *     --patch OFF:HEX[@AT] tz_upload_patch() of the bytes HEX at OFF once AT
 *                          bytes are written (default: at the end)
 *     --abort              tz_upload_abort() instead of commit
 *     --retries N --backoff-ms N --max-backoff-ms N --deadline-ms N
 *                          the remote options (default backoff 5 ms, max 200)
 * Credentials, endpoint and region come from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_REGION.
 * Prints the final stats as one JSON line; exit 0 on success, 1 on
 * failure (the message on stderr), 2 for a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/source.h"

#define MAX_EVENTS 64

typedef struct {
    unsigned long long at;
    int kind; /* 0 hold, 1 release, 2 patch */
    unsigned long long off, len;
    unsigned char *bytes;
} event;

static int usage(const char *why) {
    fprintf(stderr, "upload_driver: %s\nusage: upload_driver FILE s3://bucket/key [options] (see the source)\n", why);
    return 2;
}

static unsigned char *unhex(const char *s, size_t *n) {
    size_t k = strlen(s);
    if (k % 2) return NULL;
    unsigned char *b = malloc(k / 2 + 1);
    if (!b) return NULL;
    for (size_t i = 0; i < k / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(b);
            return NULL;
        }
        b[i] = (unsigned char)v;
    }
    *n = k / 2;
    return b;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Run the events due once "written" bytes are written. */
static int run_events(tz_upload *u, event *ev, int nev, int *next, unsigned long long written, int final,
                      tacozip_error *err) {
    while (*next < nev && (ev[*next].at <= written || final)) {
        event *e = &ev[(*next)++];
        int rc = e->kind == 0   ? tz_upload_hold(u, e->off, (size_t)e->len, err)
                 : e->kind == 1 ? tz_upload_hold(u, 0, 0, err)
                                : tz_upload_patch(u, e->off, e->bytes, (size_t)e->len, err);
        if (rc) return rc;
    }
    return TACOZ_OK;
}

static int by_at(const void *a, const void *b) {
    const event *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

int main(int argc, char **argv) {
    if (argc < 3) return usage("missing arguments");
    const char *path = argv[1], *url = argv[2];
    unsigned long long part_size = 0, chunk = 65536, total = 0;
    int parallel = 0, abort_it = 0, total_unknown = 0, total_set = 0, nev = 0;
    event ev[MAX_EVENTS];
    tacozip_remote_options o = {0};
    o.struct_size = sizeof o;
    o.backoff_ms = 5;
    o.max_backoff_ms = 200;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--abort")) {
            abort_it = 1;
            continue;
        }
        if (!v) return usage("an option without its value");
        i++;
        if (!strcmp(a, "--part-size")) part_size = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--parallel")) parallel = atoi(v);
        else if (!strcmp(a, "--chunk")) chunk = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--retries")) o.retries = atoi(v);
        else if (!strcmp(a, "--backoff-ms")) o.backoff_ms = atol(v);
        else if (!strcmp(a, "--max-backoff-ms")) o.max_backoff_ms = atol(v);
        else if (!strcmp(a, "--deadline-ms")) o.deadline_ms = atol(v);
        else if (!strcmp(a, "--total")) {
            total_set = 1;
            if (!strcmp(v, "unknown")) total_unknown = 1;
            else total = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--hold") || !strcmp(a, "--release") || !strcmp(a, "--patch")) {
            if (nev == MAX_EVENTS) return usage("too many events");
            event *e = &ev[nev++];
            memset(e, 0, sizeof *e);
            e->at = ~0ULL;
            if (!strcmp(a, "--release")) {
                e->kind = 1;
                e->at = strtoull(v, NULL, 10);
            } else if (!strcmp(a, "--hold")) {
                if (sscanf(v, "%llu:%llu@%llu", &e->off, &e->len, &e->at) != 3) return usage("--hold OFF:LEN@AT");
            } else {
                e->kind = 2;
                char hex[4096] = "";
                if (sscanf(v, "%llu:%4095[0-9a-fA-F]@%llu", &e->off, hex, &e->at) < 2) return usage("--patch OFF:HEX[@AT]");
                size_t n = 0;
                if (!(e->bytes = unhex(hex, &n))) return usage("--patch: bad hex");
                e->len = n;
            }
        } else {
            return usage("unknown option");
        }
    }
    qsort(ev, (size_t)nev, sizeof ev[0], by_at);
    o.access_key_id = env("AWS_ACCESS_KEY_ID");
    o.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
    o.session_token = env("AWS_SESSION_TOKEN");
    o.endpoint_url = env("AWS_ENDPOINT_URL");
    o.region = env("AWS_REGION");

    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long fsize = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (!total_set) total = (unsigned long long)fsize;
    unsigned char *buf = malloc(chunk ? chunk : 1);
    tacozip_error err = TACOZIP_ERROR_INIT;
    tz_upload *u = NULL;
    tz_upload_stats_t st = {0};
    int rc = tz_upload_open(url, &o, total_unknown ? TZ_SIZE_UNKNOWN : total, part_size, parallel, &u, &err);
    unsigned long long written = 0;
    int next = 0;
    while (rc == TACOZ_OK) {
        rc = run_events(u, ev, nev, &next, written, 0, &err);
        if (rc) break;
        size_t want = (size_t)chunk;
        if (next < nev && ev[next].at - written < want) want = (size_t)(ev[next].at - written);
        size_t got = fread(buf, 1, want, f);
        if (got == 0) break;
        rc = tz_upload_write(u, buf, got, &err);
        written += got;
    }
    if (rc == TACOZ_OK) rc = run_events(u, ev, nev, &next, written, 1, &err);
    if (u) {
        if (rc || abort_it) {
            tz_upload_stats(u, &st);
            tz_upload_abort(u);
        } else {
            rc = tz_upload_commit_ex(u, &st, &err);
        }
    }
    printf("{\"rc\": %d, \"written\": %llu, \"requests\": %llu, \"bytes_sent\": %llu, \"retries\": %llu, "
           "\"parts\": %llu, \"part_size\": %llu}\n",
           rc, written, (unsigned long long)st.requests, (unsigned long long)st.bytes_sent,
           (unsigned long long)st.retries, (unsigned long long)st.parts, (unsigned long long)st.part_size);
    if (rc) fprintf(stderr, "upload_driver: %s: %s\n", url, err.message);
    fclose(f);
    free(buf);
    for (int i = 0; i < nev; i++) free(ev[i].bytes);
    return rc ? 1 : 0;
}
