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
#include "taco.h"

#define IDX_FIXED 20

/* One decoded index entry. */
typedef struct {
    size_t name_off, name_len;
    uint64_t size;
    uint32_t extra_len;
    uint32_t crc32;
} tz_index_entry;

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
    unsigned char *packed_buf = NULL, *blob = NULL;
    size_t packed = 0;
    int rc = r > UINT32_MAX ? tz_fail(err, TACOZ_ERR_TOO_LARGE, "index too large")
                            : tz_zlib_compress(raw, r, &packed_buf, &packed, err);
    free(raw);
    if (rc) return rc;
    if (packed > UINT32_MAX || !(blob = calloc(IDX_FIXED + packed + 4 * n, 1))) {
        free(packed_buf);
        return packed > UINT32_MAX ? tz_fail(err, TACOZ_ERR_TOO_LARGE, "index too large")
                                   : tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index");
    }
    memcpy(blob + IDX_FIXED, packed_buf, packed);
    free(packed_buf);
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

/* The most column bytes an index of n members can need: per member at most
 * 3 + 3 bytes of prefix and suffix lengths (a name has at most 65535
 * bytes), 10 of size and 3 of extra length, plus its suffix bytes; the
 * suffixes together are no longer than the names, which the archive must
 * hold ("names_max": a local header each). */
static uint64_t index_raw_max(uint64_t n, uint64_t names_max) {
    uint64_t names = n * 65535;
    return 19 * n + (names < names_max ? names : names_max);
}

/* The fixed 20 bytes of an index "len" bytes long in an archive of
 * "archive_size" bytes: everything they declare must fit what the index and
 * the archive hold, before anything is allocated for it. */
static int index_fixed_check(const unsigned char *blob, uint64_t len, uint64_t archive_size, tacozip_error *err) {
    if (len < IDX_FIXED || memcmp(blob, "TZIX", 4) != 0 || blob[4] != 1)
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: bad magic or version");
    uint64_t n = rd32(blob + 8), packed = rd32(blob + 12), raw_len = rd32(blob + 16);
    if (packed > len - IDX_FIXED || n > (len - IDX_FIXED - packed) / 4 || IDX_FIXED + packed + 4 * n != len ||
        raw_len > packed * 1032 + 64 || raw_len > (1u << 30))
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: lengths do not add up");
    if (n > archive_size / (ZIP_LFH_SIZE + 1))
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: %llu members cannot fit in %llu bytes",
                       (unsigned long long)n, (unsigned long long)archive_size);
    uint64_t most = index_raw_max(n, archive_size - n * ZIP_LFH_SIZE);
    if (raw_len > most)
        return tz_fail(err, TACOZ_INVALID_INDEX,
                       "TACO_INDEX: %llu bytes of columns declared, more than %llu members can need (%llu)",
                       (unsigned long long)raw_len, (unsigned long long)n, (unsigned long long)most);
    return TACOZ_OK;
}

static int index_decode(const unsigned char *blob, size_t len, uint64_t archive_size, tz_index_entry **out,
                    size_t *count, char **names_out, tacozip_error *err) {
    int rc = index_fixed_check(blob, len, archive_size, err);
    if (rc) return rc;
    uint64_t n = rd32(blob + 8), packed = rd32(blob + 12), raw_len = rd32(blob + 16);
    unsigned char *raw = malloc(raw_len ? raw_len : 1);
    tz_index_entry *e = calloc(n ? n : 1, sizeof *e);
    size_t ncap = raw_len + n + 1, noff = 0, prev_off = 0, prev_len = 0;
    uint64_t need = 0; /* bytes the members' local headers and names take */
    char *names = malloc(ncap);
    if (!raw || !e || !names) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index");
        goto cleanup;
    }
    int ok = tz_zlib_decompress(blob + IDX_FIXED, (size_t)packed, raw, (size_t)raw_len) == 0;
    const unsigned char *p = raw, *end = raw + raw_len;
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
    if (!ok) {
        rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: corrupt columns");
        goto cleanup;
    }
    *out = e;
    *count = (size_t)n;
    *names_out = names;
    e = NULL, names = NULL; /* handed over */
cleanup:
    free(raw), free(e), free(names);
    return rc;
}

/* Build the member table from TACO_INDEX, whose bytes are [blob, blob+len)
 * at archive offset blob_off; "head" holds the first 157 bytes. */
static int index_entries(tz_dir *d, tacozip_source *src, const unsigned char *head, const unsigned char *blob, size_t blob_len,
                         uint64_t blob_off, uint32_t blob_crc, tacozip_error *err) {
    tz_index_entry *ie = NULL;
    size_t n = 0;
    char *inames = NULL;
    int rc = index_decode(blob, blob_len, src->size, &ie, &n, &inames, err);
    if (rc) return rc;
    size_t names_len = 0;
    for (size_t i = 0; i < n; i++) names_len += ie[i].name_len + 1;
    d->count = n + 2;
    d->entries = calloc(d->count, sizeof *d->entries);
    d->names = malloc(names_len + TACO_HEADER_NAME_LEN + TACO_INDEX_NAME_LEN + 2);
    if (!d->entries || !d->names) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    size_t no = 0;
    memcpy(d->names, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN + 1);
    memcpy(d->names + TACO_HEADER_NAME_LEN + 1, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN + 1);
    no = TACO_HEADER_NAME_LEN + TACO_INDEX_NAME_LEN + 2;
    tz_entry *e = d->entries;
    e[0] = (tz_entry){.header_offset = 0, .data_offset = TACO_PAYLOAD_OFFSET, .csize = TACO_HEADER_PAYLOAD_SIZE,
                      .usize = TACO_HEADER_PAYLOAD_SIZE, .name_off = 0, .name_len = TACO_HEADER_NAME_LEN,
                      .crc32 = rd32(head + TACO_CRC_OFFSET), .dos_datetime = rd32(head + 10), .lfh_checked = 1};
    e[1] = (tz_entry){.header_offset = TACO_INDEX_OFFSET, .data_offset = blob_off, .csize = blob_len,
                      .usize = blob_len, .name_off = TACO_HEADER_NAME_LEN + 1, .name_len = TACO_INDEX_NAME_LEN,
                      .crc32 = blob_crc, .lfh_checked = 1};
    uint64_t off = blob_off + blob_len;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        tz_entry *m = &e[i + 2];
        memcpy(d->names + no, inames + ie[i].name_off, ie[i].name_len);
        m->name_off = (uint32_t)no;
        m->name_len = (uint32_t)ie[i].name_len;
        no += ie[i].name_len;
        d->names[no++] = '\0';
        m->header_offset = off;
        m->data_offset = off + ZIP_LFH_SIZE + m->name_len + ie[i].extra_len;
        m->csize = m->usize = ie[i].size;
        m->crc32 = ie[i].crc32;
        if (m->data_offset > src->size || m->csize > src->size - m->data_offset)
            rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: member \"%.200s\" lies past the end of the archive",
                         d->names + m->name_off);
        off = m->data_offset + m->csize;
    }
    if (rc) goto cleanup;
    d->names_len = no;
    /* What the end records would say (the writer puts the directory right
     * after the last member). */
    d->end.cd_offset = off;
    d->end.entries = d->count;
    d->end.zip64 = d->count >= ZIP16_MAX || off >= ZIP32_MAX;
    rc = tz_dir_index_names(d, err);
cleanup:
    free(ie), free(inames);
    return rc;
}

int tz_index_open(tacozip_source *src, const unsigned char *head, size_t got, tz_dir *d, tacozip_error *err) {
    const size_t at = TACO_INDEX_OFFSET;
    int rc = TACOZ_OK;
    {
        const unsigned char *h = head + at;
        if (got < at + ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN || tz_header_check(head, NULL) != TACOZ_OK ||
            rd32(h) != ZIP_LFH_SIG || rd16(h + 26) != TACO_INDEX_NAME_LEN ||
            memcmp(h + ZIP_LFH_SIZE, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN) != 0) {
            rc = 1; /* no index */
        } else if (rd16(h + 8) != 0 || rd32(h + 18) != rd32(h + 22) || (rd16(h + 6) & ZIP_FLAG_DATA_DESCRIPTOR)) {
            rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX local header is not a plain STORED member");
        } else {
            size_t blob_len = rd32(h + 18);
            uint64_t blob_off = at + ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN + rd16(h + 28);
            uint32_t crc = rd32(h + 14);
            const unsigned char *blob = NULL;
            unsigned char *more = NULL;
            unsigned char fixed[IDX_FIXED];
            if (blob_off + blob_len <= got) {
                blob = head + blob_off;
            } else if (blob_off > src->size || blob_len > src->size - blob_off) {
                rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX runs past the end of the archive");
            } else if (blob_len >= IDX_FIXED &&
                       (rc = blob_off + IDX_FIXED <= got ? index_fixed_check(head + blob_off, blob_len, src->size, err)
                             : (rc = tz_source_read(src, blob_off, fixed, sizeof fixed, err))
                                 ? rc
                                 : index_fixed_check(fixed, blob_len, src->size, err)) != TACOZ_OK) {
                /* what the index declares is checked before its bytes are read */
            } else if (!(blob = more = malloc(blob_len ? blob_len : 1))) {
                rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            } else { /* the rest of a large index: one more read */
                size_t have = got > blob_off ? got - (size_t)blob_off : 0;
                memcpy(more, head + blob_off, have);
                rc = tz_source_read(src, blob_off + have, more + have, blob_len - have, err);
            }
            if (rc == TACOZ_OK && tz_crc32(0, blob, blob_len) != crc)
                rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX fails its CRC-32");
            if (rc == TACOZ_OK) rc = index_entries(d, src, head, blob, blob_len, blob_off, crc, err);
            free(more);
        }
    }
    return rc;
}

/* validate DEEP: TACO_INDEX, when present, must list exactly what the
 * directory lists (names, sizes, CRCs, data offsets), in order. */
int tz_index_check(tz_dir *d, tacozip_source *src, tacozip_error *err) {
    size_t idx;
    if (tz_names_find(&d->table, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, &idx) != TACOZ_OK) return TACOZ_OK;
    const tz_entry *ix = &d->entries[idx];
    if (idx != 1 || ix->header_offset != TACO_INDEX_OFFSET || ix->method != 0)
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX is not the second member at offset %d", TACO_INDEX_OFFSET);
    /* the largest index of the directory's other members: 20 fixed bytes,
     * the columns deflated (stored blocks add a few bytes per 64 KiB), a
     * CRC-32 each */
    uint64_t n_listed = d->count - 2, raw_most = index_raw_max(n_listed, d->names_len);
    uint64_t most = IDX_FIXED + 4 * n_listed + raw_most + raw_most / 16 + 64;
    if (ix->csize > most || ix->csize > ((uint64_t)1 << 31))
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX is %llu bytes, more than an index of %llu members can be (%llu)",
                       (unsigned long long)ix->csize, (unsigned long long)n_listed, (unsigned long long)most);
    unsigned char *blob = malloc((size_t)ix->csize ? (size_t)ix->csize : 1);
    if (!blob) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = tz_source_read(src, ix->data_offset, blob, (size_t)ix->csize, err);
    tz_index_entry *ie = NULL;
    size_t n = 0;
    char *names = NULL;
    if (rc == TACOZ_OK) rc = index_decode(blob, (size_t)ix->csize, src->size, &ie, &n, &names, err);
    free(blob);
    if (rc) return rc;
    if (n != d->count - 2) rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX lists %zu members, the directory %zu",
                                         n, d->count - 2);
    uint64_t off = ix->data_offset + ix->csize;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_entry *e = &d->entries[i + 2];
        uint64_t data = off + ZIP_LFH_SIZE + ie[i].name_len + ie[i].extra_len;
        if (e->name_len != ie[i].name_len || memcmp(d->names + e->name_off, names + ie[i].name_off, e->name_len) ||
            e->csize != ie[i].size || e->crc32 != ie[i].crc32 || e->header_offset != off || e->data_offset != data)
            rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX entry %zu disagrees with the directory (\"%.200s\")",
                         i, d->names + e->name_off);
        off = data + ie[i].size;
    }
    free(ie), free(names);
    return rc;
}
