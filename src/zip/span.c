/* span.c - decoding a fetched span: bytes of an archive that start at a
 * member's local header and hold whole members back to back (what a TACO
 * header entry written by tacozip_span() points at), turned into members
 * without the central directory.  Reads the local headers only: name,
 * sizes (ZIP64 extra included), CRC-32; any other extra field (the 0xD935
 * alignment padding among them) is skipped.  Zero-copy: the member's name
 * and data point into the caller's buffer. */
#include <string.h>

#include "zip.h"

static const unsigned char lfh_sig[4] = {0x50, 0x4b, 0x03, 0x04};

/* At most this much of a name goes into a message. */
#define NAME_SHOWN 200
#define SHOWN(n) ((int)((n) < NAME_SHOWN ? (n) : NAME_SHOWN))

/* The sizes of a ZIP64 member from its local extra fields "x" (xlen
 * bytes): the local header must carry both sizes (APPNOTE 4.5.3); one
 * that carries only the sizes marked 0xFFFFFFFF, in order, is taken too. */
static int zip64_sizes(const unsigned char *x, size_t xlen, uint64_t *usize, uint64_t *csize, int u_marked,
                       int c_marked) {
    for (size_t p = 0; p + 4 <= xlen;) {
        uint16_t id = rd16(x + p), n = rd16(x + p + 2);
        if (id == ZIP64_EXTRA_ID) {
            const unsigned char *d = x + p + 4;
            if (n >= 16) {
                if (u_marked) *usize = rd64(d);
                if (c_marked) *csize = rd64(d + 8);
                return 0;
            }
            size_t need = 8 * (size_t)(u_marked + c_marked);
            if (n < need) return -1;
            if (u_marked) *usize = rd64(d), d += 8;
            if (c_marked) *csize = rd64(d);
            return 0;
        }
        p += 4 + (size_t)n;
    }
    return -1;
}

/* Are the extra fields well formed (each header and its data inside)? */
static int extras_ok(const unsigned char *x, size_t xlen) {
    size_t p = 0;
    while (p < xlen) {
        if (xlen - p < 4) return 0;
        size_t n = rd16(x + p + 2);
        if (n > xlen - p - 4) return 0;
        p += 4 + n;
    }
    return 1;
}

int tacozip_span_next(const void *span, size_t len, uint64_t base, size_t *pos, unsigned flags,
                      tacozip_span_member *out, tacozip_error *err) {
    if (!pos || !out || (!span && len)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL argument");
    int rc = tz_check_struct_size(out->struct_size, sizeof(tacozip_span_member), "tacozip_span_member", err);
    if (rc) return rc;
    if (flags & ~(unsigned)(TACOZIP_SPAN_NO_CRC | TACOZIP_SPAN_PARTIAL))
        return tz_fail(err, TACOZ_ERR_PARAM, "unknown flags 0x%x", flags);
    if (*pos > len) return tz_fail(err, TACOZ_ERR_PARAM, "position %zu is past the end of the span (%zu bytes)", *pos, len);
    const unsigned char *b = span;
    size_t at = *pos, left = len - at;
    unsigned long long where = (unsigned long long)(base + at); /* archive offset, for messages */
    int partial = (flags & TACOZIP_SPAN_PARTIAL) != 0;
    if (left == 0) return 0;
    const unsigned char *h = b + at;

    /* the signature: anything else means the span does not start at a member */
    if (left < 4 ? memcmp(h, lfh_sig, left) != 0 : memcmp(h, lfh_sig, 4) != 0) {
        unsigned char s[4] = {0, 0, 0, 0};
        memcpy(s, h, left < 4 ? left : 4);
        uint32_t sig = rd32(s);
        const char *why = sig == ZIP_CDH_SIG   ? " (a central directory record: the span runs past the last member)"
                          : sig == ZIP_EOCD_SIG ? " (the end of central directory record)"
                          : at == 0            ? " (the span does not start at a member: give the offset and length "
                                                 "of a header entry, local headers included)"
                                               : " (the bytes after the previous member are not a member)";
        return tz_fail(err, TACOZ_INVALID_LFH,
                       "archive offset %llu (byte %zu of the span): no local file header signature "
                       "(%02x %02x %02x %02x, expected 50 4b 03 04)%s",
                       where, at, s[0], s[1], s[2], s[3], why);
    }
    if (left < ZIP_LFH_SIZE) {
        if (partial) return 0;
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE,
                       "archive offset %llu: the span ends inside a local file header (%zu of its 30 bytes)", where,
                       left);
    }
    uint16_t gflags = rd16(h + 6), method = rd16(h + 8);
    uint32_t crc = rd32(h + LFH_CRC);
    uint64_t csize = rd32(h + 18), usize = rd32(h + 22);
    size_t name_len = rd16(h + 26), xlen = rd16(h + 28);
    if (left - ZIP_LFH_SIZE < name_len + xlen) {
        if (partial) return 0;
        if (left - ZIP_LFH_SIZE >= name_len)
            return tz_fail(err, TACOZ_INVALID_FILE_SIZE,
                           "member \"%.*s\" (archive offset %llu): the span ends inside its local header "
                           "(%zu of %zu bytes)",
                           SHOWN(name_len), (const char *)h + ZIP_LFH_SIZE, where, left,
                           (size_t)ZIP_LFH_SIZE + name_len + xlen);
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE,
                       "archive offset %llu: the span ends inside a local file header (%zu of %zu bytes)", where,
                       left, (size_t)ZIP_LFH_SIZE + name_len + xlen);
    }
    const char *name = (const char *)h + ZIP_LFH_SIZE;
    const unsigned char *x = h + ZIP_LFH_SIZE + name_len;
    if (name_len == 0)
        return tz_fail(err, TACOZ_INVALID_NAME, "archive offset %llu: a local file header with an empty name", where);
    if (memchr(name, 0, name_len))
        return tz_fail(err, TACOZ_INVALID_NAME, "member \"%.*s\" (archive offset %llu): the name holds a NUL byte",
                       SHOWN(strlen(name)), name, where);
    if (gflags & ZIP_FLAG_ENCRYPTED)
        return tz_fail(err, TACOZ_ERR_UNSUPPORTED, "member \"%.*s\" (archive offset %llu) is encrypted",
                       SHOWN(name_len), name, where);
    if (method != 0)
        return tz_fail(err, TACOZ_ERR_UNSUPPORTED,
                       "member \"%.*s\" (archive offset %llu) is compressed (method %u): only STORED members can "
                       "be decoded",
                       SHOWN(name_len), name, where, method);
    if (gflags & ZIP_FLAG_DATA_DESCRIPTOR)
        return tz_fail(err, TACOZ_ERR_UNSUPPORTED,
                       "member \"%.*s\" (archive offset %llu) has a data descriptor (flag bit 3: its CRC-32 and "
                       "sizes follow the data), so it cannot be decoded without the central directory",
                       SHOWN(name_len), name, where);
    if (!extras_ok(x, xlen))
        return tz_fail(err, TACOZ_INVALID_LFH, "member \"%.*s\" (archive offset %llu): malformed extra field",
                       SHOWN(name_len), name, where);
    int u_marked = usize == ZIP32_MAX, c_marked = csize == ZIP32_MAX;
    if ((u_marked || c_marked) && zip64_sizes(x, xlen, &usize, &csize, u_marked, c_marked))
        return tz_fail(err, TACOZ_INVALID_ZIP64,
                       "member \"%.*s\" (archive offset %llu): sizes say ZIP64 (0xFFFFFFFF) but the local header "
                       "has no ZIP64 extra field holding them",
                       SHOWN(name_len), name, where);
    if (csize != usize)
        return tz_fail(err, TACOZ_INVALID_STORED_SIZE,
                       "member \"%.*s\" (archive offset %llu): STORED, but its sizes differ (%llu compressed, %llu)",
                       SHOWN(name_len), name, where, (unsigned long long)csize, (unsigned long long)usize);
    size_t head = ZIP_LFH_SIZE + name_len + xlen;
    size_t room = left - head;
    if (csize > room) {
        if (partial) return 0;
        return tz_fail(err, TACOZ_INVALID_FILE_SIZE,
                       "member \"%.*s\" (archive offset %llu): the span ends inside its data (%zu of %llu bytes)",
                       SHOWN(name_len), name, where, room, (unsigned long long)csize);
    }
    const unsigned char *data = h + head;
    if (!(flags & TACOZIP_SPAN_NO_CRC)) {
        uint32_t got = tz_crc32(0, data, (size_t)csize);
        if (got != crc)
            return tz_fail(err, TACOZ_INVALID_CRC_MEMBER,
                           "member \"%.*s\" (archive offset %llu): CRC-32 of the data is %08x, its local header "
                           "says %08x",
                           SHOWN(name_len), name, where, got, crc);
    }
    out->name = name;
    out->name_len = name_len;
    out->data = data;
    out->size = csize;
    out->header_offset = base + at;
    out->data_offset = base + at + head;
    out->crc32 = crc;
    out->flags = gflags;
    out->dos_datetime = rd32(h + 10);
    *pos = at + head + (size_t)csize;
    return 1;
}
