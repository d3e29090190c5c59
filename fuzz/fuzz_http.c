/* fuzz_http.c - libFuzzer harness for the remote response parser
 * (src/source/http_response.c): header lines, body bytes and the verdict
 * on a finished transfer, with no network.
 *
 * The input is text.  Its first line is the request:
 *     KIND OFF LEN MAX_SKIP [SIZE [ETAG]]
 * KIND is R (LEN bytes at OFF), H (the first LEN bytes, fewer if the object
 * is shorter) or T (the last LEN bytes); SIZE and ETAG are what the source
 * already knows of the object ("-" for unknown).  Then one or more
 * responses, separated by a line "@@": header lines (a status line
 * "HTTP/x NNN" sets the status; several, as after a 100 or with
 * redirects, are allowed) up to an empty line, then the body, cut into the
 * chunks libcurl would hand over at each '|'.  The harness plays do_get()
 * in http.c: each response is one attempt; a redirect moves on to the next
 * one (at most 5), a retry verdict too (at most 4 retries); a
 * Content-Length is enforced as libcurl does (a longer body is cut there, a
 * shorter one is a transport error, retried).
 *
 * Invariants (a broken one calls abort()):
 *   - the body never writes outside the LEN-byte buffer (ASan);
 *   - the verdict is OUT_OK, OUT_RETRY or OUT_FAIL, with a negative error
 *     code on failure;
 *   - a remembered ETag holds no control character; Retry-After is within
 *     [-1, RETRY_AFTER_MAX_S];
 *   - when the read succeeds, the bytes delivered are exactly the body's
 *     bytes at the place asked for: for R, LEN bytes at OFF; for H, the
 *     first min(LEN, size) bytes; for T, the last min(LEN, size) bytes,
 *     and the range lies inside the object's size when that is known;
 *   - the object's size, once known, never changes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/http_response.h"

#define MAX_RESPONSES 16
#define MAX_REDIRECTS 5
#define MAX_RETRIES 4

/* The next line of [*p, end): returns its start, sets *len (without the
 * newline) and moves *p past it. */
static const char *next_line(const char **p, const char *end, size_t *len) {
    const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    *len = (size_t)((nl ? nl : end) - s);
    *p = nl ? nl + 1 : end;
    return s;
}

static int is_redirect(long s) { return s == 301 || s == 302 || s == 303 || s == 307 || s == 308; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    size_t ll;
    const char *l = next_line(&p, end, &ll);
    char req[256];
    if (ll >= sizeof req) return 0;
    memcpy(req, l, ll);
    req[ll] = '\0';
    char kind = 0, size_s[32] = "-", etag_s[256] = "-";
    unsigned long long off = 0, len = 0, max_skip = 0;
    if (sscanf(req, "%c %llu %llu %llu %31s %255s", &kind, &off, &len, &max_skip, size_s, etag_s) < 4) return 0;
    if (kind != 'R' && kind != 'H' && kind != 'T') return 0;
    if (len == 0 || len > 65536) return 0; /* reads of nothing make no request */
    if (kind == 'R' && off > UINT64_MAX - len) return 0;

    uint64_t obj_size = TZ_SIZE_UNKNOWN;
    if (strcmp(size_s, "-") != 0) {
        if (size_s[strspn(size_s, "0123456789")] || strlen(size_s) > 19) return 0;
        obj_size = strtoull(size_s, NULL, 10);
    }
    char etag[256] = "";
    if (strcmp(etag_s, "-") != 0) snprintf(etag, sizeof etag, "%s", etag_s);
    const uint64_t size0 = obj_size;
    /* the reader checks a range against a known size before it asks */
    if (kind == 'R' && obj_size != TZ_SIZE_UNKNOWN && (off > obj_size || len > obj_size - off)) return 0;

    unsigned char *buf = malloc(len);
    char *body = malloc(size + 1); /* the last response's body, as delivered */
    if (!buf || !body) abort();
    tz_http_xfer x;
    memset(&x, 0, sizeof x);
    x.upto = kind == 'H';
    x.suffix = kind == 'T';
    x.want_off = kind == 'R' ? off : 0;
    x.want_len = len;
    x.buf = buf;

    int out = OUT_RETRY, retries = 0, redirects = 0, refused = 0;
    size_t body_len = 0;
    tacozip_error err = TACOZIP_ERROR_INIT;
    for (int resp = 0; resp < MAX_RESPONSES && p < end; resp++) {
        tz_http_attempt(&x); /* as do_get() does */
        long line_status = 0;
        /* header lines up to an empty one */
        while (p < end) {
            l = next_line(&p, end, &ll);
            size_t k = ll;
            if (k && l[k - 1] == '\r') k--;
            if (k == 0) break;
            if (k > 5 && memcmp(l, "HTTP/", 5) == 0) { /* libcurl takes the 3-digit code after the space */
                const char *sp = memchr(l, ' ', k);
                line_status = 0;
                for (const char *d = sp ? sp + 1 : l + k; d < l + k && d < sp + 4 && *d >= '0' && *d <= '9'; d++)
                    line_status = line_status * 10 + (*d - '0');
            }
            char line[2048];
            size_t n = ll + 1 < sizeof line ? ll + 1 : sizeof line;
            memcpy(line, l, n - 1);
            line[n - 1] = '\n'; /* libcurl hands the line with its CRLF */
            tz_http_header(&x, line, n);
            if (x.retry_after < -1 || x.retry_after > RETRY_AFTER_MAX_S) abort();
            for (const unsigned char *c = (const unsigned char *)x.etag; *c; c++)
                if (*c < 0x20 || *c == 0x7f) abort();
        }
        /* the body, up to "\n@@\n" or the end */
        const char *bend = end, *nextp = end;
        for (const char *q = p; q + 4 <= end; q++)
            if (memcmp(q, "\n@@\n", 4) == 0) {
                bend = q, nextp = q + 4;
                break;
            }
        size_t blen = (size_t)(bend - p);
        int partial = 0, aborted = 0, no_status = line_status == 0; /* a transport error for libcurl */
        if (x.have_cl && x.content_length < blen) blen = (size_t)x.content_length;
        else if (x.have_cl && x.content_length > blen) partial = 1; /* after the bytes that came */
        body_len = 0;
        const char *c = p;
        while (!no_status && c < p + blen && !aborted) {
            const char *bar = memchr(c, '|', (size_t)(p + blen - c));
            const char *cend = bar ? bar : p + blen;
            size_t n = (size_t)(cend - c);
            if (n) {
                if (!x.status) x.status = line_status; /* on_body_first() */
                size_t used = tz_http_body(&x, max_skip, c, n);
                if (used > n) abort();
                if (used < n) aborted = 1; /* CURLE_WRITE_ERROR */
                memcpy(body + body_len, c, n);
                body_len += n;
                if (x.got > len) abort();
            }
            c = bar ? bar + 1 : p + blen;
        }
        p = nextp;
        if (!x.status) x.status = line_status;
        if (aborted && !x.cut) abort(); /* a short count always says why */
        if (x.cut == CUT_REFUSED) {
            refused = 1;
            out = OUT_FAIL;
            break;
        }
        int transport_ok = !no_status && !partial && !aborted;
        if ((transport_ok || x.cut == CUT_ERROR_PAGE) && is_redirect(x.status)) {
            if (++redirects > MAX_REDIRECTS) {
                out = OUT_FAIL;
                break;
            }
            continue;
        }
        if (!transport_ok && !(aborted && x.cut)) {
            out = OUT_RETRY;
        } else {
            uint64_t before = obj_size;
            tz_http_identity id = {etag, &obj_size};
            err = (tacozip_error)TACOZIP_ERROR_INIT;
            out = tz_http_verdict(&x, id, &err);
            if (out != OUT_OK && out != OUT_RETRY && out != OUT_FAIL) abort();
            if (out != OUT_OK && err.code >= 0) abort();
            if (before != TZ_SIZE_UNKNOWN && obj_size != before) abort();
        }
        if (out != OUT_RETRY || ++retries > MAX_RETRIES) break;
    }
    if (size0 != TZ_SIZE_UNKNOWN && obj_size != size0) abort();
    if (out == OUT_OK && !refused) {
        if (x.want_len > len || x.got < x.want_len) abort();
        /* the bytes delivered are the body's, from where the wanted ones start */
        uint64_t from = x.status == 206 ? 0 : x.want_off;
        if (x.want_len) {
            if (from > body_len || x.want_len > body_len - from) abort();
            if (memcmp(buf, body + from, (size_t)x.want_len) != 0) abort();
        }
        if (kind == 'R' && (x.want_off != off || x.want_len != len)) abort();
        if (kind == 'H' && x.want_off != 0) abort();
        if (obj_size != TZ_SIZE_UNKNOWN) {
            if (x.want_off > obj_size || x.want_len > obj_size - x.want_off) abort();
            uint64_t m = len < obj_size ? len : obj_size;
            if (kind == 'H' && x.want_len != m) abort();
            if (kind == 'T' && (x.want_len != m || x.want_off != obj_size - m)) abort();
        }
    }
    free(buf);
    free(body);
    return 0;
}
