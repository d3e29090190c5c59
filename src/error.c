/* error.c - error codes to sentences, detailed error records, version. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int tz_fail(tacozip_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

int tz_fail_errno(tacozip_error *err, int code, int errno_value, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->message)
            snprintf(err->message + n, sizeof err->message - (size_t)n, ": %s",
                     strerror(errno_value));
    }
    return code;
}

const char *tacozip_strerror(int code) {
    switch (code) {
    case TACOZ_OK: return "success";
    case TACOZ_ERR_IO: return "I/O error (open/read/write/close/flush)";
    case TACOZ_ERR_LIBZIP: return "An error occurred in libzip";
    case TACOZ_ERR_INVALID_HEADER: return "Header bytes malformed or unexpected";
    case TACOZ_ERR_PARAM: return "Invalid argument(s)";
    case TACOZ_ERR_NOT_FOUND: return "File not found in archive";
    case TACOZ_ERR_EXISTS: return "File already exists in archive";
    case TACOZ_ERR_TOO_LARGE: return "Archive too large";
    case TACOZ_ERR_NOMEM: return "out of memory";
    case TACOZ_ERR_UNSUPPORTED: return "member is compressed, encrypted or otherwise unsupported";
    case TACOZ_ERR_UNSAFE_PATH: return "member name would write outside the destination";
    case TACOZ_ERR_CANCELLED: return "cancelled";
    case TACOZ_ERR_CHANGED: return "source changed while being read";
    case TACOZ_ERR_NETWORK: return "network or server error";
    case TACOZ_ERR_RANGE_IGNORED: return "the server ignores Range requests";
    default: return tacozip_validate_error_string(code);
    }
}

const char *tacozip_validate_error_string(int code) {
    switch (code) {
    case TACOZ_VALID: return "Valid TACO archive";
    case TACOZ_INVALID_NOT_ZIP: return "Not a ZIP file (no local header signature at offset 0)";
    case TACOZ_INVALID_NO_TACO: return "First member is not TACO_HEADER";
    case TACOZ_INVALID_HEADER_SIZE: return "TACO_HEADER has wrong sizes or name length";
    case TACOZ_INVALID_META_COUNT: return "TACO_HEADER entry count is greater than 7";
    case TACOZ_INVALID_FILE_SIZE: return "File too small for the structures it declares";
    case TACOZ_INVALID_NO_EOCD: return "End of central directory record not found";
    case TACOZ_INVALID_CD_OFFSET: return "Central directory lies outside the file";
    case TACOZ_INVALID_NO_CD_ENTRY: return "TACO_HEADER missing from the central directory";
    case TACOZ_INVALID_REORDERED: return "TACO_HEADER is not the first entry at offset 0";
    case TACOZ_INVALID_CRC_LFH: return "TACO_HEADER CRC in local header does not match payload";
    case TACOZ_INVALID_CRC_CD: return "TACO_HEADER CRC in central directory does not match payload";
    case TACOZ_INVALID_CD_ENTRY: return "Malformed central directory record";
    case TACOZ_INVALID_COUNT: return "Entry counts of the end records and directory disagree";
    case TACOZ_INVALID_LFH: return "Local file header missing or inconsistent with the directory";
    case TACOZ_INVALID_OVERLAP: return "Members overlap each other or the central directory";
    case TACOZ_INVALID_ZIP64: return "Malformed ZIP64 record";
    case TACOZ_INVALID_NAME: return "Empty, NUL-containing or duplicate member name";
    case TACOZ_INVALID_CRC_MEMBER: return "Member data does not match its CRC-32";
    case TACOZ_INVALID_INDEX: return "TACO_INDEX is malformed or disagrees with the central directory";
    case TACOZ_ERR_IO: return "I/O error (open/read/write/close/flush)";
    case TACOZ_ERR_PARAM: return "Invalid argument(s)";
    case TACOZ_ERR_NOMEM: return "out of memory";
    case TACOZ_ERR_INVALID_HEADER: return "Header bytes malformed or unexpected";
    default: return "Unknown error code";
    }
}

const char *tacozip_get_version(void) { return TACOZIP_VERSION_STRING; }
