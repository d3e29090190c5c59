/* index.c - the optional embedded member index (create --index).
 *
 * A STORED member named TACO_INDEX right after TACO_HEADER (local header at
 * offset 157) lists every later member, so that one request for the first
 * 16 KiB of an archive gives the header and the whole index, as PMTiles
 * does for tiles, while the file stays an ordinary ZIP.
 *
 * Layout of its data (little-endian):
 *   0  "TZIX"           magic
 *   4  u8  version (1), u8 flags (0), u16 reserved (0)
 *   8  u32 count        members after the index, in archive order
 *   12 u32 packed_len   length of the deflated columns
 *   16 u32 raw_len      length of the columns before deflate
 *   20 packed columns   zlib stream of: for each member, the name as
 *                       (varint shared-prefix length with the previous name,
 *                       varint suffix length, suffix bytes); then each
 *                       member's size (varint); then each member's local
 *                       extra length (varint, 0 by default)
 *   20+packed_len       u32 CRC-32 of each member (raw, so the writer can
 *                       fill it in after streaming the data)
 * Data offsets are implicit: members are back to back from the end of the
 * index member, each with a 30-byte local header, its name and its extra. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

#define IDX_FIXED 20

static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

int tz_index_build(const char *const *names, const size_t *name_lens, const uint64_t *sizes,
                   const uint32_t *extra_lens, size_t n, unsigned char **out, size_t *out_len,
                   size_t *crc_offset, tacozip_error *err) {
    if (n > UINT32_MAX) return tz_fail(err, TACOZ_ERR_TOO_LARGE, "too many members for an index");
    size_t raw_cap = 0;
    for (size_t i = 0; i < n; i++) raw_cap += 20 + name_lens[i] + 10 + 10;
    unsigned char *raw = malloc(raw_cap ? raw_cap : 1);
    if (!raw) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index");
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pre = 0;
        if (i) {
            size_t lim = name_lens[i] < name_lens[i - 1] ? name_lens[i] : name_lens[i - 1];
            while (pre < lim && names[i][pre] == names[i - 1][pre]) pre++;
        }
        r += put_varint(raw + r, pre);
        r += put_varint(raw + r, name_lens[i] - pre);
        memcpy(raw + r, names[i] + pre, name_lens[i] - pre);
        r += name_lens[i] - pre;
    }
    for (size_t i = 0; i < n; i++) r += put_varint(raw + r, sizes[i]);
    for (size_t i = 0; i < n; i++) r += put_varint(raw + r, extra_lens[i]);
    uLongf packed_cap = compressBound((uLong)r);
    if (r > UINT32_MAX || packed_cap > UINT32_MAX) {
        free(raw);
        return tz_fail(err, TACOZ_ERR_TOO_LARGE, "index too large");
    }
    size_t total_cap = IDX_FIXED + packed_cap + 4 * n;
    unsigned char *blob = calloc(total_cap, 1);
    if (!blob) {
        free(raw);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index");
    }
    uLongf packed = packed_cap;
    if (compress2(blob + IDX_FIXED, &packed, raw, (uLong)r, 9) != Z_OK) {
        free(raw), free(blob);
        return tz_fail(err, TACOZ_ERR_NOMEM, "compressing the index failed");
    }
    free(raw);
    memcpy(blob, "TZIX", 4);
    blob[4] = 1;
    wr32(blob + 8, (uint32_t)n);
    wr32(blob + 12, (uint32_t)packed);
    wr32(blob + 16, (uint32_t)r);
    *crc_offset = IDX_FIXED + packed;
    *out_len = IDX_FIXED + packed + 4 * n;
    *out = blob;
    return TACOZ_OK;
}

int tz_index_decode(const unsigned char *blob, size_t len, uint64_t archive_size, tz_index_entry **out,
                    size_t *count, char **names_out, tacozip_error *err) {
    if (len < IDX_FIXED || memcmp(blob, "TZIX", 4) != 0 || blob[4] != 1)
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: bad magic or version");
    uint64_t n = rd32(blob + 8), packed = rd32(blob + 12), raw_len = rd32(blob + 16);
    if (packed > len - IDX_FIXED || n > (len - IDX_FIXED - packed) / 4 || IDX_FIXED + packed + 4 * n != len ||
        raw_len > packed * 1032 + 64 || raw_len > (1u << 30))
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: lengths do not add up");
    unsigned char *raw = malloc(raw_len ? raw_len : 1);
    tz_index_entry *e = calloc(n ? n : 1, sizeof *e);
    size_t ncap = raw_len + n + 1, noff = 0, prev_off = 0, prev_len = 0;
    uint64_t need = 0; /* bytes the members' local headers and names take */
    char *names = malloc(ncap);
    if (!raw || !e || !names) {
        free(raw), free(e), free(names);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index");
    }
    uLongf got = raw_len;
    int zr = uncompress(raw, &got, blob + IDX_FIXED, (uLong)packed);
    const unsigned char *p = raw, *end = raw + got;
    int ok = zr == Z_OK && got == raw_len;
    for (uint64_t i = 0; ok && i < n; i++) {
        uint64_t pre, suf;
        ok = get_varint(&p, end, &pre) && get_varint(&p, end, &suf) && pre <= prev_len && suf <= (uint64_t)(end - p) &&
             pre + suf > 0 && pre + suf <= 65535;
        /* shared prefixes let a small index expand: stop once the names
         * could not fit in the archive, before allocating for them */
        if (!ok || (need += ZIP_LFH_SIZE + pre + suf) > archive_size) {
            ok = 0;
            break;
        }
        if (noff + pre + suf + 1 > ncap) { /* shared prefixes make names longer than their encoding */
            size_t want = ncap * 2 > noff + pre + suf + 1 ? ncap * 2 : noff + (size_t)(pre + suf) + 1;
            char *g = want <= (1u << 30) ? realloc(names, want) : NULL;
            if (!g) {
                ok = 0;
                break;
            }
            names = g, ncap = want;
        }
        memmove(names + noff, names + prev_off, (size_t)pre); /* prefix of the previous name */
        memcpy(names + noff + pre, p, (size_t)suf);
        p += suf;
        e[i].name_off = noff;
        e[i].name_len = (size_t)(pre + suf);
        prev_off = noff, prev_len = e[i].name_len;
        noff += e[i].name_len;
        names[noff++] = '\0';
        ok = memchr(names + e[i].name_off, 0, e[i].name_len) == NULL;
    }
    for (uint64_t i = 0; ok && i < n; i++) ok = get_varint(&p, end, &e[i].size);
    for (uint64_t i = 0; ok && i < n; i++) {
        uint64_t x = 0;
        ok = get_varint(&p, end, &x) && x <= 65535;
        e[i].extra_len = (uint32_t)x;
    }
    ok = ok && p == end;
    const unsigned char *crcs = blob + IDX_FIXED + packed;
    for (uint64_t i = 0; ok && i < n; i++) e[i].crc32 = rd32(crcs + 4 * i);
    free(raw);
    if (!ok) {
        free(e), free(names);
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: corrupt columns");
    }
    *out = e;
    *count = (size_t)n;
    *names_out = names;
    return TACOZ_OK;
}
