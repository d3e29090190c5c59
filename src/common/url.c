/* url.c - recognising URLs and showing paths without their secrets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"

tz_scheme tz_url_scheme(const char *path) {
    if (!path) return TZ_LOCAL;
    if (!strncasecmp(path, "http://", 7)) return TZ_HTTP;
    if (!strncasecmp(path, "https://", 8)) return TZ_HTTPS;
    if (!strncasecmp(path, "s3://", 5)) return TZ_S3;
    return TZ_LOCAL;
}

int tacozip_is_url(const char *path) { return tz_url_scheme(path) != TZ_LOCAL; }

/* URL: scheme "://" [userinfo "@"] host [path] ["?" query] ["#" fragment].
 * The authority ends at the first '/', '?' or '#'; within it, the userinfo
 * ends at the LAST '@' (a password may hold '@'). */
void tz_display_name(const char *path, char *out, size_t cap) {
    if (!out || cap == 0) return;
    if (!path) {
        out[0] = '\0';
        return;
    }
    if (tz_url_scheme(path) == TZ_LOCAL) {
        snprintf(out, cap, "%s", path);
        return;
    }
    const char *auth = strstr(path, "://") + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@') host = auth + i + 1;
    size_t rest = strcspn(host, "?#");
    snprintf(out, cap, "%.*s%.*s", (int)(auth - path), path, (int)rest, host);
}

void tacozip_display_name(const char *path, char *out, size_t cap) { tz_display_name(path, out, cap); }

char *tz_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

char *tz_display_dup(const char *path) {
    size_t cap = strlen(path) + 1;
    char *out = malloc(cap);
    if (out) tz_display_name(path, out, cap);
    return out;
}
