/* test_writer.c - the streaming writer (tacozip_writer_*), header entries
 * planned by name (tacozip_plan, tacozip_create_planned): byte-identical
 * output with tacozip_create_ex, spooling, bad streams, nothing left on
 * failure, entries equal to what the archive says. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tacozip.h"

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Files in "dir" (spool leftovers). */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

/* A stream over a buffer, in pieces of at most "step" bytes; "extra" bytes
 * of zeros after it (a stream longer than declared); "fail_at": return
 * that code once "fail_at" bytes were given (0: never). */
typedef struct {
    const unsigned char *data;
    size_t len, pos, step, extra;
    size_t fail_at;
    int code;
} stream;

static int stream_read(void *user, void *buf, size_t cap, size_t *got, tacozip_error *err) {
    stream *s = user;
    if (s->fail_at && s->pos >= s->fail_at) {
        if (err) snprintf(err->message, sizeof err->message, "test stream: the producer died"), err->code = s->code;
        return s->code;
    }
    size_t left = s->len + s->extra - s->pos, n = left < cap ? left : cap;
    if (n > s->step) n = s->step;
    for (size_t i = 0; i < n; i++) ((unsigned char *)buf)[i] = s->pos + i < s->len ? s->data[s->pos + i] : 0;
    s->pos += n;
    *got = n;
    return TACOZ_OK;
}

static unsigned char *pattern(size_t n, unsigned seed) {
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
    return p;
}

#define NFILES 4
static const char *names[NFILES] = {"meta/COLLECTION.json", "data/val/a.bin", "data/val/b.bin", "data/train/c.bin"};
static const size_t sizes[NFILES] = {300, 70000, 5, 1u << 20};
static const char *srcs[NFILES] = {"w_src0", "w_src1", "w_src2", "w_src3"};

static void test_same_bytes_as_create(unsigned align) {
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.mtime = 1700000000, o.no_fsync = 1, o.alignment = align;
    tacozip_entry_plan e[3] = {TACOZIP_ENTRY_PLAN_INIT, TACOZIP_ENTRY_PLAN_INIT, TACOZIP_ENTRY_PLAN_INIT};
    e[0].kind = TACOZIP_ENTRY_PREFIX, e[0].name = "data/val/";
    e[1].kind = TACOZIP_ENTRY_DATA, e[1].name = "meta/COLLECTION.json";
    e[2].kind = TACOZIP_ENTRY_DIRECTORY;
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_create_planned("w_ref.taco", srcs, names, NFILES, e, 3, &o, NULL, &err), TACOZ_OK);

    /* the writer, fed each member a different way */
    tacozip_writer *w = NULL;
    CHECK_EQ(tacozip_writer_open("w_new.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_set_entries(w, e, 1, &err), TACOZ_OK); /* replaced below */
    CHECK_EQ(tacozip_writer_add_file(w, srcs[0], names[0], &err), TACOZ_OK);
    size_t n1;
    unsigned char *d1 = slurp(srcs[1], &n1);
    CHECK_EQ(tacozip_writer_add_buffer(w, names[1], d1, n1, 0, &err), TACOZ_OK);
    size_t n2;
    unsigned char *d2 = slurp(srcs[2], &n2);
    stream s2 = {d2, n2, 0, 2, 0, 0, 0};
    CHECK_EQ(tacozip_writer_add_stream(w, names[2], n2, stream_read, &s2, 0, &err), TACOZ_OK); /* declared */
    size_t n3;
    unsigned char *d3 = slurp(srcs[3], &n3);
    stream s3 = {d3, n3, 0, 100000, 0, 0, 0};
    CHECK_EQ(tacozip_writer_add_stream(w, names[3], TACOZIP_SIZE_UNKNOWN, stream_read, &s3, 0, &err), TACOZ_OK);
    CHECK(!exists("w_new.taco")); /* nothing visible before close */
    CHECK_EQ(tacozip_writer_set_entries(w, e, 3, &err), TACOZ_OK);
    taco_meta_array_t got;
    CHECK_EQ(tacozip_writer_close(w, &got, &err), TACOZ_OK);
    if (err.code) fprintf(stderr, "%s\n", err.message);
    size_t ra, rb;
    unsigned char *a = slurp("w_ref.taco", &ra), *b = slurp("w_new.taco", &rb);
    CHECK(a && b && ra == rb && memcmp(a, b, ra) == 0);
    CHECK_EQ(tacozip_validate("w_new.taco", TACOZIP_VALIDATE_DEEP), TACOZ_VALID);

    /* the entries are what the archive says */
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open_ex("w_new.taco", 0, &ar, &err), TACOZ_OK);
    size_t idx[2];
    uint64_t off = 0, len = 0;
    CHECK_EQ(tacozip_find(ar, "data/val/a.bin", (size_t)-1, &idx[0]), TACOZ_OK);
    CHECK_EQ(tacozip_find(ar, "data/val/b.bin", (size_t)-1, &idx[1]), TACOZ_OK);
    CHECK_EQ(tacozip_span(ar, idx, 2, 0, &off, &len), TACOZ_OK);
    CHECK_EQ(got.count, 3);
    CHECK_EQ(got.entries[0].offset, off);
    CHECK_EQ(got.entries[0].length, len);
    size_t k;
    CHECK_EQ(tacozip_find(ar, "meta/COLLECTION.json", (size_t)-1, &k), TACOZ_OK);
    CHECK_EQ(tacozip_span(ar, &k, 1, TACOZIP_SPAN_DATA_ONLY, &off, &len), TACOZ_OK);
    CHECK_EQ(got.entries[1].offset, off);
    CHECK_EQ(got.entries[1].length, 300);
    CHECK_EQ(got.entries[2].offset + got.entries[2].length, rb); /* the directory runs to the end */
    taco_meta_array_t hdr;
    CHECK_EQ(tacozip_read_header("w_new.taco", &hdr), TACOZ_OK);
    CHECK(memcmp(&hdr, &got, sizeof hdr) == 0);
    tacozip_close(ar);

    /* tacozip_plan says the same without writing */
    uint64_t lho[NFILES], data[NFILES], dir = 0;
    uint64_t sz[NFILES];
    for (int i = 0; i < NFILES; i++) sz[i] = sizes[i];
    taco_meta_array_t planned;
    CHECK_EQ(tacozip_plan(names, sz, NFILES, e, 3, &o, lho, data, &dir, &planned, &err), TACOZ_OK);
    CHECK(memcmp(&planned, &got, sizeof got) == 0);
    CHECK_EQ(dir, got.entries[2].offset);
    if (align > 1)
        for (int i = 0; i < NFILES; i++) CHECK_EQ(data[i] % align, 0);
    else
        CHECK_EQ(data[1], 157 + 30 + strlen(names[0]) + 300 + 30 + strlen(names[1]));
    free(a), free(b), free(d1), free(d2), free(d3);
    unlink("w_ref.taco"), unlink("w_new.taco");
}

static void test_plan_with_index(void) {
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.index = 1, o.no_fsync = 1, o.alignment = 4096;
    tacozip_entry_plan e[2] = {TACOZIP_ENTRY_PLAN_INIT, TACOZIP_ENTRY_PLAN_INIT};
    const char *both[2] = {"data/train/c.bin", "meta/COLLECTION.json"};
    e[0].kind = TACOZIP_ENTRY_MEMBERS, e[0].names = both, e[0].n_names = 2;
    e[1].kind = TACOZIP_ENTRY_DIRECTORY;
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_create_planned("w_idx.taco", srcs, names, NFILES, e, 2, &o, NULL, &err), TACOZ_OK);
    taco_meta_array_t hdr;
    CHECK_EQ(tacozip_read_header("w_idx.taco", &hdr), TACOZ_OK);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open_ex("w_idx.taco", 0, &ar, &err), TACOZ_OK);
    size_t idx[2];
    uint64_t off = 0, len = 0;
    CHECK_EQ(tacozip_find(ar, both[0], (size_t)-1, &idx[0]), TACOZ_OK);
    CHECK_EQ(tacozip_find(ar, both[1], (size_t)-1, &idx[1]), TACOZ_OK);
    CHECK_EQ(tacozip_span(ar, idx, 2, 0, &off, &len), TACOZ_OK);
    CHECK_EQ(hdr.entries[0].offset, off);
    CHECK_EQ(hdr.entries[0].length, len);
    struct stat st;
    stat("w_idx.taco", &st);
    CHECK_EQ(hdr.entries[1].offset + hdr.entries[1].length, st.st_size);
    CHECK_EQ(tacozip_validate("w_idx.taco", TACOZIP_VALIDATE_DEEP), TACOZ_VALID);
    tacozip_close(ar);
    unlink("w_idx.taco");
}

static void test_spool_to_file(void) {
    mkdir("w_spool", 0700);
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.no_fsync = 1, o.spool_limit = 4096, o.spool_dir = "w_spool";
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_writer *w = NULL;
    size_t n = 3u << 20;
    unsigned char *d = pattern(n, 7);
    stream s = {d, n, 0, 65536, 0, 0, 0};
    CHECK_EQ(tacozip_writer_open("w_sp.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_stream(w, "big.bin", TACOZIP_SIZE_UNKNOWN, stream_read, &s, 0, &err), TACOZ_OK);
    CHECK_EQ(count_files("w_spool"), 0); /* the spool file is unnamed and gone */
    CHECK_EQ(tacozip_writer_close(w, NULL, &err), TACOZ_OK);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open_ex("w_sp.taco", 0, &ar, &err), TACOZ_OK);
    size_t k;
    CHECK_EQ(tacozip_find(ar, "big.bin", (size_t)-1, &k), TACOZ_OK);
    tacozip_member m = TACOZIP_MEMBER_INIT;
    CHECK_EQ(tacozip_member_at(ar, k, &m), TACOZ_OK);
    CHECK_EQ(m.size, n);
    CHECK_EQ(m.crc32, tacozip_crc32(0, d, n));
    tacozip_close(ar);
    CHECK_EQ(tacozip_validate("w_sp.taco", TACOZIP_VALIDATE_DEEP), TACOZ_VALID);
    /* a spool directory that does not exist: a clear error, nothing left */
    o.spool_dir = "w_no_such_dir";
    s.pos = 0;
    err = (tacozip_error)TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_writer_open("w_sp2.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_stream(w, "big.bin", TACOZIP_SIZE_UNKNOWN, stream_read, &s, 0, &err), TACOZ_ERR_IO);
    CHECK(strstr(err.message, "spool file in w_no_such_dir") != NULL);
    CHECK_EQ(tacozip_writer_close(w, NULL, &err), TACOZ_ERR_PARAM); /* failed: close refuses and frees */
    CHECK(!exists("w_sp2.taco"));
    free(d);
    unlink("w_sp.taco");
    rmdir("w_spool");
}

static void test_bad_streams(void) {
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.no_fsync = 1;
    unsigned char *d = pattern(100000, 3);
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_writer *w = NULL;
    /* longer than declared */
    stream s = {d, 100000, 0, 4096, 1, 0, 0};
    write_file("w_old.taco", "old bytes", 9);
    CHECK_EQ(tacozip_writer_open("w_old.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_stream(w, "x", 100000, stream_read, &s, 0, &err), TACOZ_ERR_CHANGED);
    CHECK(strstr(err.message, "went on past its declared 100000 bytes") != NULL);
    CHECK_EQ(tacozip_writer_add_buffer(w, "y", "a", 1, 0, &err), TACOZ_ERR_PARAM);
    CHECK(strstr(err.message, "has failed") != NULL);
    tacozip_writer_abort(w);
    size_t n;
    unsigned char *old = slurp("w_old.taco", &n);
    CHECK(old && n == 9 && memcmp(old, "old bytes", 9) == 0); /* untouched */
    free(old);
    /* shorter than declared */
    stream t = {d, 5000, 0, 4096, 0, 0, 0};
    CHECK_EQ(tacozip_writer_open("w_short.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_stream(w, "x", 100000, stream_read, &t, 0, &err), TACOZ_ERR_CHANGED);
    CHECK(strstr(err.message, "ended after 5000 of its declared 100000 bytes") != NULL);
    tacozip_writer_abort(w);
    CHECK(!exists("w_short.taco"));
    /* the callback fails: its code and message come back */
    stream f = {d, 100000, 0, 4096, 0, 8192, TACOZ_ERR_IO};
    CHECK_EQ(tacozip_writer_open("w_cb.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_stream(w, "x", TACOZIP_SIZE_UNKNOWN, stream_read, &f, 0, &err), TACOZ_ERR_IO);
    CHECK(strstr(err.message, "producer died") != NULL);
    tacozip_writer_abort(w);
    CHECK(!exists("w_cb.taco"));
    /* a duplicate name, a reserved name */
    CHECK_EQ(tacozip_writer_open("w_dup.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_buffer(w, "a", "1", 1, 0, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_buffer(w, "a", "2", 1, 0, &err), TACOZ_ERR_EXISTS);
    tacozip_writer_abort(w);
    CHECK_EQ(tacozip_writer_open("w_dup.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_buffer(w, "TACO_HEADER", "1", 1, 0, &err), TACOZ_ERR_EXISTS);
    tacozip_writer_abort(w);
    CHECK(!exists("w_dup.taco"));
    /* an entry naming no member: close fails, nothing is left */
    tacozip_entry_plan e = TACOZIP_ENTRY_PLAN_INIT;
    e.kind = TACOZIP_ENTRY_PREFIX, e.name = "nope/";
    CHECK_EQ(tacozip_writer_open("w_ent.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_add_buffer(w, "a", "1", 1, 0, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_set_entries(w, &e, 1, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_close(w, NULL, &err), TACOZ_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "w_ent.taco: header entry 0: no member name starts with \"nope/\"") != NULL);
    CHECK(!exists("w_ent.taco"));
    /* the same for create_planned: refused before anything is written */
    e.kind = TACOZIP_ENTRY_DATA, e.name = "missing";
    CHECK_EQ(tacozip_create_planned("w_ent.taco", srcs, names, NFILES, &e, 1, &o, NULL, &err), TACOZ_ERR_NOT_FOUND);
    CHECK(!exists("w_ent.taco"));
    /* options the writer does not take, outputs it does not write */
    o.index = 1;
    CHECK_EQ(tacozip_writer_open("w_i.taco", &o, NULL, &w, &err), TACOZ_ERR_PARAM);
    o.index = 0;
    CHECK_EQ(tacozip_writer_open("https://example.com/a.taco", &o, NULL, &w, &err), TACOZ_ERR_PARAM);
    CHECK(strstr(err.message, "local files and s3:// URLs only") != NULL);
    /* 8 entries do not fit */
    tacozip_entry_plan many[8];
    for (int i = 0; i < 8; i++) many[i] = (tacozip_entry_plan)TACOZIP_ENTRY_PLAN_INIT;
    CHECK_EQ(tacozip_writer_open("w_m.taco", &o, NULL, &w, &err), TACOZ_OK);
    CHECK_EQ(tacozip_writer_set_entries(w, many, 8, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_writer_close(w, NULL, &err), TACOZ_OK); /* a bad list changed nothing */
    taco_meta_array_t hdr;
    CHECK_EQ(tacozip_read_header("w_m.taco", &hdr), TACOZ_OK);
    CHECK_EQ(hdr.count, 1);
    unlink("w_m.taco"), unlink("w_old.taco");
    free(d);
}

/* Many members through the writer: the name table grows. */
static void test_many_members(void) {
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.no_fsync = 1;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_writer *w = NULL;
    CHECK_EQ(tacozip_writer_open("w_many.taco", &o, NULL, &w, &err), TACOZ_OK);
    int ok = 1;
    char name[64];
    for (int i = 0; i < 3000 && ok; i++) {
        snprintf(name, sizeof name, "tiles/%d/%d.png", i % 7, i);
        ok = tacozip_writer_add_buffer(w, name, name, strlen(name), 0, &err) == TACOZ_OK;
    }
    CHECK(ok);
    CHECK_EQ(tacozip_writer_add_buffer(w, "tiles/3/10.png", "x", 1, 0, &err), TACOZ_ERR_EXISTS);
    tacozip_writer_abort(w);
    CHECK(!exists("w_many.taco"));
}

int main(void) {
    for (int i = 0; i < NFILES; i++) {
        unsigned char *p = pattern(sizes[i], (unsigned)i);
        write_file(srcs[i], p, sizes[i]);
        free(p);
    }
    test_same_bytes_as_create(0);
    test_same_bytes_as_create(4096);
    test_plan_with_index();
    test_spool_to_file();
    test_bad_streams();
    test_many_members();
    for (int i = 0; i < NFILES; i++) unlink(srcs[i]);
    return check_summary();
}
