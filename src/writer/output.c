/* output.c - where a new archive goes: an unnamed local file named when
 * complete (common/io.c's tz_newfile), or an S3 upload (source/upload.c)
 * that completes when the archive does; both as a tz_sink. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "writer.h"

int tz_check_write_options(const tacozip_write_options *o, tacozip_error *err) {
    int rc = tz_check_struct_size(o->struct_size, sizeof(tacozip_write_options), "tacozip_write_options", err);
    if (rc) return rc;
    if (o->alignment > 1 && (o->alignment & (o->alignment - 1) || o->alignment > 32768))
        return tz_fail(err, TACOZ_ERR_PARAM, "alignment %u is not a power of two <= 32768", o->alignment);
    return TACOZ_OK;
}

/* ---- file sinks ----------------------------------------------------------- */

static int file_write(tz_sink *s, const void *data, size_t len, tacozip_error *err) {
    return tz_write_full(s->fd, data, len) == 0 ? TACOZ_OK
                                                : tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: write", s->path);
}

static int file_patch(tz_sink *s, uint64_t off, const void *data, size_t len, tacozip_error *err) {
    return tz_pwrite_full(s->fd, data, len, off) == 0 ? TACOZ_OK
                                                       : tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: write", s->path);
}

void tz_sink_file(tz_sink *s, int fd, const char *path) {
    memset(s, 0, sizeof *s);
    s->write = file_write, s->patch = file_patch, s->fd = fd, s->path = path;
}

/* ---- upload sinks --------------------------------------------------------- */

/* Upload failures name the URL (the sink is the output's first field). */
static int up_said(tz_sink *s, int rc, tacozip_error *err) {
    if (rc) tz_err_prefix(err, rc, ((tz_output *)(void *)s)->shown);
    return rc;
}
static int up_write(tz_sink *s, const void *p, size_t n, tacozip_error *err) {
    return up_said(s, tz_upload_write(s->up, p, n, err), err);
}
static int up_patch(tz_sink *s, uint64_t off, const void *p, size_t n, tacozip_error *err) {
    return up_said(s, tz_upload_patch(s->up, off, p, n, err), err);
}
static int up_hold(tz_sink *s, uint64_t off, size_t n, tacozip_error *err) {
    return up_said(s, tz_upload_hold(s->up, off, n, err), err);
}

/* ---- outputs -------------------------------------------------------------- */

/* The mode a new file would get: 0666 & ~umask, read without changing it. */
static mode_t default_mode(void) {
    mode_t mode = 0644;
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        unsigned um;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &um) == 1) {
                mode = 0666 & ~(mode_t)um;
                break;
            }
        fclose(f);
    }
    return mode;
}

int tz_output_open(tz_output *o, const char *path, const tacozip_write_options *opts,
                   const tacozip_remote_options *remote, uint64_t total, tacozip_error *err) {
    memset(o, 0, sizeof *o);
    o->nf.dfd = o->nf.fd = -1;
    o->lock_fd = -1;
    o->path = path;
    o->durable = !opts->no_fsync;
    int rc;
    if (tacozip_is_url(path)) {
        char *shown = o->shown;
        tz_display_name(path, shown, sizeof o->shown);
        if (tz_url_scheme(path) != TZ_S3)
            return tz_fail(err, TACOZ_ERR_PARAM, "%s: archives are written to local files and s3:// URLs only",
                           shown);
        o->remote = 1;
        tz_upload *up = NULL;
        if ((rc = tz_upload_open(path, remote, total, opts->part_size, opts->upload_parallel, &up, err))) {
            tz_err_prefix(err, rc, shown);
            return rc;
        }
        o->sink.write = up_write, o->sink.patch = up_patch, o->sink.hold = up_hold;
        o->sink.up = up, o->sink.fd = -1, o->sink.path = path;
        return TACOZ_OK;
    }
    /* An archive already there: hold its writers' lock until it is
     * replaced, so that an append or update running on it fails
     * (TACOZ_ERR_LOCKED) rather than being lost under the new file.  A file
     * this process may not open for writing is replaced without it. */
    struct stat old;
    int have_old = stat(path, &old) == 0 && S_ISREG(old.st_mode), what;
    if (have_old && (o->lock_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) >= 0 &&
        ((rc = tz_lock_writer(o->lock_fd, err)) != TACOZ_OK ||
         /* an interrupted append or update of it is rolled back first, so
          * that a failure here leaves it valid, and no journal of it
          * outlives it */
         (rc = tz_journal_recover(path, o->lock_fd, o->durable, &what, err)) != TACOZ_OK)) {
        tz_err_prefix(err, rc, path);
        tz_output_abort(o);
        return rc;
    }
    /* the new file: unnamed in the same directory until it is complete */
    o->nf.dfd = tz_open_parent(path, &o->base);
    if (o->nf.dfd >= 0 && !*o->base) {
        tz_output_abort(o);
        return tz_fail(err, TACOZ_ERR_PARAM, "%s: not a file name", path);
    }
    if (o->nf.dfd < 0 || tz_newfile_open(&o->nf, o->nf.dfd, o->base, 0600) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot create a file in its directory", path);
        tz_output_abort(o);
        return rc;
    }
    if (fchmod(o->nf.fd, have_old ? (old.st_mode & 07777) : default_mode()) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot set the new file's mode", path);
        tz_output_abort(o);
        return rc;
    }
    tz_sink_file(&o->sink, o->nf.fd, path);
    return TACOZ_OK;
}

int tz_output_commit(tz_output *o, tacozip_error *err) {
    int rc = TACOZ_OK;
    if (o->remote) {
        tz_upload *up = o->sink.up;
        o->sink.up = NULL;
        if ((rc = tz_upload_commit(up, err))) tz_err_prefix(err, rc, o->shown);
        return rc;
    }
    if (o->durable && fsync(o->nf.fd) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: fsync", o->path);
    } else if (tz_newfile_commit(&o->nf, o->base, 1) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot give the new file its name", o->path);
    } else if (o->durable && fsync(o->nf.dfd) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno,
                           "%s: the new archive is in place, but fsync of its directory failed (after a power "
                           "loss the old one may come back)",
                           o->path);
    }
    tz_output_abort(o); /* closes what is left */
    return rc;
}

void tz_output_abort(tz_output *o) {
    if (o->remote) {
        tz_upload_abort(o->sink.up);
        o->sink.up = NULL;
        return;
    }
    tz_newfile_abort(&o->nf);
    if (o->nf.dfd >= 0) close(o->nf.dfd);
    o->nf.dfd = -1;
    if (o->lock_fd >= 0) close(o->lock_fd);
    o->lock_fd = -1;
}
