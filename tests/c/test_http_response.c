/* test_http_response.c - the remote response parser (src/source/
 * http_response.c) without a network: the cases fuzz/fuzz_http.c found,
 * and the rules of http.c's header comment on a few plain answers. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "source/http_response.h"

typedef struct {
    tz_http_xfer x;
    unsigned char buf[256];
    char etag[256];
    uint64_t size;
    tacozip_error err;
} req;

/* A request: 'R' (len bytes at off), 'H' (the first len), 'T' (the last len). */
static void ask(req *q, char kind, uint64_t off, uint64_t len) {
    memset(q, 0, sizeof *q);
    q->x.upto = kind == 'H';
    q->x.suffix = kind == 'T';
    q->x.want_off = off;
    q->x.want_len = len;
    q->x.buf = q->buf;
    q->size = TZ_SIZE_UNKNOWN;
}

/* One answer: status, header lines ("\n"-separated), body; returns the
 * verdict (OUT_RETRY for a body shorter than its Content-Length, as
 * libcurl reports it). */
static int answer(req *q, long status, const char *headers, const char *body) {
    tz_http_attempt(&q->x);
    tz_http_header(&q->x, "HTTP/1.1 xxx\r\n", 14);
    for (const char *h = headers; *h;) {
        size_t n = strcspn(h, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s\r\n", (int)n, h);
        tz_http_header(&q->x, line, strlen(line));
        h += n + (h[n] == '\n');
    }
    q->x.status = status;
    size_t blen = strlen(body), used = blen ? tz_http_body(&q->x, 1 << 20, body, blen) : 0;
    if (q->x.cut == CUT_REFUSED) return OUT_FAIL;
    if (used == blen && q->x.have_cl && q->x.content_length > blen) return OUT_RETRY;
    q->err = (tacozip_error)TACOZIP_ERROR_INIT;
    tz_http_identity id = {q->etag, &q->size};
    return tz_http_verdict(&q->x, id, &q->err);
}

int main(void) {
    req q;

    /* plain answers */
    ask(&q, 'R', 10, 5);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 10-14/100\nETag: \"e\"", "hello"), OUT_OK);
    CHECK(memcmp(q.buf, "hello", 5) == 0);
    CHECK_EQ(q.size, 100);
    CHECK(strcmp(q.etag, "\"e\"") == 0);
    ask(&q, 'R', 10, 5);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 11-15/100", "hello"), OUT_FAIL);
    ask(&q, 'R', 3, 4);
    CHECK_EQ(answer(&q, 200, "Content-Length: 10", "0123456789"), OUT_OK);
    CHECK(memcmp(q.buf, "3456", 4) == 0);
    ask(&q, 'T', 0, 4);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 6-9/10", "6789"), OUT_OK);
    CHECK_EQ(q.x.want_off, 6);
    ask(&q, 'H', 0, 64);
    CHECK_EQ(answer(&q, 416, "Content-Range: bytes */0", ""), OUT_OK);
    CHECK_EQ(q.x.want_len, 0);
    CHECK_EQ(q.size, 0);
    ask(&q, 'R', 0, 4);
    CHECK_EQ(answer(&q, 503, "Retry-After: 99999999999999999999", "busy"), OUT_RETRY);
    CHECK_EQ(q.x.retry_after, RETRY_AFTER_MAX_S);
    ask(&q, 'R', 0, 4);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 0-3/4\nETag: \"a\rInjected: 1\"", "abcd"), OUT_OK);
    CHECK(q.etag[0] == '\0'); /* a control character: the ETag is not kept */

    /* fuzz_http finding 1: a retry inherited the range a 200 answer had
     * narrowed.  The first 64 bytes: a 200 of 5 bytes that arrives short
     * (retried), then a 206 of bytes 0-4 of a 5000-byte object was taken
     * as the whole answer: 5 bytes read of a 5000-byte object. */
    ask(&q, 'H', 0, 64);
    CHECK_EQ(answer(&q, 200, "Content-Length: 5", "abc"), OUT_RETRY);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 0-4/5000", "abcde"), OUT_FAIL);
    ask(&q, 'H', 0, 64);
    CHECK_EQ(answer(&q, 200, "Content-Length: 5", "abc"), OUT_RETRY);
    CHECK_EQ(q.x.want_len, 5);
    tz_http_attempt(&q.x);
    CHECK_EQ(q.x.want_len, 64); /* the next attempt asks for the 64 bytes again */
    /* the same for the last bytes: the range asked for again is the first one */
    ask(&q, 'T', 0, 8);
    CHECK_EQ(answer(&q, 200, "Content-Length: 6", "ab"), OUT_RETRY);
    tz_http_attempt(&q.x);
    CHECK_EQ(q.x.want_len, 8);
    CHECK_EQ(q.x.want_off, 0);

    /* fuzz_http finding 2: bytes past the object's size were accepted.  A
     * 200 without Content-Length (chunked) after the size is known... */
    ask(&q, 'H', 0, 16);
    q.size = 4;
    CHECK_EQ(answer(&q, 200, "", "0123456789abcdef"), OUT_FAIL);
    CHECK_EQ(q.err.code, TACOZ_ERR_CHANGED);
    CHECK_EQ(q.size, 4);
    /* ...and a Content-Range whose range passes its own total */
    ask(&q, 'R', 100, 4);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 100-103/50", "abcd"), OUT_FAIL);
    CHECK_EQ(q.err.code, TACOZ_ERR_NETWORK);
    CHECK(strstr(q.err.message, "50-byte object") != NULL);
    /* ...but not the first bytes of an empty object sent whole (nginx:
     * 200, Content-Length: 0, no body), nor those of a shorter object of
     * known size sent whole without a length */
    ask(&q, 'H', 0, 157);
    CHECK_EQ(answer(&q, 200, "Content-Length: 0", ""), OUT_OK);
    CHECK_EQ(q.x.want_len, 0);
    CHECK_EQ(q.size, 0);
    ask(&q, 'H', 0, 157);
    q.size = 10;
    CHECK_EQ(answer(&q, 200, "", "0123456789"), OUT_OK);
    CHECK_EQ(q.x.want_len, 10);
    ask(&q, 'H', 0, 157);
    q.size = 10;
    CHECK_EQ(answer(&q, 200, "", "0123456789a"), OUT_FAIL); /* longer than its size: changed */
    CHECK_EQ(q.err.code, TACOZ_ERR_CHANGED);
    /* at the edge: the last bytes of the object are fine */
    ask(&q, 'R', 46, 4);
    CHECK_EQ(answer(&q, 206, "Content-Range: bytes 46-49/50", "abcd"), OUT_OK);

    return check_summary();
}
