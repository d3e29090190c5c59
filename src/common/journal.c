/* journal.c - the rollback journal of an in-place write (append, update).
 *
 * Before a writer changes bytes of an existing archive, it saves them in
 * ARCHIVE.tacozip-journal beside it (the regions it will overwrite and the
 * size to truncate back to) and makes that file durable; it then writes the
 * archive, makes it durable, and removes the journal: the removal is the
 * commit.  A journal still there is "hot": the write did not finish (the
 * process was killed, the machine stopped), and putting its regions back
 * and truncating restores the old archive exactly.  Writers roll a hot
 * journal back under the writers' lock before they start; readers overlay
 * it, so they read the old archive without writing anything.
 *
 * The journal also holds the CRC-32 of up to 64 KiB of the archive that
 * the write does not change (just before the old directory, for an
 * append; the start of the first member, for an update): a journal left
 * beside a different file (the archive was replaced since) is told by it,
 * and is never applied; a copy of the archive and its journal (cp, rsync)
 * is still recovered.  The journal ends with a CRC-32 of everything before
 * it, so a journal cut short is recognised; such a journal was never
 * complete, so the archive was never touched under it.
 *
 * Layout (little-endian):
 *   0  "TZJRNL02"          8  u32 operation      12 u32 region count
 *   16 u64 offset and 24 u64 length of the unchanged bytes, 32 u32 their CRC-32, 36 u32 0
 *   40 u64 size to truncate back to
 *   48 regions: u64 offset, u64 length, the bytes
 *   then u32 CRC-32 of all the bytes before it */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define J_MAGIC "TZJRNL02"
#define J_FINGERPRINT_MAX ((uint64_t)64 << 10)
#define J_FIXED 48
#define J_REGION 16
#define J_MAX_REGIONS 16

char *tz_journal_path(const char *archive) {
    size_t n = strlen(archive);
    char *p = malloc(n + sizeof TZ_JOURNAL_SUFFIX);
    if (p) {
        memcpy(p, archive, n);
        memcpy(p + n, TZ_JOURNAL_SUFFIX, sizeof TZ_JOURNAL_SUFFIX);
    }
    return p;
}

/* CRC-32 of [off, off+len) of the file open on "fd": 0 and *crc, or -1
 * (errno; EIO/0 for a file too short). */
static int fingerprint(int fd, uint64_t off, uint64_t len, uint32_t *crc) {
    unsigned char buf[4096];
    uint32_t c = 0;
    while (len) {
        size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
        int r = tz_pread_full(fd, buf, n, off);
        if (r != 1) {
            if (r == 0) errno = EIO;
            return -1;
        }
        c = tz_crc32(c, buf, n);
        off += n, len -= n;
    }
    *crc = c;
    return 0;
}

/* Write "len" bytes to a new file that gets the name "path" only once it
 * is complete and durable (common/io.c's tz_newfile: unnamed, else under a
 * temporary name): a journal is never seen half written.  EEXIST if a
 * journal is there already. */
static int write_whole(const char *path, const unsigned char *buf, size_t len, int durable, tacozip_error *err) {
    const char *base;
    tz_newfile f = {.fd = -1};
    int dfd = tz_open_parent(path, &base), rc = TACOZ_OK;
    if (dfd < 0 || tz_newfile_open(&f, dfd, base, 0600) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot create the journal");
    else if (tz_write_full(f.fd, buf, len) != 0 || (durable && fsync(f.fd) != 0))
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "writing the journal");
    else if (tz_newfile_commit(&f, base, 0) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "naming the journal");
    else if (durable && fsync(dfd) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "fsync of the journal's directory");
        unlinkat(dfd, base, 0); /* named: the archive is not touched after this failure */
    }
    tz_newfile_abort(&f);
    if (dfd >= 0) close(dfd);
    return rc;
}

int tz_journal_write(const char *archive, int fd, uint32_t op, uint64_t old_size, const tz_jregion *r, size_t n,
                     uint64_t fp_off, uint64_t fp_len, int durable, tacozip_error *err) {
    uint32_t fp_crc;
    if (n > J_MAX_REGIONS) return tz_fail(err, TACOZ_ERR_PARAM, "too many journal regions");
    if (fp_len > J_FINGERPRINT_MAX) fp_len = J_FINGERPRINT_MAX;
    if (fingerprint(fd, fp_off, fp_len, &fp_crc) != 0)
        return tz_fail_errno(err, TACOZ_ERR_IO, errno, "reading the archive for its journal");
    size_t len = J_FIXED + 4;
    for (size_t i = 0; i < n; i++) len += J_REGION + (size_t)r[i].len;
    unsigned char *b = malloc(len);
    if (!b) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the journal");
    memcpy(b, J_MAGIC, 8);
    wr32(b + 8, op);
    wr32(b + 12, (uint32_t)n);
    wr64(b + 16, fp_off);
    wr64(b + 24, fp_len);
    wr32(b + 32, fp_crc);
    wr32(b + 36, 0);
    wr64(b + 40, old_size);
    size_t p = J_FIXED;
    for (size_t i = 0; i < n; i++) {
        wr64(b + p, r[i].off);
        wr64(b + p + 8, r[i].len);
        if (r[i].len) memcpy(b + p + J_REGION, r[i].data, (size_t)r[i].len);
        p += J_REGION + (size_t)r[i].len;
    }
    wr32(b + p, tz_crc32(0, b, p));
    char *jp = tz_journal_path(archive);
    int rc = jp ? write_whole(jp, b, len, durable, err) : tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    free(jp);
    free(b);
    return rc;
}

void tz_journal_free(tz_journal *j) {
    free(j->buf);
    memset(j, 0, sizeof *j);
}

/* Parse a journal read whole into j->buf: 1 if it is complete and well
 * formed, else 0. */
static int parse(tz_journal *j, size_t len) {
    const unsigned char *b = j->buf;
    if (len < J_FIXED + 4 || memcmp(b, J_MAGIC, 8) != 0) return 0;
    if (rd32(b + len - 4) != tz_crc32(0, b, len - 4)) return 0;
    j->op = rd32(b + 8);
    j->n = rd32(b + 12);
    if (j->n > J_MAX_REGIONS) return 0;
    j->fp_off = rd64(b + 16), j->fp_len = rd64(b + 24), j->fp_crc = rd32(b + 32);
    j->old_size = rd64(b + 40);
    if (j->fp_len > J_FINGERPRINT_MAX) return 0;
    size_t p = J_FIXED;
    for (size_t i = 0; i < j->n; i++) {
        if (len - 4 - p < J_REGION) return 0;
        uint64_t off = rd64(b + p), rl = rd64(b + p + 8);
        p += J_REGION;
        if (rl > len - 4 - p || off > j->old_size || rl > j->old_size - off) return 0;
        j->r[i].off = off, j->r[i].len = rl, j->r[i].data = b + p;
        p += (size_t)rl;
    }
    return p == len - 4;
}

int tz_journal_read(const char *archive, int fd, tz_journal *j, tacozip_error *err) {
    memset(j, 0, sizeof *j);
    char *jp = tz_journal_path(archive);
    if (!jp) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int jfd = open(jp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int e = errno;
    free(jp);
    if (jfd < 0) {
        if (e == ENOENT || e == ENOTDIR) return TACOZ_OK; /* none: the usual case */
        /* one that cannot be opened (a symbolic link, no permission): not
         * this library's journal, or not ours to read; never applied */
        j->state = TZ_JOURNAL_STALE;
        return TACOZ_OK;
    }
    int rc = TACOZ_OK;
    struct stat st;
    j->state = TZ_JOURNAL_STALE;
    if (fstat(jfd, &st) != 0 || !S_ISREG(st.st_mode)) goto cleanup;
    size_t len = (size_t)st.st_size;
    if ((off_t)len != st.st_size || len < J_FIXED + 4) goto cleanup;
    if (!(j->buf = malloc(len))) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the journal");
        goto cleanup;
    }
    int r = tz_pread_full(jfd, j->buf, len, 0);
    if (r < 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "reading the journal");
        goto cleanup;
    }
    uint32_t fp;
    if (r == 1 && parse(j, len) && fingerprint(fd, j->fp_off, j->fp_len, &fp) == 0 && fp == j->fp_crc)
        j->state = TZ_JOURNAL_HOT;
cleanup:
    close(jfd);
    if (j->state != TZ_JOURNAL_HOT) {
        free(j->buf);
        j->buf = NULL;
        j->n = 0;
    }
    return rc;
}

void tz_journal_overlay(const tz_journal *j, uint64_t off, void *buf, size_t len) {
    for (size_t i = 0; i < j->n; i++) {
        uint64_t a = j->r[i].off, b = a + j->r[i].len;
        uint64_t lo = off > a ? off : a, hi = off + len < b ? off + len : b;
        if (lo < hi) memcpy((unsigned char *)buf + (lo - off), j->r[i].data + (lo - a), (size_t)(hi - lo));
    }
}

int tz_journal_apply(int fd, const tz_jregion *r, size_t n, uint64_t old_size, int durable, tacozip_error *err) {
    for (size_t i = 0; i < n; i++)
        if (tz_pwrite_full(fd, r[i].data, (size_t)r[i].len, r[i].off) != 0)
            return tz_fail_errno(err, TACOZ_ERR_IO, errno, "rolling back");
    if (ftruncate(fd, (off_t)old_size) != 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "rolling back (truncate)");
    if (durable && fsync(fd) != 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "rolling back (fsync)");
    return TACOZ_OK;
}

void tz_journal_rollback_after(const char *archive, int fd, const tz_jregion *r, size_t n, uint64_t old_size,
                               int durable, tacozip_error *err) {
    if (tz_journal_apply(fd, r, n, old_size, durable, NULL) == TACOZ_OK &&
        tz_journal_remove(archive, durable, NULL) == TACOZ_OK)
        return;
    if (tz_err_writable(err)) {
        size_t l = strlen(err->message);
        snprintf(err->message + l, sizeof err->message - l,
                 " (and restoring the archive failed: its journal is kept; run \"tacozip recover\")");
    }
}

int tz_journal_remove(const char *archive, int durable, tacozip_error *err) {
    char *jp = tz_journal_path(archive);
    if (!jp) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    int rc = TACOZ_OK;
    if (unlink(jp) != 0 && errno != ENOENT) {
        /* a journal that cannot be removed must at least never be applied:
         * cut short, it is no longer complete */
        int e = errno, jfd = open(jp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        int emptied = jfd >= 0 && ftruncate(jfd, 0) == 0 && (!durable || fsync(jfd) == 0);
        if (jfd >= 0) close(jfd);
        rc = emptied ? tz_fail_errno(err, TACOZ_ERR_IO, e,
                                     "the archive is written, but its journal could not be removed (it was emptied, "
                                     "so it is never applied)")
                     : tz_fail_errno(err, TACOZ_ERR_IO, e, "cannot remove the journal %s: run \"tacozip recover\"", jp);
    } else if (durable && tz_fsync_dir_of(jp) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno,
                           "the archive is written, but fsync of its directory failed (after a power loss the old "
                           "archive may come back)");
    }
    free(jp);
    return rc;
}

int tz_journal_recover(const char *archive, int fd, int durable, int *what, tacozip_error *err) {
    tz_journal j;
    *what = TACOZIP_RECOVERED_NOTHING;
    /* what a create killed while replacing it left, and a journal killed
     * while being written under a temporary name (never applied) */
    char *jp = tz_journal_path(archive);
    if (!jp) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    tz_newfile_sweep_path(archive);
    tz_newfile_sweep_path(jp);
    free(jp);
    int rc = tz_journal_read(archive, fd, &j, err);
    if (rc) return rc;
    if (j.state == TZ_JOURNAL_HOT) {
        if ((rc = tz_journal_apply(fd, j.r, j.n, j.old_size, durable, err)) == TACOZ_OK)
            *what = j.op == TZ_JOURNAL_OP_UPDATE ? TACOZIP_RECOVERED_UPDATE : TACOZIP_RECOVERED_APPEND;
    } else if (j.state == TZ_JOURNAL_STALE) {
        *what = TACOZIP_RECOVERED_STALE;
    }
    if (rc == TACOZ_OK && j.state != TZ_JOURNAL_NONE) rc = tz_journal_remove(archive, durable, err);
    tz_journal_free(&j);
    return rc;
}
