/* plan.c - the layout an archive will have, and header entries planned by
 * name (data of a member, span of members or of a prefix, the directory)
 * resolved against it: tacozip_plan() computes both without writing; the
 * writers resolve the same entries against what they wrote. */
#include <stdlib.h>
#include <string.h>

#include "writer.h"

int tz_check_member_name(const char *name, size_t nlen, tacozip_error *err) {
    if (nlen > ZIP16_MAX)
        return tz_fail(err, TACOZ_ERR_PARAM, "member name of %zu bytes is longer than 65535", nlen);
    if (!tz_name_is_safe(name, nlen) || name[nlen - 1] == '/')
        return tz_fail(err, TACOZ_ERR_PARAM,
                       "member name \"%.200s\" is not a safe relative path (empty, absolute, '.', '..', '\\' or trailing '/')",
                       name);
    if ((nlen == TACO_HEADER_NAME_LEN && memcmp(name, TACO_HEADER_NAME, nlen) == 0) ||
        (nlen == TACO_INDEX_NAME_LEN && memcmp(name, TACO_INDEX_NAME, nlen) == 0))
        return tz_fail(err, TACOZ_ERR_EXISTS, "member name %s is reserved", name);
    return TACOZ_OK;
}

void tz_entries_free(tz_planned_entry *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        for (size_t k = 0; e[i].names && k < e[i].n_names; k++) free(e[i].names[k]);
        free(e[i].names);
    }
    free(e);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int tz_entries_copy(const tacozip_entry_plan *in, size_t n, tz_planned_entry **out, tacozip_error *err) {
    *out = NULL;
    if (n > TACO_HEADER_MAX_ENTRIES)
        return tz_fail(err, TACOZ_ERR_PARAM, "%zu header entries given, at most %d fit", n, TACO_HEADER_MAX_ENTRIES);
    if (n && !in) return tz_fail(err, TACOZ_ERR_PARAM, "NULL entries");
    tz_planned_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = TACOZ_OK;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tacozip_entry_plan *p = &in[i];
        if (p->struct_size && p->struct_size < sizeof *p) {
            rc = tz_check_struct_size(p->struct_size, sizeof *p, "tacozip_entry_plan", err);
            break;
        }
        e[i].kind = p->kind;
        switch (p->kind) {
        case TACOZIP_ENTRY_RANGE:
            e[i].offset = p->offset, e[i].length = p->length;
            break;
        case TACOZIP_ENTRY_DATA:
        case TACOZIP_ENTRY_PREFIX:
            if (!p->name) {
                rc = tz_fail(err, TACOZ_ERR_PARAM, "header entry %zu: no %s given", i,
                             p->kind == TACOZIP_ENTRY_DATA ? "member name" : "prefix");
            } else if (!(e[i].name = dup_str(p->name))) {
                rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            }
            break;
        case TACOZIP_ENTRY_MEMBERS:
            if (!p->names || p->n_names == 0) {
                rc = tz_fail(err, TACOZ_ERR_PARAM, "header entry %zu: a span of members needs at least one name", i);
                break;
            }
            if (!(e[i].names = calloc(p->n_names, sizeof *e[i].names))) {
                rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
                break;
            }
            e[i].n_names = p->n_names;
            for (size_t k = 0; k < p->n_names && rc == TACOZ_OK; k++) {
                if (!p->names[k]) rc = tz_fail(err, TACOZ_ERR_PARAM, "header entry %zu: member name %zu is NULL", i, k);
                else if (!(e[i].names[k] = dup_str(p->names[k]))) rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            }
            break;
        case TACOZIP_ENTRY_DIRECTORY:
            break;
        default:
            rc = tz_fail(err, TACOZ_ERR_PARAM, "header entry %zu: unknown kind %d", i, p->kind);
        }
    }
    if (rc) {
        tz_entries_free(e, n);
        return rc;
    }
    *out = e;
    return TACOZ_OK;
}

static const char *placed_name(const void *ctx, size_t i, size_t *len) {
    const tz_placed *p = ctx;
    *len = p[i].nlen;
    return p[i].name;
}

/* The member called "name", by the table. */
static int lookup(const tz_name_table *t, const tz_placed *m, const char *name, const tz_placed **out,
                  size_t entry, tacozip_error *err) {
    size_t i;
    if (tz_names_find(t, name, strlen(name), &i) != TACOZ_OK)
        return tz_fail(err, TACOZ_ERR_NOT_FOUND, "header entry %zu names \"%.200s\", which is not a member", entry,
                       name);
    *out = &m[i];
    return TACOZ_OK;
}

int tz_entries_resolve(const tz_planned_entry *e, size_t n, const tz_placed *m, size_t count, const tz_name_table *table,
                       uint64_t dir_off, uint64_t end, taco_meta_array_t *out, tacozip_error *err) {
    tz_name_table own = {0};
    int rc = TACOZ_OK;
    memset(out, 0, sizeof *out);
    if (n == 0) { /* the default: one (0,0) */
        out->count = 1;
        return TACOZ_OK;
    }
    int need_names = 0;
    for (size_t i = 0; i < n; i++) need_names |= e[i].kind == TACOZIP_ENTRY_DATA || e[i].kind == TACOZIP_ENTRY_MEMBERS;
    if (need_names && !table) {
        if ((rc = tz_names_init(&own, count, m, placed_name, err))) return rc;
        for (size_t i = 0; i < count; i++) tz_names_insert(&own, i, NULL);
        table = &own;
    }
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        const tz_placed *p = NULL;
        uint64_t lo = UINT64_MAX, hi = 0;
        switch (e[i].kind) {
        case TACOZIP_ENTRY_RANGE:
            lo = e[i].offset, hi = e[i].offset + e[i].length;
            break;
        case TACOZIP_ENTRY_DATA:
            if ((rc = lookup(table, m, e[i].name, &p, i, err)) == TACOZ_OK) lo = p->data, hi = p->data + p->size;
            break;
        case TACOZIP_ENTRY_MEMBERS:
            for (size_t k = 0; k < e[i].n_names && rc == TACOZ_OK; k++)
                if ((rc = lookup(table, m, e[i].names[k], &p, i, err)) == TACOZ_OK) {
                    if (p->lho < lo) lo = p->lho;
                    if (p->data + p->size > hi) hi = p->data + p->size;
                }
            break;
        case TACOZIP_ENTRY_PREFIX: {
            size_t plen = strlen(e[i].name);
            for (size_t k = 0; k < count; k++)
                if (m[k].nlen >= plen && memcmp(m[k].name, e[i].name, plen) == 0) {
                    if (m[k].lho < lo) lo = m[k].lho;
                    if (m[k].data + m[k].size > hi) hi = m[k].data + m[k].size;
                }
            if (lo == UINT64_MAX)
                rc = tz_fail(err, TACOZ_ERR_NOT_FOUND, "header entry %zu: no member name starts with \"%.200s\"", i,
                             e[i].name);
            break;
        }
        case TACOZIP_ENTRY_DIRECTORY:
            lo = dir_off, hi = end;
            break;
        }
        if (rc == TACOZ_OK) out->entries[i].offset = lo, out->entries[i].length = hi - lo;
    }
    if (rc == TACOZ_OK) out->count = (uint8_t)n;
    tz_names_free(&own);
    return rc;
}

/* The size of one directory record. */
static size_t record_len(const char *name, size_t nlen, uint64_t size, uint64_t lho) {
    tz_cdh h = {.size = size, .header_offset = lho, .name = name, .name_len = (uint16_t)nlen};
    return tz_cdh_len(&h);
}

int tacozip_plan(const char *const *names, const uint64_t *sizes, size_t n, const tacozip_entry_plan *entries,
                 size_t n_entries, const tacozip_write_options *opts, uint64_t *header_offsets,
                 uint64_t *data_offsets, uint64_t *directory_offset, taco_meta_array_t *entries_out,
                 tacozip_error *err) {
    return tz_plan_layout(names, sizes, n, entries, n_entries, opts, header_offsets, data_offsets, directory_offset,
                          NULL, entries_out, err);
}

int tz_plan_layout(const char *const *names, const uint64_t *sizes, size_t n, const tacozip_entry_plan *entries,
                   size_t n_entries, const tacozip_write_options *opts, uint64_t *header_offsets,
                   uint64_t *data_offsets, uint64_t *directory_offset, uint64_t *archive_size,
                   taco_meta_array_t *entries_out, tacozip_error *err) {
    static const tacozip_write_options defaults;
    if (!opts) opts = &defaults;
    if ((n && (!names || !sizes)) || !entries_out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL names, sizes or output");
    int rc = tz_check_write_options(opts, err);
    if (rc) return rc;
    tz_planned_entry *e = NULL;
    tz_placed *m = calloc(n ? n : 1, sizeof *m);
    tz_member_plan *plan = calloc(n ? n : 1, sizeof *plan);
    uint32_t *extras = calloc(n ? n : 1, sizeof *extras);
    unsigned char *blob = NULL;
    tz_name_table t = {0};
    if (!m || !plan || !extras) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = tz_entries_copy(entries, n_entries, &e, err))) goto cleanup;
    if ((rc = tz_names_init(&t, n, m, placed_name, err))) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) {
            rc = tz_fail(err, TACOZ_ERR_PARAM, "member name %zu is NULL", i);
            goto cleanup;
        }
        m[i].name = names[i], m[i].nlen = strlen(names[i]), m[i].size = sizes[i];
        plan[i].name = names[i], plan[i].nlen = m[i].nlen, plan[i].size = sizes[i];
        if ((rc = tz_check_member_name(m[i].name, m[i].nlen, err))) goto cleanup;
        if (tz_names_insert(&t, i, NULL) != TACOZ_OK) {
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "member name \"%.200s\" given twice", names[i]);
            goto cleanup;
        }
    }
    uint64_t pos = TACO_HEADER_SIZE, cd = record_len(TACO_HEADER_NAME, TACO_HEADER_NAME_LEN, TACO_HEADER_PAYLOAD_SIZE, 0);
    size_t entries_n = n + 1;
    if (opts->index) {
        size_t blob_len, crc_off, ipad;
        if ((rc = tz_index_layout(plan, n, opts->alignment, pos, &blob, &blob_len, &crc_off, &ipad, extras, err)))
            goto cleanup;
        cd += record_len(TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, blob_len, pos);
        pos += ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN + ipad + blob_len;
        entries_n++;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t x = opts->index ? extras[i] : tz_member_extra(opts->alignment, sizes[i], m[i].nlen, pos);
        m[i].lho = pos;
        m[i].data = pos + ZIP_LFH_SIZE + m[i].nlen + x;
        pos = m[i].data + sizes[i];
        cd += record_len(m[i].name, m[i].nlen, sizes[i], m[i].lho);
        if (header_offsets) header_offsets[i] = m[i].lho;
        if (data_offsets) data_offsets[i] = m[i].data;
    }
    unsigned char end_rec[ZIP_END_MAX];
    uint64_t end = pos + cd + tz_end_encode(end_rec, entries_n, cd, pos, pos + cd, 0);
    if (directory_offset) *directory_offset = pos;
    if (archive_size) *archive_size = end;
    rc = tz_entries_resolve(e, n_entries, m, n, &t, pos, end, entries_out, err);
cleanup:
    tz_names_free(&t);
    tz_entries_free(e, n_entries);
    free(m), free(plan), free(extras), free(blob);
    return rc;
}
