/* fuzz_directory.c - libFuzzer harness for the ZIP reader.
 *
 * The input is opened as an in-memory archive (with and without
 * TACOZIP_OPEN_VERIFY_LOCAL, TACOZIP_OPEN_INDEX_FIRST and
 * TACOZIP_OPEN_NO_CRC, so the embedded
 * TACO_INDEX decoder is fuzzed too).  When it opens, every public reader call is
 * exercised: member_at, find (each name must map back to its own index),
 * span over all members, read_member + verify_member on each, read_at and
 * archive_header.  Invariants the reader promises are checked and a broken
 * one calls abort(): members lie inside the archive and before the
 * directory, reads never return more than asked, error codes are negative.
 * The input is also opened through the file source (a memfd) and must
 * give the same result as the memory source. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tacozip.h"

static void walk(tacozip_archive *ar, size_t size) {
    size_t n = tacozip_count(ar);
    uint64_t cd_off = 0, cd_size = 0;
    tacozip_directory_range(ar, &cd_off, &cd_size);
    if (tacozip_archive_size(ar) != size) abort();
    if (cd_off > size || cd_size > size - cd_off) abort();
    int fmt = tacozip_archive_format(ar);
    if (fmt != TACOZIP_FORMAT_ZIP32 && fmt != TACOZIP_FORMAT_ZIP64) abort();

    taco_meta_array_t meta;
    int rc = tacozip_archive_header(ar, &meta);
    if (rc == TACOZ_OK) {
        if (meta.count > TACO_HEADER_MAX_ENTRIES) abort();
    } else if (rc != TACOZ_ERR_INVALID_HEADER) {
        abort();
    }

    size_t *all = malloc((n ? n : 1) * sizeof *all);
    if (!all) return;
    unsigned char buf[512];
    for (size_t i = 0; i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        all[i] = i;
        if (tacozip_member_at(ar, i, &m) != TACOZ_OK) abort();
        if (!m.name || m.name_len == 0 || strlen(m.name) != m.name_len) abort();
        /* data lies after the local header and before the directory */
        if (m.data_offset < m.header_offset + 30 + m.name_len) abort();
        if (m.data_offset > cd_off || m.size > cd_off - m.data_offset) abort();
        size_t idx = (size_t)-1;
        if (tacozip_find(ar, m.name, m.name_len, &idx) != TACOZ_OK || idx != i) abort();
        if (tacozip_find(ar, m.name, (size_t)-1, &idx) != TACOZ_OK || idx != i) abort();
        size_t got = 0;
        rc = tacozip_read_member(ar, i, 0, buf, sizeof buf, &got);
        if (rc > 0) abort();
        if (rc == TACOZ_OK) {
            if (got > sizeof buf || got > m.size) abort();
            if (got != (m.size < sizeof buf ? m.size : sizeof buf)) abort();
            /* the same bytes through read_at */
            unsigned char raw[512];
            if (tacozip_read_at(ar, m.data_offset, raw, got) != TACOZ_OK) abort();
            if (memcmp(raw, buf, got) != 0) abort();
            /* a read from the middle and one past the end */
            if (m.size > 1) {
                rc = tacozip_read_member(ar, i, m.size - 1, buf, sizeof buf, &got);
                if (rc != TACOZ_OK || got != 1) abort();
            }
            rc = tacozip_read_member(ar, i, m.size, buf, sizeof buf, &got);
            if (rc != TACOZ_OK || got != 0) abort();
        }
        rc = tacozip_verify_member(ar, i);
        if (rc > 0) abort();
        uint64_t off = 0, len = 0;
        if (tacozip_span(ar, &i, 1, 0, &off, &len) != TACOZ_OK) abort();
        if (off != m.header_offset || off + len != m.data_offset + m.size) abort();
    }
    if (tacozip_member_at(ar, n, &(tacozip_member){0}) != TACOZ_ERR_PARAM) abort();
    if (n) {
        uint64_t off = 0, len = 0;
        if (tacozip_span(ar, all, n, 0, &off, &len) != TACOZ_OK) abort();
        if (off > cd_off || len > cd_off - off) abort();
        if (tacozip_span(ar, all, n, TACOZIP_SPAN_DATA_ONLY, &off, &len) != TACOZ_OK) abort();
        if (off > cd_off || len > cd_off - off) abort();
    }
    size_t dummy;
    if (tacozip_find(ar, "\x01no such member\x02", (size_t)-1, &dummy) == TACOZ_OK &&
        dummy >= n)
        abort();
    if (tacozip_read_at(ar, size, buf, 1) != TACOZ_ERR_PARAM) abort();
    free(all);
}

static int memfd = -1;

/* Open the same bytes through the file source. */
static int open_as_file(const uint8_t *data, size_t size, unsigned flags) {
    if (memfd < 0) memfd = memfd_create("fuzz_directory", MFD_CLOEXEC);
    if (memfd < 0) return 1;
    if (ftruncate(memfd, 0) != 0) return 1;
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(memfd, data + done, size - done, (off_t)done);
        if (k <= 0) return 1;
        done += (size_t)k;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    tacozip_archive *ar = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_open_ex(path, flags, &ar, &err);
    if (rc == TACOZ_OK) {
        walk(ar, size);
        tacozip_close(ar);
    } else if (ar != NULL || err.code != rc) {
        abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t empty[1];
    if (!data) data = empty;
    /* with and without the CRC-32 check of whole-member reads (without it,
     * the read paths run on inputs whose CRCs the fuzzer broke) */
    static const unsigned flag_sets[] = {0, TACOZIP_OPEN_VERIFY_LOCAL | TACOZIP_OPEN_NO_CRC,
                                         TACOZIP_OPEN_INDEX_FIRST | TACOZIP_OPEN_NO_CRC,
                                         TACOZIP_OPEN_INDEX_FIRST | TACOZIP_OPEN_VERIFY_LOCAL};
    for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
        unsigned flags = flag_sets[f];
        tacozip_archive *ar = (tacozip_archive *)1;
        tacozip_error err = TACOZIP_ERROR_INIT;
        memset(&err, 0, sizeof err);
        int rc = tacozip_open_memory(data, size, flags, &ar, &err);
        if (rc > 0) abort();
        if (rc == TACOZ_OK) {
            if (!ar) abort();
            walk(ar, size);
            tacozip_close(ar);
        } else {
            if (ar != NULL || err.code != rc || !memchr(err.message, 0, sizeof err.message)) abort();
        }
        /* The file source must agree with the memory source. */
        int frc = open_as_file(data, size, flags);
        if (frc != 1 && frc != rc) abort();
    }
    return 0;
}
