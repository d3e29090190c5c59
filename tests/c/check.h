/* check.h - a tiny test harness: CHECK() records failures, the test's main
 * returns check_summary(), which prints "N passed, N failed". */
#ifndef TACOZIP_CHECK_H
#define TACOZIP_CHECK_H
#include <stdio.h>

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
static int check_summary(void) {
    printf("%d passed, %d failed\n", check_pass, check_fail);
    return check_fail ? 1 : 0;
}
#endif
