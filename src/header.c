/* header.c - the 157-byte TACO_HEADER member: encode, decode, read, update. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void tz_header_payload(const taco_meta_array_t *in, unsigned char p[TACO_HEADER_PAYLOAD_SIZE]) {
    memset(p, 0, TACO_HEADER_PAYLOAD_SIZE);
    p[0] = in->count;
    for (int i = 0; i < TACO_HEADER_MAX_ENTRIES; i++) {
        wr64(p + 4 + 16 * i, in->entries[i].offset);
        wr64(p + 12 + 16 * i, in->entries[i].length);
    }
}

void tz_header_build(const taco_meta_array_t *in, uint32_t dos, unsigned char out[TACO_HEADER_SIZE]) {
    unsigned char *payload = out + TACO_PAYLOAD_OFFSET;
    tz_header_payload(in, payload);
    wr32(out, ZIP_LFH_SIG);
    wr16(out + 4, 10);  /* version needed: 1.0, as the original writes */
    wr16(out + 6, 0);   /* flags */
    wr16(out + 8, 0);   /* STORE */
    wr32(out + 10, dos);
    wr32(out + 14, tz_crc32(0, payload, TACO_HEADER_PAYLOAD_SIZE));
    wr32(out + 18, TACO_HEADER_PAYLOAD_SIZE);
    wr32(out + 22, TACO_HEADER_PAYLOAD_SIZE);
    wr16(out + 26, TACO_HEADER_NAME_LEN);
    wr16(out + 28, 0);
    memcpy(out + 30, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN);
}

int tz_header_check(const unsigned char *b, taco_meta_array_t *out) {
    if (rd32(b) != ZIP_LFH_SIG) return TACOZ_INVALID_NOT_ZIP;
    if (rd16(b + 26) != TACO_HEADER_NAME_LEN || memcmp(b + 30, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN) != 0)
        return TACOZ_INVALID_NO_TACO;
    if (rd16(b + 8) != 0 || rd32(b + 18) != TACO_HEADER_PAYLOAD_SIZE ||
        rd32(b + 22) != TACO_HEADER_PAYLOAD_SIZE || rd16(b + 28) != 0 ||
        (rd16(b + 6) & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_DATA_DESCRIPTOR)))
        return TACOZ_INVALID_HEADER_SIZE;
    const unsigned char *p = b + TACO_PAYLOAD_OFFSET;
    if (p[0] > TACO_HEADER_MAX_ENTRIES) return TACOZ_INVALID_META_COUNT;
    if (out) {
        memset(out, 0, sizeof *out);
        out->count = p[0];
        for (int i = 0; i < TACO_HEADER_MAX_ENTRIES; i++) {
            out->entries[i].offset = rd64(p + 4 + 16 * i);
            out->entries[i].length = rd64(p + 12 + 16 * i);
        }
    }
    return TACOZ_OK;
}

int tacozip_parse_header(const unsigned char *buf, size_t len, taco_meta_array_t *out) {
    if (!buf || !out || len < TACO_HEADER_SIZE) return TACOZ_ERR_PARAM;
    return tz_header_check(buf, out) == TACOZ_OK ? TACOZ_OK : TACOZ_ERR_INVALID_HEADER;
}

int tacozip_serialize_header(const taco_meta_array_t *in, unsigned char *buf, size_t len) {
    if (!in || !buf || len < TACO_HEADER_SIZE || in->count > TACO_HEADER_MAX_ENTRIES)
        return TACOZ_ERR_PARAM;
    tz_header_build(in, 0, buf);
    return TACOZ_OK;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off) {
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) return 0; /* short */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 1;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 1;
}

int tacozip_read_header_ex(const char *zip_path, taco_meta_array_t *out, tacozip_error *err) {
    if (!zip_path || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    char shown[512];
    tz_display_name(zip_path, shown, sizeof shown);
    unsigned char b[TACO_HEADER_SIZE];
    if (tz_is_url(zip_path)) { /* exactly one request: bytes 0-156 */
        tz_source *src = NULL;
        int rc = tz_source_remote(zip_path, &src, err);
        if (rc) return rc;
        size_t got = 0;
        rc = tz_source_head(src, sizeof b, b, &got, err); /* fewer bytes if the object is shorter */
        src->destroy(src);
        if (rc) return rc;
        if (got < sizeof b) /* as for a short local file */
            return tz_fail(err, TACOZ_ERR_IO, "%s: %zu bytes, too short for a TACO header", shown, got);
    } else {
        int fd = open(zip_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s", shown);
        int r = pread_full(fd, b, sizeof b, 0);
        int e = errno;
        close(fd);
        if (r < 0) return tz_fail_errno(err, TACOZ_ERR_IO, e, "%s", shown);
        if (r == 0) return tz_fail(err, TACOZ_ERR_IO, "%s: too short for a TACO header", shown);
    }
    int rc = tz_header_check(b, out);
    if (rc)
        return tz_fail(err, TACOZ_ERR_INVALID_HEADER, "%s: not a TACO archive (%s)", shown,
                       tacozip_validate_error_string(rc));
    return TACOZ_OK;
}

int tacozip_read_header(const char *zip_path, taco_meta_array_t *out) {
    return tacozip_read_header_ex(zip_path, out, NULL);
}

int tacozip_update_header_ex(const char *zip_path, const taco_meta_array_t *in, tacozip_error *err) {
    if (!zip_path || !in) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    if (in->count > TACO_HEADER_MAX_ENTRIES)
        return tz_fail(err, TACOZ_ERR_PARAM, "%u entries given, at most %d fit", in->count,
                       TACO_HEADER_MAX_ENTRIES);
    if (tz_is_url(zip_path)) return tz_fail(err, TACOZ_ERR_PARAM, "cannot update a remote archive in place");
    tz_source *src = NULL;
    int rc = tz_source_file(zip_path, &src, err);
    if (rc) return rc;
    unsigned char b[TACO_HEADER_SIZE];
    /* A file too short for a header, or whose first bytes are not one, is
     * "not a TACO archive" (TACOZ_ERR_INVALID_HEADER, as the original). */
    if (src->size < TACO_HEADER_SIZE)
        rc = tz_fail(err, TACOZ_ERR_INVALID_HEADER, "%s: %llu bytes, too short for a TACO header", zip_path,
                     (unsigned long long)src->size);
    else if ((rc = tz_source_read(src, 0, b, sizeof b, err)) == TACOZ_OK && (rc = tz_header_check(b, NULL)) != 0)
        rc = tz_fail(err, TACOZ_ERR_INVALID_HEADER, "%s: not a TACO archive (%s)", zip_path,
                     tacozip_validate_error_string(rc));
    /* Find TACO_HEADER's directory record: it must be the first one. */
    tz_end_info end;
    unsigned char cdh[ZIP_CDH_SIZE + TACO_HEADER_NAME_LEN];
    if (rc == TACOZ_OK) rc = tz_find_end(src, &end, NULL, NULL, NULL, err);
    if (rc == TACOZ_OK) {
        if (end.cd_size < sizeof cdh || end.cd_offset + sizeof cdh > src->size)
            rc = tz_fail(err, TACOZ_INVALID_NO_CD_ENTRY, "%s: central directory too small", zip_path);
        else
            rc = tz_source_read(src, end.cd_offset, cdh, sizeof cdh, err);
    }
    if (rc == TACOZ_OK) {
        if (rd32(cdh) != ZIP_CDH_SIG)
            rc = tz_fail(err, TACOZ_INVALID_CD_ENTRY, "%s: bad central directory signature", zip_path);
        else if (rd16(cdh + 28) != TACO_HEADER_NAME_LEN ||
                 memcmp(cdh + ZIP_CDH_SIZE, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN) != 0 ||
                 rd32(cdh + 42) != 0)
            rc = tz_fail(err, TACOZ_INVALID_REORDERED,
                         "%s: first directory record is not TACO_HEADER at offset 0", zip_path);
    }
    src->destroy(src);
    if (rc) return rc;

    unsigned char payload[TACO_HEADER_PAYLOAD_SIZE], crc[4];
    tz_header_payload(in, payload);
    wr32(crc, tz_crc32(0, payload, sizeof payload));
    int fd = open(zip_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: cannot open for writing", zip_path);
    if (pwrite_full(fd, payload, sizeof payload, TACO_PAYLOAD_OFFSET) < 0 ||
        pwrite_full(fd, crc, 4, TACO_CRC_OFFSET) < 0 ||
        pwrite_full(fd, crc, 4, end.cd_offset + 16) < 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return tz_fail_errno(err, TACOZ_ERR_IO, e, "%s: writing header", zip_path);
    }
    if (close(fd) != 0) return tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: close", zip_path);
    return TACOZ_OK;
}

int tacozip_update_header(const char *zip_path, const taco_meta_array_t *in) {
    return tacozip_update_header_ex(zip_path, in, NULL);
}

uint32_t tz_dos_datetime(int64_t t) {
    if (t < 315532800) t = 315532800; /* 1980-01-01, the DOS epoch */
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) return (1u << 21) | (1u << 16);
    if (tm.tm_year < 80) tm.tm_year = 80;
    if (tm.tm_year > 207) tm.tm_year = 207;
    uint32_t date = (uint32_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    uint32_t tim = (uint32_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    return (date << 16) | tim;
}
