/* reader.h - the reader layer (top, beside the writer): an open archive over
 * a source, its member table and its TACO header.  open.c opens and
 * describes archives, read.c reads bytes and members, extract.c writes
 * members to files, validate.c checks archives. */
#ifndef TACOZIP_READER_H
#define TACOZIP_READER_H

#include <pthread.h>

#include "../taco/taco.h"

/* What the archive object knows of its TACO header. */
typedef enum {
    TZ_HEADER_ABSENT = 0,  /* no TACO_HEADER (or malformed) */
    TZ_HEADER_PRESENT = 1, /* decoded into ar->header */
    TZ_HEADER_UNREAD = 2,  /* listed first at offset 0; bytes not read yet (remote) */
} tz_header_state;

struct tacozip_archive {
    tacozip_source *src; /* one reference */
    tz_dir dir;
    int from_index;      /* member table taken from TACO_INDEX */
    int check_crc;       /* whole-member reads check the CRC-32 (not TACOZIP_OPEN_NO_CRC) */
    tz_header_state header_state; /* guarded by lock while UNREAD */
    taco_meta_array_t header;
    pthread_mutex_t lock;
};

/* The one rule for messages on an open archive: its source's display name
 * in front.  Returns rc. */
static inline int tz_ar_fail(const tacozip_archive *ar, tacozip_error *err, int rc) {
    return rc ? tz_err_prefix(err, rc, ar->src->display) : TACOZ_OK;
}

/* Read entry i's data from "offset" (within the member) with its local
 * header checked first when it has not been (read.c). */
int tz_read_member_data(tacozip_archive *ar, size_t i, uint64_t offset, void *buf, size_t len, tacozip_error *err);

/* tacozip_open_source() and tacozip_verify_member_ex() without the name
 * in front of messages (for callers that add their own). */
int tz_archive_open(tacozip_source *src, unsigned flags, tacozip_archive **out, tacozip_error *err);
int tz_verify_member(tacozip_archive *ar, size_t index, tacozip_error *err);

/* tacozip_read_ranges_ex() without the archive's name in messages. */
int tz_read_ranges(tacozip_archive *ar, tacozip_range *ranges, size_t n, uint64_t max_gap, tacozip_error *err);

#endif
