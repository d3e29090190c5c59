/* archive.c - the public reader API over the member index. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Record a failure of a read on "ar" for tacozip_last_error().  Reads may
 * run in several threads at once, so the message is built in the caller's
 * own buffer and copied under the archive's lock. */
static int set_last(tacozip_archive *ar, const tacozip_error *e) {
    pthread_mutex_lock(&ar->lock);
    ar->last = *e;
    pthread_mutex_unlock(&ar->lock);
    return e->code;
}

int tacozip_open_ex(const char *path, unsigned flags, tacozip_archive **out, tacozip_error *err) {
    if (!path || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    tz_source *src = NULL;
    int rc = tz_source_open(path, &src, err);
    if (rc) return rc;
    rc = tz_open_source(src, flags, out, err);
    if (rc && err && !tz_is_url(path)) { /* prefix the path for context (URLs name themselves, safely) */
        char msg[sizeof err->message];
        memcpy(msg, err->message, sizeof msg);
        int k = snprintf(err->message, sizeof err->message, "%.200s: ", path);
        if (k > 0 && (size_t)k < sizeof err->message)
            snprintf(err->message + k, sizeof err->message - (size_t)k, "%.300s", msg);
    }
    return rc;
}

int tacozip_open(const char *path, tacozip_archive **out) { return tacozip_open_ex(path, 0, out, NULL); }

int tacozip_open_memory(const void *data, size_t len, unsigned flags, tacozip_archive **out,
                        tacozip_error *err) {
    if (!data || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    tz_source *src = NULL;
    int rc = tz_source_memory(data, len, &src, err);
    if (rc) return rc;
    return tz_open_source(src, flags, out, err);
}

void tacozip_close(tacozip_archive *ar) {
    if (!ar) return;
    if (ar->src) ar->src->destroy(ar->src);
    pthread_mutex_destroy(&ar->lock);
    free(ar->entries);
    free(ar->names);
    free(ar->hash);
    free(ar);
}

size_t tacozip_count(const tacozip_archive *ar) { return ar ? ar->count : 0; }
uint64_t tacozip_archive_size(const tacozip_archive *ar) { return ar ? ar->src->size : 0; }
int tacozip_archive_format(const tacozip_archive *ar) {
    return !ar ? TACOZIP_FORMAT_UNKNOWN : ar->end.zip64 ? TACOZIP_FORMAT_ZIP64 : TACOZIP_FORMAT_ZIP32;
}
void tacozip_directory_range(const tacozip_archive *ar, uint64_t *offset, uint64_t *size) {
    if (offset) *offset = ar ? ar->end.cd_offset : 0;
    if (size) *size = ar ? ar->end.cd_size : 0;
}

const char *tacozip_last_error(const tacozip_archive *ar) { return ar ? ar->last.message : ""; }

int tacozip_archive_header(const tacozip_archive *car, taco_meta_array_t *out) {
    if (!car || !out) return TACOZ_ERR_PARAM;
    /* Remote archives read the header on first use (one request), so that
     * opening and listing do not pay for it.  Logically const. */
    tacozip_archive *ar = (tacozip_archive *)car;
    pthread_mutex_lock(&ar->lock);
    int rc = TACOZ_OK;
    if (ar->has_header == -1) {
        tacozip_error e;
        rc = tz_source_read(ar->src, 0, ar->header_bytes, TACO_HEADER_SIZE, &e);
        if (rc == TACOZ_OK) ar->has_header = tz_header_check(ar->header_bytes, &ar->header) == TACOZ_OK;
        else ar->last = e;
    }
    if (rc == TACOZ_OK && !ar->has_header) rc = TACOZ_ERR_INVALID_HEADER;
    if (rc == TACOZ_OK) *out = ar->header;
    pthread_mutex_unlock(&ar->lock);
    return rc;
}

int tacozip_member_at(const tacozip_archive *ar, size_t index, tacozip_member *out) {
    if (!ar || !out || index >= ar->count) return TACOZ_ERR_PARAM;
    const tz_entry *e = &ar->entries[index];
    out->name = ar->names + e->name_off;
    out->name_len = e->name_len;
    out->header_offset = e->header_offset;
    out->data_offset = e->data_offset;
    out->size = e->csize;
    out->uncompressed_size = e->usize;
    out->crc32 = e->crc32;
    out->method = e->method;
    out->flags = e->flags;
    out->dos_datetime = e->dos_datetime;
    out->external_attr = e->external_attr;
    return TACOZ_OK;
}

int tacozip_span(const tacozip_archive *ar, const size_t *indices, size_t n, unsigned flags,
                 uint64_t *offset, uint64_t *length) {
    if (!ar || !indices || n == 0 || !offset || !length) return TACOZ_ERR_PARAM;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t k = 0; k < n; k++) {
        if (indices[k] >= ar->count) return TACOZ_ERR_PARAM;
        const tz_entry *e = &ar->entries[indices[k]];
        uint64_t start = (flags & TACOZIP_SPAN_DATA_ONLY) ? e->data_offset : e->header_offset;
        if (start < lo) lo = start;
        if (e->data_offset + e->csize > hi) hi = e->data_offset + e->csize;
    }
    *offset = lo;
    *length = hi - lo;
    return TACOZ_OK;
}

int tacozip_read_at(tacozip_archive *ar, uint64_t offset, void *buf, size_t len) {
    if (!ar || (!buf && len)) return TACOZ_ERR_PARAM;
    tacozip_error e;
    if (offset > ar->src->size || len > ar->src->size - offset) {
        tz_fail(&e, TACOZ_ERR_PARAM, "range %llu+%zu passes the end of the archive (%llu bytes)",
                (unsigned long long)offset, len, (unsigned long long)ar->src->size);
        return set_last(ar, &e);
    }
    int rc = tz_source_read(ar->src, offset, buf, len, &e);
    return rc ? set_last(ar, &e) : TACOZ_OK;
}

static int readable(tacozip_archive *ar, size_t index, tacozip_error *err) {
    tz_entry *e = &ar->entries[index];
    if (e->method != 0 || (e->flags & ZIP_FLAG_ENCRYPTED))
        return tz_fail(err, TACOZ_ERR_UNSUPPORTED, "member \"%.200s\" is %s (method %u); only STORED members can be read",
                       ar->names + e->name_off, (e->flags & ZIP_FLAG_ENCRYPTED) ? "encrypted" : "compressed", e->method);
    if (!__atomic_load_n(&e->lfh_checked, __ATOMIC_ACQUIRE)) return tz_check_local(ar, index, err);
    return TACOZ_OK;
}

static int remote_read_member(tacozip_archive *ar, size_t index, uint64_t offset, void *buf, size_t len,
                              size_t *nread, tacozip_error *err);

int tacozip_read_member(tacozip_archive *ar, size_t index, uint64_t offset, void *buf, size_t len,
                        size_t *nread) {
    if (!ar || index >= ar->count || (!buf && len)) return TACOZ_ERR_PARAM;
    if (nread) *nread = 0;
    tacozip_error err;
    if (ar->src->remote) {
        int r = remote_read_member(ar, index, offset, buf, len, nread, &err);
        return r ? set_last(ar, &err) : TACOZ_OK;
    }
    int rc = readable(ar, index, &err);
    if (rc) return set_last(ar, &err);
    const tz_entry *e = &ar->entries[index];
    if (offset >= e->csize) return TACOZ_OK;
    if (len > e->csize - offset) len = (size_t)(e->csize - offset);
    rc = tz_source_read(ar->src, e->data_offset + offset, buf, len, &err);
    if (rc) return set_last(ar, &err);
    if (nread) *nread = len;
    return TACOZ_OK;
}

/* Member reads check the local header first.  A local source reads it
 * separately (cheap); a remote one would pay a request for it, so when the
 * read starts near the data the header is fetched in the same request, and
 * further in the data offset the directory proved is trusted. */
#define REMOTE_LFH_SLACK (64u * 1024)

static int remote_read_member(tacozip_archive *ar, size_t index, uint64_t offset, void *buf, size_t len,
                              size_t *nread, tacozip_error *err) {
    tz_entry *e = &ar->entries[index];
    if (e->method != 0 || (e->flags & ZIP_FLAG_ENCRYPTED)) return readable(ar, index, err);
    if (offset >= e->csize) return TACOZ_OK;
    if (len > e->csize - offset) len = (size_t)(e->csize - offset);
    uint64_t head = e->data_offset - e->header_offset; /* local header + name + extra */
    int rc;
    if (!__atomic_load_n(&e->lfh_checked, __ATOMIC_ACQUIRE) && offset <= REMOTE_LFH_SLACK &&
        head + offset <= SIZE_MAX - len) {
        size_t n = (size_t)(head + offset) + len;
        unsigned char *tmp = malloc(n);
        if (!tmp) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        rc = tz_source_read(ar->src, e->header_offset, tmp, n, err);
        if (rc == TACOZ_OK) rc = tz_check_local_bytes(ar, index, tmp, n, err);
        if (rc == TACOZ_OK) memcpy(buf, tmp + head + offset, len);
        free(tmp);
    } else {
        rc = tz_source_read(ar->src, e->data_offset + offset, buf, len, err);
    }
    if (rc == TACOZ_OK && nread) *nread = len;
    return rc;
}

int tacozip_verify_member(tacozip_archive *ar, size_t index) {
    if (!ar || index >= ar->count) return TACOZ_ERR_PARAM;
    tacozip_error err;
    int rc = readable(ar, index, &err);
    if (rc) return set_last(ar, &err);
    const tz_entry *e = &ar->entries[index];
    size_t chunk = (size_t)1 << 20;
    const unsigned char *view = ar->src->view(ar->src, e->data_offset, (size_t)e->csize);
    uint32_t crc = 0;
    if (view) {
        crc = tz_crc32(0, view, (size_t)e->csize);
    } else {
        unsigned char *buf = malloc(chunk);
        if (!buf) return set_last(ar, &(tacozip_error){TACOZ_ERR_NOMEM, "out of memory"});
        for (uint64_t off = 0; off < e->csize && rc == TACOZ_OK; off += chunk) {
            size_t n = e->csize - off < chunk ? (size_t)(e->csize - off) : chunk;
            rc = tz_source_read(ar->src, e->data_offset + off, buf, n, &err);
            if (rc == TACOZ_OK) crc = tz_crc32(crc, buf, n);
        }
        free(buf);
        if (rc) return set_last(ar, &err);
    }
    if (crc != e->crc32) {
        tz_fail(&err, TACOZ_INVALID_CRC_MEMBER, "member \"%.200s\": CRC-32 is %08x, the directory says %08x",
                ar->names + e->name_off, crc, e->crc32);
        return set_last(ar, &err);
    }
    return TACOZ_OK;
}

/* ---- many ranges at once ------------------------------------------------ */

typedef struct {
    uint64_t off, end;
    size_t first, count; /* into the sorted order */
} group;

static int cmp_range_ptr(const void *a, const void *b) {
    const tacozip_range *x = *(const tacozip_range *const *)a, *y = *(const tacozip_range *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

#define MAX_GROUP (64ull << 20)

int tacozip_read_ranges(tacozip_archive *ar, tacozip_range *ranges, size_t n, uint64_t max_gap) {
    if (!ar || (n && !ranges)) return TACOZ_ERR_PARAM;
    if (n == 0) return TACOZ_OK;
    if (max_gap == TACOZIP_DEFAULT_GAP) max_gap = 1u << 20;
    tacozip_error err;
    for (size_t i = 0; i < n; i++)
        if (ranges[i].offset > ar->src->size || ranges[i].length > ar->src->size - ranges[i].offset ||
            (!ranges[i].buf && ranges[i].length) || ranges[i].length > SIZE_MAX)
            return set_last(ar, &(tacozip_error){TACOZ_ERR_PARAM, "a range passes the end of the archive or has no buffer"});
    tacozip_range **order = malloc(n * sizeof *order);
    group *g = malloc(n * sizeof *g);
    tz_range *req = malloc(n * sizeof *req);
    if (!order || !g || !req) {
        free(order), free(g), free(req);
        return set_last(ar, &(tacozip_error){TACOZ_ERR_NOMEM, "out of memory"});
    }
    for (size_t i = 0; i < n; i++) order[i] = &ranges[i];
    qsort(order, n, sizeof *order, cmp_range_ptr);
    /* Coalesce neighbours whose gap is at most max_gap. */
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t o = order[i]->offset, e = o + order[i]->length;
        if (ng && o <= g[ng - 1].end + max_gap && e - g[ng - 1].off <= MAX_GROUP &&
            o + max_gap >= o /* no overflow */) {
            if (e > g[ng - 1].end) g[ng - 1].end = e;
            g[ng - 1].count++;
        } else {
            g[ng].off = o, g[ng].end = e, g[ng].first = i, g[ng].count = 1;
            ng++;
        }
    }
    int rc = TACOZ_OK;
    size_t nreq = 0;
    for (size_t k = 0; k < ng && rc == TACOZ_OK; k++) {
        req[nreq].offset = g[k].off;
        req[nreq].length = g[k].end - g[k].off;
        if (req[nreq].length == 0) continue; /* empty ranges need no request */
        if (g[k].count == 1) {
            req[nreq].buf = order[g[k].first]->buf; /* straight into the caller's buffer */
        } else if (!(req[nreq].buf = malloc((size_t)req[nreq].length))) {
            rc = TACOZ_ERR_NOMEM;
            err = (tacozip_error){TACOZ_ERR_NOMEM, "out of memory"};
            break;
        }
        nreq++;
    }
    if (rc == TACOZ_OK) rc = tz_source_read_many(ar->src, req, nreq, &err);
    /* scatter the coalesced groups, free their buffers */
    size_t r = 0;
    for (size_t k = 0; k < ng; k++) {
        if (g[k].end == g[k].off) continue;
        if (r >= nreq) break;
        if (g[k].count > 1 && req[r].buf) {
            if (rc == TACOZ_OK)
                for (size_t j = g[k].first; j < g[k].first + g[k].count; j++)
                    if (order[j]->length) memcpy(order[j]->buf, req[r].buf + (order[j]->offset - g[k].off),
                                                 (size_t)order[j]->length);
            free(req[r].buf);
        }
        r++;
    }
    free(order), free(g), free(req);
    return rc ? set_last(ar, &err) : TACOZ_OK;
}

int tacozip_read_members(tacozip_archive *ar, const size_t *indices, size_t n, void *const *bufs, uint64_t max_gap) {
    if (!ar || (n && (!indices || !bufs))) return TACOZ_ERR_PARAM;
    tacozip_error err;
    for (size_t i = 0; i < n; i++) {
        if (indices[i] >= ar->count) return TACOZ_ERR_PARAM;
        const tz_entry *e = &ar->entries[indices[i]];
        if (e->method != 0 || (e->flags & ZIP_FLAG_ENCRYPTED)) {
            int rc = readable(ar, indices[i], &err);
            return set_last(ar, &err), rc;
        }
    }
    /* Each member is read with its local header (one range from the header
     * to the end of the data), so the header is checked at no extra cost. */
    tacozip_range *rg = calloc(n ? n : 1, sizeof *rg);
    if (!rg) return set_last(ar, &(tacozip_error){TACOZ_ERR_NOMEM, "out of memory"});
    int rc = TACOZ_OK;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_entry *e = &ar->entries[indices[i]];
        rg[i].offset = e->header_offset;
        rg[i].length = e->data_offset + e->csize - e->header_offset;
        if (!(rg[i].buf = malloc((size_t)rg[i].length))) rc = TACOZ_ERR_NOMEM;
    }
    if (rc == TACOZ_OK) rc = tacozip_read_ranges(ar, rg, n, max_gap);
    else set_last(ar, &(tacozip_error){TACOZ_ERR_NOMEM, "out of memory"});
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_entry *e = &ar->entries[indices[i]];
        rc = tz_check_local_bytes(ar, indices[i], rg[i].buf, (size_t)rg[i].length, &err);
        if (rc) set_last(ar, &err);
        else memcpy(bufs[i], (unsigned char *)rg[i].buf + (e->data_offset - e->header_offset), (size_t)e->csize);
    }
    for (size_t i = 0; i < n; i++) free(rg[i].buf);
    free(rg);
    return rc;
}

int tacozip_remote_stats(const tacozip_archive *ar, uint64_t *requests, uint64_t *bytes) {
    if (!ar) return TACOZ_ERR_PARAM;
    tz_remote_stats st = {0, 0, 0};
    if (ar->src->stats) ar->src->stats(ar->src, &st);
    if (requests) *requests = st.requests;
    if (bytes) *bytes = st.bytes;
    return ar->src->remote ? TACOZ_OK : TACOZ_ERR_UNSUPPORTED;
}
