/* open.c - opening an archive on a source (end records and directory, or
 * TACO_INDEX first), and what an open archive tells without reading data:
 * members, names, spans, the TACO header. */
#include <stdlib.h>
#include <string.h>

#include "reader.h"

/* TACO_HEADER from the first bytes, if entry 0 is it. */
static void take_header(tacozip_archive *ar, const unsigned char *head) {
    ar->header_state = tz_header_check(head, &ar->header) == TACOZ_OK ? TZ_HEADER_PRESENT : TZ_HEADER_ABSENT;
}

static int lists_header_first(const tacozip_archive *ar) {
    const tz_dir *d = &ar->dir;
    if (!d->count) return 0;
    const tz_entry *e = &d->entries[0];
    return e->header_offset == 0 && e->name_len == TACO_HEADER_NAME_LEN &&
           memcmp(tz_dir_name(d, 0), TACO_HEADER_NAME, TACO_HEADER_NAME_LEN) == 0 &&
           ar->src->size >= TACO_HEADER_SIZE;
}

/* Index-first: one read of the first 16 KiB.  TACOZ_OK (member table from
 * TACO_INDEX), 1 (no index: "head" still gives the header), or an error. */
static int open_index_first(tacozip_archive *ar, unsigned char *head, size_t *got, tacozip_error *err) {
    int rc = tz_source_head(ar->src, TACO_INDEX_PROBE, head, got, err);
    if (rc) return rc;
    if (*got < TACO_HEADER_SIZE || tz_header_check(head, NULL) != TACOZ_OK) return 1;
    rc = tz_index_open(ar->src, head, *got, &ar->dir, err);
    if (rc == TACOZ_OK) {
        ar->from_index = 1;
        take_header(ar, head);
    }
    return rc;
}

static int open_directory(tacozip_archive *ar, unsigned flags, const unsigned char *head, size_t head_len,
                          tacozip_error *err) {
    tz_end_info end;
    tz_tail tail = {NULL, 0, 0};
    int rc = tz_find_end(ar->src, &end, &tail, err);
    if (rc == TACOZ_OK) rc = tz_dir_read(&ar->dir, ar->src, &end, &tail, err);
    if (rc == TACOZ_OK) rc = tz_dir_resolve_offsets(&ar->dir, ar->src, flags & TACOZIP_OPEN_VERIFY_LOCAL, err);
    if (rc == TACOZ_OK && lists_header_first(ar)) {
        /* The header bytes: already read (index-first probe, or the tail of
         * a small archive); read now from a source without round trips;
         * from a remote one only when asked, so that listing costs no
         * request. */
        unsigned char b[TACO_HEADER_SIZE];
        if (head && head_len >= TACO_HEADER_SIZE) take_header(ar, head);
        else if (tail.offset == 0 && tail.len >= TACO_HEADER_SIZE) take_header(ar, tail.buf);
        else if (!ar->src->round_trips && tz_source_read(ar->src, 0, b, sizeof b, NULL) == TACOZ_OK) take_header(ar, b);
        else ar->header_state = TZ_HEADER_UNREAD;
    }
    free(tail.buf);
    return rc;
}

int tz_archive_open(tacozip_source *src, unsigned flags, tacozip_archive **out, tacozip_error *err) {
    tacozip_archive *ar = calloc(1, sizeof *ar);
    if (!ar) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    ar->src = tz_source_ref(src);
    ar->check_crc = !(flags & TACOZIP_OPEN_NO_CRC);
    pthread_mutex_init(&ar->lock, NULL);
    unsigned char *head = NULL;
    size_t got = 0;
    int rc = 1;
    if (flags & TACOZIP_OPEN_INDEX_FIRST) {
        if (!(head = malloc(TACO_INDEX_PROBE))) rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        else rc = open_index_first(ar, head, &got, err);
        if (rc == 1) tz_dir_free(&ar->dir); /* no index: read the directory */
    }
    if (rc == 1) rc = open_directory(ar, flags, head, got, err);
    free(head);
    if (rc) {
        tacozip_close(ar);
        return rc;
    }
    *out = ar;
    return TACOZ_OK;
}

int tacozip_open_source(tacozip_source *src, unsigned flags, tacozip_archive **out, tacozip_error *err) {
    if (!src || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    int rc = tz_archive_open(src, flags, out, err);
    return rc ? tz_err_prefix(err, rc, src->display) : TACOZ_OK;
}

int tacozip_open_remote(const char *path, unsigned flags, const tacozip_remote_options *remote,
                        tacozip_archive **out, tacozip_error *err) {
    if (!path || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    tacozip_source *src = NULL;
    int rc = tacozip_source_open(path, remote, &src, err);
    if (rc) return rc;
    rc = tacozip_open_source(src, flags, out, err);
    tacozip_source_close(src);
    return rc;
}

int tacozip_open_ex(const char *path, unsigned flags, tacozip_archive **out, tacozip_error *err) {
    return tacozip_open_remote(path, flags, NULL, out, err);
}

int tacozip_open(const char *path, tacozip_archive **out) { return tacozip_open_ex(path, 0, out, NULL); }

int tacozip_open_memory(const void *data, size_t len, unsigned flags, tacozip_archive **out, tacozip_error *err) {
    if (!data || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    *out = NULL;
    tacozip_source *src = NULL;
    int rc = tacozip_source_memory(data, len, &src, err);
    if (rc) return rc;
    rc = tacozip_open_source(src, flags, out, err);
    tacozip_source_close(src);
    return rc;
}

void tacozip_close(tacozip_archive *ar) {
    if (!ar) return;
    tz_source_unref(ar->src);
    pthread_mutex_destroy(&ar->lock);
    tz_dir_free(&ar->dir);
    free(ar);
}

tacozip_source *tacozip_archive_source(const tacozip_archive *ar) { return ar ? ar->src : NULL; }
size_t tacozip_count(const tacozip_archive *ar) { return ar ? ar->dir.count : 0; }
uint64_t tacozip_archive_size(const tacozip_archive *ar) { return ar ? ar->src->size : 0; }
int tacozip_archive_format(const tacozip_archive *ar) {
    return !ar ? TACOZIP_FORMAT_UNKNOWN : ar->dir.end.zip64 ? TACOZIP_FORMAT_ZIP64 : TACOZIP_FORMAT_ZIP32;
}
void tacozip_directory_range(const tacozip_archive *ar, uint64_t *offset, uint64_t *size) {
    if (offset) *offset = ar ? ar->dir.end.cd_offset : 0;
    if (size) *size = ar ? ar->dir.end.cd_size : 0;
}

int tacozip_archive_header_ex(const tacozip_archive *car, taco_meta_array_t *out, tacozip_error *err) {
    if (!car || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    /* A remote archive reads the header on first use (one request), under
     * the lock so that it is read once.  Logically const. */
    tacozip_archive *ar = (tacozip_archive *)car;
    pthread_mutex_lock(&ar->lock);
    int rc = TACOZ_OK;
    if (ar->header_state == TZ_HEADER_UNREAD) {
        unsigned char b[TACO_HEADER_SIZE];
        rc = tz_source_read(ar->src, 0, b, sizeof b, err);
        if (rc == TACOZ_OK) take_header(ar, b);
    }
    if (rc == TACOZ_OK && ar->header_state != TZ_HEADER_PRESENT)
        rc = tz_fail(err, TACOZ_ERR_INVALID_HEADER, "the archive has no TACO_HEADER");
    if (rc == TACOZ_OK) *out = ar->header;
    pthread_mutex_unlock(&ar->lock);
    return tz_ar_fail(ar, err, rc);
}

int tacozip_archive_header(const tacozip_archive *ar, taco_meta_array_t *out) {
    return tacozip_archive_header_ex(ar, out, NULL);
}

int tacozip_member_at(const tacozip_archive *ar, size_t index, tacozip_member *out) {
    if (!ar || !out || index >= ar->dir.count) return TACOZ_ERR_PARAM;
    if (out->struct_size != 0 && out->struct_size < sizeof(tacozip_member)) return TACOZ_ERR_PARAM;
    const tz_entry *e = &ar->dir.entries[index];
    tacozip_member m = {.struct_size = out->struct_size,
                        .name = tz_dir_name(&ar->dir, index),
                        .name_len = e->name_len,
                        .header_offset = e->header_offset,
                        .data_offset = e->data_offset,
                        .size = e->csize,
                        .uncompressed_size = e->usize,
                        .crc32 = e->crc32,
                        .method = e->method,
                        .flags = e->flags,
                        .dos_datetime = e->dos_datetime,
                        .external_attr = e->external_attr};
    memcpy(out, &m, sizeof m); /* the 1.1 fields; later ones are not ours to touch */
    return TACOZ_OK;
}

int tacozip_find(const tacozip_archive *ar, const char *name, size_t name_len, size_t *index) {
    if (!ar || !name) return TACOZ_ERR_PARAM;
    if (name_len == (size_t)-1) name_len = strlen(name);
    return tz_names_find(&ar->dir.table, name, name_len, index);
}

int tacozip_span(const tacozip_archive *ar, const size_t *indices, size_t n, unsigned flags, uint64_t *offset,
                 uint64_t *length) {
    if (!ar || !indices || n == 0 || !offset || !length) return TACOZ_ERR_PARAM;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t k = 0; k < n; k++) {
        if (indices[k] >= ar->dir.count) return TACOZ_ERR_PARAM;
        const tz_entry *e = &ar->dir.entries[indices[k]];
        uint64_t start = (flags & TACOZIP_SPAN_DATA_ONLY) ? e->data_offset : e->header_offset;
        if (start < lo) lo = start;
        if (e->data_offset + e->csize > hi) hi = e->data_offset + e->csize;
    }
    *offset = lo;
    *length = hi - lo;
    return TACOZ_OK;
}
