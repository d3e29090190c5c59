/* validate.c - validation levels and format detection. */
#include <string.h>

#include "internal.h"

int tacozip_detect_format(const char *zip_path) {
    if (!zip_path) return TACOZIP_FORMAT_UNKNOWN;
    tz_source *src = NULL;
    if (tz_source_open(zip_path, &src, NULL)) return TACOZIP_FORMAT_UNKNOWN;
    tz_end_info end;
    int rc = tz_find_end(src, &end, NULL, NULL, NULL, NULL);
    src->destroy(src);
    if (rc) return TACOZIP_FORMAT_UNKNOWN;
    return end.zip64 ? TACOZIP_FORMAT_ZIP64 : TACOZIP_FORMAT_ZIP32;
}

int tacozip_validate_ex(const char *zip_path, int level, tacozip_error *err) {
    if (!zip_path) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path");
    char shown[512];
    tz_display_name(zip_path, shown, sizeof shown);
    if (level < TACOZIP_VALIDATE_QUICK || level > TACOZIP_VALIDATE_DEEP)
        return tz_fail(err, TACOZ_ERR_PARAM, "unknown validation level %d", level);
    tz_source *src = NULL;
    int rc = tz_source_open(zip_path, &src, err);
    if (rc) return rc;
    unsigned char hdr[TACO_HEADER_SIZE];
    size_t got = 0;
    /* One read of the first 157 bytes (fewer if the file is shorter): a
     * remote source learns its size from it, so a short object is judged as
     * a short local file is. */
    rc = tz_source_head(src, sizeof hdr, hdr, &got, err);
    if (rc == TACOZ_OK && got < TACO_HEADER_SIZE) {
        unsigned long long size = (unsigned long long)src->size;
        src->destroy(src);
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "%s: %llu bytes, a TACO archive has at least %d", shown,
                       size, TACO_HEADER_SIZE);
    }
    if (rc == TACOZ_OK && (rc = tz_header_check(hdr, NULL)) != TACOZ_OK)
        tz_fail(err, rc, "%s: %s", shown, tacozip_validate_error_string(rc));
    if (rc || level == TACOZIP_VALIDATE_QUICK) {
        src->destroy(src);
        return rc;
    }
    tacozip_archive *ar = NULL;
    rc = tz_open_source(src, 0, &ar, err);
    if (rc) return rc;
    size_t idx = 0;
    const tz_entry *e0 = ar->count ? &ar->entries[0] : NULL;
    if (tacozip_find(ar, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN, &idx) != TACOZ_OK)
        rc = tz_fail(err, TACOZ_INVALID_NO_CD_ENTRY, "%s: TACO_HEADER is not in the central directory", shown);
    else if (idx != 0 || e0->header_offset != 0)
        rc = tz_fail(err, TACOZ_INVALID_REORDERED, "%s: TACO_HEADER is record %zu at offset %llu, not the first at 0",
                     shown, idx, (unsigned long long)ar->entries[idx].header_offset);
    else if (e0->csize != TACO_HEADER_PAYLOAD_SIZE || e0->usize != TACO_HEADER_PAYLOAD_SIZE || e0->method != 0)
        rc = tz_fail(err, TACOZ_INVALID_HEADER_SIZE, "%s: TACO_HEADER directory record has wrong sizes", shown);
    if (rc == TACOZ_OK && level == TACOZIP_VALIDATE_DEEP) {
        uint32_t crc = tz_crc32(0, hdr + TACO_PAYLOAD_OFFSET, TACO_HEADER_PAYLOAD_SIZE);
        if (rd32(hdr + TACO_CRC_OFFSET) != crc)
            rc = tz_fail(err, TACOZ_INVALID_CRC_LFH, "%s: TACO_HEADER local CRC %08x, payload CRC %08x", shown,
                         rd32(hdr + TACO_CRC_OFFSET), crc);
        else if (e0->crc32 != crc)
            rc = tz_fail(err, TACOZ_INVALID_CRC_CD, "%s: TACO_HEADER directory CRC %08x, payload CRC %08x", shown,
                         e0->crc32, crc);
        /* then every local header against its directory record (this also
         * confirms the data offsets that open() derived from the layout, and
         * with them the overlap checks), then every member's data */
        tacozip_error local;
        if (rc == TACOZ_OK && (rc = tz_index_check(ar, &local)) != TACOZ_OK)
            tz_fail(err, rc, "%s: %s", shown, local.message);
        for (size_t i = 0; i < ar->count && rc == TACOZ_OK; i++)
            if ((rc = tz_check_local(ar, i, &local)) != TACOZ_OK) tz_fail(err, rc, "%s: %s", shown, local.message);
        for (size_t i = 0; i < ar->count && rc == TACOZ_OK; i++) {
            rc = tacozip_verify_member(ar, i);
            if (rc) tz_fail(err, rc, "%s: %s", shown, ar->last.message);
        }
    }
    tacozip_close(ar);
    return rc;
}

int tacozip_validate(const char *zip_path, int level) { return tacozip_validate_ex(zip_path, level, NULL); }
