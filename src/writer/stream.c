/* stream.c - the streaming writer (tacozip_writer_*): members added one at
 * a time from files, buffers and streams, header entries resolved and the
 * header written once, at close.  A stream of unknown length is spooled
 * (memory up to a limit, then an unnamed temporary file) so that its
 * local header, which holds its size and CRC-32, can go before its data. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "writer.h"

#define SPOOL_DEFAULT (64ull << 20)
#define SPOOL_CHUNK ((size_t)1 << 20)

struct tacozip_writer {
    tz_output out;
    tz_writer w;
    tacozip_write_options opts; /* a copy; spool_dir points at "spool_dir" */
    char *spool_dir;
    char *path;
    tz_name_table names;        /* over w.placed */
    tz_planned_entry *entries;
    size_t n_entries;
    uint32_t header_dos;
    int failed;
};

static const char *placed_name_of(const void *ctx, size_t i, size_t *len) {
    const tacozip_writer *wr = ctx;
    *len = wr->w.placed[i].nlen;
    return wr->w.placed[i].name;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void writer_free(tacozip_writer *wr) {
    tz_writer_free(&wr->w);
    tz_names_free(&wr->names);
    tz_entries_free(wr->entries, wr->n_entries);
    free(wr->spool_dir);
    free(wr->path);
    free(wr);
}

/* A failed step: nothing is kept (the output is dropped now, so that no
 * upload stays open while the caller decides what to do). */
static int fail_writer(tacozip_writer *wr, int rc) {
    if (!wr->failed) tz_output_abort(&wr->out);
    wr->failed = 1;
    return rc;
}

static int check_usable(tacozip_writer *wr, tacozip_error *err) {
    if (!wr) return tz_fail(err, TACOZ_ERR_PARAM, "NULL writer");
    if (wr->failed)
        return tz_fail(err, TACOZ_ERR_PARAM, "the writer has failed: free it with tacozip_writer_abort()");
    wr->w.err = err;
    return TACOZ_OK;
}

int tacozip_writer_open(const char *path, const tacozip_write_options *opts, const tacozip_remote_options *remote,
                        tacozip_writer **out, tacozip_error *err) {
    static const tacozip_write_options defaults;
    if (!path || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path or output");
    *out = NULL;
    if (!opts) opts = &defaults;
    int rc = tz_check_write_options(opts, err);
    if (rc) return rc;
    if (opts->index)
        return tz_fail(err, TACOZ_ERR_PARAM,
                       "the streaming writer cannot embed TACO_INDEX (it precedes the members); use "
                       "tacozip_create_planned()");
    tacozip_writer *wr = calloc(1, sizeof *wr);
    if (!wr) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    memcpy(&wr->opts, opts, opts->struct_size && opts->struct_size < sizeof *opts ? opts->struct_size : sizeof *opts);
    wr->opts.struct_size = sizeof wr->opts;
    wr->path = dup_str(path);
    wr->spool_dir = dup_str(opts->spool_dir ? opts->spool_dir : "/tmp");
    if (!wr->path || !wr->spool_dir) {
        free(wr->path), free(wr->spool_dir), free(wr);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    wr->opts.spool_dir = wr->spool_dir;
    if ((rc = tz_output_open(&wr->out, wr->path, &wr->opts, remote,
                             opts->expected_size ? opts->expected_size : TZ_SIZE_UNKNOWN, err))) {
        free(wr->path), free(wr->spool_dir), free(wr);
        return rc;
    }
    int64_t now = opts->mtime ? opts->mtime : (int64_t)time(NULL);
    wr->header_dos = tz_dos_datetime(now, opts->mtime != 0);
    if ((rc = tz_writer_init(&wr->w, &wr->out.sink, wr->path, &wr->opts, 0, err)) ||
        (rc = tz_names_init(&wr->names, 64, wr, placed_name_of, err)) ||
        (rc = tz_writer_header(&wr->w, NULL, wr->header_dos))) {
        tz_output_abort(&wr->out);
        writer_free(wr);
        return rc;
    }
    wr->w.track = 1;
    *out = wr;
    return TACOZ_OK;
}

/* The checks before a member is written: a usable writer, a good name not
 * given before. */
static int begin_member(tacozip_writer *wr, const char *name, tz_member_plan *m, tacozip_error *err) {
    int rc = check_usable(wr, err);
    if (rc) return rc;
    if (!name) return fail_writer(wr, tz_fail(err, TACOZ_ERR_PARAM, "NULL member name"));
    memset(m, 0, sizeof *m);
    m->name = name;
    m->nlen = strlen(name);
    if ((rc = tz_check_member_name(name, m->nlen, err))) return fail_writer(wr, rc);
    if (tz_names_find(&wr->names, name, m->nlen, NULL) == TACOZ_OK)
        return fail_writer(wr, tz_fail(err, TACOZ_ERR_EXISTS, "member name \"%.200s\" given twice", name));
    if ((rc = tz_names_reserve(&wr->names, wr->w.n_placed, err))) return fail_writer(wr, rc);
    return TACOZ_OK;
}

/* After a member was written: its name goes into the table. */
static int end_member(tacozip_writer *wr, int rc, const char *shown) {
    if (rc) {
        if (shown) tz_err_prefix(wr->w.err, rc, shown);
        return fail_writer(wr, rc);
    }
    tz_names_insert(&wr->names, wr->w.n_placed - 1, NULL);
    return TACOZ_OK;
}

int tacozip_writer_add_file(tacozip_writer *wr, const char *src, const char *name, tacozip_error *err) {
    if (!src) {
        int rc = check_usable(wr, err);
        return rc ? rc : fail_writer(wr, tz_fail(err, TACOZ_ERR_PARAM, "NULL source path"));
    }
    if (!name) {
        const char *slash = strrchr(src, '/');
        name = slash ? slash + 1 : src;
    }
    tz_member_plan m;
    int rc = begin_member(wr, name, &m, err);
    if (rc) return rc;
    m.src = src;
    m.size = UINT64_MAX; /* from fstat() of the open file */
    return end_member(wr, tz_writer_add_file(&wr->w, &m, NULL), NULL);
}

int tacozip_writer_add_buffer(tacozip_writer *wr, const char *name, const void *data, size_t len, int64_t mtime,
                              tacozip_error *err) {
    tz_member_plan m;
    int rc = begin_member(wr, name, &m, err);
    if (rc) return rc;
    if (len && !data) return fail_writer(wr, tz_fail(err, TACOZ_ERR_PARAM, "NULL data for %zu bytes", len));
    m.size = len, m.mtime = mtime, m.utc = mtime != 0;
    return end_member(wr, tz_writer_add_memory(&wr->w, &m, len ? data : ""), NULL);
}

/* A new unnamed file in "dir" (a named one, unlinked at once, where the
 * filesystem has no O_TMPFILE): fd or -1 (errno). */
static int spool_file(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
    char tmpl[4096];
    if (snprintf(tmpl, sizeof tmpl, "%s/.tacozip-spool-XXXXXX", dir) >= (int)sizeof tmpl) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd >= 0) unlink(tmpl);
    return fd;
}

/* Read the whole stream: into *mem (up to the spool limit), the rest with
 * it into an unnamed file *fd (rewound).  *size: the bytes read. */
static int spool(tacozip_writer *wr, const char *what, tacozip_read_fn fn, void *user, unsigned char **mem,
                 int *fd, uint64_t *size, tacozip_error *err) {
    uint64_t limit = wr->opts.spool_limit ? wr->opts.spool_limit : SPOOL_DEFAULT;
    if (limit == TACOZIP_NO_SPOOL_MEMORY) limit = 0;
    if (limit > SIZE_MAX / 2) limit = SIZE_MAX / 2;
    size_t cap = limit < 65536 ? (size_t)(limit ? limit : SPOOL_CHUNK) : 65536, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    *fd = -1;
    *size = 0;
    int rc = TACOZ_OK;
    for (;;) {
        if (len == cap) {
            if (*fd < 0 && cap < limit) { /* more memory */
                size_t ncap = cap * 2 > limit ? (size_t)limit : cap * 2;
                unsigned char *p = realloc(buf, ncap);
                if (!p) {
                    rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
                    break;
                }
                buf = p, cap = ncap;
            } else { /* to the spool file */
                if (*fd < 0 && (*fd = spool_file(wr->spool_dir)) < 0) {
                    rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot create a spool file in %s", what,
                                       wr->spool_dir);
                    break;
                }
                if (tz_write_full(*fd, buf, len) != 0) {
                    rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: spool file in %s: write", what, wr->spool_dir);
                    break;
                }
                len = 0;
            }
        }
        size_t got = 0;
        int r = fn(user, buf + len, cap - len, &got, err);
        if (r != TACOZ_OK) {
            rc = r < 0 ? r : TACOZ_ERR_PARAM;
            if (err && err->code != rc) tz_fail(err, rc, "%s: the read callback failed (%s)", what, tacozip_strerror(rc));
            break;
        }
        if (got > cap - len) {
            rc = tz_fail(err, TACOZ_ERR_PARAM, "%s: the read callback reported %zu bytes for a buffer of %zu", what,
                         got, cap - len);
            break;
        }
        if (got == 0) break;
        len += got;
        *size += got;
    }
    if (rc == TACOZ_OK && *fd >= 0) {
        if (tz_write_full(*fd, buf, len) != 0)
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: spool file in %s: write", what, wr->spool_dir);
        else if (lseek(*fd, 0, SEEK_SET) != 0)
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: spool file: seek", what);
    }
    if (rc || *fd >= 0) {
        free(buf);
        buf = NULL;
    }
    if (rc && *fd >= 0) close(*fd), *fd = -1;
    *mem = buf;
    return rc;
}

int tacozip_writer_add_stream(tacozip_writer *wr, const char *name, uint64_t size, tacozip_read_fn fn, void *user,
                              int64_t mtime, tacozip_error *err) {
    tz_member_plan m;
    int rc = begin_member(wr, name, &m, err);
    if (rc) return rc;
    if (!fn) return fail_writer(wr, tz_fail(err, TACOZ_ERR_PARAM, "NULL read callback"));
    m.mtime = mtime, m.utc = mtime != 0;
    char what[256];
    snprintf(what, sizeof what, "member \"%.200s\"", name);
    if (size != TACOZIP_SIZE_UNKNOWN) {
        m.size = size;
        tz_input in = {.fd = -1, .fn = fn, .user = user};
        return end_member(wr, tz_writer_add_input(&wr->w, &m, &in, what), NULL);
    }
    unsigned char *mem = NULL;
    int fd = -1;
    uint64_t got = 0;
    if ((rc = spool(wr, what, fn, user, &mem, &fd, &got, err))) return fail_writer(wr, rc);
    m.size = got;
    if (fd < 0) {
        rc = tz_writer_add_memory(&wr->w, &m, mem);
    } else {
        tz_input in = {.fd = fd};
        rc = tz_writer_add_input(&wr->w, &m, &in, what);
        close(fd);
    }
    free(mem);
    return end_member(wr, rc, NULL);
}

int tacozip_writer_set_entries(tacozip_writer *wr, const tacozip_entry_plan *entries, size_t n, tacozip_error *err) {
    int rc = check_usable(wr, err);
    if (rc) return rc;
    tz_planned_entry *e = NULL;
    if ((rc = tz_entries_copy(entries, n, &e, err))) return rc; /* a bad list changes nothing */
    tz_entries_free(wr->entries, wr->n_entries);
    wr->entries = e, wr->n_entries = n;
    return TACOZ_OK;
}

int tacozip_writer_close(tacozip_writer *wr, taco_meta_array_t *entries_out, tacozip_error *err) {
    int rc = check_usable(wr, err);
    if (rc) {
        if (wr) {
            fail_writer(wr, rc);
            writer_free(wr);
        }
        return rc;
    }
    taco_meta_array_t meta;
    uint64_t dir_off = tz_writer_pos(&wr->w);
    rc = tz_entries_resolve(wr->entries, wr->n_entries, wr->w.placed, wr->w.n_placed, &wr->names, dir_off,
                            dir_off + tz_writer_end_size(&wr->w), &meta, err);
    if (rc) {
        char shown[512];
        tz_display_name(wr->path, shown, sizeof shown);
        tz_err_prefix(err, rc, shown);
    }
    if (rc == TACOZ_OK) rc = tz_writer_patch_header(&wr->w, &meta, wr->header_dos);
    if (rc == TACOZ_OK) rc = tz_writer_end(&wr->w, NULL, 0);
    if (rc == TACOZ_OK) {
        rc = tz_output_commit(&wr->out, err);
        wr->failed = 1; /* the output is closed either way */
    }
    if (rc) fail_writer(wr, rc);
    else if (entries_out) *entries_out = meta;
    writer_free(wr);
    return rc;
}

void tacozip_writer_abort(tacozip_writer *wr) {
    if (!wr) return;
    fail_writer(wr, TACOZ_OK);
    writer_free(wr);
}
