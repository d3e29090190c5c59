/* test_span.c - tacozip_span_next(): the members of a fetched span from
 * their local headers alone (default and aligned archives, the header
 * member itself, ZIP64 sizes in crafted headers, every refusal with its
 * code and a message naming the member), and the header-only client's
 * reads: tacozip_source_read_ranges() and tacozip_source_stats().  Also
 * writes span_doc.taco for the C example of docs/header-only.md. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tacozip.h"

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A local header + name + extra + data at "p"; returns the bytes written. */
static size_t lfh(unsigned char *p, const char *name, const void *data, size_t n, unsigned flags, unsigned method,
                  uint32_t csize, uint32_t usize, const unsigned char *extra, size_t xlen) {
    size_t nl = strlen(name);
    put32(p, 0x04034b50u);
    put16(p + 4, 10);
    put16(p + 6, flags);
    put16(p + 8, method);
    put32(p + 10, 0x5A215A21u);
    put32(p + 14, tacozip_crc32(0, data, n));
    put32(p + 18, csize);
    put32(p + 22, usize);
    put16(p + 26, (unsigned)nl);
    put16(p + 28, (unsigned)xlen);
    memcpy(p + 30, name, nl);
    if (xlen) memcpy(p + 30 + nl, extra, xlen);
    memcpy(p + 30 + nl + xlen, data, n);
    return 30 + nl + xlen + n;
}
static size_t plain(unsigned char *p, const char *name, const char *data) {
    size_t n = strlen(data);
    return lfh(p, name, data, n, 0, 0, (uint32_t)n, (uint32_t)n, NULL, 0);
}

/* Decode all of span; returns the code of the last call, the count in *k. */
static int decode_all(const unsigned char *b, size_t len, uint64_t base, unsigned flags, tacozip_span_member *ms,
                      size_t cap, size_t *k, size_t *pos, tacozip_error *err) {
    *k = 0;
    *pos = 0;
    int rc;
    tacozip_span_member m = TACOZIP_SPAN_MEMBER_INIT;
    while ((rc = tacozip_span_next(b, len, base, pos, flags, &m, err)) == 1)
        if (*k < cap) ms[(*k)++] = m;
    return rc;
}

/* Spans of real archives, default and aligned: every member, as the index
 * knows it. */
static void test_archives(void) {
    const char *names[] = {"a.txt", "dir/b.bin", "dir/empty", "c.dat"};
    size_t sizes[] = {12, 3000, 0, 70001};
    const char *src[4];
    char paths[4][64];
    unsigned char *data[4];
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "span_src_%d", i);
        data[i] = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++) data[i][j] = (unsigned char)(j * 7 + (size_t)i * 13);
        write_file(paths[i], data[i], sizes[i]);
        src[i] = paths[i];
    }
    for (int aligned = 0; aligned < 2; aligned++) {
        const char *out = aligned ? "span_aligned.taco" : "span_doc.taco";
        tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
        o.no_fsync = 1;
        o.alignment = aligned ? 4096 : 0;
        tacozip_error err = TACOZIP_ERROR_INIT;
        CHECK_EQ(tacozip_create_ex(out, src, names, 4, NULL, &o, &err), TACOZ_OK);
        tacozip_archive *ar = NULL;
        CHECK_EQ(tacozip_open_ex(out, 0, &ar, &err), TACOZ_OK);
        if (!ar) return;
        size_t idx[4] = {1, 2, 3, 4};
        uint64_t off = 0, len = 0;
        CHECK_EQ(tacozip_span(ar, idx, 4, 0, &off, &len), TACOZ_OK);
        /* entry 0 = the span of the four members, entry 1 = of dir/ */
        taco_meta_array_t meta = {2, {{off, len}, {0, 0}}};
        CHECK_EQ(tacozip_span(ar, idx + 1, 2, 0, &meta.entries[1].offset, &meta.entries[1].length), TACOZ_OK);
        unsigned char *b = malloc((size_t)len);
        CHECK_EQ(tacozip_read_at(ar, off, b, (size_t)len), TACOZ_OK);
        tacozip_span_member ms[8];
        size_t k = 0, pos = 0;
        CHECK_EQ(decode_all(b, (size_t)len, off, 0, ms, 8, &k, &pos, &err), 0);
        CHECK_EQ(k, 4);
        CHECK_EQ(pos, len);
        for (size_t i = 0; i < k && i < 4; i++) {
            tacozip_member m = TACOZIP_MEMBER_INIT;
            CHECK_EQ(tacozip_member_at(ar, i + 1, &m), TACOZ_OK);
            CHECK(ms[i].name_len == strlen(names[i]) && memcmp(ms[i].name, names[i], ms[i].name_len) == 0);
            CHECK_EQ(ms[i].size, sizes[i]);
            CHECK(sizes[i] == 0 || memcmp(ms[i].data, data[i], sizes[i]) == 0);
            CHECK(ms[i].data >= b && ms[i].data + ms[i].size <= b + len); /* zero-copy */
            CHECK_EQ(ms[i].header_offset, m.header_offset);
            CHECK_EQ(ms[i].data_offset, m.data_offset);
            CHECK_EQ(ms[i].crc32, m.crc32);
            if (aligned && sizes[i]) CHECK_EQ(ms[i].data_offset % 4096, 0);
        }
        /* the whole archive up to the directory, TACO_HEADER included */
        uint64_t cd_off = 0, cd_size = 0;
        tacozip_directory_range(ar, &cd_off, &cd_size);
        unsigned char *all = malloc((size_t)cd_off + 64);
        CHECK_EQ(tacozip_read_at(ar, 0, all, (size_t)cd_off + 4), TACOZ_OK);
        CHECK_EQ(decode_all(all, (size_t)cd_off, 0, 0, ms, 8, &k, &pos, &err), 0);
        CHECK_EQ(k, 5);
        CHECK(ms[0].name_len == 11 && memcmp(ms[0].name, "TACO_HEADER", 11) == 0 && ms[0].size == 116);
        /* four bytes into the central directory: named as such */
        CHECK_EQ(decode_all(all, (size_t)cd_off + 4, 0, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_LFH);
        CHECK_EQ(k, 5);
        CHECK(strstr(err.message, "central directory") != NULL);
        free(all);
        /* cut inside the last member's data: an error naming it, or (PARTIAL) the three before */
        err.message[0] = 0;
        CHECK_EQ(decode_all(b, (size_t)len - 1, off, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_FILE_SIZE);
        CHECK(strstr(err.message, "\"c.dat\"") != NULL && strstr(err.message, "inside its data") != NULL);
        CHECK_EQ(k, 3);
        CHECK_EQ(decode_all(b, (size_t)len - 1, off, TACOZIP_SPAN_PARTIAL, ms, 8, &k, &pos, &err), 0);
        CHECK_EQ(k, 3);
        CHECK_EQ(off + pos, ms[2].data_offset + ms[2].size); /* where c.dat's header starts */
        /* cut inside a local header (after the name, inside the name, in the fixed part) */
        size_t c_head = (size_t)(ms[2].data_offset + ms[2].size - off);
        CHECK_EQ(decode_all(b, c_head + 30 + 5, off, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_FILE_SIZE);
        CHECK(strstr(err.message, "\"c.dat\"") != NULL);
        CHECK_EQ(decode_all(b, c_head + 31, off, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_FILE_SIZE);
        CHECK(strstr(err.message, "inside a local file header") != NULL);
        CHECK_EQ(decode_all(b, c_head + 2, off, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_FILE_SIZE);
        CHECK_EQ(decode_all(b, c_head + 2, off, TACOZIP_SPAN_PARTIAL, ms, 8, &k, &pos, &err), 0);
        CHECK_EQ(pos, c_head);
        /* not at a local header: one byte in, and the data of a member */
        CHECK_EQ(decode_all(b + 1, (size_t)len - 1, off + 1, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_LFH);
        CHECK(strstr(err.message, "does not start at a member") != NULL);
        CHECK(strstr(err.message, "archive offset") != NULL);
        CHECK_EQ(k, 0);
        /* a CRC-32 mismatch, and the same with the check off */
        b[len - 1] ^= 0xFF;
        CHECK_EQ(decode_all(b, (size_t)len, off, 0, ms, 8, &k, &pos, &err), TACOZ_INVALID_CRC_MEMBER);
        CHECK(strstr(err.message, "\"c.dat\"") != NULL);
        CHECK_EQ(decode_all(b, (size_t)len, off, TACOZIP_SPAN_NO_CRC, ms, 8, &k, &pos, &err), 0);
        CHECK_EQ(k, 4);
        free(b);
        /* the header-only client: header, then both entries' ranges in one call */
        if (!aligned) CHECK_EQ(tacozip_update_header(out, &meta), TACOZ_OK);
        tacozip_source *s = NULL;
        CHECK_EQ(tacozip_source_open(out, NULL, &s, &err), TACOZ_OK);
        taco_meta_array_t h;
        CHECK_EQ(tacozip_read_header_source(s, &h, &err), TACOZ_OK);
        if (!aligned) {
            CHECK_EQ(h.count, 2);
            unsigned char *r0 = malloc((size_t)len), *r1 = malloc((size_t)h.entries[1].length);
            tacozip_range rg[3] = {{h.entries[1].offset, h.entries[1].length, r1}, {off, len, r0}, {5, 0, NULL}};
            CHECK_EQ(tacozip_source_read_ranges(s, rg, 3, TACOZIP_DEFAULT_GAP, &err), TACOZ_OK);
            CHECK_EQ(decode_all(r1, (size_t)h.entries[1].length, h.entries[1].offset, 0, ms, 8, &k, &pos, &err), 0);
            CHECK_EQ(k, 2);
            CHECK(k == 2 && memcmp(ms[0].name, "dir/b.bin", 9) == 0 && memcmp(ms[0].data, data[1], 3000) == 0);
            CHECK_EQ(decode_all(r0, (size_t)len, off, 0, ms, 8, &k, &pos, &err), 0);
            CHECK_EQ(k, 4);
            rg[0].offset = tacozip_archive_size(ar); /* past the end */
            rg[0].length = 1;
            CHECK_EQ(tacozip_source_read_ranges(s, rg, 1, 0, &err), TACOZ_ERR_PARAM);
            CHECK(strstr(err.message, "span_doc.taco: ") == err.message);
            free(r0), free(r1);
        }
        uint64_t nreq = 7, nbytes = 7;
        CHECK_EQ(tacozip_source_stats(s, &nreq, &nbytes), TACOZ_ERR_NOT_REMOTE);
        CHECK(nreq == 0 && nbytes == 0);
        CHECK_EQ(tacozip_source_stats(NULL, NULL, NULL), TACOZ_ERR_PARAM);
        CHECK_EQ(tacozip_source_read_ranges(NULL, NULL, 0, 0, &err), TACOZ_ERR_PARAM);
        tacozip_source_close(s);
        tacozip_close(ar);
        if (aligned) unlink(out);
    }
    for (int i = 0; i < 4; i++) unlink(paths[i]), free(data[i]);
}

/* Crafted local headers: ZIP64 sizes, extras, and every refusal. */
static void test_crafted(void) {
    unsigned char b[1024], x[64];
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_span_member ms[4];
    size_t k, pos, n;
    const char *hello = "hello";

    /* ZIP64: both sizes marked, the extra holding both (as the local header must) */
    put16(x, 0x0001), put16(x + 2, 16), put64(x + 4, 5), put64(x + 12, 5);
    n = lfh(b, "big", hello, 5, 0, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, x, 20);
    n += plain(b + n, "next", "xyz");
    CHECK_EQ(decode_all(b, n, 1000, 0, ms, 4, &k, &pos, &err), 0);
    CHECK_EQ(k, 2);
    CHECK(ms[0].size == 5 && memcmp(ms[0].data, hello, 5) == 0 && ms[0].data_offset == 1000 + 30 + 3 + 20);
    CHECK(ms[1].size == 3 && ms[1].header_offset == 1000 + 30 + 3 + 20 + 5);
    /* ZIP64 after an alignment extra (0xD935) and an unknown one, as in aligned ZIP64 members */
    put16(x, 0xD935), put16(x + 2, 6), memset(x + 4, 0, 6), put16(x + 4, 4096);
    put16(x + 10, 0x7075), put16(x + 12, 0);
    put16(x + 14, 0x0001), put16(x + 16, 16), put64(x + 18, 5), put64(x + 26, 5);
    n = lfh(b, "aligned-big", hello, 5, 0x0800, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, x, 34);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), 0);
    CHECK(k == 1 && ms[0].size == 5 && ms[0].flags == 0x0800 && ms[0].dos_datetime == 0x5A215A21u);
    /* a ZIP64 size larger than the span: cut, named */
    put16(x, 0x0001), put16(x + 2, 16), put64(x + 4, 5ull << 32), put64(x + 12, 5ull << 32);
    n = lfh(b, "huge", hello, 5, 0, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, x, 20);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_FILE_SIZE);
    CHECK(strstr(err.message, "\"huge\"") != NULL);
    /* only the compressed size marked, an 8-byte extra (the directory's rule) */
    put16(x, 0x0001), put16(x + 2, 8), put64(x + 4, 5);
    n = lfh(b, "c64", hello, 5, 0, 0, 0xFFFFFFFFu, 5, x, 12);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), 0);
    CHECK(k == 1 && ms[0].size == 5);
    /* marked, no ZIP64 extra */
    n = lfh(b, "no64", hello, 5, 0, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, NULL, 0);
    CHECK_EQ(decode_all(b, n + 100, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_ZIP64);
    CHECK(strstr(err.message, "\"no64\"") != NULL);
    /* an extra field running past its room */
    put16(x, 0x7075), put16(x + 2, 9);
    n = lfh(b, "badx", hello, 5, 0, 0, 5, 5, x, 8);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_LFH);
    CHECK(strstr(err.message, "\"badx\"") != NULL && strstr(err.message, "extra") != NULL);
    /* compressed (the member named), encrypted, data descriptor */
    n = plain(b, "ok", "fine");
    n += lfh(b + n, "packed.bin", hello, 5, 0, 8, 5, 5, NULL, 0);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_ERR_UNSUPPORTED);
    CHECK_EQ(k, 1);
    CHECK_EQ(pos, 30 + 2 + 4); /* unchanged by the failing call */
    CHECK(strstr(err.message, "\"packed.bin\"") != NULL && strstr(err.message, "compressed (method 8)") != NULL);
    CHECK_EQ(err.code, TACOZ_ERR_UNSUPPORTED);
    n = lfh(b, "secret", hello, 5, 0x0001, 0, 5, 5, NULL, 0);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "encrypted") != NULL);
    n = lfh(b, "streamed", hello, 5, 0x0008, 0, 0, 0, NULL, 0);
    CHECK_EQ(decode_all(b, n + 16, 0, 0, ms, 4, &k, &pos, &err), TACOZ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "\"streamed\"") != NULL && strstr(err.message, "data descriptor") != NULL);
    /* STORED sizes that differ; empty name; NUL in the name */
    n = lfh(b, "odd", hello, 5, 0, 0, 5, 6, NULL, 0);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_STORED_SIZE);
    n = lfh(b, "", hello, 5, 0, 0, 5, 5, NULL, 0);
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_NAME);
    n = lfh(b, "nul?", hello, 5, 0, 0, 5, 5, NULL, 0);
    b[30 + 3] = 0;
    CHECK_EQ(decode_all(b, n, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_NAME);
    /* junk after a member; a span of three bytes that are not a signature prefix; empty span */
    n = plain(b, "one", "1");
    memcpy(b + n, "junk", 4);
    CHECK_EQ(decode_all(b, n + 4, 0, 0, ms, 4, &k, &pos, &err), TACOZ_INVALID_LFH);
    CHECK(k == 1 && strstr(err.message, "after the previous member") != NULL);
    CHECK_EQ(decode_all(b, n + 4, 0, TACOZIP_SPAN_PARTIAL, ms, 4, &k, &pos, &err), TACOZ_INVALID_LFH);
    CHECK_EQ(decode_all((const unsigned char *)"PK\x01", 3, 0, TACOZIP_SPAN_PARTIAL, ms, 4, &k, &pos, &err),
             TACOZ_INVALID_LFH);
    CHECK_EQ(decode_all((const unsigned char *)"PK\x03", 3, 0, TACOZIP_SPAN_PARTIAL, ms, 4, &k, &pos, &err), 0);
    CHECK_EQ(pos, 0);
    CHECK_EQ(decode_all(b, 0, 0, 0, ms, 4, &k, &pos, &err), 0);
    CHECK_EQ(decode_all(NULL, 0, 0, 0, ms, 4, &k, &pos, &err), 0);
    /* arguments */
    tacozip_span_member m = TACOZIP_SPAN_MEMBER_INIT;
    pos = 0;
    CHECK_EQ(tacozip_span_next(b, n, 0, NULL, 0, &m, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_span_next(b, n, 0, &pos, 0, NULL, &err), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_span_next(b, n, 0, &pos, 0x100, &m, &err), TACOZ_ERR_PARAM);
    pos = n + 1;
    CHECK_EQ(tacozip_span_next(b, n, 0, &pos, 0, &m, &err), TACOZ_ERR_PARAM);
    pos = 0;
    m.struct_size = 8;
    CHECK_EQ(tacozip_span_next(b, n, 0, &pos, 0, &m, &err), TACOZ_ERR_PARAM);
    m.struct_size = 0; /* the 1.1 layout */
    CHECK_EQ(tacozip_span_next(b, n, 0, &pos, 0, &m, NULL), 1);
    CHECK_EQ(tacozip_span_next(b, n, 0, &pos, 0, &m, NULL), 0);
    CHECK(strcmp(tacozip_error_name(TACOZ_INVALID_LFH), "INVALID_LFH") == 0);
}

int main(void) {
    test_archives();
    test_crafted();
    return check_summary();
}
