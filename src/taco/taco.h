/* taco.h - the TACO layer (above ZIP): the TACO_HEADER codec and reading it
 * (header.c), and the embedded member index TACO_INDEX (index.c). */
#ifndef TACOZIP_TACO_H
#define TACOZIP_TACO_H

#include "../zip/zip.h"

#define TACO_PAYLOAD_OFFSET 41 /* 30 + 11 */
#define TACO_CRC_OFFSET LFH_CRC
#define TACO_CDH_CRC_OFFSET 16 /* the CRC field of a directory record */

/* ---- header (header.c) ------------------------------------------------- */

/* Fill the 116-byte payload. */
void tz_header_payload(const taco_meta_array_t *in, unsigned char payload[TACO_HEADER_PAYLOAD_SIZE]);
/* Build the 157-byte member with a given DOS date/time. */
void tz_header_build(const taco_meta_array_t *in, uint32_t dos_datetime, unsigned char out[TACO_HEADER_SIZE]);
/* Decode a 157-byte member: TACOZ_OK or a TACOZ_INVALID_* code (NOT_ZIP,
 * NO_TACO, HEADER_SIZE, META_COUNT).  "out" may be NULL. */
int tz_header_check(const unsigned char *buf, taco_meta_array_t *out);

/* ---- the embedded member index (index.c) -------------------------------- */

#define TACO_INDEX_NAME "TACO_INDEX"
#define TACO_INDEX_NAME_LEN 10
#define TACO_INDEX_OFFSET 157        /* its local header, right after TACO_HEADER */
#define TACO_INDEX_PROBE (16 * 1024) /* the first read of an index-first open */

/* Encode the index of n members; the CRC column (4*n bytes at
 * *crc_offset) is left zero for the writer to fill. */
int tz_index_build(const char *const *names, const size_t *name_lens, const uint64_t *sizes,
                   const uint32_t *extra_lens, size_t n, unsigned char **out, size_t *out_len, size_t *crc_offset,
                   tacozip_error *err);

/* The member table of an archive from its first bytes "head" (got bytes,
 * at least 157 when called) when it has a TACO_INDEX: returns TACOZ_OK with
 * "d" filled (the directory's offset and count as the writer puts them),
 * 1 if the archive has no index (read the end records instead), or an
 * error.  Reads the rest of a large index from "src". */
int tz_index_open(tacozip_source *src, const unsigned char *head, size_t got, tz_dir *d, tacozip_error *err);

/* Check the archive's TACO_INDEX (if any) against its directory (validate
 * DEEP). */
int tz_index_check(tz_dir *d, tacozip_source *src, tacozip_error *err);

#endif
