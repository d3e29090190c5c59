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
    int rc = tz_source_file(path, &src, err);
    if (rc) return rc;
    rc = tz_open_source(src, flags, out, err);
    if (rc && err) { /* prefix the path for context */
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

int tacozip_archive_header(const tacozip_archive *ar, taco_meta_array_t *out) {
    if (!ar || !out) return TACOZ_ERR_PARAM;
    if (!ar->has_header) return TACOZ_ERR_INVALID_HEADER;
    *out = ar->header;
    return TACOZ_OK;
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

int tacozip_read_member(tacozip_archive *ar, size_t index, uint64_t offset, void *buf, size_t len,
                        size_t *nread) {
    if (!ar || index >= ar->count || (!buf && len)) return TACOZ_ERR_PARAM;
    if (nread) *nread = 0;
    tacozip_error err;
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
