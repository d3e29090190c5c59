/* http_response.h - the response side of one ranged GET (http.c), with no
 * libcurl in it: the header lines, the body bytes and the verdict on a
 * finished transfer are pure functions of what the server sent, so that
 * they can be tested and fuzzed without a network (fuzz/fuzz_http.c).
 * http.c feeds them from libcurl's callbacks.  Internal to the library. */
#ifndef TACOZIP_HTTP_RESPONSE_H
#define TACOZIP_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "source.h" /* common.h, TZ_SIZE_UNKNOWN */

/* Why a transfer was stopped by us. */
enum {
    CUT_NONE = 0,
    CUT_HAVE_ALL,   /* the bytes asked for are in; the server sent more */
    CUT_REFUSED,    /* Range ignored and the wanted bytes start too far in */
    CUT_ERROR_PAGE, /* a large error page: judged by its status alone */
};

/* What a finished transfer calls for. */
enum { OUT_OK, OUT_RETRY, OUT_FAIL };

#define RETRY_AFTER_MAX_S 86400L /* a longer Retry-After counts as one day */
#define TZ_HTTP_ERROR_PAGE_MAX 65536 /* a longer error page is cut */

/* One attempt of one ranged GET: what was asked, what came back. */
typedef struct {
    void *r;             /* the remote source (http.c) */
    const char *url;     /* where this attempt goes (r->url, or a redirect target) */
    int foreign;         /* url is on another host than r->url: no credentials */
    uint64_t want_off;   /* first byte asked for */
    uint64_t want_len;   /* bytes asked for (0 with suffix) */
    int suffix;          /* Range: bytes=-want_len */
    int upto;            /* from want_off, at most want_len bytes (shorter object ok) */
    unsigned char *buf;  /* destination, want_len bytes */
    uint64_t got;        /* bytes stored */
    uint64_t skip;       /* bytes to drop first (200 answer) */
    int is_200;
    int cut;             /* CUT_*: we stopped the transfer on purpose */
    long status;
    /* parsed headers of the final response */
    int have_cr;
    uint64_t cr_first, cr_last, cr_total;
    int cr_unsatisfied;  /* "bytes * /N" */
    char etag[256];
    long retry_after;
    uint64_t content_length;
    int have_cl;
    uint64_t body_bytes;  /* bytes received on the wire */
    uint64_t deadline;    /* now_ms() by which the operation must end; 0: none */
    /* the range as first asked, restored by each attempt */
    int asked;
    uint64_t ask_off, ask_len;
} tz_http_xfer;

/* What identifies the object across requests: its first ETag (a
 * 256-byte buffer, "" while none is known) and its size (TZ_SIZE_UNKNOWN
 * while unknown).  The verdict fills in what it learns. */
typedef struct {
    char *etag;
    uint64_t *size;
} tz_http_identity;

/* Start an attempt (the first one, a retry or a redirect's): the state of
 * the previous answer is cleared and the range asked for is the one first
 * asked (a 200 answer narrows want_off/want_len to what it holds; a retry
 * must not inherit that). */
void tz_http_attempt(tz_http_xfer *x);

/* One header line as the server sent it ("Name: value\r\n", or a status
 * line "HTTP/..." that starts a new response). */
void tz_http_header(tz_http_xfer *x, const char *line, size_t len);

/* "len" body bytes; x->status must be set (the final response's code).
 * Returns the bytes consumed: fewer than "len" stops the transfer, with
 * x->cut saying why.  "max_skip": bytes we accept to discard when a 200
 * answer ignores the Range. */
size_t tz_http_body(tz_http_xfer *x, uint64_t max_skip, const char *data, size_t len);

/* The verdict on a transfer that ended without a transport error (or that
 * we cut, other than CUT_REFUSED): OUT_*, with "err" filled on failure.
 * The caller serializes calls that share "id". */
int tz_http_verdict(tz_http_xfer *x, tz_http_identity id, tacozip_error *err);

#endif
