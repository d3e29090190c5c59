/* io.c - reads and writes that finish what they start (EINTR, short counts). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MAX_IO ((size_t)1 << 30)

int tz_pread_full(int fd, void *buf, size_t len, uint64_t off) {
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len > MAX_IO ? MAX_IO : len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) return 0;
        p += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 1;
}

int tz_pwrite_full(int fd, const void *buf, size_t len, uint64_t off) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len > MAX_IO ? MAX_IO : len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

int tz_lock_writer(int fd, tacozip_error *err) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* l_start 0, l_len 0: the whole file */
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return TACOZ_OK;
    if (errno == EAGAIN || errno == EACCES)
        return tz_fail(err, TACOZ_ERR_LOCKED, "the archive is locked: another process is writing it");
    if (errno == EINVAL || errno == ENOLCK || errno == EOPNOTSUPP) return TACOZ_OK; /* no such locks here */
    return tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot lock the archive");
}

int tz_write_full(int fd, const void *buf, size_t len) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len > MAX_IO ? MAX_IO : len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n, len -= (size_t)n;
    }
    return 0;
}

int tz_fsync_dir_of(const char *path) {
    char *copy = tz_strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}
