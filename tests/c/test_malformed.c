/* test_malformed.c - malformed archives are refused with the exact code that
 * tacozip.h documents, never crash or leak (run it under ASan), and hostile
 * member names or planted symbolic links never make tacozip_extract() write
 * anything.
 *
 * One valid archive is made with tacozip_create(); every case copies its
 * bytes, applies a patch (overwrite, truncate, insert or erase), writes the
 * result to a file and asserts the codes of tacozip_open_ex(),
 * tacozip_open_memory(), tacozip_validate_ex() and, where it matters,
 * tacozip_read_member() / tacozip_verify_member() / tacozip_extract(). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tacozip.h"

#define NA 1 /* "do not check" in an expectation: every real code is <= 0 */

static char tmp[256];     /* mkdtemp directory holding everything */
static int ncases;        /* malformed (or control) variants checked */
static const char *cur = ""; /* label of the case being checked */

#define EXPECT(got, want)                                                   \
    do {                                                                    \
        int f0_ = check_fail;                                               \
        CHECK_EQ((got), (want));                                            \
        if (check_fail != f0_) fprintf(stderr, "    in case \"%s\"\n", cur); \
    } while (0)
#define EXPECT_TRUE(cond)                                                   \
    do {                                                                    \
        int f0_ = check_fail;                                               \
        CHECK(cond);                                                        \
        if (check_fail != f0_) fprintf(stderr, "    in case \"%s\"\n", cur); \
    } while (0)

/* ---- byte buffers and patches ------------------------------------------ */

typedef struct {
    unsigned char *b;
    size_t n;
} buf;

static void die(const char *what) {
    fprintf(stderr, "test_malformed: %s: %s\n", what, strerror(errno));
    exit(2);
}

static buf copy_buf(const buf *s) {
    buf v;
    v.n = s->n;
    v.b = malloc(s->n ? s->n : 1);
    if (!v.b) die("malloc");
    memcpy(v.b, s->b, s->n);
    return v;
}

static void drop(buf *v) {
    free(v->b);
    v->b = NULL;
    v->n = 0;
}

static void need(const buf *v, size_t off, size_t len) {
    if (off > v->n || len > v->n - off) {
        fprintf(stderr, "test_malformed: patch %zu+%zu outside %zu bytes\n", off, len, v->n);
        exit(2);
    }
}

static uint16_t g16(const buf *v, size_t o) {
    need(v, o, 2);
    return (uint16_t)(v->b[o] | (v->b[o + 1] << 8));
}
static uint32_t g32(const buf *v, size_t o) {
    need(v, o, 4);
    return (uint32_t)v->b[o] | ((uint32_t)v->b[o + 1] << 8) | ((uint32_t)v->b[o + 2] << 16) |
           ((uint32_t)v->b[o + 3] << 24);
}
static void s16(buf *v, size_t o, uint16_t x) {
    need(v, o, 2);
    v->b[o] = (unsigned char)x;
    v->b[o + 1] = (unsigned char)(x >> 8);
}
static void s32(buf *v, size_t o, uint32_t x) {
    need(v, o, 4);
    for (int i = 0; i < 4; i++) v->b[o + i] = (unsigned char)(x >> (8 * i));
}
static void s64(buf *v, size_t o, uint64_t x) {
    need(v, o, 8);
    for (int i = 0; i < 8; i++) v->b[o + i] = (unsigned char)(x >> (8 * i));
}
static void sbytes(buf *v, size_t o, const void *p, size_t n) {
    need(v, o, n);
    memcpy(v->b + o, p, n);
}
static void cut(buf *v, size_t n) { /* truncate to n bytes */
    need(v, 0, n);
    v->n = n;
}
/* Insert n bytes at o: a copy of p, or 'x' bytes when p is NULL. */
static void ins(buf *v, size_t o, const void *p, size_t n) {
    need(v, o, 0);
    unsigned char *nb = realloc(v->b, v->n + n);
    if (!nb) die("realloc");
    v->b = nb;
    memmove(v->b + o + n, v->b + o, v->n - o);
    if (p) memcpy(v->b + o, p, n);
    else memset(v->b + o, 'x', n);
    v->n += n;
}
static void del(buf *v, size_t o, size_t n) {
    need(v, o, n);
    memmove(v->b + o, v->b + o + n, v->n - o - n);
    v->n -= n;
}

/* ---- ZIP layout of a (comment-free) archive --------------------------- */

#define MAXREC 8
typedef struct {
    size_t eocd, cd_off, cd_size, n;
    size_t rec[MAXREC]; /* directory records */
    size_t lfh[MAXREC]; /* local headers */
    char name[MAXREC][64];
} layout;

static layout scan(const buf *v) {
    layout L;
    memset(&L, 0, sizeof L);
    L.eocd = v->n - 22;
    if (g32(v, L.eocd) != 0x06054b50u) {
        fprintf(stderr, "test_malformed: no end record at %zu\n", L.eocd);
        exit(2);
    }
    L.n = g16(v, L.eocd + 10);
    L.cd_size = g32(v, L.eocd + 12);
    L.cd_off = g32(v, L.eocd + 16);
    size_t p = L.cd_off;
    for (size_t i = 0; i < L.n && i < MAXREC; i++) {
        size_t nlen = g16(v, p + 28), xlen = g16(v, p + 30), clen = g16(v, p + 32);
        L.rec[i] = p;
        L.lfh[i] = g32(v, p + 42);
        need(v, p + 46, nlen);
        memcpy(L.name[i], v->b + p + 46, nlen < 63 ? nlen : 63);
        p += 46 + nlen + xlen + clen;
    }
    return L;
}

static size_t idx_of(const layout *L, const char *name) {
    for (size_t i = 0; i < L->n; i++)
        if (strcmp(L->name[i], name) == 0) return i;
    fprintf(stderr, "test_malformed: no member %s\n", name);
    exit(2);
}

/* Rename member "from" to "to" (same length) in its local header and its
 * directory record. */
static void rename_member(buf *v, const char *from, const char *to) {
    layout L = scan(v);
    size_t i = idx_of(&L, from);
    if (strlen(to) != strlen(from)) exit(2);
    sbytes(v, L.rec[i] + 46, to, strlen(to));
    sbytes(v, L.lfh[i] + 30, to, strlen(to));
}

/* Append "len" bytes of extra field to directory record i (the archive's
 * last record, so nothing after it but the end record moves). */
static void add_cd_extra(buf *v, size_t i, const void *x, size_t len) {
    layout L = scan(v);
    size_t r = L.rec[i];
    size_t end = r + 46 + g16(v, r + 28) + g16(v, r + 30) + g16(v, r + 32);
    ins(v, end, x, len);
    s16(v, r + 30, (uint16_t)(g16(v, r + 30) + len));
    s32(v, v->n - 22 + 12, (uint32_t)(L.cd_size + len));
}

/* ---- files ------------------------------------------------------------- */

static const char *save(const buf *v) {
    static char path[512];
    static int k;
    snprintf(path, sizeof path, "%s/case-%03d.zip", tmp, ++k);
    FILE *f = fopen(path, "wb");
    if (!f) die(path);
    if (v->n && fwrite(v->b, 1, v->n, f) != v->n) die(path);
    if (fclose(f) != 0) die(path);
    return path;
}

static buf load(const char *path) {
    buf v = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    unsigned char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        unsigned char *nb = realloc(v.b, v.n + k);
        if (!nb) die("realloc");
        v.b = nb;
        memcpy(v.b + v.n, chunk, k);
        v.n += k;
    }
    fclose(f);
    return v;
}

/* ---- directory snapshots ----------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} lines;

static void list_rec(const char *abs, const char *rel, lines *L) {
    DIR *d = opendir(abs);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char a[1024], r[1024], target[512] = "", line[2600];
        snprintf(a, sizeof a, "%s/%s", abs, e->d_name);
        snprintf(r, sizeof r, "%s/%s", rel, e->d_name);
        struct stat st;
        if (lstat(a, &st) != 0) continue;
        uint32_t crc = 0;
        if (S_ISLNK(st.st_mode)) {
            ssize_t k = readlink(a, target, sizeof target - 1);
            if (k >= 0) target[k] = '\0';
        } else if (S_ISREG(st.st_mode)) {
            buf c = load(a);
            crc = tacozip_crc32(0, c.b, c.n);
            drop(&c);
        }
        snprintf(line, sizeof line, "%s type=%o size=%lld crc=%08x link=%s", r, (unsigned)(st.st_mode & S_IFMT),
                 (long long)st.st_size, crc, target);
        if (L->n == L->cap) {
            L->cap = L->cap ? 2 * L->cap : 32;
            L->v = realloc(L->v, L->cap * sizeof *L->v);
            if (!L->v) die("realloc");
        }
        L->v[L->n++] = strdup(line);
        if (S_ISDIR(st.st_mode)) list_rec(a, r, L);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A sorted listing of everything under dir: names, types, sizes, CRCs and
 * link targets.  Two equal listings mean nothing was written. */
static char *tree(const char *dir) {
    lines L = {NULL, 0, 0};
    list_rec(dir, ".", &L);
    qsort(L.v, L.n, sizeof *L.v, cmp_str);
    size_t total = 1;
    for (size_t i = 0; i < L.n; i++) total += strlen(L.v[i]) + 1;
    char *s = malloc(total);
    if (!s) die("malloc");
    s[0] = '\0';
    for (size_t i = 0; i < L.n; i++) {
        strcat(s, L.v[i]);
        strcat(s, "\n");
        free(L.v[i]);
    }
    free(L.v);
    return s;
}

/* A fresh extraction sandbox: root/dest (empty) and root/outside (empty). */
typedef struct {
    char root[512], dest[600], outside[600];
} sandbox;

static void sandbox_new(sandbox *s) {
    static int k;
    snprintf(s->root, sizeof s->root, "%s/sandbox-%03d", tmp, ++k);
    snprintf(s->dest, sizeof s->dest, "%s/dest", s->root);
    snprintf(s->outside, sizeof s->outside, "%s/outside", s->root);
    if (mkdir(s->root, 0777) || mkdir(s->dest, 0777) || mkdir(s->outside, 0777)) die("mkdir sandbox");
}

/* ---- checks -------------------------------------------------------------- */

/* Touch every member the way a reader would; the codes are only required to
 * be errors or success (ASan checks the memory accesses). */
static void exercise(tacozip_archive *ar) {
    unsigned char b[64];
    size_t n = tacozip_count(ar);
    for (size_t i = 0; i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        size_t got, idx = 0;
        EXPECT(tacozip_member_at(ar, i, &m), TACOZ_OK);
        EXPECT(tacozip_find(ar, m.name, m.name_len, &idx), TACOZ_OK);
        EXPECT(idx, i);
        /* Exact codes: a compressed or encrypted member is TACOZ_ERR_UNSUPPORTED;
         * otherwise OK or TACOZ_INVALID_LFH (a local header that disagrees),
         * with min(size, 64) bytes read; verify returns the same failure, or
         * on a readable member OK / TACOZ_INVALID_CRC_MEMBER as the CRC-32 of
         * its bytes (computed here) matches the directory's or not. */
        /* A read of the whole member (here: size <= 64) also checks the
         * CRC-32 (TACOZ_INVALID_CRC_MEMBER, the bytes still read). */
        const int small = m.size <= sizeof b;
        int rr_ = tacozip_read_member(ar, i, 0, b, sizeof b, &got), rv_ = tacozip_verify_member(ar, i);
        if (m.method != 0 || (m.flags & 1u)) EXPECT(rr_, TACOZ_ERR_UNSUPPORTED);
        else EXPECT_TRUE(rr_ == TACOZ_OK || rr_ == TACOZ_INVALID_LFH || (small && rr_ == TACOZ_INVALID_CRC_MEMBER));
        const int readable = rr_ == TACOZ_OK || rr_ == TACOZ_INVALID_CRC_MEMBER;
        if (!readable) EXPECT(rv_, rr_);
        if (readable && m.size <= (1u << 20)) {
            unsigned char *all_ = malloc(m.size ? (size_t)m.size : 1);
            size_t n_ = 0;
            uint32_t c_ = 0xFFFFFFFFu;
            if (!all_) die("malloc");
            EXPECT(got, m.size < sizeof b ? (size_t)m.size : sizeof b);
            int ra_ = tacozip_read_member(ar, i, 0, all_, (size_t)m.size, &n_);
            EXPECT(n_, (size_t)m.size);
            for (size_t k_ = 0; k_ < n_; k_++) {
                c_ ^= all_[k_];
                for (int j_ = 0; j_ < 8; j_++) c_ = (c_ >> 1) ^ (0xEDB88320u & (0u - (c_ & 1u)));
            }
            const int crc_code = (c_ ^ 0xFFFFFFFFu) == m.crc32 ? TACOZ_OK : TACOZ_INVALID_CRC_MEMBER;
            EXPECT(rv_, crc_code);
            EXPECT(ra_, m.size ? crc_code : TACOZ_OK);
            if (small && m.size) EXPECT(rr_, crc_code);
            free(all_);
        }
        uint64_t off, len;
        EXPECT(tacozip_span(ar, &i, 1, 0, &off, &len), TACOZ_OK);
    }
    taco_meta_array_t meta;
    int rc = tacozip_archive_header(ar, &meta);
    EXPECT_TRUE(rc == TACOZ_OK || rc == TACOZ_ERR_INVALID_HEADER);
}

/* Expected codes: open (from a file and from memory, no flags), open with
 * TACOZIP_OPEN_VERIFY_LOCAL, and validate at each level; NA skips one. */
typedef struct {
    int open, verify, quick, normal, deep;
} want;

static void check_open(const char *path, const buf *v, unsigned flags, int code) {
    tacozip_archive *ar = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    memset(&err, 0, sizeof err);
    int rc = tacozip_open_ex(path, flags, &ar, &err);
    EXPECT(rc, code);
    if (rc == TACOZ_OK) {
        exercise(ar);
        tacozip_close(ar);
    } else {
        EXPECT_TRUE(ar == NULL);
        EXPECT(err.code, rc);
        EXPECT_TRUE(err.message[0] != '\0');
    }
    /* The same bytes from memory, in a buffer of exactly their size so
     * ASan sees any read past the end. */
    unsigned char *copy = malloc(v->n ? v->n : 1);
    if (!copy) die("malloc");
    memcpy(copy, v->b, v->n);
    ar = NULL;
    memset(&err, 0, sizeof err);
    rc = tacozip_open_memory(copy, v->n, flags, &ar, &err);
    EXPECT(rc, code);
    if (rc == TACOZ_OK) {
        exercise(ar);
        tacozip_close(ar);
    } else {
        EXPECT(err.code, rc);
    }
    free(copy);
}

/* Write the variant, check all expectations, return its path (valid until
 * the next case). */
static const char *check_case(const char *label, const buf *v, want w) {
    cur = label;
    ncases++;
    const char *path = save(v);
    tacozip_error err = TACOZIP_ERROR_INIT;
    if (w.open != NA) check_open(path, v, 0, w.open);
    if (w.verify != NA) check_open(path, v, TACOZIP_OPEN_VERIFY_LOCAL, w.verify);
    if (w.quick != NA) EXPECT(tacozip_validate_ex(path, TACOZIP_VALIDATE_QUICK, &err), w.quick);
    if (w.normal != NA) EXPECT(tacozip_validate_ex(path, TACOZIP_VALIDATE_NORMAL, &err), w.normal);
    if (w.deep != NA) {
        memset(&err, 0, sizeof err);
        int rc = tacozip_validate_ex(path, TACOZIP_VALIDATE_DEEP, &err);
        EXPECT(rc, w.deep);
        if (rc) EXPECT(err.code, rc);
    }
    return path;
}

/* A structural error: open, open+verify and NORMAL/DEEP all report "code",
 * the header bytes are intact (QUICK valid). */
static const char *check_struct(const char *label, const buf *v, int code) {
    return check_case(label, v, (want){code, code, TACOZ_VALID, code, code});
}

static tacozip_archive *must_open(const char *path) {
    tacozip_archive *ar = NULL;
    int rc = tacozip_open_ex(path, 0, &ar, NULL);
    EXPECT(rc, TACOZ_OK);
    return rc == TACOZ_OK ? ar : NULL;
}

/* Member "idx" of the archive at path: first read and verify codes. */
static void check_read(const char *path, size_t idx, int read_code, int verify_code) {
    tacozip_archive *ar = must_open(path);
    if (!ar) return;
    unsigned char b[64];
    size_t got = 99;
    tacozip_member m = TACOZIP_MEMBER_INIT;
    EXPECT(tacozip_member_at(ar, idx, &m), TACOZ_OK);
    /* a read of the whole member (size <= 64 here) also checks the CRC-32 */
    const int whole = m.size && m.size <= sizeof b;
    EXPECT(tacozip_read_member(ar, idx, 0, b, sizeof b, &got), read_code == TACOZ_OK && whole ? verify_code : read_code);
    if (read_code != TACOZ_OK) EXPECT(got, 0);
    EXPECT(tacozip_verify_member(ar, idx), verify_code);
    tacozip_close(ar);
    if (read_code != TACOZ_OK || verify_code != TACOZ_INVALID_CRC_MEMBER) return;
    /* the bytes that fail: read whole, refused unless TACOZIP_OPEN_NO_CRC */
    unsigned char *all = malloc(m.size ? (size_t)m.size : 1);
    if (!all) die("malloc");
    EXPECT(tacozip_open_ex(path, 0, &ar, NULL), TACOZ_OK);
    EXPECT(tacozip_read_member(ar, idx, 0, all, (size_t)m.size, &got), TACOZ_INVALID_CRC_MEMBER);
    EXPECT(got, (size_t)m.size);
    void *bufs[1] = {all};
    EXPECT(tacozip_read_members(ar, &idx, 1, bufs, TACOZIP_DEFAULT_GAP), TACOZ_INVALID_CRC_MEMBER);
    tacozip_close(ar);
    EXPECT(tacozip_open_ex(path, TACOZIP_OPEN_NO_CRC, &ar, NULL), TACOZ_OK);
    EXPECT(tacozip_read_member(ar, idx, 0, all, (size_t)m.size, &got), TACOZ_OK);
    EXPECT(tacozip_read_members(ar, &idx, 1, bufs, TACOZIP_DEFAULT_GAP), TACOZ_OK);
    EXPECT(tacozip_verify_member(ar, idx), TACOZ_INVALID_CRC_MEMBER); /* verify still verifies */
    tacozip_close(ar);
    free(all);
}

/* tacozip_extract() of "names" (NULL: all) into a fresh sandbox must fail
 * with "code" and leave the sandbox (destination and its parent) exactly as
 * it was. */
static void check_extract_nothing(const char *path, const char *const *names, size_t n, int code) {
    tacozip_archive *ar = must_open(path);
    if (!ar) return;
    sandbox s;
    sandbox_new(&s);
    char *before = tree(s.root);
    tacozip_error err = TACOZIP_ERROR_INIT;
    memset(&err, 0, sizeof err);
    EXPECT(tacozip_extract(ar, s.dest, names, n, 0, NULL, NULL, &err), code);
    char *after = tree(s.root);
    EXPECT_TRUE(strcmp(before, after) == 0);
    if (strcmp(before, after) != 0) fprintf(stderr, "    before:\n%s    after:\n%s", before, after);
    free(before);
    free(after);
    tacozip_close(ar);
}

/* ---- the archives -------------------------------------------------------- */

static buf mainv;  /* TACO_HEADER, a.txt (12), b.bin (20), dir/c.dat (33) */
static buf namesv; /* TACO_HEADER, safe.txt, abcd, abc, abcdefghi, lnk/file */
static const taco_meta_array_t META = {2, {{157, 47}, {204, 55}}};

static void make_archives(void) {
    char src[3][600], path[600];
    static const char *content[3] = {"hello world\n", "0123456789abcdefghij", "the quick brown fox jumps over it"};
    for (int i = 0; i < 3; i++) {
        snprintf(src[i], sizeof src[i], "%s/src%d", tmp, i);
        write_file(src[i], content[i], strlen(content[i]));
    }
    const char *srcs[5] = {src[0], src[1], src[2], src[0], src[0]};
    const char *arcs[3] = {"a.txt", "b.bin", "dir/c.dat"};
    snprintf(path, sizeof path, "%s/main.taco", tmp);
    CHECK_EQ(tacozip_create(path, srcs, arcs, 3, &META), TACOZ_OK);
    mainv = load(path);
    CHECK_EQ(tacozip_validate(path, TACOZIP_VALIDATE_DEEP), TACOZ_VALID);

    const char *arcs2[5] = {"safe.txt", "abcd", "abc", "abcdefghi", "lnk/file"};
    snprintf(path, sizeof path, "%s/names.taco", tmp);
    CHECK_EQ(tacozip_create(path, srcs, arcs2, 5, NULL), TACOZ_OK);
    namesv = load(path);
}

/* The main archive's layout, as the documented default predicts. */
enum {
    A_LFH = 157, A_DATA = 192, B_LFH = 204, B_DATA = 239, C_LFH = 259, C_DATA = 298,
    CD_OFF = 331, CD_SIZE = 57 + 51 + 51 + 55, EOCD = CD_OFF + CD_SIZE, MAIN_SIZE = EOCD + 22
};

static void test_control(void) {
    cur = "valid archive (control)";
    EXPECT(mainv.n, MAIN_SIZE);
    layout L = scan(&mainv);
    EXPECT(L.n, 4);
    EXPECT(L.cd_off, CD_OFF);
    EXPECT(L.cd_size, CD_SIZE);
    EXPECT(L.lfh[1], A_LFH);
    EXPECT(L.lfh[2], B_LFH);
    EXPECT(L.lfh[3], C_LFH);
    const char *path = check_case("valid archive (control)", &mainv, (want){0, 0, 0, 0, 0});
    tacozip_archive *ar = must_open(path);
    if (ar) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        EXPECT(tacozip_member_at(ar, 3, &m), TACOZ_OK);
        EXPECT(m.data_offset, C_DATA);
        EXPECT(m.size, 33);
        tacozip_close(ar);
    }
    /* Extraction works, so "nothing written" below means something. */
    sandbox s;
    sandbox_new(&s);
    ar = must_open(path);
    if (ar) {
        EXPECT(tacozip_extract(ar, s.dest, NULL, 0, 0, NULL, NULL, NULL), TACOZ_OK);
        char p[700];
        snprintf(p, sizeof p, "%s/dir/c.dat", s.dest);
        EXPECT(access(p, F_OK), 0);
        tacozip_close(ar);
    }
}

/* ---- truncation -------------------------------------------------------- */

static void test_truncation(void) {
    struct {
        const char *label;
        size_t len;
        int quick;
    } t[] = {
        {"truncated to 0 bytes", 0, TACOZ_INVALID_FILE_SIZE},
        {"truncated inside TACO_HEADER's local header", 20, TACOZ_INVALID_FILE_SIZE},
        {"truncated inside TACO_HEADER's payload", 100, TACOZ_INVALID_FILE_SIZE},
        {"truncated inside a.txt's local header", A_LFH + 13, TACOZ_VALID},
        {"truncated inside b.bin's data", B_DATA + 7, TACOZ_VALID},
        {"truncated just before the central directory", CD_OFF, TACOZ_VALID},
        {"truncated inside the central directory", CD_OFF + 60, TACOZ_VALID},
        {"truncated inside the end record", EOCD + 10, TACOZ_VALID},
        {"last byte of the end record missing", MAIN_SIZE - 1, TACOZ_VALID},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        buf v = copy_buf(&mainv);
        cut(&v, t[i].len);
        int quick_or_size = t[i].quick;
        /* NORMAL and DEEP first require the 157 header bytes. */
        int normal = t[i].len < 157 ? TACOZ_INVALID_FILE_SIZE : TACOZ_INVALID_NO_EOCD;
        check_case(t[i].label, &v, (want){TACOZ_INVALID_NO_EOCD, TACOZ_INVALID_NO_EOCD, quick_or_size, normal, normal});
        drop(&v);
    }
    /* read_header on a short file: an I/O error (documented). */
    buf v = copy_buf(&mainv);
    cut(&v, 100);
    const char *path = check_case("read_header on a 100-byte file", &v, (want){NA, NA, NA, NA, NA});
    taco_meta_array_t m;
    EXPECT(tacozip_read_header(path, &m), TACOZ_ERR_IO);
    drop(&v);

    /* Bytes cut out of the middle: the end record survives but the
     * directory it describes now runs past it. */
    v = copy_buf(&mainv);
    del(&v, B_DATA + 5, 5);
    check_struct("5 bytes of b.bin's data cut out", &v, TACOZ_INVALID_CD_OFFSET);
    drop(&v);
    v = copy_buf(&mainv);
    del(&v, CD_OFF, CD_SIZE);
    check_struct("central directory cut out", &v, TACOZ_INVALID_CD_OFFSET);
    drop(&v);
}

/* ---- signatures ---------------------------------------------------------- */

static void test_signatures(void) {
    buf v = copy_buf(&mainv);
    v.b[0] = 'Q';
    const char *path = check_case("bad local header signature at 0", &v,
                                  (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_INVALID_NOT_ZIP, TACOZ_INVALID_NOT_ZIP,
                                         TACOZ_INVALID_NOT_ZIP});
    tacozip_archive *ar = must_open(path);
    if (ar) {
        taco_meta_array_t m;
        EXPECT(tacozip_archive_header(ar, &m), TACOZ_ERR_INVALID_HEADER);
        tacozip_close(ar);
    }
    check_read(path, 0, TACOZ_INVALID_LFH, TACOZ_INVALID_LFH);
    taco_meta_array_t m;
    EXPECT(tacozip_read_header(path, &m), TACOZ_ERR_INVALID_HEADER);
    EXPECT(tacozip_parse_header(v.b, v.n, &m), TACOZ_ERR_INVALID_HEADER);
    drop(&v);

    v = copy_buf(&mainv);
    v.b[B_LFH + 1] = 'Q';
    path = check_case("bad local header signature of b.bin", &v,
                      (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_VALID, TACOZ_VALID, TACOZ_INVALID_LFH});
    check_read(path, 2, TACOZ_INVALID_LFH, TACOZ_INVALID_LFH);
    check_read(path, 1, TACOZ_OK, TACOZ_OK);
    check_extract_nothing(path, NULL, 0, TACOZ_INVALID_LFH);
    drop(&v);

    layout L = scan(&mainv);
    v = copy_buf(&mainv);
    v.b[L.rec[0] + 2] = 9;
    check_struct("bad signature of the first directory record", &v, TACOZ_INVALID_CD_ENTRY);
    drop(&v);
    v = copy_buf(&mainv);
    v.b[L.rec[1] + 3] = 9;
    check_struct("bad signature of a.txt's directory record", &v, TACOZ_INVALID_CD_ENTRY);
    drop(&v);

    v = copy_buf(&mainv);
    v.b[EOCD + 3] = 9;
    check_struct("bad end record signature", &v, TACOZ_INVALID_NO_EOCD);
    drop(&v);
}

/* ---- directory bounds and counts --------------------------------------- */

static void test_directory(void) {
    layout L = scan(&mainv);
    struct {
        const char *label;
        size_t off;
        int width;
        uint32_t value;
        int code;
    } t[] = {
        {"directory offset past the end of the file", EOCD + 16, 4, 0x7FFFFF00u, TACOZ_INVALID_CD_OFFSET},
        {"directory size past the end of the file", EOCD + 12, 4, 0x7FFFFF00u, TACOZ_INVALID_CD_OFFSET},
        {"directory size runs into the end record", EOCD + 12, 4, CD_SIZE + 1, TACOZ_INVALID_CD_OFFSET},
        {"directory offset one byte early", EOCD + 16, 4, CD_OFF - 1, TACOZ_INVALID_CD_ENTRY},
        {"directory offset one byte late", EOCD + 16, 4, CD_OFF + 1, TACOZ_INVALID_CD_OFFSET},
        {"last record's name length overruns the directory", L.rec[3] + 28, 2, 200, TACOZ_INVALID_CD_ENTRY},
        {"a.txt's extra length overruns the directory", L.rec[1] + 30, 2, 1000, TACOZ_INVALID_CD_ENTRY},
        {"local header offset inside the directory", L.rec[1] + 42, 4, CD_OFF + 10, TACOZ_INVALID_LFH},
        {"local header offset past the end of the file", L.rec[1] + 42, 4, 0x7FFFFFF0u, TACOZ_INVALID_LFH},
        {"end record entry count too big", EOCD + 8, 4, 0x00050005u, TACOZ_INVALID_COUNT},
        {"end record entry count 0xFFFF", EOCD + 8, 4, 0xFFFFFFFFu, TACOZ_INVALID_COUNT},
        {"end record entry count too small", EOCD + 8, 4, 0x00030003u, TACOZ_INVALID_COUNT},
        {"end record entry count 0", EOCD + 8, 4, 0, TACOZ_INVALID_COUNT},
        {"entries on this disk != total entries", EOCD + 8, 2, 3, TACOZ_INVALID_COUNT},
        {"end record on disk 1", EOCD + 4, 2, 1, TACOZ_ERR_SPLIT},
        {"a.txt's record says it is on disk 1", L.rec[1] + 34, 2, 1, TACOZ_ERR_SPLIT},
        {"end record comment length runs past the end", EOCD + 20, 2, 10, TACOZ_INVALID_NO_EOCD},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        buf v = copy_buf(&mainv);
        if (t[i].width == 2) s16(&v, t[i].off, (uint16_t)t[i].value);
        else s32(&v, t[i].off, t[i].value);
        check_struct(t[i].label, &v, t[i].code);
        drop(&v);
    }

    /* A directory larger than the tail read at open (the reader reads it
     * separately): two records carry 40000-byte comments. */
    buf v = copy_buf(&mainv);
    ins(&v, L.rec[1] + 46 + 5, NULL, 40000);
    s16(&v, L.rec[1] + 32, 40000);
    ins(&v, L.rec[0] + 46 + 11, NULL, 40000);
    s16(&v, L.rec[0] + 32, 40000);
    s32(&v, v.n - 22 + 12, CD_SIZE + 80000);
    check_case("80 kB directory with record comments (control)", &v, (want){0, 0, 0, 0, 0});
    /* ... whose last record (name at the very end of the directory
     * buffer) points past the directory: the error message must not read
     * past the buffer. */
    s32(&v, L.rec[3] + 80000 + 42, CD_OFF + 10);
    check_struct("80 kB directory, last local header offset inside it", &v, TACOZ_INVALID_LFH);
    drop(&v);

    v = copy_buf(&mainv);
    s16(&v, EOCD + 20, 65535);
    ins(&v, v.n, NULL, 65535);
    check_case("end record with a 65535-byte comment (control)", &v, (want){0, 0, 0, 0, 0});
    /* With 2000 bytes between directory and end record as well, the small
     * directory lies before the tail and is read into its own buffer, which
     * ends right after the last record's name. */
    ins(&v, EOCD, NULL, 2000);
    check_case("directory before a 67 kB tail (control)", &v, (want){0, 0, 0, 0, 0});
    s32(&v, L.rec[3] + 42, CD_OFF + 10);
    check_struct("directory before a 67 kB tail, last local header offset inside it", &v, TACOZ_INVALID_LFH);
    drop(&v);
}

/* ---- overlapping members -------------------------------------------------- */

static void test_overlap(void) {
    layout L = scan(&mainv);
    buf v = copy_buf(&mainv);
    s32(&v, L.rec[3] + 42, B_LFH);
    check_struct("two records point at b.bin's local header", &v, TACOZ_INVALID_OVERLAP);
    drop(&v);

    v = copy_buf(&mainv);
    s32(&v, L.rec[3] + 42, A_DATA + 8);
    check_struct("a record points into a.txt's data", &v, TACOZ_INVALID_OVERLAP);
    drop(&v);

    v = copy_buf(&mainv);
    s32(&v, L.rec[1] + 20, 13); /* directory sizes */
    s32(&v, L.rec[1] + 24, 13);
    s32(&v, A_LFH + 18, 13); /* local header sizes */
    s32(&v, A_LFH + 22, 13);
    check_struct("a.txt's size runs into b.bin's local header", &v, TACOZ_INVALID_OVERLAP);
    drop(&v);

    v = copy_buf(&mainv);
    s32(&v, L.rec[3] + 20, 34);
    s32(&v, L.rec[3] + 24, 34);
    s32(&v, C_LFH + 18, 34);
    s32(&v, C_LFH + 22, 34);
    check_struct("dir/c.dat's data runs into the directory", &v, TACOZ_INVALID_OVERLAP);
    drop(&v);

    v = copy_buf(&mainv);
    s32(&v, L.rec[3] + 20, 0x7FFFFFF0u);
    check_struct("dir/c.dat's size larger than the file", &v, TACOZ_INVALID_OVERLAP);
    drop(&v);

    v = copy_buf(&mainv);
    s32(&v, L.rec[1] + 20, 13); /* directory only: the local header disagrees */
    check_struct("a.txt's directory size differs from its local header", &v, TACOZ_INVALID_LFH);
    drop(&v);
}

/* ---- local headers that disagree with the directory ------------------------ */

static void test_local_headers(void) {
    struct {
        const char *label;
        size_t off;
        int width;
        uint32_t value;
        int verify;
    } t[] = {
        {"b.bin's local header name differs", B_LFH + 30 + 4, 1, 'x', TACOZ_INVALID_LFH},
        {"b.bin's local header name length differs", B_LFH + 26, 2, 4, TACOZ_INVALID_LFH},
        {"b.bin's local header CRC differs", B_LFH + 14, 4, 0x12345678u, TACOZ_INVALID_LFH},
        {"b.bin's local header size differs", B_LFH + 18, 4, 19, TACOZ_INVALID_LFH},
        {"b.bin's local header method differs", B_LFH + 8, 2, 8, TACOZ_INVALID_LFH},
        /* 4 bytes of extra move the data: with VERIFY_LOCAL the open sees the
         * moved data overlap the next member first. */
        {"b.bin's local header has an extra field", B_LFH + 28, 2, 4, TACOZ_INVALID_OVERLAP},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        buf v = copy_buf(&mainv);
        if (t[i].width == 1) v.b[t[i].off] = (unsigned char)t[i].value;
        else if (t[i].width == 2) s16(&v, t[i].off, (uint16_t)t[i].value);
        else s32(&v, t[i].off, t[i].value);
        const char *path = check_case(t[i].label, &v,
                                      (want){TACOZ_OK, t[i].verify, TACOZ_VALID, TACOZ_VALID, TACOZ_INVALID_LFH});
        check_read(path, 2, TACOZ_INVALID_LFH, TACOZ_INVALID_LFH);
        check_read(path, 3, TACOZ_OK, TACOZ_OK);
        if (i == 0) {
            const char *one[] = {"b.bin"};
            check_extract_nothing(path, one, 1, TACOZ_INVALID_LFH);
            check_extract_nothing(path, NULL, 0, TACOZ_INVALID_LFH);
        }
        drop(&v);
    }
}

/* ---- CRCs ---------------------------------------------------------------- */

static void test_crc(void) {
    layout L = scan(&mainv);
    buf v = copy_buf(&mainv);
    v.b[14] ^= 0x01;
    const char *path = check_case("TACO_HEADER local CRC wrong", &v,
                                  (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_VALID, TACOZ_VALID, TACOZ_INVALID_CRC_LFH});
    check_read(path, 0, TACOZ_INVALID_LFH, TACOZ_INVALID_LFH);
    drop(&v);

    v = copy_buf(&mainv);
    v.b[L.rec[0] + 16] ^= 0x01;
    check_case("TACO_HEADER directory CRC wrong", &v,
               (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_VALID, TACOZ_VALID, TACOZ_INVALID_CRC_CD});
    drop(&v);

    v = copy_buf(&mainv);
    v.b[41 + 4] ^= 0x01; /* payload changed, both CRCs stale */
    path = check_case("TACO_HEADER payload changed without its CRCs", &v,
                      (want){TACOZ_OK, TACOZ_OK, TACOZ_VALID, TACOZ_VALID, TACOZ_INVALID_CRC_LFH});
    check_read(path, 0, TACOZ_OK, TACOZ_INVALID_CRC_MEMBER);
    drop(&v);

    v = copy_buf(&mainv);
    v.b[B_DATA + 3] ^= 0x20;
    path = check_case("b.bin's data fails its CRC", &v,
                      (want){TACOZ_OK, TACOZ_OK, TACOZ_VALID, TACOZ_VALID, TACOZ_INVALID_CRC_MEMBER});
    check_read(path, 2, TACOZ_OK, TACOZ_INVALID_CRC_MEMBER);
    check_read(path, 1, TACOZ_OK, TACOZ_OK);
    const char *one[] = {"b.bin"};
    check_extract_nothing(path, one, 1, TACOZ_INVALID_CRC_MEMBER);
    /* Extracting everything: members before b.bin are written (documented),
     * but neither b.bin nor a temporary file is left behind. */
    tacozip_archive *ar = must_open(path);
    if (ar) {
        sandbox s;
        sandbox_new(&s);
        EXPECT(tacozip_extract(ar, s.dest, NULL, 0, 0, NULL, NULL, NULL), TACOZ_INVALID_CRC_MEMBER);
        char p[700];
        snprintf(p, sizeof p, "%s/b.bin", s.dest);
        EXPECT_TRUE(access(p, F_OK) != 0);
        char *t = tree(s.root);
        EXPECT_TRUE(strstr(t, "b.bin") == NULL && strstr(t, ".part") == NULL && strstr(t, "c.dat") == NULL);
        free(t);
        tacozip_close(ar);
    }
    drop(&v);
}

/* ---- the TACO header --------------------------------------------------- */

static void test_header(void) {
    layout L = scan(&mainv);
    buf v = copy_buf(&mainv);
    v.b[41] = 8;
    const char *path = check_case("header count 8", &v,
                                  (want){TACOZ_OK, TACOZ_OK, TACOZ_INVALID_META_COUNT, TACOZ_INVALID_META_COUNT,
                                         TACOZ_INVALID_META_COUNT});
    taco_meta_array_t m;
    EXPECT(tacozip_read_header(path, &m), TACOZ_ERR_INVALID_HEADER);
    EXPECT(tacozip_parse_header(v.b, v.n, &m), TACOZ_ERR_INVALID_HEADER);
    tacozip_archive *ar = must_open(path);
    if (ar) {
        EXPECT(tacozip_archive_header(ar, &m), TACOZ_ERR_INVALID_HEADER);
        tacozip_close(ar);
    }
    drop(&v);

    v = copy_buf(&mainv);
    v.b[40] = 'X';
    check_case("TACO_HEADER local name wrong", &v,
               (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_INVALID_NO_TACO, TACOZ_INVALID_NO_TACO, TACOZ_INVALID_NO_TACO});
    drop(&v);

    v = copy_buf(&mainv);
    s32(&v, 18, 117);
    check_case("TACO_HEADER local size 117", &v,
               (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_INVALID_HEADER_SIZE, TACOZ_INVALID_HEADER_SIZE,
                      TACOZ_INVALID_HEADER_SIZE});
    drop(&v);

    v = copy_buf(&mainv);
    s16(&v, 8, 8);
    check_case("TACO_HEADER local method deflate", &v,
               (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_INVALID_HEADER_SIZE, TACOZ_INVALID_HEADER_SIZE,
                      TACOZ_INVALID_HEADER_SIZE});
    drop(&v);

    v = copy_buf(&mainv);
    v.b[L.rec[0] + 46 + 10] = 'Y';
    path = check_case("TACO_HEADER missing from the directory", &v,
                      (want){TACOZ_OK, TACOZ_INVALID_LFH, TACOZ_VALID, TACOZ_INVALID_NO_CD_ENTRY,
                             TACOZ_INVALID_NO_CD_ENTRY});
    EXPECT(tacozip_update_header(path, &META), TACOZ_INVALID_REORDERED);
    drop(&v);

    /* Swap the first two directory records: TACO_HEADER is listed second. */
    v = copy_buf(&mainv);
    size_t r0 = L.rec[0], len0 = L.rec[1] - L.rec[0], len1 = L.rec[2] - L.rec[1];
    memcpy(v.b + r0, mainv.b + L.rec[1], len1);
    memcpy(v.b + r0 + len1, mainv.b + r0, len0);
    path = check_case("TACO_HEADER listed second in the directory", &v,
                      (want){TACOZ_OK, TACOZ_OK, TACOZ_VALID, TACOZ_INVALID_REORDERED, TACOZ_INVALID_REORDERED});
    taco_meta_array_t other = {1, {{1, 2}}};
    EXPECT(tacozip_update_header(path, &other), TACOZ_INVALID_REORDERED);
    buf after = load(path);
    EXPECT_TRUE(after.n == v.n && memcmp(after.b, v.b, v.n) == 0); /* left unchanged */
    drop(&after);
    drop(&v);
}

/* ---- unsupported members ---------------------------------------------------- */

static void test_unsupported(void) {
    layout L = scan(&mainv);
    buf v = copy_buf(&mainv);
    s16(&v, L.rec[1] + 10, 8);
    s16(&v, A_LFH + 8, 8);
    const char *path = check_case("a.txt compressed (method 8)", &v,
                                  (want){TACOZ_OK, TACOZ_OK, TACOZ_VALID, TACOZ_VALID, TACOZ_ERR_UNSUPPORTED});
    check_read(path, 1, TACOZ_ERR_UNSUPPORTED, TACOZ_ERR_UNSUPPORTED);
    check_extract_nothing(path, NULL, 0, TACOZ_ERR_UNSUPPORTED);
    drop(&v);

    v = copy_buf(&mainv);
    s16(&v, L.rec[1] + 8, 1);
    path = check_case("a.txt encrypted (flag bit 0)", &v,
                      (want){TACOZ_OK, TACOZ_OK, TACOZ_VALID, TACOZ_VALID, TACOZ_ERR_UNSUPPORTED});
    check_read(path, 1, TACOZ_ERR_UNSUPPORTED, TACOZ_ERR_UNSUPPORTED);
    drop(&v);
}

/* ---- ZIP64 extra fields -------------------------------------------------------- */

static void test_zip64_extra(void) {
    layout L = scan(&mainv);
    buf v = copy_buf(&mainv);
    s32(&v, L.rec[1] + 20, 0xFFFFFFFFu);
    check_struct("size 0xFFFFFFFF without a ZIP64 extra field", &v, TACOZ_INVALID_ZIP64);
    drop(&v);

    v = copy_buf(&mainv);
    static const unsigned char x4[] = {1, 0, 4, 0, 33, 0, 0, 0};
    s32(&v, L.rec[3] + 24, 0xFFFFFFFFu);
    add_cd_extra(&v, 3, x4, sizeof x4);
    check_struct("ZIP64 extra field too short for the size", &v, TACOZ_INVALID_ZIP64);
    drop(&v);

    v = copy_buf(&mainv);
    static const unsigned char x8[] = {1, 0, 8, 0, 33, 0, 0, 0, 0, 0, 0, 0};
    s32(&v, L.rec[3] + 24, 0xFFFFFFFFu);
    s32(&v, L.rec[3] + 42, 0xFFFFFFFFu);
    add_cd_extra(&v, 3, x8, sizeof x8);
    check_struct("ZIP64 extra field lacks the local header offset", &v, TACOZ_INVALID_ZIP64);
    drop(&v);

    v = copy_buf(&mainv);
    static const unsigned char bad[] = {0x34, 0x12, 100, 0, 1, 2, 3, 4};
    add_cd_extra(&v, 3, bad, sizeof bad);
    check_struct("extra field longer than the extra area", &v, TACOZ_INVALID_CD_ENTRY);
    drop(&v);

    /* Controls: correct ZIP64 extra fields are honoured. */
    v = copy_buf(&mainv);
    static const unsigned char x16[] = {1, 0, 16, 0, 33, 0, 0, 0, 0, 0, 0, 0, 33, 0, 0, 0, 0, 0, 0, 0};
    s32(&v, L.rec[3] + 20, 0xFFFFFFFFu);
    s32(&v, L.rec[3] + 24, 0xFFFFFFFFu);
    add_cd_extra(&v, 3, x16, sizeof x16);
    const char *path = check_case("ZIP64 extra field with both sizes (control)", &v, (want){0, 0, 0, 0, 0});
    tacozip_archive *ar = must_open(path);
    if (ar) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        EXPECT(tacozip_member_at(ar, 3, &m), TACOZ_OK);
        EXPECT(m.size, 33);
        EXPECT(m.data_offset, C_DATA);
        tacozip_close(ar);
    }
    drop(&v);

    v = copy_buf(&mainv);
    static const unsigned char xo[] = {1, 0, 8, 0, C_LFH & 0xFF, C_LFH >> 8, 0, 0, 0, 0, 0, 0};
    s32(&v, L.rec[3] + 42, 0xFFFFFFFFu);
    add_cd_extra(&v, 3, xo, sizeof xo);
    check_case("ZIP64 extra field with the offset (control)", &v, (want){0, 0, 0, 0, 0});
    drop(&v);
}

/* ---- ZIP64 end records ----------------------------------------------------------- */

enum { Z64 = EOCD, LOC = EOCD + 56, Z_EOCD = EOCD + 76 };

/* The main archive with a hand-made ZIP64 end record and locator; the
 * 32-bit end record defers to them (0xFFFF / 0xFFFFFFFF). */
static buf make_zip64(void) {
    buf v = copy_buf(&mainv);
    unsigned char z[76];
    memset(z, 0, sizeof z);
    buf zb = {z, sizeof z};
    s32(&zb, 0, 0x06064b50u);
    s64(&zb, 4, 44);
    s16(&zb, 12, 45);
    s16(&zb, 14, 45);
    s64(&zb, 24, 4);
    s64(&zb, 32, 4);
    s64(&zb, 40, CD_SIZE);
    s64(&zb, 48, CD_OFF);
    s32(&zb, 56, 0x07064b50u);
    s64(&zb, 56 + 8, Z64);
    s32(&zb, 56 + 16, 1);
    ins(&v, EOCD, z, sizeof z);
    s16(&v, Z_EOCD + 8, 0xFFFF);
    s16(&v, Z_EOCD + 10, 0xFFFF);
    s32(&v, Z_EOCD + 12, 0xFFFFFFFFu);
    s32(&v, Z_EOCD + 16, 0xFFFFFFFFu);
    return v;
}

static void test_zip64_end(void) {
    buf v = make_zip64();
    const char *path = check_case("ZIP64 end record and locator (control)", &v, (want){0, 0, 0, 0, 0});
    EXPECT(tacozip_detect_format(path), TACOZIP_FORMAT_ZIP64);
    tacozip_archive *ar = must_open(path);
    if (ar) {
        EXPECT(tacozip_archive_format(ar), TACOZIP_FORMAT_ZIP64);
        EXPECT(tacozip_count(ar), 4);
        tacozip_close(ar);
    }
    drop(&v);

    struct {
        const char *label;
        size_t off;
        int width;
        uint64_t value;
        int code;
    } t[] = {
        {"bad ZIP64 end record signature", Z64 + 1, 1, 'Q', TACOZ_INVALID_ZIP64},
        {"bad ZIP64 locator signature", LOC + 2, 1, 9, TACOZ_INVALID_ZIP64},
        {"ZIP64 locator points past itself", LOC + 8, 8, LOC + 4, TACOZ_INVALID_ZIP64},
        {"ZIP64 locator points at the local header at 0", LOC + 8, 8, 0, TACOZ_INVALID_ZIP64},
        {"ZIP64 locator points 8 bytes early", LOC + 8, 8, Z64 - 8, TACOZ_INVALID_ZIP64},
        {"ZIP64 end record size field too small", Z64 + 4, 8, 10, TACOZ_INVALID_ZIP64},
        {"ZIP64 entries on disk != total", Z64 + 24, 8, 3, TACOZ_INVALID_COUNT},
        {"ZIP64 entry count 2^33", Z64 + 24, 16, (uint64_t)1 << 33, TACOZ_INVALID_COUNT},
        {"ZIP64 entry count too small", Z64 + 24, 16, 3, TACOZ_INVALID_COUNT},
        {"ZIP64 directory offset past the end", Z64 + 48, 8, (uint64_t)1 << 40, TACOZ_INVALID_CD_OFFSET},
        {"ZIP64 directory size runs into the ZIP64 record", Z64 + 40, 8, CD_SIZE + 1, TACOZ_INVALID_CD_OFFSET},
        {"ZIP64 end record on disk 1", Z64 + 16, 4, 1, TACOZ_ERR_SPLIT},
        {"ZIP64 locator says 2 disks", LOC + 16, 4, 2, TACOZ_ERR_SPLIT},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        v = make_zip64();
        if (t[i].width == 1) v.b[t[i].off] = (unsigned char)t[i].value;
        else if (t[i].width == 4) s32(&v, t[i].off, (uint32_t)t[i].value);
        else if (t[i].width == 8) s64(&v, t[i].off, t[i].value);
        else { /* both counts */
            s64(&v, t[i].off, t[i].value);
            s64(&v, t[i].off + 8, t[i].value);
        }
        check_struct(t[i].label, &v, t[i].code);
        drop(&v);
    }

    /* Truncations around the ZIP64 records: the end record is gone. */
    struct {
        const char *label;
        size_t len;
    } tr[] = {
        {"ZIP64: truncated just before the ZIP64 end record", Z64},
        {"ZIP64: truncated inside the ZIP64 end record", Z64 + 30},
        {"ZIP64: truncated just before the locator", LOC},
        {"ZIP64: truncated inside the locator", LOC + 10},
        {"ZIP64: truncated inside the end record", Z_EOCD + 12},
    };
    for (size_t i = 0; i < sizeof tr / sizeof tr[0]; i++) {
        v = make_zip64();
        cut(&v, tr[i].len);
        check_struct(tr[i].label, &v, TACOZ_INVALID_NO_EOCD);
        drop(&v);
    }

    /* The ZIP64 record cut short but the locator and end record kept. */
    v = make_zip64();
    del(&v, Z64 + 30, 26);
    check_struct("ZIP64 end record cut to 30 bytes", &v, TACOZ_INVALID_ZIP64);
    drop(&v);
    /* ZIP64 record removed entirely, locator kept. */
    v = make_zip64();
    del(&v, Z64, 56);
    check_struct("ZIP64 end record removed, locator kept", &v, TACOZ_INVALID_ZIP64);
    drop(&v);
    /* Locator removed: the end record's 0xFFFFFFFF markers lead nowhere. */
    v = make_zip64();
    del(&v, LOC, 20);
    check_struct("ZIP64 locator removed", &v, TACOZ_INVALID_ZIP64);
    drop(&v);
}

/* ---- hostile names and planted links ----------------------------------------- */

/* Extract the names archive with member "from" renamed to "to" (same
 * length): open and validation accept it, extraction refuses it with
 * TACOZ_ERR_UNSAFE_PATH and writes nothing at all. */
static void check_hostile(const char *from, const char *to) {
    static char label[128];
    snprintf(label, sizeof label, "hostile name \"%s\"", to);
    buf v = copy_buf(&namesv);
    rename_member(&v, from, to);
    const char *path = check_case(label, &v, (want){0, 0, 0, 0, 0});
    struct stat st;
    int abs_existed = lstat("/abs", &st) == 0;

    check_extract_nothing(path, NULL, 0, TACOZ_ERR_UNSAFE_PATH);
    const char *two[] = {"safe.txt", to};
    check_extract_nothing(path, two, 2, TACOZ_ERR_UNSAFE_PATH);
    const char *one[] = {to};
    check_extract_nothing(path, one, 1, TACOZ_ERR_UNSAFE_PATH);
    /* Destination not yet created: it must stay that way. */
    tacozip_archive *ar = must_open(path);
    if (ar) {
        sandbox s;
        sandbox_new(&s);
        char *before = tree(s.root), dest[700];
        snprintf(dest, sizeof dest, "%s/new/deeper", s.outside);
        EXPECT(tacozip_extract(ar, dest, NULL, 0, TACOZIP_EXTRACT_OVERWRITE, NULL, NULL, NULL),
               TACOZ_ERR_UNSAFE_PATH);
        char *after = tree(s.root);
        EXPECT_TRUE(strcmp(before, after) == 0);
        free(before);
        free(after);
        tacozip_close(ar);
    }
    if (!abs_existed) EXPECT_TRUE(lstat("/abs", &st) != 0);
    drop(&v);
}

static void test_names(void) {
    /* Control: the unpatched names archive extracts. */
    cur = "names archive (control)";
    const char *path = check_case("names archive (control)", &namesv, (want){0, 0, 0, 0, 0});
    tacozip_archive *ar = must_open(path);
    if (ar) {
        sandbox s;
        sandbox_new(&s);
        EXPECT(tacozip_extract(ar, s.dest, NULL, 0, 0, NULL, NULL, NULL), TACOZ_OK);
        char *t = tree(s.dest);
        EXPECT_TRUE(strstr(t, "./lnk/file ") != NULL && strstr(t, "./abcdefghi ") != NULL);
        free(t);
        tacozip_close(ar);
    }

    check_hostile("abcd", "../x");
    check_hostile("abcd", "/abs");
    check_hostile("abcdefghi", "a/../../b");
    check_hostile("abcd", "C:\\x");
    check_hostile("abc", "a\\b");
    check_hostile("abcd", "./ab");
    check_hostile("abcd", "..//");
    check_hostile("abcdefghi", "abc//defg");

    /* Empty name: the name bytes become the record's comment. */
    layout L = scan(&mainv);
    buf v = copy_buf(&mainv);
    s16(&v, L.rec[2] + 28, 0);
    s16(&v, L.rec[2] + 32, 5);
    check_struct("empty member name", &v, TACOZ_INVALID_NAME);
    drop(&v);

    v = copy_buf(&mainv);
    v.b[L.rec[2] + 46 + 1] = 0;
    check_struct("member name containing NUL", &v, TACOZ_INVALID_NAME);
    drop(&v);

    v = copy_buf(&mainv);
    rename_member(&v, "b.bin", "a.txt");
    check_struct("duplicate member names", &v, TACOZ_INVALID_NAME);
    drop(&v);

    /* A symbolic link planted in the destination, pointing outside: the
     * member "lnk/file" must not be written through it, and because the
     * check comes before any write, nothing else is written either. */
    cur = "symlink planted in the destination";
    ncases++;
    path = save(&namesv);
    ar = must_open(path);
    if (ar) {
        sandbox s;
        sandbox_new(&s);
        char link[700];
        snprintf(link, sizeof link, "%s/lnk", s.dest);
        if (symlink(s.outside, link) != 0) die("symlink");
        char *before = tree(s.root);
        EXPECT(tacozip_extract(ar, s.dest, NULL, 0, TACOZIP_EXTRACT_OVERWRITE, NULL, NULL, NULL),
               TACOZ_ERR_UNSAFE_PATH);
        const char *one[] = {"lnk/file"};
        EXPECT(tacozip_extract(ar, s.dest, one, 1, 0, NULL, NULL, NULL), TACOZ_ERR_UNSAFE_PATH);
        char *after = tree(s.root);
        EXPECT_TRUE(strcmp(before, after) == 0);
        if (strcmp(before, after) != 0) fprintf(stderr, "    before:\n%s    after:\n%s", before, after);
        free(before);
        free(after);
        tacozip_close(ar);
    }

    /* The same link reached by a directory entry "lnk/". */
    v = copy_buf(&namesv);
    rename_member(&v, "abcd", "lnk/");
    cur = "directory entry through a planted symlink";
    ncases++;
    path = save(&v);
    ar = must_open(path);
    if (ar) {
        sandbox s;
        sandbox_new(&s);
        char link[700];
        snprintf(link, sizeof link, "%s/lnk", s.dest);
        if (symlink(s.outside, link) != 0) die("symlink");
        char *before = tree(s.root);
        const char *one[] = {"lnk/"};
        EXPECT(tacozip_extract(ar, s.dest, one, 1, 0, NULL, NULL, NULL), TACOZ_ERR_UNSAFE_PATH);
        char *after = tree(s.root);
        EXPECT_TRUE(strcmp(before, after) == 0);
        free(before);
        free(after);
        tacozip_close(ar);
    }
    drop(&v);

    /* A link planted where a file goes: it is never written through.
     * Without OVERWRITE the name is taken (TACOZ_ERR_EXISTS); with it the
     * link itself is replaced and its target keeps its bytes. */
    cur = "symlink planted at a member's own name";
    ncases++;
    path = save(&namesv);
    ar = must_open(path);
    if (ar) {
        sandbox s;
        sandbox_new(&s);
        char target[700], link[700];
        snprintf(target, sizeof target, "%s/target", s.outside);
        snprintf(link, sizeof link, "%s/abcd", s.dest);
        write_file(target, "orig", 4);
        if (symlink(target, link) != 0) die("symlink");
        const char *one[] = {"abcd"};
        EXPECT(tacozip_extract(ar, s.dest, one, 1, 0, NULL, NULL, NULL), TACOZ_ERR_EXISTS);
        EXPECT(tacozip_extract(ar, s.dest, one, 1, TACOZIP_EXTRACT_OVERWRITE, NULL, NULL, NULL), TACOZ_OK);
        buf t = load(target);
        EXPECT_TRUE(t.n == 4 && memcmp(t.b, "orig", 4) == 0);
        drop(&t);
        struct stat st;
        EXPECT(lstat(link, &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode) && st.st_size == 20);
        tacozip_close(ar);
    }
}

/* ---- cleanup ---------------------------------------------------------------- */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/tacozip-malformed-XXXXXX");
    if (!mkdtemp(tmp)) die("mkdtemp");
    make_archives();
    test_control();
    test_truncation();
    test_signatures();
    test_directory();
    test_overlap();
    test_local_headers();
    test_crc();
    test_header();
    test_unsupported();
    test_zip64_extra();
    test_zip64_end();
    test_names();
    free(mainv.b);
    free(namesv.b);
    printf("%d malformed or control archives checked\n", ncases);
    CHECK(ncases >= 35);
    int rc = check_summary();
    if (rc == 0 && !getenv("TACOZIP_KEEP_TMP")) remove_tree(tmp);
    else fprintf(stderr, "files kept in %s\n", tmp);
    return rc;
}
