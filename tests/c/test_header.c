/* test_header.c - the 157-byte TACO_HEADER: golden bytes, parse rules,
 * read and in-place update. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tacozip.h"

/* Independent bitwise CRC-32 (reflected 0xEDB88320), to check the library's. */
static uint32_t ref_crc(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void golden(void) {
    taco_meta_array_t m = {0};
    m.count = 3;
    m.entries[0].offset = 0x0102030405060708ull;
    m.entries[0].length = 42;
    m.entries[1].offset = 0;
    m.entries[1].length = 0;
    m.entries[2].offset = 0xFFFFFFFFFFFFFFFFull;
    m.entries[2].length = 1;
    unsigned char got[157];
    CHECK_EQ(tacozip_serialize_header(&m, got, sizeof got), TACOZ_OK);

    /* Expected bytes written out field by field from the format table. */
    unsigned char want[157] = {0x50, 0x4b, 0x03, 0x04, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    unsigned char *payload = want + 41;
    payload[0] = 3;
    put64(payload + 4, 0x0102030405060708ull);
    put64(payload + 12, 42);
    put64(payload + 36, 0xFFFFFFFFFFFFFFFFull);
    put64(payload + 44, 1);
    uint32_t crc = ref_crc(payload, 116);
    for (int i = 0; i < 4; i++) want[14 + i] = (unsigned char)(crc >> (8 * i));
    want[18] = 116, want[22] = 116, want[26] = 11;
    memcpy(want + 30, "TACO_HEADER", 11);
    CHECK(memcmp(got, want, 157) == 0);
    CHECK_EQ(tacozip_crc32(0, payload, 116), crc);

    /* Parse accepts >= 157 bytes and ignores what follows. */
    unsigned char big[256];
    memset(big, 0xAB, sizeof big);
    memcpy(big, want, 157);
    taco_meta_array_t r;
    CHECK_EQ(tacozip_parse_header(big, 165, &r), TACOZ_OK);
    CHECK_EQ(r.count, 3);
    CHECK(r.entries[0].offset == 0x0102030405060708ull && r.entries[0].length == 42);
    CHECK(r.entries[2].offset == 0xFFFFFFFFFFFFFFFFull && r.entries[2].length == 1);
    CHECK_EQ(tacozip_parse_header(big, 256, &r), TACOZ_OK);
    CHECK_EQ(tacozip_parse_header(big, 156, &r), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_parse_header(NULL, 157, &r), TACOZ_ERR_PARAM);

    /* Each malformed field is refused. */
    struct { int at; unsigned char val; } bad[] = {
        {0, 'X'}, {8, 8} /* deflate */, {18, 117}, {22, 115}, {26, 12}, {28, 1}, {30, 't'}, {41, 8} /* count 8 */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char b[157];
        memcpy(b, want, 157);
        b[bad[i].at] = bad[i].val;
        CHECK_EQ(tacozip_parse_header(b, 157, &r), TACOZ_ERR_INVALID_HEADER);
    }
    /* count 7 is fine, count > 7 is not serialized */
    m.count = 7;
    CHECK_EQ(tacozip_serialize_header(&m, got, sizeof got), TACOZ_OK);
    m.count = 8;
    CHECK_EQ(tacozip_serialize_header(&m, got, sizeof got), TACOZ_ERR_PARAM);
    CHECK_EQ(tacozip_serialize_header(&m, got, 100), TACOZ_ERR_PARAM);
}

static void read_and_update(const char *dir) {
    char src[512], zip[600];
    snprintf(src, sizeof src, "%s/data.bin", dir);
    snprintf(zip, sizeof zip, "%s/h.taco", dir);
    FILE *f = fopen(src, "wb");
    fputs("some member data", f);
    fclose(f);
    const char *srcs[] = {src};
    taco_meta_array_t m = {.count = 2, .entries = {{0, 0}, {5, 6}}}, r;
    CHECK_EQ(tacozip_create(zip, srcs, NULL, 1, &m), TACOZ_OK);
    CHECK_EQ(tacozip_read_header(zip, &r), TACOZ_OK);
    /* count is kept as given: [(0,0),(5,6)] reads back as two entries */
    CHECK_EQ(r.count, 2);
    CHECK(r.entries[0].offset == 0 && r.entries[0].length == 0);
    CHECK(r.entries[1].offset == 5 && r.entries[1].length == 6);

    /* Read the file before and after update: only 41..156, 14..17 and the
     * directory record's CRC may change. */
    unsigned char before[4096], after[4096];
    int fd = open(zip, O_RDONLY);
    ssize_t n1 = read(fd, before, sizeof before);
    close(fd);
    taco_meta_array_t u = {.count = 7};
    for (int i = 0; i < 7; i++) u.entries[i].offset = 1000 + i, u.entries[i].length = 10 * i;
    CHECK_EQ(tacozip_update_header(zip, &u), TACOZ_OK);
    fd = open(zip, O_RDONLY);
    ssize_t n2 = read(fd, after, sizeof after);
    close(fd);
    CHECK_EQ(n1, n2);
    /* locate TACO_HEADER's directory record: the end record gives the offset */
    uint32_t cd = (uint32_t)after[n2 - 6] | (uint32_t)after[n2 - 5] << 8 | (uint32_t)after[n2 - 4] << 16 |
                  (uint32_t)after[n2 - 3] << 24;
    int outside = 0;
    for (ssize_t i = 0; i < n2; i++) {
        int allowed = (i >= 41 && i < 157) || (i >= 14 && i < 18) || (i >= (ssize_t)cd + 16 && i < (ssize_t)cd + 20);
        if (!allowed && before[i] != after[i]) outside++;
    }
    CHECK_EQ(outside, 0);
    CHECK(memcmp(after + 14, after + cd + 16, 4) == 0);
    CHECK_EQ(tacozip_read_header(zip, &r), TACOZ_OK);
    CHECK_EQ(r.count, 7);
    CHECK(r.entries[6].offset == 1006 && r.entries[6].length == 60);
    CHECK_EQ(tacozip_validate(zip, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);

    /* update refuses a file that is not a TACO archive and leaves it as is */
    char txt[600];
    snprintf(txt, sizeof txt, "%s/plain.txt", dir);
    f = fopen(txt, "wb");
    for (int i = 0; i < 50; i++) fputs("not an archive ", f);
    fclose(f);
    CHECK_EQ(tacozip_update_header(txt, &u), TACOZ_ERR_INVALID_HEADER);
    f = fopen(txt, "rb");
    char buf[1024];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK_EQ(got, 750);
    CHECK(memcmp(buf, "not an archive not", 18) == 0);
    CHECK_EQ(tacozip_read_header(txt, &r), TACOZ_ERR_INVALID_HEADER);
    CHECK_EQ(tacozip_read_header("/nonexistent/x.taco", &r), TACOZ_ERR_IO);
    u.count = 8;
    CHECK_EQ(tacozip_update_header(zip, &u), TACOZ_ERR_PARAM);
    unlink(txt);
    unlink(zip);
    unlink(src);
}

int main(void) {
    char dir[] = "/tmp/tacozip-test-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    golden();
    read_and_update(dir);
    rmdir(dir);
    return check_summary();
}
