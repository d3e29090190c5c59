/* memory.c - a caller's buffer as a byte source (zero-copy views). */
#include <stdlib.h>
#include <string.h>

#include "source.h"

typedef struct {
    tacozip_source base;
    const unsigned char *data;
} mem_source;

static int mem_read_at(tacozip_source *s, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    if (off > s->size || len > s->size - off)
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "read past the end of the buffer at offset %llu",
                       (unsigned long long)off);
    if (len) memcpy(buf, ((mem_source *)s)->data + off, len);
    return TACOZ_OK;
}

static const unsigned char *mem_view(tacozip_source *s, uint64_t off, size_t len) {
    if (off > s->size || len > s->size - off) return NULL;
    return ((mem_source *)s)->data + off;
}

static void mem_destroy(tacozip_source *s) { free(s); }

static const tz_source_ops mem_ops = {.read_at = mem_read_at, .destroy = mem_destroy, .view = mem_view};

int tz_source_mem(const void *data, size_t len, tacozip_source **out, tacozip_error *err) {
    mem_source *m = calloc(1, sizeof *m);
    if (!m) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = tz_source_init(&m->base, &mem_ops, "<memory>", err);
    if (rc) {
        free(m);
        return rc;
    }
    m->data = data;
    m->base.size = len;
    *out = &m->base;
    return TACOZ_OK;
}
