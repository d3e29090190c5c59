/* http_common.h - what the remote reader (http.c) and the uploader
 * (upload.c) share: remote options resolved, s3:// URLs turned into
 * request URLs and signing settings, a libcurl handle configured with the
 * settings and the credentials, the connection cache shared by a
 * transfer's handles, and the retry rules.  Defined in http.c.  Internal
 * to the library; only with libcurl. */
#ifndef TACOZIP_HTTP_COMMON_H
#define TACOZIP_HTTP_COMMON_H

#ifdef TACOZIP_HAVE_CURL
#include <curl/curl.h>
#include <pthread.h>

#include "source.h"

/* The settings of one remote object, defaults resolved. */
typedef struct {
    int retries;
    long backoff_ms, max_backoff_ms;
    long connect_timeout_ms, stall_timeout_s;
    long min_rate;    /* bytes/s averaged over stall_timeout_s, below which a transfer is cut */
    long deadline_ms; /* per operation (one read, retries included); 0: none */
    int parallel;
    uint64_t max_skip; /* bytes we accept to discard when Range is ignored */
    char *ca_bundle;
} tz_http_settings;

/* Where requests go and how they are signed. */
typedef struct {
    char *url;                       /* request URL (may hold a presigned query) */
    char *userpwd;                   /* S3 key:secret, or NULL */
    char *sigv4;                     /* "aws:amz:REGION:s3", or NULL */
    struct curl_slist *auth_headers; /* session token, extra headers: same host only */
} tz_http_target;

/* A connection cache (and DNS, TLS sessions) shared by several handles
 * used from several threads. */
typedef struct {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
} tz_http_share;

/* curl_global_init(), once per process. */
void tz_http_global_init(void);
/* Milliseconds of a monotonic clock; sleeping. */
uint64_t tz_http_now_ms(void);
void tz_http_sleep_ms(long ms);

/* The settings of "o" with the defaults filled in (o->parallel,
 * o->max_skip and the reader-only fields are left to the caller), and its
 * extra headers appended to t->auth_headers.  TACOZ_ERR_PARAM for a value
 * out of range. */
int tz_http_resolve(const tacozip_remote_options *o, tz_http_settings *s, tz_http_target *t, tacozip_error *err);
/* s3://bucket/key -> t->url (https, or the endpoint; path or virtual-host
 * style) and, with credentials, t->userpwd, t->sigv4 and the session
 * token header.  TACOZ_ERR_PARAM for a bad URL, region or endpoint. */
int tz_http_s3_url(const char *url, const tacozip_remote_options *o, tz_http_target *t, tacozip_error *err);
void tz_http_target_free(tz_http_target *t);
void tz_http_settings_free(tz_http_settings *s);

/* Create / free a share handle (TACOZ_ERR_NOMEM). */
int tz_http_share_init(tz_http_share *sh, tacozip_error *err);
void tz_http_share_free(tz_http_share *sh);

/* Reset "h" and set what every request of ours has: "url", the share,
 * protocols http and https only, no redirects followed by libcurl, the
 * timeouts, TLS verification (the CA bundle), the user agent. */
void tz_http_setup(CURL *h, const tz_http_settings *s, const tz_http_share *sh, const char *url);
/* Add the credentials of "t" to "h": the auth headers appended to *hdrs,
 * and with SigV4, the signing options and "x-amz-content-sha256:
 * <payload_hash>".  Returns 0, or -1 when out of memory (*hdrs then
 * holds what was appended so far). */
int tz_http_sign(CURL *h, const tz_http_target *t, const char *payload_hash, struct curl_slist **hdrs);
/* The hash of an empty payload, as SigV4 writes it. */
#define TZ_SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A libcurl failure that no retry can mend (bad host name, TLS trust,
 * malformed URL...): 1; resets, timeouts and the like: 0. */
int tz_http_curl_permanent(CURLcode cc);
/* The wait before the next attempt: "backoff" (doubled by the caller
 * after each attempt) or the server's Retry-After ("retry_after_s", -1
 * when none), capped by max_backoff_ms and by what is left before
 * "deadline" (tz_http_now_ms() time, 0: none). */
long tz_http_backoff(const tz_http_settings *s, long backoff, long retry_after_s, uint64_t deadline);

/* Append "s" percent-encoded to "out" (RFC 3986 unreserved characters
 * kept, and '/' when keep_slash); "out" has room for 3 * strlen(s) + 1.
 * Returns the length written. */
size_t tz_http_pct_encode(char *out, const char *s, int keep_slash);

#endif /* TACOZIP_HAVE_CURL */
#endif
