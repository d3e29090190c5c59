/* file.c - a local file as a byte source (pread, so threads share it). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"

/* A file with a hot rollback journal (an append or update that did not
 * finish: common/journal.c) is read as it was before that write: its size
 * is the old size and the journal's old bytes are copied over what is read
 * from the file. */
typedef struct {
    tacozip_source base;
    int fd;
    tz_journal journal; /* state TZ_JOURNAL_HOT, or none */
} file_source;

static int file_read_at(tacozip_source *s, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    file_source *f = (file_source *)s;
    int r = tz_pread_full(f->fd, buf, len, off);
    if (r < 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "read at offset %llu", (unsigned long long)off);
    if (r == 0)
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "unexpected end of file before offset %llu",
                       (unsigned long long)(off + len));
    if (f->journal.state == TZ_JOURNAL_HOT) tz_journal_overlay(&f->journal, off, buf, len);
    return TACOZ_OK;
}

static void file_destroy(tacozip_source *s) {
    file_source *f = (file_source *)s;
    close(f->fd);
    tz_journal_free(&f->journal);
    free(f);
}

static const tz_source_ops file_ops = {.read_at = file_read_at, .destroy = file_destroy};

const char *tz_file_kind(unsigned mode) {
    return S_ISREG(mode)    ? "a regular file"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISDIR(mode)  ? "a directory"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "an unknown kind of file";
}

int tz_open_regular(const char *path, int flags, int *fd_out, tacozip_error *err) {
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
     * the type is then checked on the descriptor itself (no race with a
     * rename between a stat() and the open()). */
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        /* a FIFO opened for writing with no reader fails (ENXIO) before its
         * type can be seen on a descriptor: name the type all the same */
        int e = errno;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return tz_fail(err, TACOZ_ERR_IO, "not a regular file (%s)", tz_file_kind(st.st_mode));
        return tz_fail(err, TACOZ_ERR_IO, "%s", strerror(e));
    }
    int rc = TACOZ_OK;
    if (fstat(fd, &st) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot stat");
    } else if (!S_ISREG(st.st_mode)) {
        rc = tz_fail(err, TACOZ_ERR_IO, "not a regular file (%s)", tz_file_kind(st.st_mode));
    } else {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "fcntl");
    }
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return TACOZ_OK;
}

int tz_source_file(const char *path, tacozip_source **out, tacozip_error *err) {
    int fd;
    int rc = tz_open_regular(path, O_RDONLY, &fd, err);
    if (rc) return rc;
    struct stat st;
    file_source *f = NULL;
    if (fstat(fd, &st) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot stat");
        goto cleanup;
    }
    if (!(f = calloc(1, sizeof *f))) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = tz_journal_read(path, fd, &f->journal, err))) goto cleanup;
    if ((rc = tz_source_init(&f->base, &file_ops, path, err))) goto cleanup;
    f->fd = fd;
    f->base.size = f->journal.state == TZ_JOURNAL_HOT ? f->journal.old_size : (uint64_t)st.st_size;
    *out = &f->base;
    return TACOZ_OK;
cleanup:
    if (f) tz_journal_free(&f->journal);
    free(f);
    close(fd);
    return rc;
}

int tz_file_head(const char *path, void *buf, size_t want, size_t *got, int (*consistent)(const void *, size_t),
                 tacozip_error *err) {
    *got = 0;
    int fd;
    int rc = tz_open_regular(path, O_RDONLY, &fd, err);
    if (rc) return rc;
    size_t n = 0;
    while (n < want) {
        ssize_t k = pread(fd, (unsigned char *)buf + n, want - n, (off_t)n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "read");
            break;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    /* Bytes a hot journal holds (an update that did not finish) replace
     * those read; the journal is looked for only when the caller's check
     * says the bytes read are torn, so that a header read costs no more
     * than its own read. */
    if (rc == TACOZ_OK && consistent && !consistent(buf, n)) {
        tz_journal j;
        if ((rc = tz_journal_read(path, fd, &j, err)) == TACOZ_OK && j.state == TZ_JOURNAL_HOT) {
            if (j.old_size < n) n = (size_t)j.old_size;
            tz_journal_overlay(&j, 0, buf, n);
        }
        tz_journal_free(&j);
    }
    close(fd);
    *got = n;
    return rc;
}
