/* source.c - the public byte-source API, reference counting, and the read
 * helpers the layers above use. */
#include <stdlib.h>
#include <string.h>

#include "source.h"

int tz_source_init(tacozip_source *src, const tz_source_ops *ops, const char *name, tacozip_error *err) {
    src->ops = ops;
    src->size = TZ_SIZE_UNKNOWN;
    src->coalesce_gap = TZ_DEFAULT_GAP;
    src->refs = 1;
    if (!(src->display = tz_display_dup(name))) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    return TACOZ_OK;
}

tacozip_source *tz_source_ref(tacozip_source *src) {
    __atomic_add_fetch(&src->refs, 1, __ATOMIC_RELAXED);
    return src;
}

void tz_source_unref(tacozip_source *src) {
    if (!src || __atomic_sub_fetch(&src->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    char *display = src->display;
    src->ops->destroy(src);
    free(display);
}

/* ---- public ------------------------------------------------------------ */

int tacozip_source_open(const char *path, const tacozip_remote_options *remote, tacozip_source **out,
                        tacozip_error *err) {
    if (!path || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    tz_scheme scheme = tz_url_scheme(path);
    int rc = scheme == TZ_LOCAL ? tz_source_file(path, out, err) : tz_source_http(path, scheme, remote, out, err);
    if (rc) {
        char shown[512];
        tz_display_name(path, shown, sizeof shown);
        return tz_err_prefix(err, rc, shown);
    }
    return TACOZ_OK;
}

int tacozip_source_memory(const void *data, size_t len, tacozip_source **out, tacozip_error *err) {
    if ((!data && len) || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    return tz_source_mem(data ? data : "", len, out, err);
}

int tacozip_source_new(const tacozip_source_callbacks *cb, void *user, const char *name, tacozip_source **out,
                       tacozip_error *err) {
    if (!cb || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    int rc = tz_source_callbacks(cb, user, name, out, err);
    return rc ? tz_err_prefix(err, rc, name ? name : "<callbacks>") : TACOZ_OK;
}

void tacozip_source_close(tacozip_source *src) { tz_source_unref(src); }

size_t tacozip_source_identity(tacozip_source *src, char *buf, size_t cap) {
    if (!buf || cap == 0) return 0;
    buf[0] = '\0';
    if (!src || !src->ops->identity) return 0;
    return src->ops->identity(src, buf, cap);
}

int tacozip_source_read(tacozip_source *src, uint64_t offset, void *buf, size_t len, tacozip_error *err) {
    if (!src || (!buf && len)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    int rc = tz_source_read(src, offset, buf, len, err);
    return rc ? tz_err_prefix(err, rc, src->display) : TACOZ_OK;
}

/* ---- helpers ----------------------------------------------------------- */

int tz_source_read(tacozip_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    if (len == 0) return TACOZ_OK;
    if (src->size != TZ_SIZE_UNKNOWN && (off > src->size || len > src->size - off))
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "range %llu+%zu passes the end of the archive (%llu bytes)",
                       (unsigned long long)off, len, (unsigned long long)src->size);
    return src->ops->read_at(src, off, buf, len, err);
}

int tz_source_tail(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                   tacozip_error *err) {
    if (src->ops->read_tail) return src->ops->read_tail(src, want, buf, got, tail_off, err);
    size_t n = src->size < want ? (size_t)src->size : want;
    *got = n;
    *tail_off = src->size - n;
    return tz_source_read(src, src->size - n, buf, n, err);
}

int tz_source_head(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err) {
    if (src->ops->read_head) return src->ops->read_head(src, want, buf, got, err);
    size_t n = src->size < want ? (size_t)src->size : want;
    *got = n;
    return tz_source_read(src, 0, buf, n, err);
}

int tz_source_read_many(tacozip_source *src, tacozip_range *ranges, size_t n, tacozip_error *err) {
    for (size_t i = 0; i < n; i++)
        if (src->size != TZ_SIZE_UNKNOWN &&
            (ranges[i].offset > src->size || ranges[i].length > src->size - ranges[i].offset))
            return tz_fail(err, TACOZ_ERR_PARAM, "range %llu+%llu passes the end of the archive (%llu bytes)",
                           (unsigned long long)ranges[i].offset, (unsigned long long)ranges[i].length,
                           (unsigned long long)src->size);
    if (n > 1 && src->ops->read_many) return src->ops->read_many(src, ranges, n, err);
    for (size_t i = 0; i < n; i++) {
        int rc = tz_source_read(src, ranges[i].offset, ranges[i].buf, (size_t)ranges[i].length, err);
        if (rc) return rc;
    }
    return TACOZ_OK;
}

const unsigned char *tz_source_view(tacozip_source *src, uint64_t off, size_t len) {
    return src->ops->view ? src->ops->view(src, off, len) : NULL;
}
