/* update.c - replacing the TACO_HEADER payload of a local archive in place:
 * three small writes (payload, local CRC, directory CRC) and an fsync,
 * under a rollback journal (common/journal.c) holding the old bytes. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../taco/taco.h"

/* Check that "src" is a TACO archive whose directory lists TACO_HEADER
 * first at offset 0; sets the offset of that directory record. */
static int locate_header_record(tacozip_source *src, uint64_t *cd_record, tacozip_error *err) {
    unsigned char b[TACO_HEADER_SIZE];
    /* A file too short for a header, or whose first bytes are not one, is
     * "not a TACO archive" (TACOZ_ERR_INVALID_HEADER, as the original). */
    if (src->size < TACO_HEADER_SIZE)
        return tz_fail(err, TACOZ_ERR_INVALID_HEADER, "%llu bytes, too short for a TACO header",
                       (unsigned long long)src->size);
    int rc = tz_source_read(src, 0, b, sizeof b, err);
    if (rc) return rc;
    if ((rc = tz_header_check(b, NULL)) != TACOZ_OK)
        return tz_fail(err, TACOZ_ERR_INVALID_HEADER, "not a TACO archive (%s)", tacozip_validate_error_string(rc));
    tz_end_info end;
    if ((rc = tz_find_end(src, &end, NULL, err))) return rc;
    unsigned char cdh[ZIP_CDH_SIZE + TACO_HEADER_NAME_LEN];
    if (end.cd_size < sizeof cdh || end.cd_offset + sizeof cdh > src->size)
        return tz_fail(err, TACOZ_INVALID_NO_CD_ENTRY, "central directory too small");
    if ((rc = tz_source_read(src, end.cd_offset, cdh, sizeof cdh, err))) return rc;
    if (rd32(cdh) != ZIP_CDH_SIG) return tz_fail(err, TACOZ_INVALID_CD_ENTRY, "bad central directory signature");
    if (rd16(cdh + 28) != TACO_HEADER_NAME_LEN || memcmp(cdh + ZIP_CDH_SIZE, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN) != 0 ||
        rd32(cdh + 42) != 0)
        return tz_fail(err, TACOZ_INVALID_REORDERED, "first directory record is not TACO_HEADER at offset 0");
    *cd_record = end.cd_offset;
    return TACOZ_OK;
}

static int update(const char *zip_path, const taco_meta_array_t *in, tacozip_error *err) {
    if (in->count > TACO_HEADER_MAX_ENTRIES)
        return tz_fail(err, TACOZ_ERR_PARAM, "%u entries given, at most %d fit", in->count, TACO_HEADER_MAX_ENTRIES);
    if (tacozip_is_url(zip_path)) return tz_fail(err, TACOZ_ERR_PARAM, "cannot update a remote archive in place");
    /* the writers' lock first, held until the new header is written: the
     * record found below is still where it is when it is written */
    int fd, what;
    int rc = tz_open_regular(zip_path, O_RDWR, &fd, err);
    if (rc) return rc;
    tacozip_source *src = NULL;
    uint64_t cd_record = 0;
    if ((rc = tz_lock_writer(fd, err)) || (rc = tz_journal_recover(zip_path, fd, 1, &what, err)) ||
        (rc = tz_source_file(zip_path, &src, err)) || (rc = locate_header_record(src, &cd_record, err)))
        goto cleanup;

    /* the old bytes of the three places, into the journal first */
    unsigned char old_hdr[TACO_HEADER_SIZE], old_crc[4];
    if ((rc = tz_source_read(src, 0, old_hdr, sizeof old_hdr, err)) ||
        (rc = tz_source_read(src, cd_record + TACO_CDH_CRC_OFFSET, old_crc, 4, err)))
        goto cleanup;
    const tz_jregion regions[2] = {{0, sizeof old_hdr, old_hdr}, {cd_record + TACO_CDH_CRC_OFFSET, 4, old_crc}};
    /* what tells this archive: the start of the first member (unchanged) */
    uint64_t fp_len = cd_record > TACO_HEADER_SIZE ? cd_record - TACO_HEADER_SIZE : 0;
    if ((rc = tz_journal_write(zip_path, fd, TZ_JOURNAL_OP_UPDATE, src->size, regions, 2, TACO_HEADER_SIZE, fp_len, 1,
                               err)))
        goto cleanup;

    unsigned char payload[TACO_HEADER_PAYLOAD_SIZE], crc[4];
    tz_header_payload(in, payload);
    wr32(crc, tz_crc32(0, payload, sizeof payload));
    /* the local header's CRC last: until it is written the header read
     * alone (tacozip_read_header) is torn, and its reader takes the old
     * one from the journal */
    if (tz_pwrite_full(fd, payload, sizeof payload, TACO_PAYLOAD_OFFSET) < 0 ||
        tz_pwrite_full(fd, crc, 4, cd_record + TACO_CDH_CRC_OFFSET) < 0 ||
        tz_pwrite_full(fd, crc, 4, TACO_CRC_OFFSET) < 0 || fsync(fd) != 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "writing the header");
        tz_journal_rollback_after(zip_path, fd, regions, 2, src->size, 1, err);
        goto cleanup;
    }
    rc = tz_journal_remove(zip_path, 1, err);
cleanup:
    tz_source_unref(src);
    if (close(fd) != 0 && rc == TACOZ_OK) rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "close");
    return rc;
}

int tacozip_update_header_ex(const char *zip_path, const taco_meta_array_t *in, tacozip_error *err) {
    if (!zip_path || !in) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    int rc = update(zip_path, in, err);
    if (rc) {
        char shown[512];
        tz_display_name(zip_path, shown, sizeof shown);
        return tz_err_prefix(err, rc, shown);
    }
    return TACOZ_OK;
}

int tacozip_update_header(const char *zip_path, const taco_meta_array_t *in) {
    return tacozip_update_header_ex(zip_path, in, NULL);
}
