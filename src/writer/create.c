/* create.c - creating archives and appending to them.
 *
 * Data is streamed once: each member's local header goes out with a zero
 * CRC, the data follows while its CRC-32 is computed, then the CRC is
 * patched in (in the output buffer when the header is still there, which
 * is the case for all small members, else with one pwrite).  Sizes are known
 * in advance from stat(), so no data descriptor is needed and the layout is
 * exactly the one tacotoolbox predicts. */
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

#include "../taco/taco.h"

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

typedef struct {
    int fd;
    const char *path;           /* for messages */
    unsigned char *buf;
    size_t len;
    uint64_t buf_start;         /* file offset of buf[0] */
    unsigned char *cd;          /* central directory being built */
    size_t cd_len, cd_cap;
    uint64_t n_entries;
    const tacozip_write_options *opts;
    uint64_t done_bytes, total_bytes, last_report;
    uint64_t done_files, total_files;
    tacozip_error *err;
} writer;

static int w_flush(writer *w) {
    size_t off = 0;
    while (off < w->len) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return tz_fail_errno(w->err, TACOZ_ERR_IO, errno, "%s: write", w->path);
        }
        off += (size_t)n;
    }
    w->buf_start += w->len;
    w->len = 0;
    return TACOZ_OK;
}

static inline uint64_t w_pos(const writer *w) { return w->buf_start + w->len; }

static int w_put(writer *w, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0) {
        if (w->len == OUT_BUF_SIZE) {
            int rc = w_flush(w);
            if (rc) return rc;
        }
        size_t n = OUT_BUF_SIZE - w->len < len ? OUT_BUF_SIZE - w->len : len;
        memcpy(w->buf + w->len, p, n);
        w->len += n, p += n, len -= n;
    }
    return TACOZ_OK;
}

/* Overwrite bytes already emitted at file offset "off". */
static int w_patch(writer *w, uint64_t off, const void *data, size_t len) {
    const unsigned char *p = data;
    if (off + len > w->buf_start) {
        /* The part still in the buffer is patched there (a pwrite of it would
         * be overwritten by the next flush); only the part already flushed
         * (when the range straddles buf_start) goes through pwrite. */
        size_t flushed = off >= w->buf_start ? 0 : (size_t)(w->buf_start - off);
        memcpy(w->buf + (off + flushed - w->buf_start), p + flushed, len - flushed);
        len = flushed;
    }
    while (len) {
        ssize_t n = pwrite(w->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return tz_fail_errno(w->err, TACOZ_ERR_IO, errno, "%s: write", w->path);
        }
        p += n, off += (uint64_t)n, len -= (size_t)n;
    }
    return TACOZ_OK;
}

static int cd_reserve(writer *w, size_t more) {
    if (w->cd_cap - w->cd_len >= more) return TACOZ_OK;
    size_t cap = w->cd_cap ? w->cd_cap : 65536;
    while (cap - w->cd_len < more) cap *= 2;
    unsigned char *p = realloc(w->cd, cap);
    if (!p) return tz_fail(w->err, TACOZ_ERR_NOMEM, "out of memory for the central directory");
    w->cd = p;
    w->cd_cap = cap;
    return TACOZ_OK;
}

static int report(writer *w, int force) {
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
static int cd_add(writer *w, const char *name, size_t nlen, uint16_t flags, uint32_t dos, uint32_t crc,
                  uint64_t size, uint64_t lho, uint32_t attr) {
    tz_cdh h = {.flags = flags, .dos_datetime = dos, .crc32 = crc, .size = size, .header_offset = lho,
                .external_attr = attr, .name = name, .name_len = (uint16_t)nlen};
    int rc = cd_reserve(w, tz_cdh_len(&h));
    if (rc) return rc;
    w->cd_len += tz_cdh_encode(w->cd + w->cd_len, &h);
    w->n_entries++;
    return TACOZ_OK;
}

typedef struct {
    const char *src;
    const char *name;
    size_t nlen;
    uint64_t size;
    int64_t mtime;
} member_plan;

/* Check one read() result against what stat() promised ("left" bytes
 * still expected).  Returns 1 to go on, 0 at a clean end, or sets *rc. */
static int read_ok(writer *w, const member_plan *m, ssize_t n, uint64_t left, int *rc) {
    if (n < 0) {
        *rc = tz_fail_errno(w->err, TACOZ_ERR_IO, errno, "%s: read", m->src);
        return 0;
    }
    if ((uint64_t)n > left) {
        *rc = tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: file grew while it was being archived", m->src);
        return 0;
    }
    if (n == 0) {
        if (left) *rc = tz_fail(w->err, TACOZ_ERR_CHANGED, "%s: file shrank while it was being archived", m->src);
        return 0;
    }
    return 1;
}

/* How many bytes to ask for: at the end one more than expected, so that a
 * file that grew is noticed without an extra read. */
static size_t want_bytes(uint64_t left, size_t room) {
    size_t want = left < room ? (size_t)left + 1 : room;
    if (want > READ_CHUNK && left >= READ_CHUNK) want = READ_CHUNK;
    return want > room ? room : want;
}

/* Small and medium members: read into the output buffer, CRC, and let the
 * buffer's flushes write them (many small members share one write()). */
static int stream_plain(writer *w, int fd, const member_plan *m, uint32_t *crc_out) {
    uint32_t crc = 0;
    uint64_t left = m->size;
    int rc = TACOZ_OK;
    for (;;) {
        if (w->len == OUT_BUF_SIZE && (rc = w_flush(w))) break;
        size_t want = want_bytes(left, OUT_BUF_SIZE - w->len);
        ssize_t n = read(fd, w->buf + w->len, want);
        if (n < 0 && errno == EINTR) continue;
        if (!read_ok(w, m, n, left, &rc)) break;
        crc = tz_crc32(crc, w->buf + w->len, (size_t)n);
        w->len += (size_t)n;
        left -= (uint64_t)n;
        w->done_bytes += (uint64_t)n;
        if ((rc = report(w, 0))) break;
        if (left == 0 && (size_t)n < want) break; /* short read at EOF: done */
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
    int fd;
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
        int e = 0;
        for (size_t off = 0; off < p->len[k];) {
            ssize_t n = write(p->fd, p->buf[k] + off, p->len[k] - off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                e = errno;
                break;
            }
            off += (size_t)n;
        }
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

static int stream_piped(writer *w, int fd, const member_plan *m, uint32_t *crc_out) {
    int rc = w_flush(w); /* the local header goes first; the ring writes after it */
    if (rc) return rc;
    pipe_ring p;
    memset(&p, 0, sizeof p);
    p.fd = w->fd;
    unsigned char *mem = malloc((size_t)PIPE_BUFS * PIPE_CHUNK);
    if (!mem) return stream_plain(w, fd, m, crc_out);
    for (int i = 0; i < PIPE_BUFS; i++) p.buf[i] = mem + (size_t)i * PIPE_CHUNK;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, pipe_writer, &p) != 0) {
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.cv);
        free(mem);
        return stream_plain(w, fd, m, crc_out);
    }
    uint32_t crc = 0;
    uint64_t left = m->size;
    for (;;) {
        pthread_mutex_lock(&p.mu);
        while (p.full[p.head] && !p.werr) pthread_cond_wait(&p.cv, &p.mu);
        int werr = p.werr;
        size_t k = p.head;
        pthread_mutex_unlock(&p.mu);
        if (werr) {
            rc = tz_fail_errno(w->err, TACOZ_ERR_IO, werr, "%s: write", w->path);
            break;
        }
        size_t want = want_bytes(left, PIPE_CHUNK);
        ssize_t n = read(fd, p.buf[k], want);
        if (n < 0 && errno == EINTR) continue;
        if (!read_ok(w, m, n, left, &rc)) break;
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
        if (left == 0 && (size_t)n < want) break;
    }
    pthread_mutex_lock(&p.mu);
    p.done = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    if (rc == TACOZ_OK && p.werr) rc = tz_fail_errno(w->err, TACOZ_ERR_IO, p.werr, "%s: write", w->path);
    w->buf_start += p.written; /* the file position moved by what the ring wrote */
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(mem);
    *crc_out = crc;
    return rc;
}

/* The extra-field length add_member() will give a member whose local
 * header starts at "lho" (ZIP64 extra, alignment padding). */
static uint32_t member_extra(const writer *w, const member_plan *m, uint64_t lho) {
    size_t xlen = m->size >= ZIP32_MAX ? ZIP64_LOCAL_EXTRA_SIZE : 0, pad = 0;
    uint32_t align = w->opts->alignment;
    if (align > 1) {
        uint64_t base = lho + ZIP_LFH_SIZE + m->nlen + xlen;
        pad = (size_t)((align - base % align) % align);
        while (pad > 0 && pad < ZIP_ALIGN_EXTRA_MIN) pad += align;
    }
    return (uint32_t)(xlen + pad);
}

/* The 0xD935 alignment extra of "pad" (0, or >= 6) bytes: id, size,
 * alignment, zeros. */
static int put_align_extra(writer *w, size_t pad) {
    unsigned char a[ZIP_ALIGN_EXTRA_MIN + 256];
    if (pad <= sizeof a) {
        tz_align_extra(a, pad, w->opts->alignment);
        return w_put(w, a, pad);
    }
    tz_align_extra(a, ZIP_ALIGN_EXTRA_MIN, w->opts->alignment);
    wr16(a + 2, (uint16_t)(pad - 4));
    int rc = w_put(w, a, ZIP_ALIGN_EXTRA_MIN);
    memset(a, 0, sizeof a);
    for (size_t left = pad - ZIP_ALIGN_EXTRA_MIN; rc == TACOZ_OK && left > 0;) {
        size_t n = left < sizeof a ? left : sizeof a;
        rc = w_put(w, a, n);
        left -= n;
    }
    return rc;
}

/* Stream one file into the archive. */
static int add_member(writer *w, const member_plan *plan, uint32_t *crc_out) {
    /* Open first: the size and time come from fstat() of the open file (one
     * path lookup per member), unless the plan stat()ed it already (index,
     * progress, append), in which case they must still agree. */
    member_plan mm = *plan;
    const member_plan *m = &mm;
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
    uint64_t lho = w_pos(w);
    uint16_t flags = has_high_bytes(m->name, m->nlen) ? ZIP_FLAG_UTF8 : 0;
    /* a fixed time (--mtime, SOURCE_DATE_EPOCH) in UTC: the same bytes in
     * every time zone; a file's own time in local time, as zip tools do */
    uint32_t dos = tz_dos_datetime(w->opts->mtime ? w->opts->mtime : m->mtime, w->opts->mtime != 0);
    uint32_t extra = member_extra(w, m, lho);
    size_t xlen = m->size >= ZIP32_MAX ? ZIP64_LOCAL_EXTRA_SIZE : 0, pad = extra - xlen;
    unsigned char h[ZIP_LFH_SIZE + ZIP64_LOCAL_EXTRA_SIZE];
    tz_lfh lh = {.flags = flags, .dos_datetime = dos, .crc32 = 0 /* patched below */, .size = m->size,
                 .name_len = (uint16_t)m->nlen, .extra_len = (uint16_t)extra};
    tz_lfh_encode(h, &lh);
    if (xlen) tz_zip64_local_extra(h + ZIP_LFH_SIZE, m->size);
    int rc = w_put(w, h, ZIP_LFH_SIZE);
    if (rc == TACOZ_OK) rc = w_put(w, m->name, m->nlen);
    if (rc == TACOZ_OK) rc = w_put(w, h + ZIP_LFH_SIZE, xlen);
    if (rc == TACOZ_OK && pad) rc = put_align_extra(w, pad);
    if (rc) {
        close(fd);
        return rc;
    }
    if (m->size >= READ_CHUNK) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint32_t crc = 0;
    rc = m->size >= PIPE_MIN ? stream_piped(w, fd, m, &crc) : stream_plain(w, fd, m, &crc);
    close(fd);
    if (rc) return rc;
    unsigned char c[4];
    wr32(c, crc);
    if ((rc = w_patch(w, lho + LFH_CRC, c, 4))) return rc;
    w->done_files++;
    if ((rc = report(w, 1))) return rc;
    if (crc_out) *crc_out = crc;
    return cd_add(w, m->name, m->nlen, flags, dos, crc, m->size, lho, ATTR_FILE);
}

/* Write the directory (already in w->cd) and the end records. */
static int write_end(writer *w, const unsigned char *comment, size_t comment_len) {
    uint64_t cd_off = w_pos(w);
    int rc = TACOZ_OK;
    /* the directory can be large: write it through the buffer in pieces */
    for (size_t off = 0; off < w->cd_len && rc == TACOZ_OK;) {
        size_t n = w->cd_len - off;
        if (n > OUT_BUF_SIZE) n = OUT_BUF_SIZE;
        rc = w_put(w, w->cd + off, n);
        off += n;
    }
    if (rc) return rc;
    unsigned char e[ZIP_END_MAX];
    size_t elen = tz_end_encode(e, w->n_entries, w->cd_len, cd_off, w_pos(w), comment_len);
    if ((rc = w_put(w, e, elen))) return rc;
    if (comment_len && (rc = w_put(w, comment, comment_len))) return rc;
    return w_flush(w);
}

/* Write TACO_INDEX (after TACO_HEADER) and then the members.  The index
 * lists names, sizes and extra lengths, so it is built before the data;
 * the members' CRCs are known only after streaming them, so the index keeps
 * them in a raw column that is patched at the end, with the index's own
 * CRC (in its local header and its directory record). */
static int write_with_index(writer *w, const member_plan *plan, size_t n, uint32_t dos) {
    const char **names = malloc((n ? n : 1) * sizeof *names);
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    uint64_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    uint32_t *extras = calloc(n ? n : 1, sizeof *extras), *crcs = calloc(n ? n : 1, sizeof *crcs);
    unsigned char *blob = NULL;
    size_t blob_len = 0, crc_off = 0;
    int rc = TACOZ_OK;
    if (!names || !lens || !sizes || !extras || !crcs) rc = tz_fail(w->err, TACOZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == TACOZ_OK && i < n; i++) names[i] = plan[i].name, lens[i] = plan[i].nlen, sizes[i] = plan[i].size;
    /* The extras depend on offsets (alignment), which depend on the index
     * size, which depends on the extras (deflated: not monotone, so the
     * iteration may cycle).  First the index's data is followed by the
     * members directly, iterated to a fixed point; if that does not settle
     * in a few rounds, the members' start is fixed instead ("room" bytes
     * after the index's name) and the index's own local header is padded to
     * it with an alignment extra ("ipad"): the extras then depend on "room"
     * alone, and "room" only grows until the index fits. */
    const uint64_t base = w_pos(w) + ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN;
    size_t room = 0, ipad = 0;
    for (int round = 0; rc == TACOZ_OK; round++) {
        free(blob);
        blob = NULL;
        if ((rc = tz_index_build(names, lens, sizes, extras, n, &blob, &blob_len, &crc_off, w->err))) break;
        if (room && (blob_len == room || blob_len + ZIP_ALIGN_EXTRA_MIN <= room)) {
            ipad = room - blob_len;
            break;
        }
        if (room || round == 4) room = blob_len + ZIP_ALIGN_EXTRA_MIN + 64;
        uint64_t off = base + (room ? room : blob_len);
        int changed = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t x = member_extra(w, &plan[i], off);
            changed |= x != extras[i];
            extras[i] = x;
            off += ZIP_LFH_SIZE + plan[i].nlen + x + plan[i].size;
        }
        if (!room && !changed) break;
        if (round == 64) rc = tz_fail(w->err, TACOZ_ERR_PARAM, "internal: the index layout does not settle");
    }
    uint64_t lho = w_pos(w);
    size_t cd_rec = w->cd_len; /* TACO_INDEX's directory record, CRC patched below */
    if (rc == TACOZ_OK && w->cd_len == 0) rc = tz_fail(w->err, TACOZ_ERR_PARAM, "index must follow the header");
    if (rc == TACOZ_OK)
        rc = cd_add(w, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, 0, dos, 0, blob_len, lho, ATTR_HEADER);
    if (rc == TACOZ_OK) {
        unsigned char h[ZIP_LFH_SIZE];
        tz_lfh lh = {.dos_datetime = dos, .size = blob_len, .name_len = TACO_INDEX_NAME_LEN,
                     .extra_len = (uint16_t)ipad};
        tz_lfh_encode(h, &lh);
        rc = w_put(w, h, sizeof h);
        if (rc == TACOZ_OK) rc = w_put(w, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN);
        if (rc == TACOZ_OK && ipad) rc = put_align_extra(w, ipad);
        if (rc == TACOZ_OK) rc = w_put(w, blob, blob_len);
    }
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        uint64_t at = w_pos(w);
        if (member_extra(w, &plan[i], at) != extras[i])
            rc = tz_fail(w->err, TACOZ_ERR_PARAM, "internal: index layout mismatch at member %zu", i);
        else
            rc = add_member(w, &plan[i], &crcs[i]);
    }
    if (rc == TACOZ_OK) {
        for (size_t i = 0; i < n; i++) wr32(blob + crc_off + 4 * i, crcs[i]);
        unsigned char c[4];
        wr32(c, tz_crc32(0, blob, blob_len));
        uint64_t data = lho + ZIP_LFH_SIZE + TACO_INDEX_NAME_LEN + ipad;
        if (n) rc = w_patch(w, data + crc_off, blob + crc_off, 4 * n);
        if (rc == TACOZ_OK) rc = w_patch(w, lho + LFH_CRC, c, 4);
        memcpy(w->cd + cd_rec + TACO_CDH_CRC_OFFSET, c, 4);
    }
    free(blob), free(names), free(lens), free(sizes), free(extras), free(crcs);
    return rc;
}

static const char *plan_name(const void *ctx, size_t i, size_t *len) {
    const member_plan *p = ctx;
    *len = p[i].nlen;
    return p[i].name;
}

/* Check one member name. */
static int check_name(const char *name, size_t nlen, tacozip_error *err) {
    if (nlen > ZIP16_MAX)
        return tz_fail(err, TACOZ_ERR_PARAM, "member name of %zu bytes is longer than 65535", nlen);
    if (!tz_name_is_safe(name, nlen) || name[nlen - 1] == '/')
        return tz_fail(err, TACOZ_ERR_PARAM,
                       "member name \"%.200s\" is not a safe relative path (empty, absolute, '.', '..', '\\' or trailing '/')",
                       name);
    if ((nlen == TACO_HEADER_NAME_LEN && memcmp(name, TACO_HEADER_NAME, nlen) == 0) ||
        (nlen == TACO_INDEX_NAME_LEN && memcmp(name, TACO_INDEX_NAME, nlen) == 0))
        return tz_fail(err, TACOZ_ERR_EXISTS, "member name %s is reserved", name);
    return TACOZ_OK;
}

/* Check arguments (and stat every source when "do_stat") before anything
 * is written.  "existing": the directory of the archive appended to. */
static int plan_members(const char *const *src, const char *const *arc, size_t n, const tz_dir *existing,
                        int do_stat, member_plan **out, uint64_t *total, tacozip_error *err) {
    member_plan *p = calloc(n ? n : 1, sizeof *p);
    tz_name_table seen = {0};
    int rc = p ? tz_names_init(&seen, n, p, plan_name, err) : tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    *total = 0;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        if (!src[i] || (arc && !arc[i])) {
            rc = tz_fail(err, TACOZ_ERR_PARAM, "source or archive name %zu is NULL", i);
            break;
        }
        const char *name = src[i];
        if (arc) {
            name = arc[i];
        } else {
            const char *slash = strrchr(src[i], '/');
            if (slash) name = slash + 1;
        }
        p[i].src = src[i];
        p[i].name = name;
        p[i].nlen = strlen(name);
        p[i].size = UINT64_MAX; /* learnt from fstat() when the member is written */
        if ((rc = check_name(name, p[i].nlen, err))) break;
        if (tz_names_insert(&seen, i, NULL) != TACOZ_OK) {
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "member name \"%.200s\" given twice", name);
            break;
        }
        if (existing && tz_names_find(&existing->table, name, p[i].nlen, NULL) == TACOZ_OK) {
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "member \"%.200s\" is already in the archive", name);
            break;
        }
        if (!do_stat) continue;
        struct stat st;
        if (stat(src[i], &st) != 0) {
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s", src[i]);
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = tz_fail(err, TACOZ_ERR_PARAM, "%s: not a regular file (%s); only regular files can be archived",
                         src[i], tz_file_kind(st.st_mode));
            break;
        }
        p[i].size = (uint64_t)st.st_size;
        p[i].mtime = (int64_t)st.st_mtime;
        *total += p[i].size;
    }
    tz_names_free(&seen);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return TACOZ_OK;
}

static int check_opts(const tacozip_write_options *o, tacozip_error *err) {
    int rc = tz_check_struct_size(o->struct_size, sizeof(tacozip_write_options), "tacozip_write_options", err);
    if (rc) return rc;
    if (o->alignment > 1 && (o->alignment & (o->alignment - 1) || o->alignment > 32768))
        return tz_fail(err, TACOZ_ERR_PARAM, "alignment %u is not a power of two <= 32768", o->alignment);
    return TACOZ_OK;
}

/* The mode a new file would get: 0666 & ~umask, read without changing it. */
static mode_t default_mode(void) {
    mode_t mode = 0644;
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        unsigned um;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &um) == 1) {
                mode = 0666 & ~(mode_t)um;
                break;
            }
        fclose(f);
    }
    return mode;
}

int tacozip_create_ex(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                      size_t num_files, const taco_meta_array_t *meta, const tacozip_write_options *opts,
                      tacozip_error *err) {
    static const tacozip_write_options defaults;
    taco_meta_array_t one = {.count = 1};
    if (!opts) opts = &defaults;
    if (!meta) meta = &one;
    if (!zip_path || (num_files && !src_files)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path or file list");
    if (meta->count > TACO_HEADER_MAX_ENTRIES)
        return tz_fail(err, TACOZ_ERR_PARAM, "%u header entries given, at most %d fit", meta->count,
                       TACO_HEADER_MAX_ENTRIES);
    if (tacozip_is_url(zip_path)) {
        char shown[512];
        tz_display_name(zip_path, shown, sizeof shown);
        return tz_fail(err, TACOZ_ERR_PARAM, "%s: archives are written to local files only", shown);
    }
    int rc = check_opts(opts, err);
    if (rc) return rc;
    member_plan *plan = NULL;
    uint64_t total = 0;
    /* Sources are stat()ed up front only when something needs their sizes
     * before writing (the index, a progress total); otherwise each is
     * fstat()ed once open, and a missing one fails the (atomic) write. */
    int do_stat = opts->index || opts->progress;
    if ((rc = plan_members(src_files, arc_files, num_files, NULL, do_stat, &plan, &total, err))) return rc;

    writer w = {.fd = -1, .path = zip_path, .opts = opts, .err = err, .total_bytes = total,
                .total_files = num_files};
    tz_newfile out = {.dfd = -1, .fd = -1};
    const char *base = NULL;
    /* An archive already there: hold its writers' lock until it is
     * replaced, so that an append or update running on it fails
     * (TACOZ_ERR_LOCKED) rather than being lost under the new file.  A file
     * this process may not open for writing is replaced without it. */
    int lock_fd = -1;
    struct stat old;
    int have_old = stat(zip_path, &old) == 0 && S_ISREG(old.st_mode);
    int what;
    if (have_old && (lock_fd = open(zip_path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) >= 0 &&
        ((rc = tz_lock_writer(lock_fd, err)) != TACOZ_OK ||
         /* an interrupted append or update of it is rolled back first, so
          * that a failure here leaves it valid, and no journal of it
          * outlives it */
         (rc = tz_journal_recover(zip_path, lock_fd, !opts->no_fsync, &what, err)) != TACOZ_OK)) {
        tz_err_prefix(err, rc, zip_path);
        goto cleanup;
    }
    w.buf = malloc(OUT_BUF_SIZE);
    if (!w.buf) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    /* the new file: unnamed in the same directory until it is complete */
    out.dfd = tz_open_parent(zip_path, &base);
    if (!*base) {
        rc = tz_fail(err, TACOZ_ERR_PARAM, "%s: not a file name", zip_path);
        goto cleanup;
    }
    if (out.dfd < 0 || tz_newfile_open(&out, out.dfd, base, 0600) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot create a file in its directory", zip_path);
        goto cleanup;
    }
    w.fd = out.fd;
    if (fchmod(w.fd, have_old ? (old.st_mode & 07777) : default_mode()) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot set the new file's mode", zip_path);
        goto cleanup;
    }

    int64_t now = opts->mtime ? opts->mtime : (int64_t)time(NULL);
    unsigned char hdr[TACO_HEADER_SIZE];
    tz_header_build(meta, tz_dos_datetime(now, opts->mtime != 0), hdr);
    uint32_t hdr_dos = rd32(hdr + 10), hdr_crc = rd32(hdr + TACO_CRC_OFFSET);
    if ((rc = w_put(&w, hdr, sizeof hdr))) goto cleanup;
    if ((rc = cd_add(&w, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN, 0, hdr_dos, hdr_crc, TACO_HEADER_PAYLOAD_SIZE, 0,
                     ATTR_HEADER)))
        goto cleanup;
    if (opts->index) {
        rc = write_with_index(&w, plan, num_files, hdr_dos);
    } else {
        for (size_t i = 0; i < num_files && rc == TACOZ_OK; i++) rc = add_member(&w, &plan[i], NULL);
    }
    if (rc == TACOZ_OK) rc = write_end(&w, NULL, 0);
    if (rc == TACOZ_OK && !opts->no_fsync && fsync(w.fd) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: fsync", zip_path);
    if (rc == TACOZ_OK) {
        w.fd = -1; /* closed by the commit */
        if (tz_newfile_commit(&out, base, 1) != 0) {
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot give the new file its name", zip_path);
        } else if (!opts->no_fsync && fsync(out.dfd) != 0) {
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno,
                               "%s: the new archive is in place, but fsync of its directory failed (after a power "
                               "loss the old one may come back)",
                               zip_path);
        }
    }
cleanup:
    tz_newfile_abort(&out);
    if (out.dfd >= 0) close(out.dfd);
    if (lock_fd >= 0) close(lock_fd);
    free(w.buf);
    free(w.cd);
    free(plan);
    return rc;
}

int tacozip_create(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                   size_t num_files, const taco_meta_array_t *meta) {
    return tacozip_create_ex(zip_path, src_files, arc_files, num_files, meta, NULL, NULL);
}

int tacozip_append_ex(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                      size_t num_files, const tacozip_write_options *opts, tacozip_error *err) {
    static const tacozip_write_options defaults;
    if (!opts) opts = &defaults;
    if (!zip_path || (num_files && !src_files)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path or file list");
    char shown[512];
    tz_display_name(zip_path, shown, sizeof shown);
    if (tacozip_is_url(zip_path))
        return tz_fail(err, TACOZ_ERR_PARAM, "%s: cannot append to a remote archive (objects are immutable)", shown);
    int rc = check_opts(opts, err);
    if (rc) return rc;
    tacozip_source *src = NULL;
    tz_dir dir = {0};
    tz_end_info end;
    tz_tail t = {NULL, 0, 0};
    member_plan *plan = NULL;
    unsigned char *tail = NULL;
    writer w = {.fd = -1, .path = zip_path, .opts = opts, .err = err, .total_files = num_files};
    /* the writers' lock before the archive is read: another append or
     * update cannot change it between what is read here and what is
     * written (TACOZ_ERR_LOCKED at once if one is running) */
    int durable = !opts->no_fsync, what;
    if ((rc = tz_open_regular(zip_path, O_RDWR, &w.fd, err)) || (rc = tz_lock_writer(w.fd, err)) ||
        (rc = tz_journal_recover(zip_path, w.fd, durable, &what, err))) {
        tz_err_prefix(err, rc, shown);
        goto cleanup;
    }
    if ((rc = tz_source_file(zip_path, &src, err)) || (rc = tz_find_end(src, &end, &t, err)) ||
        (rc = tz_dir_read(&dir, src, &end, &t, err)) || (rc = tz_dir_resolve_offsets(&dir, src, 0, err))) {
        tz_err_prefix(err, rc, shown);
        goto cleanup;
    }
    if (tz_names_find(&dir.table, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, NULL) == TACOZ_OK) {
        rc = tz_fail(err, TACOZ_ERR_INDEXED,
                     "%s has an embedded member index (TACO_INDEX) that appending would make stale; "
                     "create the archive again instead",
                     shown);
        goto cleanup;
    }
    /* append checks every source before touching the archive */
    if ((rc = plan_members(src_files, arc_files, num_files, &dir, 1, &plan, &w.total_bytes, err))) goto cleanup;
    /* Keep the old tail (directory and end records) to write it back on failure. */
    uint64_t old_size = src->size, cd_off = end.cd_offset;
    size_t tail_len = (size_t)(old_size - cd_off);
    tail = malloc(tail_len ? tail_len : 1);
    w.buf_start = cd_off;
    w.buf = malloc(OUT_BUF_SIZE);
    if (!tail || !w.buf) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = tz_source_read(src, cd_off, tail, tail_len, err))) goto cleanup;
    size_t eocd_rel = (size_t)(end.eocd_offset - cd_off);
    size_t comment_len = end.comment_len;
    if (eocd_rel + ZIP_EOCD_SIZE + comment_len > tail_len) comment_len = tail_len - eocd_rel - ZIP_EOCD_SIZE;
    /* Old directory records are kept verbatim: old members do not move. */
    if ((rc = cd_reserve(&w, (size_t)end.cd_size))) goto cleanup;
    memcpy(w.cd, tail, (size_t)end.cd_size);
    w.cd_len = (size_t)end.cd_size;
    w.n_entries = dir.count;

    /* the old tail into the rollback journal before the archive is touched */
    const tz_jregion old_tail = {cd_off, tail_len, tail};
    /* what tells this archive: the bytes just before the old directory */
    uint64_t fp_len = cd_off < 65536 ? cd_off : 65536;
    if ((rc = tz_journal_write(zip_path, w.fd, TZ_JOURNAL_OP_APPEND, old_size, &old_tail, 1, cd_off - fp_len, fp_len,
                               durable, err))) {
        tz_err_prefix(err, rc, shown);
        goto cleanup;
    }
    if (lseek(w.fd, (off_t)cd_off, SEEK_SET) < 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: seek", zip_path);
    }
    for (size_t i = 0; i < num_files && rc == TACOZ_OK; i++) rc = add_member(&w, &plan[i], NULL);
    if (rc == TACOZ_OK) rc = write_end(&w, tail + eocd_rel + ZIP_EOCD_SIZE, comment_len);
    if (rc == TACOZ_OK && ftruncate(w.fd, (off_t)w_pos(&w)) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: truncate", zip_path);
    if (rc == TACOZ_OK && !opts->no_fsync && fsync(w.fd) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: fsync", zip_path);
    if (rc) tz_journal_rollback_after(zip_path, w.fd, &old_tail, 1, old_size, durable, err);
    else if ((rc = tz_journal_remove(zip_path, durable, err))) tz_err_prefix(err, rc, shown);
cleanup:
    if (w.fd >= 0 && close(w.fd) != 0 && rc == TACOZ_OK)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: close", zip_path);
    free(t.buf);
    free(tail);
    free(w.buf);
    free(w.cd);
    free(plan);
    tz_dir_free(&dir);
    tz_source_unref(src);
    return rc;
}
