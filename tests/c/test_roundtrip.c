/* test_roundtrip.c - write with the C API, read back through the index:
 * predicted offsets, member bytes, lookups, spans, extraction, append,
 * alignment, and an index of 100,000 members. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tacozip.h"

static char dir[64];

static void basic(void) {
    /* members of varied sizes and names */
    const size_t sizes[] = {0, 1, 4096, 1 << 20, 12345};
    const char *names[] = {"empty", "one.bin", "dir/four_k.bin", "big/\xc3\xa9t\xc3\xa9.bin", "last"};
    char srcs[5][128];
    const char *srcp[5];
    unsigned char *data[5];
    for (int i = 0; i < 5; i++) {
        snprintf(srcs[i], sizeof srcs[i], "%s/src%d", dir, i);
        data[i] = malloc(sizes[i] + 1);
        for (size_t k = 0; k < sizes[i]; k++) data[i][k] = (unsigned char)(k * 31 + i);
        write_file(srcs[i], data[i], sizes[i]);
        srcp[i] = srcs[i];
    }
    char zip[128];
    snprintf(zip, sizeof zip, "%s/a.taco", dir);
    taco_meta_array_t meta = {.count = 1};
    CHECK_EQ(tacozip_create(zip, srcp, names, 5, &meta), TACOZ_OK);
    CHECK_EQ(tacozip_detect_format(zip), TACOZIP_FORMAT_ZIP32);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);

    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (!ar) return;
    CHECK_EQ(tacozip_count(ar), 6);
    size_t fsize = 0;
    unsigned char *whole = slurp(zip, &fsize);
    CHECK_EQ(tacozip_archive_size(ar), fsize);
    /* the layout tacotoolbox predicts */
    uint64_t predicted = 157;
    for (int i = 0; i < 5; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        CHECK_EQ(tacozip_member_at(ar, (size_t)i + 1, &m), TACOZ_OK);
        CHECK(strcmp(m.name, names[i]) == 0);
        uint64_t nlen = strlen(names[i]);
        CHECK_EQ(m.header_offset, predicted);
        CHECK_EQ(m.data_offset, predicted + 30 + nlen);
        CHECK_EQ(m.size, sizes[i]);
        CHECK(memcmp(whole + m.data_offset, data[i], sizes[i]) == 0);
        CHECK_EQ(whole[m.header_offset + 28], 0); /* no extra field */
        CHECK_EQ(whole[m.header_offset + 29], 0);
        CHECK_EQ(whole[m.header_offset + 6] & 8, 0); /* no data descriptor */
        predicted += 30 + nlen + sizes[i];
        size_t idx = 99;
        CHECK_EQ(tacozip_find(ar, names[i], (size_t)-1, &idx), TACOZ_OK);
        CHECK_EQ(idx, (size_t)i + 1);
        /* read a byte range of the member */
        if (sizes[i] > 10) {
            unsigned char buf[7];
            size_t got = 0;
            CHECK_EQ(tacozip_read_member(ar, idx, 3, buf, 7, &got), TACOZ_OK);
            CHECK_EQ(got, 7);
            CHECK(memcmp(buf, data[i] + 3, 7) == 0);
            CHECK_EQ(tacozip_read_member(ar, idx, sizes[i] - 2, buf, 7, &got), TACOZ_OK);
            CHECK_EQ(got, 2);
        }
        CHECK_EQ(tacozip_verify_member(ar, idx), TACOZ_OK);
    }
    CHECK_EQ(tacozip_find(ar, "missing", (size_t)-1, NULL), TACOZ_ERR_NOT_FOUND);
    CHECK_EQ(tacozip_find(ar, "dir/four_k.binX", 14, NULL), TACOZ_OK); /* explicit length */
    /* span of members 2 and 3 */
    size_t sel[] = {3, 2};
    uint64_t off = 0, len = 0;
    CHECK_EQ(tacozip_span(ar, sel, 2, 0, &off, &len), TACOZ_OK);
    tacozip_member m2 = TACOZIP_MEMBER_INIT, m3 = TACOZIP_MEMBER_INIT;
    tacozip_member_at(ar, 2, &m2);
    tacozip_member_at(ar, 3, &m3);
    CHECK_EQ(off, m2.header_offset);
    CHECK_EQ(off + len, m3.data_offset + m3.size);
    CHECK_EQ(tacozip_span(ar, sel, 2, TACOZIP_SPAN_DATA_ONLY, &off, &len), TACOZ_OK);
    CHECK_EQ(off, m2.data_offset);
    CHECK_EQ(tacozip_span(ar, sel, 0, 0, &off, &len), TACOZ_ERR_PARAM);
    taco_meta_array_t h;
    CHECK_EQ(tacozip_archive_header(ar, &h), TACOZ_OK);
    CHECK_EQ(h.count, 1);

    /* the same archive opened from memory gives the same index */
    tacozip_archive *mem = NULL;
    CHECK_EQ(tacozip_open_memory(whole, fsize, 0, &mem, NULL), TACOZ_OK);
    if (mem) {
        CHECK_EQ(tacozip_count(mem), 6);
        tacozip_member a = TACOZIP_MEMBER_INIT, b = TACOZIP_MEMBER_INIT;
        for (size_t i = 0; i < 6; i++) {
            tacozip_member_at(ar, i, &a);
            tacozip_member_at(mem, i, &b);
            CHECK(a.data_offset == b.data_offset && a.size == b.size && a.crc32 == b.crc32);
            CHECK_EQ(tacozip_verify_member(mem, i), TACOZ_OK);
        }
        tacozip_close(mem);
    }
    /* VERIFY_LOCAL reads every local header and agrees */
    tacozip_archive *v = NULL;
    CHECK_EQ(tacozip_open_ex(zip, TACOZIP_OPEN_VERIFY_LOCAL, &v, NULL), TACOZ_OK);
    if (v) {
        tacozip_member a = TACOZIP_MEMBER_INIT, b = TACOZIP_MEMBER_INIT;
        for (size_t i = 0; i < 6; i++) {
            tacozip_member_at(ar, i, &a);
            tacozip_member_at(v, i, &b);
            CHECK_EQ(a.data_offset, b.data_offset);
        }
        tacozip_close(v);
    }

    /* extraction: all members, bytes identical */
    char dest[128];
    snprintf(dest, sizeof dest, "%s/out", dir);
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER, NULL, NULL, &err), TACOZ_OK);
    for (int i = 0; i < 5; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dest, names[i]);
        size_t n = 99;
        unsigned char *b = slurp(p, &n);
        CHECK(b != NULL);
        if (b) {
            CHECK_EQ(n, sizes[i]);
            CHECK(memcmp(b, data[i], sizes[i]) == 0);
        }
        free(b);
    }
    char hp[160];
    snprintf(hp, sizeof hp, "%s/TACO_HEADER", dest);
    CHECK(access(hp, F_OK) != 0);
    /* again: refuses to overwrite, then overwrites with the flag */
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER, NULL, NULL, &err), TACOZ_ERR_EXISTS);
    CHECK_EQ(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_SKIP_HEADER | TACOZIP_EXTRACT_OVERWRITE, NULL, NULL,
                             &err),
             TACOZ_OK);
    const char *pick[] = {"last", "nope"};
    CHECK_EQ(tacozip_extract(ar, dest, pick, 2, TACOZIP_EXTRACT_OVERWRITE, NULL, NULL, &err), TACOZ_ERR_NOT_FOUND);
    tacozip_close(ar);

    /* append: old bytes untouched, new members where the directory was */
    uint64_t old_cd = 0;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    tacozip_directory_range(ar, &old_cd, NULL);
    tacozip_close(ar);
    const char *more_src[] = {srcs[2], srcs[4]};
    const char *more_names[] = {"appended/a", "appended/b"};
    CHECK_EQ(tacozip_append_ex(zip, more_src, more_names, 2, NULL, &err), TACOZ_OK);
    size_t n2 = 0;
    unsigned char *after = slurp(zip, &n2);
    CHECK(memcmp(after, whole, (size_t)old_cd) == 0);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    CHECK_EQ(tacozip_count(ar), 8);
    size_t ia;
    CHECK_EQ(tacozip_find(ar, "appended/a", (size_t)-1, &ia), TACOZ_OK);
    tacozip_member ma = TACOZIP_MEMBER_INIT;
    tacozip_member_at(ar, ia, &ma);
    CHECK_EQ(ma.header_offset, old_cd);
    CHECK(memcmp(after + ma.data_offset, data[2], sizes[2]) == 0);
    tacozip_close(ar);
    /* a duplicate name is refused and the file is unchanged */
    CHECK_EQ(tacozip_append_ex(zip, more_src, more_names, 1, NULL, &err), TACOZ_ERR_EXISTS);
    size_t n3 = 0;
    unsigned char *after2 = slurp(zip, &n3);
    CHECK(n3 == n2 && memcmp(after2, after, n2) == 0);
    /* a missing source is refused before anything is written */
    const char *missing[] = {"/nonexistent/file"};
    CHECK_EQ(tacozip_append_ex(zip, missing, NULL, 1, NULL, &err), TACOZ_ERR_IO);
    free(after2);
    after2 = slurp(zip, &n3);
    CHECK(n3 == n2 && memcmp(after2, after, n2) == 0);
    free(after2);
    free(after);
    free(whole);
    for (int i = 0; i < 5; i++) free(data[i]);
}

static void errors(void) {
    char zip[128], src[128];
    snprintf(zip, sizeof zip, "%s/err.taco", dir);
    snprintf(src, sizeof src, "%s/src_e", dir);
    write_file(src, (const unsigned char *)"x", 1);
    write_file(zip, (const unsigned char *)"keep me", 7);
    const char *s1[] = {src, src};
    const char *dup[] = {"same", "same"};
    const char *bad[] = {"../up"};
    const char *abs_[] = {"/abs"};
    const char *hdr[] = {"TACO_HEADER"};
    const char *missing[] = {src, "/nonexistent/zzz"};
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_create_ex(zip, s1, dup, 2, NULL, NULL, &err), TACOZ_ERR_EXISTS);
    CHECK_EQ(tacozip_create_ex(zip, s1, bad, 1, NULL, NULL, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_create_ex(zip, s1, abs_, 1, NULL, NULL, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_create_ex(zip, s1, hdr, 1, NULL, NULL, &err), TACOZ_ERR_EXISTS);
    CHECK_EQ(tacozip_create_ex(zip, missing, NULL, 2, NULL, NULL, &err), TACOZ_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/zzz") != NULL);
    taco_meta_array_t m8 = {.count = 8};
    CHECK_EQ(tacozip_create(zip, s1, NULL, 1, &m8), TACOZ_ERR_PARAM);
    tacozip_write_options o = {.alignment = 3000};
    CHECK_EQ(tacozip_create_ex(zip, s1, NULL, 1, NULL, &o, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_create_ex(zip, s1, NULL, 1, NULL, NULL, NULL) == TACOZ_OK ? 0 : 1, 0);
    /* after the failures above, the one success replaced "keep me" */
    size_t n;
    unsigned char *b = slurp(zip, &n);
    CHECK(n > 157 && b[0] == 'P');
    free(b);
    /* no temporary files left behind */
    DIR *d = opendir(dir);
    struct dirent *de;
    int tmp = 0;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) tmp++;
    closedir(d);
    CHECK_EQ(tmp, 0);
}

static int cancel_cb(void *u, uint64_t a, uint64_t b, uint64_t c, uint64_t e) {
    (void)a, (void)b, (void)c, (void)e;
    return ++*(int *)u >= 2;
}

static void cancel_and_align(void) {
    char zip[128], src[128];
    snprintf(zip, sizeof zip, "%s/al.taco", dir);
    snprintf(src, sizeof src, "%s/src_al", dir);
    unsigned char buf[5000];
    memset(buf, 7, sizeof buf);
    write_file(src, buf, sizeof buf);
    const char *s[] = {src, src, src};
    const char *nm[] = {"a", "bb", "ccc"};
    int calls = 0;
    tacozip_write_options o = {.progress = cancel_cb, .progress_user = &calls};
    tacozip_error err = TACOZIP_ERROR_INIT;
    CHECK_EQ(tacozip_create_ex(zip, s, nm, 3, NULL, &o, &err), TACOZ_ERR_CANCELLED);
    CHECK(access(zip, F_OK) != 0);
    tacozip_write_options al = {.alignment = 4096};
    CHECK_EQ(tacozip_create_ex(zip, s, nm, 3, NULL, &al, &err), TACOZ_OK);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    for (size_t i = 1; ar && i < 4; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, i, &m);
        CHECK_EQ(m.data_offset % 4096, 0);
        CHECK_EQ(tacozip_verify_member(ar, i), TACOZ_OK);
    }
    tacozip_close(ar);
}

static void large_index(void) {
    /* 100,000 members (one small source under many names): ZIP64 end
     * records (>= 65,535 entries), O(1) lookups. */
    enum { N = 100000 };
    char src[128], zip[128];
    snprintf(src, sizeof src, "%s/tiny", dir);
    snprintf(zip, sizeof zip, "%s/many.taco", dir);
    write_file(src, (const unsigned char *)"abc", 3);
    const char **srcs = malloc(N * sizeof *srcs);
    char **names = malloc(N * sizeof *names);
    for (int i = 0; i < N; i++) {
        srcs[i] = src;
        names[i] = malloc(32);
        snprintf(names[i], 32, "split%d/item%06d.bin", i % 3, i);
    }
    tacozip_write_options o = {.no_fsync = 1};
    CHECK_EQ(tacozip_create_ex(zip, srcs, (const char *const *)names, N, NULL, &o, NULL), TACOZ_OK);
    CHECK_EQ(tacozip_detect_format(zip), TACOZIP_FORMAT_ZIP64);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_NORMAL), TACOZ_VALID);
    tacozip_archive *ar = NULL;
    CHECK_EQ(tacozip_open(zip, &ar), TACOZ_OK);
    if (ar) {
        CHECK_EQ(tacozip_count(ar), N + 1);
        CHECK_EQ(tacozip_archive_format(ar), TACOZIP_FORMAT_ZIP64);
        int found = 0, right = 0;
        for (int i = 0; i < N; i += 7) {
            size_t idx;
            if (tacozip_find(ar, names[i], (size_t)-1, &idx) == TACOZ_OK) {
                found++;
                tacozip_member m = TACOZIP_MEMBER_INIT;
                tacozip_member_at(ar, idx, &m);
                const uint64_t rec = 30 + strlen(names[0]) + 3; /* every name has the same length */
                right += idx == (size_t)i + 1 && m.data_offset == 157 + (uint64_t)i * rec + rec - 3;
            }
        }
        CHECK_EQ(found, (N + 6) / 7);
        CHECK_EQ(right, found);
        /* the span of split1 */
        const uint64_t rec = 30 + strlen(names[0]) + 3;
        size_t *sel = malloc(N * sizeof *sel), k = 0;
        int last = 0;
        for (int i = 1; i < N; i += 3) sel[k++] = (size_t)i + 1, last = i;
        uint64_t off, len;
        CHECK_EQ(tacozip_span(ar, sel, k, 0, &off, &len), TACOZ_OK);
        CHECK_EQ(off, 157 + 1 * rec);
        CHECK_EQ(off + len, 157 + (uint64_t)last * rec + rec);
        free(sel);
        tacozip_close(ar);
    }
    for (int i = 0; i < N; i++) free(names[i]);
    free(names);
    free(srcs);
    unlink(zip);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/tacozip-rt-XXXXXX");
    if (!mkdtemp(dir)) return 2;
    basic();
    errors();
    cancel_and_align();
    large_index();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 2;
    return check_summary();
}
