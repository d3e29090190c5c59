/* test_api.c - the 1.1 API: sized structs, the error model (messages per
 * call, per thread), the split codes, caller-supplied byte sources, display
 * names, extraction that cleans up after a cancel, reproducible DOS times,
 * the ZIP64 end record, the local-header check of far reads, and
 * preloaded tails. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tacozip.h"

static char dir[64];

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* An archive of "n" members m0..m{n-1}, member i holding sizes[i] bytes of
 * a pattern; returns its path in "out". */
static void make_archive(const char *name, size_t n, const size_t *sizes, const tacozip_write_options *o, char *out,
                         size_t cap) {
    char srcs[8][128];
    const char *srcp[8], *arcs[8];
    char arcn[8][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(srcs[i], sizeof srcs[i], "%s/src-%s-%zu", dir, name, i);
        unsigned char *d = malloc(sizes[i] + 1);
        for (size_t k = 0; k < sizes[i]; k++) d[k] = (unsigned char)(k * 7 + i);
        write_file(srcs[i], d, sizes[i]);
        free(d);
        srcp[i] = srcs[i];
        snprintf(arcn[i], sizeof arcn[i], "m%zu", i);
        arcs[i] = arcn[i];
    }
    snprintf(out, cap, "%s/%s.taco", dir, name);
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_create_ex(out, srcp, arcs, n, NULL, o, &err);
    if (rc) fprintf(stderr, "create %s: %s\n", out, err.message);
    CHECK_EQ(rc, TACOZ_OK);
}

/* ---- sized structs -------------------------------------------------------- */

static void sized_structs(void) {
    char zip[128];
    size_t sizes[] = {10, 20};
    make_archive("sized", 2, sizes, NULL, zip, sizeof zip);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (!ar) return;
    /* struct_size 0 = the 1.1 layout; sizeof = the same; too small = refused */
    tacozip_member m0 = {0}, m1 = TACOZIP_MEMBER_INIT, bad = {.struct_size = 8};
    CHECK_EQ(tacozip_member_at(ar, 1, &m0), TACOZ_OK);
    CHECK_EQ(tacozip_member_at(ar, 1, &m1), TACOZ_OK);
    CHECK(m0.size == 10 && m1.size == 10 && !strcmp(m1.name, "m0"));
    CHECK_EQ(tacozip_member_at(ar, 1, &bad), TACOZ_ERR_PARAM);
    CHECK(bad.name == NULL); /* nothing written */
    /* a larger struct (a later version's) is filled up to our fields only */
    struct {
        tacozip_member m;
        unsigned char later[16];
    } big;
    memset(&big, 0xAB, sizeof big);
    big.m.struct_size = sizeof big;
    CHECK_EQ(tacozip_member_at(ar, 2, &big.m), TACOZ_OK);
    CHECK(big.m.size == 20 && big.later[0] == 0xAB && big.later[15] == 0xAB);
    CHECK(big.m.struct_size == sizeof big); /* the caller's value is kept */

    /* an error record whose size is too small is never written */
    tacozip_error small;
    memset(&small, 0, sizeof small);
    small.struct_size = 4;
    CHECK_EQ(tacozip_read_at_ex(ar, 1u << 30, (char[1]){0}, 1, &small), TACOZ_ERR_PARAM);
    CHECK(small.code == 0 && small.message[0] == '\0');
    tacozip_error zero = {0};
    CHECK_EQ(tacozip_read_at_ex(ar, 1u << 30, (char[1]){0}, 1, &zero), TACOZ_ERR_PARAM);
    CHECK(zero.code == TACOZ_ERR_PARAM && strstr(zero.message, "passes the end"));
    tacozip_close(ar);

    /* write options: too small a struct_size is refused before anything */
    tacozip_write_options o = {.struct_size = 2};
    const char *src[] = {zip};
    const char *arc[] = {"x"};
    char out[128];
    snprintf(out, sizeof out, "%s/never.taco", dir);
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_create_ex(out, src, arc, 1, NULL, &o, &err), TACOZ_ERR_PARAM);
    CHECK(strstr(err.message, "struct_size") != NULL);
    CHECK(!exists(out));
    tacozip_write_options ok = TACOZIP_WRITE_OPTIONS_INIT;
    CHECK_EQ(tacozip_create_ex(out, src, arc, 1, NULL, &ok, &err), TACOZ_OK);

    /* remote options likewise (or the build has no libcurl) */
    tacozip_remote_options ro = {.struct_size = 3};
    tacozip_source *s = NULL;
    int rc = tacozip_source_open("http://127.0.0.1:9/x.taco", &ro, &s, &err);
    CHECK(rc == TACOZ_ERR_PARAM || rc == TACOZ_ERR_NO_REMOTE);
    CHECK(s == NULL);
    tacozip_remote_options bad_retries = {.retries = -7};
    rc = tacozip_source_open("http://127.0.0.1:9/x.taco", &bad_retries, &s, &err);
    CHECK(rc == TACOZ_ERR_PARAM || rc == TACOZ_ERR_NO_REMOTE);
    if (rc == TACOZ_ERR_PARAM) CHECK(strstr(err.message, "retries") != NULL);
}

/* ---- codes and messages --------------------------------------------------- */

static void codes(void) {
    /* every code has a name and a sentence; names are unique */
    static const int all[] = {0,   -1,  -2,  -3,  -4,  -5,  -6,  -7,  -8,  -9,  -10, -11, -12, -13, -14, -20,
                              -21, -22, -23, -24, -25, -26, -27, -28, -29, -30, -31, -32, -33, -34, -35, -40,
                              -41, -42, -43, -44, -45, -46, -47, -48, -49};
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        const char *name = tacozip_error_name(all[i]);
        CHECK(name != NULL);
        CHECK(strcmp(tacozip_strerror(all[i]), "Unknown error code") != 0);
        for (size_t j = 0; j < i && name; j++) CHECK(strcmp(name, tacozip_error_name(all[j])) != 0);
    }
    int known = 0;
    for (int c = 0; c >= -99; c--) known += tacozip_error_name(c) != NULL;
    CHECK_EQ(known, (long long)n); /* the list above is the whole table */
    CHECK(tacozip_error_name(-50) == NULL && tacozip_error_name(5) == NULL);
    CHECK(!strcmp(tacozip_error_name(TACOZ_ERR_NETWORK), "ERR_NETWORK"));
    CHECK(!strcmp(tacozip_error_name(TACOZ_INVALID_LFH), "INVALID_LFH"));
    /* the original's wording for its codes */
    CHECK(!strcmp(tacozip_strerror(TACOZ_ERR_IO), "I/O error (open/read/write/close/flush)"));
    CHECK(!strcmp(tacozip_validate_error_string(TACOZ_VALID), "Valid TACO archive"));
    CHECK(!strcmp(tacozip_get_version(), TACOZIP_VERSION_STRING));

    /* append to an indexed archive: its own code, a message that says why */
    char zip[128];
    size_t sizes[] = {5};
    tacozip_write_options o = {.index = 1};
    make_archive("indexed", 1, sizes, &o, zip, sizeof zip);
    size_t before = 0, after = 0;
    free(slurp(zip, &before));
    const char *src[] = {zip};
    const char *arc[] = {"more"};
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_append_ex(zip, src, arc, 1, NULL, &err), TACOZ_ERR_INDEXED);
    CHECK(strstr(err.message, "TACO_INDEX") != NULL && strstr(err.message, zip) == err.message);
    free(slurp(zip, &after));
    CHECK_EQ(before, after);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);
    /* remote statistics of a local archive */
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    uint64_t req = 9, bytes = 9;
    CHECK_EQ(tacozip_remote_stats(ar, &req, &bytes), TACOZ_ERR_NOT_REMOTE);
    CHECK(req == 0 && bytes == 0);
    /* a compressed-member error names the archive first, then the member */
    tacozip_close(ar);
    /* a missing file: the message starts with its name */
    char missing[128];
    snprintf(missing, sizeof missing, "%s/no-such.taco", dir);
    CHECK_EQ(tacozip_open_ex(missing, 0, &ar, &err), TACOZ_ERR_IO);
    CHECK(strncmp(err.message, missing, strlen(missing)) == 0 && strstr(err.message, "No such file"));
    /* appending to a URL is refused with a message */
    CHECK_EQ(tacozip_append_ex("s3://bucket/key.taco", src, arc, 1, NULL, &err), TACOZ_ERR_PARAM);
    CHECK(strstr(err.message, "remote") != NULL);
}

/* Two threads fail in different ways on one archive, again and again: each
 * sees its own message (no shared "last error"). */
typedef struct {
    tacozip_archive *ar;
    int which;
    int wrong;
} thr_arg;

static void *fail_loop(void *p) {
    thr_arg *a = p;
    char buf[4];
    for (int i = 0; i < 2000; i++) {
        tacozip_error e = TACOZIP_ERROR_INIT;
        if (a->which == 0) {
            if (tacozip_read_at_ex(a->ar, (uint64_t)1 << 40, buf, 1, &e) != TACOZ_ERR_PARAM ||
                !strstr(e.message, "passes the end"))
                a->wrong++;
        } else {
            if (tacozip_read_member_ex(a->ar, 99, 0, buf, 1, NULL, &e) != TACOZ_ERR_PARAM ||
                !strstr(e.message, "bad argument"))
                a->wrong++;
        }
    }
    return NULL;
}

static void threaded_messages(void) {
    char zip[128];
    size_t sizes[] = {100};
    make_archive("threads", 1, sizes, NULL, zip, sizeof zip);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (!ar) return;
    thr_arg a = {ar, 0, 0}, b = {ar, 1, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, fail_loop, &a);
    pthread_create(&tb, NULL, fail_loop, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_EQ(a.wrong, 0);
    CHECK_EQ(b.wrong, 0);
    tacozip_close(ar);
}

/* ---- display names --------------------------------------------------------- */

static void display_names(void) {
    static const char *cases[][2] = {
        {"http://alice:p@ssw0rd@host.example/x.taco?X-Amz-Signature=abc", "http://host.example/x.taco"},
        {"https://u:pw@h:8443/a/b.taco#frag", "https://h:8443/a/b.taco"},
        {"HTTP://u:p@h/x", "HTTP://h/x"},
        {"S3://bucket/key.taco?versionId=3", "S3://bucket/key.taco"},
        {"s3://bucket/a@b.taco", "s3://bucket/a@b.taco"}, /* '@' after the host is a path */
        {"http://h/x?y@z", "http://h/x"},
        {"/data/me@home/x.taco", "/data/me@home/x.taco"}, /* local paths as they are */
        {"relative.taco?not-a-query", "relative.taco?not-a-query"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256];
        tacozip_display_name(cases[i][0], out, sizeof out);
        if (strcmp(out, cases[i][1])) fprintf(stderr, "display_name(%s) = %s\n", cases[i][0], out);
        CHECK(strcmp(out, cases[i][1]) == 0);
    }
    CHECK(tacozip_is_url("HTTPS://x/y") && tacozip_is_url("s3://b/k") && tacozip_is_url("Http://x"));
    CHECK(!tacozip_is_url("ftp://x/y") && !tacozip_is_url("/tmp/http://x") && !tacozip_is_url("file:///x"));
    /* A URL with a password that holds '@', on a port nobody listens on:
     * the error names the host, never the credentials or the query. */
    tacozip_archive *ar = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_remote_options ro = {.retries = TACOZIP_NO_RETRIES, .connect_timeout_ms = 2000};
    int rc = tacozip_open_remote("HTTP://alice:p@ssw0rd@127.0.0.1:9/x.taco?X-Amz-Signature=SECRET", 0, &ro, &ar, &err);
    CHECK(rc == TACOZ_ERR_NETWORK || rc == TACOZ_ERR_NO_REMOTE);
    CHECK(strstr(err.message, "ssw0rd") == NULL && strstr(err.message, "alice") == NULL &&
          strstr(err.message, "SECRET") == NULL);
    CHECK(strncmp(err.message, "HTTP://127.0.0.1:9/x.taco: ", 27) == 0);
}

/* ---- a pinned identity ------------------------------------------------------ */

/* expected_identity: the source knows its identity before any request
 * (nothing listens on port 9: opening a URL makes no request); a value
 * that cannot be one ETag header is refused, named by the URL. */
static void expected_identity(void) {
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_remote_options ro = {.struct_size = sizeof ro, .expected_identity = "\"etag-7\""};
    tacozip_source *src = NULL;
    int rc = tacozip_source_open("http://127.0.0.1:9/p.taco", &ro, &src, &err);
    if (rc == TACOZ_ERR_NO_REMOTE) return; /* built without libcurl */
    CHECK_EQ(rc, TACOZ_OK);
    char id[300];
    CHECK_EQ(tacozip_source_identity(src, id, sizeof id), 8);
    CHECK(strcmp(id, "\"etag-7\"") == 0);
    tacozip_source_close(src);
    /* empty: not pinned, identity unknown until a response */
    ro.expected_identity = "";
    CHECK_EQ(tacozip_source_open("http://127.0.0.1:9/p.taco", &ro, &src, &err), TACOZ_OK);
    CHECK_EQ(tacozip_source_identity(src, id, sizeof id), 0);
    tacozip_source_close(src);
    static const char *bad[] = {"\"a\"\r\nX-Evil: 1", "\"a\"\n", NULL};
    char longer[300];
    memset(longer, 'e', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    bad[2] = longer;
    for (size_t i = 0; i < 3; i++) {
        ro.expected_identity = bad[i];
        src = NULL;
        CHECK_EQ(tacozip_source_open("http://127.0.0.1:9/p.taco", &ro, &src, &err), TACOZ_ERR_PARAM);
        CHECK(src == NULL);
        CHECK(strncmp(err.message, "http://127.0.0.1:9/p.taco: remote option expected_identity", 58) == 0);
    }
}

/* ---- caller-supplied sources ----------------------------------------------- */

typedef struct {
    const unsigned char *data;
    size_t len;
    int reads, many, closed;
    int fail_at_read; /* fail the n-th read (1-based), 0: never */
    pthread_mutex_t mu;
} mem_cb;

static int cb_size(void *u, uint64_t *size, tacozip_error *err) {
    (void)err;
    *size = ((mem_cb *)u)->len;
    return TACOZ_OK;
}

static int cb_read(void *u, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    mem_cb *m = u;
    pthread_mutex_lock(&m->mu);
    int n = ++m->reads;
    pthread_mutex_unlock(&m->mu);
    if (m->fail_at_read && n >= m->fail_at_read) {
        snprintf(err->message, sizeof err->message, "the disk caught fire at %llu", (unsigned long long)off);
        return TACOZ_ERR_IO;
    }
    if (off > m->len || len > m->len - off) return TACOZ_INVALID_FILE_SIZE;
    memcpy(buf, m->data + off, len);
    return TACOZ_OK;
}

static int cb_ranges(void *u, tacozip_range *r, size_t n, tacozip_error *err) {
    mem_cb *m = u;
    m->many++;
    for (size_t i = 0; i < n; i++) {
        int rc = cb_read(u, r[i].offset, r[i].buf, (size_t)r[i].length, err);
        if (rc) return rc;
    }
    return TACOZ_OK;
}

static int cb_identity(void *u, char *buf, size_t cap) {
    (void)u;
    snprintf(buf, cap, "\"etag-42\"");
    return TACOZ_OK;
}

static void cb_close(void *u) { ((mem_cb *)u)->closed++; }

/* tacozip_source_preload_tail(): an archive opened over a source handed its
 * directory and end records makes no read at open; reads beyond them are
 * made as usual; a wrong size or bad arguments are refused. */
static void preloaded_tail(void) {
    char zip[128];
    size_t sizes[] = {3000, 200000, 50};
    make_archive("preload", 3, sizes, NULL, zip, sizeof zip);
    size_t len = 0;
    unsigned char *whole = slurp(zip, &len);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    uint64_t cd_off = 0, cd_size = 0;
    tacozip_directory_range(ar, &cd_off, &cd_size);
    tacozip_close(ar);
    CHECK(cd_off > 200000 && cd_off + cd_size < len);
    mem_cb m = {whole, len, 0, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    tacozip_source_callbacks cb = {sizeof cb, cb_size, cb_read, cb_ranges, NULL, NULL};
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_source *src = NULL;
    CHECK_EQ(tacozip_source_new(&cb, &m, "mem://preload.taco", &src, &err), TACOZ_OK);
    CHECK_EQ(tacozip_source_preload_tail(src, len, whole + cd_off, (size_t)(len - cd_off), &err), TACOZ_OK);
    ar = NULL;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    CHECK_EQ(m.reads, 0); /* the listing came from the preloaded bytes */
    if (ar) {
        CHECK_EQ(tacozip_count(ar), 4);
        tacozip_member mm = TACOZIP_MEMBER_INIT;
        CHECK_EQ(tacozip_member_at(ar, 3, &mm), TACOZ_OK);
        CHECK(mm.size == 50 && !strcmp(mm.name, "m2"));
        unsigned char buf[50];
        size_t got = 0;
        CHECK_EQ(tacozip_read_member_ex(ar, 3, 0, buf, sizeof buf, &got, &err), TACOZ_OK);
        CHECK(got == 50 && !memcmp(buf, whole + mm.data_offset, 50));
        CHECK(m.reads >= 1); /* the member lies before the preloaded bytes */
        tacozip_close(ar);
    }
    /* a preloaded tail that holds only the end record: the 20 bytes before it
     * (where a ZIP64 locator would be) and the directory are read */
    m.reads = 0;
    CHECK_EQ(tacozip_source_preload_tail(src, len, whole + len - 22, 22, &err), TACOZ_OK);
    ar = NULL;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    CHECK_EQ(m.reads, 2);
    if (ar) CHECK_EQ(tacozip_count(ar), 4);
    tacozip_close(ar);
    /* refused */
    CHECK_EQ(tacozip_source_preload_tail(src, len + 1, whole, 10, &err), TACOZ_ERR_CHANGED);
    CHECK(!strncmp(err.message, "mem://preload.taco: ", 20));
    CHECK_EQ(tacozip_source_preload_tail(src, len, whole, 0, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_source_preload_tail(src, 5, whole, 10, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_source_preload_tail(src, len, NULL, 10, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_source_preload_tail(NULL, len, whole, 10, &err), TACOZ_ERR_PARAM);
    tacozip_source_close(src);
    /* a memory source has no round trips: accepted, nothing kept */
    CHECK_EQ(tacozip_source_memory(whole, len, &src, &err), TACOZ_OK);
    CHECK_EQ(tacozip_source_preload_tail(src, len, whole + cd_off, (size_t)(len - cd_off), &err), TACOZ_OK);
    ar = NULL;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    if (ar) CHECK_EQ(tacozip_count(ar), 4);
    tacozip_close(ar);
    tacozip_source_close(src);
    free(whole);
}

static void callback_sources(void) {
    char zip[128];
    size_t sizes[] = {3000, 200000, 50, 0};
    make_archive("cb", 4, sizes, NULL, zip, sizeof zip);
    size_t len = 0;
    unsigned char *whole = slurp(zip, &len);
    mem_cb m = {whole, len, 0, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    tacozip_source_callbacks cb = {sizeof cb, cb_size, cb_read, cb_ranges, cb_identity, cb_close};
    tacozip_source *src = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_source_new(&cb, &m, "mem://cb.taco", &src, &err), TACOZ_OK);
    char id[64];
    CHECK_EQ(tacozip_source_identity(src, id, sizeof id), 9);
    CHECK(!strcmp(id, "\"etag-42\""));
    taco_meta_array_t h;
    CHECK_EQ(tacozip_read_header_source(src, &h, &err), TACOZ_OK);
    CHECK_EQ(h.count, 1);
    CHECK_EQ(tacozip_validate_source(src, TACOZIP_VALIDATE_DEEP, &err), TACOZ_VALID);
    /* the same source opened again: the tail it read is kept (a source with
     * round trips), so opening costs no read, nor do bytes inside it */
    int before = m.reads;
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    CHECK_EQ(m.reads, before);
    unsigned char last[16];
    CHECK_EQ(tacozip_read_at_ex(ar, len - sizeof last, last, sizeof last, &err), TACOZ_OK);
    CHECK(memcmp(last, whole + len - sizeof last, sizeof last) == 0);
    CHECK_EQ(tacozip_read_header_source(src, &h, &err), TACOZ_OK); /* the first bytes, kept too */
    CHECK_EQ(m.reads, before);
    tacozip_close(ar);
    tacozip_source_close(src);
    CHECK_EQ(m.closed, 1);
    m.closed = 0;
    /* a fresh source */
    CHECK_EQ(tacozip_source_new(&cb, &m, "mem://cb.taco", &src, &err), TACOZ_OK);
    ar = NULL;
    m.reads = 0;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    tacozip_source_close(src); /* the archive keeps its own reference */
    CHECK_EQ(m.closed, 0);
    if (!ar) return;
    /* a source with round trips: the header of an archive larger than the
     * tail is read on first use, once */
    int after_open = m.reads;
    CHECK_EQ(after_open, 1); /* the tail holds end records and directory */
    CHECK_EQ(tacozip_archive_header_ex(ar, &h, &err), TACOZ_OK);
    CHECK_EQ(tacozip_archive_header_ex(ar, &h, &err), TACOZ_OK);
    CHECK_EQ(m.reads, after_open + 1);
    CHECK_EQ(tacozip_count(ar), 5);
    /* whole members through read_ranges: one call of the callback */
    size_t idx[] = {1, 2, 3};
    unsigned char *b1 = malloc(3000), *b2 = malloc(200000), b3[50];
    void *bufs[] = {b1, b2, b3};
    CHECK_EQ(tacozip_read_members_ex(ar, idx, 3, bufs, TACOZIP_DEFAULT_GAP, &err), TACOZ_OK);
    CHECK_EQ(m.many, 0); /* coalesced into one range (1 MiB gap): no parallel call needed */
    CHECK(b1[10] == (unsigned char)(10 * 7 + 0) && b2[199999] == (unsigned char)(199999 * 7 + 1) &&
          b3[49] == (unsigned char)(49 * 7 + 2));
    /* gap 0: three ranges, the last inside the tail read at open (from
     * memory), the other two in one call */
    int reads_before = m.reads;
    tacozip_range rr[3] = {{0, 10, b3}, {len / 2, 20, b3 + 10}, {len - 20, 20, b3 + 30}};
    CHECK_EQ(tacozip_read_ranges_ex(ar, rr, 3, 0, &err), TACOZ_OK);
    CHECK_EQ(m.many, 1);
    CHECK_EQ(m.reads, reads_before + 2);
    CHECK(memcmp(b3, whole, 10) == 0 && memcmp(b3 + 10, whole + len / 2, 20) == 0 &&
          memcmp(b3 + 30, whole + len - 20, 20) == 0);
    for (size_t i = 1; i < 5; i++) CHECK_EQ(tacozip_verify_member_ex(ar, i, &err), TACOZ_OK);
    /* a failing callback: its code, its message, the source's name first */
    m.fail_at_read = m.reads + 1;
    CHECK_EQ(tacozip_read_at_ex(ar, 5, b3, 4, &err), TACOZ_ERR_IO);
    CHECK(strcmp(err.message, "mem://cb.taco: the disk caught fire at 5") == 0);
    m.fail_at_read = 0;
    tacozip_close(ar);
    CHECK_EQ(m.closed, 1); /* when the last reference went */

    /* get_size failing, or missing callbacks */
    tacozip_source_callbacks none = {0};
    CHECK_EQ(tacozip_source_new(&none, &m, NULL, &src, &err), TACOZ_ERR_PARAM);
    tacozip_source_callbacks small = {.struct_size = 4, .get_size = cb_size, .read_at = cb_read};
    CHECK_EQ(tacozip_source_new(&small, &m, NULL, &src, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(m.closed, 1); /* close is not called for a source never made */
    free(b1), free(b2), free(whole);
}

/* One source with round trips shared by threads that each open an archive
 * on it (storing and serving the kept spans at once) and read every member
 * and the last bytes: the right bytes, and the tail fetched at most once
 * per thread (TSan checks the locking). */
typedef struct {
    tacozip_source *src;
    const unsigned char *whole;
    size_t len;
    int wrong;
} share_arg;

static void *share_loop(void *p) {
    share_arg *a = p;
    for (int k = 0; k < 20; k++) {
        tacozip_archive *ar = NULL;
        tacozip_error err = TACOZIP_ERROR_INIT;
        if (tacozip_open_source(a->src, 0, &ar, &err) != TACOZ_OK) {
            a->wrong++;
            continue;
        }
        for (size_t i = 0; i < tacozip_count(ar); i++) {
            tacozip_member m = TACOZIP_MEMBER_INIT;
            tacozip_member_at(ar, i, &m);
            unsigned char *b = malloc(m.size ? (size_t)m.size : 1);
            size_t got = 0;
            if (tacozip_read_member_ex(ar, i, 0, b, (size_t)m.size, &got, &err) != TACOZ_OK || got != m.size ||
                memcmp(b, a->whole + m.data_offset, (size_t)m.size) != 0)
                a->wrong++;
            free(b);
        }
        unsigned char last[100];
        if (tacozip_read_at_ex(ar, a->len - sizeof last, last, sizeof last, &err) != TACOZ_OK ||
            memcmp(last, a->whole + a->len - sizeof last, sizeof last) != 0)
            a->wrong++;
        tacozip_close(ar);
    }
    return NULL;
}

static void shared_source_threads(void) {
    char zip[128];
    size_t sizes[] = {100000, 3000, 20000};
    make_archive("shared", 3, sizes, NULL, zip, sizeof zip);
    size_t len = 0;
    unsigned char *whole = slurp(zip, &len);
    mem_cb m = {whole, len, 0, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    tacozip_source_callbacks cb = {sizeof cb, cb_size, cb_read, cb_ranges, NULL, NULL};
    tacozip_source *src = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_source_new(&cb, &m, "mem://shared.taco", &src, &err), TACOZ_OK);
    if (!src) return;
    share_arg a[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (share_arg){src, whole, len, 0};
        pthread_create(&t[i], NULL, share_loop, &a[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) CHECK_EQ(a[i].wrong, 0);
    /* 80 opens: the tail read by at most the 4 first, then kept; each
     * member's local header + data once per open at most (not in the tail:
     * the first member), the others from the tail */
    CHECK(m.reads <= 4 + 80 * 2);
    int before = m.reads;
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    CHECK_EQ(m.reads, before); /* the tail is kept */
    tacozip_close(ar);
    tacozip_source_close(src);
    free(whole);
}

/* A far read (more than 64 KiB into a member) on a source with round trips
 * still checks the member's local header first. */
static void far_read_checks_local_header(void) {
    char zip[128];
    size_t sizes[] = {300000};
    make_archive("far", 1, sizes, NULL, zip, sizeof zip);
    size_t len = 0;
    unsigned char *whole = slurp(zip, &len);
    /* member m0's local header starts at 157; spoil its CRC field */
    whole[157 + 14] ^= 0xFF;
    mem_cb m = {whole, len, 0, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    tacozip_source_callbacks cb = {0, cb_size, cb_read, NULL, NULL, NULL};
    tacozip_source *src = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_source_new(&cb, &m, "far", &src, &err), TACOZ_OK);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    tacozip_source_close(src);
    if (!ar) return;
    unsigned char buf[100];
    size_t got = 0;
    CHECK_EQ(tacozip_read_member_ex(ar, 1, 200000, buf, sizeof buf, &got, &err), TACOZ_INVALID_LFH);
    CHECK(strstr(err.message, "m0") != NULL);
    CHECK_EQ(tacozip_read_member_ex(ar, 1, 10, buf, sizeof buf, &got, &err), TACOZ_INVALID_LFH);
    tacozip_close(ar);
    /* the unspoilt archive reads the same ranges */
    whole[157 + 14] ^= 0xFF;
    CHECK_EQ(tacozip_source_new(&cb, &m, "far", &src, &err), TACOZ_OK);
    CHECK_EQ(tacozip_open_source(src, 0, &ar, &err), TACOZ_OK);
    tacozip_source_close(src);
    CHECK_EQ(tacozip_read_member_ex(ar, 1, 200000, buf, sizeof buf, &got, &err), TACOZ_OK);
    CHECK(got == sizeof buf && buf[0] == (unsigned char)(200000 * 7));
    tacozip_close(ar);
    free(whole);
}

/* ---- extraction cancelled ------------------------------------------------- */

static int cancel_after(void *u, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    (void)done, (void)total, (void)nfiles;
    return files >= *(uint64_t *)u;
}

static int die_after_data(void *u, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    (void)u, (void)total, (void)files, (void)nfiles;
    if (done > 0) raise(SIGKILL);
    return 0;
}

/* A cancelled append leaves no journal; an append killed midway leaves a
 * hot one, which readers overlay and tacozip_recover() rolls back. */
static void append_journal_and_recover(void) {
    char zip[128], jpath[160], big[128];
    size_t sizes[] = {100, 200};
    make_archive("journal", 2, sizes, NULL, zip, sizeof zip);
    snprintf(jpath, sizeof jpath, "%s.tacozip-journal", zip);
    size_t old_n, n;
    unsigned char *old = slurp(zip, &old_n);
    snprintf(big, sizeof big, "%s/journal-big", dir);
    size_t big_n = 9u << 20;
    unsigned char *d = calloc(1, big_n);
    write_file(big, d, big_n);
    free(d);
    const char *srcs[] = {big};
    uint64_t stop = 0;
    tacozip_write_options o = {.struct_size = sizeof o, .progress = cancel_after, .progress_user = &stop};
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_append_ex(zip, srcs, NULL, 1, &o, &err), TACOZ_ERR_CANCELLED);
    CHECK(!exists(jpath));
    unsigned char *now = slurp(zip, &n);
    CHECK(n == old_n && !memcmp(now, old, n));
    free(now);

    int what = -1;
    CHECK_EQ(tacozip_recover(NULL, &what, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_recover(zip, &what, &err), TACOZ_OK);
    CHECK_EQ(what, TACOZIP_RECOVERED_NOTHING);

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tacozip_write_options k = {.struct_size = sizeof k, .progress = die_after_data, .no_fsync = 1};
        tacozip_append_ex(zip, srcs, NULL, 1, &k, NULL);
        _exit(3); /* not reached */
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(exists(jpath));
    now = slurp(zip, &n);
    CHECK(n != old_n || memcmp(now, old, n) != 0); /* the append had written */
    free(now);
    /* readers see the old archive */
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (ar) {
        CHECK_EQ(tacozip_count(ar), 3); /* TACO_HEADER, m0, m1 */
        CHECK_EQ(tacozip_archive_size(ar), old_n);
        tacozip_close(ar);
    }
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);
    CHECK_EQ(tacozip_recover(zip, &what, &err), TACOZ_OK);
    CHECK_EQ(what, TACOZIP_RECOVERED_APPEND);
    CHECK(!exists(jpath));
    now = slurp(zip, &n);
    CHECK(n == old_n && !memcmp(now, old, n));
    free(now);
    free(old);
}

static void extract_cancel_leaves_nothing(void) {
    char zip[128];
    size_t sizes[] = {10, 20, 30, 40, 50};
    make_archive("xcancel", 5, sizes, NULL, zip, sizeof zip);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (!ar) return;
    char dest[128], path[160];
    snprintf(dest, sizeof dest, "%s/xout", dir);
    uint64_t stop = 2;
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER, cancel_after, &stop, &err),
             TACOZ_ERR_CANCELLED);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/m%d", dest, i);
        CHECK(!exists(path));
    }
    /* a file that was there before and is overwritten stays (replaced) */
    snprintf(path, sizeof path, "%s/m0", dest);
    write_file(path, "old", 3);
    stop = 3;
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER | TACOZIP_EXTRACT_OVERWRITE,
                             cancel_after, &stop, &err),
             TACOZ_ERR_CANCELLED);
    CHECK(exists(path));
    snprintf(path, sizeof path, "%s/m1", dest);
    CHECK(!exists(path));
    /* without a cancel, everything */
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER | TACOZIP_EXTRACT_OVERWRITE, NULL, NULL,
                             &err),
             TACOZ_OK);
    snprintf(path, sizeof path, "%s/m4", dest);
    CHECK(exists(path));
    tacozip_close(ar);
}

/* Extraction is all or nothing when a target exists; a file that appears
 * during the extraction is not replaced; names too long or too deep are
 * refused before anything is written. */
static int count_calls(void *user, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    (void)done, (void)total, (void)files, (void)nfiles;
    ++*(int *)user;
    return 0;
}

typedef struct {
    const char *path; /* planted when member 1's bytes are being written */
    int seen, planted;
} plant_state;

/* Called once when member 0 is done (files 1), then after each chunk of
 * member 1 (files still 1): the second call is in the middle of member 1,
 * after its existence was checked and before its rename. */
static int plant_during(void *user, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    (void)done, (void)total, (void)nfiles;
    plant_state *p = user;
    if (files == 1 && ++p->seen == 2) {
        write_file(p->path, "planted", 7);
        p->planted = 1;
    }
    return 0;
}

static void extract_checks_targets_first(void) {
    char zip[128], dest[128], path[192];
    size_t sizes[] = {10, 20, 30};
    make_archive("xtargets", 3, sizes, NULL, zip, sizeof zip);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (!ar) return;
    tacozip_error err = TACOZIP_ERROR_INIT;
    /* m2 exists: nothing at all is written (no progress, no other file) */
    snprintf(dest, sizeof dest, "%s/xt1", dir);
    mkdir(dest, 0777);
    snprintf(path, sizeof path, "%s/m2", dest);
    write_file(path, "mine", 4);
    int calls = 0;
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER, count_calls, &calls, &err),
             TACOZ_ERR_EXISTS);
    CHECK(strstr(err.message, "m2") != NULL && strstr(err.message, "nothing extracted") != NULL);
    CHECK_EQ(calls, 0);
    snprintf(path, sizeof path, "%s/m0", dest);
    CHECK(!exists(path));
    /* a file that appears while the member is written is left as it is */
    snprintf(dest, sizeof dest, "%s/xt2", dir);
    snprintf(path, sizeof path, "%s/m1", dest);
    plant_state ps = {path, 0, 0};
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER, plant_during, &ps, &err),
             TACOZ_ERR_EXISTS);
    CHECK(ps.planted && strstr(err.message, "appeared") != NULL);
    size_t len = 0;
    unsigned char *got = slurp(path, &len);
    CHECK(len == 7 && !memcmp(got, "planted", 7));
    free(got);
    snprintf(path, sizeof path, "%s/m0", dest);
    CHECK(!exists(path)); /* what the call created is removed */
    tacozip_close(ar);

    /* 200 levels: refused, nothing created */
    char src[128], deep[1024] = "";
    snprintf(src, sizeof src, "%s/deep-src", dir);
    write_file(src, "x", 1);
    for (int i = 0; i < 200; i++) strcat(deep, "a/");
    strcat(deep, "x");
    const char *srcs[] = {src}, *arcs[] = {deep};
    snprintf(zip, sizeof zip, "%s/deep.taco", dir);
    CHECK_EQ(tacozip_create_ex(zip, srcs, arcs, 1, NULL, NULL, &err), TACOZ_OK);
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (!ar) return;
    snprintf(dest, sizeof dest, "%s/xt3", dir);
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER, NULL, NULL, &err), TACOZ_ERR_UNSAFE_PATH);
    CHECK(strstr(err.message, "201 levels") != NULL);
    snprintf(path, sizeof path, "%s/a", dest);
    CHECK(!exists(path));
    tacozip_close(ar);
}

/* ---- reproducible bytes ---------------------------------------------------- */

static void mtime_is_utc(void) {
    size_t sizes[] = {100, 200};
    tacozip_write_options o = {.mtime = 1700000000};
    char a[128], b[128], c[128];
    setenv("TZ", "UTC", 1);
    tzset();
    make_archive("tz-utc", 2, sizes, &o, a, sizeof a);
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    make_archive("tz-tokyo", 2, sizes, &o, b, sizeof b);
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();
    make_archive("tz-la", 2, sizes, &o, c, sizeof c);
    unsetenv("TZ");
    tzset();
    size_t na = 0, nb = 0, nc = 0;
    unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb), *pc = slurp(c, &nc);
    CHECK(na == nb && nb == nc && memcmp(pa, pb, na) == 0 && memcmp(pa, pc, na) == 0);
    /* 2023-11-14 22:13:20 UTC: DOS date and time of TACO_HEADER (offset 10) */
    uint32_t dos = (uint32_t)pa[10] | (uint32_t)pa[11] << 8 | (uint32_t)pa[12] << 16 | (uint32_t)pa[13] << 24;
    CHECK_EQ(dos >> 16, ((2023 - 1980) << 9) | (11 << 5) | 14);
    CHECK_EQ(dos & 0xFFFF, (22 << 11) | (13 << 5) | (20 / 2));
    free(pa), free(pb), free(pc);
}

/* 65,535 members need ZIP64 end records: "version made by" and "needed"
 * are both 45 there, as the original writes. */
static void zip64_end_record(void) {
    enum { N = 65535 };
    char src[128], zip[128];
    snprintf(src, sizeof src, "%s/empty", dir);
    write_file(src, "", 0);
    snprintf(zip, sizeof zip, "%s/many.taco", dir);
    const char **srcs = malloc(N * sizeof *srcs), **arcs = malloc(N * sizeof *arcs);
    char *names = malloc(N * 8);
    for (int i = 0; i < N; i++) {
        srcs[i] = src;
        snprintf(names + 8 * i, 8, "%05d", i);
        arcs[i] = names + 8 * i;
    }
    tacozip_write_options o = {.no_fsync = 1};
    CHECK_EQ(tacozip_create_ex(zip, srcs, arcs, N, NULL, &o, NULL), TACOZ_OK);
    CHECK_EQ(tacozip_detect_format(zip), TACOZIP_FORMAT_ZIP64);
    size_t len = 0;
    unsigned char *b = slurp(zip, &len);
    /* ZIP64 end record, locator (20), end record (22) */
    const unsigned char *z = b + len - 22 - 20 - 56;
    CHECK(z[0] == 'P' && z[1] == 'K' && z[2] == 6 && z[3] == 6);
    CHECK(z[12] == 45 && z[13] == 0 && z[14] == 45 && z[15] == 0);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_NORMAL), TACOZ_VALID);
    free(b), free(srcs), free(arcs), free(names);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/tacozip-api-XXXXXX");
    if (!mkdtemp(dir)) return 2;
    sized_structs();
    codes();
    threaded_messages();
    display_names();
    expected_identity();
    callback_sources();
    preloaded_tail();
    far_read_checks_local_header();
    shared_source_threads();
    extract_cancel_leaves_nothing();
    append_journal_and_recover();
    extract_checks_targets_first();
    mtime_is_utc();
    zip64_end_record();
    return check_summary();
}
