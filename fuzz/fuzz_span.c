/* fuzz_span.c - libFuzzer harness for the span decoder (tacozip_span_next)
 * and the coalesced ranged reads of a source (tacozip_source_read_ranges).
 *
 * Input: byte 0 chooses the flags (bits 1 and 2: TACOZIP_SPAN_NO_CRC,
 * TACOZIP_SPAN_PARTIAL), bytes 1..8 the base offset; the rest is the span.
 * Invariants (abort() when broken):
 *   - every call returns 1, 0 or a known negative code; a failure fills
 *     err with that code and a message and leaves *pos unchanged;
 *   - a decoded member lies inside the span: name and data pointers in the
 *     buffer, data right after its name, offsets = base + positions, *pos
 *     moved exactly past its data, its CRC-32 right unless NO_CRC;
 *   - 0 means *pos == len, or (PARTIAL only) a cut member at *pos;
 *   - with the CRC checked the members are a prefix of those decoded
 *     without the check.
 *   - read_ranges of a memory source of the input gives the input's bytes
 *     for ranges taken from the input, with any gap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tacozip.h"

#define MAX_MEMBERS 4096

static size_t decode(const uint8_t *span, size_t len, uint64_t base, unsigned flags, const unsigned char **datas,
                     size_t cap) {
    size_t pos = 0, k = 0;
    for (;;) {
        tacozip_error err = TACOZIP_ERROR_INIT;
        tacozip_span_member m = TACOZIP_SPAN_MEMBER_INIT;
        size_t before = pos;
        int rc = tacozip_span_next(span, len, base, &pos, flags, &m, &err);
        if (rc == 1) {
            if (pos <= before || pos > len) abort();
            if ((const uint8_t *)m.name < span + before || m.name_len == 0) abort();
            if (m.data < (const unsigned char *)m.name + m.name_len || m.data > span + len) abort();
            if (m.size > (uint64_t)(span + len - m.data)) abort();
            if ((size_t)(m.data - span) + m.size != pos) abort();
            if (m.header_offset != base + before || m.data_offset != base + (uint64_t)(m.data - span)) abort();
            if ((const uint8_t *)m.name != span + before + 30) abort();
            if (memchr(m.name, 0, m.name_len)) abort();
            if (!(flags & TACOZIP_SPAN_NO_CRC) && tacozip_crc32(0, m.data, (size_t)m.size) != m.crc32) abort();
            if (k < cap) datas[k] = m.data;
            k++;
            continue;
        }
        if (pos != before) abort();
        if (rc == 0) {
            if (!(flags & TACOZIP_SPAN_PARTIAL) && pos != len) abort();
            break;
        }
        if (err.code != rc || !err.message[0] || !tacozip_error_name(rc)) abort();
        if (rc != TACOZ_INVALID_LFH && rc != TACOZ_INVALID_FILE_SIZE && rc != TACOZ_ERR_UNSUPPORTED &&
            rc != TACOZ_INVALID_ZIP64 && rc != TACOZ_INVALID_STORED_SIZE && rc != TACOZ_INVALID_NAME &&
            rc != TACOZ_INVALID_CRC_MEMBER)
            abort();
        if (rc == TACOZ_INVALID_CRC_MEMBER && (flags & TACOZIP_SPAN_NO_CRC)) abort();
        if (rc == TACOZ_INVALID_FILE_SIZE && (flags & TACOZIP_SPAN_PARTIAL)) abort();
        break;
    }
    return k;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void ranges(const uint8_t *data, size_t size) {
    if (size == 0) return;
    tacozip_source *src = NULL;
    if (tacozip_source_memory(data, size, &src, NULL) != TACOZ_OK) abort();
    enum { N = 6 };
    tacozip_range r[N];
    unsigned char *bufs[N];
    size_t n = 0;
    for (size_t p = 0; n < N && p + 4 <= size && p < 64; p += 4, n++) {
        uint64_t off = le(data + p, 2) % (size + 1), len = le(data + p + 2, 2) % (size + 1);
        if (len > size - off) len = size - off;
        r[n].offset = off, r[n].length = len;
        r[n].buf = bufs[n] = malloc(len ? (size_t)len : 1);
    }
    uint64_t gap = le(data, 1);
    if (tacozip_source_read_ranges(src, r, n, gap == 255 ? TACOZIP_DEFAULT_GAP : gap, NULL) != TACOZ_OK) abort();
    for (size_t i = 0; i < n; i++) {
        if (r[i].length && memcmp(bufs[i], data + r[i].offset, (size_t)r[i].length) != 0) abort();
        free(bufs[i]);
    }
    tacozip_range past = {size, 1, bufs};
    if (tacozip_source_read_ranges(src, &past, 1, 0, NULL) != TACOZ_ERR_PARAM) abort();
    tacozip_source_close(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ranges(data, size);
    if (size < 9) return 0;
    unsigned flags = data[0] & (TACOZIP_SPAN_NO_CRC | TACOZIP_SPAN_PARTIAL);
    uint64_t base = le(data + 1, 8) >> 1; /* no overflow of base + position */
    const uint8_t *span = data + 9;
    size_t len = size - 9;
    static const unsigned char *a[MAX_MEMBERS], *b[MAX_MEMBERS];
    size_t ka = decode(span, len, base, flags, a, MAX_MEMBERS);
    size_t kb = decode(span, len, base, flags | TACOZIP_SPAN_NO_CRC, b, MAX_MEMBERS);
    if (!(flags & TACOZIP_SPAN_NO_CRC)) {
        if (ka > kb) abort();
        for (size_t i = 0; i < ka && i < MAX_MEMBERS; i++)
            if (a[i] != b[i]) abort();
    } else if (ka != kb) {
        abort();
    }
    return 0;
}
