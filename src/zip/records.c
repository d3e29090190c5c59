/* records.c - the one encoder of each ZIP record tacozip writes: local
 * header, its extra fields, directory record, end records. */
#include <string.h>

#include "zip.h"

void tz_lfh_encode(unsigned char h[ZIP_LFH_SIZE], const tz_lfh *m) {
    int big = m->size >= ZIP32_MAX;
    wr32(h, ZIP_LFH_SIG);
    wr16(h + 4, big ? ZIP_VERSION_ZIP64 : ZIP_VERSION_DEFAULT);
    wr16(h + 6, m->flags);
    wr16(h + 8, 0); /* STORED */
    wr32(h + 10, m->dos_datetime);
    wr32(h + LFH_CRC, m->crc32);
    wr32(h + 18, big ? ZIP32_MAX : (uint32_t)m->size);
    wr32(h + 22, big ? ZIP32_MAX : (uint32_t)m->size);
    wr16(h + 26, m->name_len);
    wr16(h + 28, m->extra_len);
}

void tz_zip64_local_extra(unsigned char x[ZIP64_LOCAL_EXTRA_SIZE], uint64_t size) {
    wr16(x, ZIP64_EXTRA_ID);
    wr16(x + 2, 16);
    wr64(x + 4, size);
    wr64(x + 12, size);
}

void tz_align_extra(unsigned char *out, size_t len, uint32_t alignment) {
    memset(out, 0, len);
    wr16(out, ZIP_ALIGN_EXTRA_ID);
    wr16(out + 2, (uint16_t)(len - 4));
    wr16(out + 4, (uint16_t)alignment);
}

static size_t cdh_extra_len(const tz_cdh *h) {
    int big = h->size >= ZIP32_MAX, far = h->header_offset >= ZIP32_MAX;
    return (big || far) ? 4 + 16 * (size_t)big + 8 * (size_t)far : 0;
}

size_t tz_cdh_len(const tz_cdh *h) { return ZIP_CDH_SIZE + h->name_len + cdh_extra_len(h); }

size_t tz_cdh_encode(unsigned char *r, const tz_cdh *h) {
    int big = h->size >= ZIP32_MAX, far = h->header_offset >= ZIP32_MAX;
    size_t xlen = cdh_extra_len(h);
    wr32(r, ZIP_CDH_SIG);
    wr16(r + 4, ZIP_MADE_BY_UNIX);
    wr16(r + 6, xlen ? ZIP_VERSION_ZIP64 : ZIP_VERSION_DEFAULT);
    wr16(r + 8, h->flags);
    wr16(r + 10, 0);
    wr32(r + 12, h->dos_datetime);
    wr32(r + 16, h->crc32);
    wr32(r + 20, big ? ZIP32_MAX : (uint32_t)h->size);
    wr32(r + 24, big ? ZIP32_MAX : (uint32_t)h->size);
    wr16(r + 28, h->name_len);
    wr16(r + 30, (uint16_t)xlen);
    wr16(r + 32, 0); /* comment */
    wr16(r + 34, 0); /* disk */
    wr16(r + 36, 0); /* internal attributes */
    wr32(r + 38, h->external_attr);
    wr32(r + 42, far ? ZIP32_MAX : (uint32_t)h->header_offset);
    memcpy(r + ZIP_CDH_SIZE, h->name, h->name_len);
    unsigned char *x = r + ZIP_CDH_SIZE + h->name_len;
    if (xlen) {
        wr16(x, ZIP64_EXTRA_ID);
        wr16(x + 2, (uint16_t)(xlen - 4));
        x += 4;
        if (big) wr64(x, h->size), wr64(x + 8, h->size), x += 16;
        if (far) wr64(x, h->header_offset);
    }
    return ZIP_CDH_SIZE + h->name_len + xlen;
}

size_t tz_end_encode(unsigned char *e, uint64_t n, uint64_t cd_size, uint64_t cd_off, uint64_t at,
                     size_t comment_len) {
    size_t len = 0;
    if (n >= ZIP16_MAX || cd_size >= ZIP32_MAX || cd_off >= ZIP32_MAX) {
        unsigned char *z = e;
        wr32(z, ZIP64_EOCD_SIG);
        wr64(z + 4, ZIP64_EOCD_SIZE - 12);
        /* "version made by" 4.5 like "needed", as the original writes */
        wr16(z + 12, ZIP_VERSION_ZIP64);
        wr16(z + 14, ZIP_VERSION_ZIP64);
        wr32(z + 16, 0);
        wr32(z + 20, 0);
        wr64(z + 24, n);
        wr64(z + 32, n);
        wr64(z + 40, cd_size);
        wr64(z + 48, cd_off);
        unsigned char *l = e + ZIP64_EOCD_SIZE;
        wr32(l, ZIP64_LOC_SIG);
        wr32(l + 4, 0);
        wr64(l + 8, at);
        wr32(l + 16, 1);
        len = ZIP64_EOCD_SIZE + ZIP64_LOC_SIZE;
    }
    unsigned char *q = e + len;
    wr32(q, ZIP_EOCD_SIG);
    wr16(q + 4, 0);
    wr16(q + 6, 0);
    wr16(q + 8, n >= ZIP16_MAX ? ZIP16_MAX : (uint16_t)n);
    wr16(q + 10, n >= ZIP16_MAX ? ZIP16_MAX : (uint16_t)n);
    wr32(q + 12, cd_size >= ZIP32_MAX ? ZIP32_MAX : (uint32_t)cd_size);
    wr32(q + 16, cd_off >= ZIP32_MAX ? ZIP32_MAX : (uint32_t)cd_off);
    wr16(q + 20, (uint16_t)comment_len);
    return len + ZIP_EOCD_SIZE;
}
