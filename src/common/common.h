/* common.h - the bottom layer: byte order, errors, CRC-32, names, DOS time,
 * full reads and writes, URLs.  Calls nothing else in the library.
 * Nothing here is public; the CLI and the Python extension use tacozip.h. */
#ifndef TACOZIP_COMMON_H
#define TACOZIP_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tacozip.h"

/* ---- little-endian helpers ------------------------------------------- */

static inline uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static inline void wr16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void wr32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static inline void wr64(unsigned char *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* ---- errors (error.c) --------------------------------------------------- */

#if defined(__GNUC__)
#define TZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TZ_PRINTF(a, b)
#endif

/* The 1.1 layout of tacozip_error, which every caller has at least. */
#define TZ_ERROR_V1_SIZE sizeof(tacozip_error)

/* 1 if the library may write the 1.1 fields of "err" (not NULL, and its
 * struct_size is 0 or at least the 1.1 layout). */
int tz_err_writable(const tacozip_error *err);
/* Record code + formatted message in "err" (may be NULL); returns code. */
int tz_fail(tacozip_error *err, int code, const char *fmt, ...) TZ_PRINTF(3, 4);
/* Same, appending ": strerror(errno_value)". */
int tz_fail_errno(tacozip_error *err, int code, int errno_value, const char *fmt, ...) TZ_PRINTF(4, 5);
/* Put "name: " in front of the message already in "err" (the one rule for
 * naming a path: see tacozip.h).  Returns err->code (or "code" if err is
 * NULL). */
int tz_err_prefix(tacozip_error *err, int code, const char *name);
/* Check a sized struct's struct_size against its 1.1 layout: TACOZ_OK, or
 * TACOZ_ERR_PARAM with a message. */
int tz_check_struct_size(uint32_t struct_size, size_t v1_size, const char *what, tacozip_error *err);

/* ---- CRC-32 (crc.c: libdeflate, else zlib) ----------------------------- */

uint32_t tz_crc32(uint32_t crc, const void *data, size_t len);

/* ---- deflate in zlib format, for TACO_INDEX (deflate.c: libdeflate, else zlib) */

/* Compress "in" into a new buffer (*out, *out_len; caller frees). */
int tz_zlib_compress(const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len,
                     tacozip_error *err);
/* Decompress exactly "out_len" bytes into "out"; 0 on success, -1 if the
 * stream is corrupt or does not decode to exactly out_len bytes. */
int tz_zlib_decompress(const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len);

/* ---- names (names.c) -------------------------------------------------- */

/* 1 if "name" (len bytes) is safe as a relative path inside a directory:
 * not empty, no NUL, no leading '/', no backslash, no drive letter, no "."
 * or ".." component.  A trailing '/' (directory entry) is allowed. */
int tz_name_is_safe(const char *name, size_t len);

/* An open-addressing set of names, each given as an index into a table the
 * caller owns ("name_of" gives the bytes of index i).  Used by the
 * directory's lookup and by the writer's duplicate check. */
typedef const char *(*tz_name_of_fn)(const void *ctx, size_t i, size_t *len);
typedef struct {
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t mask;
    const void *ctx;
    tz_name_of_fn name_of;
    uint64_t key[2]; /* SipHash key, random for each table (names.c) */
} tz_name_table;
int tz_names_init(tz_name_table *t, size_t capacity_hint, const void *ctx, tz_name_of_fn name_of,
                  tacozip_error *err);
void tz_names_free(tz_name_table *t);
/* Insert index i: TACOZ_OK, or TACOZ_ERR_EXISTS (and *other = the index
 * already holding that name). */
int tz_names_insert(tz_name_table *t, size_t i, size_t *other);
/* Look a name up: TACOZ_OK and *index, or TACOZ_ERR_NOT_FOUND. */
int tz_names_find(const tz_name_table *t, const char *name, size_t len, size_t *index);
/* Make room for index "count" (indices 0..count-1 are in the table and
 * distinct; they are inserted again into a larger table when needed). */
int tz_names_reserve(tz_name_table *t, size_t count, tacozip_error *err);
/* SipHash-c-d of "in" under a 16-byte key (little-endian k0, k1), as in
 * the paper; the name table uses c = 1, d = 3. */
uint64_t tz_siphash(int c, int d, const unsigned char key[16], const void *in, size_t n);

/* ---- time (dostime.c) ------------------------------------------------ */

/* DOS date/time of Unix time "t": in UTC when "utc" (reproducible bytes),
 * else in local time (what unzip shows for file times). */
uint32_t tz_dos_datetime(int64_t t, int utc);

/* ---- full reads and writes (io.c) ------------------------------------- */

/* pread until "len" bytes: 1 done, 0 end of file first, -1 error (errno). */
int tz_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* pwrite / write until done: 0 done, -1 error (errno). */
int tz_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int tz_write_full(int fd, const void *buf, size_t len);
/* Take the writers' lock of the file open on "fd" (an open-file-description
 * write lock on the whole file, fcntl F_OFD_SETLK; never waits): TACOZ_OK,
 * or TACOZ_ERR_LOCKED when another writer holds it.  On a filesystem
 * without such locks, TACOZ_OK (nothing to serialize with). */
int tz_lock_writer(int fd, tacozip_error *err);
/* The directory holding "path", opened (O_DIRECTORY): an fd or -1
 * (errno); *base points at the last component of "path" (empty when it
 * ends in '/'). */
int tz_open_parent(const char *path, const char **base);
/* fsync the directory holding "path": 0 or -1. */
int tz_fsync_dir_of(const char *path);

/* Give the unnamed file open on "fd" (O_TMPFILE) the name "name" in
 * directory "dfd" (AT_FDCWD: relative to the working directory): linkat of
 * /proc/self/fd/N, else AT_EMPTY_PATH.  Never replaces: -1 with EEXIST if
 * the name is taken.  0 or -1 (errno). */
int tz_tmpfile_link(int fd, int dfd, const char *name);
/* 1 if unnamed files can be linked here (/proc/self/fd is there). */
int tz_tmpfile_usable(void);

/* A new file that appears under its name only when complete: written
 * unnamed (O_TMPFILE) where the filesystem can, so that nothing is left
 * behind if the process is killed.  Replacing a file needs a temporary
 * name (linkat cannot replace): "<name>.tacozip-new", renamed over it at
 * once; without O_TMPFILE the file has that name from the start.  The new
 * file is locked (fcntl OFD) while it is written, so that one orphaned by a
 * killed process is told from a live one: tz_newfile_sweep() removes the
 * orphans, and the next writer of the same name does.  (A random
 * ".tacozip-XXXXXXXXXXXX.tmp" is used when a live writer has that name.) */
#define TZ_TEMP_NAME_MAX 272
#define TZ_NEW_SUFFIX ".tacozip-new"
typedef struct {
    int dfd;                    /* the directory (the caller's; not closed here) */
    int fd;                     /* the file, open O_RDWR; -1 once committed or aborted */
    char tmp[TZ_TEMP_NAME_MAX]; /* its temporary name, "" while it has none */
} tz_newfile;
/* Create it in "dfd", to become "name", with "mode" (the umask applies),
 * first removing an orphaned "<name>.tacozip-new": 0 or -1 (errno). */
int tz_newfile_open(tz_newfile *f, int dfd, const char *name, mode_t mode);
/* Remove "<name>.tacozip-new" in "dfd" (or beside "path") if no live
 * writer holds it: 1 if one was removed. */
int tz_newfile_sweep(int dfd, const char *name);
int tz_newfile_sweep_path(const char *path);
/* Give it "name" and close it.  "replace": an existing file of that name
 * is replaced atomically (rename); otherwise one that is there fails with
 * EEXIST and is left as it is.  0 or -1 (errno); on failure nothing of the
 * new file is left. */
int tz_newfile_commit(tz_newfile *f, const char *name, int replace);
/* Close and remove it (nothing is left). */
void tz_newfile_abort(tz_newfile *f);

/* ---- rollback journal (journal.c) -------------------------------------- */

/* See journal.c for the protocol and the layout. */
#define TZ_JOURNAL_SUFFIX ".tacozip-journal"
enum { TZ_JOURNAL_OP_APPEND = 1, TZ_JOURNAL_OP_UPDATE = 2 };
enum { TZ_JOURNAL_NONE = 0, TZ_JOURNAL_HOT, TZ_JOURNAL_STALE };
typedef struct {
    uint64_t off, len;
    const unsigned char *data;
} tz_jregion;
typedef struct {
    int state;         /* TZ_JOURNAL_NONE, _HOT (complete and this file's), _STALE (another file's, or cut short) */
    uint32_t op;
    uint64_t fp_off, fp_len; /* bytes of the archive the write does not change */
    uint32_t fp_crc;         /* and their CRC-32 */
    uint64_t old_size; /* the size of the archive before the write */
    size_t n;
    tz_jregion r[16];  /* the old bytes (pointing into buf) */
    unsigned char *buf;
} tz_journal;
/* "archive" + TZ_JOURNAL_SUFFIX, newly allocated (NULL: out of memory). */
char *tz_journal_path(const char *archive);
/* Save the old bytes of the regions of the archive open on "fd" (for
 * reading and writing) that a write is about to change, the size to
 * truncate back to, and the CRC-32 of [fp_off, fp_off+fp_len) (at most the
 * first 64 KiB of it), bytes the write leaves alone, which tell this
 * archive from another.  The journal appears only complete, and durable
 * when "durable" (file and directory fsynced).  TACOZ_ERR_IO (EEXIST: a
 * journal is there), TACOZ_ERR_NOMEM. */
int tz_journal_write(const char *archive, int fd, uint32_t op, uint64_t old_size, const tz_jregion *r, size_t n,
                     uint64_t fp_off, uint64_t fp_len, int durable, tacozip_error *err);
/* Read the journal of the archive open on "fd" (for reading), if any:
 * j->state says what was found (HOT: complete, and the unchanged bytes it
 * names are those of this file).  Only TACOZ_ERR_NOMEM / TACOZ_ERR_IO are errors. */
int tz_journal_read(const char *archive, int fd, tz_journal *j, tacozip_error *err);
void tz_journal_free(tz_journal *j);
/* Copy the old bytes of [off, off+len) that a hot journal holds over buf. */
void tz_journal_overlay(const tz_journal *j, uint64_t off, void *buf, size_t len);
/* Put regions back and truncate to old_size (fsync when durable). */
int tz_journal_apply(int fd, const tz_jregion *r, size_t n, uint64_t old_size, int durable, tacozip_error *err);
/* After a failed write, with its journal written: put the old bytes back
 * and remove the journal; if that fails, keep the journal (for a later
 * recover) and say so at the end of err's message. */
void tz_journal_rollback_after(const char *archive, int fd, const tz_jregion *r, size_t n, uint64_t old_size,
                               int durable, tacozip_error *err);
/* Remove the journal (the commit of a write); one that cannot be removed is
 * cut to 0 bytes so that it is never applied. */
int tz_journal_remove(const char *archive, int durable, tacozip_error *err);
/* With the writers' lock held on "fd": roll a hot journal back and remove
 * it, or remove a stale one; *what: TACOZIP_RECOVERED_*. */
int tz_journal_recover(const char *archive, int fd, int durable, int *what, tacozip_error *err);

/* ---- URLs (url.c) ----------------------------------------------------- */

typedef enum { TZ_LOCAL = 0, TZ_HTTP, TZ_HTTPS, TZ_S3 } tz_scheme;
/* The scheme of "path", matched without regard to case. */
tz_scheme tz_url_scheme(const char *path);
/* "path" as shown in messages: URLs lose user:password@, query, fragment. */
void tz_display_name(const char *path, char *out, size_t cap);
/* A newly allocated display name (NULL if out of memory). */
char *tz_display_dup(const char *path);
char *tz_strdup(const char *s);

#endif
