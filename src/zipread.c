/* zipread.c - locating the end records and parsing the central directory,
 * with a bounds check on every field.  Produces the member index. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The largest tail we read at once: end record + longest comment + ZIP64
 * locator and end record, rounded up.  For archives we write (no comment)
 * the central directory of a few hundred members is in it too. */
#define TAIL_MAX (64 * 1024 + 1024)

int tz_find_end(tz_source *src, tz_end_info *end, unsigned char **tail_out,
                uint64_t *tail_off_out, size_t *tail_len_out, tacozip_error *err) {
    uint64_t size = src->size;
    memset(end, 0, sizeof *end);
    if (!src->remote && size < ZIP_EOCD_SIZE)
        return tz_fail(err, TACOZ_INVALID_NO_EOCD, "file of %llu bytes is too small to be a ZIP archive",
                       (unsigned long long)size);
    size_t tail_len = 0;
    uint64_t tail_off = 0;
    unsigned char *tail = malloc(TAIL_MAX);
    if (!tail) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    /* one read (one request for a remote source, which learns the size) */
    int rc = tz_source_tail(src, TAIL_MAX, tail, &tail_len, &tail_off, err);
    if (rc) {
        free(tail);
        return rc;
    }
    size = src->size;
    if (tail_len < ZIP_EOCD_SIZE) {
        free(tail);
        return tz_fail(err, TACOZ_INVALID_NO_EOCD, "file of %llu bytes is too small to be a ZIP archive",
                       (unsigned long long)size);
    }
    /* Scan backwards for the end record whose comment ends exactly at the
     * end of the file; failing that (trailing bytes after the archive), the
     * last one whose comment fits.  A fake record inside a comment cannot
     * win over the real one, whose comment length reaches the end. */
    size_t pos = tail_len - ZIP_EOCD_SIZE, fit = SIZE_MAX;
    int found = 0;
    for (;;) {
        if (tail[pos] == 'P' && rd32(tail + pos) == ZIP_EOCD_SIG) {
            size_t clen = rd16(tail + pos + 20);
            if (pos + ZIP_EOCD_SIZE + clen == tail_len) {
                found = 1;
                break;
            }
            if (fit == SIZE_MAX && pos + ZIP_EOCD_SIZE + clen < tail_len) fit = pos;
        }
        if (pos == 0) break;
        pos--;
    }
    if (!found && fit != SIZE_MAX) {
        pos = fit;
        found = 1;
    }
    if (!found) {
        free(tail);
        return tz_fail(err, TACOZ_INVALID_NO_EOCD, "no end of central directory record in the last %zu bytes",
                       tail_len);
    }
    const unsigned char *e = tail + pos;
    end->eocd_offset = tail_off + pos;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint64_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);

    /* ZIP64 locator right before the end record? */
    if (end->eocd_offset >= ZIP64_LOC_SIZE) {
        unsigned char loc[ZIP64_LOC_SIZE];
        uint64_t loc_off = end->eocd_offset - ZIP64_LOC_SIZE;
        if (loc_off >= tail_off)
            memcpy(loc, tail + (loc_off - tail_off), sizeof loc);
        else if ((rc = tz_source_read(src, loc_off, loc, sizeof loc, err)) != 0) {
            free(tail);
            return rc;
        }
        if (rd32(loc) == ZIP64_LOC_SIG) {
            uint64_t z_off = rd64(loc + 8);
            if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1) {
                free(tail);
                return tz_fail(err, TACOZ_ERR_UNSUPPORTED, "multi-disk (split) ZIP64 archive");
            }
            if (z_off > loc_off || loc_off - z_off < ZIP64_EOCD_SIZE) {
                free(tail);
                return tz_fail(err, TACOZ_INVALID_ZIP64, "ZIP64 end record offset %llu out of bounds",
                               (unsigned long long)z_off);
            }
            unsigned char z[ZIP64_EOCD_SIZE];
            if (z_off >= tail_off)
                memcpy(z, tail + (z_off - tail_off), sizeof z);
            else if ((rc = tz_source_read(src, z_off, z, sizeof z, err)) != 0) {
                free(tail);
                return rc;
            }
            if (rd32(z) != ZIP64_EOCD_SIG || rd64(z + 4) < ZIP64_EOCD_SIZE - 12) {
                free(tail);
                return tz_fail(err, TACOZ_INVALID_ZIP64, "bad ZIP64 end record at offset %llu",
                               (unsigned long long)z_off);
            }
            disk = (uint16_t)(rd32(z + 16) ? 1 : 0);
            cd_disk = (uint16_t)(rd32(z + 20) ? 1 : 0);
            n_disk = rd64(z + 24);
            n_total = rd64(z + 32);
            cd_size = rd64(z + 40);
            cd_off = rd64(z + 48);
            end->zip64 = 1;
            end->zip64_offset = z_off;
        }
    }
    if (!end->zip64 && (cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu) &&
        (cd_off > end->eocd_offset || cd_size > end->eocd_offset - cd_off)) {
        free(tail);
        return tz_fail(err, TACOZ_INVALID_ZIP64,
                       "end record defers to a ZIP64 end record (0xFFFFFFFF) but no valid ZIP64 locator precedes it");
    }
    if (disk != 0 || cd_disk != 0) {
        free(tail);
        return tz_fail(err, TACOZ_ERR_UNSUPPORTED, "multi-disk (split) archive");
    }
    if (n_disk != n_total) {
        free(tail);
        return tz_fail(err, TACOZ_INVALID_COUNT, "end record counts disagree (%llu on disk, %llu total)",
                       (unsigned long long)n_disk, (unsigned long long)n_total);
    }
    uint64_t cd_limit = end->zip64 ? end->zip64_offset : end->eocd_offset;
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off) {
        free(tail);
        return tz_fail(err, TACOZ_INVALID_CD_OFFSET,
                       "central directory (%llu bytes at offset %llu) lies outside the %llu bytes before the end record",
                       (unsigned long long)cd_size, (unsigned long long)cd_off, (unsigned long long)cd_limit);
    }
    if (n_total > cd_size / ZIP_CDH_SIZE) {
        free(tail);
        return tz_fail(err, TACOZ_INVALID_COUNT,
                       "end record claims %llu entries but the directory has only %llu bytes",
                       (unsigned long long)n_total, (unsigned long long)cd_size);
    }
    end->cd_offset = cd_off;
    end->cd_size = cd_size;
    end->entries = n_total;
    if (tail_out) {
        *tail_out = tail;
        *tail_off_out = tail_off;
        *tail_len_out = tail_len;
    } else {
        free(tail);
    }
    return TACOZ_OK;
}

/* Parse the extra fields of one record, filling ZIP64 values where the
 * 32-bit fields hold the 0xFFFFFFFF / 0xFFFF markers. */
static int parse_extra(const unsigned char *x, size_t xlen, tz_entry *e, int need_usize, int need_csize,
                       int need_off, int need_disk) {
    int found = 0;
    while (xlen >= 4) {
        uint16_t id = rd16(x), sz = rd16(x + 2);
        if ((size_t)sz + 4 > xlen) return TACOZ_INVALID_CD_ENTRY;
        if (id == ZIP64_EXTRA_ID && !found) {
            const unsigned char *q = x + 4;
            size_t left = sz;
            found = 1;
            if (need_usize) {
                if (left < 8) return TACOZ_INVALID_ZIP64;
                e->usize = rd64(q), q += 8, left -= 8;
            }
            if (need_csize) {
                if (left < 8) return TACOZ_INVALID_ZIP64;
                e->csize = rd64(q), q += 8, left -= 8;
            }
            if (need_off) {
                if (left < 8) return TACOZ_INVALID_ZIP64;
                e->header_offset = rd64(q), q += 8, left -= 8;
            }
            if (need_disk) {
                if (left < 4) return TACOZ_INVALID_ZIP64;
                if (rd32(q) != 0) return TACOZ_ERR_UNSUPPORTED;
            }
        }
        x += 4 + sz;
        xlen -= 4 + (size_t)sz;
    }
    if (!found && (need_usize || need_csize || need_off || need_disk)) return TACOZ_INVALID_ZIP64;
    return TACOZ_OK;
}

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int build_hash(tacozip_archive *ar, tacozip_error *err) {
    size_t cap = 16;
    while (cap < ar->count * 2) cap <<= 1;
    ar->hash = calloc(cap, sizeof *ar->hash);
    if (!ar->hash) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    ar->hash_mask = cap - 1;
    for (size_t i = 0; i < ar->count; i++) {
        const tz_entry *e = &ar->entries[i];
        const char *name = ar->names + e->name_off;
        size_t slot = (size_t)name_hash(name, e->name_len) & ar->hash_mask;
        while (ar->hash[slot]) {
            const tz_entry *o = &ar->entries[ar->hash[slot] - 1];
            if (o->name_len == e->name_len && memcmp(ar->names + o->name_off, name, e->name_len) == 0)
                return tz_fail(err, TACOZ_INVALID_NAME, "duplicate member name \"%.200s\"", name);
            slot = (slot + 1) & ar->hash_mask;
        }
        ar->hash[slot] = (uint32_t)(i + 1);
    }
    return TACOZ_OK;
}

int tacozip_find(const tacozip_archive *ar, const char *name, size_t name_len, size_t *index) {
    if (!ar || !name) return TACOZ_ERR_PARAM;
    if (name_len == (size_t)-1) name_len = strlen(name);
    size_t slot = (size_t)name_hash(name, name_len) & ar->hash_mask;
    while (ar->hash[slot]) {
        const tz_entry *e = &ar->entries[ar->hash[slot] - 1];
        if (e->name_len == name_len && memcmp(ar->names + e->name_off, name, name_len) == 0) {
            if (index) *index = ar->hash[slot] - 1;
            return TACOZ_OK;
        }
        slot = (slot + 1) & ar->hash_mask;
    }
    return TACOZ_ERR_NOT_FOUND;
}

int tz_parse_directory(tacozip_archive *ar, const unsigned char *cd, tacozip_error *err) {
    const uint64_t cd_size = ar->end.cd_size, cd_off = ar->end.cd_offset;
    if (ar->end.entries > UINT32_MAX - 1)
        return tz_fail(err, TACOZ_ERR_TOO_LARGE, "%llu entries", (unsigned long long)ar->end.entries);
    size_t count = (size_t)ar->end.entries;
    ar->entries = calloc(count ? count : 1, sizeof *ar->entries);
    ar->names = malloc((size_t)cd_size + count + 1);
    if (!ar->entries || !ar->names) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    ar->count = count;
    size_t pos = 0, names_len = 0;
    for (size_t i = 0; i < count; i++) {
        tz_entry *e = &ar->entries[i];
        uint64_t rec_off = cd_off + pos;
        if (cd_size - pos < ZIP_CDH_SIZE)
            return tz_fail(err, TACOZ_INVALID_COUNT,
                           "central directory ends after %zu of the %zu entries the end record claims", i, count);
        const unsigned char *r = cd + pos;
        if (rd32(r) != ZIP_CDH_SIG)
            return tz_fail(err, TACOZ_INVALID_CD_ENTRY, "bad signature for directory record %zu at offset %llu",
                           i, (unsigned long long)rec_off);
        size_t nlen = rd16(r + 28), xlen = rd16(r + 30), clen = rd16(r + 32);
        if (ZIP_CDH_SIZE + nlen + xlen + clen > cd_size - pos)
            return tz_fail(err, TACOZ_INVALID_CD_ENTRY, "directory record %zu at offset %llu overruns the directory",
                           i, (unsigned long long)rec_off);
        e->flags = rd16(r + 8);
        e->method = rd16(r + 10);
        e->dos_datetime = rd32(r + 12);
        e->crc32 = rd32(r + 16);
        e->csize = rd32(r + 20);
        e->usize = rd32(r + 24);
        uint16_t disk = rd16(r + 34);
        e->external_attr = rd32(r + 38);
        e->header_offset = rd32(r + 42);
        e->cd_extra_len = (uint16_t)xlen;
        e->cd_record_offset = rec_off;
        e->data_offset = UINT64_MAX;
        int rc = parse_extra(r + ZIP_CDH_SIZE + nlen, xlen, e, e->usize == 0xFFFFFFFFu,
                             e->csize == 0xFFFFFFFFu, e->header_offset == 0xFFFFFFFFu, disk == 0xFFFF);
        if (rc)
            return tz_fail(err, rc, "directory record %zu at offset %llu: %s", i, (unsigned long long)rec_off,
                           rc == TACOZ_ERR_UNSUPPORTED ? "member on another disk" : "malformed extra field");
        if (disk != 0 && disk != 0xFFFF)
            return tz_fail(err, TACOZ_ERR_UNSUPPORTED, "directory record %zu: member on disk %u", i, disk);
        const char *name = (const char *)r + ZIP_CDH_SIZE;
        if (nlen == 0 || memchr(name, 0, nlen))
            return tz_fail(err, TACOZ_INVALID_NAME, "directory record %zu: empty name or name containing NUL", i);
        memcpy(ar->names + names_len, name, nlen);
        e->name_off = (uint32_t)names_len;
        e->name_len = (uint32_t)nlen;
        names_len += nlen;
        ar->names[names_len++] = '\0';
        /* The local header and data must lie before the directory. */
        if (e->header_offset > cd_off || cd_off - e->header_offset < ZIP_LFH_SIZE + nlen)
            return tz_fail(err, TACOZ_INVALID_LFH,
                           "member \"%.200s\": local header offset %llu is not before the directory",
                           ar->names + e->name_off, (unsigned long long)e->header_offset);
        if (e->csize > cd_off - e->header_offset - ZIP_LFH_SIZE - nlen)
            return tz_fail(err, TACOZ_INVALID_OVERLAP, "member \"%.200s\": %llu bytes of data would run into the directory",
                           ar->names + e->name_off, (unsigned long long)e->csize);
        pos += ZIP_CDH_SIZE + nlen + xlen + clen;
    }
    if (cd_size - pos >= 4 && rd32(cd + pos) == ZIP_CDH_SIG)
        return tz_fail(err, TACOZ_INVALID_COUNT, "central directory holds more records than the %zu the end record claims",
                       count);
    ar->names_len = names_len;
    return build_hash(ar, err);
}

int tz_check_local_bytes(tacozip_archive *ar, size_t i, const unsigned char *h, size_t n, tacozip_error *err) {
    tz_entry *e = &ar->entries[i];
    const char *name = ar->names + e->name_off;
    if (n < ZIP_LFH_SIZE + e->name_len)
        return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header at %llu unreadable", name,
                       (unsigned long long)e->header_offset);
    if (rd32(h) != ZIP_LFH_SIG)
        return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": no local header signature at offset %llu", name,
                       (unsigned long long)e->header_offset);
    size_t nlen = rd16(h + 26), xlen = rd16(h + 28);
    if (nlen != e->name_len || rd16(h + 8) != e->method)
        return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header disagrees with the directory", name);
    if (!(e->flags & ZIP_FLAG_DATA_DESCRIPTOR) && !(rd16(h + 6) & ZIP_FLAG_DATA_DESCRIPTOR)) {
        uint32_t c = rd32(h + 18);
        if (rd32(h + 14) != e->crc32 || (c != 0xFFFFFFFFu && c != e->csize))
            return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header CRC or size disagrees with the directory",
                           name);
    }
    if (memcmp(h + ZIP_LFH_SIZE, name, nlen) != 0)
        return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header name differs from the directory", name);
    uint64_t data = e->header_offset + ZIP_LFH_SIZE + nlen + xlen;
    uint64_t limit = ar->end.cd_offset;
    if (data > limit || e->csize > limit - data)
        return tz_fail(err, TACOZ_INVALID_OVERLAP, "member \"%.200s\": data runs into the central directory", name);
    if (e->data_offset != UINT64_MAX && e->data_offset != data)
        return tz_fail(err, TACOZ_INVALID_LFH,
                       "member \"%.200s\": local header puts data at %llu, the directory layout at %llu", name,
                       (unsigned long long)data, (unsigned long long)e->data_offset);
    if (e->data_offset == UINT64_MAX) e->data_offset = data; /* only during open */
    __atomic_store_n(&e->lfh_checked, 1, __ATOMIC_RELEASE);
    return TACOZ_OK;
}

int tz_check_local(tacozip_archive *ar, size_t i, tacozip_error *err) {
    tz_entry *e = &ar->entries[i];
    size_t n = ZIP_LFH_SIZE + e->name_len; /* header and name in one read */
    unsigned char stackbuf[512];
    unsigned char *h = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!h) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = tz_source_read(ar->src, e->header_offset, h, n, err);
    if (rc == TACOZ_OK) rc = tz_check_local_bytes(ar, i, h, n, err);
    else if (rc == TACOZ_INVALID_FILE_SIZE)
        rc = tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header at %llu unreadable",
                     ar->names + e->name_off, (unsigned long long)e->header_offset);
    if (h != stackbuf) free(h);
    return rc;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx) {
    const tz_entry *en = ctx;
    uint64_t x = en[*(const uint32_t *)a].header_offset, y = en[*(const uint32_t *)b].header_offset;
    return x < y ? -1 : x > y;
}

/* Small portable merge sort of indices by header offset (qsort_r is not
 * in C11). */
static void sort_indices(uint32_t *v, uint32_t *tmp, size_t n, const tz_entry *en) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_indices(v, tmp, h, en);
    sort_indices(v + h, tmp, n - h, en);
    if (cmp_by_offset(&v[h - 1], &v[h], (void *)en) <= 0) return;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp_by_offset(&v[j], &v[i], (void *)en) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

/* Derive data offsets from the layout, read local headers where it does not
 * prove them, and refuse overlapping members. */
static int resolve_offsets(tacozip_archive *ar, unsigned flags, tacozip_error *err) {
    size_t n = ar->count;
    if (n == 0) return TACOZ_OK;
    uint32_t *order = malloc(n * sizeof *order);
    if (!order) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        order[i] = (uint32_t)i;
        if (i && ar->entries[i].header_offset < ar->entries[i - 1].header_offset) sorted = 0;
    }
    if (!sorted) {
        uint32_t *tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            free(order);
            return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        }
        sort_indices(order, tmp, n, ar->entries);
        free(tmp);
    }
    int rc = TACOZ_OK;
    for (size_t k = 0; k < n && rc == TACOZ_OK; k++) {
        tz_entry *e = &ar->entries[order[k]];
        uint64_t next = k + 1 < n ? ar->entries[order[k + 1]].header_offset : ar->end.cd_offset;
        uint64_t data = e->header_offset + ZIP_LFH_SIZE + e->name_len + e->cd_extra_len;
        if (!(flags & TACOZIP_OPEN_VERIFY_LOCAL) && !(e->flags & ZIP_FLAG_DATA_DESCRIPTOR) &&
            data + e->csize == next)
            e->data_offset = data; /* back to back: the layout proves it */
        else
            rc = tz_check_local(ar, order[k], err);
        if (rc == TACOZ_OK && e->data_offset + e->csize > next)
            rc = tz_fail(err, TACOZ_INVALID_OVERLAP, "member \"%.200s\" overlaps the %s", ar->names + e->name_off,
                         k + 1 < n ? "next member" : "central directory");
    }
    free(order);
    return rc;
}

/* Build the member list from TACO_INDEX, whose bytes are [blob, blob+len)
 * at archive offset blob_off; "head" holds the first 157 bytes. */
static int index_entries(tacozip_archive *ar, const unsigned char *head, const unsigned char *blob, size_t blob_len,
                         uint64_t blob_off, uint32_t blob_crc, tacozip_error *err) {
    tz_index_entry *ie = NULL;
    size_t n = 0;
    char *inames = NULL;
    int rc = tz_index_decode(blob, blob_len, ar->src->size, &ie, &n, &inames, err);
    if (rc) return rc;
    size_t names_len = 0;
    for (size_t i = 0; i < n; i++) names_len += ie[i].name_len + 1;
    ar->count = n + 2;
    ar->entries = calloc(ar->count, sizeof *ar->entries);
    ar->names = malloc(names_len + TACO_HEADER_NAME_LEN + TACO_INDEX_NAME_LEN + 2);
    if (!ar->entries || !ar->names) {
        free(ie), free(inames);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    size_t no = 0;
    memcpy(ar->names, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN + 1);
    memcpy(ar->names + TACO_HEADER_NAME_LEN + 1, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN + 1);
    no = TACO_HEADER_NAME_LEN + TACO_INDEX_NAME_LEN + 2;
    tz_entry *e = ar->entries;
    e[0] = (tz_entry){.header_offset = 0, .data_offset = TACO_PAYLOAD_OFFSET, .csize = TACO_HEADER_PAYLOAD_SIZE,
                      .usize = TACO_HEADER_PAYLOAD_SIZE, .name_off = 0, .name_len = TACO_HEADER_NAME_LEN,
                      .crc32 = rd32(head + TACO_CRC_OFFSET), .dos_datetime = rd32(head + 10), .lfh_checked = 1};
    e[1] = (tz_entry){.header_offset = TACO_INDEX_OFFSET, .data_offset = blob_off, .csize = blob_len,
                      .usize = blob_len, .name_off = TACO_HEADER_NAME_LEN + 1, .name_len = TACO_INDEX_NAME_LEN,
                      .crc32 = blob_crc, .lfh_checked = 1};
    uint64_t off = blob_off + blob_len;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        tz_entry *m = &e[i + 2];
        memcpy(ar->names + no, inames + ie[i].name_off, ie[i].name_len);
        m->name_off = (uint32_t)no;
        m->name_len = (uint32_t)ie[i].name_len;
        no += ie[i].name_len;
        ar->names[no++] = '\0';
        m->header_offset = off;
        m->data_offset = off + ZIP_LFH_SIZE + m->name_len + ie[i].extra_len;
        m->csize = m->usize = ie[i].size;
        m->crc32 = ie[i].crc32;
        if (m->data_offset > ar->src->size || m->csize > ar->src->size - m->data_offset)
            rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX: member \"%.200s\" lies past the end of the archive",
                         ar->names + m->name_off);
        off = m->data_offset + m->csize;
    }
    free(ie), free(inames);
    if (rc) return rc;
    ar->names_len = no;
    /* What the end records would say (the writer puts the directory right
     * after the last member). */
    ar->end.cd_offset = off;
    ar->end.entries = ar->count;
    ar->end.zip64 = ar->count >= 0xFFFF || off >= 0xFFFFFFFFu;
    ar->from_index = 1;
    memcpy(ar->header_bytes, head, TACO_HEADER_SIZE);
    ar->has_header = tz_header_check(ar->header_bytes, &ar->header) == TACOZ_OK;
    return build_hash(ar, err);
}

/* Index-first open: one read of the first 16 KiB.  Returns TACOZ_OK with
 * the member list built, 1 if the archive has no TACO_INDEX (caller falls
 * back to the end records), or an error. */
static int open_from_index(tacozip_archive *ar, tacozip_error *err) {
    unsigned char *head = malloc(TACO_INDEX_PROBE);
    if (!head) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    size_t got = 0;
    int rc = tz_source_head(ar->src, TACO_INDEX_PROBE, head, &got, err);
    const size_t at = TACO_INDEX_OFFSET;
    if (rc == TACOZ_OK) {
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
            unsigned char *blob = NULL;
            if (blob_off + blob_len <= got) {
                blob = head + blob_off;
            } else if (blob_off > ar->src->size || blob_len > ar->src->size - blob_off) {
                rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX runs past the end of the archive");
            } else if (!(blob = malloc(blob_len))) {
                rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            } else { /* the rest of a large index: one more read */
                size_t have = got > blob_off ? got - (size_t)blob_off : 0;
                memcpy(blob, head + blob_off, have);
                rc = tz_source_read(ar->src, blob_off + have, blob + have, blob_len - have, err);
            }
            if (rc == TACOZ_OK && tz_crc32(0, blob, blob_len) != crc)
                rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX fails its CRC-32");
            if (rc == TACOZ_OK) rc = index_entries(ar, head, blob, blob_len, blob_off, crc, err);
            if (blob && blob != head + blob_off) free(blob);
        }
    }
    free(head);
    return rc;
}

int tz_open_source(tz_source *src, unsigned flags, tacozip_archive **out, tacozip_error *err) {
    tacozip_archive *ar = calloc(1, sizeof *ar);
    if (!ar) {
        src->destroy(src);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    ar->src = src;
    pthread_mutex_init(&ar->lock, NULL);
    if (flags & TACOZIP_OPEN_INDEX_FIRST) {
        int r = open_from_index(ar, err);
        if (r == TACOZ_OK) {
            *out = ar;
            return TACOZ_OK;
        }
        if (r != 1) {
            tacozip_close(ar);
            return r;
        }
    }
    unsigned char *tail = NULL, *cdbuf = NULL;
    uint64_t tail_off = 0;
    size_t tail_len = 0;
    int rc = tz_find_end(src, &ar->end, &tail, &tail_off, &tail_len, err);
    if (rc == TACOZ_OK) {
        const unsigned char *cd;
        if (ar->end.cd_offset >= tail_off) {
            cd = tail + (ar->end.cd_offset - tail_off); /* directory already in the tail */
        } else if ((cd = src->view(src, ar->end.cd_offset, (size_t)ar->end.cd_size)) == NULL) {
            if (ar->end.cd_size > SIZE_MAX - 1 || !(cdbuf = malloc((size_t)ar->end.cd_size + 1))) {
                rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for a %llu-byte directory",
                             (unsigned long long)ar->end.cd_size);
            } else {
                /* Only the part of the directory before the tail is read;
                 * the rest came with the tail (one request either way). */
                uint64_t cd_end = ar->end.cd_offset + ar->end.cd_size;
                size_t before = (size_t)((cd_end <= tail_off ? cd_end : tail_off) - ar->end.cd_offset);
                rc = tz_source_read(src, ar->end.cd_offset, cdbuf, before, err);
                if (rc == TACOZ_OK && before < ar->end.cd_size)
                    memcpy(cdbuf + before, tail, (size_t)ar->end.cd_size - before);
            }
            cd = cdbuf;
        }
        if (rc == TACOZ_OK) rc = tz_parse_directory(ar, cd, err);
    }
    free(cdbuf);
    if (rc == TACOZ_OK) rc = resolve_offsets(ar, flags, err);
    if (rc == TACOZ_OK) {
        const tz_entry *e = ar->count ? &ar->entries[0] : NULL;
        if (e && e->header_offset == 0 && e->name_len == TACO_HEADER_NAME_LEN &&
            memcmp(ar->names + e->name_off, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN) == 0 &&
            src->size >= TACO_HEADER_SIZE) {
            /* The header bytes: already in the tail for a small archive; read
             * now from a local source; from a remote one only when asked
             * (tacozip_archive_header), so that listing costs no request. */
            ar->has_header = -1;
            if (tail && tail_off == 0) memcpy(ar->header_bytes, tail, TACO_HEADER_SIZE), ar->has_header = 2;
            else if (!src->remote && tz_source_read(src, 0, ar->header_bytes, TACO_HEADER_SIZE, NULL) == TACOZ_OK)
                ar->has_header = 2;
            if (ar->has_header == 2)
                ar->has_header = tz_header_check(ar->header_bytes, &ar->header) == TACOZ_OK;
        }
    }
    free(tail);
    if (rc) {
        tacozip_close(ar);
        return rc;
    }
    *out = ar;
    return TACOZ_OK;
}

/* validate DEEP: TACO_INDEX, when present, must list exactly what the
 * directory lists (names, sizes, CRCs, data offsets), in order. */
int tz_index_check(tacozip_archive *ar, tacozip_error *err) {
    size_t idx;
    if (tacozip_find(ar, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, &idx) != TACOZ_OK) return TACOZ_OK;
    const tz_entry *ix = &ar->entries[idx];
    if (idx != 1 || ix->header_offset != TACO_INDEX_OFFSET || ix->method != 0)
        return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX is not the second member at offset %d", TACO_INDEX_OFFSET);
    if (ix->csize > ((uint64_t)1 << 31)) return tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX is too large");
    unsigned char *blob = malloc((size_t)ix->csize ? (size_t)ix->csize : 1);
    if (!blob) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = tz_source_read(ar->src, ix->data_offset, blob, (size_t)ix->csize, err);
    tz_index_entry *ie = NULL;
    size_t n = 0;
    char *names = NULL;
    if (rc == TACOZ_OK) rc = tz_index_decode(blob, (size_t)ix->csize, ar->src->size, &ie, &n, &names, err);
    free(blob);
    if (rc) return rc;
    if (n != ar->count - 2) rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX lists %zu members, the directory %zu",
                                         n, ar->count - 2);
    uint64_t off = ix->data_offset + ix->csize;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_entry *e = &ar->entries[i + 2];
        uint64_t data = off + ZIP_LFH_SIZE + ie[i].name_len + ie[i].extra_len;
        if (e->name_len != ie[i].name_len || memcmp(ar->names + e->name_off, names + ie[i].name_off, e->name_len) ||
            e->csize != ie[i].size || e->crc32 != ie[i].crc32 || e->header_offset != off || e->data_offset != data)
            rc = tz_fail(err, TACOZ_INVALID_INDEX, "TACO_INDEX entry %zu disagrees with the directory (\"%.200s\")",
                         i, ar->names + e->name_off);
        off = data + ie[i].size;
    }
    free(ie), free(names);
    return rc;
}
