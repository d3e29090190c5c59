/* source.c - byte sources under the reader: local files and memory.
 * Remote sources (HTTP, S3) plug in through the same struct. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

typedef struct {
    tz_source base;
    int fd;
} file_source;

typedef struct {
    tz_source base;
    const unsigned char *data;
} mem_source;

static int file_read_at(tz_source *s, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    file_source *f = (file_source *)s;
    unsigned char *p = buf;
    while (len > 0) {
        size_t want = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        ssize_t n = pread(f->fd, p, want, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return tz_fail_errno(err, TACOZ_ERR_IO, errno, "read at offset %llu",
                                 (unsigned long long)off);
        }
        if (n == 0)
            return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "unexpected end of file at offset %llu",
                           (unsigned long long)off);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return TACOZ_OK;
}

static void file_destroy(tz_source *s) {
    file_source *f = (file_source *)s;
    close(f->fd);
    free(f);
}

static const unsigned char *no_view(tz_source *s, uint64_t off, size_t len) {
    (void)s, (void)off, (void)len;
    return NULL;
}

int tz_source_file(const char *path, tz_source **out, tacozip_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tz_fail_errno(err, TACOZ_ERR_IO, errno,
                             "%s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tz_fail_errno(err, TACOZ_ERR_IO, e, "%s", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tz_fail(err, TACOZ_ERR_IO, "%s: not a regular file", path);
    }
    file_source *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    f->fd = fd;
    f->base.size = (uint64_t)st.st_size;
    f->base.read_at = file_read_at;
    f->base.destroy = file_destroy;
    f->base.view = no_view;
    *out = &f->base;
    return TACOZ_OK;
}

static int mem_read_at(tz_source *s, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    mem_source *m = (mem_source *)s;
    if (off > s->size || len > s->size - off)
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "read past end of buffer at offset %llu",
                       (unsigned long long)off);
    if (len) memcpy(buf, m->data + off, len);
    return TACOZ_OK;
}

static const unsigned char *mem_view(tz_source *s, uint64_t off, size_t len) {
    mem_source *m = (mem_source *)s;
    if (off > s->size || len > s->size - off) return NULL;
    return m->data + off;
}

static void mem_destroy(tz_source *s) { free(s); }

int tz_source_memory(const void *data, size_t len, tz_source **out, tacozip_error *err) {
    mem_source *m = calloc(1, sizeof *m);
    if (!m) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    m->data = data;
    m->base.size = len;
    m->base.read_at = mem_read_at;
    m->base.destroy = mem_destroy;
    m->base.view = mem_view;
    *out = &m->base;
    return TACOZ_OK;
}

void tacozip_display_name(const char *path, char *out, size_t cap) {
    if (!out || cap == 0) return;
    if (!path) {
        out[0] = '\0';
        return;
    }
    tz_display_name(path, out, cap);
}

void tz_display_name(const char *path, char *out, size_t cap) {
    const char *p = tz_is_url(path) ? strstr(path, "://") : NULL;
    if (!p) {
        snprintf(out, cap, "%s", path);
        return;
    }
    const char *host = p + 3, *slash = strchr(host, '/'), *at = strchr(host, '@');
    if (at && (!slash || at < slash)) host = at + 1;
    int rest = (int)strcspn(host, "?#");
    snprintf(out, cap, "%.*s%.*s", (int)(p + 3 - path), path, rest, host);
}

int tz_source_open(const char *path, tz_source **out, tacozip_error *err) {
    return tz_is_url(path) ? tz_source_remote(path, out, err) : tz_source_file(path, out, err);
}

int tz_source_tail(tz_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                   tacozip_error *err) {
    if (src->read_tail) return src->read_tail(src, want, buf, got, tail_off, err);
    size_t n = src->size < want ? (size_t)src->size : want;
    *got = n;
    *tail_off = src->size - n;
    return src->read_at(src, src->size - n, buf, n, err);
}

int tz_source_head(tz_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err) {
    if (src->read_head) return src->read_head(src, want, buf, got, err);
    size_t n = src->size < want ? (size_t)src->size : want;
    *got = n;
    return src->read_at(src, 0, buf, n, err);
}

int tz_source_read_many(tz_source *src, tz_range *ranges, size_t n, tacozip_error *err) {
    for (size_t i = 0; i < n; i++)
        if (ranges[i].offset > src->size || ranges[i].length > src->size - ranges[i].offset)
            return tz_fail(err, TACOZ_ERR_PARAM, "range %llu+%llu passes the end of the archive (%llu bytes)",
                           (unsigned long long)ranges[i].offset, (unsigned long long)ranges[i].length,
                           (unsigned long long)src->size);
    if (src->read_many) return src->read_many(src, ranges, n, err);
    for (size_t i = 0; i < n; i++) {
        int rc = src->read_at(src, ranges[i].offset, ranges[i].buf, (size_t)ranges[i].length, err);
        if (rc) return rc;
    }
    return TACOZ_OK;
}

int tz_source_read(tz_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    if (off > src->size || len > src->size - off)
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE,
                       "range %llu+%zu passes the end of the archive (%llu bytes)",
                       (unsigned long long)off, len, (unsigned long long)src->size);
    return src->read_at(src, off, buf, len, err);
}
