/* taco_ls.c - the C API in one page: read the TACO header, list members
 * with their exact byte ranges, find one by name and read its first bytes.
 *
 *   cc taco_ls.c $(pkg-config --cflags --libs tacozip) -o taco_ls
 *   ./taco_ls archive.taco [MEMBER]
 */
#include <inttypes.h>
#include <stdio.h>
#include <tacozip.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ARCHIVE [MEMBER]\n", argv[0]);
        return 2;
    }
    taco_meta_array_t hdr;
    int rc = tacozip_read_header(argv[1], &hdr); /* one 157-byte read */
    if (rc != TACOZ_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], tacozip_strerror(rc));
        return 1;
    }
    for (int i = 0; i < hdr.count; i++)
        printf("entry %d: offset %" PRIu64 " length %" PRIu64 "\n", i, hdr.entries[i].offset,
               hdr.entries[i].length);

    tacozip_archive *ar;
    tacozip_error err = TACOZIP_ERROR_INIT;
    if ((rc = tacozip_open_ex(argv[1], 0, &ar, &err)) != TACOZ_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    for (size_t i = 0; i < tacozip_count(ar); i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, i, &m);
        printf("%10" PRIu64 " %10" PRIu64 " %08x %s\n", m.data_offset, m.size, m.crc32, m.name);
    }
    if (argc > 2) {
        size_t idx;
        if (tacozip_find(ar, argv[2], (size_t)-1, &idx) != TACOZ_OK) {
            fprintf(stderr, "no member %s\n", argv[2]);
            tacozip_close(ar);
            return 1;
        }
        char buf[64];
        size_t got;
        if (tacozip_read_member(ar, idx, 0, buf, sizeof buf, &got) == TACOZ_OK)
            printf("first %zu bytes of %s: %.*s\n", got, argv[2], (int)got, buf);
    }
    tacozip_close(ar);
    return 0;
}
