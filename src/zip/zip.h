/* zip.h - the ZIP layer (above byte sources): one encoder and one decoder
 * of each record (records.c), the end-record search (end.c), and the
 * central directory parsed into a member table (directory.c).  It knows
 * nothing of TACO. */
#ifndef TACOZIP_ZIP_H
#define TACOZIP_ZIP_H

#include "../source/source.h"

/* ---- record constants (APPNOTE 6.3.10) -------------------------------- */

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
#define ZIP_END_MAX (ZIP64_EOCD_SIZE + ZIP64_LOC_SIZE + ZIP_EOCD_SIZE) /* encoded end records */

#define ZIP64_EXTRA_ID 0x0001
#define ZIP64_LOCAL_EXTRA_SIZE 20 /* id, size, uncompressed and compressed sizes */
#define ZIP_ALIGN_EXTRA_ID 0xD935
#define ZIP_ALIGN_EXTRA_MIN 6     /* id, size, alignment */
#define ZIP_FLAG_ENCRYPTED 0x0001u
#define ZIP_FLAG_DATA_DESCRIPTOR 0x0008u
#define ZIP_FLAG_UTF8 0x0800u

#define ZIP_VERSION_DEFAULT 10    /* 1.0: STORED */
#define ZIP_VERSION_ZIP64 45      /* 4.5: ZIP64 */
#define ZIP_MADE_BY_UNIX 0x033F   /* Unix, spec 6.3 (as the original writes) */
#define ZIP32_MAX 0xFFFFFFFFu     /* also the "see ZIP64" marker */
#define ZIP16_MAX 0xFFFFu

/* Offsets of fields within a local header. */
#define LFH_CRC 14

/* ---- records (records.c) ---------------------------------------------- */

/* A local header as written: a STORED member of known size. */
typedef struct {
    uint16_t flags;
    uint32_t dos_datetime;
    uint32_t crc32;
    uint64_t size;        /* >= ZIP32_MAX: ZIP64 markers (and a ZIP64 extra) */
    uint16_t name_len;
    uint16_t extra_len;   /* all extra fields that follow the name */
} tz_lfh;
/* The 30 fixed bytes. */
void tz_lfh_encode(unsigned char out[ZIP_LFH_SIZE], const tz_lfh *h);
/* The local ZIP64 extra field (ZIP64_LOCAL_EXTRA_SIZE bytes). */
void tz_zip64_local_extra(unsigned char out[ZIP64_LOCAL_EXTRA_SIZE], uint64_t size);
/* The 0xD935 alignment extra filling "len" (>= 6) bytes. */
void tz_align_extra(unsigned char *out, size_t len, uint32_t alignment);

/* A directory record as written. */
typedef struct {
    uint16_t flags;
    uint32_t dos_datetime;
    uint32_t crc32;
    uint64_t size;
    uint64_t header_offset;
    uint32_t external_attr;
    const char *name;
    uint16_t name_len;
} tz_cdh;
/* Bytes tz_cdh_encode() writes for "h" (fixed part, name, ZIP64 extra). */
size_t tz_cdh_len(const tz_cdh *h);
size_t tz_cdh_encode(unsigned char *out, const tz_cdh *h);

/* The end records for a directory of "entries" records, "cd_size" bytes at
 * "cd_offset", written at "at" (ZIP64 records first when needed), with a
 * comment of "comment_len" bytes to follow.  Returns the bytes written
 * (<= ZIP_END_MAX). */
size_t tz_end_encode(unsigned char *out, uint64_t entries, uint64_t cd_size, uint64_t cd_offset, uint64_t at,
                     size_t comment_len);

/* ---- end records (end.c) ---------------------------------------------- */

/* What the end records say. */
typedef struct {
    uint64_t eocd_offset;  /* position of the 22-byte end record */
    uint64_t cd_offset;
    uint64_t cd_size;
    uint64_t entries;
    int zip64;             /* ZIP64 end record present */
    uint64_t zip64_offset; /* position of the ZIP64 end record, if any */
    uint16_t comment_len;
} tz_end_info;

/* The last bytes of a source, read once: end records and often the whole
 * directory. */
typedef struct {
    unsigned char *buf;
    size_t len;
    uint64_t offset;
} tz_tail;

/* Locate and decode the end records of "src" (one read of its tail, which
 * also learns a remote source's size).  With "tail" not NULL the tail
 * buffer is handed back (free with free(tail->buf)) so that the directory
 * can be taken from it. */
int tz_find_end(tacozip_source *src, tz_end_info *end, tz_tail *tail, tacozip_error *err);

/* ---- the central directory (directory.c) -------------------------------- */

/* One directory record as parsed. */
typedef struct {
    uint64_t header_offset;
    uint64_t data_offset;  /* TZ_UNKNOWN_OFFSET until known */
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
    uint8_t lfh_checked;   /* atomic: the local header was checked */
    uint64_t cd_record_offset;
} tz_entry;

#define TZ_UNKNOWN_OFFSET UINT64_MAX

typedef struct {
    tz_end_info end;
    size_t count;
    tz_entry *entries;
    char *names;           /* all names, each NUL-terminated */
    size_t names_len;
    tz_name_table table;
} tz_dir;

/* Parse "cd" (end->cd_size bytes) into "d" and index the names (refusing
 * duplicates).  On failure "d" holds what must be freed. */
int tz_dir_parse(tz_dir *d, const tz_end_info *end, const unsigned char *cd, tacozip_error *err);
/* Read the directory of "src" (tail from tz_find_end; the rest read as
 * needed) and parse it. */
int tz_dir_read(tz_dir *d, tacozip_source *src, const tz_end_info *end, const tz_tail *tail, tacozip_error *err);
/* Index the names of entries already filled in (used by tz_dir_parse and
 * by a member list built from TACO_INDEX). */
int tz_dir_index_names(tz_dir *d, tacozip_error *err);
void tz_dir_free(tz_dir *d);
static inline const char *tz_dir_name(const tz_dir *d, size_t i) { return d->names + d->entries[i].name_off; }
/* 1 if entry i is a STORED member that may be read. */
int tz_entry_stored(const tz_entry *e);
/* TACOZ_ERR_UNSUPPORTED with a message when entry i cannot be read. */
int tz_dir_check_stored(const tz_dir *d, size_t i, tacozip_error *err);
/* Check the local header bytes "h" (n bytes from its offset) of entry i
 * against the directory; sets data_offset if unknown. */
int tz_dir_check_local(tz_dir *d, size_t i, const unsigned char *h, size_t n, tacozip_error *err);
/* Read and check the local header of entry i. */
int tz_dir_read_local(tz_dir *d, tacozip_source *src, size_t i, tacozip_error *err);
/* Derive data offsets from the layout, read local headers where it does
 * not prove them (all of them with "verify_local"), refuse overlaps. */
int tz_dir_resolve_offsets(tz_dir *d, tacozip_source *src, int verify_local, tacozip_error *err);

#endif
