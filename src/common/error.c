/* error.c - error records, code names and sentences, the version. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

int tz_err_writable(const tacozip_error *err) {
    return err && (err->struct_size == 0 || err->struct_size >= TZ_ERROR_V1_SIZE);
}

static void vfail(tacozip_error *err, int code, const char *fmt, va_list ap) {
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

int tz_fail(tacozip_error *err, int code, const char *fmt, ...) {
    if (tz_err_writable(err)) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

int tz_fail_errno(tacozip_error *err, int code, int errno_value, const char *fmt, ...) {
    if (tz_err_writable(err)) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, code, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, ": %s", strerror(errno_value));
    }
    return code;
}

int tz_err_prefix(tacozip_error *err, int code, const char *name) {
    if (!tz_err_writable(err)) return code;
    if (err->code == 0) err->code = code; /* a failure that left no message */
    if (!err->message[0]) snprintf(err->message, sizeof err->message, "%s", tacozip_strerror(err->code));
    char msg[sizeof err->message];
    memcpy(msg, err->message, sizeof msg);
    snprintf(err->message, sizeof err->message, "%.200s: %.300s", name, msg);
    return err->code;
}

int tz_check_struct_size(uint32_t struct_size, size_t v1_size, const char *what, tacozip_error *err) {
    if (struct_size != 0 && struct_size < v1_size)
        return tz_fail(err, TACOZ_ERR_PARAM, "%s.struct_size is %u, smaller than the %zu bytes of tacozip 1.1", what,
                       struct_size, v1_size);
    return TACOZ_OK;
}

/* Every code: its name (without "TACOZ_") and its sentence.  The original
 * library's codes keep the original's wording. */
static const struct {
    int code;
    const char *name, *text;
} codes[] = {
    {TACOZ_OK, "OK", "success"},
    {TACOZ_ERR_IO, "ERR_IO", "I/O error (open/read/write/close/flush)"},
    {TACOZ_ERR_LIBZIP, "ERR_LIBZIP", "An error occurred in libzip"},
    {TACOZ_ERR_INVALID_HEADER, "ERR_INVALID_HEADER", "Header bytes malformed or unexpected"},
    {TACOZ_ERR_PARAM, "ERR_PARAM", "Invalid argument(s)"},
    {TACOZ_ERR_NOT_FOUND, "ERR_NOT_FOUND", "File not found in archive"},
    {TACOZ_ERR_EXISTS, "ERR_EXISTS", "File already exists in archive"},
    {TACOZ_ERR_TOO_LARGE, "ERR_TOO_LARGE", "Archive too large"},
    {TACOZ_ERR_NOMEM, "ERR_NOMEM", "out of memory"},
    {TACOZ_ERR_UNSUPPORTED, "ERR_UNSUPPORTED", "member is compressed or encrypted (only STORED members can be read)"},
    {TACOZ_INVALID_NOT_ZIP, "INVALID_NOT_ZIP", "Not a ZIP file (no local header signature at offset 0)"},
    {TACOZ_INVALID_NO_TACO, "INVALID_NO_TACO", "First member is not TACO_HEADER"},
    {TACOZ_INVALID_HEADER_SIZE, "INVALID_HEADER_SIZE", "TACO_HEADER has wrong sizes or name length"},
    {TACOZ_INVALID_META_COUNT, "INVALID_META_COUNT", "TACO_HEADER entry count is greater than 7"},
    {TACOZ_INVALID_FILE_SIZE, "INVALID_FILE_SIZE", "File too small for the structures it declares"},
    {TACOZ_INVALID_NO_EOCD, "INVALID_NO_EOCD", "End of central directory record not found"},
    {TACOZ_INVALID_CD_OFFSET, "INVALID_CD_OFFSET", "Central directory lies outside the file"},
    {TACOZ_INVALID_NO_CD_ENTRY, "INVALID_NO_CD_ENTRY", "TACO_HEADER missing from the central directory"},
    {TACOZ_INVALID_REORDERED, "INVALID_REORDERED", "TACO_HEADER is not the first entry at offset 0"},
    {TACOZ_INVALID_CD_ENTRY, "INVALID_CD_ENTRY", "Malformed central directory record"},
    {TACOZ_INVALID_COUNT, "INVALID_COUNT", "Entry counts of the end records and directory disagree"},
    {TACOZ_INVALID_LFH, "INVALID_LFH", "Local file header missing or inconsistent with the directory"},
    {TACOZ_INVALID_OVERLAP, "INVALID_OVERLAP", "Members overlap each other or the central directory"},
    {TACOZ_INVALID_ZIP64, "INVALID_ZIP64", "Malformed ZIP64 record"},
    {TACOZ_INVALID_NAME, "INVALID_NAME", "Empty, NUL-containing or duplicate member name"},
    {TACOZ_INVALID_CRC_LFH, "INVALID_CRC_LFH", "TACO_HEADER CRC in local header does not match payload"},
    {TACOZ_INVALID_CRC_CD, "INVALID_CRC_CD", "TACO_HEADER CRC in central directory does not match payload"},
    {TACOZ_INVALID_CRC_MEMBER, "INVALID_CRC_MEMBER", "Member data does not match its CRC-32"},
    {TACOZ_INVALID_INDEX, "INVALID_INDEX", "TACO_INDEX is malformed or disagrees with the central directory"},
    {TACOZ_INVALID_STORED_SIZE, "INVALID_STORED_SIZE", "A STORED member's compressed and uncompressed sizes differ"},
    {TACOZ_INVALID_DESCRIPTOR, "INVALID_DESCRIPTOR", "A member sets the data-descriptor flag but no data descriptor follows its data"},
    {TACOZ_ERR_UNSAFE_PATH, "ERR_UNSAFE_PATH", "member name would write outside the destination"},
    {TACOZ_ERR_CANCELLED, "ERR_CANCELLED", "cancelled"},
    {TACOZ_ERR_CHANGED, "ERR_CHANGED", "source changed while being read"},
    {TACOZ_ERR_NETWORK, "ERR_NETWORK", "network or server error"},
    {TACOZ_ERR_RANGE_IGNORED, "ERR_RANGE_IGNORED", "the server ignores Range requests"},
    {TACOZ_ERR_SPLIT, "ERR_SPLIT", "multi-disk (split) archives are not supported"},
    {TACOZ_ERR_INDEXED, "ERR_INDEXED", "the archive has an embedded member index (TACO_INDEX) that the change would make stale"},
    {TACOZ_ERR_NO_REMOTE, "ERR_NO_REMOTE", "this tacozip was built without libcurl: no HTTP(S) or S3"},
    {TACOZ_ERR_NOT_REMOTE, "ERR_NOT_REMOTE", "not a remote archive"},
    {TACOZ_ERR_LOCKED, "ERR_LOCKED", "the archive is locked by another writer"},
};

static int find_code(int code) {
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == code) return (int)i;
    return -1;
}

const char *tacozip_strerror(int code) {
    int i = find_code(code);
    return i < 0 ? "Unknown error code" : codes[i].text;
}

const char *tacozip_error_name(int code) {
    int i = find_code(code);
    return i < 0 ? NULL : codes[i].name;
}

const char *tacozip_validate_error_string(int code) {
    /* The original's validation strings, and "Valid TACO archive" for 0. */
    if (code == TACOZ_VALID) return "Valid TACO archive";
    return tacozip_strerror(code);
}

const char *tacozip_get_version(void) { return TACOZIP_VERSION_STRING; }
