#include <string.h>
#include "check.h"
#include "tacozip.h"
int main(void) {
    taco_meta_array_t m = {.count = 2, .entries = {{0, 0}, {5, 6}}}, r;
    unsigned char b[200];
    CHECK_EQ(tacozip_serialize_header(&m, b, sizeof b), TACOZ_OK);
    CHECK_EQ(tacozip_parse_header(b, sizeof b, &r), TACOZ_OK);
    CHECK_EQ(r.count, 2);
    CHECK_EQ(r.entries[1].offset, 5);
    return check_summary();
}
