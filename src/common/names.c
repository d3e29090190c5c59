/* names.c - member-name safety rules, and the name set used for lookups
 * and duplicate checks: open addressing over a keyed hash (SipHash-1-3
 * with a random key per table), so that names chosen to collide cannot
 * make a table quadratic (hash flooding, issue 8 item 6). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#endif
#endif

#include "common.h"

int tz_name_is_safe(const char *name, size_t len) {
    if (len == 0 || memchr(name, '\0', len) || memchr(name, '\\', len)) return 0;
    if (name[0] == '/') return 0;
    if (len >= 2 && name[1] == ':' && ((name[0] | 32) >= 'a' && (name[0] | 32) <= 'z')) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            size_t clen = i - start;
            if (i == len && clen == 0) break; /* trailing '/' (directory entry) */
            if (clen == 0) return 0;            /* "a//b" */
            if (clen == 1 && name[start] == '.') return 0;
            if (clen == 2 && name[start] == '.' && name[start + 1] == '.') return 0;
            start = i + 1;
        }
    }
    return 1;
}

/* ---- SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012), written from the paper: c compression rounds per 8-byte word, d
 * finalisation rounds.  The table uses SipHash-1-3 (the variant CPython and
 * Rust use for their hash tables); tz_siphash() takes c and d so that the C
 * tests can check the paper's SipHash-2-4 test vector. */

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND(v0, v1, v2, v3)                                                                                       \
    do {                                                                                                               \
        v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32);                                                  \
        v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2;                                                                       \
        v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0;                                                                       \
        v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32);                                                  \
    } while (0)

static inline uint64_t siphash(int c, int d, uint64_t k0, uint64_t k1, const unsigned char *in, size_t n) {
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = rd64(in + i);
        v3 ^= m;
        for (int r = 0; r < c; r++) SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    /* the last 0..7 bytes, and the length's low byte in the top byte */
    uint64_t m = (uint64_t)(n & 0xff) << 56;
    for (size_t i = 0; i < (n & 7); i++) m |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= m;
    for (int r = 0; r < c; r++) SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    for (int r = 0; r < d; r++) SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t tz_siphash(int c, int d, const unsigned char key[16], const void *in, size_t n) {
    return siphash(c, d, rd64(key), rd64(key + 8), in, n);
}

static inline uint64_t name_hash(const tz_name_table *t, const char *s, size_t n) {
    return siphash(1, 3, t->key[0], t->key[1], (const unsigned char *)s, n);
}

/* A fresh random key for each table: getrandom(2) where the C library has
 * it (GRND_NONBLOCK: never waits for the entropy pool at early boot), else
 * /dev/urandom; failing both, a key mixed from the clock, the process id
 * and addresses (varies between runs and tables, but is not secret: the
 * only case in which a hash-flooding attacker could predict the table's
 * hash).  No state is kept between tables. */
static void random_key(uint64_t key[2], const void *salt) {
    unsigned char b[16];
    size_t got = 0;
#if defined(__has_include)
#if __has_include(<sys/random.h>)
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, GRND_NONBLOCK);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
#endif
#endif
    if (got < sizeof b) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            got = 0;
            while (got < sizeof b) {
                ssize_t k = read(fd, b + got, sizeof b - got);
                if (k < 0 && errno == EINTR) continue;
                if (k <= 0) break;
                got += (size_t)k;
            }
            close(fd);
        }
    }
    if (got < sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t mix[4] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)getpid(), (uint64_t)(uintptr_t)salt};
        static const unsigned char fixed[16] = "tacozip-fallback";
        uint64_t k0 = tz_siphash(2, 4, fixed, mix, sizeof mix);
        mix[0] ^= k0;
        wr64(b, k0);
        wr64(b + 8, tz_siphash(2, 4, fixed, mix, sizeof mix));
    }
    key[0] = rd64(b);
    key[1] = rd64(b + 8);
}

int tz_names_init(tz_name_table *t, size_t n, const void *ctx, tz_name_of_fn name_of, tacozip_error *err) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the name table");
    t->mask = cap - 1;
    t->ctx = ctx;
    t->name_of = name_of;
    random_key(t->key, t);
    return TACOZ_OK;
}

void tz_names_free(tz_name_table *t) {
    free(t->slots);
    t->slots = NULL;
}

/* Probe for "name": TACOZ_OK and *index when present, else
 * TACOZ_ERR_NOT_FOUND with *slot the empty slot where it would go. */
static int probe(const tz_name_table *t, const char *name, size_t len, size_t *slot, size_t *index) {
    size_t k = (size_t)name_hash(t, name, len) & t->mask;
    while (t->slots[k]) {
        size_t j = t->slots[k] - 1, olen;
        const char *o = t->name_of(t->ctx, j, &olen);
        if (olen == len && memcmp(o, name, len) == 0) {
            if (index) *index = j;
            return TACOZ_OK;
        }
        k = (k + 1) & t->mask;
    }
    *slot = k;
    return TACOZ_ERR_NOT_FOUND;
}

int tz_names_insert(tz_name_table *t, size_t i, size_t *other) {
    size_t len, slot;
    const char *name = t->name_of(t->ctx, i, &len);
    if (probe(t, name, len, &slot, other) == TACOZ_OK) return TACOZ_ERR_EXISTS;
    t->slots[slot] = (uint32_t)(i + 1);
    return TACOZ_OK;
}

int tz_names_find(const tz_name_table *t, const char *name, size_t len, size_t *index) {
    size_t slot;
    if (!t->slots) return TACOZ_ERR_NOT_FOUND;
    return probe(t, name, len, &slot, index);
}

int tz_names_reserve(tz_name_table *t, size_t count, tacozip_error *err) {
    size_t cap = t->mask + 1;
    if ((count + 1) * 2 <= cap) return TACOZ_OK;
    while (cap < (count + 1) * 2) cap <<= 1;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the name table");
    free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
    for (size_t i = 0; i < count; i++) tz_names_insert(t, i, NULL); /* distinct names: all go in */
    return TACOZ_OK;
}
