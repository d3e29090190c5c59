/* io.c - reads and writes that finish what they start (EINTR, short counts). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
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

int tz_open_parent(const char *path, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash) return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (slash == path) return open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    return fd;
}

int tz_fsync_dir_of(const char *path) {
    const char *base;
    int fd = tz_open_parent(path, &base);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int tz_tmpfile_usable(void) {
    /* an unnamed file is linked through /proc/self/fd (AT_EMPTY_PATH needs
     * a privilege): without /proc, named temporary files are used */
    return access("/proc/self/fd", X_OK) == 0;
}

int tz_tmpfile_link(int fd, int dfd, const char *name) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno != ENOENT && errno != EACCES && errno != ENOTDIR) return -1; /* EEXIST and the like */
    return linkat(fd, "", dfd, name, AT_EMPTY_PATH);                     /* no /proc (needs a privilege) */
}

/* A name for a temporary file: ".tacozip-" and 12 random letters. */
static void random_name(char out[TZ_TEMP_NAME_MAX]) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[12];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof r; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
            r[i] = (unsigned char)(x >> 56);
    }
    char *p = out + sprintf(out, ".tacozip-");
    for (size_t i = 0; i < sizeof r; i++) *p++ = letters[r[i] % (sizeof letters - 1)];
    strcpy(p, ".tmp");
}

/* The temporary name of a new file "name": "<name>.tacozip-new" (what
 * tz_newfile_sweep() looks for), or 0 if that is too long for a name. */
static int fixed_name(const char *name, char out[TZ_TEMP_NAME_MAX]) {
    return snprintf(out, TZ_TEMP_NAME_MAX, "%s" TZ_NEW_SUFFIX, name) < 256;
}

/* 1 if no process holds a lock on the file open on "fd" (its writer is
 * gone: every tz_newfile is locked from the moment it exists). */
static int unlocked(int fd) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
}

int tz_newfile_sweep(int dfd, const char *name) {
    char tmp[TZ_TEMP_NAME_MAX];
    if (!fixed_name(name, tmp)) return 0;
    int fd = openat(dfd, tmp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    int removed = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && unlocked(fd) && unlinkat(dfd, tmp, 0) == 0;
    close(fd);
    return removed;
}

int tz_newfile_sweep_path(const char *path) {
    const char *base;
    int dfd = tz_open_parent(path, &base);
    if (dfd < 0) return 0;
    int removed = tz_newfile_sweep(dfd, base);
    close(dfd);
    return removed;
}

/* Give a temporary name in f->dfd to the unnamed file f->fd: the fixed
 * one (an orphan of a killed writer was swept at open), else a random one
 * when a live writer has it. */
static int name_unnamed(tz_newfile *f, const char *name) {
    if (fixed_name(name, f->tmp)) {
        if (tz_tmpfile_link(f->fd, f->dfd, f->tmp) == 0) return 0;
        if (errno != EEXIST) goto fail;
    }
    for (int tries = 0; tries < 100; tries++) {
        random_name(f->tmp);
        if (tz_tmpfile_link(f->fd, f->dfd, f->tmp) == 0) return 0;
        if (errno != EEXIST) break;
    }
fail:
    f->tmp[0] = '\0';
    return -1;
}

/* The lock that tells tz_newfile_sweep() the writer is alive. */
static void hold(int fd) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fcntl(fd, F_OFD_SETLK, &fl); /* where there are no such locks, no sweeping either */
}

int tz_newfile_open(tz_newfile *f, int dfd, const char *name, mode_t mode) {
    f->dfd = dfd;
    f->tmp[0] = '\0';
    tz_newfile_sweep(dfd, name); /* what a killed writer of this name left */
    f->fd = tz_tmpfile_usable() ? openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode) : -1;
    if (f->fd >= 0) {
        hold(f->fd);
        return 0;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT && errno != EACCES) return -1;
    /* no O_TMPFILE here: a named temporary file from the start */
    int fixed = fixed_name(name, f->tmp);
    for (int tries = 0; tries < 100; tries++) {
        if (!fixed || tries) random_name(f->tmp);
        f->fd = openat(dfd, f->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (f->fd >= 0) {
            hold(f->fd);
            return 0;
        }
        if (errno != EEXIST) break;
    }
    f->tmp[0] = '\0';
    return -1;
}
/* Rename f->tmp to "name" without replacing a file that appeared there:
 * renameat2(RENAME_NOREPLACE) where the kernel and the filesystem have it,
 * else link(2), which fails on an existing name, then the temporary name
 * removed; where neither is possible (no hard links), a plain rename after
 * a check. */
static int rename_noreplace(int dfd, const char *tmp, const char *name) {
#ifdef RENAME_NOREPLACE
    if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return -1;
#endif
    if (linkat(dfd, tmp, dfd, name, 0) == 0) return unlinkat(dfd, tmp, 0) == 0 || errno == ENOENT ? 0 : -1;
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK) return -1;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(dfd, tmp, dfd, name);
}

int tz_newfile_commit(tz_newfile *f, const char *name, int replace) {
    int r;
    if (f->tmp[0]) {
        r = replace ? renameat(f->dfd, f->tmp, f->dfd, name) : rename_noreplace(f->dfd, f->tmp, name);
    } else {
        /* unnamed: linkat gives it the name at once where nothing is there
         * (and never replaces); replacing needs a temporary name, then a
         * rename (a kill between the two leaves that name) */
        r = tz_tmpfile_link(f->fd, f->dfd, name);
        if (r != 0 && errno == EEXIST && replace) {
            r = name_unnamed(f, name);
            if (r == 0) r = renameat(f->dfd, f->tmp, f->dfd, name);
        }
    }
    int e = errno;
    if (r == 0) f->tmp[0] = '\0';
    if (close(f->fd) != 0 && r == 0) e = errno, r = -1;
    f->fd = -1;
    if (r != 0 && f->tmp[0]) unlinkat(f->dfd, f->tmp, 0);
    f->tmp[0] = '\0';
    errno = e;
    return r;
}

void tz_newfile_abort(tz_newfile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp[0]) unlinkat(f->dfd, f->tmp, 0);
    f->tmp[0] = '\0';
}
