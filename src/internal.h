/* internal.h - declarations shared by the library's source files.
 * Nothing here is public; the CLI and the Python extension use tacozip.h. */
#ifndef TACOZIP_INTERNAL_H
#define TACOZIP_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tacozip.h"

/* ---- little-endian helpers ------------------------------------------- */

static inline uint16_t rd16(const unsigned char *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t rd64(const unsigned char *p) {
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}
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

/* ---- ZIP record constants (APPNOTE 6.3.10) ---------------------------- */

#define ZIP_LFH_SIG 0x04034b50u
#define ZIP_CDH_SIG 0x02014b50u
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_LOC_SIG 0x07064b50u

#define ZIP_LFH_SIZE 30
#define ZIP_CDH_SIZE 46
#define ZIP_EOCD_SIZE 22
#define ZIP64_EOCD_SIZE 56
#define ZIP64_LOC_SIZE 20
#define ZIP_MAX_COMMENT 65535

#define ZIP64_EXTRA_ID 0x0001
#define ZIP_ALIGN_EXTRA_ID 0xD935
#define ZIP_FLAG_ENCRYPTED 0x0001u
#define ZIP_FLAG_DATA_DESCRIPTOR 0x0008u
#define ZIP_FLAG_UTF8 0x0800u

#define TACO_PAYLOAD_OFFSET 41 /* 30 + 11 */
#define TACO_CRC_OFFSET 14

/* ---- errors ----------------------------------------------------------- */

/* Record code + formatted message in "err" (may be NULL); returns code. */
int tz_fail(tacozip_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Same, appending ": strerror(errno_value)". */
int tz_fail_errno(tacozip_error *err, int code, int errno_value, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- CRC-32 ----------------------------------------------------------- */

uint32_t tz_crc32(uint32_t crc, const void *data, size_t len);

/* ---- TACO header ------------------------------------------------------ */

/* Fill the 116-byte payload. */
void tz_header_payload(const taco_meta_array_t *in, unsigned char payload[TACO_HEADER_PAYLOAD_SIZE]);
/* Build the 157-byte member with a given DOS date/time. */
void tz_header_build(const taco_meta_array_t *in, uint32_t dos_datetime,
                     unsigned char out[TACO_HEADER_SIZE]);
/* Decode a 157-byte member: TACOZ_OK or a TACOZ_INVALID_* code
 * (NOT_ZIP, NO_TACO, HEADER_SIZE, META_COUNT). */
int tz_header_check(const unsigned char *buf, taco_meta_array_t *out);

/* ---- byte sources ----------------------------------------------------- */

/* One range of a multi-range read. */
typedef struct {
    uint64_t offset;
    uint64_t length;
    unsigned char *buf;
} tz_range;

/* Request counters of a remote source. */
typedef struct {
    uint64_t requests;
    uint64_t bytes;    /* body bytes received */
    uint64_t retries;
} tz_remote_stats;

/* Settings of a remote source (from the environment, see docs/remote.md). */
typedef struct {
    int retries;
    long backoff_ms, max_backoff_ms;
    long connect_timeout_ms, stall_timeout_s;
    int parallel;
    uint64_t max_skip;       /* bytes we accept to discard when Range is ignored */
    char ca_bundle[512];
} tz_remote_options;

/* A random-access byte source under the reader.  read_at reads exactly
 * "len" bytes or fails (TACOZ_ERR_IO / TACOZ_INVALID_FILE_SIZE / network
 * codes).  A remote source does not know its size until its first
 * response: size is UINT64_MAX until then; read_tail learns it. */
typedef struct tz_source tz_source;
struct tz_source {
    uint64_t size;
    int remote;
    int (*read_at)(tz_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err);
    void (*destroy)(tz_source *src);
    /* Zero-copy view of [off, off+len) if the source is memory, else NULL. */
    const unsigned char *(*view)(tz_source *src, uint64_t off, size_t len);
    /* Optional: the last min(want, size) bytes (sets size). */
    int (*read_tail)(tz_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                     tacozip_error *err);
    /* Optional: several ranges at once (in parallel). */
    int (*read_many)(tz_source *src, tz_range *ranges, size_t n, tacozip_error *err);
    /* Optional: the first min(want, size) bytes (sets size). */
    int (*read_head)(tz_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err);
    /* Optional: request counters. */
    int (*stats)(tz_source *src, tz_remote_stats *out);
};

int tz_source_file(const char *path, tz_source **out, tacozip_error *err);
int tz_source_memory(const void *data, size_t len, tz_source **out, tacozip_error *err);
int tz_source_remote(const char *url, tz_source **out, tacozip_error *err);
/* A path or an http(s):// or s3:// URL. */
int tz_source_open(const char *path_or_url, tz_source **out, tacozip_error *err);
int tz_is_url(const char *path);
/* "path" as shown in messages: URLs lose user:password@ and the query. */
void tz_display_name(const char *path, char *out, size_t cap);
void tz_remote_default_options(tz_remote_options *o);
/* Bounds-checked read: fails with TACOZ_INVALID_FILE_SIZE past the end. */
int tz_source_read(tz_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err);
/* The last min(want, size) bytes of the source, wherever they come from. */
int tz_source_tail(tz_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                   tacozip_error *err);
/* The first min(want, size) bytes, in one read (remote: one request). */
int tz_source_head(tz_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err);
/* Several ranges: in parallel where the source can, else one by one. */
int tz_source_read_many(tz_source *src, tz_range *ranges, size_t n, tacozip_error *err);

/* ---- ZIP structure parsing ------------------------------------------- */

/* What the end records say. */
typedef struct {
    uint64_t eocd_offset;   /* position of the 22-byte end record */
    uint64_t cd_offset;
    uint64_t cd_size;
    uint64_t entries;
    int zip64;              /* ZIP64 end record present */
    uint64_t zip64_offset;  /* position of the ZIP64 end record, if any */
} tz_end_info;

/* Locate and decode the end records of "src".  "tail"/"tail_len" may hold
 * the last bytes of the source already read (tail_off = their offset), or
 * be NULL: then they are read.  On success may hand back the tail buffer in
 * *tail_out (caller frees) so the directory can be taken from it. */
int tz_find_end(tz_source *src, tz_end_info *end, unsigned char **tail_out,
                uint64_t *tail_off_out, size_t *tail_len_out, tacozip_error *err);

/* One directory record as parsed (internal form). */
typedef struct {
    uint64_t header_offset;
    uint64_t data_offset;  /* UINT64_MAX until known */
    uint64_t csize;
    uint64_t usize;
    uint32_t name_off;     /* into the names blob */
    uint32_t name_len;
    uint32_t crc32;
    uint32_t dos_datetime;
    uint32_t external_attr;
    uint16_t method;
    uint16_t flags;
    uint16_t cd_extra_len;
    uint8_t lfh_checked;
    uint8_t pad_;
    uint64_t cd_record_offset; /* where this record sits in the file */
} tz_entry;

struct tacozip_archive {
    tz_source *src;
    tz_end_info end;
    size_t count;
    tz_entry *entries;
    char *names;           /* all names, each NUL-terminated */
    size_t names_len;
    uint32_t *hash;        /* open addressing: index+1, 0 = empty */
    size_t hash_mask;
    int has_header;        /* 1 yes, 0 no, -1 not read yet (remote) */
    int from_index;        /* member list taken from TACO_INDEX */
    taco_meta_array_t header;
    unsigned char header_bytes[TACO_HEADER_SIZE];
    tacozip_error last;    /* guarded by lock */
    pthread_mutex_t lock;
};

/* Parse the central directory of an opened source into "ar" (src and end
 * already set).  "cd" holds the directory bytes (cd_size). */
int tz_parse_directory(tacozip_archive *ar, const unsigned char *cd, tacozip_error *err);
/* Read and check the local header of entry i; sets its data_offset. */
int tz_check_local(tacozip_archive *ar, size_t i, tacozip_error *err);
/* The same check on bytes already read from the header offset (n >= 30 +
 * name length). */
int tz_check_local_bytes(tacozip_archive *ar, size_t i, const unsigned char *h, size_t n, tacozip_error *err);
/* Open over an existing source (takes ownership of src, even on failure). */
int tz_open_source(tz_source *src, unsigned flags, tacozip_archive **out, tacozip_error *err);

/* ---- embedded member index (index.c) ------------------------------------ */

#define TACO_INDEX_NAME "TACO_INDEX"
#define TACO_INDEX_NAME_LEN 10
#define TACO_INDEX_OFFSET 157 /* its local header, right after TACO_HEADER */
#define TACO_INDEX_PROBE (16 * 1024) /* the first request of an index-first open */

typedef struct {
    size_t name_off, name_len;
    uint64_t size;
    uint32_t extra_len;
    uint32_t crc32;
} tz_index_entry;

/* Encode the index of n members; the CRC column (4*n bytes at
 * *crc_offset) is left zero for the writer to fill. */
int tz_index_build(const char *const *names, const size_t *name_lens, const uint64_t *sizes,
                   const uint32_t *extra_lens, size_t n, unsigned char **out, size_t *out_len,
                   size_t *crc_offset, tacozip_error *err);
/* Decode an index blob (TACOZ_INVALID_INDEX if malformed).  "archive_size"
 * bounds the decoded names: each member takes 30 + name length bytes. */
int tz_index_decode(const unsigned char *blob, size_t len, uint64_t archive_size, tz_index_entry **out,
                    size_t *count, char **names, tacozip_error *err);
/* Check the archive's TACO_INDEX (if any) against its directory. */
int tz_index_check(tacozip_archive *ar, tacozip_error *err);

/* ---- names ------------------------------------------------------------ */

/* 1 if "name" (len bytes) is safe as a relative path inside a directory:
 * not empty, no NUL, no leading '/', no backslash, no drive letter, no "."
 * or ".." component.  A trailing '/' (directory entry) is allowed. */
int tz_name_is_safe(const char *name, size_t len);

/* ---- time ------------------------------------------------------------- */
uint32_t tz_dos_datetime(int64_t unix_seconds);

#endif
