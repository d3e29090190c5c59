/* end.c - finding and decoding the end records (ZIP32 and ZIP64), with a
 * bounds check on every field. */
#include <stdlib.h>
#include <string.h>

#include "zip.h"

/* The largest tail we read at once: end record + longest comment + ZIP64
 * locator and end record, rounded up.  For archives we write (no comment)
 * the central directory of a few hundred members is in it too. */
#define TAIL_MAX (64 * 1024 + 1024)

int tz_find_end(tacozip_source *src, tz_end_info *end, tz_tail *tail_out, tacozip_error *err) {
    uint64_t size = src->size;
    memset(end, 0, sizeof *end);
    if (size != TZ_SIZE_UNKNOWN && size < ZIP_EOCD_SIZE)
        return tz_fail(err, TACOZ_INVALID_NO_EOCD, "file of %llu bytes is too small to be a ZIP archive",
                       (unsigned long long)size);
    size_t tail_len = 0;
    uint64_t tail_off = 0;
    unsigned char *tail = malloc(TAIL_MAX);
    if (!tail) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    /* one read (one request for a remote source, which learns the size) */
    int rc = tz_source_tail(src, TAIL_MAX, tail, &tail_len, &tail_off, err);
    if (rc) goto cleanup;
    size = src->size;
    if (tail_len < ZIP_EOCD_SIZE) {
        rc = tz_fail(err, TACOZ_INVALID_NO_EOCD, "file of %llu bytes is too small to be a ZIP archive",
                       (unsigned long long)size);
        goto cleanup;
    }
    /* Scan backwards for the end record whose comment ends exactly at the
     * end of the file; failing that (trailing bytes after the archive), the
     * last one whose comment fits.  A fake record inside a comment cannot
     * win over the real one, whose comment length reaches the end. */
    size_t pos = tail_len - ZIP_EOCD_SIZE, fit = SIZE_MAX;
    int found = 0;
    for (;;) {
        if (tail[pos] == 'P' && rd32(tail + pos) == ZIP_EOCD_SIG) {
            size_t clen = rd16(tail + pos + 20);
            if (pos + ZIP_EOCD_SIZE + clen == tail_len) {
                found = 1;
                break;
            }
            if (fit == SIZE_MAX && pos + ZIP_EOCD_SIZE + clen < tail_len) fit = pos;
        }
        if (pos == 0) break;
        pos--;
    }
    if (!found && fit != SIZE_MAX) {
        pos = fit;
        found = 1;
    }
    if (!found) {
        rc = tz_fail(err, TACOZ_INVALID_NO_EOCD, "no end of central directory record in the last %zu bytes",
                       tail_len);
        goto cleanup;
    }
    const unsigned char *e = tail + pos;
    end->eocd_offset = tail_off + pos;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint64_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);

    /* ZIP64 locator right before the end record? */
    if (end->eocd_offset >= ZIP64_LOC_SIZE) {
        unsigned char loc[ZIP64_LOC_SIZE];
        uint64_t loc_off = end->eocd_offset - ZIP64_LOC_SIZE;
        if (loc_off >= tail_off)
            memcpy(loc, tail + (loc_off - tail_off), sizeof loc);
        else if ((rc = tz_source_read(src, loc_off, loc, sizeof loc, err)) != 0)
                goto cleanup;
        if (rd32(loc) == ZIP64_LOC_SIG) {
            uint64_t z_off = rd64(loc + 8);
            if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1) {
                rc = tz_fail(err, TACOZ_ERR_SPLIT, "multi-disk (split) ZIP64 archive");
                goto cleanup;
            }
            if (z_off > loc_off || loc_off - z_off < ZIP64_EOCD_SIZE) {
                rc = tz_fail(err, TACOZ_INVALID_ZIP64, "ZIP64 end record offset %llu out of bounds",
                               (unsigned long long)z_off);
                goto cleanup;
            }
            unsigned char z[ZIP64_EOCD_SIZE];
            if (z_off >= tail_off)
                memcpy(z, tail + (z_off - tail_off), sizeof z);
            else if ((rc = tz_source_read(src, z_off, z, sizeof z, err)) != 0)
                goto cleanup;
            if (rd32(z) != ZIP64_EOCD_SIG || rd64(z + 4) < ZIP64_EOCD_SIZE - 12) {
                rc = tz_fail(err, TACOZ_INVALID_ZIP64, "bad ZIP64 end record at offset %llu",
                               (unsigned long long)z_off);
                goto cleanup;
            }
            disk = (uint16_t)(rd32(z + 16) ? 1 : 0);
            cd_disk = (uint16_t)(rd32(z + 20) ? 1 : 0);
            n_disk = rd64(z + 24);
            n_total = rd64(z + 32);
            cd_size = rd64(z + 40);
            cd_off = rd64(z + 48);
            end->zip64 = 1;
            end->zip64_offset = z_off;
        }
    }
    if (!end->zip64 && (cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu) &&
        (cd_off > end->eocd_offset || cd_size > end->eocd_offset - cd_off)) {
        rc = tz_fail(err, TACOZ_INVALID_ZIP64,
                       "end record defers to a ZIP64 end record (0xFFFFFFFF) but no valid ZIP64 locator precedes it");
        goto cleanup;
    }
    if (disk != 0 || cd_disk != 0) {
        rc = tz_fail(err, TACOZ_ERR_SPLIT, "multi-disk (split) archive");
        goto cleanup;
    }
    if (n_disk != n_total) {
        rc = tz_fail(err, TACOZ_INVALID_COUNT, "end record counts disagree (%llu on disk, %llu total)",
                       (unsigned long long)n_disk, (unsigned long long)n_total);
        goto cleanup;
    }
    uint64_t cd_limit = end->zip64 ? end->zip64_offset : end->eocd_offset;
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off) {
        rc = tz_fail(err, TACOZ_INVALID_CD_OFFSET,
                       "central directory (%llu bytes at offset %llu) lies outside the %llu bytes before the end record",
                       (unsigned long long)cd_size, (unsigned long long)cd_off, (unsigned long long)cd_limit);
        goto cleanup;
    }
    if (n_total > cd_size / ZIP_CDH_SIZE) {
        rc = tz_fail(err, TACOZ_INVALID_COUNT,
                       "end record claims %llu entries but the directory has only %llu bytes",
                       (unsigned long long)n_total, (unsigned long long)cd_size);
        goto cleanup;
    }
    end->cd_offset = cd_off;
    end->cd_size = cd_size;
    end->entries = n_total;
    end->comment_len = rd16(e + 20);
    if (tail_out) {
        tail_out->buf = tail;
        tail_out->offset = tail_off;
        tail_out->len = tail_len;
        tail = NULL;
    }
cleanup:
    free(tail);
    return rc;
}

