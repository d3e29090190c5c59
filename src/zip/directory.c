/* directory.c - the central directory parsed into a member table: records
 * with a bounds check on every field, the name index, local-header checks
 * and data offsets. */
#include <stdlib.h>
#include <string.h>

#include "zip.h"

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
                if (rd32(q) != 0) return TACOZ_ERR_SPLIT;
            }
        }
        x += 4 + sz;
        xlen -= 4 + (size_t)sz;
    }
    if (!found && (need_usize || need_csize || need_off || need_disk)) return TACOZ_INVALID_ZIP64;
    return TACOZ_OK;
}

static const char *entry_name(const void *ctx, size_t i, size_t *len) {
    const tz_dir *d = ctx;
    *len = d->entries[i].name_len;
    return d->names + d->entries[i].name_off;
}

int tz_dir_index_names(tz_dir *d, tacozip_error *err) {
    int rc = tz_names_init(&d->table, d->count, d, entry_name, err);
    for (size_t i = 0; i < d->count && rc == TACOZ_OK; i++)
        if (tz_names_insert(&d->table, i, NULL) != TACOZ_OK)
            rc = tz_fail(err, TACOZ_INVALID_NAME, "duplicate member name \"%.200s\"", tz_dir_name(d, i));
    return rc;
}

void tz_dir_free(tz_dir *d) {
    tz_names_free(&d->table);
    free(d->entries);
    free(d->names);
    memset(d, 0, sizeof *d);
}

int tz_entry_stored(const tz_entry *e) { return e->method == 0 && !(e->flags & ZIP_FLAG_ENCRYPTED); }

int tz_dir_check_stored(const tz_dir *d, size_t i, tacozip_error *err) {
    const tz_entry *e = &d->entries[i];
    if (tz_entry_stored(e)) return TACOZ_OK;
    return tz_fail(err, TACOZ_ERR_UNSUPPORTED, "member \"%.200s\" is %s (method %u); only STORED members can be read",
                   tz_dir_name(d, i), (e->flags & ZIP_FLAG_ENCRYPTED) ? "encrypted" : "compressed", e->method);
}

/* The directory's bytes, read a window at a time: declared sizes never
 * decide an allocation, only the records actually parsed do.  A directory
 * already in memory ("whole": a view, or the tail) is parsed in place;
 * otherwise each window is at most max(CD_WINDOW, the bytes parsed so far)
 * (so a remote source needs O(log) requests and memory stays below twice
 * the valid prefix), and a source without round trips reads CD_WINDOW at
 * a time. */
#define CD_WINDOW ((size_t)1 << 20)
#define CD_WINDOW_REMOTE ((size_t)8 << 20)
typedef struct {
    const unsigned char *whole;
    tacozip_source *src;
    const tz_tail *tail;
    uint64_t cd_off, cd_size;
    unsigned char *buf;
    size_t cap, len;
    uint64_t at; /* directory-relative position of buf[0] */
} cd_reader;

/* Make [pos, pos + need) (inside the directory) readable at *out. */
static int cd_get(cd_reader *r, uint64_t pos, size_t need, const unsigned char **out, tacozip_error *err) {
    if (r->whole) {
        *out = r->whole + pos;
        return TACOZ_OK;
    }
    if (r->buf && pos >= r->at && pos - r->at <= r->len && need <= r->len - (size_t)(pos - r->at)) {
        *out = r->buf + (pos - r->at);
        return TACOZ_OK;
    }
    size_t want = r->src->round_trips ? (pos > CD_WINDOW_REMOTE ? (size_t)pos : CD_WINDOW_REMOTE) : CD_WINDOW;
    if (want < need) want = need;
    if (want > r->cd_size - pos) want = (size_t)(r->cd_size - pos);
    if (want > r->cap) {
        unsigned char *g = realloc(r->buf, want);
        if (!g) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for %zu bytes of the directory", want);
        r->buf = g, r->cap = want;
    }
    /* what lies in the tail comes from it; the rest is read (one read) */
    uint64_t a = r->cd_off + pos, b = a + want;
    uint64_t t = r->tail && r->tail->buf ? r->tail->offset : b;
    uint64_t mid = t < a ? a : t > b ? b : t;
    int rc = tz_source_read(r->src, a, r->buf, (size_t)(mid - a), err);
    if (rc) return rc;
    if (mid < b) memcpy(r->buf + (mid - a), r->tail->buf + (mid - t), (size_t)(b - mid));
    r->at = pos, r->len = want;
    *out = r->buf;
    return TACOZ_OK;
}

static int dir_parse(tz_dir *d, const tz_end_info *end, cd_reader *cr, tacozip_error *err) {
    d->end = *end;
    const uint64_t cd_size = d->end.cd_size, cd_off = d->end.cd_offset;
    if (d->end.entries > UINT32_MAX - 1)
        return tz_fail(err, TACOZ_ERR_TOO_LARGE, "%llu entries", (unsigned long long)d->end.entries);
    /* tz_find_end() checked that cd_size bytes can hold that many records
     * (46 bytes each at least) and lie inside the file; the arrays still
     * grow with the records parsed, not with what the end record says */
    size_t count = (size_t)d->end.entries, cap = 0, ncap = 0;
    size_t pos = 0, names_len = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t rec_off = cd_off + pos;
        if (cd_size - pos < ZIP_CDH_SIZE)
            return tz_fail(err, TACOZ_INVALID_COUNT,
                           "central directory ends after %zu of the %zu entries the end record claims", i, count);
        const unsigned char *r;
        int rc = cd_get(cr, pos, ZIP_CDH_SIZE, &r, err);
        if (rc) return rc;
        if (rd32(r) != ZIP_CDH_SIG)
            return tz_fail(err, TACOZ_INVALID_CD_ENTRY, "bad signature for directory record %zu at offset %llu",
                           i, (unsigned long long)rec_off);
        size_t nlen = rd16(r + 28), xlen = rd16(r + 30), clen = rd16(r + 32);
        if (ZIP_CDH_SIZE + nlen + xlen + clen > cd_size - pos)
            return tz_fail(err, TACOZ_INVALID_CD_ENTRY, "directory record %zu at offset %llu overruns the directory",
                           i, (unsigned long long)rec_off);
        if ((rc = cd_get(cr, pos, ZIP_CDH_SIZE + nlen + xlen, &r, err))) return rc;
        if (i == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            if (nc > count) nc = count;
            tz_entry *g = realloc(d->entries, nc * sizeof *g);
            if (!g) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for %zu directory entries", nc);
            d->entries = g, cap = nc;
        }
        if (names_len + nlen + 1 > ncap) {
            size_t nc = ncap ? ncap * 2 : 64 * 1024;
            if (nc < names_len + nlen + 1) nc = names_len + nlen + 1;
            char *g = realloc(d->names, nc);
            if (!g) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the member names");
            d->names = g, ncap = nc;
        }
        tz_entry *e = &d->entries[i];
        memset(e, 0, sizeof *e);
        d->count = i + 1;
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
        e->data_offset = TZ_UNKNOWN_OFFSET;
        rc = parse_extra(r + ZIP_CDH_SIZE + nlen, xlen, e, e->usize == ZIP32_MAX,
                             e->csize == ZIP32_MAX, e->header_offset == ZIP32_MAX, disk == ZIP16_MAX);
        if (rc)
            return tz_fail(err, rc, "directory record %zu at offset %llu: %s", i, (unsigned long long)rec_off,
                           rc == TACOZ_ERR_SPLIT ? "member on another disk" : "malformed extra field");
        if (disk != 0 && disk != ZIP16_MAX)
            return tz_fail(err, TACOZ_ERR_SPLIT, "directory record %zu: member on disk %u", i, disk);
        const char *name = (const char *)r + ZIP_CDH_SIZE;
        if (nlen == 0 || memchr(name, 0, nlen))
            return tz_fail(err, TACOZ_INVALID_NAME, "directory record %zu: empty name or name containing NUL", i);
        memcpy(d->names + names_len, name, nlen);
        e->name_off = (uint32_t)names_len;
        e->name_len = (uint32_t)nlen;
        names_len += nlen;
        d->names[names_len++] = '\0';
        /* The local header and data must lie before the directory. */
        if (e->header_offset > cd_off || cd_off - e->header_offset < ZIP_LFH_SIZE + nlen)
            return tz_fail(err, TACOZ_INVALID_LFH,
                           "member \"%.200s\": local header offset %llu is not before the directory",
                           d->names + e->name_off, (unsigned long long)e->header_offset);
        if (e->csize > cd_off - e->header_offset - ZIP_LFH_SIZE - nlen)
            return tz_fail(err, TACOZ_INVALID_OVERLAP, "member \"%.200s\": %llu bytes of data would run into the directory",
                           d->names + e->name_off, (unsigned long long)e->csize);
        pos += ZIP_CDH_SIZE + nlen + xlen + clen;
    }
    if (pos < cd_size) {
        /* the directory is its records: more of them than the end record
         * counts, or bytes after the last one, are refused (so that what
         * the end record declares never outgrows what was parsed) */
        const unsigned char *r;
        int rc = cd_size - pos >= 4 ? cd_get(cr, pos, 4, &r, err) : TACOZ_OK;
        if (rc) return rc;
        if (cd_size - pos >= 4 && rd32(r) == ZIP_CDH_SIG)
            return tz_fail(err, TACOZ_INVALID_COUNT,
                           "central directory holds more records than the %zu the end record claims", count);
        return tz_fail(err, TACOZ_INVALID_CD_ENTRY, "%llu bytes after the last of the %zu directory records",
                       (unsigned long long)(cd_size - pos), count);
    }
    if (!d->names && !(d->names = malloc(1))) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    if (!d->entries && !(d->entries = calloc(1, sizeof *d->entries)))
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    d->names_len = names_len;
    return tz_dir_index_names(d, err);
}

int tz_dir_parse(tz_dir *d, const tz_end_info *end, const unsigned char *cd, tacozip_error *err) {
    cd_reader cr = {.whole = cd, .cd_off = end->cd_offset, .cd_size = end->cd_size};
    return dir_parse(d, end, &cr, err);
}

int tz_dir_read(tz_dir *d, tacozip_source *src, const tz_end_info *end, const tz_tail *tail, tacozip_error *err) {
    cd_reader cr = {.src = src, .tail = tail, .cd_off = end->cd_offset, .cd_size = end->cd_size};
    if (tail && tail->buf && end->cd_offset >= tail->offset)
        cr.whole = tail->buf + (end->cd_offset - tail->offset); /* the directory came with the tail */
    else if (end->cd_size <= SIZE_MAX)
        cr.whole = tz_source_view(src, end->cd_offset, (size_t)end->cd_size);
    int rc = dir_parse(d, end, &cr, err);
    free(cr.buf);
    return rc;
}

int tz_dir_check_local(tz_dir *d, size_t i, const unsigned char *h, size_t n, tacozip_error *err) {
    tz_entry *e = &d->entries[i];
    const char *name = tz_dir_name(d, i);
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
        if (rd32(h + 14) != e->crc32 || (c != ZIP32_MAX && c != e->csize))
            return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header CRC or size disagrees with the directory",
                           name);
    }
    if (memcmp(h + ZIP_LFH_SIZE, name, nlen) != 0)
        return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header name differs from the directory", name);
    uint64_t data = e->header_offset + ZIP_LFH_SIZE + nlen + xlen;
    uint64_t limit = d->end.cd_offset;
    if (data > limit || e->csize > limit - data)
        return tz_fail(err, TACOZ_INVALID_OVERLAP, "member \"%.200s\": data runs into the central directory", name);
    if (e->data_offset != TZ_UNKNOWN_OFFSET && e->data_offset != data)
        return tz_fail(err, TACOZ_INVALID_LFH,
                       "member \"%.200s\": local header puts data at %llu, the directory layout at %llu", name,
                       (unsigned long long)data, (unsigned long long)e->data_offset);
    if (e->data_offset == TZ_UNKNOWN_OFFSET) e->data_offset = data; /* only during open */
    __atomic_store_n(&e->lfh_checked, 1, __ATOMIC_RELEASE);
    return TACOZ_OK;
}

int tz_dir_read_local(tz_dir *d, tacozip_source *src, size_t i, tacozip_error *err) {
    tz_entry *e = &d->entries[i];
    size_t n = ZIP_LFH_SIZE + e->name_len; /* header and name in one read */
    unsigned char stackbuf[512];
    unsigned char *h = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!h) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = tz_source_read(src, e->header_offset, h, n, err);
    if (rc == TACOZ_OK) rc = tz_dir_check_local(d, i, h, n, err);
    else if (rc == TACOZ_INVALID_FILE_SIZE)
        rc = tz_fail(err, TACOZ_INVALID_LFH, "member \"%.200s\": local header at %llu unreadable",
                     tz_dir_name(d, i), (unsigned long long)e->header_offset);
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
int tz_dir_resolve_offsets(tz_dir *d, tacozip_source *src, int verify_local, tacozip_error *err) {
    size_t n = d->count;
    if (n == 0) return TACOZ_OK;
    uint32_t *order = malloc(n * sizeof *order);
    if (!order) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        order[i] = (uint32_t)i;
        if (i && d->entries[i].header_offset < d->entries[i - 1].header_offset) sorted = 0;
    }
    if (!sorted) {
        uint32_t *tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            free(order);
            return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        }
        sort_indices(order, tmp, n, d->entries);
        free(tmp);
    }
    int rc = TACOZ_OK;
    for (size_t k = 0; k < n && rc == TACOZ_OK; k++) {
        tz_entry *e = &d->entries[order[k]];
        uint64_t next = k + 1 < n ? d->entries[order[k + 1]].header_offset : d->end.cd_offset;
        uint64_t data = e->header_offset + ZIP_LFH_SIZE + e->name_len + e->cd_extra_len;
        if (!verify_local && !(e->flags & ZIP_FLAG_DATA_DESCRIPTOR) &&
            data + e->csize == next)
            e->data_offset = data; /* back to back: the layout proves it */
        else
            rc = tz_dir_read_local(d, src, order[k], err);
        if (rc == TACOZ_OK && e->data_offset + e->csize > next)
            rc = tz_fail(err, TACOZ_INVALID_OVERLAP, "member \"%.200s\" overlaps the %s", tz_dir_name(d, order[k]),
                         k + 1 < n ? "next member" : "central directory");
    }
    free(order);
    return rc;
}

