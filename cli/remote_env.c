/* remote_env.c - environment variables -> tacozip_remote_options, for the
 * tacozip command (see remote_env.h).  Ranges and defaults are those of
 * docs/remote.md.  A variable that is unset or empty keeps the default; any
 * other value must be valid, or the run is refused (usage error). */
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
 * unchanged).  0 or -1 with the message. */
static int env_number(const char *name, unsigned long long lo, unsigned long long hi, unsigned long long *out,
                      char *errbuf, size_t cap) {
    const char *v = env(name);
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long x = (*v >= '0' && *v <= '9') ? strtoull(v, &end, 10) : 0;
    if (*v < '0' || *v > '9' || errno || *end || x < lo || x > hi)
        return refuse(errbuf, cap, "%s='%s' is not a whole number from %llu to %llu", name, v, lo, hi);
    *out = x;
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
    o->size = sizeof *o;

    /* HTTP behaviour: defaults, then the variables */
    struct {
        const char *name;
        unsigned long long lo, hi, value;
    } num[] = {
        {"TACOZIP_HTTP_RETRIES", 0, 100, 4},
        {"TACOZIP_HTTP_BACKOFF_MS", 1, 60000, 100},
        {"TACOZIP_HTTP_MAX_BACKOFF_MS", 1, 600000, 5000},
        {"TACOZIP_HTTP_CONNECT_TIMEOUT_MS", 100, 600000, 10000},
        {"TACOZIP_HTTP_STALL_TIMEOUT_S", 1, 3600, 30},
        {"TACOZIP_HTTP_PARALLEL", 1, 64, 8},
        {"TACOZIP_HTTP_MAX_SKIP", 0, 1ull << 40, 1u << 20},
    };
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
        if (env_number(num[i].name, num[i].lo, num[i].hi, &num[i].value, errbuf, cap)) return -1;
    o->retries = (int)num[0].value;
    o->backoff_ms = (long)num[1].value;
    o->max_backoff_ms = (long)num[2].value;
    o->connect_timeout_ms = (long)num[3].value;
    o->stall_timeout_s = (long)num[4].value;
    o->parallel = (int)num[5].value;
    o->max_skip = (uint64_t)num[6].value;

    const char *which, *v;
    /* CA certificates: the first of three variables */
    v = env2("TACOZIP_CA_BUNDLE", "CURL_CA_BUNDLE", &which);
    if (!v) v = env("AWS_CA_BUNDLE"), which = "AWS_CA_BUNDLE";
    if (v && strlen(v) >= 512) return refuse(errbuf, cap, "%s is longer than 511 bytes", which);
    o->ca_bundle = v;

    /* S3 */
    v = env2("AWS_REGION", "AWS_DEFAULT_REGION", &which);
    if (v) {
        /* it becomes part of a host name and of the signature scope */
        if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(v) ||
            strlen(v) > 64)
            return refuse(errbuf, cap, "%s='%s' is not a region name (letters, digits, '-')", which, v);
    }
    o->aws_region = v;
    v = env2("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", &which);
    if (v && strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
        char shown[256];
        tacozip_display_name(v, shown, sizeof shown);
        return refuse(errbuf, cap, "%s='%s' is not an http:// or https:// URL", which, shown);
    }
    o->aws_endpoint_url = v;
    o->aws_access_key_id = env("AWS_ACCESS_KEY_ID");
    o->aws_secret_access_key = env("AWS_SECRET_ACCESS_KEY");
    o->aws_session_token = env("AWS_SESSION_TOKEN");
    if (env_bool("AWS_NO_SIGN_REQUEST", &o->aws_no_sign_request, errbuf, cap)) return -1;
    return 0;
}
