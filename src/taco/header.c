/* header.c - the 157-byte TACO_HEADER member: encode, decode, and read it
 * from a path or a source with one 157-byte read. */
#include <string.h>

#include "taco.h"

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
    tz_lfh h = {.dos_datetime = dos,
                .crc32 = tz_crc32(0, payload, TACO_HEADER_PAYLOAD_SIZE),
                .size = TACO_HEADER_PAYLOAD_SIZE,
                .name_len = TACO_HEADER_NAME_LEN};
    tz_lfh_encode(out, &h);
    memcpy(out + ZIP_LFH_SIZE, TACO_HEADER_NAME, TACO_HEADER_NAME_LEN);
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

/* Decode the first "got" bytes of an archive as its TACO header. */
static int decode_head(const unsigned char *b, size_t got, taco_meta_array_t *out, tacozip_error *err) {
    if (got < TACO_HEADER_SIZE) return tz_fail(err, TACOZ_ERR_IO, "%zu bytes, too short for a TACO header", got);
    int rc = tz_header_check(b, out);
    if (rc) return tz_fail(err, TACOZ_ERR_INVALID_HEADER, "not a TACO archive (%s)", tacozip_validate_error_string(rc));
    return TACOZ_OK;
}

int tacozip_read_header_source(tacozip_source *src, taco_meta_array_t *out, tacozip_error *err) {
    if (!src || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    unsigned char b[TACO_HEADER_SIZE];
    size_t got = 0;
    /* one read, fewer bytes if the object is shorter (one request: bytes=0-156) */
    int rc = tz_source_head(src, sizeof b, b, &got, err);
    if (rc == TACOZ_OK) rc = decode_head(b, got, out, err);
    return rc ? tz_err_prefix(err, rc, src->display) : TACOZ_OK;
}

/* 1 if "b" is a whole header whose payload matches its local CRC: an
 * update writes that CRC last, so a header read during an update, or
 * after one was killed, is intact only once all of the update is written;
 * otherwise the old header is taken from the update's journal. */
static int header_intact(const void *b, size_t n) {
    const unsigned char *h = b;
    return n == TACO_HEADER_SIZE && tz_header_check(h, NULL) == TACOZ_OK &&
           rd32(h + TACO_CRC_OFFSET) == tz_crc32(0, h + TACO_PAYLOAD_OFFSET, TACO_HEADER_PAYLOAD_SIZE);
}

int tacozip_read_header_ex(const char *zip_path, taco_meta_array_t *out, tacozip_error *err) {
    if (!zip_path || !out) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    if (tacozip_is_url(zip_path)) {
        tacozip_source *src = NULL;
        int rc = tacozip_source_open(zip_path, NULL, &src, err);
        if (rc) return rc;
        rc = tacozip_read_header_source(src, out, err);
        tacozip_source_close(src);
        return rc;
    }
    /* a local file: one read, no source object (header reads are often
     * made by the thousand) */
    unsigned char b[TACO_HEADER_SIZE];
    size_t got = 0;
    int rc = tz_file_head(zip_path, b, sizeof b, &got, header_intact, err);
    if (rc == TACOZ_OK) rc = decode_head(b, got, out, err);
    return rc ? tz_err_prefix(err, rc, zip_path) : TACOZ_OK;
}

int tacozip_read_header(const char *zip_path, taco_meta_array_t *out) {
    return tacozip_read_header_ex(zip_path, out, NULL);
}
