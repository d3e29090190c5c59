/* remote_env.c - environment variables -> tacozip_remote_options, for the
 * tacozip command (see remote_env.h).  Ranges are those of docs/remote.md.
 * A variable that is unset or empty leaves its field 0/NULL, the library's
 * default; any other value must be valid, or the run is refused (usage
 * error). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "remote_env.h"

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The first of two variables that is set and not empty (*which: its name). */
static const char *env2(const char *a, const char *b, const char **which) {
    const char *v = env(a);
    *which = a;
    if (!v) v = env(b), *which = b;
    return v;
}

static int refuse(char *errbuf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *errbuf, size_t cap, const char *fmt, ...) {
    if (errbuf && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A whole decimal number lo..hi in variable "name" (unset/empty: *out
 * and *set unchanged).  0 or -1 with the message. */
static int env_number(const char *name, unsigned long long lo, unsigned long long hi, unsigned long long *out,
                      int *set, char *errbuf, size_t cap) {
    const char *v = env(name);
    if (!v) return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = 0;
    int ok = *v >= '0' && *v <= '9'; /* strtoull would take "-1", " 1" and "+1" */
    if (ok) x = strtoull(v, &end, 10), ok = !errno && !*end && x >= lo && x <= hi;
    if (!ok) return refuse(errbuf, cap, "%s='%s' is not a whole number from %llu to %llu", name, v, lo, hi);
    *out = x;
    *set = 1;
    return 0;
}

static int env_bool(const char *name, int *out, char *errbuf, size_t cap) {
    const char *v = env(name);
    if (!v) return 0;
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0")) *out = 0;
    else return refuse(errbuf, cap, "%s='%s' is not true, false, 1 or 0", name, v);
    return 0;
}

int cli_remote_options_from_env(tacozip_remote_options *o, char *errbuf, size_t cap) {
    if (errbuf && cap) errbuf[0] = '\0';
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o; /* every field 0/NULL: the library's default */

    /* HTTP behaviour.  Unset or empty: the library's default (0 in "o"). */
    enum { RETRIES, BACKOFF, MAX_BACKOFF, CONNECT, STALL, MIN_RATE, DEADLINE, PARALLEL, MAX_SKIP, NUM };
    static const struct {
        const char *name;
        unsigned long long lo, hi;
    } spec[NUM] = {
        [RETRIES] = {"TACOZIP_HTTP_RETRIES", 0, 100},
        [BACKOFF] = {"TACOZIP_HTTP_BACKOFF_MS", 1, 60000},
        [MAX_BACKOFF] = {"TACOZIP_HTTP_MAX_BACKOFF_MS", 1, 600000},
        [CONNECT] = {"TACOZIP_HTTP_CONNECT_TIMEOUT_MS", 100, 600000},
        [STALL] = {"TACOZIP_HTTP_STALL_TIMEOUT_S", 1, 3600},
        [MIN_RATE] = {"TACOZIP_HTTP_MIN_RATE", 1, 1ull << 30},
        [DEADLINE] = {"TACOZIP_HTTP_DEADLINE_MS", 1, 86400000},
        [PARALLEL] = {"TACOZIP_HTTP_PARALLEL", 1, 64},
        [MAX_SKIP] = {"TACOZIP_HTTP_MAX_SKIP", 0, 1ull << 40}, /* 0: TACOZIP_NO_SKIP */
    };
    unsigned long long v[NUM];
    int set[NUM];
    for (int i = 0; i < NUM; i++) {
        v[i] = 0, set[i] = 0;
        if (env_number(spec[i].name, spec[i].lo, spec[i].hi, &v[i], &set[i], errbuf, cap)) return -1;
    }
    if (set[RETRIES]) o->retries = v[RETRIES] ? (int)v[RETRIES] : TACOZIP_NO_RETRIES;
    o->backoff_ms = (long)v[BACKOFF];
    o->max_backoff_ms = (long)v[MAX_BACKOFF];
    o->connect_timeout_ms = (long)v[CONNECT];
    o->stall_timeout_s = (long)v[STALL];
    o->min_rate = (long)v[MIN_RATE];
    o->deadline_ms = (long)v[DEADLINE];
    o->parallel = (int)v[PARALLEL];
    if (set[MAX_SKIP]) o->max_skip = v[MAX_SKIP] ? (uint64_t)v[MAX_SKIP] : TACOZIP_NO_SKIP;

    const char *which, *s;
    /* CA certificates: the first of three variables */
    s = env2("TACOZIP_CA_BUNDLE", "CURL_CA_BUNDLE", &which);
    if (!s) s = env("AWS_CA_BUNDLE"), which = "AWS_CA_BUNDLE";
    o->ca_bundle = s;

    /* S3 */
    s = env2("AWS_REGION", "AWS_DEFAULT_REGION", &which);
    /* it becomes part of a host name and of the signature scope */
    if (s && (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(s) ||
              strlen(s) > 64))
        return refuse(errbuf, cap, "%s='%s' is not a region name (letters, digits, '-')", which, s);
    o->region = s;
    s = env2("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", &which);
    if (s && strncasecmp(s, "http://", 7) && strncasecmp(s, "https://", 8)) {
        char shown[256];
        tacozip_display_name(s, shown, sizeof shown);
        return refuse(errbuf, cap, "%s='%s' is not an http:// or https:// URL", which, shown);
    }
    o->endpoint_url = s;
    o->s3_addressing = TACOZIP_S3_AUTO; /* path style with an endpoint, else virtual host */
    o->access_key_id = env("AWS_ACCESS_KEY_ID");
    o->secret_access_key = env("AWS_SECRET_ACCESS_KEY");
    o->session_token = env("AWS_SESSION_TOKEN");
    if (env_bool("AWS_NO_SIGN_REQUEST", &o->unsigned_requests, errbuf, cap)) return -1;
    return 0;
}
