/* extract.c - writing members to files, never outside the destination.
 *
 * Every path is walked one component at a time with openat(O_NOFOLLOW), so
 * neither a hostile name nor a symbolic link planted in the destination can
 * redirect a write.  Each file is written unnamed (common/io.c's
 * tz_newfile: O_TMPFILE, else a temporary name), its CRC checked, then
 * linked into place.  A failure or a cancel removes the
 * files the call created. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reader.h"

#define CHUNK (1u << 20)
/* The longest name and the deepest tree a member may ask for (a 65,535-byte
 * name of "a/a/..." would otherwise become 32,767 nested directories). */
#define NAME_MAX_BYTES 4095
#define DEPTH_MAX 128

/* Open (creating if needed) directory "rel" (len bytes, no trailing '/')
 * below "root" without following symbolic links.  Returns an fd or -1. */
static int open_dirs(int root, const char *rel, size_t len, int create) {
    int fd = dup(root);
    size_t start = 0;
    char comp[4096];
    while (fd >= 0 && start < len) {
        size_t end = start;
        while (end < len && rel[end] != '/') end++;
        size_t clen = end - start;
        if (clen >= sizeof comp) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, rel + start, clen);
        comp[clen] = '\0';
        if (create && mkdirat(fd, comp, 0777) != 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
        start = end + 1;
    }
    return fd;
}

/* mkdir -p: create "path" and any missing parents, as zipfile.extractall
 * and tar do ("dest_dir (created if missing)" in tacozip.h). */
static int mkdir_parents(const char *path) {
    if (!*path) {
        errno = ENOENT;
        return -1;
    }
    char *buf = strdup(path);
    if (!buf) return -1;
    int rc = 0;
    for (char *p = buf + 1; *p && rc == 0; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) rc = -1;
        *p = '/';
    }
    if (rc == 0 && mkdir(buf, 0777) != 0 && errno != EEXIST) rc = -1;
    int e = errno;
    free(buf);
    errno = e;
    return rc;
}

/* Write member "idx" under "root".  Its data comes from "mem" when the
 * caller fetched it already (local header checked), else from the source
 * through "buf" (CHUNK bytes).  Sets *created when the file did not exist
 * before. */
static int write_member(tacozip_archive *ar, size_t idx, int root, unsigned flags, unsigned char *buf,
                        const unsigned char *mem, uint64_t *done, uint64_t total, uint64_t files_done,
                        uint64_t files_total, tacozip_progress_fn progress, void *user, int *created,
                        tacozip_error *err) {
    tz_entry *e = &ar->dir.entries[idx];
    const char *name = tz_dir_name(&ar->dir, idx);
    size_t len = e->name_len;
    *created = 0;
    if (name[len - 1] == '/') { /* directory entry */
        int fd = open_dirs(root, name, len - 1, 1);
        if (fd < 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot create directory \"%.200s\"", name);
        close(fd);
        return TACOZ_OK;
    }
    const char *slash = memrchr(name, '/', len);
    size_t dlen = slash ? (size_t)(slash - name) : 0;
    const char *base = slash ? slash + 1 : name;
    int dfd = open_dirs(root, name, dlen, 1);
    if (dfd < 0)
        return tz_fail_errno(err, errno == ELOOP || errno == ENOTDIR ? TACOZ_ERR_UNSAFE_PATH : TACOZ_ERR_IO, errno,
                             "cannot create the directory of \"%.200s\" (a symbolic link or file is in the way?)", name);
    int rc = TACOZ_OK, existed = 0, fd = -1;
    struct stat st;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        existed = 1;
        if (!(flags & TACOZIP_EXTRACT_OVERWRITE))
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "\"%.200s\" exists (use overwrite to replace it)", name);
        else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "\"%.200s\" exists and is not a file", name);
    }
    tz_newfile out = {.dfd = dfd, .fd = -1};
    if (rc == TACOZ_OK) {
        if (tz_newfile_open(&out, dfd, base, 0666) != 0)
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot create \"%.200s\"", name);
        fd = out.fd;
    }
    uint32_t crc = 0;
    if (rc == TACOZ_OK && !mem && e->csize == 0 && !__atomic_load_n(&e->lfh_checked, __ATOMIC_ACQUIRE))
        rc = tz_dir_read_local(&ar->dir, ar->src, idx, err);
    for (uint64_t off = 0; rc == TACOZ_OK && off < e->csize;) {
        size_t n = e->csize - off < CHUNK ? (size_t)(e->csize - off) : CHUNK;
        const unsigned char *data = buf;
        if (mem) data = mem + off;
        else rc = tz_read_member_data(ar, idx, off, buf, n, err); /* checks the local header first */
        if (rc) break;
        crc = tz_crc32(crc, data, n);
        if (tz_write_full(fd, data, n) != 0) {
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "writing \"%.200s\"", name);
            break;
        }
        off += n;
        *done += n;
        if (progress && progress(user, *done, total, files_done, files_total))
            rc = tz_fail(err, TACOZ_ERR_CANCELLED, "cancelled");
    }
    if (rc == TACOZ_OK && crc != e->crc32)
        rc = tz_fail(err, TACOZ_INVALID_CRC_MEMBER, "\"%.200s\": CRC-32 is %08x, the archive says %08x", name, crc,
                     e->crc32);
    if (rc == TACOZ_OK && tz_newfile_commit(&out, base, existed) != 0)
        rc = errno == EEXIST && !existed
                 ? tz_fail(err, TACOZ_ERR_EXISTS, "\"%.200s\" appeared while it was being extracted (left as it is)", name)
                 : tz_fail_errno(err, TACOZ_ERR_IO, errno, "writing \"%.200s\" into place", name);
    tz_newfile_abort(&out);
    if (rc == TACOZ_OK) *created = !existed;
    close(dfd);
    return rc;
}

/* Remove the file of member "idx" that this call created. */
static void remove_created(tacozip_archive *ar, int root, size_t idx) {
    const char *name = tz_dir_name(&ar->dir, idx);
    size_t len = ar->dir.entries[idx].name_len;
    const char *slash = memrchr(name, '/', len);
    int dfd = open_dirs(root, name, slash ? (size_t)(slash - name) : 0, 0);
    if (dfd < 0) return;
    unlinkat(dfd, slash ? slash + 1 : name, 0);
    close(dfd);
}

#define BATCH_BYTES (32u << 20)  /* bytes fetched per batch from a remote archive */
#define BATCH_MEMBER (4u << 20)  /* larger members are streamed instead */

/* From sel[0..n), the leading run of small file members (at most
 * BATCH_BYTES in all), fetched into one buffer: rg[j] holds member j's
 * local header and data.  *nb = 0 when sel[0] is to be streamed. */
static int prefetch(tacozip_archive *ar, const size_t *sel, size_t n, size_t *nb, unsigned char **batch,
                    tacozip_range **rg_out, tacozip_error *err) {
    size_t m = 0;
    uint64_t bytes = 0;
    while (m < n) {
        const tz_entry *e = &ar->dir.entries[sel[m]];
        uint64_t len = e->data_offset + e->csize - e->header_offset;
        if (e->csize == 0 || e->csize > BATCH_MEMBER || tz_dir_name(&ar->dir, sel[m])[e->name_len - 1] == '/' ||
            bytes + len > BATCH_BYTES)
            break;
        bytes += len;
        m++;
    }
    *nb = 0;
    if (m < 2) return TACOZ_OK; /* one member: the streaming path does the same in one request */
    tacozip_range *rg = calloc(m, sizeof *rg);
    unsigned char *mem = malloc((size_t)bytes);
    if (!rg || !mem) {
        free(rg), free(mem);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    size_t at = 0;
    for (size_t j = 0; j < m; j++) {
        const tz_entry *e = &ar->dir.entries[sel[j]];
        rg[j].offset = e->header_offset;
        rg[j].length = e->data_offset + e->csize - e->header_offset;
        rg[j].buf = mem + at;
        at += (size_t)rg[j].length;
    }
    int rc = tz_read_ranges(ar, rg, m, TACOZIP_DEFAULT_GAP, err);
    if (rc) {
        free(rg), free(mem);
        return rc;
    }
    *nb = m;
    *batch = mem;
    *rg_out = rg;
    return TACOZ_OK;
}

static int extract(tacozip_archive *ar, const char *dest_dir, const char *const *names, size_t n, unsigned flags,
                   tacozip_progress_fn progress, void *user, tacozip_error *err) {
    size_t count = names ? n : ar->dir.count, k = 0, ncreated = 0;
    size_t *sel = malloc((count ? count : 1) * sizeof *sel);
    size_t *created = malloc((count ? count : 1) * sizeof *created);
    unsigned char *buf = malloc(CHUNK);
    int rc = TACOZ_OK, root = -1;
    uint64_t total = 0, done = 0;
    if (!sel || !created || !buf) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    /* First pass: resolve and check every name before writing anything. */
    for (size_t i = 0; i < count; i++) {
        size_t idx = i;
        if (names && tacozip_find(ar, names[i], (size_t)-1, &idx) != TACOZ_OK) {
            rc = tz_fail(err, TACOZ_ERR_NOT_FOUND, "member \"%.200s\" is not in the archive", names[i]);
            goto cleanup;
        }
        tz_entry *e = &ar->dir.entries[idx];
        const char *name = tz_dir_name(&ar->dir, idx);
        if ((flags & TACOZIP_EXTRACT_SKIP_HEADER) && idx == 0 && ar->header_state != TZ_HEADER_ABSENT) continue;
        if (!tz_name_is_safe(name, e->name_len)) {
            rc = tz_fail(err, TACOZ_ERR_UNSAFE_PATH, "refusing member \"%.200s\": absolute path, '..' or '\\' component",
                         name);
            goto cleanup;
        }
        size_t depth = 1;
        for (size_t c = 0; c + 1 < e->name_len; c++) depth += name[c] == '/';
        if (e->name_len > NAME_MAX_BYTES || depth > DEPTH_MAX) {
            rc = tz_fail(err, TACOZ_ERR_UNSAFE_PATH,
                         "refusing member \"%.100s...\": a name of %u bytes and %zu levels (at most %d bytes and %d "
                         "levels are extracted)",
                         name, (unsigned)e->name_len, depth, NAME_MAX_BYTES, DEPTH_MAX);
            goto cleanup;
        }
        if ((rc = tz_dir_check_stored(&ar->dir, idx, err))) goto cleanup;
        /* a local archive's headers are all checked before writing; a
         * remote one's with the first read of each member */
        if (!ar->src->round_trips && !__atomic_load_n(&e->lfh_checked, __ATOMIC_ACQUIRE) &&
            (rc = tz_dir_read_local(&ar->dir, ar->src, idx, err)) != TACOZ_OK)
            goto cleanup;
        sel[k++] = idx;
        total += e->csize;
    }
    if (mkdir_parents(dest_dir) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot create %s", dest_dir);
        goto cleanup;
    }
    if ((root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "cannot open %s", dest_dir);
        goto cleanup;
    }
    /* Before writing anything, refuse a member whose directories would go
     * through a symbolic link (or a file) already under dest_dir, and one
     * whose file exists (unless overwriting: then one that is not a file);
     * write_member() still checks each component, and the final rename
     * does not replace a file that appears meanwhile. */
    for (size_t i = 0; i < k; i++) {
        const tz_entry *e = &ar->dir.entries[sel[i]];
        const char *name = tz_dir_name(&ar->dir, sel[i]);
        const char *slash = memrchr(name, '/', e->name_len);
        int fd = open_dirs(root, name, slash ? (size_t)(slash - name) : 0, 0);
        if (fd >= 0) {
            struct stat st;
            const char *base = slash ? slash + 1 : name;
            int exists = name[e->name_len - 1] != '/' && fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
            close(fd);
            if (exists && !(flags & TACOZIP_EXTRACT_OVERWRITE)) {
                rc = tz_fail(err, TACOZ_ERR_EXISTS, "\"%.200s\" exists (use overwrite to replace it); nothing extracted",
                             name);
                goto cleanup;
            }
            if (exists && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                rc = tz_fail(err, TACOZ_ERR_EXISTS, "\"%.200s\" exists and is not a file; nothing extracted", name);
                goto cleanup;
            }
        } else if (errno == ELOOP || errno == ENOTDIR) {
            rc = tz_fail(err, TACOZ_ERR_UNSAFE_PATH,
                         "refusing member \"%.200s\": a symbolic link or file in %s is in its way", name, dest_dir);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < k && rc == TACOZ_OK;) {
        /* Sources with round trips: fetch a batch of small members at once
         * (each with its local header; neighbours coalesced, requests in
         * parallel), so that a split of many files costs a few requests. */
        size_t nb = 0;
        unsigned char *batch = NULL;
        tacozip_range *rg = NULL;
        if (ar->src->round_trips && (rc = prefetch(ar, sel + i, k - i, &nb, &batch, &rg, err))) break;
        size_t step = nb ? nb : 1;
        for (size_t j = 0; j < step && rc == TACOZ_OK; j++) {
            const unsigned char *mem = NULL;
            if (nb) {
                const tz_entry *e = &ar->dir.entries[sel[i + j]];
                rc = tz_dir_check_local(&ar->dir, sel[i + j], rg[j].buf, (size_t)rg[j].length, err);
                mem = (const unsigned char *)rg[j].buf + (e->data_offset - e->header_offset);
            }
            int was_created = 0;
            if (rc == TACOZ_OK)
                rc = write_member(ar, sel[i + j], root, flags, buf, mem, &done, total, i + j, k, progress, user,
                                  &was_created, err);
            if (was_created) created[ncreated++] = sel[i + j];
            if (rc == TACOZ_OK && progress && progress(user, done, total, i + j + 1, k))
                rc = tz_fail(err, TACOZ_ERR_CANCELLED, "cancelled");
        }
        free(batch);
        free(rg);
        i += step;
    }
cleanup:
    if (rc && root >= 0)
        for (size_t i = 0; i < ncreated; i++) remove_created(ar, root, created[i]);
    if (root >= 0) close(root);
    free(sel);
    free(created);
    free(buf);
    return rc;
}

int tacozip_extract(tacozip_archive *ar, const char *dest_dir, const char *const *names, size_t n, unsigned flags,
                    tacozip_progress_fn progress, void *user, tacozip_error *err) {
    if (!ar || !dest_dir || (n && !names)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    return tz_ar_fail(ar, err, extract(ar, dest_dir, names, n, flags, progress, user, err));
}
