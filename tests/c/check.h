/* check.h - a tiny test harness: CHECK() records failures, the test's main
 * returns check_summary(), which prints "N passed, N failed". */
#ifndef TACOZIP_CHECK_H
#define TACOZIP_CHECK_H
#include <stdio.h>
#include <stdlib.h>

static int check_pass, check_fail;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) check_pass++;                                                      \
        else {                                                                       \
            check_fail++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)
#define CHECK_EQ(a, b)                                                                          \
    do {                                                                                        \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                   \
        if (va_ == vb_) check_pass++;                                                           \
        else {                                                                                  \
            check_fail++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                    #a, #b, va_, vb_);                                                          \
        }                                                                                       \
    } while (0)
/* Files for the tests: write "n" bytes (a failure ends the test run);
 * read a whole file (caller frees; NULL if missing). */
static inline void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}
static inline unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}
static int check_summary(void) {
    printf("%d passed, %d failed\n", check_pass, check_fail);
    return check_fail ? 1 : 0;
}
#endif
