/* read.c - reading bytes and members of an open archive: single reads,
 * coalesced multi-range reads, whole members, CRC checks. */
#include <stdlib.h>
#include <string.h>

#include "reader.h"

int tacozip_read_at_ex(tacozip_archive *ar, uint64_t offset, void *buf, size_t len, tacozip_error *err) {
    if (!ar || (!buf && len)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    if (offset > ar->src->size || len > ar->src->size - offset)
        return tz_ar_fail(ar, err,
                          tz_fail(err, TACOZ_ERR_PARAM, "range %llu+%zu passes the end of the archive (%llu bytes)",
                                  (unsigned long long)offset, len, (unsigned long long)ar->src->size));
    return tz_ar_fail(ar, err, tz_source_read(ar->src, offset, buf, len, err));
}

int tacozip_read_at(tacozip_archive *ar, uint64_t offset, void *buf, size_t len) {
    return tacozip_read_at_ex(ar, offset, buf, len, NULL);
}

static int lfh_checked(const tz_entry *e) { return __atomic_load_n(&e->lfh_checked, __ATOMIC_ACQUIRE); }

/* Member i's bytes (all of them, in "data") against its directory CRC-32. */
static int check_crc(const tacozip_archive *ar, size_t i, const void *data, tacozip_error *err) {
    const tz_entry *e = &ar->dir.entries[i];
    uint32_t crc = tz_crc32(0, data, (size_t)e->csize);
    if (crc == e->crc32) return TACOZ_OK;
    return tz_fail(err, TACOZ_INVALID_CRC_MEMBER, "member \"%.200s\": CRC-32 of the bytes read is %08x, the directory says %08x",
                   tz_dir_name(&ar->dir, i), crc, e->crc32);
}

/* A source with round trips pays a request for a separate local-header
 * read: a read that starts near the data fetches the header in the same
 * request; one further in fetches it alongside, in parallel. */
#define LFH_SLACK (64u * 1024)

int tz_read_member_data(tacozip_archive *ar, size_t i, uint64_t offset, void *buf, size_t len, tacozip_error *err) {
    tz_entry *e = &ar->dir.entries[i];
    if (lfh_checked(e)) return tz_source_read(ar->src, e->data_offset + offset, buf, len, err);
    uint64_t head = e->data_offset - e->header_offset; /* local header + name + extra */
    if (!ar->src->round_trips) {
        int rc = tz_dir_read_local(&ar->dir, ar->src, i, err);
        return rc ? rc : tz_source_read(ar->src, e->data_offset + offset, buf, len, err);
    }
    int rc;
    if (offset <= LFH_SLACK && head + offset <= SIZE_MAX - len) {
        size_t n = (size_t)(head + offset) + len;
        unsigned char *tmp = malloc(n);
        if (!tmp) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        rc = tz_source_read(ar->src, e->header_offset, tmp, n, err);
        if (rc == TACOZ_OK) rc = tz_dir_check_local(&ar->dir, i, tmp, n, err);
        if (rc == TACOZ_OK) memcpy(buf, tmp + head + offset, len);
        free(tmp);
        return rc;
    }
    unsigned char *h = malloc((size_t)head);
    if (!h) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    tacozip_range r[2] = {{e->header_offset, head, h}, {e->data_offset + offset, len, buf}};
    rc = tz_source_read_many(ar->src, r, 2, err);
    if (rc == TACOZ_OK) rc = tz_dir_check_local(&ar->dir, i, h, (size_t)head, err);
    free(h);
    return rc;
}

int tacozip_read_member_ex(tacozip_archive *ar, size_t index, uint64_t offset, void *buf, size_t len, size_t *nread,
                           tacozip_error *err) {
    if (nread) *nread = 0;
    if (!ar || index >= ar->dir.count || (!buf && len)) return tz_fail(err, TACOZ_ERR_PARAM, "bad argument");
    int rc = tz_dir_check_stored(&ar->dir, index, err);
    if (rc) return tz_ar_fail(ar, err, rc);
    const tz_entry *e = &ar->dir.entries[index];
    if (offset >= e->csize) return TACOZ_OK;
    if (len > e->csize - offset) len = (size_t)(e->csize - offset);
    rc = tz_read_member_data(ar, index, offset, buf, len, err);
    if (rc) return tz_ar_fail(ar, err, rc);
    if (nread) *nread = len; /* the bytes are there, also when the CRC-32 says they are wrong */
    if (offset == 0 && len == e->csize && ar->check_crc) return tz_ar_fail(ar, err, check_crc(ar, index, buf, err));
    return TACOZ_OK;
}

int tacozip_read_member(tacozip_archive *ar, size_t index, uint64_t offset, void *buf, size_t len, size_t *nread) {
    return tacozip_read_member_ex(ar, index, offset, buf, len, nread, NULL);
}

int tz_verify_member(tacozip_archive *ar, size_t index, tacozip_error *err) {
    const tz_entry *e = &ar->dir.entries[index];
    int rc = tz_dir_check_stored(&ar->dir, index, err);
    if (rc == TACOZ_OK && !lfh_checked(e)) rc = tz_dir_read_local(&ar->dir, ar->src, index, err);
    if (rc) return rc;
    const size_t chunk = (size_t)1 << 20;
    uint32_t crc = 0;
    const unsigned char *view = tz_source_view(ar->src, e->data_offset, (size_t)e->csize);
    unsigned char *buf = NULL;
    if (view) {
        crc = tz_crc32(0, view, (size_t)e->csize);
    } else if (!(buf = malloc(chunk))) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    } else {
        for (uint64_t off = 0; off < e->csize && rc == TACOZ_OK; off += chunk) {
            size_t n = e->csize - off < chunk ? (size_t)(e->csize - off) : chunk;
            rc = tz_source_read(ar->src, e->data_offset + off, buf, n, err);
            if (rc == TACOZ_OK) crc = tz_crc32(crc, buf, n);
        }
    }
    free(buf);
    if (rc == TACOZ_OK && crc != e->crc32)
        rc = tz_fail(err, TACOZ_INVALID_CRC_MEMBER, "member \"%.200s\": CRC-32 is %08x, the directory says %08x",
                     tz_dir_name(&ar->dir, index), crc, e->crc32);
    return rc;
}

int tacozip_verify_member_ex(tacozip_archive *ar, size_t index, tacozip_error *err) {
    if (!ar || index >= ar->dir.count) return tz_fail(err, TACOZ_ERR_PARAM, "bad argument");
    return tz_ar_fail(ar, err, tz_verify_member(ar, index, err));
}

int tacozip_verify_member(tacozip_archive *ar, size_t index) { return tacozip_verify_member_ex(ar, index, NULL); }

/* ---- many ranges at once (coalesced by the source layer) ---------------- */

int tz_read_ranges(tacozip_archive *ar, tacozip_range *ranges, size_t n, uint64_t max_gap, tacozip_error *err) {
    return tz_source_read_ranges(ar->src, ranges, n, max_gap, err);
}

int tacozip_read_ranges_ex(tacozip_archive *ar, tacozip_range *ranges, size_t n, uint64_t max_gap,
                           tacozip_error *err) {
    if (!ar || (n && !ranges)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    return tz_ar_fail(ar, err, tz_read_ranges(ar, ranges, n, max_gap, err));
}

int tacozip_read_ranges(tacozip_archive *ar, tacozip_range *ranges, size_t n, uint64_t max_gap) {
    return tacozip_read_ranges_ex(ar, ranges, n, max_gap, NULL);
}

static int read_members(tacozip_archive *ar, const size_t *indices, size_t n, void *const *bufs, uint64_t max_gap,
                        tacozip_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (indices[i] >= ar->dir.count) return tz_fail(err, TACOZ_ERR_PARAM, "member index %zu out of range", indices[i]);
        int rc = tz_dir_check_stored(&ar->dir, indices[i], err);
        if (rc) return rc;
    }
    /* Each member is read with its local header (one range from the header
     * to the end of the data), so the header is checked at no extra cost. */
    tacozip_range *rg = calloc(n ? n : 1, sizeof *rg);
    if (!rg) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = TACOZ_OK;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_entry *e = &ar->dir.entries[indices[i]];
        rg[i].offset = e->header_offset;
        rg[i].length = e->data_offset + e->csize - e->header_offset;
        if (!(rg[i].buf = malloc((size_t)rg[i].length ? (size_t)rg[i].length : 1)))
            rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    if (rc == TACOZ_OK) rc = tz_read_ranges(ar, rg, n, max_gap, err);
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_entry *e = &ar->dir.entries[indices[i]];
        rc = tz_dir_check_local(&ar->dir, indices[i], rg[i].buf, (size_t)rg[i].length, err);
        if (rc == TACOZ_OK)
            memcpy(bufs[i], (unsigned char *)rg[i].buf + (e->data_offset - e->header_offset), (size_t)e->csize);
        if (rc == TACOZ_OK && ar->check_crc) rc = check_crc(ar, indices[i], bufs[i], err);
    }
    for (size_t i = 0; i < n; i++) free(rg[i].buf);
    free(rg);
    return rc;
}

int tacozip_read_members_ex(tacozip_archive *ar, const size_t *indices, size_t n, void *const *bufs, uint64_t max_gap,
                            tacozip_error *err) {
    if (!ar || (n && (!indices || !bufs))) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    return tz_ar_fail(ar, err, read_members(ar, indices, n, bufs, max_gap, err));
}

int tacozip_read_members(tacozip_archive *ar, const size_t *indices, size_t n, void *const *bufs, uint64_t max_gap) {
    return tacozip_read_members_ex(ar, indices, n, bufs, max_gap, NULL);
}

int tacozip_remote_stats(const tacozip_archive *ar, uint64_t *requests, uint64_t *bytes) {
    if (requests) *requests = 0;
    if (bytes) *bytes = 0;
    if (!ar) return TACOZ_ERR_PARAM;
    if (!ar->src->ops->stats) return TACOZ_ERR_NOT_REMOTE;
    tz_source_stats st = {0, 0, 0};
    ar->src->ops->stats(ar->src, &st);
    if (requests) *requests = st.requests;
    if (bytes) *bytes = st.bytes;
    return TACOZ_OK;
}
