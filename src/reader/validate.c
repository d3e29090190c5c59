/* validate.c - validation levels and format detection. */
#include "reader.h"

int tacozip_detect_format(const char *zip_path) {
    if (!zip_path) return TACOZIP_FORMAT_UNKNOWN;
    tacozip_source *src = NULL;
    if (tacozip_source_open(zip_path, NULL, &src, NULL)) return TACOZIP_FORMAT_UNKNOWN;
    tz_end_info end;
    int rc = tz_find_end(src, &end, NULL, NULL);
    tz_source_unref(src);
    if (rc) return TACOZIP_FORMAT_UNKNOWN;
    return end.zip64 ? TACOZIP_FORMAT_ZIP64 : TACOZIP_FORMAT_ZIP32;
}

/* NORMAL: TACO_HEADER listed first, at offset 0, with its sizes; every
 * STORED member's two sizes equal. */
static int check_listing(const tacozip_archive *ar, tacozip_error *err) {
    size_t idx = 0;
    const tz_entry *e0 = &ar->dir.entries[0];
    if (tacozip_find(ar, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN, &idx) != TACOZ_OK)
        return tz_fail(err, TACOZ_INVALID_NO_CD_ENTRY, "TACO_HEADER is not in the central directory");
    if (idx != 0 || e0->header_offset != 0)
        return tz_fail(err, TACOZ_INVALID_REORDERED, "TACO_HEADER is record %zu at offset %llu, not the first at 0", idx,
                       (unsigned long long)ar->dir.entries[idx].header_offset);
    if (e0->csize != TACO_HEADER_PAYLOAD_SIZE || e0->usize != TACO_HEADER_PAYLOAD_SIZE || e0->method != 0)
        return tz_fail(err, TACOZ_INVALID_HEADER_SIZE, "TACO_HEADER directory record has wrong sizes");
    /* a STORED member holds its bytes as they are: two sizes that differ
     * mean one of them lies (zipfile then reports a bad CRC) */
    for (size_t i = 0; i < ar->dir.count; i++) {
        const tz_entry *e = &ar->dir.entries[i];
        if (e->method == 0 && e->csize != e->usize)
            return tz_fail(err, TACOZ_INVALID_STORED_SIZE,
                           "member \"%.200s\" is STORED but its sizes differ (%llu bytes stored, %llu uncompressed)",
                           tz_dir_name(&ar->dir, i), (unsigned long long)e->csize, (unsigned long long)e->usize);
    }
    return TACOZ_OK;
}

/* DEEP: a member with the data-descriptor flag (bit 3) must be followed by
 * its descriptor: [signature PK\7\10] CRC-32, then both sizes in 4 bytes
 * each (8 each for ZIP64), equal to the directory's.  Without one, readers
 * that trust the flag look for it in the next member's bytes (unzip warns of
 * a possible zip bomb). */
static int check_descriptor(const tacozip_archive *ar, size_t i, tacozip_error *err) {
    const tz_entry *e = &ar->dir.entries[i];
    if (!(e->flags & ZIP_FLAG_DATA_DESCRIPTOR)) return TACOZ_OK;
    const uint64_t at = e->data_offset + e->csize, size = ar->src->size;
    unsigned char d[24] = {0};
    size_t n = at < size ? (size - at < sizeof d ? (size_t)(size - at) : sizeof d) : 0;
    int rc = n ? tz_source_read(ar->src, at, d, n, err) : TACOZ_OK;
    if (rc) return rc;
    for (int sig = 0; sig <= 1; sig++) {
        const unsigned char *p = d + (sig ? 4 : 0);
        if (sig && !(n >= 4 && rd32(d) == 0x08074b50u)) continue;
        const size_t have = n - (sig ? 4 : 0);
        if (have >= 12 && rd32(p) == e->crc32 && rd32(p + 4) == e->csize && rd32(p + 8) == e->usize) return TACOZ_OK;
        if (have >= 20 && rd32(p) == e->crc32 && rd64(p + 4) == e->csize && rd64(p + 12) == e->usize) return TACOZ_OK;
    }
    return tz_fail(err, TACOZ_INVALID_DESCRIPTOR,
                   "member \"%.200s\" sets the data-descriptor flag but no descriptor matching the directory follows "
                   "its data (at offset %llu)",
                   tz_dir_name(&ar->dir, i), (unsigned long long)at);
}

/* DEEP: both header CRCs, TACO_INDEX, every local header, every data
 * descriptor that is announced, every member. */
static int check_deep(tacozip_archive *ar, const unsigned char *hdr, tacozip_error *err) {
    uint32_t crc = tz_crc32(0, hdr + TACO_PAYLOAD_OFFSET, TACO_HEADER_PAYLOAD_SIZE);
    if (rd32(hdr + TACO_CRC_OFFSET) != crc)
        return tz_fail(err, TACOZ_INVALID_CRC_LFH, "TACO_HEADER local CRC %08x, payload CRC %08x",
                       rd32(hdr + TACO_CRC_OFFSET), crc);
    if (ar->dir.entries[0].crc32 != crc)
        return tz_fail(err, TACOZ_INVALID_CRC_CD, "TACO_HEADER directory CRC %08x, payload CRC %08x",
                       ar->dir.entries[0].crc32, crc);
    int rc = tz_index_check(&ar->dir, ar->src, err);
    /* every local header against its directory record (this also confirms
     * the data offsets open() derived from the layout, and with them the
     * overlap checks), then every member's data */
    for (size_t i = 0; i < ar->dir.count && rc == TACOZ_OK; i++) rc = tz_dir_read_local(&ar->dir, ar->src, i, err);
    for (size_t i = 0; i < ar->dir.count && rc == TACOZ_OK; i++) rc = check_descriptor(ar, i, err);
    for (size_t i = 0; i < ar->dir.count && rc == TACOZ_OK; i++) rc = tz_verify_member(ar, i, err);
    return rc;
}

static int validate(tacozip_source *src, int level, tacozip_error *err) {
    if (level < TACOZIP_VALIDATE_QUICK || level > TACOZIP_VALIDATE_DEEP)
        return tz_fail(err, TACOZ_ERR_PARAM, "unknown validation level %d", level);
    unsigned char hdr[TACO_HEADER_SIZE];
    size_t got = 0;
    /* One read of the first 157 bytes (fewer if the file is shorter): a
     * remote source learns its size from it, so a short object is judged as
     * a short local file is. */
    int rc = tz_source_head(src, sizeof hdr, hdr, &got, err);
    if (rc) return rc;
    if (got < TACO_HEADER_SIZE)
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE, "%llu bytes, a TACO archive has at least %d",
                       (unsigned long long)src->size, TACO_HEADER_SIZE);
    if ((rc = tz_header_check(hdr, NULL)) != TACOZ_OK)
        return tz_fail(err, rc, "%s", tacozip_validate_error_string(rc));
    if (level == TACOZIP_VALIDATE_QUICK) return TACOZ_OK;
    tacozip_archive *ar = NULL;
    if ((rc = tz_archive_open(src, 0, &ar, err)) != TACOZ_OK) return rc;
    rc = check_listing(ar, err);
    if (rc == TACOZ_OK && level == TACOZIP_VALIDATE_DEEP) rc = check_deep(ar, hdr, err);
    tacozip_close(ar);
    return rc;
}

int tacozip_validate_source(tacozip_source *src, int level, tacozip_error *err) {
    if (!src) return tz_fail(err, TACOZ_ERR_PARAM, "NULL source");
    int rc = validate(src, level, err);
    return rc ? tz_err_prefix(err, rc, src->display) : TACOZ_OK;
}

int tacozip_validate_ex(const char *zip_path, int level, tacozip_error *err) {
    if (!zip_path) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path");
    tacozip_source *src = NULL;
    int rc = tacozip_source_open(zip_path, NULL, &src, err);
    if (rc) return rc;
    rc = tacozip_validate_source(src, level, err);
    tacozip_source_close(src);
    return rc;
}

int tacozip_validate(const char *zip_path, int level) { return tacozip_validate_ex(zip_path, level, NULL); }
