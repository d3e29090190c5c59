/* writer.h - the writer layer's own header (not public): the machinery
 * that emits an archive front to back (writer.c), where its bytes go
 * (output.c: a new local file or an S3 upload), and the layout rules and
 * entry resolution shared by tacozip_plan() and the writers (plan.c).
 * create.c (create, append) and stream.c (tacozip_writer_*) are built on
 * it. */
#ifndef TACOZIP_WRITER_H
#define TACOZIP_WRITER_H

#include <sys/types.h>

#include "../taco/taco.h"

/* ---- where bytes go ----------------------------------------------------- */

/* A sink takes the archive's bytes in order (write) and can overwrite
 * bytes it took before (patch): a file at any offset; an upload only
 * bytes it still holds (the first part, and the range given to hold). */
typedef struct tz_sink tz_sink;
struct tz_sink {
    int (*write)(tz_sink *s, const void *p, size_t n, tacozip_error *err);
    int (*patch)(tz_sink *s, uint64_t off, const void *p, size_t n, tacozip_error *err);
    /* NULL: every byte stays patchable (files) */
    int (*hold)(tz_sink *s, uint64_t off, size_t n, tacozip_error *err);
    int fd;          /* file sinks */
    tz_upload *up;   /* upload sinks */
    const char *path; /* for messages */
};

/* A new archive being written (output.c).  Local: an unnamed file in the
 * directory of "path", named at commit, the writers' lock of a file being
 * replaced held throughout (a hot journal of it rolled back first).
 * s3://: an upload (source/upload.c). */
typedef struct {
    tz_sink sink;      /* first: the upload sink finds "shown" from it */
    const char *path;
    char shown[512];   /* display name (uploads) */
    int remote;
    tz_newfile nf;
    const char *base;
    int lock_fd;
    int durable;
} tz_output;
/* "total": the expected size or TZ_SIZE_UNKNOWN (uploads: part size, one
 * PUT).  Messages are prefixed with the path. */
int tz_output_open(tz_output *o, const char *path, const tacozip_write_options *opts,
                   const tacozip_remote_options *remote, uint64_t total, tacozip_error *err);
/* Make it visible (everything must have been written): local fsync, link,
 * fsync of the directory; upload commit.  The output is closed either
 * way; on failure nothing is left. */
int tz_output_commit(tz_output *o, tacozip_error *err);
/* Drop it (nothing is left); safe after commit and on a zeroed output
 * whose open failed. */
void tz_output_abort(tz_output *o);

/* ---- members and layout ------------------------------------------------- */

/* Where a member's bytes come from. */
typedef struct {
    int fd;                 /* >= 0: read(2) it (a source file, the spool file) */
    tacozip_read_fn fn;     /* else this callback */
    void *user;
} tz_input;

/* One member to write. */
typedef struct {
    const char *src;  /* the source file's path, or NULL (buffer, stream) */
    const char *name;
    size_t nlen;
    uint64_t size;    /* UINT64_MAX: learnt from fstat() when written */
    int64_t mtime;    /* Unix seconds for its DOS time (0: now) */
    int utc;          /* DOS time in UTC (a fixed time) rather than local */
} tz_member_plan;

/* Where a member ended up (kept by writers that resolve entries at the
 * end). */
typedef struct {
    const char *name; /* owned by whoever filled the array */
    size_t nlen;
    uint64_t lho, data, size;
} tz_placed;

/* The extra-field length a member gets at local header offset "lho":
 * ZIP64 extra for sizes >= 0xFFFFFFFF, alignment padding (0 or >= 6). */
uint32_t tz_member_extra(uint32_t alignment, uint64_t size, size_t nlen, uint64_t lho);

/* The layout of an archive with an index (TACO_INDEX right after the
 * header, local header at "lho"): the index blob (CRC column zero), the
 * padding of its own local header, and each member's extra length.  The
 * members follow at lho + 30 + 10 + ipad + blob_len. */
int tz_index_layout(const tz_member_plan *plan, size_t n, uint32_t alignment, uint64_t lho, unsigned char **blob,
                    size_t *blob_len, size_t *crc_off, size_t *ipad, uint32_t *extras, tacozip_error *err);

/* Check the options shared by every writer (sized struct, alignment). */
int tz_check_write_options(const tacozip_write_options *o, tacozip_error *err);
/* A sink writing to "fd" (write(2) at its position, pwrite(2) patches). */
void tz_sink_file(tz_sink *s, int fd, const char *path);

/* Check one member name (safe, not reserved, <= 65535 bytes). */
int tz_check_member_name(const char *name, size_t nlen, tacozip_error *err);

/* Header entries planned by name (plan.c).  A copy owns its strings. */
typedef struct {
    int kind;
    uint64_t offset, length;
    char *name;
    char **names;
    size_t n_names;
} tz_planned_entry;
int tz_entries_copy(const tacozip_entry_plan *in, size_t n, tz_planned_entry **out, tacozip_error *err);
void tz_entries_free(tz_planned_entry *e, size_t n);
/* Resolve against the members placed ("table": a name table over
 * "members", or NULL to build one when needed), the directory at
 * "dir_off" and the end of the archive at "end". */
int tz_entries_resolve(const tz_planned_entry *e, size_t n, const tz_placed *members, size_t count,
                       const tz_name_table *table, uint64_t dir_off, uint64_t end, taco_meta_array_t *out,
                       tacozip_error *err);

/* tacozip_plan() with the archive's total size too ("archive_size" may be
 * NULL). */
int tz_plan_layout(const char *const *names, const uint64_t *sizes, size_t n, const tacozip_entry_plan *entries,
                   size_t n_entries, const tacozip_write_options *opts, uint64_t *header_offsets,
                   uint64_t *data_offsets, uint64_t *directory_offset, uint64_t *archive_size,
                   taco_meta_array_t *entries_out, tacozip_error *err);

/* ---- the machinery (writer.c) ------------------------------------------ */

typedef struct {
    tz_sink *sink;
    const char *path;            /* for messages */
    unsigned char *buf;          /* OUT_BUF_SIZE bytes */
    size_t len;
    uint64_t buf_start;          /* archive offset of buf[0] */
    unsigned char *cd;           /* central directory being built */
    size_t cd_len, cd_cap;
    uint64_t n_entries;
    const tacozip_write_options *opts;
    uint64_t done_bytes, total_bytes, last_report;
    uint64_t done_files, total_files;
    tz_placed *placed;           /* when "track": every member written */
    size_t n_placed, placed_cap;
    int track;
    tacozip_error *err;
} tz_writer;

/* Set up (buffers); "start": the offset the sink is at. */
int tz_writer_init(tz_writer *w, tz_sink *sink, const char *path, const tacozip_write_options *opts, uint64_t start,
                   tacozip_error *err);
void tz_writer_free(tz_writer *w);
static inline uint64_t tz_writer_pos(const tz_writer *w) { return w->buf_start + w->len; }
int tz_writer_put(tz_writer *w, const void *data, size_t len);
int tz_writer_patch(tz_writer *w, uint64_t off, const void *data, size_t len);
int tz_writer_flush(tz_writer *w);
/* TACO_HEADER with "meta" (NULL: 157 zero bytes, patched later with
 * tz_writer_patch_header()) and its directory record. */
int tz_writer_header(tz_writer *w, const taco_meta_array_t *meta, uint32_t dos);
int tz_writer_patch_header(tz_writer *w, const taco_meta_array_t *meta, uint32_t dos);
/* One member from a file ("m->src"), an input of known size, or memory. */
int tz_writer_add_file(tz_writer *w, const tz_member_plan *m, uint32_t *crc_out);
int tz_writer_add_input(tz_writer *w, const tz_member_plan *m, tz_input *in, const char *what);
int tz_writer_add_memory(tz_writer *w, const tz_member_plan *m, const void *data);
/* TACO_INDEX and then the members "plan" (create --index). */
int tz_writer_with_index(tz_writer *w, const tz_member_plan *plan, size_t n, uint32_t dos);
/* Start the directory with the "count" records "cd" of an archive
 * appended to (its members do not move). */
int tz_writer_keep_directory(tz_writer *w, const unsigned char *cd, size_t len, uint64_t count);
/* The directory and end records ("comment" kept by append). */
int tz_writer_end(tz_writer *w, const unsigned char *comment, size_t comment_len);
/* Bytes the directory and end records will take (for the DIRECTORY entry). */
uint64_t tz_writer_end_size(const tz_writer *w);

#endif
