/* source.h - byte sources: the layer above common.  A source reads bytes
 * at offsets; it knows nothing of ZIP.  Kinds: file.c, memory.c, http.c
 * (HTTP(S) and S3 through libcurl), callbacks.c (caller-supplied);
 * source.c dispatches, counts references and offers the helpers the layers
 * above use.  Nothing here is public beyond what tacozip.h declares. */
#ifndef TACOZIP_SOURCE_H
#define TACOZIP_SOURCE_H

#include <pthread.h>

#include "../common/common.h"

/* Request counters of a source whose reads are requests. */
typedef struct {
    uint64_t requests;
    uint64_t bytes; /* body bytes received */
    uint64_t retries;
} tz_source_stats;

typedef struct tz_source_ops {
    /* Exactly "len" bytes at "off" (the caller checked the bounds when the
     * size is known).  Errors: TACOZ_ERR_IO, TACOZ_INVALID_FILE_SIZE, the
     * network codes. */
    int (*read_at)(tacozip_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err);
    void (*destroy)(tacozip_source *src);
    /* Optional: zero-copy view of [off, off+len), or NULL. */
    const unsigned char *(*view)(tacozip_source *src, uint64_t off, size_t len);
    /* Optional: the last / first min(want, size) bytes in one read; they
     * set the size of a source that did not know it. */
    int (*read_tail)(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                     tacozip_error *err);
    int (*read_head)(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err);
    /* Optional: several ranges at once (in parallel). */
    int (*read_many)(tacozip_source *src, tacozip_range *ranges, size_t n, tacozip_error *err);
    /* Optional: request counters (present only on request-based sources). */
    void (*stats)(tacozip_source *src, tz_source_stats *out);
    /* Optional: what identifies the bytes (ETag). */
    size_t (*identity)(tacozip_source *src, char *buf, size_t cap);
} tz_source_ops;

/* Bytes a source with round trips already fetched, served again from
 * memory: the tail read at open (end records, often the directory, all of
 * a small archive) and the first bytes (index-first probe, header).  At
 * most TZ_CACHE_SPANS spans of at most TZ_CACHE_SPAN_MAX bytes each; a
 * span is immutable once stored (a larger read of the same kind replaces
 * it, under the lock).  A read is served from the spans as far as they hold
 * its start or its end; only the rest is fetched.  The tail span may also
 * be handed in by the caller (tacozip_source_preload_tail(): an archive's
 * directory carried in a pickle), of any length. */
typedef struct {
    unsigned char *buf;
    uint64_t off;
    size_t len;
} tz_span;
#define TZ_CACHE_SPANS 2 /* [0] the tail, [1] the head */
#define TZ_CACHE_SPAN_MAX ((size_t)80 * 1024)

#define TZ_SIZE_UNKNOWN UINT64_MAX
#define TZ_DEFAULT_GAP ((uint64_t)1 << 20)

struct tacozip_source {
    const tz_source_ops *ops;
    uint64_t size;         /* TZ_SIZE_UNKNOWN until the first response (http) */
    int round_trips;       /* every read is a request: batch reads, fetch local
                              headers with the data, read the header lazily */
    uint64_t coalesce_gap; /* read_ranges' default gap */
    char *display;         /* the name messages start with */
    int refs;              /* atomic */
    pthread_mutex_t cache_lock; /* the spans (only with round_trips) */
    tz_span cache[TZ_CACHE_SPANS];
};

/* Fill the common fields of a new source; takes a copy of the display
 * name of "name" (NULL for out of memory). */
int tz_source_init(tacozip_source *src, const tz_source_ops *ops, const char *name, tacozip_error *err);
/* Take / drop a reference (the last one destroys the source). */
tacozip_source *tz_source_ref(tacozip_source *src);
void tz_source_unref(tacozip_source *src);

/* The kinds. */
int tz_source_file(const char *path, tacozip_source **out, tacozip_error *err);
int tz_source_mem(const void *data, size_t len, tacozip_source **out, tacozip_error *err);
int tz_source_http(const char *url, tz_scheme scheme, const tacozip_remote_options *o, tacozip_source **out,
                   tacozip_error *err);
int tz_source_callbacks(const tacozip_source_callbacks *cb, void *user, const char *name, tacozip_source **out,
                        tacozip_error *err);

/* Open a local file that must be a regular file ("flags": O_RDONLY,
 * O_WRONLY or O_RDWR): opened with O_NONBLOCK so that a FIFO or device
 * cannot block, fstat()ed, refused (TACOZ_ERR_IO, "not a regular file (a
 * FIFO)") unless regular, then O_NONBLOCK cleared.  *fd_out, or -1. */
int tz_open_regular(const char *path, int flags, int *fd_out, tacozip_error *err);
/* "a FIFO", "a directory", ... for an st_mode. */
const char *tz_file_kind(unsigned mode);
/* The first min(want, size) bytes of a local file without making a source
 * (open, read, close: what a one-shot header read needs).  When
 * "consistent" (may be NULL) says the bytes are torn (returns 0), the old
 * bytes of a hot rollback journal, if any, replace them. */
int tz_file_head(const char *path, void *buf, size_t want, size_t *got, int (*consistent)(const void *, size_t),
                 tacozip_error *err);

/* Helpers for the layers above (messages are not prefixed with the
 * source's name: the public entry points do that). */
/* Bounds-checked read: TACOZ_INVALID_FILE_SIZE past the known end. */
int tz_source_read(tacozip_source *src, uint64_t off, void *buf, size_t len, tacozip_error *err);
/* The last / first min(want, size) bytes, in one read where possible. */
int tz_source_tail(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                   tacozip_error *err);
int tz_source_head(tacozip_source *src, size_t want, unsigned char *buf, size_t *got, tacozip_error *err);
/* Several ranges (bounds-checked): in parallel where the source can. */
int tz_source_read_many(tacozip_source *src, tacozip_range *ranges, size_t n, tacozip_error *err);
/* The same with neighbours at most "max_gap" bytes apart merged into one
 * read of at most 64 MiB (TACOZIP_DEFAULT_GAP: the source's coalesce_gap);
 * TACOZ_ERR_PARAM for a range past the known end or without a buffer.
 * What tacozip_read_ranges() and tacozip_source_read_ranges() do. */
int tz_source_read_ranges(tacozip_source *src, tacozip_range *ranges, size_t n, uint64_t max_gap,
                          tacozip_error *err);
/* A zero-copy view, or NULL. */
const unsigned char *tz_source_view(tacozip_source *src, uint64_t off, size_t len);

/* Uploads (upload.c): an object written front to back, for the streaming
 * writer's s3:// output.  Bytes are appended with tz_upload_write(); the
 * object appears only at tz_upload_commit() (S3 CompleteMultipartUpload,
 * or one PUT), and tz_upload_abort() leaves no object and no parts.
 *
 * Buffering: the bytes are cut into parts of "part_size" (the last one
 * shorter).  Part 1 is kept in memory until commit, so bytes in it can be
 * patched until then (the TACO header).  Any other part is uploaded in the
 * background as soon as it is full, unless it overlaps the held range
 * (tz_upload_hold()): it is then kept until the hold moves past it.  At
 * most "parallel" parts are in flight; tz_upload_write() blocks while
 * that many are and the next one is full (memory stays about (parallel +
 * 2) parts).  Each part is retried as the remote options say; a part that
 * fails for good makes the next call fail with its error.
 *
 * tz_upload_open(): "url" is s3://bucket/key ("o" may be NULL).  "total"
 * is the expected object size or TZ_SIZE_UNKNOWN; "part_size" 0 chooses
 * (see tacozip_write_options.part_size), "parallel" 0 is 4.  Unless the
 * object is known to fit in one part (total <= part size; then nothing is
 * sent before commit, which sends one PUT), CreateMultipartUpload is sent
 * here, so credentials, bucket or permission problems fail here with
 * TACOZ_ERR_NETWORK and S3's error code in the message.  TACOZ_ERR_PARAM
 * for a URL that is not s3:// or bad sizes; TACOZ_ERR_NO_REMOTE without
 * libcurl.
 * tz_upload_write(): append "len" bytes.  TACOZ_ERR_TOO_LARGE past 10,000
 * parts (the part size grows only when total was unknown).
 * tz_upload_patch(): overwrite bytes already written that are still held
 * (in part 1, in the held range, or not yet cut into a part); anything
 * else is TACOZ_ERR_PARAM ("internal: ... already uploaded").
 * tz_upload_hold(): keep [off, off + len) patchable (one range; len 0
 * releases it).  "off" must not be before a byte already uploaded.
 * tz_upload_commit(): upload what is left, part 1 last, and complete;
 * frees "u" in every case (on failure after aborting the upload).
 * tz_upload_abort(): abort (AbortMultipartUpload, retried; its failure is
 * not reported) and free; NULL allowed.
 * tz_upload_stats(): requests made and bytes sent so far (for tests and
 * benchmarks; may be called any time before commit/abort).
 * tz_upload_commit_ex(): tz_upload_commit() that also fills "stats" (may
 * be NULL) with the final counts, the commit's requests included, whether
 * it succeeded or not. */
typedef struct tz_upload tz_upload;
typedef struct {
    uint64_t requests;
    uint64_t bytes_sent;
    uint64_t retries;
    uint64_t parts;
    uint64_t part_size;
} tz_upload_stats_t;
int tz_upload_open(const char *url, const tacozip_remote_options *o, uint64_t total, uint64_t part_size, int parallel,
                   tz_upload **out, tacozip_error *err);
int tz_upload_write(tz_upload *u, const void *data, size_t len, tacozip_error *err);
int tz_upload_patch(tz_upload *u, uint64_t off, const void *data, size_t len, tacozip_error *err);
int tz_upload_hold(tz_upload *u, uint64_t off, size_t len, tacozip_error *err);
int tz_upload_commit(tz_upload *u, tacozip_error *err);
int tz_upload_commit_ex(tz_upload *u, tz_upload_stats_t *stats, tacozip_error *err);
void tz_upload_abort(tz_upload *u);
void tz_upload_stats(const tz_upload *u, tz_upload_stats_t *out);

#endif
