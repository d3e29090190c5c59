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
    memset(src->cache, 0, sizeof src->cache);
    pthread_mutex_init(&src->cache_lock, NULL);
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
    for (int i = 0; i < TZ_CACHE_SPANS; i++) free(src->cache[i].buf);
    pthread_mutex_destroy(&src->cache_lock);
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

/* ---- the spans already read ------------------------------------------- */

/* Keep a copy of bytes just read as span "slot" (a source with round trips
 * only; a copy that cannot be made is simply not kept). */
static void cache_put(tacozip_source *src, int slot, uint64_t off, const unsigned char *buf, size_t len) {
    if (!src->round_trips || len == 0 || len > TZ_CACHE_SPAN_MAX) return;
    pthread_mutex_lock(&src->cache_lock);
    tz_span *sp = &src->cache[slot];
    if (len > sp->len) {
        unsigned char *copy = malloc(len);
        if (copy) {
            memcpy(copy, buf, len);
            free(sp->buf);
            sp->buf = copy, sp->off = off, sp->len = len;
        }
    }
    pthread_mutex_unlock(&src->cache_lock);
}

/* 1 if [off, off+len) lies inside a kept span (copied to buf), else 0. */
static int cache_get(tacozip_source *src, uint64_t off, void *buf, size_t len) {
    if (!src->round_trips || len == 0) return 0;
    int hit = 0;
    pthread_mutex_lock(&src->cache_lock);
    for (int i = 0; i < TZ_CACHE_SPANS && !hit; i++) {
        const tz_span *sp = &src->cache[i];
        if (sp->buf && off >= sp->off && off - sp->off <= sp->len && len <= sp->len - (off - sp->off)) {
            memcpy(buf, sp->buf + (off - sp->off), len);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&src->cache_lock);
    return hit;
}

/* Serve from the kept spans what they hold of the start or the end of
 * [*off, *off + *len), so that only the rest is read (a Parquet footer
 * that begins before the kept tail costs only its first bytes): the range
 * shrinks to what is left.  A span strictly inside the range is not used
 * (that would split one read into two).  Returns 1 if nothing is left. */
static int cache_trim(tacozip_source *src, uint64_t *off, unsigned char **buf, size_t *len) {
    if (!src->round_trips || *len == 0) return *len == 0;
    pthread_mutex_lock(&src->cache_lock);
    /* two passes: a prefix from one span may leave a suffix for the other */
    for (int pass = 0; pass < 2 && *len; pass++) {
        for (int i = 0; i < TZ_CACHE_SPANS && *len; i++) {
            const tz_span *sp = &src->cache[i];
            if (!sp->buf) continue;
            uint64_t s = sp->off, e = sp->off + sp->len, o = *off, end = *off + *len;
            if (o >= s && o < e) { /* the start (or all) of the range is kept */
                size_t k = (size_t)((end < e ? end : e) - o);
                memcpy(*buf, sp->buf + (o - s), k);
                *off += k, *buf += k, *len -= k;
            } else if (o < s && end > s && end <= e) { /* its end is kept */
                size_t k = (size_t)(end - s);
                memcpy(*buf + (s - o), sp->buf, k);
                *len -= k;
            }
        }
    }
    pthread_mutex_unlock(&src->cache_lock);
    return *len == 0;
}

static int preload_tail(tacozip_source *src, uint64_t object_size, const void *data, size_t len,
                        tacozip_error *err) {
    if (len == 0 || len > object_size || object_size == TZ_SIZE_UNKNOWN)
        return tz_fail(err, TACOZ_ERR_PARAM, "preloaded tail of %zu bytes for an object of %llu bytes", len,
                       (unsigned long long)object_size);
    if (src->size != TZ_SIZE_UNKNOWN && src->size != object_size)
        return tz_fail(err, TACOZ_ERR_CHANGED, "the object is %llu bytes, the preloaded tail says %llu",
                       (unsigned long long)src->size, (unsigned long long)object_size);
    if (!src->round_trips) return TACOZ_OK; /* reading it again costs nothing */
    unsigned char *copy = malloc(len);
    if (!copy) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    memcpy(copy, data, len);
    pthread_mutex_lock(&src->cache_lock);
    tz_span *sp = &src->cache[0];
    free(sp->buf);
    sp->buf = copy, sp->off = object_size - len, sp->len = len;
    src->size = object_size;
    pthread_mutex_unlock(&src->cache_lock);
    return TACOZ_OK;
}

int tacozip_source_preload_tail(tacozip_source *src, uint64_t object_size, const void *data, size_t len,
                                tacozip_error *err) {
    if (!src || (!data && len)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    int rc = preload_tail(src, object_size, data, len, err);
    return rc ? tz_err_prefix(err, rc, src->display) : TACOZ_OK;
}

/* ---- helpers ----------------------------------------------------------- */

int tz_source_read(tacozip_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    if (len == 0) return TACOZ_OK;
    if (src->size != TZ_SIZE_UNKNOWN && (off > src->size || len > src->size - off))
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "range %llu+%zu passes the end of the archive (%llu bytes)",
                       (unsigned long long)off, len, (unsigned long long)src->size);
    unsigned char *p = buf;
    if (cache_trim(src, &off, &p, &len)) return TACOZ_OK;
    return src->ops->read_at(src, off, p, len, err);
}

int tz_source_tail(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                   tacozip_error *err) {
    int rc;
    if (src->size != TZ_SIZE_UNKNOWN) {
        size_t n = src->size < want ? (size_t)src->size : want;
        if (cache_get(src, src->size - n, buf, n)) { /* read already (the same source opened again) */
            *got = n;
            *tail_off = src->size - n;
            return TACOZ_OK;
        }
        /* a shorter tail handed in by the caller: the end records are in it */
        pthread_mutex_lock(&src->cache_lock);
        const tz_span *sp = &src->cache[0];
        int hit = sp->buf && sp->len < n && sp->off + sp->len == src->size;
        if (hit) {
            memcpy(buf, sp->buf, sp->len);
            *got = sp->len;
            *tail_off = sp->off;
        }
        pthread_mutex_unlock(&src->cache_lock);
        if (hit) return TACOZ_OK;
    }
    if (src->ops->read_tail) {
        rc = src->ops->read_tail(src, want, buf, got, tail_off, err);
    } else {
        size_t n = src->size < want ? (size_t)src->size : want;
        *got = n;
        *tail_off = src->size - n;
        rc = tz_source_read(src, src->size - n, buf, n, err);
    }
    if (rc == TACOZ_OK) cache_put(src, 0, *tail_off, buf, *got);
    return rc;
}

int tz_source_head(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err) {
    int rc;
    if (src->size != TZ_SIZE_UNKNOWN) {
        size_t n = src->size < want ? (size_t)src->size : want;
        if (cache_get(src, 0, buf, n)) {
            *got = n;
            return TACOZ_OK;
        }
    }
    if (src->ops->read_head) {
        rc = src->ops->read_head(src, want, buf, got, err);
    } else {
        size_t n = src->size < want ? (size_t)src->size : want;
        *got = n;
        rc = tz_source_read(src, 0, buf, n, err);
    }
    if (rc == TACOZ_OK) cache_put(src, 1, 0, buf, *got);
    return rc;
}

int tz_source_read_many(tacozip_source *src, tacozip_range *ranges, size_t n, tacozip_error *err) {
    for (size_t i = 0; i < n; i++)
        if (src->size != TZ_SIZE_UNKNOWN &&
            (ranges[i].offset > src->size || ranges[i].length > src->size - ranges[i].offset))
            return tz_fail(err, TACOZ_ERR_PARAM, "range %llu+%llu passes the end of the archive (%llu bytes)",
                           (unsigned long long)ranges[i].offset, (unsigned long long)ranges[i].length,
                           (unsigned long long)src->size);
    /* What kept spans hold comes from memory; the rest of each range is read. */
    tacozip_range *rest = NULL;
    size_t nrest = n;
    if (src->round_trips && n > 0) {
        if (!(rest = malloc(n * sizeof *rest))) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        nrest = 0;
        for (size_t i = 0; i < n; i++) {
            tacozip_range r = ranges[i];
            size_t len = (size_t)r.length;
            unsigned char *p = r.buf;
            if (len == 0 || cache_trim(src, &r.offset, &p, &len)) continue;
            r.buf = p, r.length = len;
            rest[nrest++] = r;
        }
        ranges = rest;
    }
    int rc = TACOZ_OK;
    if (nrest > 1 && src->ops->read_many) {
        rc = src->ops->read_many(src, ranges, nrest, err);
    } else {
        for (size_t i = 0; i < nrest && rc == TACOZ_OK; i++)
            rc = tz_source_read(src, ranges[i].offset, ranges[i].buf, (size_t)ranges[i].length, err);
    }
    free(rest);
    return rc;
}

/* ---- many ranges at once, coalesced ------------------------------------ */

typedef struct {
    uint64_t off, end;
    size_t first, count; /* into the sorted order */
} group;

static int cmp_range_ptr(const void *a, const void *b) {
    const tacozip_range *x = *(const tacozip_range *const *)a, *y = *(const tacozip_range *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

#define MAX_GROUP (64ull << 20)

int tz_source_read_ranges(tacozip_source *src, tacozip_range *ranges, size_t n, uint64_t max_gap,
                          tacozip_error *err) {
    if (n == 0) return TACOZ_OK;
    if (max_gap == TACOZIP_DEFAULT_GAP) max_gap = src->coalesce_gap;
    for (size_t i = 0; i < n; i++)
        if (ranges[i].offset > src->size || ranges[i].length > src->size - ranges[i].offset ||
            (!ranges[i].buf && ranges[i].length) || ranges[i].length > SIZE_MAX)
            return tz_fail(err, TACOZ_ERR_PARAM, "range %zu (%llu+%llu) passes the end of the archive or has no buffer",
                           i, (unsigned long long)ranges[i].offset, (unsigned long long)ranges[i].length);
    tacozip_range **order = malloc(n * sizeof *order);
    group *g = malloc(n * sizeof *g);
    tacozip_range *req = malloc(n * sizeof *req);
    int rc = TACOZ_OK;
    size_t ng = 0, nreq = 0;
    if (!order || !g || !req) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) order[i] = &ranges[i];
    qsort(order, n, sizeof *order, cmp_range_ptr);
    /* Coalesce neighbours whose gap is at most max_gap. */
    for (size_t i = 0; i < n; i++) {
        uint64_t o = order[i]->offset, e = o + order[i]->length;
        if (ng && (o <= g[ng - 1].end || o - g[ng - 1].end <= max_gap) && e - g[ng - 1].off <= MAX_GROUP) {
            if (e > g[ng - 1].end) g[ng - 1].end = e;
            g[ng - 1].count++;
        } else {
            g[ng].off = o, g[ng].end = e, g[ng].first = i, g[ng].count = 1;
            ng++;
        }
    }
    for (size_t k = 0; k < ng; k++) {
        if (g[k].end == g[k].off) continue; /* empty ranges need no request */
        req[nreq].offset = g[k].off;
        req[nreq].length = g[k].end - g[k].off;
        if (g[k].count == 1) {
            req[nreq].buf = order[g[k].first]->buf; /* straight into the caller's buffer */
        } else if (!(req[nreq].buf = malloc((size_t)req[nreq].length))) {
            rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        nreq++;
    }
    rc = tz_source_read_many(src, req, nreq, err);
    if (rc) goto cleanup;
    /* scatter the coalesced groups */
    for (size_t k = 0, r = 0; k < ng; k++) {
        if (g[k].end == g[k].off) continue;
        if (g[k].count > 1)
            for (size_t j = g[k].first; j < g[k].first + g[k].count; j++)
                if (order[j]->length)
                    memcpy(order[j]->buf, (unsigned char *)req[r].buf + (order[j]->offset - g[k].off),
                           (size_t)order[j]->length);
        r++;
    }
cleanup:
    /* free the coalesced groups' buffers */
    for (size_t k = 0, r = 0; req && k < ng && r < nreq; k++) {
        if (g[k].end == g[k].off) continue;
        if (g[k].count > 1) free(req[r].buf);
        r++;
    }
    free(order), free(g), free(req);
    return rc;
}

int tacozip_source_read_ranges(tacozip_source *src, tacozip_range *ranges, size_t n, uint64_t max_gap,
                               tacozip_error *err) {
    if (!src || (n && !ranges)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    int rc = tz_source_read_ranges(src, ranges, n, max_gap, err);
    return rc ? tz_err_prefix(err, rc, src->display) : TACOZ_OK;
}

int tacozip_source_stats(const tacozip_source *src, uint64_t *requests, uint64_t *bytes) {
    if (requests) *requests = 0;
    if (bytes) *bytes = 0;
    if (!src) return TACOZ_ERR_PARAM;
    if (!src->ops->stats) return TACOZ_ERR_NOT_REMOTE;
    tz_source_stats st = {0, 0, 0};
    src->ops->stats((tacozip_source *)src, &st);
    if (requests) *requests = st.requests;
    if (bytes) *bytes = st.bytes;
    return TACOZ_OK;
}

const unsigned char *tz_source_view(tacozip_source *src, uint64_t off, size_t len) {
    return src->ops->view ? src->ops->view(src, off, len) : NULL;
}
