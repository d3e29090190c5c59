/* tacozip - command-line tool for TACO archives.  A thin layer over the
 * public API in tacozip.h: argument parsing, directory walking, printing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tacozip.h"

#define EXIT_USAGE 2

static const char *prog = "tacozip";

static void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    va_end(ap);
    exit(EXIT_USAGE);
}

static int fail(int code, const tacozip_error *err, const char *what) {
    if (err && err->message[0] && !strncmp(err->message, what, strlen(what))) /* message names it already */
        fprintf(stderr, "%s: %s (%s)\n", prog, err->message, tacozip_strerror(code));
    else if (err && err->message[0])
        fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, err->message, tacozip_strerror(code));
    else
        fprintf(stderr, "%s: %s: %s\n", prog, what, tacozip_strerror(code));
    return 1;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* A path or URL as shown in messages: user:password@ and query strings
 * (presigned signatures) are removed from URLs. */
static const char *shown(const char *path) {
    static char buf[1024];
    tacozip_display_name(path, buf, sizeof buf);
    return buf;
}

/* ---- help texts -------------------------------------------------------- */

static const char *HELP_MAIN =
    "Usage: tacozip COMMAND [OPTIONS] ...\n"
    "\n"
    "Write, read and check TACO archives: STORE-only ZIP files whose first 157\n"
    "bytes (TACO_HEADER) hold up to 7 (offset, length) byte ranges.\n"
    "\n"
    "Commands:\n"
    "  create OUT FILES...     write a new archive (directories are added recursively)\n"
    "  append ARCHIVE FILES... add members without rewriting existing data\n"
    "  header ARCHIVE          print the header entries\n"
    "  update ARCHIVE -e O:L   replace the header entries in place\n"
    "  ls ARCHIVE              list members: data offset, size, CRC-32, name\n"
    "  cat ARCHIVE MEMBER      write a member (or a byte range of it) to stdout\n"
    "  extract ARCHIVE         extract members safely into a directory\n"
    "  span ARCHIVE MEMBERS... byte range covering members (for header entries)\n"
    "  validate ARCHIVE        check structure (quick, normal or deep)\n"
    "  version                 print the version\n"
    "\n"
    "ARCHIVE may be a local path or an http://, https:// or s3://bucket/key URL for\n"
    "every command that reads (header, ls, cat, extract, span, validate); see\n"
    "docs/remote.md for S3 settings.  ls, cat, extract and span also take\n"
    "--index-first (read the first 16 KiB first: one request for archives made\n"
    "with --index) and --stats (print the HTTP requests and bytes to stderr).\n"
    "\n"
    "Run 'tacozip COMMAND --help' for the options of a command.\n"
    "Exit status: 0 success, 1 failure (or invalid archive), 2 usage error.\n";

static const char *HELP_CREATE =
    "Usage: tacozip create OUT [OPTIONS] FILE|DIR [--as NAME] ...\n"
    "\n"
    "Write a new TACO archive OUT: TACO_HEADER first, then each FILE STORED in the\n"
    "order given.  A FILE is stored under its base name, or under NAME when\n"
    "followed by '--as NAME'.  A DIR is added recursively, depth first, each\n"
    "directory's entries in byte order of their names, with names relative to\n"
    "the DIR's parent ('data/a/b.bin').  The order is the same on every run.\n"
    "The write is atomic: a temporary file beside OUT is fsynced and renamed;\n"
    "on failure OUT is left as it was.\n"
    "\n"
    "Options:\n"
    "  -e, --entry OFFSET:LENGTH  a header entry (repeat, at most 7; default one 0:0)\n"
    "  -T, --files-from LIST      read 'SOURCE' or 'SOURCE<TAB>NAME' lines from LIST ('-': stdin)\n"
    "      --as NAME              archive name for the preceding FILE\n"
    "      --align N              align member data to N bytes (power of two <= 32768)\n"
    "      --mtime SECONDS        timestamp for all members (default: file times;\n"
    "                             SOURCE_DATE_EPOCH is honoured too)\n"
    "      --no-fsync             skip fsync (faster, not durable)\n"
    "      --index                embed a member index (TACO_INDEX) after the header, so\n"
    "                             that one read of the first 16 KiB lists the archive\n"
    "                             (remote readers: --index-first); changes the layout\n"
    "      --progress             show a progress bar (default: when stderr is a terminal\n"
    "                             and the work is large); --no-progress hides it\n"
    "  -h, --help                 this help\n"
    "\n"
    "Default layout: member i's data starts at 157 + sum over earlier members of\n"
    "(30 + name length + size), +20 for members of 4 GiB - 1 bytes or more.\n";

static const char *HELP_APPEND =
    "Usage: tacozip append ARCHIVE [OPTIONS] FILE|DIR [--as NAME] ...\n"
    "\n"
    "Add members to an existing archive.  Existing members are not moved or\n"
    "rewritten: new data goes where the central directory was, followed by a new\n"
    "directory.  On failure the archive is restored to its previous bytes.\n"
    "\n"
    "Options: -T/--files-from, --as, --align, --mtime, --no-fsync, --progress, as for create.\n";

static const char *HELP_HEADER =
    "Usage: tacozip header ARCHIVE [--json]\n"
    "\n"
    "Print the TACO header entries, one 'OFFSET LENGTH' line each (one 157-byte read).\n";

static const char *HELP_UPDATE =
    "Usage: tacozip update ARCHIVE -e OFFSET:LENGTH [-e ...]\n"
    "\n"
    "Replace the header entries in place.  Only the payload and the two CRCs of\n"
    "TACO_HEADER are written (O(1)).  A file that is not a TACO archive is refused\n"
    "and left unchanged.  With no -e, the header is set to zero entries.\n";

static const char *HELP_LS =
    "Usage: tacozip ls ARCHIVE [--json] [--verify-local]\n"
    "\n"
    "List every member: data offset, size, CRC-32 and name.  [offset, offset+size)\n"
    "is the exact byte range holding the member's bytes.\n"
    "  --verify-local  read every local header instead of deriving offsets\n";

static const char *HELP_CAT =
    "Usage: tacozip cat ARCHIVE MEMBER [--range A-B]\n"
    "\n"
    "Write a member to standard output.  --range A-B writes bytes A to B inclusive\n"
    "of the member (like HTTP Range); 'A-' goes to the end.  Put '--' before a\n"
    "MEMBER whose name starts with '-'.\n";

static const char *HELP_EXTRACT =
    "Usage: tacozip extract ARCHIVE [-C DIR] [--overwrite] [--skip-header] [MEMBER...]\n"
    "\n"
    "Extract all members, or those named, into DIR (default '.').  Each file's\n"
    "CRC-32 is checked.  Names that are absolute or contain '..' are refused, and\n"
    "nothing is ever written outside DIR (symbolic links are not followed).\n"
    "  -C DIR         destination directory (created if missing)\n"
    "  --overwrite    replace existing files (default: refuse)\n"
    "  --skip-header  do not write the TACO_HEADER member\n"
    "  --progress     show a progress bar\n";

static const char *HELP_SPAN =
    "Usage: tacozip span ARCHIVE [--data-only] [--prefix P] [--json] [MEMBER...]\n"
    "\n"
    "Print 'OFFSET:LENGTH' of the smallest byte range covering the members named\n"
    "and/or all members whose name starts with P, local headers included (so the\n"
    "range alone suffices to recover them).  Use the output with -e.\n"
    "  --data-only  start at the first data byte instead of the local header\n"
    "  --json       print {\"offset\": O, \"length\": L, \"members\": N}\n";

static const char *HELP_VALIDATE =
    "Usage: tacozip validate ARCHIVE [--level quick|normal|deep] [--json]\n"
    "\n"
    "  quick   the 157 header bytes\n"
    "  normal  + end records and central directory, TACO_HEADER first at 0 (default)\n"
    "  deep    + header CRCs, every local header, every member's CRC-32, no overlaps\n"
    "Exit status 0 if valid, 1 if not (the code and reason are printed).\n";

static int want_help(int argc, char **argv, const char *text) {
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(text, stdout);
            return 1;
        }
    }
    return 0;
}

/* ---- JSON -------------------------------------------------------------- */

static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* ---- progress bar ------------------------------------------------------ */

typedef struct {
    int on;
    double start;
    double last;
    const char *label;
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int progress_cb(void *user, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    progress_state *p = user;
    double t = now_s();
    int finished = files == nfiles && done == total;
    if (!finished && t - p->last < 0.1) return 0;
    p->last = t;
    double frac = total ? (double)done / (double)total : (nfiles ? (double)files / (double)nfiles : 1.0);
    int width = 30, fill = (int)(frac * width);
    double el = t - p->start, rate = el > 0 ? done / el / 1048576.0 : 0;
    fprintf(stderr, "\r%s [", p->label);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %5.1f%%  %" PRIu64 "/%" PRIu64 " files  %.0f MiB/s ", frac * 100, files, nfiles, rate);
    if (finished) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

/* ---- argument helpers -------------------------------------------------- */

static uint64_t parse_u64(const char *s, const char *what) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') die_usage("invalid %s '%s'", what, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) die_usage("invalid %s '%s'", what, s);
    return v;
}

static void parse_entry(const char *s, taco_meta_array_t *m) {
    const char *colon = strchr(s, ':');
    if (!colon) die_usage("entry '%s' is not OFFSET:LENGTH", s);
    if (m->count >= TACO_HEADER_MAX_ENTRIES) die_usage("at most %d entries fit in the header", TACO_HEADER_MAX_ENTRIES);
    char *off = strndup(s, (size_t)(colon - s));
    m->entries[m->count].offset = parse_u64(off, "entry offset");
    m->entries[m->count].length = parse_u64(colon + 1, "entry length");
    m->count++;
    free(off);
}

/* A growable list of (source, name) pairs. */
typedef struct {
    char **src, **name;
    size_t n, cap;
} file_list;

static void fl_add(file_list *l, char *src, char *name) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->src = realloc(l->src, l->cap * sizeof *l->src);
        l->name = realloc(l->name, l->cap * sizeof *l->name);
        if (!l->src || !l->name) {
            fprintf(stderr, "%s: out of memory\n", prog);
            exit(1);
        }
    }
    l->src[l->n] = src;
    l->name[l->n] = name;
    l->n++;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Add the regular files under "dir" (path) with names "prefix/...", sorted
 * byte-wise for a deterministic order. */
static int add_dir(file_list *l, const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) exit(1);
        }
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = NULL, *name = NULL;
        if (asprintf(&path, "%s/%s", dir, names[i]) < 0 || asprintf(&name, "%s/%s", prefix, names[i]) < 0) exit(1);
        struct stat st;
        if (lstat(path, &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            rc |= add_dir(l, path, name);
            free(path);
            free(name);
        } else if (S_ISREG(st.st_mode)) {
            fl_add(l, path, name);
        } else {
            fprintf(stderr, "%s: skipping %s (not a regular file or directory)\n", prog, path);
            free(path);
            free(name);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Add a FILE or DIR argument. */
static int add_path(file_list *l, const char *arg) {
    struct stat st;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, arg, strerror(errno));
        return 1;
    }
    if (S_ISDIR(st.st_mode)) {
        char *d = xstrdup(arg);
        size_t k = strlen(d);
        while (k > 1 && d[k - 1] == '/') d[--k] = '\0';
        const char *b = base_name(d);
        int rc = (!strcmp(b, ".") || !strcmp(b, "..") || !*b)
                     ? (fprintf(stderr, "%s: give directories by name, not '%s'\n", prog, arg), 1)
                     : add_dir(l, d, b);
        free(d);
        return rc;
    }
    fl_add(l, xstrdup(arg), xstrdup(base_name(arg)));
    return 0;
}

static int read_list(file_list *l, const char *listfile) {
    FILE *f = strcmp(listfile, "-") ? fopen(listfile, "r") : stdin;
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, listfile, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0) continue;
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            fl_add(l, xstrdup(line), xstrdup(tab + 1));
        } else {
            fl_add(l, xstrdup(line), xstrdup(base_name(line)));
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    return 0;
}

typedef struct {
    file_list files;
    taco_meta_array_t meta;
    tacozip_write_options opts;
    int progress; /* -1 auto, 0 off, 1 on */
} write_args;

static int parse_write_args(int argc, char **argv, int first, write_args *a, int allow_entries) {
    memset(a, 0, sizeof *a);
    a->progress = -1;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) a->opts.mtime = (int64_t)parse_u64(sde, "SOURCE_DATE_EPOCH");
    int rc = 0, end_opts = 0;
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (!end_opts && s[0] == '-' && s[1]) {
            if (!strcmp(s, "--")) end_opts = 1;
            else if (allow_entries && (!strcmp(s, "-e") || !strcmp(s, "--entry"))) {
                if (++i >= argc) die_usage("%s needs OFFSET:LENGTH", s);
                parse_entry(argv[i], &a->meta);
            } else if (!strcmp(s, "--as")) {
                if (++i >= argc) die_usage("--as needs a NAME");
                if (a->files.n == 0) die_usage("--as must follow a FILE");
                free(a->files.name[a->files.n - 1]);
                a->files.name[a->files.n - 1] = xstrdup(argv[i]);
            } else if (!strcmp(s, "-T") || !strcmp(s, "--files-from")) {
                if (++i >= argc) die_usage("%s needs a LIST file", s);
                rc |= read_list(&a->files, argv[i]);
            } else if (!strcmp(s, "--align")) {
                if (++i >= argc) die_usage("--align needs N");
                uint64_t v = parse_u64(argv[i], "alignment");
                if (v > 32768 || (v & (v - 1))) die_usage("--align must be a power of two <= 32768");
                a->opts.alignment = (uint32_t)v;
            } else if (!strcmp(s, "--mtime")) {
                if (++i >= argc) die_usage("--mtime needs SECONDS");
                a->opts.mtime = (int64_t)parse_u64(argv[i], "mtime");
            } else if (!strcmp(s, "--no-fsync")) a->opts.no_fsync = 1;
            else if (allow_entries && !strcmp(s, "--index")) a->opts.index = 1;
            else if (!strcmp(s, "--progress")) a->progress = 1;
            else if (!strcmp(s, "--no-progress")) a->progress = 0;
            else die_usage("unknown option '%s'", s);
        } else {
            rc |= add_path(&a->files, s);
        }
    }
    return rc;
}

static void setup_progress(write_args *a, progress_state *ps, const char *label) {
    /* only stat the inputs when a bar may be shown (20,000 stat() calls
     * are a measurable share of a small-file create) */
    if (a->progress == 0 || (a->progress == -1 && !isatty(2))) return;
    uint64_t total = 0;
    for (size_t i = 0; i < a->files.n; i++) {
        struct stat st;
        if (stat(a->files.src[i], &st) == 0) total += (uint64_t)st.st_size;
    }
    int on = a->progress == 1 ||
             (a->progress == -1 && isatty(2) && (total > (256u << 20) || a->files.n > 2000));
    if (!on) return;
    ps->on = 1;
    ps->start = ps->last = now_s();
    ps->label = label;
    a->opts.progress = progress_cb;
    a->opts.progress_user = ps;
}

static void free_files(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->src[i]), free(l->name[i]);
    free(l->src);
    free(l->name);
}

/* ---- commands ---------------------------------------------------------- */

static int cmd_create(int argc, char **argv) {
    if (want_help(argc, argv, HELP_CREATE)) return 0;
    if (argc < 3) die_usage("create needs OUT and FILES");
    const char *out = argv[2];
    write_args a;
    if (parse_write_args(argc, argv, 3, &a, 1)) {
        fprintf(stderr, "%s: nothing written\n", prog);
        free_files(&a.files);
        return 1;
    }
    if (a.meta.count == 0) a.meta.count = 1; /* default: one (0,0) entry, as the original */
    progress_state ps = {0};
    setup_progress(&a, &ps, "create");
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_create_ex(out, (const char *const *)a.files.src, (const char *const *)a.files.name, a.files.n,
                               &a.meta, &a.opts, &err);
    if (ps.on && rc) fputc('\n', stderr);
    free_files(&a.files);
    return rc ? fail(rc, &err, out) : 0;
}

static int cmd_append(int argc, char **argv) {
    if (want_help(argc, argv, HELP_APPEND)) return 0;
    if (argc < 4) die_usage("append needs ARCHIVE and FILES");
    const char *zip = argv[2];
    write_args a;
    if (parse_write_args(argc, argv, 3, &a, 0)) {
        fprintf(stderr, "%s: nothing written\n", prog);
        free_files(&a.files);
        return 1;
    }
    progress_state ps = {0};
    setup_progress(&a, &ps, "append");
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_append_ex(zip, (const char *const *)a.files.src, (const char *const *)a.files.name, a.files.n,
                               &a.opts, &err);
    free_files(&a.files);
    return rc ? fail(rc, &err, zip) : 0;
}

static int has_flag(int argc, char **argv, int first, const char *flag) {
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], flag)) return 1;
    return 0;
}

static void check_known(int argc, char **argv, int first, const char *const *known) {
    for (int i = first; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1]) continue;
        int ok = 0;
        for (const char *const *k = known; *k; k++) ok |= !strcmp(argv[i], *k);
        if (!ok) die_usage("unknown option '%s'", argv[i]);
    }
}

static int cmd_header(int argc, char **argv) {
    if (want_help(argc, argv, HELP_HEADER)) return 0;
    static const char *const known[] = {"--json", NULL};
    check_known(argc, argv, 2, known);
    if (argc < 3 || argv[2][0] == '-') die_usage("header needs ARCHIVE");
    taco_meta_array_t m;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_read_header_ex(argv[2], &m, &err);
    if (rc) return fail(rc, &err, shown(argv[2]));
    if (has_flag(argc, argv, 3, "--json")) {
        printf("{\"count\": %u, \"entries\": [", m.count);
        for (int i = 0; i < m.count; i++)
            printf("%s[%" PRIu64 ", %" PRIu64 "]", i ? ", " : "", m.entries[i].offset, m.entries[i].length);
        printf("]}\n");
    } else {
        for (int i = 0; i < m.count; i++) printf("%" PRIu64 " %" PRIu64 "\n", m.entries[i].offset, m.entries[i].length);
    }
    return 0;
}

static int cmd_update(int argc, char **argv) {
    if (want_help(argc, argv, HELP_UPDATE)) return 0;
    if (argc < 3 || argv[2][0] == '-') die_usage("update needs ARCHIVE");
    taco_meta_array_t m = {0};
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-e") || !strcmp(argv[i], "--entry")) {
            if (++i >= argc) die_usage("-e needs OFFSET:LENGTH");
            parse_entry(argv[i], &m);
        } else {
            die_usage("unexpected argument '%s'", argv[i]);
        }
    }
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_update_header_ex(argv[2], &m, &err);
    return rc ? fail(rc, &err, argv[2]) : 0;
}

/* Options every reading command takes: --index-first, --stats. */
static unsigned read_flags;
static int show_stats;

static int read_option(const char *arg) {
    if (!strcmp(arg, "--index-first")) return read_flags |= TACOZIP_OPEN_INDEX_FIRST, 1;
    if (!strcmp(arg, "--stats")) return show_stats = 1, 1;
    return 0;
}

static int open_archive(const char *path, unsigned flags, tacozip_archive **ar) {
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_open_ex(path, flags | read_flags, ar, &err);
    if (rc) fail(rc, &err, "cannot open archive");
    return rc;
}

/* Close, printing the request count of a remote archive with --stats. */
static void close_archive(tacozip_archive *ar) {
    uint64_t req, bytes;
    if (show_stats && ar && tacozip_remote_stats(ar, &req, &bytes) == TACOZ_OK)
        fprintf(stderr, "%s: %" PRIu64 " requests, %" PRIu64 " bytes received\n", prog, req, bytes);
    tacozip_close(ar);
}

static int cmd_ls(int argc, char **argv) {
    if (want_help(argc, argv, HELP_LS)) return 0;
    static const char *const known[] = {"--json", "--verify-local", "--index-first", "--stats", NULL};
    check_known(argc, argv, 2, known);
    if (argc < 3 || argv[2][0] == '-') die_usage("ls needs ARCHIVE");
    int json = has_flag(argc, argv, 3, "--json");
    for (int i = 3; i < argc; i++) read_option(argv[i]);
    tacozip_archive *ar;
    if (open_archive(argv[2], has_flag(argc, argv, 3, "--verify-local") ? TACOZIP_OPEN_VERIFY_LOCAL : 0, &ar)) return 1;
    size_t n = tacozip_count(ar);
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    if (json) printf("[");
    for (size_t i = 0; i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, i, &m);
        if (json) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            json_str(stdout, m.name, m.name_len);
            printf(", \"offset\": %" PRIu64 ", \"size\": %" PRIu64 ", \"crc32\": \"%08x\", \"header_offset\": %" PRIu64
                   ", \"method\": %u}",
                   m.data_offset, m.size, m.crc32, m.header_offset, m.method);
        } else {
            printf("%12" PRIu64 " %12" PRIu64 " %08x %s\n", m.data_offset, m.size, m.crc32, m.name);
        }
    }
    if (json) printf("\n]\n");
    close_archive(ar);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_cat(int argc, char **argv) {
    if (want_help(argc, argv, HELP_CAT)) return 0;
    const char *zip = NULL, *member = NULL, *range = NULL;
    int end_opts = 0;
    for (int i = 2; i < argc; i++) {
        if (!end_opts && !strcmp(argv[i], "--")) end_opts = 1;
        else if (!end_opts && !strcmp(argv[i], "--range")) {
            if (++i >= argc) die_usage("--range needs A-B");
            range = argv[i];
        } else if (!end_opts && read_option(argv[i])) {
        } else if (!end_opts && argv[i][0] == '-' && argv[i][1]) die_usage("unknown option '%s'", argv[i]);
        else if (!zip) zip = argv[i];
        else if (!member) member = argv[i];
        else die_usage("unexpected argument '%s'", argv[i]);
    }
    if (!zip || !member) die_usage("cat needs ARCHIVE and MEMBER");
    tacozip_archive *ar;
    if (open_archive(zip, 0, &ar)) return 1;
    size_t idx;
    if (tacozip_find(ar, member, (size_t)-1, &idx) != TACOZ_OK) {
        fprintf(stderr, "%s: %s: no member named '%s'\n", prog, shown(zip), member);
        close_archive(ar);
        return 1;
    }
    tacozip_member m = TACOZIP_MEMBER_INIT;
    tacozip_member_at(ar, idx, &m);
    uint64_t a = 0, b = m.size ? m.size - 1 : 0;
    if (range) {
        const char *dash = strchr(range, '-');
        if (!dash || dash == range) die_usage("--range must be A-B or A-");
        char *as = strndup(range, (size_t)(dash - range));
        a = parse_u64(as, "range start");
        free(as);
        if (dash[1]) {
            b = parse_u64(dash + 1, "range end");
            if (b < a) die_usage("range end before its start");
        }
        if (a >= m.size) {
            fprintf(stderr, "%s: range starts at %" PRIu64 ", past the member's %" PRIu64 " bytes\n", prog, a, m.size);
            close_archive(ar);
            return 1;
        }
        if (b >= m.size) b = m.size - 1;
    }
    int rc = TACOZ_OK;
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    if (m.size) {
        size_t cap = 1 << 20;
        unsigned char *buf = xmalloc(cap);
        for (uint64_t off = a; off <= b && rc == TACOZ_OK;) {
            size_t want = b - off + 1 < cap ? (size_t)(b - off + 1) : cap, got = 0;
            rc = tacozip_read_member_ex(ar, idx, off, buf, want, &got, &rerr);
            if (rc == TACOZ_OK && fwrite(buf, 1, got, stdout) != got) {
                fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno));
                free(buf);
                close_archive(ar);
                return 1;
            }
            off += got;
            if (got == 0) break;
        }
        free(buf);
    }
    if (rc) fail(rc, &rerr, shown(zip));
    close_archive(ar);
    return rc || fflush(stdout) ? 1 : 0;
}

static int cmd_extract(int argc, char **argv) {
    if (want_help(argc, argv, HELP_EXTRACT)) return 0;
    const char *zip = NULL, *dest = ".";
    unsigned flags = 0;
    int progress = -1;
    char **names = xmalloc((size_t)argc * sizeof *names);
    size_t n = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-C")) {
            if (++i >= argc) die_usage("-C needs DIR");
            dest = argv[i];
        } else if (read_option(argv[i])) {
        } else if (!strcmp(argv[i], "--overwrite")) flags |= TACOZIP_EXTRACT_OVERWRITE;
        else if (!strcmp(argv[i], "--skip-header")) flags |= TACOZIP_EXTRACT_SKIP_HEADER;
        else if (!strcmp(argv[i], "--progress")) progress = 1;
        else if (!strcmp(argv[i], "--no-progress")) progress = 0;
        else if (argv[i][0] == '-' && argv[i][1]) die_usage("unknown option '%s'", argv[i]);
        else if (!zip) zip = argv[i];
        else names[n++] = argv[i];
    }
    if (!zip) die_usage("extract needs ARCHIVE");
    tacozip_archive *ar;
    if (open_archive(zip, 0, &ar)) {
        free(names);
        return 1;
    }
    progress_state ps = {0};
    if (progress == 1 || (progress == -1 && isatty(2) && tacozip_archive_size(ar) > (256u << 20))) {
        ps.on = 1;
        ps.start = ps.last = now_s();
        ps.label = "extract";
    }
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_extract(ar, dest, n ? (const char *const *)names : NULL, n, flags, ps.on ? progress_cb : NULL,
                             &ps, &err);
    close_archive(ar);
    free(names);
    return rc ? fail(rc, &err, shown(zip)) : 0;
}

static int cmd_span(int argc, char **argv) {
    if (want_help(argc, argv, HELP_SPAN)) return 0;
    const char *zip = NULL, *prefix = NULL;
    unsigned flags = 0;
    int json = 0;
    char **names = xmalloc((size_t)argc * sizeof *names);
    size_t n = 0;
    for (int i = 2; i < argc; i++) {
        if (read_option(argv[i])) continue;
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--data-only")) flags |= TACOZIP_SPAN_DATA_ONLY;
        else if (!strcmp(argv[i], "--prefix")) {
            if (++i >= argc) die_usage("--prefix needs P");
            prefix = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) die_usage("unknown option '%s'", argv[i]);
        else if (!zip) zip = argv[i];
        else names[n++] = argv[i];
    }
    if (!zip || (!n && !prefix)) die_usage("span needs ARCHIVE and MEMBERS or --prefix");
    tacozip_archive *ar;
    if (open_archive(zip, 0, &ar)) {
        free(names);
        return 1;
    }
    size_t count = tacozip_count(ar), k = 0;
    size_t *idx = xmalloc((n + count) * sizeof *idx);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (tacozip_find(ar, names[i], (size_t)-1, &idx[k]) != TACOZ_OK) {
            fprintf(stderr, "%s: %s: no member named '%s'\n", prog, shown(zip), names[i]);
            rc = 1;
        } else k++;
    }
    if (prefix) {
        size_t plen = strlen(prefix);
        for (size_t i = 0; i < count; i++) {
            tacozip_member m = TACOZIP_MEMBER_INIT;
            tacozip_member_at(ar, i, &m);
            if (m.name_len >= plen && !memcmp(m.name, prefix, plen)) idx[k++] = i;
        }
    }
    if (!rc && k == 0) {
        fprintf(stderr, "%s: %s: no member matches\n", prog, shown(zip));
        rc = 1;
    }
    if (!rc) {
        uint64_t off, len;
        tacozip_span(ar, idx, k, flags, &off, &len);
        if (json)
            printf("{\"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"members\": %zu}\n", off, len, k);
        else
            printf("%" PRIu64 ":%" PRIu64 "\n", off, len);
    }
    free(idx);
    free(names);
    close_archive(ar);
    return rc;
}

static int cmd_validate(int argc, char **argv) {
    if (want_help(argc, argv, HELP_VALIDATE)) return 0;
    const char *zip = NULL;
    int level = TACOZIP_VALIDATE_NORMAL, json = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--level")) {
            if (++i >= argc) die_usage("--level needs quick, normal or deep");
            if (!strcmp(argv[i], "quick")) level = TACOZIP_VALIDATE_QUICK;
            else if (!strcmp(argv[i], "normal")) level = TACOZIP_VALIDATE_NORMAL;
            else if (!strcmp(argv[i], "deep")) level = TACOZIP_VALIDATE_DEEP;
            else die_usage("unknown level '%s' (quick, normal or deep)", argv[i]);
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) die_usage("unknown option '%s'", argv[i]);
        else if (!zip) zip = argv[i];
        else die_usage("unexpected argument '%s'", argv[i]);
    }
    if (!zip) die_usage("validate needs ARCHIVE");
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_validate_ex(zip, level, &err);
    static const char *const lv[] = {"quick", "normal", "deep"};
    if (rc == TACOZ_ERR_IO && !json) return fail(rc, &err, shown(zip)); /* unreadable: an error, not a verdict */
    if (json) {
        printf("{\"valid\": %s, \"code\": %d, \"level\": \"%s\", \"message\": ", rc ? "false" : "true", rc, lv[level]);
        const char *msg = rc ? (err.message[0] ? err.message : tacozip_strerror(rc)) : "valid";
        json_str(stdout, msg, strlen(msg));
        printf("}\n");
    } else if (rc == 0) {
        printf("%s: valid (%s)\n", shown(zip), lv[level]);
    } else {
        printf("%s: INVALID (code %d: %s)%s%s\n", shown(zip), rc, tacozip_strerror(rc), err.message[0] ? "\n  " : "",
               err.message);
    }
    return rc ? 1 : 0;
}

#ifdef TACOZIP_CLI_AS_FUNCTION
int tacozip_cli_main(int argc, char **argv); /* the Python package's script */
int tacozip_cli_main(int argc, char **argv) {
#else
int main(int argc, char **argv) {
#endif
    if (argc < 2) {
        fputs(HELP_MAIN, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(HELP_MAIN, stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("tacozip %s\n", tacozip_get_version());
        return 0;
    }
    if (!strcmp(cmd, "create")) return cmd_create(argc, argv);
    if (!strcmp(cmd, "append")) return cmd_append(argc, argv);
    if (!strcmp(cmd, "header")) return cmd_header(argc, argv);
    if (!strcmp(cmd, "update")) return cmd_update(argc, argv);
    if (!strcmp(cmd, "ls") || !strcmp(cmd, "list")) return cmd_ls(argc, argv);
    if (!strcmp(cmd, "cat")) return cmd_cat(argc, argv);
    if (!strcmp(cmd, "extract")) return cmd_extract(argc, argv);
    if (!strcmp(cmd, "span")) return cmd_span(argc, argv);
    if (!strcmp(cmd, "validate")) return cmd_validate(argc, argv);
    die_usage("unknown command '%s'", cmd);
    return EXIT_USAGE;
}
