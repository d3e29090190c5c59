/* names.c - member-name safety rules shared by the writer and extraction. */
#include <string.h>

#include "internal.h"

int tz_name_is_safe(const char *name, size_t len) {
    if (len == 0 || memchr(name, '\0', len) || memchr(name, '\\', len)) return 0;
    if (name[0] == '/') return 0;
    if (len >= 2 && name[1] == ':' && ((name[0] | 32) >= 'a' && (name[0] | 32) <= 'z')) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            size_t clen = i - start;
            if (i == len && clen == 0) break; /* trailing '/' (directory entry) */
            if (clen == 0) return 0;            /* "a//b" */
            if (clen == 1 && name[start] == '.') return 0;
            if (clen == 2 && name[start] == '.' && name[start + 1] == '.') return 0;
            start = i + 1;
        }
    }
    return 1;
}
