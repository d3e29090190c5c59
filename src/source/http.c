/* http.c - byte sources over HTTP(S) and S3, with libcurl.
 *
 * Each read is one GET with a Range header.  The rules that keep a client
 * honest with real servers:
 *   - a 206 must carry a Content-Range that matches what was asked;
 *   - a 200 (Range ignored) is read only up to the bytes needed and then cut
 *     off, and only when those bytes start within max_skip of the start;
 *   - 416 says the range is past the end (its Content-Range gives the size);
 *   - 5xx, 429, resets and short bodies are retried with exponential
 *     backoff (Retry-After honoured, capped);
 *   - the first response's ETag is sent as If-Match on every later request,
 *     and a 412, a different ETag or a different total size means the object
 *     changed: TACOZ_ERR_CHANGED, never bytes mixed from two versions.
 * Only http and https are spoken.  Redirects are followed here, not by
 * libcurl, so that each target is checked: a scheme other than http(s) is
 * refused, and when the host changes, no credential (S3 signature, session
 * token, user:password, extra headers) goes with the request.
 * Messages do not name the URL: the public entry points put the source's
 * display name (no credentials, no query) in front.
 *
 * Connections are reused through one CURLSH per source (connection cache,
 * DNS, TLS sessions); parallel reads use a curl multi handle and HTTP/2
 * multiplexing where the server offers it.
 *
 * What a response means (its header lines, its body bytes, the verdict on
 * a finished transfer) is decided in http_response.c, without libcurl, so
 * that it can be fuzzed (fuzz/fuzz_http.c). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_common.h"
#include "http_response.h"
#include "source.h"

#ifdef TACOZIP_HAVE_CURL
#include <curl/curl.h>

#define MAX_POOL 16


#define MAX_REDIRECTS 5

typedef struct {
    tacozip_source base;
    tz_http_target t;       /* request URL, credentials */
    char *host;             /* scheme://authority of t.url, lower case, for redirect checks */
    tz_http_settings opt;
    tz_http_share sh;
    pthread_mutex_t lock;   /* pool, etag, stats */
    CURL *pool[MAX_POOL];
    int pool_n;
    char etag[256];
    tz_source_stats stats;
    int multiplexes; /* a response came over HTTP/2 or later: parallel ranges may wait for its connection */
} remote_source;

/* ---- small helpers ------------------------------------------------------- */

/* Shared with upload.c (http_common.h). */

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u) {
    (void)h, (void)a;
    tz_http_share *sh = u;
    pthread_mutex_lock(&sh->locks[d]);
}
static void share_unlock(CURL *h, curl_lock_data d, void *u) {
    (void)h;
    tz_http_share *sh = u;
    pthread_mutex_unlock(&sh->locks[d]);
}

int tz_http_share_init(tz_http_share *sh, tacozip_error *err) {
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&sh->locks[i], NULL);
    if (!(sh->share = curl_share_init())) return tz_fail(err, TACOZ_ERR_NOMEM, "cannot create an HTTP share handle");
    curl_share_setopt(sh->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(sh->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(sh->share, CURLSHOPT_USERDATA, sh);
    curl_share_setopt(sh->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(sh->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(sh->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return TACOZ_OK;
}

/* Frees a share that tz_http_share_init() set up (even when it failed). */
void tz_http_share_free(tz_http_share *sh) {
    if (sh->share) curl_share_cleanup(sh->share);
    sh->share = NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&sh->locks[i]);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void tz_http_global_init(void) { pthread_once(&curl_once, curl_init_once); }

uint64_t tz_http_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tz_http_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int tz_http_curl_permanent(CURLcode cc) {
    return cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT ||
           cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CERTPROBLEM ||
           cc == CURLE_LOGIN_DENIED;
}

long tz_http_backoff(const tz_http_settings *s, long backoff, long retry_after_s, uint64_t deadline) {
    long wait = backoff;
    if (retry_after_s >= 0) wait = retry_after_s * 1000;
    if (wait > s->max_backoff_ms) wait = s->max_backoff_ms;
    if (deadline) { /* never sleep past the deadline */
        uint64_t now = tz_http_now_ms();
        long left = deadline > now ? (long)(deadline - now) : 0;
        if (wait > left) wait = left;
    }
    return wait;
}

/* "scheme://authority" of a URL, lower-cased, without userinfo: two URLs
 * with the same origin may share credentials. */
static char *origin_of(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return NULL;
    const char *auth = p + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@') host = auth + i + 1;
    size_t slen = (size_t)(p - url), hlen = alen - (size_t)(host - auth);
    char *o = malloc(slen + 3 + hlen + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < slen; i++) o[i] = (char)tolower((unsigned char)url[i]);
    memcpy(o + slen, "://", 3);
    for (size_t i = 0; i < hlen; i++) o[slen + 3 + i] = (char)tolower((unsigned char)host[i]);
    o[slen + 3 + hlen] = '\0';
    return o;
}

/* ---- one transfer ---------------------------------------------------------- */

typedef tz_http_xfer xfer; /* http_response.h: what was asked, what came back */

static size_t on_header(char *line, size_t size, size_t n, void *u) {
    tz_http_header(u, line, size * n);
    return size * n;
}

static CURL *get_handle(remote_source *r) {
    CURL *h = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->pool_n) h = r->pool[--r->pool_n];
    pthread_mutex_unlock(&r->lock);
    if (!h) h = curl_easy_init();
    return h;
}

static void put_handle(remote_source *r, CURL *h) {
    pthread_mutex_lock(&r->lock);
    if (r->pool_n < MAX_POOL) {
        r->pool[r->pool_n++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    if (h) curl_easy_cleanup(h);
}

/* Configure "h" for transfer "x" (headers list returned for freeing). */
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: protocol lists as strings */
#define SET_PROTOCOLS(h)                                              \
    do {                                                              \
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");     \
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"); \
    } while (0)
#else
#define SET_PROTOCOLS(h)                                                             \
    do {                                                                             \
        curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));     \
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)); \
    } while (0)
#endif

void tz_http_setup(CURL *h, const tz_http_settings *s, const tz_http_share *sh, const char *url) {
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* "a//b/./c" is an S3 key, not a path to tidy */
    SET_PROTOCOLS(h);
    curl_easy_setopt(h, CURLOPT_SHARE, sh->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* redirects: see do_get() */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    /* slower than min_rate bytes/s for stall_timeout_s (a stalled or
     * trickling server): cut, and retried */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, s->min_rate);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)s->stall_timeout_s);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_bundle) curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_bundle);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tacozip/" TACOZIP_VERSION_STRING);
}

int tz_http_sign(CURL *h, const tz_http_target *t, const char *payload_hash, struct curl_slist **hdrs) {
    struct curl_slist *l;
    for (struct curl_slist *a = t->auth_headers; a; a = a->next) {
        if (!(l = curl_slist_append(*hdrs, a->data))) return -1;
        *hdrs = l;
    }
    if (t->sigv4) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, t->sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, t->userpwd);
        /* S3 wants the payload hash header; libcurl (7.87 on) signs with
         * the value given here rather than hashing the body itself */
        char line[128];
        snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload_hash);
        if (!(l = curl_slist_append(*hdrs, line))) return -1;
        *hdrs = l;
    }
    return 0;
}

/* Configure "h" for transfer "x" (headers list returned for freeing). */
static struct curl_slist *setup(remote_source *r, CURL *h, xfer *x, char *range, size_t range_cap) {
    tz_http_setup(h, &r->opt, &r->sh, x->url);
    if (x->deadline) { /* what is left of the operation's deadline */
        uint64_t now = tz_http_now_ms();
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->deadline > now ? (long)(x->deadline - now) : 1L);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (x->foreign) {
        /* user:password in a redirect target's own URL would be used by
         * libcurl; a target on another host gets none of ours */
        curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    }
    if (x->suffix)
        snprintf(range, range_cap, "-%llu", (unsigned long long)x->want_len);
    else
        snprintf(range, range_cap, "%llu-%llu", (unsigned long long)x->want_off,
                 (unsigned long long)(x->want_off + x->want_len - 1));
    curl_easy_setopt(h, CURLOPT_RANGE, range);
    struct curl_slist *hdrs = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->etag[0] && strncmp(r->etag, "W/", 2) != 0) { /* a weak ETag never matches If-Match (RFC 9110) */
        char im[300];
        snprintf(im, sizeof im, "If-Match: %s", r->etag);
        hdrs = curl_slist_append(hdrs, im);
    }
    pthread_mutex_unlock(&r->lock);
    if (!x->foreign) tz_http_sign(h, &r->t, TZ_SHA256_EMPTY, &hdrs); /* an empty GET body */
    if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    x->retry_after = -1;
    return hdrs;
}

/* Judge a finished transfer.  Returns OUT_* and fills err on failure. */
static int judge(remote_source *r, xfer *x, CURLcode cc, tacozip_error *err) {
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && x->cut)) {
        if (tz_http_curl_permanent(cc)) {
            tz_fail(err, TACOZ_ERR_NETWORK, "%s", curl_easy_strerror(cc));
            return OUT_FAIL;
        }
        tz_fail(err, TACOZ_ERR_NETWORK, "%s", curl_easy_strerror(cc));
        return OUT_RETRY; /* resets, timeouts, partial files */
    }
    pthread_mutex_lock(&r->lock);
    tz_http_identity id = {r->etag, &r->base.size};
    int out = tz_http_verdict(x, id, err);
    pthread_mutex_unlock(&r->lock);
    return out;
}

/* One ranged GET with retries.  For a 200 answer we need to know where the
 * wanted bytes start; the write callback learns it from x->skip, set once
 * the status is known (first body bytes arrive after the headers). */
typedef struct {
    xfer x;
    CURL *h;
    char *target;  /* a redirect's URL (parallel reads), owned */
    int redirects; /* followed so far (parallel reads) */
} xfer_h;

static size_t on_body_first(char *data, size_t size, size_t n, void *u) {
    xfer_h *xh = u;
    xfer *x = &xh->x;
    if (!x->status) curl_easy_getinfo(xh->h, CURLINFO_RESPONSE_CODE, &x->status);
    return tz_http_body(x, ((remote_source *)x->r)->opt.max_skip, data, size * n);
}

static int is_redirect(long s) { return s == 301 || s == 302 || s == 303 || s == 307 || s == 308; }

/* Point transfer "x" at the Location of the redirect answered on "h".
 * TACOZ_OK, or a failure for a target that is not http(s). */
static int follow(remote_source *r, xfer *x, CURL *h, char **owned, tacozip_error *err) {
    char *loc = NULL;
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
    if (!loc || !*loc) return tz_fail(err, TACOZ_ERR_NETWORK, "HTTP %ld redirect without a Location", x->status);
    tz_scheme sc = tz_url_scheme(loc);
    if (sc != TZ_HTTP && sc != TZ_HTTPS) {
        char shown[256];
        size_t k = strcspn(loc, ":");
        snprintf(shown, sizeof shown, "%.*s", (int)(k < 32 ? k : 32), loc);
        return tz_fail(err, TACOZ_ERR_NETWORK, "refusing a redirect to a %s: URL (only http and https are followed)",
                       shown);
    }
    char *copy = tz_strdup(loc), *origin = origin_of(loc);
    if (!copy || !origin) {
        free(copy), free(origin);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    x->foreign = strcmp(origin, r->host) != 0;
    free(origin);
    free(*owned);
    *owned = copy;
    x->url = copy;
    return TACOZ_OK;
}

static int do_get(remote_source *r, xfer_h *xh, tacozip_error *err) {
    tacozip_error e = TACOZIP_ERROR_INIT; /* the caller's record may be NULL */
    xfer *x = &xh->x;
    int attempt = 0, redirects = 0, rc = TACOZ_OK;
    long backoff = r->opt.backoff_ms;
    char *target = NULL; /* a redirect's URL, owned */
    x->url = r->t.url;
    x->foreign = 0;
    if (!x->deadline && r->opt.deadline_ms) x->deadline = tz_http_now_ms() + (uint64_t)r->opt.deadline_ms;
    for (;;) {
        if (x->deadline && tz_http_now_ms() >= x->deadline) {
            char last[sizeof e.message]; /* the last attempt's error, if any */
            snprintf(last, sizeof last, "%s", e.message);
            rc = tz_fail(&e, TACOZ_ERR_NETWORK, "no complete answer within the deadline of %ld ms%s%s%s",
                         r->opt.deadline_ms, last[0] ? " (last: " : "", last, last[0] ? ")" : "");
            break;
        }
        CURL *h = get_handle(r);
        if (!h) {
            rc = tz_fail(&e, TACOZ_ERR_NOMEM, "cannot create an HTTP handle");
            break;
        }
        xh->h = h;
        tz_http_attempt(x);
        char range[64];
        struct curl_slist *hdrs = setup(r, h, x, range, sizeof range);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_first);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, xh);
        CURLcode cc = curl_easy_perform(h);
        if (!x->status) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
        curl_slist_free_all(hdrs);
        long version = 0;
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
        pthread_mutex_lock(&r->lock);
        if (version >= CURL_HTTP_VERSION_2_0) r->multiplexes = 1;
        r->stats.requests++;
        r->stats.bytes += x->body_bytes;
        pthread_mutex_unlock(&r->lock);
        if (x->cut == CUT_REFUSED) {
            put_handle(r, h);
            rc = tz_fail(&e, TACOZ_ERR_RANGE_IGNORED,
                         "the server ignores Range requests (HTTP 200 for bytes %llu+%llu); refusing to download "
                         "the whole object to reach them",
                         (unsigned long long)x->want_off, (unsigned long long)x->want_len);
            break;
        }
        if ((cc == CURLE_OK || x->cut == CUT_ERROR_PAGE) && is_redirect(x->status)) {
            if (++redirects > MAX_REDIRECTS)
                rc = tz_fail(&e, TACOZ_ERR_NETWORK, "more than %d redirects", MAX_REDIRECTS);
            else
                rc = follow(r, x, h, &target, &e);
            put_handle(r, h);
            if (rc) break;
            continue;
        }
        put_handle(r, h);
        int out = judge(r, x, cc, &e);
        if (out == OUT_OK) break;
        if (out == OUT_FAIL || ++attempt > r->opt.retries) {
            rc = e.code ? e.code : TACOZ_ERR_NETWORK;
            break;
        }
        tz_http_sleep_ms(tz_http_backoff(&r->opt, backoff, x->retry_after, x->deadline));
        backoff *= 2;
        pthread_mutex_lock(&r->lock);
        r->stats.retries++;
        pthread_mutex_unlock(&r->lock);
    }
    free(target);
    x->url = NULL;
    return rc ? tz_fail(err, rc, "%s", e.message) : TACOZ_OK;
}

/* The kinds of single-range GET. */
enum { GET_RANGE, GET_HEAD, GET_TAIL };

/* One GET of "len" bytes into "buf": at "off" (GET_RANGE), the first ones
 * (GET_HEAD: fewer if the object is shorter) or the last ones (GET_TAIL).
 * Leaves the transfer in "xh" for the caller to read what it learnt. */
static int get_one(remote_source *r, int kind, uint64_t off, size_t len, void *buf, uint64_t deadline, xfer_h *xh,
                   tacozip_error *err) {
    memset(xh, 0, sizeof *xh);
    xh->x.deadline = deadline;
    xh->x.r = r;
    xh->x.upto = kind == GET_HEAD;
    xh->x.suffix = kind == GET_TAIL;
    xh->x.want_off = off;
    xh->x.want_len = len;
    xh->x.buf = buf;
    return do_get(r, xh, err);
}

static int remote_read_at(tacozip_source *s, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    xfer_h xh;
    return len == 0 ? TACOZ_OK : get_one((remote_source *)s, GET_RANGE, off, len, buf, 0, &xh, err);
}

/* Read the first "want" bytes (fewer if the object is shorter); learns
 * the object's size. */
static int remote_read_head(tacozip_source *s, size_t want, unsigned char *buf, size_t *got, tacozip_error *err) {
    xfer_h xh;
    int rc = get_one((remote_source *)s, GET_HEAD, 0, want, buf, 0, &xh, err);
    if (rc == TACOZ_OK) *got = (size_t)xh.x.want_len;
    return rc;
}

/* Read the last "want" bytes; learns the object's size. */
static int remote_read_tail(tacozip_source *s, size_t want, unsigned char *buf, size_t *got, uint64_t *tail_off,
                            tacozip_error *err) {
    remote_source *r = (remote_source *)s;
    xfer_h xh;
    int rc = get_one(r, GET_TAIL, 0, want, buf, 0, &xh, err);
    if (rc) return rc;
    if (r->base.size == TZ_SIZE_UNKNOWN) r->base.size = xh.x.got; /* a 200 without Content-Length: bytes received */
    *got = (size_t)xh.x.want_len;
    *tail_off = r->base.size - xh.x.want_len;
    return TACOZ_OK;
}

/* ---- parallel reads ---------------------------------------------------------- */

/* Start (or restart, after a redirect) transfer "xh" on multi handle "m". */
static int start_transfer(remote_source *r, CURLM *m, xfer_h *xh, struct curl_slist **hl, char *range, size_t cap) {
    xfer *x = &xh->x;
    tz_http_attempt(x);
    if (!(xh->h = get_handle(r))) return TACOZ_ERR_NOMEM;
    *hl = setup(r, xh->h, x, range, cap);
    /* Once the server is known to speak HTTP/2: wait for a connection being
     * set up rather than open another, so that the parallel ranges are
     * multiplexed.  Never before, nor on single GETs: with the connection
     * cache shared by threads, a wait on another thread's HTTP/1.1
     * connection that the server then closes ("Connection: close") never
     * ends. */
    pthread_mutex_lock(&r->lock);
    long pipewait = r->multiplexes;
    pthread_mutex_unlock(&r->lock);
    curl_easy_setopt(xh->h, CURLOPT_PIPEWAIT, pipewait);
    curl_easy_setopt(xh->h, CURLOPT_WRITEFUNCTION, on_body_first);
    curl_easy_setopt(xh->h, CURLOPT_WRITEDATA, xh);
    curl_easy_setopt(xh->h, CURLOPT_PRIVATE, (char *)xh);
    curl_multi_add_handle(m, xh->h);
    return TACOZ_OK;
}

static int remote_read_many(tacozip_source *s, tacozip_range *ranges, size_t n, tacozip_error *err) {
    remote_source *r = (remote_source *)s;
    if (n == 0) return TACOZ_OK;
    if (n == 1) return remote_read_at(s, ranges[0].offset, ranges[0].buf, (size_t)ranges[0].length, err);
    CURLM *m = curl_multi_init();
    if (!m) return tz_fail(err, TACOZ_ERR_NOMEM, "cannot create an HTTP multi handle");
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* At most opt.parallel transfers run at once (the loop below adds no
     * more), so no CURLMOPT_MAX_HOST_CONNECTIONS: with the connection cache
     * shared by threads, transfers that libcurl queues for a free
     * connection of another thread's multi handle are never woken when the
     * server closes that connection. */
    xfer_h *xs = calloc(n, sizeof *xs);
    struct curl_slist **hl = calloc(n, sizeof *hl);
    char(*rg)[64] = calloc(n, sizeof *rg);
    int *failed = calloc(n, sizeof *failed);
    size_t next = 0, running_n = 0, done_n = 0;
    int rc = TACOZ_OK;
    const uint64_t deadline = r->opt.deadline_ms ? tz_http_now_ms() + (uint64_t)r->opt.deadline_ms : 0; /* the whole call */
    if (!xs || !hl || !rg || !failed) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        curl_multi_cleanup(m);
        goto cleanup;
    }
    while (done_n < n) {
        while (next < n && running_n < (size_t)r->opt.parallel) {
            xfer_h *xh = &xs[next];
            xh->x.r = r;
            xh->x.url = r->t.url;
            xh->x.deadline = deadline;
            xh->x.want_off = ranges[next].offset;
            xh->x.want_len = ranges[next].length;
            xh->x.buf = ranges[next].buf;
            if (start_transfer(r, m, xh, &hl[next], rg[next], sizeof rg[next])) {
                failed[next] = 1;
                next++, done_n++;
                continue;
            }
            next++, running_n++;
        }
        int still = 0;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            xfer_h *xh = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&xh);
            size_t i = (size_t)(xh - xs);
            CURLcode cc = msg->data.result;
            if (!xh->x.status) curl_easy_getinfo(xh->h, CURLINFO_RESPONSE_CODE, &xh->x.status);
            curl_multi_remove_handle(m, xh->h);
            curl_slist_free_all(hl[i]);
            hl[i] = NULL;
            tacozip_error e = TACOZIP_ERROR_INIT;
            /* a redirect: follow it here, keeping the transfer in parallel
             * (a target that may not be followed goes to the one-by-one
             * path below, which reports why) */
            int redirected = (cc == CURLE_OK || xh->x.cut == CUT_ERROR_PAGE) && is_redirect(xh->x.status) &&
                             xh->redirects < MAX_REDIRECTS && follow(r, &xh->x, xh->h, &xh->target, &e) == TACOZ_OK;
            put_handle(r, xh->h);
            xh->h = NULL;
            pthread_mutex_lock(&r->lock);
            r->stats.requests++;
            r->stats.bytes += xh->x.body_bytes;
            pthread_mutex_unlock(&r->lock);
            if (redirected) {
                xh->redirects++;
                if (start_transfer(r, m, xh, &hl[i], rg[i], sizeof rg[i]) == TACOZ_OK) continue;
                failed[i] = 1;
            } else if (xh->x.cut == CUT_REFUSED || judge(r, &xh->x, cc, &e) != OUT_OK) {
                failed[i] = 1;
            }
            running_n--, done_n++;
        }
        if (done_n < n && running_n) curl_multi_poll(m, NULL, 0, 200, NULL);
    }
    curl_multi_cleanup(m);
    /* Failed ones go again one by one, with the retry rules (and their
     * errors reported). */
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++)
        if (failed[i] && ranges[i].length) {
            xfer_h one;
            rc = get_one(r, GET_RANGE, ranges[i].offset, (size_t)ranges[i].length, ranges[i].buf, deadline, &one, err);
        }
cleanup:
    for (size_t i = 0; xs && i < n; i++) free(xs[i].target);
    free(xs), free(hl), free(rg), free(failed);
    return rc;
}

void tz_http_target_free(tz_http_target *t) {
    curl_slist_free_all(t->auth_headers);
    free(t->url), free(t->userpwd), free(t->sigv4);
    memset(t, 0, sizeof *t);
}

void tz_http_settings_free(tz_http_settings *s) {
    free(s->ca_bundle);
    s->ca_bundle = NULL;
}

static void remote_destroy(tacozip_source *s) {
    remote_source *r = (remote_source *)s;
    for (int i = 0; i < r->pool_n; i++) curl_easy_cleanup(r->pool[i]);
    tz_http_share_free(&r->sh);
    pthread_mutex_destroy(&r->lock);
    tz_http_target_free(&r->t);
    tz_http_settings_free(&r->opt);
    free(r->host);
    free(r);
}

static void remote_stats(tacozip_source *s, tz_source_stats *out) {
    remote_source *r = (remote_source *)s;
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    pthread_mutex_unlock(&r->lock);
}

static size_t remote_identity(tacozip_source *s, char *buf, size_t cap) {
    remote_source *r = (remote_source *)s;
    pthread_mutex_lock(&r->lock);
    snprintf(buf, cap, "%s", r->etag);
    pthread_mutex_unlock(&r->lock);
    return strlen(buf);
}

static const tz_source_ops http_ops = {.read_at = remote_read_at,
                                       .destroy = remote_destroy,
                                       .read_tail = remote_read_tail,
                                       .read_head = remote_read_head,
                                       .read_many = remote_read_many,
                                       .stats = remote_stats,
                                       .identity = remote_identity};

static int set(const char *s) { return s && *s; }

size_t tz_http_pct_encode(char *out, const char *s, int keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

int tz_http_s3_url(const char *url, const tacozip_remote_options *o, tz_http_target *t, tacozip_error *err) {
    const char *bk = url + 5;
    const char *slash = strchr(bk, '/');
    if (!slash || slash == bk || !slash[1]) return tz_fail(err, TACOZ_ERR_PARAM, "an S3 URL is s3://bucket/key");
    size_t blen = (size_t)(slash - bk);
    for (size_t i = 0; i < blen; i++)
        if (!(isalnum((unsigned char)bk[i]) || bk[i] == '-' || bk[i] == '.' || bk[i] == '_'))
            return tz_fail(err, TACOZ_ERR_PARAM, "S3 bucket names hold only letters, digits, '-', '.' and '_'");
    const char *key = slash + 1;
    const char *region = set(o->region) ? o->region : "us-east-1";
    for (const char *q = region; *q; q++)
        if (!(isalnum((unsigned char)*q) || *q == '-'))
            return tz_fail(err, TACOZ_ERR_PARAM, "S3 region \"%.64s\" is not a region name", region);
    const char *endpoint = set(o->endpoint_url) ? o->endpoint_url : NULL;
    int path_style = o->s3_addressing == TACOZIP_S3_PATH || (o->s3_addressing == TACOZIP_S3_AUTO && endpoint);
    size_t cap = 3 * strlen(key) + strlen(region) + (endpoint ? strlen(endpoint) : 0) + blen + 64;
    char *k = malloc(3 * strlen(key) + 1);
    t->url = malloc(cap);
    if (!t->url || !k) {
        free(k);
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    }
    tz_http_pct_encode(k, key, 1);
    if (endpoint) {
        tz_scheme es = tz_url_scheme(endpoint);
        if (es != TZ_HTTP && es != TZ_HTTPS) {
            free(k);
            return tz_fail(err, TACOZ_ERR_PARAM, "endpoint_url must be an http:// or https:// URL");
        }
        const char *auth = strstr(endpoint, "://") + 3;
        size_t el = strlen(endpoint);
        while (el && endpoint[el - 1] == '/') el--;
        if (path_style)
            snprintf(t->url, cap, "%.*s/%.*s/%s", (int)el, endpoint, (int)blen, bk, k);
        else
            snprintf(t->url, cap, "%.*s%.*s.%.*s/%s", (int)(auth - endpoint), endpoint, (int)blen, bk,
                     (int)(el - (size_t)(auth - endpoint)), auth, k);
    } else if (path_style) {
        snprintf(t->url, cap, "https://s3.%s.amazonaws.com/%.*s/%s", region, (int)blen, bk, k);
    } else {
        snprintf(t->url, cap, "https://%.*s.s3.%s.amazonaws.com/%s", (int)blen, bk, region, k);
    }
    free(k);
    if (!o->unsigned_requests && set(o->access_key_id) && set(o->secret_access_key)) {
        size_t n = strlen(o->access_key_id) + strlen(o->secret_access_key) + 2;
        t->userpwd = malloc(n);
        t->sigv4 = malloc(strlen(region) + 32);
        if (!t->userpwd || !t->sigv4) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        snprintf(t->userpwd, n, "%s:%s", o->access_key_id, o->secret_access_key);
        snprintf(t->sigv4, strlen(region) + 32, "aws:amz:%s:s3", region);
        if (set(o->session_token)) {
            size_t tn = strlen(o->session_token) + 32;
            char *th = malloc(tn);
            if (!th) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            snprintf(th, tn, "x-amz-security-token: %s", o->session_token);
            struct curl_slist *l = curl_slist_append(t->auth_headers, th);
            free(th);
            if (!l) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
            t->auth_headers = l;
        }
    }
    return TACOZ_OK;
}

/* A copy of an http(s) URL ready for libcurl: an '@' in the user
 * information other than the last one (a password holding '@', as the
 * display name reads it) is percent-encoded; then the URL must parse. */
static int http_url(remote_source *r, const char *url, tacozip_error *err) {
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#"), ats = 0, last = 0;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@') ats++, last = i;
    if (!(r->t.url = malloc(strlen(url) + 2 * ats + 1))) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    char *o = r->t.url;
    for (const char *p = url; *p; p++) {
        size_t at = (size_t)(p - auth);
        if (p >= auth && at < last && *p == '@') memcpy(o, "%40", 3), o += 3;
        else *o++ = *p;
    }
    *o = '\0';
    CURLU *u = curl_url();
    if (!u) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, r->t.url, 0);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK)
#if LIBCURL_VERSION_NUM >= 0x075000 /* 7.80 */
        return tz_fail(err, TACOZ_ERR_PARAM, "malformed URL (%s)", curl_url_strerror(uc));
#else
        return tz_fail(err, TACOZ_ERR_PARAM, "malformed URL");
#endif
    return TACOZ_OK;
}

/* A setting: 0 means the default; otherwise it must lie in [lo, hi]. */
static int setting(long v, long dflt, long lo, long hi, const char *name, long *out, tacozip_error *err) {
    if (v == 0) v = dflt;
    if (v < lo || v > hi)
        return tz_fail(err, TACOZ_ERR_PARAM, "remote option %s = %ld is outside [%ld, %ld]", name, v, lo, hi);
    *out = v;
    return TACOZ_OK;
}

int tz_http_resolve(const tacozip_remote_options *o, tz_http_settings *s, tz_http_target *t, tacozip_error *err) {
    int rc;
    if (o->retries < TACOZIP_NO_RETRIES || o->retries > 100)
        return tz_fail(err, TACOZ_ERR_PARAM, "remote option retries = %d is outside [-1, 100]", o->retries);
    s->retries = o->retries == 0 ? 4 : o->retries == TACOZIP_NO_RETRIES ? 0 : o->retries;
    if ((rc = setting(o->backoff_ms, 100, 1, 60000, "backoff_ms", &s->backoff_ms, err))) return rc;
    if ((rc = setting(o->max_backoff_ms, 5000, 1, 600000, "max_backoff_ms", &s->max_backoff_ms, err))) return rc;
    if ((rc = setting(o->connect_timeout_ms, 10000, 1, 600000, "connect_timeout_ms", &s->connect_timeout_ms, err)))
        return rc;
    if ((rc = setting(o->stall_timeout_s, 30, 1, 3600, "stall_timeout_s", &s->stall_timeout_s, err))) return rc;
    if ((rc = setting(o->min_rate, 1024, 1, 1L << 30, "min_rate", &s->min_rate, err))) return rc;
    if (o->deadline_ms < 0 || o->deadline_ms > 86400000L)
        return tz_fail(err, TACOZ_ERR_PARAM, "remote option deadline_ms = %ld is outside [0, 86400000]", o->deadline_ms);
    s->deadline_ms = o->deadline_ms;
    if (o->s3_addressing < TACOZIP_S3_AUTO || o->s3_addressing > TACOZIP_S3_VIRTUAL)
        return tz_fail(err, TACOZ_ERR_PARAM, "remote option s3_addressing = %d is unknown", o->s3_addressing);
    if (set(o->ca_bundle) && !(s->ca_bundle = tz_strdup(o->ca_bundle)))
        return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    for (const char *const *h = o->headers; h && *h; h++) {
        if (!strchr(*h, ':') || strpbrk(*h, "\r\n"))
            return tz_fail(err, TACOZ_ERR_PARAM, "extra header %zu is not one \"Name: value\" line",
                           (size_t)(h - o->headers));
        struct curl_slist *l = curl_slist_append(t->auth_headers, *h);
        if (!l) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        t->auth_headers = l;
    }
    return TACOZ_OK;
}

/* The reader's own settings (tz_http_resolve() does the shared ones). */
static int resolve(const tacozip_remote_options *o, remote_source *r, tacozip_error *err) {
    long v = 0;
    int rc = tz_http_resolve(o, &r->opt, &r->t, err);
    if (rc) return rc;
    if ((rc = setting(o->parallel, 8, 1, 64, "parallel", &v, err))) return rc;
    r->opt.parallel = (int)v;
    r->opt.max_skip = o->max_skip == 0 ? TZ_DEFAULT_GAP : o->max_skip == TACOZIP_NO_SKIP ? 0 : o->max_skip;
    r->base.coalesce_gap = o->coalesce_gap == 0 ? TZ_DEFAULT_GAP : o->coalesce_gap == TACOZIP_NO_GAP ? 0 : o->coalesce_gap;
    if (set(o->expected_identity)) {
        /* pinned from the start: sent as If-Match by the first request */
        if (strlen(o->expected_identity) >= sizeof r->etag || strpbrk(o->expected_identity, "\r\n"))
            return tz_fail(err, TACOZ_ERR_PARAM,
                           "remote option expected_identity is not one ETag (at most %zu bytes, no line break)",
                           sizeof r->etag - 1);
        memcpy(r->etag, o->expected_identity, strlen(o->expected_identity) + 1);
    }
    return TACOZ_OK;
}

int tz_source_http(const char *url, tz_scheme scheme, const tacozip_remote_options *o, tacozip_source **out,
                   tacozip_error *err) {
    static const tacozip_remote_options defaults;
    if (!o) o = &defaults;
    int rc = tz_check_struct_size(o->struct_size, sizeof(tacozip_remote_options), "tacozip_remote_options", err);
    if (rc) return rc;
    tz_http_global_init();
    remote_source *r = calloc(1, sizeof *r);
    if (!r) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    rc = tz_http_share_init(&r->sh, err);
    if (rc == TACOZ_OK) rc = tz_source_init(&r->base, &http_ops, url, err);
    if (rc == TACOZ_OK) rc = resolve(o, r, err);
    if (rc == TACOZ_OK) rc = scheme == TZ_S3 ? tz_http_s3_url(url, o, &r->t, err) : http_url(r, url, err);
    if (rc == TACOZ_OK && !(r->host = origin_of(r->t.url))) rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    if (rc) {
        char *display = r->base.display;
        remote_destroy(&r->base);
        free(display);
        return rc;
    }
    r->base.size = TZ_SIZE_UNKNOWN; /* learnt from the first response */
    r->base.round_trips = 1;
    *out = &r->base;
    return TACOZ_OK;
}

#else /* no libcurl */

int tz_source_http(const char *url, tz_scheme scheme, const tacozip_remote_options *o, tacozip_source **out,
                   tacozip_error *err) {
    (void)url, (void)scheme, (void)o, (void)out;
    return tz_fail(err, TACOZ_ERR_NO_REMOTE, "this tacozip was built without libcurl: no HTTP(S) or S3");
}
#endif
