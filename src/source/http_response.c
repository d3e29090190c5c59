/* http_response.c - the response side of one ranged GET: header lines,
 * body bytes, the verdict (see http_response.h and the rules at the top of
 * http.c).  No libcurl here: http.c calls these from its callbacks, and
 * fuzz/fuzz_http.c calls them with whatever a fuzzer makes up. */
#define _GNU_SOURCE
#include "http_response.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tz_http_attempt(tz_http_xfer *x) {
    if (!x->asked) {
        x->asked = 1;
        x->ask_off = x->want_off, x->ask_len = x->want_len;
    }
    x->want_off = x->ask_off, x->want_len = x->ask_len;
    x->got = x->skip = x->body_bytes = 0;
    x->is_200 = 0;
    x->cut = CUT_NONE;
    x->status = 0;
    x->retry_after = -1;
}

void tz_http_header(tz_http_xfer *x, const char *line, size_t len) {
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (redirect, 100) */
        x->have_cr = x->cr_unsatisfied = x->have_cl = 0;
        x->etag[0] = '\0';
        x->retry_after = -1;
        return;
    }
    char h[1024];
    size_t k = len < sizeof h - 1 ? len : sizeof h - 1;
    memcpy(h, line, k);
    h[k] = '\0';
    while (k && (h[k - 1] == '\r' || h[k - 1] == '\n')) h[--k] = '\0';
    char *colon = strchr(h, ':');
    if (!colon) return;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(h, "Content-Range")) {
        unsigned long long a, b, t;
        if (sscanf(v, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            x->have_cr = 1, x->cr_first = a, x->cr_last = b, x->cr_total = t;
        } else if (sscanf(v, "bytes */%llu", &t) == 1) {
            x->cr_unsatisfied = 1, x->cr_total = t;
        }
    } else if (!strcasecmp(h, "ETag")) {
        /* an ETag goes back in If-Match: one with a control character (a
         * bare CR, say) would inject a header, so it is not used at all */
        int clean = 1;
        for (const unsigned char *c = (const unsigned char *)v; *c && clean; c++) clean = *c >= 0x20 && *c != 0x7f;
        if (clean) snprintf(x->etag, sizeof x->etag, "%s", v);
    } else if (!strcasecmp(h, "Retry-After")) {
        /* seconds, clamped before any arithmetic (then capped by max_backoff) */
        if (isdigit((unsigned char)*v)) {
            unsigned long long secs = strtoull(v, NULL, 10); /* ULLONG_MAX on overflow */
            x->retry_after = secs > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (long)secs;
        } else {
            x->retry_after = -1;
        }
    } else if (!strcasecmp(h, "Content-Length")) {
        x->content_length = strtoull(v, NULL, 10);
        x->have_cl = 1;
    }
}

/* Body bytes of a 200 or 206 answer, into x->buf. */
static size_t body_data(tz_http_xfer *x, const char *data, size_t len) {
    size_t used = 0;
    x->body_bytes += len;
    if (x->is_200) {
        /* Range ignored: drop bytes before the wanted offset, keep the rest
         * up to the wanted length, then cut the transfer off. */
        if (x->skip) {
            size_t d = x->skip < len ? (size_t)x->skip : len;
            x->skip -= d;
            used = d;
        }
    }
    if (used < len) {
        uint64_t room = x->want_len - x->got;
        size_t take = (len - used) < room ? len - used : (size_t)room;
        if (x->buf && take) memcpy(x->buf + x->got, data + used, take);
        x->got += take;
        used += take;
    }
    if (used < len || (x->is_200 && x->got == x->want_len)) {
        /* more than asked: a server that sends extra bytes is not trusted
         * to fill the buffer; stop (the bytes we need are in hand, or the
         * checks after the transfer fail it) */
        x->cut = CUT_HAVE_ALL;
        return used == len ? 0 : used; /* any short count aborts */
    }
    return len;
}

size_t tz_http_body(tz_http_xfer *x, uint64_t max_skip, const char *data, size_t len) {
    if (x->status == 200 && !x->is_200) {
        /* Range ignored.  Read on only if the wanted bytes start close to
         * the beginning; never download the whole object silently. */
        uint64_t start = x->want_off;
        if (x->upto && x->have_cl && x->content_length < x->want_len) x->want_len = x->content_length;
        if (x->suffix) { /* the last want_len bytes of a body of known length */
            if (!x->have_cl) {
                start = UINT64_MAX;
            } else {
                if (x->content_length < x->want_len) x->want_len = x->content_length;
                start = x->content_length - x->want_len;
                x->want_off = start;
            }
        }
        if (start > max_skip) {
            x->cut = CUT_REFUSED;
            return 0;
        }
        x->is_200 = 1;
        x->skip = start;
    }
    if (x->status != 200 && x->status != 206) {
        /* an error page: keep the connection if it is small, else cut */
        x->body_bytes += len;
        if (x->body_bytes > TZ_HTTP_ERROR_PAGE_MAX) {
            x->cut = CUT_ERROR_PAGE;
            return 0;
        }
        return len;
    }
    return body_data(x, data, len);
}

int tz_http_verdict(tz_http_xfer *x, tz_http_identity id, tacozip_error *err) {
    long s = x->status;
    if (s == 412) {
        tz_fail(err, TACOZ_ERR_CHANGED, "the object changed since it was first read (ETag no longer matches)");
        return OUT_FAIL;
    }
    if (s == 416 && x->upto && x->cr_unsatisfied && x->cr_total == 0) {
        /* "the first N bytes, fewer if shorter" of an empty object: none */
        int changed = *id.size != TZ_SIZE_UNKNOWN && *id.size != 0;
        if (!changed) *id.size = 0;
        if (changed) {
            tz_fail(err, TACOZ_ERR_CHANGED, "the object changed between two requests (size differs)");
            return OUT_FAIL;
        }
        x->want_len = 0;
        return OUT_OK;
    }
    if (s == 416) {
        if (x->cr_unsatisfied)
            tz_fail(err, TACOZ_ERR_NETWORK, "range %llu+%llu is past the end of the %llu-byte object",
                    (unsigned long long)x->want_off, (unsigned long long)x->want_len,
                    (unsigned long long)x->cr_total);
        else
            tz_fail(err, TACOZ_ERR_NETWORK, "range not satisfiable (HTTP 416)");
        return OUT_FAIL;
    }
    if (s == 429 || s >= 500) {
        tz_fail(err, TACOZ_ERR_NETWORK, "server answered HTTP %ld", s);
        return OUT_RETRY;
    }
    if (s == 404 || s == 403 || s == 401 || s == 410) {
        tz_fail(err, TACOZ_ERR_IO, "HTTP %ld%s", s,
                s == 404 ? " (not found)" : s == 410 ? " (gone)" : " (access denied: check credentials)");
        return OUT_FAIL;
    }
    if (s != 200 && s != 206) {
        tz_fail(err, TACOZ_ERR_NETWORK, "unexpected HTTP %ld", s);
        return OUT_FAIL;
    }
    /* The object's identity: ETag and total size must not change. */
    const uint64_t size_before = *id.size;
    uint64_t total = s == 206 ? (x->have_cr ? x->cr_total : UINT64_MAX) : (x->have_cl ? x->content_length : UINT64_MAX);
    int changed = (id.etag[0] && x->etag[0] && strcmp(id.etag, x->etag) != 0) ||
                  (*id.size != TZ_SIZE_UNKNOWN && total != UINT64_MAX && total != *id.size);
    if (!changed) {
        if (!id.etag[0] && x->etag[0]) memcpy(id.etag, x->etag, sizeof x->etag);
        if (*id.size == TZ_SIZE_UNKNOWN && total != UINT64_MAX) *id.size = total;
    }
    if (changed) {
        tz_fail(err, TACOZ_ERR_CHANGED, "the object changed between two requests (ETag or size differs)");
        return OUT_FAIL;
    }
    if (s == 206) {
        if (!x->have_cr) {
            tz_fail(err, TACOZ_ERR_NETWORK, "206 answer without Content-Range");
            return OUT_FAIL;
        }
        if (x->upto) {
            uint64_t expect = x->want_len < x->cr_total ? x->want_len : x->cr_total;
            if (x->cr_first != 0 || x->cr_last + 1 != expect) {
                tz_fail(err, TACOZ_ERR_NETWORK, "asked for the first %llu bytes, server sent %llu-%llu",
                        (unsigned long long)x->want_len, (unsigned long long)x->cr_first,
                        (unsigned long long)x->cr_last);
                return OUT_FAIL;
            }
            x->want_len = expect;
        } else if (x->suffix) {
            uint64_t expect = x->want_len < x->cr_total ? x->want_len : x->cr_total;
            if (x->cr_last + 1 != x->cr_total || x->cr_last - x->cr_first + 1 != expect) {
                tz_fail(err, TACOZ_ERR_NETWORK, "server answered bytes %llu-%llu for the last %llu bytes",
                        (unsigned long long)x->cr_first, (unsigned long long)x->cr_last,
                        (unsigned long long)x->want_len);
                return OUT_FAIL;
            }
            x->want_off = x->cr_first;
            x->want_len = expect;
        } else if (x->cr_first != x->want_off || x->cr_last != x->want_off + x->want_len - 1) {
            tz_fail(err, TACOZ_ERR_NETWORK, "asked for bytes %llu-%llu, server sent %llu-%llu",
                    (unsigned long long)x->want_off, (unsigned long long)(x->want_off + x->want_len - 1),
                    (unsigned long long)x->cr_first, (unsigned long long)x->cr_last);
            return OUT_FAIL;
        }
    }
    if (s == 200 && !x->is_200 && x->got == 0 && x->have_cl && x->content_length == 0 && (x->upto || x->suffix))
        x->want_len = 0; /* an empty object sent whole (nginx ignores Range then): no body callback ran */
    if (*id.size != TZ_SIZE_UNKNOWN && x->upto && x->is_200 && !x->have_cl && x->want_len > *id.size &&
        x->got <= *id.size)
        x->want_len = *id.size; /* the first bytes of an object of known size, sent whole without a length */
    /* the bytes delivered lie inside the object: past its known size (a
     * 200 without Content-Length says nothing of the size; a Content-Range
     * whose range passes its own total), the object changed or the server
     * contradicts itself */
    if (*id.size != TZ_SIZE_UNKNOWN && (x->want_off > *id.size || x->want_len > *id.size - x->want_off)) {
        if (size_before != TZ_SIZE_UNKNOWN)
            tz_fail(err, TACOZ_ERR_CHANGED, "the object changed between two requests (bytes past its %llu-byte size)",
                    (unsigned long long)size_before);
        else
            tz_fail(err, TACOZ_ERR_NETWORK, "server sent bytes %llu-%llu of a %llu-byte object",
                    (unsigned long long)x->want_off, (unsigned long long)(x->want_off + x->want_len - 1),
                    (unsigned long long)*id.size);
        return OUT_FAIL;
    }
    if (x->got < x->want_len) {
        tz_fail(err, TACOZ_ERR_NETWORK, "short body: %llu of %llu bytes", (unsigned long long)x->got,
                (unsigned long long)x->want_len);
        return OUT_RETRY;
    }
    return OUT_OK;
}
