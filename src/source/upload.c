/* upload.c - an S3 object written front to back (source.h, "Uploads").
 *
 * Requests of a typical upload:
 *   POST   /key?uploads=                      CreateMultipartUpload (at open)
 *   PUT    /key?partNumber=N&uploadId=ID      UploadPart 2, 3, ... (background)
 *   PUT    /key?partNumber=1&uploadId=ID      UploadPart 1 (at commit: the header)
 *   POST   /key?uploadId=ID                   CompleteMultipartUpload
 *   DELETE /key?uploadId=ID                   AbortMultipartUpload (on failure)
 * or one "PUT /key" at commit for an object known to fit in one part.
 *
 * Signing: libcurl's CURLOPT_AWS_SIGV4 signs the query string as given
 * (7.88 does not sort or encode it), so every query here is written in
 * canonical form: keys sorted, "uploads=" with its '=', values
 * percent-encoded.  The payload hash is the header x-amz-content-sha256,
 * which libcurl 7.87 and later sign with instead of hashing the body:
 * UNSIGNED-PAYLOAD for bodies, the empty hash for empty ones.
 *
 * Threads: "parallel" workers, each with its own easy handle (the
 * connection cache is shared), take full parts from a queue.  The caller's
 * thread cuts parts and sends CreateMultipartUpload, CompleteMultipartUpload,
 * AbortMultipartUpload and PutObject on a handle of its own.  The first
 * permanent failure is kept and returned by every later call. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_common.h"
#include "http_response.h"
#include "source.h"

#ifdef TACOZIP_HAVE_CURL

#define MIB ((uint64_t)1 << 20)
#define MIN_PART (5 * MIB)              /* S3: every part but the last */
#define MAX_PART ((uint64_t)5 << 30)    /* S3: 5 GiB */
#define MAX_PARTS 10000u                /* S3 */
#define MIN_CHOSEN_PART (8 * MIB)       /* the smallest part size we choose */
#define UNKNOWN_PART (16 * MIB)         /* total unknown: the first parts */
#define GROW_EVERY 1000u                /* total unknown: doubled so often */
#define MAX_PARALLEL 32
#define DEFAULT_PARALLEL 4
#define RESPONSE_MAX 65536              /* response bodies kept (XML) */
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* A part in memory: being filled, kept (part 1, held) or queued. */
typedef struct part {
    uint32_t n;          /* part number, from 1 */
    uint64_t off;        /* offset of its first byte in the object */
    size_t len, cap;     /* bytes in it, bytes allocated */
    unsigned char *data;
    struct part *next;   /* in the held list or the queue */
} part;

struct tz_upload {
    tz_http_settings opt;
    tz_http_target t;
    tz_http_share sh;
    CURL *h;             /* the caller's thread's handle */
    uint64_t part_size;  /* part 1's size (every part's unless "grow") */
    int grow;            /* total unknown: doubled every GROW_EVERY parts */
    int parallel;
    char *upload_id;     /* percent-encoded; NULL: no multipart upload (yet) */
    /* the caller's thread only */
    uint64_t written;    /* bytes appended */
    uint32_t nparts;     /* parts started (the highest number) */
    part *first;         /* part 1, until commit */
    part *cur;           /* the part being filled (may be "first"), or NULL */
    part *held;          /* full parts overlapping the hold, in order */
    uint64_t hold_off, hold_len;
    /* shared with the workers, under "lock" */
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    part *queue, *queue_last;
    int in_flight;       /* parts queued or being sent */
    int stop;            /* workers: exit when the queue is empty */
    int cancel;          /* atomic: parts are not retried any more */
    int fail_rc;         /* the first permanent failure, and its message */
    char fail_msg[sizeof(((tacozip_error *)0)->message)];
    char **etags;        /* [n - 1]: the ETag of each part sent */
    tz_upload_stats_t stats;
    pthread_t threads[MAX_PARALLEL];
    int nthreads;
};

/* ---- sizes ----------------------------------------------------------------- */

/* The size of part "n" (the last one may hold fewer bytes). */
static uint64_t part_len(const tz_upload *u, uint32_t n) {
    if (!u->grow) return u->part_size;
    uint64_t s = u->part_size << ((n - 1) / GROW_EVERY); /* at most 2^9 x 5 GiB */
    return s > MAX_PART ? MAX_PART : s;
}

/* The part size for an object of "total" bytes (TZ_SIZE_UNKNOWN) when the
 * caller asked for "want" (0: choose); sets u->part_size and u->grow. */
static int choose_part_size(tz_upload *u, uint64_t total, uint64_t want, tacozip_error *err) {
    if (want && (want < MIN_PART || want > MAX_PART))
        return tz_fail(err, TACOZ_ERR_PARAM, "part size %llu is outside S3's limits [5 MiB, 5 GiB]",
                       (unsigned long long)want);
    if (total == TZ_SIZE_UNKNOWN) {
        u->part_size = want ? want : UNKNOWN_PART;
        u->grow = 1;
        return TACOZ_OK;
    }
    if (!want) {
        uint64_t per = total / MAX_PARTS + (total % MAX_PARTS != 0);
        want = (per + MIB - 1) / MIB * MIB; /* whole MiB */
        if (want < MIN_CHOSEN_PART) want = MIN_CHOSEN_PART;
        if (want > MAX_PART)
            return tz_fail(err, TACOZ_ERR_PARAM, "an object of %llu bytes does not fit in 10,000 parts of 5 GiB",
                           (unsigned long long)total);
    } else if (total / want + (total % want != 0) > MAX_PARTS) {
        return tz_fail(err, TACOZ_ERR_PARAM, "an object of %llu bytes needs more than 10,000 parts of %llu bytes",
                       (unsigned long long)total, (unsigned long long)want);
    }
    u->part_size = want;
    return TACOZ_OK;
}

/* ---- failure state ---------------------------------------------------------- */

/* Remember the first permanent failure (and retry no part). */
static void remember(tz_upload *u, int rc, const char *msg) {
    pthread_mutex_lock(&u->lock);
    if (!u->fail_rc) {
        u->fail_rc = rc;
        snprintf(u->fail_msg, sizeof u->fail_msg, "%s", msg);
    }
    __atomic_store_n(&u->cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&u->done);
    pthread_mutex_unlock(&u->lock);
}

/* The failure remembered, into "err" (TACOZ_OK if none). */
static int failed(tz_upload *u, tacozip_error *err) {
    char msg[sizeof u->fail_msg];
    pthread_mutex_lock(&u->lock);
    int rc = u->fail_rc;
    memcpy(msg, u->fail_msg, sizeof msg);
    pthread_mutex_unlock(&u->lock);
    return rc ? tz_fail(err, rc, "%s", msg) : TACOZ_OK;
}

/* ---- XML ------------------------------------------------------------------------ */

/* The text of the first <tag>...</tag> of "xml" with the predefined and
 * numeric (ASCII) entities decoded, into "out" (cut to cap - 1 bytes).
 * 1 if the element is there. */
static int xml_text(const char *xml, const char *tag, char *out, size_t cap) {
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(xml, open);
    if (!a) return 0;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b) return 0;
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t n = 0;
    while (a < b && n + 1 < cap) {
        char c = *a++;
        if (c == '&') {
            size_t k;
            for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t el = strlen(ents[k].name);
                if ((size_t)(b - a) + 1 >= el && strncmp(a - 1, ents[k].name, el) == 0) {
                    c = ents[k].c;
                    a += el - 1;
                    break;
                }
            }
            if (k == sizeof ents / sizeof ents[0] && a < b && *a == '#') {
                char *end = NULL;
                int hex = a + 1 < b && (a[1] == 'x' || a[1] == 'X');
                unsigned long v = strtoul(a + 1 + hex, &end, hex ? 16 : 10);
                if (end && end < b && *end == ';' && v > 0 && v < 128) {
                    c = (char)v;
                    a = end + 1;
                }
            }
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return 1;
}

/* Append "s" with '&', '<' and '>' escaped (room: 5 * strlen(s) + 1). */
static size_t xml_escape(char *out, const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (e) {
            memcpy(out + n, e, strlen(e));
            n += strlen(e);
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return n;
}

/* ---- one request, with retries ---------------------------------------------------- */

typedef struct {
    const char *what;         /* "UploadPart 3": what messages call it */
    const char *method;       /* PUT, POST, DELETE */
    const char *query;        /* canonical ("" for none) */
    const void *body;         /* PUT and POST: "len" bytes (may be 0) */
    size_t len;
    const char *content_type; /* with a body */
    int cancellable;          /* a worker's part: no retry once u->cancel is set */
    int complete;             /* CompleteMultipartUpload: a 200 may hold an <Error> */
    int gone_ok;              /* AbortMultipartUpload: 404 NoSuchUpload is done */
    int head;                 /* HEAD: no body comes back */
    /* the answer */
    tz_http_xfer x;           /* status, ETag, Retry-After (http_response.c) */
    char resp[RESPONSE_MAX + 1];
    size_t resp_len;
} req;

static size_t on_header(char *line, size_t size, size_t n, void *q) {
    tz_http_header(&((req *)q)->x, line, size * n);
    return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *qv) {
    req *q = qv;
    size_t k = size * n, room = RESPONSE_MAX - q->resp_len;
    if (k < room) room = k;
    memcpy(q->resp + q->resp_len, data, room);
    q->resp_len += room;
    q->resp[q->resp_len] = '\0';
    return k;
}

/* S3's <Code> and <Message> of an error answer, as " Code (Message)". */
static void s3_error(const req *q, char *out, size_t cap) {
    char code[128], msg[300];
    int have_code = xml_text(q->resp, "Code", code, sizeof code);
    int have_msg = xml_text(q->resp, "Message", msg, sizeof msg);
    snprintf(out, cap, "%s%s%s%s%s", have_code ? " " : "", have_code ? code : "", have_msg ? " (" : "",
             have_msg ? msg : "", have_msg ? ")" : "");
}

/* One attempt of request "q" on "h": the transfer's CURLcode. */
static CURLcode attempt(tz_upload *u, CURL *h, req *q, uint64_t deadline, const char *url) {
    struct curl_slist *hdrs = NULL, *l;
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    tz_http_attempt(&q->x);
    q->resp_len = 0;
    q->resp[0] = '\0';
    tz_http_setup(h, &u->opt, &u->sh, url);
    /* parts in parallel go over connections of their own (S3 speaks
     * HTTP/1.1; one HTTP/2 connection would carry them all) */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (deadline) {
        uint64_t now = tz_http_now_ms();
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, deadline > now ? (long)(deadline - now) : 1L);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
    if (q->head) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    const char *hash = TZ_SHA256_EMPTY;
    if (q->body) {
        /* the body from memory, not copied; POSTFIELDS with the method
         * given makes it a PUT or a POST of exactly "len" bytes */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
        char ct[96];
        snprintf(ct, sizeof ct, "Content-Type: %s", q->content_type);
        if (!(l = curl_slist_append(hdrs, ct))) goto cleanup;
        hdrs = l;
        if (q->len) hash = UNSIGNED_PAYLOAD;
    }
    if (tz_http_sign(h, &u->t, hash, &hdrs)) goto cleanup;
    if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->x.status);
    curl_off_t sent = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
    pthread_mutex_lock(&u->lock);
    u->stats.requests++;
    u->stats.bytes_sent += (uint64_t)sent;
    pthread_mutex_unlock(&u->lock);
cleanup:
    curl_slist_free_all(hdrs);
    return cc;
}

/* What an attempt calls for: OUT_OK, OUT_RETRY or OUT_FAIL, with the
 * reason in "why". */
static int verdict(const req *q, CURLcode cc, char *why, size_t cap) {
    char s3[512];
    if (cc != CURLE_OK) {
        snprintf(why, cap, "%s", curl_easy_strerror(cc));
        return tz_http_curl_permanent(cc) ? OUT_FAIL : OUT_RETRY;
    }
    long s = q->x.status;
    if (s >= 200 && s < 300) {
        if (q->complete && strstr(q->resp, "<Error>")) { /* S3: an error after the 200 was sent */
            s3_error(q, s3, sizeof s3);
            snprintf(why, cap, "%ld%s", s, s3);
            return OUT_RETRY;
        }
        return OUT_OK;
    }
    s3_error(q, s3, sizeof s3);
    if (s == 404 && q->gone_ok && strstr(s3, "NoSuchUpload")) return OUT_OK;
    snprintf(why, cap, "%ld%s", s, s3[0] ? s3 : " (no S3 error code)");
    return s == 429 || s >= 500 ? OUT_RETRY : OUT_FAIL;
}

/* Sleep "ms", in slices, returning early when a cancellable request is
 * cancelled. */
static void backoff_sleep(tz_upload *u, const req *q, long ms) {
    while (ms > 0 && !(q->cancellable && __atomic_load_n(&u->cancel, __ATOMIC_RELAXED))) {
        long k = ms < 50 ? ms : 50;
        tz_http_sleep_ms(k);
        ms -= k;
    }
}

/* Request "q" with the retry rules (a part is not tried again once the
 * upload has failed or is being aborted).  TACOZ_OK, or TACOZ_ERR_NETWORK
 * with what failed. */
static int request(tz_upload *u, CURL *h, req *q, tacozip_error *err) {
    char why[600] = "";
    int tries = 0, rc = TACOZ_OK;
    long backoff = u->opt.backoff_ms;
    uint64_t deadline = u->opt.deadline_ms ? tz_http_now_ms() + (uint64_t)u->opt.deadline_ms : 0;
    size_t ul = strlen(u->t.url), ql = strlen(q->query);
    char *url = malloc(ul + ql + 2);
    if (!url) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    memcpy(url, u->t.url, ul);
    url[ul] = '?';
    memcpy(url + ul + 1, q->query, ql + 1);
    if (!ql) url[ul] = '\0';
    for (;;) {
        CURLcode cc = attempt(u, h, q, deadline, url);
        if (cc == CURLE_OUT_OF_MEMORY) {
            rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            break;
        }
        int out = verdict(q, cc, why, sizeof why);
        if (out == OUT_OK) break;
        if (out == OUT_FAIL) {
            rc = tz_fail(err, TACOZ_ERR_NETWORK, "S3 refused %s: %s", q->what, why);
            break;
        }
        if (tries >= u->opt.retries || (deadline && tz_http_now_ms() >= deadline) ||
            (q->cancellable && __atomic_load_n(&u->cancel, __ATOMIC_RELAXED))) {
            rc = tz_fail(err, TACOZ_ERR_NETWORK, "S3 %s failed after %d attempt%s: %s", q->what, tries + 1,
                         tries ? "s" : "", why);
            break;
        }
        tries++;
        backoff_sleep(u, q, tz_http_backoff(&u->opt, backoff, q->x.retry_after, deadline));
        backoff *= 2;
        pthread_mutex_lock(&u->lock);
        u->stats.retries++;
        pthread_mutex_unlock(&u->lock);
    }
    free(url);
    return rc;
}

/* ---- the S3 operations ------------------------------------------------------------ */

/* CreateMultipartUpload: sets u->upload_id (percent-encoded). */
static int create_upload(tz_upload *u, tacozip_error *err) {
    req *q = calloc(1, sizeof *q);
    char id[1024];
    int rc = TACOZ_OK;
    if (!q) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    q->what = "CreateMultipartUpload";
    q->method = "POST";
    q->query = "uploads=";
    q->body = "";
    q->content_type = "application/octet-stream"; /* the object's */
    if ((rc = request(u, u->h, q, err))) goto cleanup;
    if (!xml_text(q->resp, "UploadId", id, sizeof id) || !id[0]) {
        rc = tz_fail(err, TACOZ_ERR_NETWORK, "S3 answered CreateMultipartUpload without an UploadId");
        goto cleanup;
    }
    if (!(u->upload_id = malloc(3 * strlen(id) + 1))) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    tz_http_pct_encode(u->upload_id, id, 0);
cleanup:
    free(q);
    return rc;
}

/* UploadPart of "p" on a worker's handle: *etag (allocated). */
static int upload_part(tz_upload *u, CURL *h, const part *p, char **etag, tacozip_error *err) {
    req *q = calloc(1, sizeof *q);
    char what[48], *query = malloc(strlen(u->upload_id) + 48);
    int rc = TACOZ_OK;
    if (!q || !query) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    snprintf(what, sizeof what, "UploadPart %u", p->n);
    sprintf(query, "partNumber=%u&uploadId=%s", p->n, u->upload_id); /* sorted, as signed */
    q->what = what;
    q->method = "PUT";
    q->query = query;
    q->body = p->data ? (const void *)p->data : "";
    q->len = p->len;
    q->content_type = "application/octet-stream";
    q->cancellable = 1;
    if ((rc = request(u, h, q, err))) goto cleanup;
    if (!q->x.etag[0]) {
        rc = tz_fail(err, TACOZ_ERR_NETWORK, "S3 answered %s without an ETag", what);
        goto cleanup;
    }
    if (!(*etag = tz_strdup(q->x.etag))) rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
cleanup:
    free(q), free(query);
    return rc;
}

/* After a CompleteMultipartUpload answered NoSuchUpload: 1 if the object
 * is there as this upload made it (its size the bytes written, its ETag
 * that of an object of u->nparts parts, "...-N"). */
static int completed(tz_upload *u) {
    req *q = calloc(1, sizeof *q);
    tacozip_error ignored = TACOZIP_ERROR_INIT;
    char suffix[32];
    int yes = 0;
    if (!q) return 0;
    q->what = "HeadObject";
    q->method = "HEAD";
    q->query = "";
    q->head = 1;
    if (request(u, u->h, q, &ignored) == TACOZ_OK) {
        snprintf(suffix, sizeof suffix, "-%u\"", u->nparts);
        size_t el = strlen(q->x.etag), sl = strlen(suffix);
        yes = q->x.have_cl && q->x.content_length == u->written && el > sl &&
              strcmp(q->x.etag + el - sl, suffix) == 0;
    }
    free(q);
    return yes;
}

/* CompleteMultipartUpload of parts 1..u->nparts. */
static int complete_upload(tz_upload *u, tacozip_error *err) {
    size_t cap = 256, n = 0;
    for (uint32_t i = 0; i < u->nparts; i++) cap += 64 + (u->etags[i] ? 5 * strlen(u->etags[i]) : 0);
    char *xml = malloc(cap), *query = malloc(strlen(u->upload_id) + 16);
    req *q = calloc(1, sizeof *q);
    int rc = TACOZ_OK;
    if (!xml || !query || !q) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    n += (size_t)sprintf(xml + n, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (uint32_t i = 0; i < u->nparts; i++) {
        if (!u->etags[i]) {
            rc = tz_fail(err, TACOZ_ERR_NETWORK, "internal: part %u was not uploaded", i + 1);
            goto cleanup;
        }
        n += (size_t)sprintf(xml + n, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
        n += xml_escape(xml + n, u->etags[i]);
        n += (size_t)sprintf(xml + n, "</ETag></Part>");
    }
    n += (size_t)sprintf(xml + n, "</CompleteMultipartUpload>");
    sprintf(query, "uploadId=%s", u->upload_id);
    q->what = "CompleteMultipartUpload";
    q->method = "POST";
    q->query = query;
    q->body = xml;
    q->len = n;
    q->content_type = "application/xml";
    q->complete = 1;
    rc = request(u, u->h, q, err);
    /* the upload gone: completed by an attempt whose answer was lost (ours,
     * or libcurl's own retry on a connection the server had closed) */
    if (rc && q->x.status == 404 && strstr(q->resp, "<Code>NoSuchUpload</Code>") && completed(u)) rc = TACOZ_OK;
cleanup:
    free(xml), free(query), free(q);
    return rc;
}

/* AbortMultipartUpload (retried; an upload already gone is done). */
static int abort_upload(tz_upload *u, tacozip_error *err) {
    char *query = malloc(strlen(u->upload_id) + 16);
    req *q = calloc(1, sizeof *q);
    int rc = TACOZ_OK;
    if (!query || !q) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    sprintf(query, "uploadId=%s", u->upload_id);
    q->what = "AbortMultipartUpload";
    q->method = "DELETE";
    q->query = query;
    q->gone_ok = 1;
    rc = request(u, u->h, q, err);
cleanup:
    free(query), free(q);
    return rc;
}

/* PutObject of "len" bytes. */
static int put_object(tz_upload *u, const void *data, size_t len, tacozip_error *err) {
    req *q = calloc(1, sizeof *q);
    if (!q) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    q->what = "PutObject";
    q->method = "PUT";
    q->query = "";
    q->body = data ? data : "";
    q->len = len;
    q->content_type = "application/octet-stream";
    int rc = request(u, u->h, q, err);
    free(q);
    if (rc == TACOZ_OK) {
        pthread_mutex_lock(&u->lock);
        u->stats.parts++;
        pthread_mutex_unlock(&u->lock);
    }
    return rc;
}

/* ---- workers --------------------------------------------------------------------- */

static void part_free(part *p) {
    if (p) free(p->data);
    free(p);
}

/* A worker: sends the queued parts until told to stop. */
static void *worker(void *arg) {
    tz_upload *u = arg;
    CURL *h = curl_easy_init();
    pthread_mutex_lock(&u->lock);
    for (;;) {
        while (!u->queue && !u->stop) pthread_cond_wait(&u->work, &u->lock);
        part *p = u->queue;
        if (!p) break;
        if (!(u->queue = p->next)) u->queue_last = NULL;
        int skip = u->fail_rc != 0;
        pthread_mutex_unlock(&u->lock);
        tacozip_error e = TACOZIP_ERROR_INIT;
        char *etag = NULL;
        int rc = TACOZ_OK;
        if (!skip) rc = h ? upload_part(u, h, p, &etag, &e) : tz_fail(&e, TACOZ_ERR_NOMEM, "cannot create an HTTP handle");
        uint32_t n = p->n;
        part_free(p);
        if (rc) remember(u, rc, e.message);
        pthread_mutex_lock(&u->lock);
        if (etag) {
            free(u->etags[n - 1]);
            u->etags[n - 1] = etag;
            u->stats.parts++;
        }
        u->in_flight--;
        pthread_cond_broadcast(&u->done);
    }
    pthread_mutex_unlock(&u->lock);
    if (h) curl_easy_cleanup(h);
    return NULL;
}

/* Stop the workers and join them.  With "cancel", the parts still queued
 * are dropped and none is retried; those being sent are let finish, so
 * that S3 has answered every UploadPart before AbortMultipartUpload is
 * sent (a part stored after the abort would be left behind). */
static void stop_workers(tz_upload *u, int cancel) {
    pthread_mutex_lock(&u->lock);
    u->stop = 1;
    if (cancel) {
        if (!u->fail_rc) {
            u->fail_rc = TACOZ_ERR_CANCELLED;
            snprintf(u->fail_msg, sizeof u->fail_msg, "the upload was aborted");
        }
        __atomic_store_n(&u->cancel, 1, __ATOMIC_RELAXED);
    }
    pthread_cond_broadcast(&u->work);
    pthread_mutex_unlock(&u->lock);
    for (int i = 0; i < u->nthreads; i++) pthread_join(u->threads[i], NULL);
    u->nthreads = 0;
}

/* Hand full part "p" to the workers (started on first use), waiting while
 * "parallel" parts are in flight.  Takes "p" in every case. */
static int enqueue(tz_upload *u, part *p, tacozip_error *err) {
    int rc = TACOZ_OK;
    pthread_mutex_lock(&u->lock);
    while (u->nthreads < u->parallel) {
        if (pthread_create(&u->threads[u->nthreads], NULL, worker, u) != 0) {
            if (u->nthreads) break; /* fewer workers will do */
            pthread_mutex_unlock(&u->lock);
            part_free(p);
            return tz_fail(err, TACOZ_ERR_NOMEM, "cannot start an upload thread");
        }
        u->nthreads++;
    }
    while (u->in_flight >= u->parallel && !u->fail_rc) pthread_cond_wait(&u->done, &u->lock);
    if (u->fail_rc) {
        pthread_mutex_unlock(&u->lock);
        part_free(p);
        return failed(u, err);
    }
    p->next = NULL;
    if (u->queue_last) u->queue_last->next = p;
    else u->queue = p;
    u->queue_last = p;
    u->in_flight++;
    pthread_cond_signal(&u->work);
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* Wait until no part is in flight; the failure remembered, if any. */
static int drain(tz_upload *u, tacozip_error *err) {
    pthread_mutex_lock(&u->lock);
    while (u->in_flight > 0) pthread_cond_wait(&u->done, &u->lock);
    pthread_mutex_unlock(&u->lock);
    return failed(u, err);
}

/* ---- buffering ----------------------------------------------------------------- */

static int overlaps_hold(const tz_upload *u, const part *p) {
    return u->hold_len && p->off < u->hold_off + u->hold_len && u->hold_off < p->off + part_len(u, p->n);
}

/* The part in memory holding byte "off", or NULL. */
static part *find(tz_upload *u, uint64_t off) {
    if (u->first && off >= u->first->off && off - u->first->off < u->first->len) return u->first;
    if (u->cur && off >= u->cur->off && off - u->cur->off < u->cur->len) return u->cur;
    for (part *p = u->held; p; p = p->next)
        if (off >= p->off && off - p->off < p->len) return p;
    return NULL;
}

/* 1 if every byte of [off, end) is in memory. */
static int in_memory(tz_upload *u, uint64_t off, uint64_t end) {
    while (off < end) {
        part *p = find(u, off);
        if (!p) return 0;
        off = p->off + p->len;
    }
    return 1;
}

/* Start the next part (CreateMultipartUpload first if a one-PUT object
 * turns out larger than one part). */
static int new_part(tz_upload *u, tacozip_error *err) {
    if (u->nparts >= MAX_PARTS)
        return tz_fail(err, TACOZ_ERR_TOO_LARGE, "the object needs more than 10,000 parts (S3's limit) of %llu bytes",
                       (unsigned long long)u->part_size);
    if (!u->upload_id && u->nparts >= 1) {
        int rc = create_upload(u, err);
        if (rc) return rc;
    }
    part *p = calloc(1, sizeof *p);
    if (!p) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    p->n = ++u->nparts;
    p->off = u->written;
    u->cur = p;
    if (p->n == 1) u->first = p;
    return TACOZ_OK;
}

/* Room for "need" bytes in "p" (whose size is "size"): grown by doubling
 * from 1 MiB, so that a small object takes little memory. */
static int reserve(part *p, size_t need, uint64_t size, tacozip_error *err) {
    if (need <= p->cap) return TACOZ_OK;
    uint64_t cap = p->cap ? (uint64_t)p->cap * 2 : MIB;
    if (cap < need) cap = need;
    if (cap > size) cap = size;
    if (cap > SIZE_MAX) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    unsigned char *d = realloc(p->data, (size_t)cap);
    if (!d) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory (a part of %llu bytes)", (unsigned long long)size);
    p->data = d;
    p->cap = (size_t)cap;
    return TACOZ_OK;
}

/* The current part is full: keep it (part 1, held) or queue it. */
static int cut(tz_upload *u, tacozip_error *err) {
    part *p = u->cur;
    u->cur = NULL;
    if (p->n == 1) return TACOZ_OK;
    if (overlaps_hold(u, p)) {
        part **tail = &u->held;
        while (*tail) tail = &(*tail)->next;
        p->next = NULL;
        *tail = p;
        return TACOZ_OK;
    }
    return enqueue(u, p, err);
}

/* Queue the held parts that the hold no longer covers. */
static int release_held(tz_upload *u, tacozip_error *err) {
    part **pp = &u->held;
    while (*pp) {
        part *p = *pp;
        if (overlaps_hold(u, p)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        int rc = enqueue(u, p, err);
        if (rc) return rc;
    }
    return TACOZ_OK;
}

/* ---- the interface ------------------------------------------------------------ */

static void upload_free(tz_upload *u) {
    stop_workers(u, 1);
    if (u->cur != u->first) part_free(u->cur);
    part_free(u->first);
    for (part *p = u->held, *nx; p; p = nx) nx = p->next, part_free(p);
    for (part *p = u->queue, *nx; p; p = nx) nx = p->next, part_free(p);
    for (uint32_t i = 0; u->etags && i < MAX_PARTS; i++) free(u->etags[i]);
    free(u->etags);
    free(u->upload_id);
    if (u->h) curl_easy_cleanup(u->h);
    tz_http_share_free(&u->sh);
    tz_http_target_free(&u->t);
    tz_http_settings_free(&u->opt);
    pthread_cond_destroy(&u->work);
    pthread_cond_destroy(&u->done);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

int tz_upload_open(const char *url, const tacozip_remote_options *o, uint64_t total, uint64_t part_size, int parallel,
                   tz_upload **out, tacozip_error *err) {
    static const tacozip_remote_options defaults;
    if (!o) o = &defaults;
    if (!url || !out) return tz_fail(err, TACOZ_ERR_PARAM, "internal: tz_upload_open without a URL or an output");
    *out = NULL;
    int rc = tz_check_struct_size(o->struct_size, sizeof(tacozip_remote_options), "tacozip_remote_options", err);
    if (rc) return rc;
    if (tz_url_scheme(url) != TZ_S3) return tz_fail(err, TACOZ_ERR_PARAM, "an upload goes to an s3://bucket/key URL");
    if (parallel == 0) parallel = DEFAULT_PARALLEL;
    if (parallel < 1 || parallel > MAX_PARALLEL)
        return tz_fail(err, TACOZ_ERR_PARAM, "upload parallel = %d is outside [1, %d]", parallel, MAX_PARALLEL);
    tz_http_global_init();
    tz_upload *u = calloc(1, sizeof *u);
    if (!u) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->work, NULL);
    pthread_cond_init(&u->done, NULL);
    u->parallel = parallel;
    rc = tz_http_share_init(&u->sh, err);
    if (rc == TACOZ_OK) rc = choose_part_size(u, total, part_size, err);
    if (rc == TACOZ_OK) rc = tz_http_resolve(o, &u->opt, &u->t, err);
    if (rc == TACOZ_OK) rc = tz_http_s3_url(url, o, &u->t, err);
    if (rc == TACOZ_OK && u->t.sigv4 && curl_version_info(CURLVERSION_NOW)->version_num < 0x075700)
        /* older ones hash the body themselves, ignoring x-amz-content-sha256 */
        rc = tz_fail(err, TACOZ_ERR_NO_REMOTE, "signed S3 uploads need libcurl 7.87 or later (this is %s)",
                     curl_version_info(CURLVERSION_NOW)->version);
    if (rc == TACOZ_OK && !(u->etags = calloc(MAX_PARTS, sizeof *u->etags)))
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    if (rc == TACOZ_OK && !(u->h = curl_easy_init())) rc = tz_fail(err, TACOZ_ERR_NOMEM, "cannot create an HTTP handle");
    /* one PUT at commit when the object fits in one part; else the upload
     * starts now, so that refused credentials fail here */
    if (rc == TACOZ_OK && !(total != TZ_SIZE_UNKNOWN && total <= u->part_size)) rc = create_upload(u, err);
    if (rc) {
        upload_free(u);
        return rc;
    }
    *out = u;
    return TACOZ_OK;
}

int tz_upload_write(tz_upload *u, const void *data, size_t len, tacozip_error *err) {
    tacozip_error e = TACOZIP_ERROR_INIT;
    const unsigned char *d = data;
    int rc = failed(u, err);
    if (rc) return rc;
    while (len && rc == TACOZ_OK) {
        if (!u->cur && (rc = new_part(u, &e))) break;
        part *p = u->cur;
        uint64_t size = part_len(u, p->n);
        size_t take = size - p->len < len ? (size_t)(size - p->len) : len;
        if ((rc = reserve(p, p->len + take, size, &e))) break;
        memcpy(p->data + p->len, d, take);
        p->len += take, u->written += take;
        d += take, len -= take;
        if (p->len == size) rc = cut(u, &e);
    }
    if (rc) {
        remember(u, rc, e.message);
        return tz_fail(err, rc, "%s", e.message);
    }
    return TACOZ_OK;
}

int tz_upload_patch(tz_upload *u, uint64_t off, const void *data, size_t len, tacozip_error *err) {
    int rc = failed(u, err);
    if (rc) return rc;
    if (off > u->written || len > u->written - off)
        return tz_fail(err, TACOZ_ERR_PARAM, "internal: patch of %zu bytes at %llu: past the %llu bytes written", len,
                       (unsigned long long)off, (unsigned long long)u->written);
    if (!in_memory(u, off, off + len))
        return tz_fail(err, TACOZ_ERR_PARAM, "internal: patch of %zu bytes at %llu: already uploaded", len,
                       (unsigned long long)off);
    const unsigned char *d = data;
    while (len) {
        part *p = find(u, off);
        size_t k = (size_t)(p->off + p->len - off);
        if (k > len) k = len;
        memcpy(p->data + (off - p->off), d, k);
        off += k, d += k, len -= k;
    }
    return TACOZ_OK;
}

int tz_upload_hold(tz_upload *u, uint64_t off, size_t len, tacozip_error *err) {
    tacozip_error e = TACOZIP_ERROR_INIT;
    int rc = failed(u, err);
    if (rc) return rc;
    uint64_t end = off + len < u->written ? off + len : u->written;
    if (len && off < end && !in_memory(u, off, end))
        return tz_fail(err, TACOZ_ERR_PARAM, "internal: hold at %llu: bytes already uploaded", (unsigned long long)off);
    u->hold_off = off;
    u->hold_len = len;
    if ((rc = release_held(u, &e))) {
        remember(u, rc, e.message);
        return tz_fail(err, rc, "%s", e.message);
    }
    return TACOZ_OK;
}

int tz_upload_commit(tz_upload *u, tacozip_error *err) { return tz_upload_commit_ex(u, NULL, err); }

int tz_upload_commit_ex(tz_upload *u, tz_upload_stats_t *stats, tacozip_error *err) {
    tacozip_error e = TACOZIP_ERROR_INIT;
    int rc = failed(u, &e);
    if (rc) goto cleanup;
    if (!u->upload_id) { /* one PUT */
        rc = put_object(u, u->first ? u->first->data : NULL, u->first ? u->first->len : 0, &e);
        goto cleanup;
    }
    if (!u->first) { /* nothing written: no part to complete with */
        if ((rc = abort_upload(u, &e))) goto cleanup;
        free(u->upload_id);
        u->upload_id = NULL;
        rc = put_object(u, NULL, 0, &e);
        goto cleanup;
    }
    /* the last part, the held ones, then part 1 */
    part *last = u->cur != u->first ? u->cur : NULL;
    u->cur = NULL;
    if (last && (rc = enqueue(u, last, &e))) goto cleanup;
    u->hold_len = 0;
    if ((rc = release_held(u, &e))) goto cleanup;
    part *first = u->first;
    u->first = NULL;
    if ((rc = enqueue(u, first, &e))) goto cleanup;
    if ((rc = drain(u, &e))) goto cleanup;
    rc = complete_upload(u, &e);
cleanup:
    if (rc) {
        stop_workers(u, 1);
        if (u->upload_id) {
            tacozip_error ignored = TACOZIP_ERROR_INIT;
            abort_upload(u, &ignored);
        }
    }
    if (stats) tz_upload_stats(u, stats);
    upload_free(u);
    return rc ? tz_fail(err, rc, "%s", e.message) : TACOZ_OK;
}

void tz_upload_abort(tz_upload *u) {
    if (!u) return;
    stop_workers(u, 1);
    if (u->upload_id) {
        tacozip_error ignored = TACOZIP_ERROR_INIT;
        abort_upload(u, &ignored);
    }
    upload_free(u);
}

void tz_upload_stats(const tz_upload *u, tz_upload_stats_t *out) {
    tz_upload *m = (tz_upload *)u; /* the lock only */
    pthread_mutex_lock(&m->lock);
    *out = u->stats;
    pthread_mutex_unlock(&m->lock);
    out->part_size = u->part_size;
}

#else /* no libcurl */

static int no_remote(tacozip_error *err) {
    return tz_fail(err, TACOZ_ERR_NO_REMOTE, "this tacozip was built without libcurl: no S3 upload");
}
int tz_upload_open(const char *url, const tacozip_remote_options *o, uint64_t total, uint64_t part_size, int parallel,
                   tz_upload **out, tacozip_error *err) {
    (void)url, (void)o, (void)total, (void)part_size, (void)parallel;
    if (out) *out = NULL;
    return no_remote(err);
}
/* No upload can be opened: the others are never reached. */
int tz_upload_write(tz_upload *u, const void *data, size_t len, tacozip_error *err) {
    (void)u, (void)data, (void)len;
    return no_remote(err);
}
int tz_upload_patch(tz_upload *u, uint64_t off, const void *data, size_t len, tacozip_error *err) {
    (void)u, (void)off, (void)data, (void)len;
    return no_remote(err);
}
int tz_upload_hold(tz_upload *u, uint64_t off, size_t len, tacozip_error *err) {
    (void)u, (void)off, (void)len;
    return no_remote(err);
}
int tz_upload_commit(tz_upload *u, tacozip_error *err) { return tz_upload_commit_ex(u, NULL, err); }
int tz_upload_commit_ex(tz_upload *u, tz_upload_stats_t *stats, tacozip_error *err) {
    (void)u;
    if (stats) memset(stats, 0, sizeof *stats);
    return no_remote(err);
}
void tz_upload_abort(tz_upload *u) { (void)u; }
void tz_upload_stats(const tz_upload *u, tz_upload_stats_t *out) {
    (void)u;
    memset(out, 0, sizeof *out);
}
#endif
