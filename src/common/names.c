/* names.c - member-name safety rules, and the name set used for lookups
 * and duplicate checks. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

int tz_name_is_safe(const char *name, size_t len) {
    if (len == 0 || memchr(name, '\0', len) || memchr(name, '\\', len)) return 0;
    if (name[0] == '/') return 0;
    if (len >= 2 && name[1] == ':' && ((name[0] | 32) >= 'a' && (name[0] | 32) <= 'z')) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            size_t clen = i - start;
            if (i == len && clen == 0) break; /* trailing '/' (directory entry) */
            if (clen == 0) return 0;            /* "a//b" */
            if (clen == 1 && name[start] == '.') return 0;
            if (clen == 2 && name[start] == '.' && name[start + 1] == '.') return 0;
            start = i + 1;
        }
    }
    return 1;
}

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

int tz_names_init(tz_name_table *t, size_t n, const void *ctx, tz_name_of_fn name_of, tacozip_error *err) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the name table");
    t->mask = cap - 1;
    t->ctx = ctx;
    t->name_of = name_of;
    return TACOZ_OK;
}

void tz_names_free(tz_name_table *t) {
    free(t->slots);
    t->slots = NULL;
}

/* Probe for "name": TACOZ_OK and *index when present, else
 * TACOZ_ERR_NOT_FOUND with *slot the empty slot where it would go. */
static int probe(const tz_name_table *t, const char *name, size_t len, size_t *slot, size_t *index) {
    size_t k = (size_t)name_hash(name, len) & t->mask;
    while (t->slots[k]) {
        size_t j = t->slots[k] - 1, olen;
        const char *o = t->name_of(t->ctx, j, &olen);
        if (olen == len && memcmp(o, name, len) == 0) {
            if (index) *index = j;
            return TACOZ_OK;
        }
        k = (k + 1) & t->mask;
    }
    *slot = k;
    return TACOZ_ERR_NOT_FOUND;
}

int tz_names_insert(tz_name_table *t, size_t i, size_t *other) {
    size_t len, slot;
    const char *name = t->name_of(t->ctx, i, &len);
    if (probe(t, name, len, &slot, other) == TACOZ_OK) return TACOZ_ERR_EXISTS;
    t->slots[slot] = (uint32_t)(i + 1);
    return TACOZ_OK;
}

int tz_names_find(const tz_name_table *t, const char *name, size_t len, size_t *index) {
    size_t slot;
    if (!t->slots) return TACOZ_ERR_NOT_FOUND;
    return probe(t, name, len, &slot, index);
}
