/* writer.c - the machinery that emits an archive front to back into a
 * sink (writer.h): buffered output, local headers, member data with their
 * CRC-32, the central directory and the end records.
 *
 * Data is streamed once: a member whose size is known has its local
 * header written with a zero CRC, the data follows while its CRC-32 is
 * computed, then the CRC is patched in (in the output buffer when the
 * header is still there, which is the case for all small members, else in
 * the sink: a pwrite for files, a held range for uploads).  Sizes are
 * known before the data (stat(), a declared size, a spooled stream), so no
 * data descriptor is needed and the layout is exactly the one tacotoolbox
 * predicts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "writer.h"

/* Data is copied twice (read() into the buffer, write() out of it) with a
 * CRC pass in between.  A buffer that stays in the L2 cache makes the CRC
 * and the write() copy read cache-hot bytes; 4 MiB (the old size) did not
 * fit and cost ~1.3x on large files.  256 KiB still batches many small
 * members into one write(). */
#define OUT_BUF_SIZE (256u << 10)
#define READ_CHUNK (256u << 10)
#define PROGRESS_STEP (4ull << 20)
#define PIPE_MIN (8ull << 20)    /* members this large are copied by two threads */
#define PIPE_BUFS 4
#define PIPE_CHUNK (256u << 10)
#define ATTR_FILE (0100644u << 16)
#define ATTR_HEADER (0644u << 16)

int tz_writer_init(tz_writer *w, tz_sink *sink, const char *path, const tacozip_write_options *opts, uint64_t start,
                   tacozip_error *err) {
    tz_writer z = {.sink = sink, .path = path, .opts = opts, .buf_start = start, .err = err};
    *w = z;
    w->buf = malloc(OUT_BUF_SIZE);
    if (!w->buf) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    return TACOZ_OK;
}

void tz_writer_free(tz_writer *w) {
    free(w->buf);
    free(w->cd);
    if (w->track)
        for (size_t i = 0; i < w->n_placed; i++) free((char *)w->placed[i].name);
    free(w->placed);
    w->buf = w->cd = NULL;
    w->placed = NULL;
}

int tz_writer_flush(tz_writer *w) {
    if (w->len == 0) return TACOZ_OK;
    int rc = w->sink->write(w->sink, w->buf, w->len, w->err);
    if (rc) return rc;
    w->buf_start += w->len;
    w->len = 0;
    return TACOZ_OK;
}

int tz_writer_put(tz_writer *w, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0) {
        if (w->len == OUT_BUF_SIZE) {
            int rc = tz_writer_flush(w);
            if (rc) return rc;
        }
        size_t n = OUT_BUF_SIZE - w->len < len ? OUT_BUF_SIZE - w->len : len;
        memcpy(w->buf + w->len, p, n);
        w->len += n, p += n, len -= n;
    }
    return TACOZ_OK;
}

/* Overwrite bytes already emitted at archive offset "off". */
int tz_writer_patch(tz_writer *w, uint64_t off, const void *data, size_t len) {
    const unsigned char *p = data;
    if (off + len > w->buf_start) {
        /* The part still in the buffer is patched there (a patch of it in
         * the sink would be overwritten by the next flush); only the part
         * already flushed (when the range straddles buf_start) goes to the
         * sink. */
        size_t flushed = off >= w->buf_start ? 0 : (size_t)(w->buf_start - off);
        memcpy(w->buf + (off + flushed - w->buf_start), p + flushed, len - flushed);
        len = flushed;
    }
    return len ? w->sink->patch(w->sink, off, p, len, w->err) : TACOZ_OK;
}

/* Keep [off, off + len) patchable in sinks that upload as they go. */
static int w_hold(tz_writer *w, uint64_t off, size_t len) {
    return w->sink->hold ? w->sink->hold(w->sink, off, len, w->err) : TACOZ_OK;
}

static int cd_reserve(tz_writer *w, size_t more) {
    if (w->cd_cap - w->cd_len >= more) return TACOZ_OK;
    size_t cap = w->cd_cap ? w->cd_cap : 65536;
    while (cap - w->cd_len < more) cap *= 2;
    unsigned char *p = realloc(w->cd, cap);
    if (!p) return tz_fail(w->err, TACOZ_ERR_NOMEM, "out of memory for the central directory");
    w->cd = p;
    w->cd_cap = cap;
    return TACOZ_OK;
}

static int report(tz_writer *w, int force) {
    if (!w->opts->progress) return TACOZ_OK;
    if (!force && w->done_bytes - w->last_report < PROGRESS_STEP) return TACOZ_OK;
    w->last_report = w->done_bytes;
    if (w->opts->progress(w->opts->progress_user, w->done_bytes, w->total_bytes, w->done_files, w->total_files))
        return tz_fail(w->err, TACOZ_ERR_CANCELLED, "cancelled");
    return TACOZ_OK;
}

static int has_high_bytes(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] & 0x80) return 1;
    return 0;
}

/* Append the directory record of one member. */
static int cd_add(tz_writer *w, const char *name, size_t nlen, uint16_t flags, uint32_t dos, uint32_t crc,
                  uint64_t size, uint64_t lho, uint32_t attr) {
    tz_cdh h = {.flags = flags, .dos_datetime = dos, .crc32 = crc, .size = size, .header_offset = lho,
                .external_attr = attr, .name = name, .name_len = (uint16_t)nlen};
    int rc = cd_reserve(w, tz_cdh_len(&h));
    if (rc) return rc;
    w->cd_len += tz_cdh_encode(w->cd + w->cd_len, &h);
    w->n_entries++;
    return TACOZ_OK;
}

int tz_writer_keep_directory(tz_writer *w, const unsigned char *cd, size_t len, uint64_t count) {
    int rc = cd_reserve(w, len);
    if (rc) return rc;
    memcpy(w->cd, cd, len);
    w->cd_len = len;
    w->n_entries = count;
    return TACOZ_OK;
}

/* Remember where a member went (writers that resolve entries at close). */
static int place(tz_writer *w, const tz_member_plan *m, uint64_t lho, uint64_t data) {
    if (!w->track) return TACOZ_OK;
    if (w->n_placed == w->placed_cap) {
        size_t cap = w->placed_cap ? w->placed_cap * 2 : 64;
        tz_placed *p = realloc(w->placed, cap * sizeof *p);
        if (!p) return tz_fail(w->err, TACOZ_ERR_NOMEM, "out of memory");
        w->placed = p, w->placed_cap = cap;
    }
    char *name = malloc(m->nlen + 1);
    if (!name) return tz_fail(w->err, TACOZ_ERR_NOMEM, "out of memory");
    memcpy(name, m->name, m->nlen);
    name[m->nlen] = 0;
    w->placed[w->n_placed++] = (tz_placed){name, m->nlen, lho, data, m->size};
    return TACOZ_OK;
}

/* ---- reading member data ----------------------------------------------- */

/* One read from the input: bytes, 0 at the end, or -1 with *rc set. */
static ssize_t in_read(tz_writer *w, tz_input *in, const char *what, void *buf, size_t cap, int *rc) {
    if (in->fd >= 0) {
        for (;;) {
            ssize_t n = read(in->fd, buf, cap);
            if (n >= 0) return n;
            if (errno == EINTR) continue;
            *rc = tz_fail_errno(w->err, TACOZ_ERR_IO, errno, "%s: read", what);
            return -1;
        }
    }
    size_t got = 0;
    int r = in->fn(in->user, buf, cap, &got, w->err);
    if (r != TACOZ_OK) {
        *rc = r < 0 ? r : TACOZ_ERR_PARAM;
        if (w->err && w->err->code != *rc)
            tz_fail(w->err, *rc, "%s: the read callback failed (%s)", what, tacozip_strerror(*rc));
        return -1;
    }
    if (got > cap) {
        *rc = tz_fail(w->err, TACOZ_ERR_PARAM, "%s: the read callback reported %zu bytes for a buffer of %zu", what,
                      got, cap);
        return -1;
    }
    return (ssize_t)got;
}

/* Check one read's result against the size promised ("left" bytes still
 * expected).  Returns 1 to go on, 0 at a clean end, or sets *rc. */
static int read_ok(tz_writer *w, const tz_input *in, const char *what, ssize_t n, uint64_t left, uint64_t size,
                   int *rc) {
    if (n < 0) return 0;
    if ((uint64_t)n > left) {
        *rc = in->fd >= 0 && !in->fn
                  ? tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: file grew while it was being archived", what)
                  : tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: the stream went on past its declared %llu bytes", what,
                            (unsigned long long)size);
        return 0;
    }
    if (n == 0) {
        if (left)
            *rc = in->fd >= 0 && !in->fn
                      ? tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: file shrank while it was being archived", what)
                      : tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: the stream ended after %llu of its declared %llu bytes",
                                what, (unsigned long long)(size - left), (unsigned long long)size);
        return 0;
    }
    return 1;
}

/* How many bytes to ask for: at the end one more than expected, so that a
 * source that grew is noticed without an extra read. */
static size_t want_bytes(uint64_t left, size_t room) {
    size_t want = left < room ? (size_t)left + 1 : room;
    if (want > READ_CHUNK && left >= READ_CHUNK) want = READ_CHUNK;
    return want > room ? room : want;
}

/* Small and medium members: read into the output buffer, CRC, and let the
 * buffer's flushes write them (many small members share one write()). */
static int stream_plain(tz_writer *w, tz_input *in, const char *what, uint64_t size, uint32_t *crc_out) {
    uint32_t crc = 0;
    uint64_t left = size;
    int rc = TACOZ_OK;
    for (;;) {
        if (w->len == OUT_BUF_SIZE && (rc = tz_writer_flush(w))) break;
        size_t want = want_bytes(left, OUT_BUF_SIZE - w->len);
        ssize_t n = in_read(w, in, what, w->buf + w->len, want, &rc);
        if (!read_ok(w, in, what, n, left, size, &rc)) break;
        crc = tz_crc32(crc, w->buf + w->len, (size_t)n);
        w->len += (size_t)n;
        left -= (uint64_t)n;
        w->done_bytes += (uint64_t)n;
        if ((rc = report(w, 0))) break;
        /* a short read of a file at its end is its end; a stream is asked
         * once more, so that one longer than declared is noticed */
        if (left == 0 && (size_t)n < want && in->fd >= 0) break;
    }
    *crc_out = crc;
    return rc;
}

/* Large members: two threads.  This thread reads and CRCs chunk k+1 while a
 * helper thread writes chunk k, so the two copies (page cache to buffer,
 * buffer to page cache) overlap on two cores instead of adding up.  A ring
 * of PIPE_BUFS buffers small enough to stay in the caches. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *buf[PIPE_BUFS];
    size_t len[PIPE_BUFS];
    int full[PIPE_BUFS];
    size_t head, tail;
    int done, werr;
    tz_sink *sink;
    tacozip_error err; /* the sink's message when werr */
    uint64_t written;
} pipe_ring;

static void *pipe_writer(void *arg) {
    pipe_ring *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->full[p->tail] && !p->done) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->full[p->tail]) { /* done and drained */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        size_t k = p->tail;
        pthread_mutex_unlock(&p->mu);
        int e = p->sink->write(p->sink, p->buf[k], p->len[k], &p->err);
        pthread_mutex_lock(&p->mu);
        if (e) {
            p->werr = e;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            break;
        }
        p->written += p->len[k];
        p->full[k] = 0;
        p->tail = (k + 1) % PIPE_BUFS;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* The pipe thread's failure, as this writer's error (the caller's record
 * is written through tz_fail, which honours its struct_size). */
static int pipe_fail(tz_writer *w, pipe_ring *p) {
    return tz_fail(w->err, p->werr, "%s", p->err.message);
}

static int stream_piped(tz_writer *w, tz_input *in, const char *what, uint64_t size, uint32_t *crc_out) {
    int rc = tz_writer_flush(w); /* the local header goes first; the ring writes after it */
    if (rc) return rc;
    pipe_ring p;
    memset(&p, 0, sizeof p);
    p.sink = w->sink;
    p.err.struct_size = sizeof p.err;
    unsigned char *mem = malloc((size_t)PIPE_BUFS * PIPE_CHUNK);
    if (!mem) return stream_plain(w, in, what, size, crc_out);
    for (int i = 0; i < PIPE_BUFS; i++) p.buf[i] = mem + (size_t)i * PIPE_CHUNK;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, pipe_writer, &p) != 0) {
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.cv);
        free(mem);
        return stream_plain(w, in, what, size, crc_out);
    }
    uint32_t crc = 0;
    uint64_t left = size;
    for (;;) {
        pthread_mutex_lock(&p.mu);
        while (p.full[p.head] && !p.werr) pthread_cond_wait(&p.cv, &p.mu);
        int werr = p.werr;
        size_t k = p.head;
        pthread_mutex_unlock(&p.mu);
        if (werr) break;
        size_t want = want_bytes(left, PIPE_CHUNK);
        ssize_t n = in_read(w, in, what, p.buf[k], want, &rc);
        if (!read_ok(w, in, what, n, left, size, &rc)) break;
        crc = tz_crc32(crc, p.buf[k], (size_t)n);
        left -= (uint64_t)n;
        w->done_bytes += (uint64_t)n;
        pthread_mutex_lock(&p.mu);
        p.len[k] = (size_t)n;
        p.full[k] = 1;
        p.head = (k + 1) % PIPE_BUFS;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        if ((rc = report(w, 0))) break;
        if (left == 0 && (size_t)n < want && in->fd >= 0) break;
    }
    pthread_mutex_lock(&p.mu);
    p.done = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    if (rc == TACOZ_OK && p.werr) rc = pipe_fail(w, &p);
    w->buf_start += p.written; /* the sink's position moved by what the ring wrote */
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(mem);
    *crc_out = crc;
    return rc;
}

/* ---- local headers ------------------------------------------------------- */

uint32_t tz_member_extra(uint32_t align, uint64_t size, size_t nlen, uint64_t lho) {
    size_t xlen = size >= ZIP32_MAX ? ZIP64_LOCAL_EXTRA_SIZE : 0, pad = 0;
    if (align > 1) {
        uint64_t base = lho + ZIP_LFH_SIZE + nlen + xlen;
        pad = (size_t)((align - base % align) % align);
        while (pad > 0 && pad < ZIP_ALIGN_EXTRA_MIN) pad += align;
    }
    return (uint32_t)(xlen + pad);
}

/* The 0xD935 alignment extra of "pad" (0, or >= 6) bytes: id, size,
 * alignment, zeros. */
static int put_align_extra(tz_writer *w, size_t pad) {
    unsigned char a[ZIP_ALIGN_EXTRA_MIN + 256];
    if (pad <= sizeof a) {
        tz_align_extra(a, pad, w->opts->alignment);
        return tz_writer_put(w, a, pad);
    }
    tz_align_extra(a, ZIP_ALIGN_EXTRA_MIN, w->opts->alignment);
    wr16(a + 2, (uint16_t)(pad - 4));
    int rc = tz_writer_put(w, a, ZIP_ALIGN_EXTRA_MIN);
    memset(a, 0, sizeof a);
    for (size_t left = pad - ZIP_ALIGN_EXTRA_MIN; rc == TACOZ_OK && left > 0;) {
        size_t n = left < sizeof a ? left : sizeof a;
        rc = tz_writer_put(w, a, n);
        left -= n;
    }
    return rc;
}

/* What a member's header says besides its data. */
typedef struct {
    uint64_t lho;
    uint16_t flags;
    uint32_t dos;
} lfh_info;

/* The local header of "m" (size known; CRC "crc", or 0 to be patched). */
static int put_local_header(tz_writer *w, const tz_member_plan *m, uint32_t crc, lfh_info *li) {
    li->lho = tz_writer_pos(w);
    li->flags = has_high_bytes(m->name, m->nlen) ? ZIP_FLAG_UTF8 : 0;
    /* a fixed time (--mtime, SOURCE_DATE_EPOCH, a member's given time) in
     * UTC: the same bytes in every time zone; a file's own time in local
     * time, as zip tools do */
    int64_t t = m->utc ? m->mtime /* the member's own, given */
                : w->opts->mtime ? w->opts->mtime
                : m->mtime ? m->mtime : (int64_t)time(NULL);
    li->dos = tz_dos_datetime(t, w->opts->mtime != 0 || m->utc);
    uint32_t extra = tz_member_extra(w->opts->alignment, m->size, m->nlen, li->lho);
    size_t xlen = m->size >= ZIP32_MAX ? ZIP64_LOCAL_EXTRA_SIZE : 0, pad = extra - xlen;
    unsigned char h[ZIP_LFH_SIZE + ZIP64_LOCAL_EXTRA_SIZE];
    tz_lfh lh = {.flags = li->flags, .dos_datetime = li->dos, .crc32 = crc, .size = m->size,
                 .name_len = (uint16_t)m->nlen, .extra_len = (uint16_t)extra};
    tz_lfh_encode(h, &lh);
    if (xlen) tz_zip64_local_extra(h + ZIP_LFH_SIZE, m->size);
    int rc = tz_writer_put(w, h, ZIP_LFH_SIZE);
    if (rc == TACOZ_OK) rc = tz_writer_put(w, m->name, m->nlen);
    if (rc == TACOZ_OK) rc = tz_writer_put(w, h + ZIP_LFH_SIZE, xlen);
    if (rc == TACOZ_OK && pad) rc = put_align_extra(w, pad);
    return rc;
}

/* After a member's data: its directory record and progress. */
static int finish_member(tz_writer *w, const tz_member_plan *m, const lfh_info *li, uint32_t crc) {
    w->done_files++;
    int rc = report(w, 1);
    if (rc == TACOZ_OK)
        rc = place(w, m, li->lho, li->lho + ZIP_LFH_SIZE + m->nlen +
                                      tz_member_extra(w->opts->alignment, m->size, m->nlen, li->lho));
    if (rc == TACOZ_OK) rc = cd_add(w, m->name, m->nlen, li->flags, li->dos, crc, m->size, li->lho, ATTR_FILE);
    return rc;
}

/* A member whose size is known and whose bytes come from "in": header with
 * a zero CRC (held in sinks that upload as they go), data, CRC patched. */
static int add_known(tz_writer *w, const tz_member_plan *m, tz_input *in, const char *what, uint32_t *crc_out) {
    lfh_info li;
    int rc = put_local_header(w, m, 0, &li);
    if (rc == TACOZ_OK) rc = w_hold(w, li.lho + LFH_CRC, 4);
    if (rc) return rc;
    uint32_t crc = 0;
    rc = m->size >= PIPE_MIN ? stream_piped(w, in, what, m->size, &crc) : stream_plain(w, in, what, m->size, &crc);
    if (rc) return rc;
    unsigned char c[4];
    wr32(c, crc);
    if ((rc = tz_writer_patch(w, li.lho + LFH_CRC, c, 4)) || (rc = w_hold(w, 0, 0))) return rc;
    if (crc_out) *crc_out = crc;
    return finish_member(w, m, &li, crc);
}

int tz_writer_add_input(tz_writer *w, const tz_member_plan *m, tz_input *in, const char *what) {
    return add_known(w, m, in, what, NULL);
}

int tz_writer_add_memory(tz_writer *w, const tz_member_plan *m, const void *data) {
    uint32_t crc = tz_crc32(0, data, (size_t)m->size);
    lfh_info li;
    int rc = put_local_header(w, m, crc, &li);
    if (rc) return rc;
    if (m->size > OUT_BUF_SIZE) {
        /* large: straight from the caller's memory */
        if ((rc = tz_writer_flush(w)) || (rc = w->sink->write(w->sink, data, (size_t)m->size, w->err))) return rc;
        w->buf_start += m->size;
    } else if ((rc = tz_writer_put(w, data, (size_t)m->size))) {
        return rc;
    }
    w->done_bytes += m->size;
    return finish_member(w, m, &li, crc);
}

/* Stream one file into the archive. */
int tz_writer_add_file(tz_writer *w, const tz_member_plan *plan, uint32_t *crc_out) {
    /* Open first: the size and time come from fstat() of the open file (one
     * path lookup per member), unless the plan stat()ed it already (index,
     * progress, append, planned entries), in which case they must still
     * agree. */
    tz_member_plan mm = *plan;
    const tz_member_plan *m = &mm;
    /* O_NONBLOCK: a FIFO must be refused, not waited on (the type is
     * checked on the open descriptor; regular files ignore the flag) */
    int fd = open(m->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return tz_fail_errno(w->err, TACOZ_ERR_IO, errno, "%s", m->src);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tz_fail_errno(w->err, TACOZ_ERR_IO, e, "%s", m->src);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tz_fail(w->err, TACOZ_ERR_PARAM, "%s: not a regular file (%s); only regular files can be archived",
                       m->src, tz_file_kind(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return tz_fail_errno(w->err, TACOZ_ERR_IO, e, "%s", m->src);
    }
    if (mm.size == UINT64_MAX) {
        mm.size = (uint64_t)st.st_size;
        mm.mtime = (int64_t)st.st_mtime;
    } else if (mm.size != (uint64_t)st.st_size) {
        close(fd);
        return tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: file changed size before it was archived", m->src);
    }
    if (!mm.mtime) mm.mtime = (int64_t)st.st_mtime;
    if (m->size >= READ_CHUNK) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    tz_input in = {.fd = fd};
    int rc = add_known(w, m, &in, m->src, crc_out);
    close(fd);
    return rc;
}

/* ---- the header, the index, the end -------------------------------------- */

int tz_writer_header(tz_writer *w, const taco_meta_array_t *meta, uint32_t dos) {
    unsigned char hdr[TACO_HEADER_SIZE];
    uint32_t crc = 0;
    if (meta) {
        tz_header_build(meta, dos, hdr);
        crc = rd32(hdr + TACO_CRC_OFFSET);
    } else {
        memset(hdr, 0, sizeof hdr); /* the whole header is written at the end */
    }
    int rc = tz_writer_put(w, hdr, sizeof hdr);
    if (rc == TACOZ_OK)
        rc = cd_add(w, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN, 0, dos, crc, TACO_HEADER_PAYLOAD_SIZE, 0, ATTR_HEADER);
    return rc;
}

int tz_writer_patch_header(tz_writer *w, const taco_meta_array_t *meta, uint32_t dos) {
    unsigned char hdr[TACO_HEADER_SIZE];
    tz_header_build(meta, dos, hdr);
    /* TACO_HEADER's directory record is the first one */
    memcpy(w->cd + TACO_CDH_CRC_OFFSET, hdr + TACO_CRC_OFFSET, 4);
    return tz_writer_patch(w, 0, hdr, sizeof hdr);
}

uint64_t tz_writer_end_size(const tz_writer *w) {
    unsigned char e[ZIP_END_MAX];
    uint64_t cd_off = tz_writer_pos(w);
    return w->cd_len + tz_end_encode(e, w->n_entries, w->cd_len, cd_off, cd_off + w->cd_len, 0);
}

int tz_writer_end(tz_writer *w, const unsigned char *comment, size_t comment_len) {
    uint64_t cd_off = tz_writer_pos(w);
    int rc = TACOZ_OK;
    /* the directory can be large: write it through the buffer in pieces */
    for (size_t off = 0; off < w->cd_len && rc == TACOZ_OK;) {
        size_t n = w->cd_len - off;
        if (n > OUT_BUF_SIZE) n = OUT_BUF_SIZE;
        rc = tz_writer_put(w, w->cd + off, n);
        off += n;
    }
    if (rc) return rc;
    unsigned char e[ZIP_END_MAX];
    size_t elen = tz_end_encode(e, w->n_entries, w->cd_len, cd_off, tz_writer_pos(w), comment_len);
    if ((rc = tz_writer_put(w, e, elen))) return rc;
    if (comment_len && (rc = tz_writer_put(w, comment, comment_len))) return rc;
    return tz_writer_flush(w);
}

int tz_index_layout(const tz_member_plan *plan, size_t n, uint32_t align, uint64_t lho, unsigned char **blob_out,
                    size_t *blob_len, size_t *crc_off, size_t *ipad_out, uint32_t *extras, tacozip_error *err) {
    const char **names = malloc((n ? n : 1) * sizeof *names);
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    uint64_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    unsigned char *blob = NULL;
    int rc = TACOZ_OK;
    if (!names || !lens || !sizes) rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == TACOZ_OK && i < n; i++)
        names[i] = plan[i].name, lens[i] = plan[i].nlen, sizes[i] = plan[i].size, extras[i] = 0;
    /* The extras depend on offsets (alignment), which depend on the index
     * size, which depends on the extras (deflated: not monotone, so the
     * iteration may cycle).  First the index's data is followed by the
     * members directly, iterated to a fixed point; if that does not settle
     * in a few rounds, the members' start is fixed instead ("room" bytes
     * after the index's name) and the index's own local header is padded to
     * it with an alignment extra ("ipad"): the extras then depend on "room"
     * alone, and "room" only grows until the index fits. */
    const uint64_t base = lho + ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN;
    size_t room = 0, ipad = 0;
    for (int round = 0; rc == TACOZ_OK; round++) {
        free(blob);
        blob = NULL;
        if ((rc = tz_index_build(names, lens, sizes, extras, n, &blob, blob_len, crc_off, err))) break;
        if (room && (*blob_len == room || *blob_len + ZIP_ALIGN_EXTRA_MIN <= room)) {
            ipad = room - *blob_len;
            break;
        }
        if (room || round == 4) room = *blob_len + ZIP_ALIGN_EXTRA_MIN + 64;
        uint64_t off = base + (room ? room : *blob_len);
        int changed = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t x = tz_member_extra(align, plan[i].size, plan[i].nlen, off);
            changed |= x != extras[i];
            extras[i] = x;
            off += ZIP_LFH_SIZE + plan[i].nlen + x + plan[i].size;
        }
        if (!room && !changed) break;
        if (round == 64) rc = tz_fail(err, TACOZ_ERR_PARAM, "internal: the index layout does not settle");
    }
    free(names), free(lens), free(sizes);
    if (rc) {
        free(blob);
        return rc;
    }
    *blob_out = blob;
    *ipad_out = ipad;
    return TACOZ_OK;
}

/* Write TACO_INDEX (after TACO_HEADER) and then the members (local files
 * only: the index is patched after the members, so a sink that uploads as
 * it goes would have to hold everything).  The index
 * lists names, sizes and extra lengths, so it is built before the data;
 * the members' CRCs are known only after streaming them, so the index keeps
 * them in a raw column that is patched at the end, with the index's own
 * CRC (in its local header and its directory record). */
int tz_writer_with_index(tz_writer *w, const tz_member_plan *plan, size_t n, uint32_t dos) {
    uint32_t *extras = calloc(n ? n : 1, sizeof *extras), *crcs = calloc(n ? n : 1, sizeof *crcs);
    unsigned char *blob = NULL;
    size_t blob_len = 0, crc_off = 0, ipad = 0;
    const uint64_t lho = tz_writer_pos(w);
    int rc = !extras || !crcs ? tz_fail(w->err, TACOZ_ERR_NOMEM, "out of memory")
                              : tz_index_layout(plan, n, w->opts->alignment, lho, &blob, &blob_len, &crc_off, &ipad,
                                                extras, w->err);
    size_t cd_rec = w->cd_len; /* TACO_INDEX's directory record, CRC patched below */
    if (rc == TACOZ_OK && w->cd_len == 0) rc = tz_fail(w->err, TACOZ_ERR_PARAM, "index must follow the header");
    if (rc == TACOZ_OK)
        rc = cd_add(w, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, 0, dos, 0, blob_len, lho, ATTR_HEADER);
    if (rc == TACOZ_OK) {
        unsigned char h[ZIP_LFH_SIZE];
        tz_lfh lh = {.dos_datetime = dos, .size = blob_len, .name_len = TACO_INDEX_NAME_LEN,
                     .extra_len = (uint16_t)ipad};
        tz_lfh_encode(h, &lh);
        rc = tz_writer_put(w, h, sizeof h);
        if (rc == TACOZ_OK) rc = tz_writer_put(w, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN);
        if (rc == TACOZ_OK && ipad) rc = put_align_extra(w, ipad);
        if (rc == TACOZ_OK) rc = tz_writer_put(w, blob, blob_len);
    }
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        uint64_t at = tz_writer_pos(w);
        if (tz_member_extra(w->opts->alignment, plan[i].size, plan[i].nlen, at) != extras[i])
            rc = tz_fail(w->err, TACOZ_ERR_PARAM, "internal: index layout mismatch at member %zu", i);
        else
            rc = tz_writer_add_file(w, &plan[i], &crcs[i]);
    }
    if (rc == TACOZ_OK) {
        for (size_t i = 0; i < n; i++) wr32(blob + crc_off + 4 * i, crcs[i]);
        unsigned char c[4];
        wr32(c, tz_crc32(0, blob, blob_len));
        uint64_t data = lho + ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN + ipad;
        if (n) rc = tz_writer_patch(w, data + crc_off, blob + crc_off, 4 * n);
        if (rc == TACOZ_OK) rc = tz_writer_patch(w, lho + LFH_CRC, c, 4);
        memcpy(w->cd + cd_rec + TACO_CDH_CRC_OFFSET, c, 4);
    }
    free(blob), free(extras), free(crcs);
    return rc;
}
