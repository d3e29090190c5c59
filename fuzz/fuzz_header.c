/* fuzz_header.c - libFuzzer harness for the TACO_HEADER codec.
 *
 * 1. tacozip_parse_header() on arbitrary bytes must not crash; on success
 *    serializing the result and parsing it again must give the same entries,
 *    and the serialized payload must carry the input's count and slots.
 * 2. The input read as a taco_meta_array_t (count byte + 7 slots) must
 *    survive serialize -> parse unchanged whenever count <= 7, and be
 *    refused with TACOZ_ERR_PARAM otherwise.
 * Any broken invariant calls abort() so libFuzzer reports it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tacozip.h"

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int same_meta(const taco_meta_array_t *a, const taco_meta_array_t *b) {
    if (a->count != b->count) return 0;
    for (int i = 0; i < TACO_HEADER_MAX_ENTRIES; i++)
        if (a->entries[i].offset != b->entries[i].offset || a->entries[i].length != b->entries[i].length) return 0;
    return 1;
}

/* serialize "m", check the bytes, parse them back and compare. */
static void round_trip(const taco_meta_array_t *m) {
    unsigned char buf[TACO_HEADER_SIZE + 8];
    taco_meta_array_t back;
    memset(buf, 0xA5, sizeof buf);
    if (tacozip_serialize_header(m, buf, TACO_HEADER_SIZE) != TACOZ_OK) abort();
    if (buf[TACO_HEADER_SIZE] != 0xA5) abort(); /* wrote past the 157 bytes */
    const unsigned char *payload = buf + 30 + TACO_HEADER_NAME_LEN;
    if (le32(buf + 14) != tacozip_crc32(0, payload, TACO_HEADER_PAYLOAD_SIZE)) abort();
    if (payload[0] != m->count || payload[1] || payload[2] || payload[3]) abort();
    /* parse with exactly 157 bytes and with trailing bytes */
    if (tacozip_parse_header(buf, TACO_HEADER_SIZE, &back) != TACOZ_OK) abort();
    if (!same_meta(m, &back)) abort();
    if (tacozip_parse_header(buf, sizeof buf, &back) != TACOZ_OK) abort();
    if (!same_meta(m, &back)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    taco_meta_array_t m;
    memset(&m, 0x5A, sizeof m);
    int rc = tacozip_parse_header(data, size, &m);
    if (size < TACO_HEADER_SIZE) {
        if (rc != TACOZ_ERR_PARAM) abort();
    } else if (rc == TACOZ_OK) {
        if (m.count > TACO_HEADER_MAX_ENTRIES) abort();
        /* The decoded values are the input's payload bytes. */
        const uint8_t *p = data + 30 + TACO_HEADER_NAME_LEN;
        if (m.count != p[0]) abort();
        for (int i = 0; i < TACO_HEADER_MAX_ENTRIES; i++)
            if (m.entries[i].offset != le64(p + 4 + 16 * i) || m.entries[i].length != le64(p + 12 + 16 * i))
                abort();
        round_trip(&m);
        /* The payload bytes of the re-serialized header equal the input's
         * (reserved bytes aside). */
        unsigned char buf[TACO_HEADER_SIZE];
        if (tacozip_serialize_header(&m, buf, sizeof buf) != TACOZ_OK) abort();
        if (memcmp(buf + 45, data + 45, TACO_HEADER_SIZE - 45) != 0) abort();
        if (memcmp(buf + 26, data + 26, 2) != 0 || memcmp(buf + 30, data + 30, 11) != 0) abort();
    } else if (rc != TACOZ_ERR_INVALID_HEADER) {
        abort();
    }

    /* The input as a struct: count byte then 7 (offset, length) pairs. */
    if (size >= 1) {
        taco_meta_array_t in;
        memset(&in, 0, sizeof in);
        in.count = data[0];
        size_t pos = 1;
        for (int i = 0; i < TACO_HEADER_MAX_ENTRIES && pos + 16 <= size; i++, pos += 16) {
            in.entries[i].offset = le64(data + pos);
            in.entries[i].length = le64(data + pos + 8);
        }
        unsigned char buf[TACO_HEADER_SIZE];
        if (in.count > TACO_HEADER_MAX_ENTRIES) {
            if (tacozip_serialize_header(&in, buf, sizeof buf) != TACOZ_ERR_PARAM) abort();
        } else {
            round_trip(&in);
        }
    }
    return 0;
}
