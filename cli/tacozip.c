/* tacozip - command-line tool for TACO archives.  A thin layer over the
 * public API in tacozip.h: argument parsing, directory walking, printing.
 *
 * Structure:
 *   - one table-driven argument parser (cmd_spec / opt_spec) used by every
 *     command: options and positionals in any order, "--" ends options,
 *     "--opt=value" and "--opt value", "-h"/"--help" anywhere;
 *   - one context (cli_ctx) per run holding what used to be static state
 *     (read flags, --stats, the remote settings from the environment);
 *   - one place that opens or reads an archive by path or URL
 *     (open_archive, read_header, validate_archive), which applies the
 *     remote settings (cli/remote_env.c);
 *   - no exit() anywhere but main: helpers return a status up to main.
 * Exit status: 0 success, 1 failure (or invalid archive), 2 usage error. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tacozip.h"
#include "remote_env.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char *const prog = "tacozip";

/* ---- help texts -------------------------------------------------------- */

static const char *const HELP_MAIN =
    "Usage: tacozip COMMAND [OPTIONS] ...\n"
    "\n"
    "Write, read and check TACO archives: STORE-only ZIP files whose first 157\n"
    "bytes (TACO_HEADER) hold up to 7 (offset, length) byte ranges.\n"
    "\n"
    "Commands:\n"
    "  create OUT FILES...     write a new archive (directories are added recursively;\n"
    "                          --zarr DIR packs a Zarr directory store)\n"
    "  append ARCHIVE FILES... add members without rewriting existing data\n"
    "  header ARCHIVE          print the header entries\n"
    "  update ARCHIVE -e O:L   replace the header entries in place\n"
    "  ls ARCHIVE              list members: data offset, size, CRC-32, name\n"
    "  cat ARCHIVE MEMBER      write a member (or a byte range of it) to stdout\n"
    "  extract ARCHIVE         extract members safely into a directory\n"
    "  span ARCHIVE MEMBERS... byte range covering members (for header entries)\n"
    "  refs ARCHIVE            kerchunk references: each member's [URL, offset, size]\n"
    "  validate ARCHIVE        check structure (quick, normal or deep)\n"
    "  recover ARCHIVE         roll back an append or update that was interrupted\n"
    "  version                 print the version\n"
    "  help [COMMAND]          this help, or the help of COMMAND\n"
    "\n"
    "Options and arguments may be given in any order; '--' ends the options (for\n"
    "names starting with '-'); '--opt=VALUE' and '--opt VALUE' are the same, as are\n"
    "'-x VALUE' and '-xVALUE'.  An option taking a VALUE may be given once unless\n"
    "its help says it repeats.\n"
    "\n"
    "ARCHIVE may be a local path or an http://, https:// or s3://bucket/key URL for\n"
    "every command that reads (header, ls, cat, extract, span, refs, validate).  ls,\n"
    "cat, extract, span and refs also take --index-first (read the first 16 KiB first: one\n"
    "request for archives made with --index) and --stats (print the HTTP requests\n"
    "and bytes to stderr).\n"
    "\n"
    "Environment of the reading commands (a malformed value is a usage error):\n"
    "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN   S3 credentials\n"
    "  AWS_REGION (or AWS_DEFAULT_REGION)         S3 region (default us-east-1)\n"
    "  AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL)  S3-compatible endpoint (path-style)\n"
    "  AWS_NO_SIGN_REQUEST=true|false|1|0         do not sign S3 requests\n"
    "  TACOZIP_HTTP_RETRIES (0-100, default 4)    retries of a failed request\n"
    "  TACOZIP_HTTP_BACKOFF_MS (1-60000, 100)     first retry delay, doubled each time\n"
    "  TACOZIP_HTTP_MAX_BACKOFF_MS (1-600000, 5000)  cap of a delay (and Retry-After)\n"
    "  TACOZIP_HTTP_CONNECT_TIMEOUT_MS (100-600000, 10000)\n"
    "  TACOZIP_HTTP_STALL_TIMEOUT_S (1-3600, 30)  cut a transfer stalled this long\n"
    "  TACOZIP_HTTP_MIN_RATE (bytes/s, 1-2^30, 1024)  or slower than this over that time\n"
    "  TACOZIP_HTTP_DEADLINE_MS (1-86400000, none)  the most one read may take, retries\n"
    "                                             included\n"
    "  TACOZIP_HTTP_PARALLEL (1-64, 8)            parallel requests of a batched read\n"
    "  TACOZIP_HTTP_MAX_SKIP (bytes, 1-2^40, 1 MiB)  bytes a server ignoring Range may\n"
    "                                             send before the wanted ones\n"
    "  TACOZIP_CA_BUNDLE (or CURL_CA_BUNDLE, AWS_CA_BUNDLE)  CA certificates file\n"
    "See docs/remote.md.  SOURCE_DATE_EPOCH sets the member times of create/append.\n"
    "\n"
    "Run 'tacozip COMMAND --help' for the options of a command.\n"
    "Exit status: 0 success, 1 failure (or invalid archive), 2 usage error.\n";

static const char *const HELP_CREATE =
    "Usage: tacozip create OUT [OPTIONS] FILE|DIR [--as NAME] ...\n"
    "       tacozip create --zarr DIR OUT [OPTIONS]\n"
    "\n"
    "Write a new TACO archive OUT: TACO_HEADER first, then each FILE STORED in the\n"
    "order given.  A FILE is stored under its base name, or under NAME when\n"
    "followed by '--as NAME'.  A DIR is added recursively, depth first, each\n"
    "directory's entries in byte order of their names, with names relative to\n"
    "the DIR's parent ('data/a/b.bin').  The order is the same on every run.\n"
    "The first argument that is not an option is OUT.  The write is atomic: a\n"
    "new unnamed file beside OUT is fsynced and then named OUT; on failure OUT is left as\n"
    "it was.\n"
    "\n"
    "With --zarr DIR, OUT is the Zarr v2 or v3 directory store DIR as a zipped\n"
    "Zarr: member names relative to DIR, the metadata documents (zarr.json,\n"
    ".zgroup, .zarray, .zattrs, .zmetadata) first, breadth first (the root's\n"
    "first, then by depth, then by directory name), then every other file (the\n"
    "chunks) in byte order of their paths (the order of the OME-Zarr single-file\n"
    "proposal, RFC-9).  Symbolic links are followed.  Header entry 0 is the byte\n"
    "range of the metadata block (local headers included) unless -e is given.\n"
    "A symbolic link loop, a name that is not UTF-8, a file that is neither\n"
    "regular nor a directory, or a DIR without zarr.json, .zgroup or .zarray at\n"
    "its root is an error before anything is written.  Entry 0 is resolved from\n"
    "the layout before the write (members:... of the metadata documents).\n"
    "\n"
    "A FILE of '-' is standard input (once, followed by --as NAME): it is read to\n"
    "its end first (in memory up to 64 MiB, then in an unnamed file in $TMPDIR),\n"
    "so that its size and CRC-32 go in its local header.\n"
    "\n"
    "OUT may be s3://BUCKET/KEY: the archive is uploaded as it is written (S3\n"
    "multipart upload, parts sent while later files are read; one PUT for an\n"
    "archive of one part), with no local copy, and the object appears only when\n"
    "complete; on any failure the upload is aborted and nothing is left.  The\n"
    "AWS_* variables give credentials, region and endpoint (see 'tacozip help ls').\n"
    "\n"
    "A header entry (-e) is either numbers or what it covers, resolved from the\n"
    "layout before anything is written (an unknown member or prefix is an error):\n"
    "  OFFSET:LENGTH              that byte range\n"
    "  data:NAME                  the data of member NAME (offset of its first byte,\n"
    "                             its size)\n"
    "  span:PREFIX                every member whose name starts with PREFIX, local\n"
    "                             headers included ('tacozip span' decodes it)\n"
    "  members:NAME,NAME...       the span of the members named\n"
    "  directory                  the central directory and end records\n"
    "\n"
    "Options:\n"
    "  -e, --entry ENTRY          a header entry (repeat, at most 7; default one 0:0)\n"
    "      --plan                 write nothing: print every member's local header\n"
    "                             offset, data offset and size, and every entry\n"
    "                             (--json: as JSON)\n"
    "      --zarr DIR             pack the Zarr directory store DIR (no other FILE,\n"
    "                             DIR or LIST)\n"
    "      --part-size BYTES      s3:// output: bytes per part (default: from the total,\n"
    "                             at least 8 MiB; S3 allows 5 MiB to 5 GiB)\n"
    "      --upload-parallel N    s3:// output: parts sent at once (default 4)\n"
    "  -T, --files-from LIST      read 'SOURCE' or 'SOURCE<TAB>NAME' lines from LIST\n"
    "                             ('-': stdin), in the place of the option (repeatable)\n"
    "      --as NAME              archive name for the FILE given before it (not a DIR\n"
    "                             or a LIST; other options may come in between)\n"
    "      --align N              align member data to N bytes (power of two <= 32768)\n"
    "      --mtime SECONDS        timestamp for all members (default: file times;\n"
    "                             SOURCE_DATE_EPOCH is honoured too)\n"
    "      --no-fsync             skip fsync (faster, not durable)\n"
    "      --wait SECONDS         if another process is writing OUT, try again for up to\n"
    "                             SECONDS (default 0: fail at once, exit 1)\n"
    "      --index                embed a member index (TACO_INDEX) after the header, so\n"
    "                             that one read of the first 16 KiB lists the archive\n"
    "                             (remote readers: --index-first); changes the layout\n"
    "      --progress             show a progress bar (default: when stderr is a terminal\n"
    "                             and the work is large); --no-progress hides it\n"
    "  -h, --help                 this help\n"
    "\n"
    "Default layout: member i's data starts at 157 + sum over earlier members of\n"
    "(30 + name length + size), +20 for members of 4 GiB - 1 bytes or more.\n";

static const char *const HELP_APPEND =
    "Usage: tacozip append ARCHIVE [OPTIONS] FILE|DIR [--as NAME] ...\n"
    "\n"
    "Add members to an existing archive.  Existing members are not moved or\n"
    "rewritten: new data goes where the central directory was, followed by a new\n"
    "directory.  On failure the archive is restored to its previous bytes.  The\n"
    "old directory is saved first in ARCHIVE.tacozip-journal, removed at the end:\n"
    "if the command is killed, the journal makes readers see the old archive, and\n"
    "the next write or 'tacozip recover ARCHIVE' restores it.\n"
    "Give at least one FILE, DIR or -T LIST.\n"
    "\n"
    "Options (as for create):\n"
    "  -T, --files-from LIST  read 'SOURCE' or 'SOURCE<TAB>NAME' lines from LIST\n"
    "      --as NAME          archive name for the FILE given before it\n"
    "      --align N          align new member data to N bytes (power of two <= 32768)\n"
    "      --mtime SECONDS    timestamp for the new members (SOURCE_DATE_EPOCH too)\n"
    "      --no-fsync         skip fsync (faster, not durable)\n"
    "      --wait SECONDS     if another process is writing ARCHIVE (an append or\n"
    "                         update), try again for up to SECONDS (default 0:\n"
    "                         fail at once with 'the archive is locked', exit 1)\n"
    "      --progress         show a progress bar; --no-progress hides it\n"
    "  -h, --help             this help\n";

static const char *const HELP_HEADER =
    "Usage: tacozip header ARCHIVE [--json]\n"
    "\n"
    "Print the TACO header entries, one 'OFFSET LENGTH' line each (one 157-byte read;\n"
    "for a URL, exactly one request).\n"
    "  --json      print {\"count\": N, \"entries\": [[OFFSET, LENGTH], ...]}\n"
    "  -h, --help  this help\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.\n";

static const char *const HELP_UPDATE =
    "Usage: tacozip update ARCHIVE [-e OFFSET:LENGTH]...\n"
    "\n"
    "Replace the header entries in place.  Only the payload and the two CRCs of\n"
    "TACO_HEADER are written (O(1)), under a rollback journal as for append.  A\n"
    "file that is not a TACO archive is refused and left unchanged.  With no -e,\n"
    "the header is set to zero entries.\n"
    "  -e, --entry OFFSET:LENGTH  a header entry (repeat, at most 7)\n"
    "      --wait SECONDS         if another process is writing ARCHIVE, try again for\n"
    "                             up to SECONDS (default 0: fail at once, exit 1)\n"
    "  -h, --help                 this help\n";

static const char *const HELP_LS =
    "Usage: tacozip ls ARCHIVE [--json] [--verify-local] [--index-first] [--stats]\n"
    "\n"
    "List every member: data offset, size, CRC-32 and name.  [offset, offset+size)\n"
    "is the exact byte range holding the member's bytes.  In names, control\n"
    "characters, backslashes and bytes that are not UTF-8 print as \\xNN.\n"
    "  --json          print a JSON array of {name, offset, size, crc32,\n"
    "                  header_offset, method}; a name byte that is not UTF-8 is\n"
    "                  \\udcNN (Python: .encode('utf-8', 'surrogateescape'))\n"
    "  --verify-local  read every local header instead of deriving offsets\n"
    "  --index-first   read the first 16 KiB first (one request with --index)\n"
    "  --stats         print the HTTP requests and bytes received to stderr\n"
    "  -h, --help      this help\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.\n";

static const char *const HELP_CAT =
    "Usage: tacozip cat ARCHIVE MEMBER [--range A-B] [--index-first] [--stats]\n"
    "\n"
    "Write a member to standard output.  Put '--' before a MEMBER whose name\n"
    "starts with '-'.\n"
    "  --range A-B    write bytes A to B inclusive of the member (like HTTP Range);\n"
    "                 'A-' goes to the end\n"
    "  --index-first  read the first 16 KiB first (one request with --index)\n"
    "  --stats        print the HTTP requests and bytes received to stderr\n"
    "  -h, --help     this help\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.\n";

static const char *const HELP_EXTRACT =
    "Usage: tacozip extract ARCHIVE [-C DIR] [--overwrite] [--skip-header] [MEMBER...]\n"
    "\n"
    "Extract all members, or those named, into DIR (default '.').  Each file's\n"
    "CRC-32 is checked.  Names that are absolute or contain '..' are refused, and\n"
    "nothing is ever written outside DIR (symbolic links are not followed).\n"
    "  -C DIR         destination directory (created if missing)\n"
    "  --overwrite    replace existing files (default: refuse)\n"
    "  --skip-header  do not write the TACO_HEADER member\n"
    "  --progress     show a progress bar (default: when stderr is a terminal and\n"
    "                 the archive is large); --no-progress hides it\n"
    "  --index-first  read the first 16 KiB first (one request with --index)\n"
    "  --stats        print the HTTP requests and bytes received to stderr\n"
    "  -h, --help     this help\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.\n";

static const char *const HELP_SPAN =
    "Usage: tacozip span ARCHIVE [--data-only] [--prefix P] [--json] [MEMBER...]\n"
    "\n"
    "Print 'OFFSET:LENGTH' of the smallest byte range covering the members named\n"
    "and/or all members whose name starts with P, local headers included (so the\n"
    "range alone suffices to recover them).  Use the output with -e.\n"
    "  --data-only    start at the first data byte instead of the local header\n"
    "  --prefix P     also cover every member whose name starts with P\n"
    "  --json         print {\"offset\": O, \"length\": L, \"members\": N}\n"
    "  --index-first  read the first 16 KiB first (one request with --index)\n"
    "  --stats        print the HTTP requests and bytes received to stderr\n"
    "  -h, --help     this help\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.\n";

static const char *const HELP_REFS =
    "Usage: tacozip refs ARCHIVE [--url URL] [--prefix P] [-o OUT] [--format json]\n"
    "\n"
    "Write a kerchunk reference set (version 1) of the members: {\"version\": 1,\n"
    "\"refs\": {NAME: [URL, OFFSET, SIZE]}}, where [OFFSET, OFFSET+SIZE) is the\n"
    "member's data in the archive, so that fsspec's ReferenceFileSystem (and Zarr,\n"
    "xarray through it) read members without tacozip.  Directory entries are left\n"
    "out.  Names are written as ls --json writes them.  A compressed or encrypted\n"
    "member has no such range: each one is named and nothing is written (exit 1).\n"
    "  --url URL       where readers find the archive (default: ARCHIVE as given for\n"
    "                  a URL, the real path of a local file)\n"
    "  --prefix P      only the members under the directory P ('P/...'), named\n"
    "                  relative to it\n"
    "  -o, --output OUT  write to OUT (a temporary file beside it, renamed to OUT\n"
    "                  when complete) instead of standard output\n"
    "  --format json   the only format written here; for kerchunk's Parquet layout\n"
    "                  use: python -m tacozip.refs ARCHIVE --format parquet -o DIR\n"
    "  --index-first   read the first 16 KiB first (one request with --index)\n"
    "  --stats         print the HTTP requests and bytes received to stderr\n"
    "  -h, --help      this help\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.  See docs/references.md.\n";

static const char *const HELP_RECOVER =
    "Usage: tacozip recover ARCHIVE [--wait SECONDS]\n"
    "\n"
    "Finish what an interrupted append or update left behind.  Those commands\n"
    "save the bytes they overwrite in ARCHIVE.tacozip-journal first and remove it\n"
    "when done; if that file is still there (the process was killed, the machine\n"
    "stopped), recover writes the old bytes back, so that ARCHIVE is exactly what\n"
    "it was before, and removes the journal.  tacozip itself reads such an\n"
    "archive as it was and the next append or update recovers it anyway; run\n"
    "recover before other ZIP tools read it.  Prints what was done.\n"
    "  --wait SECONDS  if another process is writing ARCHIVE, try again for up to\n"
    "                  SECONDS (default 0: fail at once, exit 1)\n"
    "  -h, --help      this help\n"
    "Exit status 0 (also when there was nothing to recover), 1 on failure.\n";

static const char *const HELP_VALIDATE =
    "Usage: tacozip validate ARCHIVE [--level quick|normal|deep] [--json]\n"
    "\n"
    "  --level quick   the 157 header bytes\n"
    "  --level normal  + end records and central directory, TACO_HEADER first at 0,\n"
    "                  STORED members' two sizes equal (the default)\n"
    "  --level deep    + header CRCs, every local header, the data descriptor of\n"
    "                  each member that announces one, every member's CRC-32, no\n"
    "                  overlaps\n"
    "  --json          print {\"valid\": B, \"code\": C, \"level\": L, \"message\": M}\n"
    "                  (also when the archive cannot be read: valid false, the code)\n"
    "  -h, --help      this help\n"
    "Exit status 0 if valid, 1 if not (the code and reason are printed on stdout)\n"
    "or if the archive cannot be read (I/O or network error, on stderr).\n"
    "Remote settings (S3, retries, timeouts) come from the environment: see\n"
    "'tacozip --help'.\n";

static const char *const HELP_VERSION =
    "Usage: tacozip version\n"
    "\n"
    "Print the version of the library and the command.\n";

static const char *const HELP_HELP =
    "Usage: tacozip help [COMMAND]\n"
    "\n"
    "Print the list of commands, or the help of COMMAND.\n";

/* ---- the run's context ------------------------------------------------- */

struct cmd_spec;

typedef struct cli_ctx {
    const struct cmd_spec *cmd; /* the command being run */
    unsigned read_flags;        /* --index-first */
    int show_stats;             /* --stats */
    int remote_ready;           /* "remote" holds the settings from the environment */
    tacozip_remote_options remote;
    char shown[1024];           /* display name of the command's archive */
} cli_ctx;

/* A usage error of the current command: message, hint; returns 2. */
static int usage(const cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Out of memory: message; returns 1. */
static int nomem(void) {
    fprintf(stderr, "%s: out of memory\n", prog);
    return EXIT_FAIL;
}

/* A library failure.  The library's messages about a path or URL start with
 * its display name and ": ", so they are printed as they are, after
 * "tacozip: " and before the code's description.  "name" (the display name
 * of the path the function was given) is added only when the message does
 * not start with it, or there is no message. */
static void text_name(FILE *f, const char *s, size_t n);

/* A library message on a terminal: member names in it may hold control
 * characters or bytes that are not UTF-8 (escaped as text_name() does). */
static void put_message(FILE *f, const char *msg) { text_name(f, msg, strlen(msg)); }

static int fail(int code, const tacozip_error *err, const char *name) {
    const char *msg = err && err->message[0] ? err->message : NULL;
    size_t nl = strlen(name);
    if (msg && !strncmp(msg, name, nl) && msg[nl] == ':') {
        fprintf(stderr, "%s: ", prog);
        put_message(stderr, msg);
        fprintf(stderr, " (%s)\n", tacozip_strerror(code));
    } else if (msg) {
        fprintf(stderr, "%s: %s: ", prog, name);
        put_message(stderr, msg);
        fprintf(stderr, " (%s)\n", tacozip_strerror(code));
    } else {
        fprintf(stderr, "%s: %s: %s\n", prog, name, tacozip_strerror(code));
    }
    return EXIT_FAIL;
}

/* A failure of create/append, functions given several paths: the message
 * names the one at fault (the archive or a source); "name" (the archive)
 * only when there is no message. */
static int fail_write(int code, const tacozip_error *err, const char *name) {
    if (err && err->message[0]) {
        fprintf(stderr, "%s: ", prog);
        put_message(stderr, err->message);
        fprintf(stderr, " (%s)\n", tacozip_strerror(code));
        return EXIT_FAIL;
    }
    return fail(code, err, name);
}

/* ---- the argument parser ----------------------------------------------- */

/* One option of a command.  "name" is the long name without "--" (or
 * NULL), "short_name" the one-letter alias (or 0).  Options that take an
 * argument accept "--name VALUE", "--name=VALUE", "-x VALUE" and "-xVALUE".
 * A non-repeatable option that takes an argument may be given once. */
typedef struct {
    int id;
    const char *name;
    char short_name;
    int takes_arg;
    int repeatable;
    const char *metavar; /* for messages: "OFFSET:LENGTH" */
} opt_spec;

#define POS_ANY (-1)

/* One parsed item, in command-line order: an option (its id and argument)
 * or a positional argument (id OPT_POSITIONAL). */
typedef struct {
    int id;
    const char *value; /* argument, positional text, or NULL for a flag */
} arg_item;

typedef struct {
    arg_item *items;
    size_t n;
    const char **pos; /* the positional arguments alone, in order */
    size_t npos;
} parsed_args;

typedef int (*cmd_fn)(cli_ctx *ctx, const parsed_args *a);

typedef struct cmd_spec {
    const char *name;
    const char *alias; /* another name (ls: list), or NULL */
    const char *help;
    const opt_spec *opts; /* terminated by id 0 */
    int min_pos, max_pos; /* max POS_ANY: unlimited */
    const char *pos_usage; /* for "needs ..." messages */
    cmd_fn run;
} cmd_spec;

enum {
    OPT_POSITIONAL = -1,
    OPT_END = 0,
    OPT_HELP = 1,
    OPT_ENTRY,
    OPT_FILES_FROM,
    OPT_AS,
    OPT_ALIGN,
    OPT_MTIME,
    OPT_NO_FSYNC,
    OPT_INDEX,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_JSON,
    OPT_VERIFY_LOCAL,
    OPT_INDEX_FIRST,
    OPT_STATS,
    OPT_RANGE,
    OPT_DIR,
    OPT_OVERWRITE,
    OPT_SKIP_HEADER,
    OPT_DATA_ONLY,
    OPT_PREFIX,
    OPT_LEVEL,
    OPT_WAIT,
    OPT_ZARR,
    OPT_URL,
    OPT_OUTPUT,
    OPT_FORMAT,
    OPT_PLAN,
    OPT_PART_SIZE,
    OPT_UPLOAD_PARALLEL,
};

#define O_HELP {OPT_HELP, "help", 'h', 0, 1, NULL}
#define O_JSON {OPT_JSON, "json", 0, 0, 1, NULL}
#define O_INDEX_FIRST {OPT_INDEX_FIRST, "index-first", 0, 0, 1, NULL}
#define O_STATS {OPT_STATS, "stats", 0, 0, 1, NULL}
#define O_PROGRESS {OPT_PROGRESS, "progress", 0, 0, 1, NULL}, {OPT_NO_PROGRESS, "no-progress", 0, 0, 1, NULL}
#define O_WRITE                                                                                                \
    {OPT_FILES_FROM, "files-from", 'T', 1, 1, "LIST"}, {OPT_AS, "as", 0, 1, 1, "NAME"},                         \
        {OPT_ALIGN, "align", 0, 1, 0, "N"}, {OPT_MTIME, "mtime", 0, 1, 0, "SECONDS"},                          \
        {OPT_NO_FSYNC, "no-fsync", 0, 0, 1, NULL}, O_WAIT, O_PROGRESS
#define O_ENTRY {OPT_ENTRY, "entry", 'e', 1, 1, "OFFSET:LENGTH"}
#define O_WAIT {OPT_WAIT, "wait", 0, 1, 0, "SECONDS"}
#define O_LAST {OPT_END, NULL, 0, 0, 0, NULL}

static const opt_spec OPTS_CREATE[] = {O_HELP,
                                       {OPT_ENTRY, "entry", 'e', 1, 1, "ENTRY"},
                                       O_WRITE,
                                       {OPT_INDEX, "index", 0, 0, 1, NULL},
                                       {OPT_ZARR, "zarr", 0, 1, 0, "DIR"},
                                       {OPT_PLAN, "plan", 0, 0, 1, NULL},
                                       O_JSON,
                                       {OPT_PART_SIZE, "part-size", 0, 1, 0, "BYTES"},
                                       {OPT_UPLOAD_PARALLEL, "upload-parallel", 0, 1, 0, "N"},
                                       O_LAST};
static const opt_spec OPTS_APPEND[] = {O_HELP, O_WRITE, O_LAST};
static const opt_spec OPTS_HEADER[] = {O_HELP, O_JSON, O_LAST};
static const opt_spec OPTS_UPDATE[] = {O_HELP, O_ENTRY, O_WAIT, O_LAST};
static const opt_spec OPTS_RECOVER[] = {O_HELP, O_WAIT, O_LAST};
static const opt_spec OPTS_LS[] = {O_HELP, O_JSON, {OPT_VERIFY_LOCAL, "verify-local", 0, 0, 1, NULL},
                                   O_INDEX_FIRST, O_STATS, O_LAST};
static const opt_spec OPTS_CAT[] = {O_HELP, {OPT_RANGE, "range", 0, 1, 0, "A-B"}, O_INDEX_FIRST, O_STATS, O_LAST};
static const opt_spec OPTS_EXTRACT[] = {O_HELP,
                                        {OPT_DIR, NULL, 'C', 1, 0, "DIR"},
                                        {OPT_OVERWRITE, "overwrite", 0, 0, 1, NULL},
                                        {OPT_SKIP_HEADER, "skip-header", 0, 0, 1, NULL},
                                        O_PROGRESS,
                                        O_INDEX_FIRST,
                                        O_STATS,
                                        O_LAST};
static const opt_spec OPTS_SPAN[] = {O_HELP, {OPT_DATA_ONLY, "data-only", 0, 0, 1, NULL},
                                     {OPT_PREFIX, "prefix", 0, 1, 0, "P"}, O_JSON, O_INDEX_FIRST, O_STATS, O_LAST};
static const opt_spec OPTS_REFS[] = {O_HELP,
                                     {OPT_URL, "url", 0, 1, 0, "URL"},
                                     {OPT_PREFIX, "prefix", 0, 1, 0, "P"},
                                     {OPT_OUTPUT, "output", 'o', 1, 0, "OUT"},
                                     {OPT_FORMAT, "format", 0, 1, 0, "json"},
                                     O_INDEX_FIRST,
                                     O_STATS,
                                     O_LAST};
static const opt_spec OPTS_VALIDATE[] = {O_HELP, {OPT_LEVEL, "level", 0, 1, 0, "quick|normal|deep"}, O_JSON, O_LAST};
static const opt_spec OPTS_NONE[] = {O_HELP, O_LAST};

static int usage(const cli_ctx *ctx, const char *fmt, ...) {
    const char *cmd = ctx && ctx->cmd ? ctx->cmd->name : NULL;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s%s%s: ", prog, cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee '%s%s%s --help'\n", prog, cmd ? " " : "", cmd ? cmd : "");
    return EXIT_USAGE;
}

static void free_parsed(parsed_args *a) {
    free(a->items);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

/* Parse argv[first..argc) for the command ctx->cmd into "out".  Returns 0
 * with out->items set: run the command.  Otherwise out is empty and the
 * return value is the exit status: 0 after printing the help (-h/--help
 * anywhere before "--" wins over any other problem), EXIT_USAGE after a
 * usage message (the first problem found), EXIT_FAIL when out of memory. */
static int parse_args(cli_ctx *ctx, int argc, char **argv, int first, parsed_args *out) {
    const cmd_spec *spec = ctx->cmd;
    memset(out, 0, sizeof *out);
    size_t cap = (size_t)(argc > first ? argc - first : 1);
    out->items = malloc(cap * sizeof *out->items);
    out->pos = malloc(cap * sizeof *out->pos);
    if (!out->items || !out->pos) {
        free_parsed(out);
        return nomem();
    }
    char problem[512] = "";
    int help = 0, seen[64] = {0};
#define PROBLEM(...) (problem[0] ? (void)0 : (void)snprintf(problem, sizeof problem, __VA_ARGS__))
    int end_opts = 0;
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (end_opts || s[0] != '-' || !s[1]) { /* positional ("-" alone too) */
            out->items[out->n++] = (arg_item){OPT_POSITIONAL, s};
            out->pos[out->npos++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            end_opts = 1;
            continue;
        }
        const opt_spec *o = NULL;
        const char *value = NULL;
        int inline_value = 0;
        char label[80];
        if (s[1] == '-') { /* --name or --name=value */
            const char *eq = strchr(s + 2, '=');
            size_t len = eq ? (size_t)(eq - (s + 2)) : strlen(s + 2);
            for (const opt_spec *p = spec->opts; p->id; p++)
                if (p->name && strlen(p->name) == len && !strncmp(p->name, s + 2, len)) o = p;
            if (eq) value = eq + 1, inline_value = 1;
            if (!o) {
                PROBLEM("unknown option '%.*s'", (int)(len + 2), s);
                continue;
            }
        } else { /* -x, -xVALUE */
            for (const opt_spec *p = spec->opts; p->id; p++)
                if (p->short_name && p->short_name == s[1]) o = p;
            if (!o) {
                PROBLEM("unknown option '-%c'%s%s%s", s[1], s[2] ? " (in '" : "", s[2] ? s : "", s[2] ? "')" : "");
                continue;
            }
            if (s[2]) {
                if (!o->takes_arg) {
                    PROBLEM("option '-%c' takes no argument (in '%s')", s[1], s);
                    continue;
                }
                value = s + 2, inline_value = 1;
            }
        }
        /* messages name the option as it was typed */
        if (s[1] == '-') snprintf(label, sizeof label, "--%s", o->name);
        else snprintf(label, sizeof label, "-%c", s[1]);
        if (o->id == OPT_HELP) {
            if (inline_value) PROBLEM("option '%s' takes no argument", label);
            help = 1;
            continue;
        }
        if (!o->takes_arg && inline_value) {
            PROBLEM("option '%s' takes no argument", label);
            continue;
        }
        if (o->takes_arg && !inline_value) {
            if (i + 1 >= argc) {
                PROBLEM("option '%s' needs an argument (%s)", label, o->metavar);
                continue;
            }
            value = argv[++i];
        }
        if (o->takes_arg && !o->repeatable && seen[o->id]) {
            PROBLEM("option '%s' given more than once", label);
            continue;
        }
        seen[o->id] = 1;
        out->items[out->n++] = (arg_item){o->id, value};
    }
#undef PROBLEM
    if (help) {
        fputs(spec->help, stdout);
        free_parsed(out);
        return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
    }
    if (!problem[0] && (int)out->npos < spec->min_pos)
        snprintf(problem, sizeof problem, "%s %s", out->npos ? "too few arguments: needs" : "needs", spec->pos_usage);
    if (!problem[0] && spec->max_pos != POS_ANY && (int)out->npos > spec->max_pos)
        snprintf(problem, sizeof problem, "unexpected argument '%s' (takes %s)", out->pos[spec->max_pos],
                 spec->pos_usage);
    if (problem[0]) {
        free_parsed(out);
        return usage(ctx, "%s", problem);
    }
    return 0;
}

/* The last value of option "id", or NULL; whether a flag was given. */
static const char *opt_value(const parsed_args *a, int id) {
    const char *v = NULL;
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i].id == id) v = a->items[i].value;
    return v;
}

static int has_opt(const parsed_args *a, int id) {
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i].id == id) return 1;
    return 0;
}

/* ---- value parsing (usage errors) -------------------------------------- */

/* A decimal unsigned 64-bit number; returns 0, or EXIT_USAGE after a message
 * naming "what". */
static int parse_u64(const cli_ctx *ctx, const char *s, const char *what, uint64_t *out) {
    char *end;
    errno = 0;
    if (!*s || *s < '0' || *s > '9') return usage(ctx, "invalid %s '%s'", what, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return usage(ctx, "invalid %s '%s'", what, s);
    *out = v;
    return 0;
}

static int parse_entry(const cli_ctx *ctx, const char *s, taco_meta_array_t *m) {
    const char *colon = strchr(s, ':');
    if (!colon) return usage(ctx, "entry '%s' is not OFFSET:LENGTH", s);
    if (m->count >= TACO_HEADER_MAX_ENTRIES)
        return usage(ctx, "at most %d entries fit in the header", TACO_HEADER_MAX_ENTRIES);
    char *off = strndup(s, (size_t)(colon - s));
    if (!off) return nomem();
    int rc = parse_u64(ctx, off, "entry offset", &m->entries[m->count].offset);
    free(off);
    if (!rc) rc = parse_u64(ctx, colon + 1, "entry length", &m->entries[m->count].length);
    if (!rc) m->count++;
    return rc;
}

/* All -e/--entry options, in order. */
static int parse_entries(const cli_ctx *ctx, const parsed_args *a, taco_meta_array_t *m) {
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i].id == OPT_ENTRY) {
            int rc = parse_entry(ctx, a->items[i].value, m);
            if (rc) return rc;
        }
    return 0;
}

/* ---- JSON -------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n) (1-4), or 0 when the
 * byte there does not start one (a stray continuation byte, an overlong
 * form, a surrogate, past U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    unsigned long cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* A name as JSON: valid UTF-8 as it is, control characters escaped, and
 * each byte that is not part of valid UTF-8 as "\\udcXX" (the lone
 * surrogate U+DC00 + byte, Python's "surrogateescape": json.loads() then
 * .encode("utf-8", "surrogateescape") gives the bytes back).  Always
 * valid JSON, never lossy. */
static void json_str(FILE *f, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t len = utf8_len(u + i, n - i);
        if (len == 0) fprintf(f, "\\udc%02x", c), i++;
        else if (c == '"' || c == '\\') fprintf(f, "\\%c", c), i++;
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c), i++;
        else fwrite(u + i, 1, len, f), i += len;
    }
    fputc('"', f);
}

/* A name for a terminal or a line-based reader: valid UTF-8 as it is; a
 * backslash, control characters (newline, ESC...), DEL and bytes that are
 * not valid UTF-8 as "\\xNN", so that one member is one line and nothing
 * reaches the terminal as a control sequence. */
static void text_name(FILE *f, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t len = utf8_len(u + i, n - i);
        if (len == 0 || c == '\\' || c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c), i++;
        else if (len == 2 && c == 0xC2 && u[i + 1] < 0xA0) fprintf(f, "\\xc2\\x%02x", u[i + 1]), i += 2; /* C1 controls */
        else fwrite(u + i, 1, len, f), i += len;
    }
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

static void progress_start(progress_state *ps, const char *label) {
    ps->on = 1;
    ps->start = ps->last = now_s();
    ps->label = label;
}

/* -1 auto, 0 --no-progress, 1 --progress (the last one given wins). */
static int progress_choice(const parsed_args *a) {
    int p = -1;
    for (size_t i = 0; i < a->n; i++) {
        if (a->items[i].id == OPT_PROGRESS) p = 1;
        else if (a->items[i].id == OPT_NO_PROGRESS) p = 0;
    }
    return p;
}

/* ---- file lists for create / append ------------------------------------ */

/* A growable list of (source, name) pairs. */
typedef struct {
    char **src, **name;
    size_t n, cap;
} file_list;

static void free_files(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->src[i]), free(l->name[i]);
    free(l->src);
    free(l->name);
    memset(l, 0, sizeof *l);
}

/* Take ownership of "src" and "name" (freed on failure too).  0 or
 * EXIT_FAIL (out of memory). */
static int fl_add(file_list *l, char *src, char *name) {
    if (!src || !name) {
        free(src), free(name);
        return nomem();
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **s = realloc(l->src, cap * sizeof *s);
        if (s) l->src = s;
        char **n = s ? realloc(l->name, cap * sizeof *n) : NULL;
        if (n) l->name = n;
        if (!s || !n) {
            free(src), free(name);
            return nomem();
        }
        l->cap = cap;
    }
    l->src[l->n] = src;
    l->name[l->n] = name;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *join(const char *a, const char *b) {
    char *p = NULL;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* The entries of the open directory "d" but "." and "..", sorted byte-wise
 * (*names, *n: the caller frees each and the array); closes "d".  Returns 0,
 * or 1 when out of memory (the names read so far are returned). */
static int sorted_names(DIR *d, char ***names, size_t *n) {
    size_t cap = 0;
    int oom = 0;
    struct dirent *de;
    while (!oom && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **p = realloc(*names, nc * sizeof **names);
            if (!p) {
                oom = 1;
                break;
            }
            *names = p, cap = nc;
        }
        if (!((*names)[*n] = strdup(de->d_name))) oom = 1;
        else (*n)++;
    }
    closedir(d);
    if (!oom) qsort(*names, *n, sizeof **names, cmp_str);
    return oom;
}

/* Add the regular files under "dir" (path) with names "prefix/...", sorted
 * byte-wise for a deterministic order.  Returns 0 or EXIT_FAIL (a message
 * was printed; on a file-system error the walk goes on, to report all). */
static int add_dir(file_list *l, const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
        return EXIT_FAIL;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0, oom = sorted_names(d, &names, &n);
    if (oom) rc = nomem();
    for (size_t i = 0; i < n; i++) {
        if (oom) {
            free(names[i]);
            continue;
        }
        char *path = join(dir, names[i]), *name = join(prefix, names[i]);
        struct stat st;
        if (!path || !name) {
            free(path), free(name);
            oom = 1, rc = nomem();
        } else if (lstat(path, &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            free(path), free(name);
            rc = EXIT_FAIL;
        } else if (S_ISDIR(st.st_mode)) {
            rc |= add_dir(l, path, name);
            free(path), free(name);
        } else if (S_ISREG(st.st_mode)) {
            if (fl_add(l, path, name)) oom = 1, rc = EXIT_FAIL;
        } else {
            fprintf(stderr, "%s: skipping %s (not a regular file or directory)\n", prog, path);
            free(path), free(name);
        }
        free(names[i]);
    }
    free(names);
    return rc ? EXIT_FAIL : 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Add a FILE or DIR argument; *is_file tells which it was. */
static int add_path(file_list *l, const char *arg, int *is_file) {
    struct stat st;
    *is_file = 0;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, arg, strerror(errno));
        return EXIT_FAIL;
    }
    if (S_ISDIR(st.st_mode)) {
        char *d = strdup(arg);
        if (!d) return nomem();
        size_t k = strlen(d);
        while (k > 1 && d[k - 1] == '/') d[--k] = '\0';
        const char *b = base_name(d);
        int rc;
        if (!strcmp(b, ".") || !strcmp(b, "..") || !*b) {
            fprintf(stderr, "%s: give directories by name, not '%s'\n", prog, arg);
            rc = EXIT_FAIL;
        } else {
            rc = add_dir(l, d, b);
        }
        free(d);
        return rc;
    }
    *is_file = 1;
    return fl_add(l, strdup(arg), strdup(base_name(arg)));
}

static int read_list(file_list *l, const char *listfile) {
    FILE *f = strcmp(listfile, "-") ? fopen(listfile, "r") : stdin;
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, listfile, strerror(errno));
        return EXIT_FAIL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0) continue;
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            rc = fl_add(l, strdup(line), strdup(tab + 1));
        } else {
            rc = fl_add(l, strdup(line), strdup(base_name(line)));
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "%s: %s: %s\n", prog, listfile, strerror(errno));
        rc = EXIT_FAIL;
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

typedef struct {
    file_list files;
    taco_meta_array_t meta;
    tacozip_write_options opts;
    int progress; /* -1 auto, 0 off, 1 on */
    /* create: the entries as given (numbers or what they cover) */
    tacozip_entry_plan plan[TACO_HEADER_MAX_ENTRIES];
    size_t n_plan;
    int planned;            /* one of them is not numbers */
    int has_stdin;          /* "-" given as a FILE (create: read as a stream) */
    char *members[TACO_HEADER_MAX_ENTRIES]; /* members:...: the names, split in place */
    const char **member_names[TACO_HEADER_MAX_ENTRIES];
} write_args;

static void free_plan(write_args *a) {
    for (size_t i = 0; i < TACO_HEADER_MAX_ENTRIES; i++) {
        free(a->members[i]);
        free(a->member_names[i]);
        a->members[i] = NULL, a->member_names[i] = NULL;
    }
}

/* One create -e: OFFSET:LENGTH, data:NAME, span:PREFIX, members:A,B,...
 * or directory. */
static int parse_create_entry(const cli_ctx *ctx, const char *s, write_args *a) {
    if (a->n_plan >= TACO_HEADER_MAX_ENTRIES)
        return usage(ctx, "at most %d entries fit in the header", TACO_HEADER_MAX_ENTRIES);
    tacozip_entry_plan *e = &a->plan[a->n_plan];
    *e = (tacozip_entry_plan)TACOZIP_ENTRY_PLAN_INIT;
    if (!strncmp(s, "data:", 5) || !strncmp(s, "span:", 5)) {
        e->kind = s[0] == 'd' ? TACOZIP_ENTRY_DATA : TACOZIP_ENTRY_PREFIX;
        e->name = s + 5;
        if (e->kind == TACOZIP_ENTRY_DATA && !*e->name) return usage(ctx, "entry '%s' names no member", s);
    } else if (!strncmp(s, "members:", 8)) {
        char *list = strdup(s + 8);
        size_t n = 1;
        for (const char *c = s + 8; *c; c++) n += *c == ',';
        const char **names = malloc(n * sizeof *names);
        if (!list || !names) {
            free(list), free(names);
            return nomem();
        }
        n = 0;
        for (char *tok = list, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            if (!*tok) {
                free(list), free(names);
                return usage(ctx, "entry '%s' has an empty member name", s);
            }
            names[n++] = tok;
        }
        a->members[a->n_plan] = list, a->member_names[a->n_plan] = names;
        e->kind = TACOZIP_ENTRY_MEMBERS, e->names = names, e->n_names = n;
    } else if (!strcmp(s, "directory")) {
        e->kind = TACOZIP_ENTRY_DIRECTORY;
    } else {
        taco_meta_array_t one = {0};
        int rc = parse_entry(ctx, s, &one);
        if (rc) return rc;
        e->kind = TACOZIP_ENTRY_RANGE, e->offset = one.entries[0].offset, e->length = one.entries[0].length;
        if (a->meta.count < TACO_HEADER_MAX_ENTRIES) a->meta.entries[a->meta.count++] = one.entries[0];
        a->n_plan++;
        return 0;
    }
    a->planned = 1;
    a->n_plan++;
    return 0;
}

/* Options and files of create/append.  The first positional (OUT or
 * ARCHIVE) is skipped.  Returns 0, EXIT_USAGE or EXIT_FAIL (messages
 * printed); a.files is freed by the caller in every case. */
static int collect_write_args(const cli_ctx *ctx, const parsed_args *pa, write_args *a) {
    memset(a, 0, sizeof *a);
    a->opts = (tacozip_write_options)TACOZIP_WRITE_OPTIONS_INIT;
    a->progress = progress_choice(pa);
    /* 1. values, before touching any file */
    uint64_t v = 0;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        if (parse_u64(ctx, sde, "SOURCE_DATE_EPOCH", &v)) return EXIT_USAGE;
        a->opts.mtime = (int64_t)v;
    }
    int rc = 0;
    memset(&a->meta, 0, sizeof a->meta);
    for (size_t i = 0; i < pa->n && !rc; i++)
        if (pa->items[i].id == OPT_ENTRY) rc = parse_create_entry(ctx, pa->items[i].value, a);
    if (rc) return rc;
    const char *s;
    if ((s = opt_value(pa, OPT_ALIGN))) {
        if (parse_u64(ctx, s, "alignment", &v)) return EXIT_USAGE;
        if (v > 32768 || (v & (v - 1))) return usage(ctx, "--align must be a power of two <= 32768, not '%s'", s);
        a->opts.alignment = (uint32_t)v;
    }
    if ((s = opt_value(pa, OPT_MTIME))) {
        if (parse_u64(ctx, s, "mtime", &v)) return EXIT_USAGE;
        if (v > INT64_MAX) return usage(ctx, "invalid mtime '%s'", s);
        a->opts.mtime = (int64_t)v;
    }
    a->opts.no_fsync = has_opt(pa, OPT_NO_FSYNC);
    a->opts.index = has_opt(pa, OPT_INDEX);
    if ((s = opt_value(pa, OPT_PART_SIZE))) {
        if (parse_u64(ctx, s, "part size", &v)) return EXIT_USAGE;
        if (v < (5u << 20) || v > (5ull << 30)) return usage(ctx, "--part-size must be from 5 MiB to 5 GiB, not '%s'", s);
        a->opts.part_size = v;
    }
    if ((s = opt_value(pa, OPT_UPLOAD_PARALLEL))) {
        if (parse_u64(ctx, s, "parallel uploads", &v)) return EXIT_USAGE;
        if (v < 1 || v > 32) return usage(ctx, "--upload-parallel must be from 1 to 32, not '%s'", s);
        a->opts.upload_parallel = (int)v;
    }
    /* 2. where each --as goes: the FILE positional before it */
    int seen_first = 0, can_rename = 0;
    for (size_t i = 0; i < pa->n; i++) {
        int id = pa->items[i].id;
        if (id == OPT_POSITIONAL) can_rename = seen_first, seen_first = 1;
        else if (id == OPT_FILES_FROM) can_rename = 0;
        else if (id == OPT_AS) {
            if (!can_rename) return usage(ctx, "--as %s must follow a FILE", pa->items[i].value);
            can_rename = 0;
        }
    }
    /* 3. the files, in order */
    int fs_rc = 0, last_file = 0, last_failed = 0;
    seen_first = 0;
    for (size_t i = 0; i < pa->n; i++) {
        const arg_item *it = &pa->items[i];
        if (it->id == OPT_POSITIONAL) {
            if (!seen_first) {
                seen_first = 1;
                continue;
            }
            size_t before = a->files.n;
            if (!strcmp(it->value, "-")) { /* standard input, named by the --as after it */
                rc = fl_add(&a->files, strdup("-"), strdup("-"));
                last_file = 1;
                a->has_stdin++;
            } else {
                rc = add_path(&a->files, it->value, &last_file);
            }
            last_file = last_file && a->files.n == before + 1;
        } else if (it->id == OPT_FILES_FROM) {
            rc = read_list(&a->files, it->value);
            last_file = 0;
        } else if (it->id == OPT_AS) {
            if (!last_file) {
                if (last_failed) continue; /* the FILE itself failed: reported already */
                return usage(ctx, "--as %s follows a directory, not a FILE", it->value);
            }
            char *name = strdup(it->value);
            if (!name) return nomem();
            free(a->files.name[a->files.n - 1]);
            a->files.name[a->files.n - 1] = name;
            last_file = 0;
            rc = 0;
        } else {
            continue;
        }
        last_failed = rc != 0;
        if (rc) fs_rc = EXIT_FAIL, last_file = 0;
    }
    if (fs_rc) fprintf(stderr, "%s: nothing written\n", prog);
    return fs_rc;
}

/* ---- Zarr directory stores (create --zarr) ----------------------------- */

/* The metadata documents of Zarr v3 and v2, in the order they take within
 * one directory: the node's own document first. */
static const char *const ZARR_META[] = {"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"};
#define ZARR_NMETA (sizeof ZARR_META / sizeof ZARR_META[0])
#define ZARR_NODE_DOCS 3 /* zarr.json, .zgroup, .zarray: one must be at the root */

/* The rank of a member name's base name among ZARR_META, or -1 (a chunk). */
static int zarr_meta_rank(const char *name) {
    const char *b = base_name(name);
    for (size_t i = 0; i < ZARR_NMETA; i++)
        if (!strcmp(b, ZARR_META[i])) return (int)i;
    return -1;
}

static int valid_utf8(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

static size_t count_slashes(const char *s) {
    size_t k = 0;
    for (; *s; s++) k += *s == '/';
    return k;
}

/* The packing order: metadata documents first, breadth first (by depth,
 * then by directory, then by rank within the directory), then the other
 * files in byte order of their names. */
static int zarr_cmp(const char *x, const char *y) {
    int rx = zarr_meta_rank(x), ry = zarr_meta_rank(y);
    if ((rx >= 0) != (ry >= 0)) return rx >= 0 ? -1 : 1;
    if (rx < 0) return strcmp(x, y);
    size_t dx = count_slashes(x), dy = count_slashes(y);
    if (dx != dy) return dx < dy ? -1 : 1;
    size_t lx = (size_t)(base_name(x) - x), ly = (size_t)(base_name(y) - y); /* directory + '/' */
    lx = lx ? lx - 1 : 0, ly = ly ? ly - 1 : 0;
    int c = memcmp(x, y, lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return rx < ry ? -1 : rx > ry;
}

typedef struct {
    char *src, *name;
} file_pair;

static int cmp_pair(const void *a, const void *b) {
    return zarr_cmp(((const file_pair *)a)->name, ((const file_pair *)b)->name);
}

/* Sort "l" into the packing order.  0 or EXIT_FAIL (out of memory). */
static int zarr_sort(file_list *l) {
    if (l->n < 2) return 0;
    file_pair *p = malloc(l->n * sizeof *p);
    if (!p) return nomem();
    for (size_t i = 0; i < l->n; i++) p[i] = (file_pair){l->src[i], l->name[i]};
    qsort(p, l->n, sizeof *p, cmp_pair);
    for (size_t i = 0; i < l->n; i++) l->src[i] = p[i].src, l->name[i] = p[i].name;
    free(p);
    return 0;
}

/* The directories from the store's root down to the one being walked,
 * to find symbolic links that lead back up (a loop). */
typedef struct dir_chain {
    dev_t dev;
    ino_t ino;
    const struct dir_chain *up;
} dir_chain;

static void zarr_problem(int *problems, const char *path, const char *what) {
    fprintf(stderr, "%s: ", prog);
    text_name(stderr, path, strlen(path));
    fprintf(stderr, ": %s\n", what);
    (*problems)++;
}

/* Add every file under "dir" (following symbolic links) with names
 * "prefix" + its path below dir.  Problems (a loop, a name that is not
 * UTF-8, a file that is not regular, an unreadable directory) are printed
 * and counted in *problems, and the walk goes on to report them all.
 * Returns 0, or EXIT_FAIL when out of memory. */
static int add_zarr_dir(file_list *l, const char *dir, const char *prefix, const dir_chain *chain, int *problems) {
    DIR *d = opendir(dir);
    if (!d) {
        zarr_problem(problems, dir, strerror(errno));
        return 0;
    }
    char **names = NULL;
    size_t n = 0;
    int oom = sorted_names(d, &names, &n);
    for (size_t i = 0; i < n; i++) {
        char *path = oom ? NULL : join(dir, names[i]);
        char *name = oom ? NULL : (*prefix ? join(prefix, names[i]) : strdup(names[i]));
        struct stat st;
        if (oom || !path || !name) {
            oom = 1;
        } else if (!valid_utf8(names[i])) {
            zarr_problem(problems, path, "the name is not UTF-8 (ZIP member names are)");
        } else if (lstat(path, &st) != 0) {
            zarr_problem(problems, path, strerror(errno));
        } else if (S_ISLNK(st.st_mode) && stat(path, &st) != 0) {
            if (errno == ELOOP) {
                zarr_problem(problems, path, "symbolic link loop");
            } else {
                char what[300];
                snprintf(what, sizeof what, "broken symbolic link (%s)", strerror(errno));
                zarr_problem(problems, path, what);
            }
        } else if (S_ISDIR(st.st_mode)) {
            const dir_chain *c = chain;
            while (c && !(c->dev == st.st_dev && c->ino == st.st_ino)) c = c->up;
            if (c) {
                zarr_problem(problems, path, "symbolic link loop (it leads back to a directory above it)");
            } else {
                dir_chain here = {st.st_dev, st.st_ino, chain};
                if (add_zarr_dir(l, path, name, &here, problems)) oom = 1;
            }
        } else if (S_ISREG(st.st_mode)) {
            int rc = fl_add(l, path, name);
            path = name = NULL; /* owned by the list (or freed) */
            if (rc) oom = 1;
        } else {
            zarr_problem(problems, path, "not a regular file or directory");
        }
        free(path), free(name), free(names[i]);
    }
    free(names);
    return oom ? nomem() : 0;
}

/* The files of the Zarr store "dir" in the packing order.  Returns 0, or
 * EXIT_FAIL after the messages (and "nothing written"). */
static int collect_zarr(file_list *l, const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
        fprintf(stderr, "%s: nothing written\n", prog);
        return EXIT_FAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s: not a directory (a Zarr directory store is a directory)\n", prog, dir);
        fprintf(stderr, "%s: nothing written\n", prog);
        return EXIT_FAIL;
    }
    char *d = strdup(dir);
    if (!d) return nomem();
    size_t k = strlen(d);
    while (k > 1 && d[k - 1] == '/') d[--k] = '\0';
    int problems = 0;
    dir_chain root = {st.st_dev, st.st_ino, NULL};
    int rc = add_zarr_dir(l, d, "", &root, &problems);
    if (!rc && !problems) {
        int node = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (!strcmp(l->name[i], "TACO_HEADER") || !strcmp(l->name[i], "TACO_INDEX")) {
                fprintf(stderr, "%s: %s/%s: the name clashes with the archive's own member\n", prog, d,
                        l->name[i]);
                problems++;
            }
            for (size_t j = 0; j < ZARR_NODE_DOCS; j++) node |= !strcmp(l->name[i], ZARR_META[j]);
        }
        if (!node) {
            fprintf(stderr, "%s: %s: not a Zarr store: no zarr.json, .zgroup or .zarray at its root\n", prog, d);
            problems++;
        }
    }
    free(d);
    if (!rc && !problems) rc = zarr_sort(l);
    else if (!rc) rc = EXIT_FAIL;
    if (rc) fprintf(stderr, "%s: nothing written\n", prog);
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
    int on = a->progress == 1 || total > (256u << 20) || a->files.n > 2000;
    if (!on) return;
    progress_start(ps, label);
    a->opts.progress = progress_cb;
    a->opts.progress_user = ps;
}

/* ---- opening and reading archives: the one place ----------------------- */

/* The remote settings, read from the environment once per run.  Returns 0
 * or EXIT_USAGE (a malformed variable, named in the message). */
static int remote_settings(cli_ctx *ctx) {
    if (ctx->remote_ready) return 0;
    char msg[512];
    if (cli_remote_options_from_env(&ctx->remote, msg, sizeof msg) != 0) return usage(ctx, "%s", msg);
    ctx->remote_ready = 1;
    return 0;
}

/* The one place where the command opens a path or URL: a byte source with
 * the run's remote settings.  Returns the library's code (0, or a failure
 * with "err" filled); a usage problem with the settings is returned as
 * *status instead (then nothing was opened). */
static int open_source(cli_ctx *ctx, const char *path, tacozip_source **src, tacozip_error *err, int *status) {
    *src = NULL;
    *status = remote_settings(ctx);
    if (*status) return 0;
    int rc = tacozip_source_open(path, &ctx->remote, src, err);
    if (rc) *src = NULL;
    return rc;
}

/* Open the archive at "path" with the run's flags.  Returns 0, or an exit
 * status after a message. */
static int open_archive(cli_ctx *ctx, const char *path, unsigned flags, tacozip_archive **ar) {
    *ar = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_source *src;
    int status, rc = open_source(ctx, path, &src, &err, &status);
    if (status) return status;
    if (rc == TACOZ_OK) rc = tacozip_open_source(src, flags | ctx->read_flags, ar, &err);
    tacozip_source_close(src); /* the archive holds its own reference */
    if (rc) {
        *ar = NULL;
        return fail(rc, &err, ctx->shown);
    }
    return 0;
}

/* Close, printing the request count of a remote archive with --stats. */
static void close_archive(const cli_ctx *ctx, tacozip_archive *ar) {
    uint64_t req, bytes;
    if (ctx->show_stats && ar && tacozip_remote_stats(ar, &req, &bytes) == TACOZ_OK)
        fprintf(stderr, "%s: %" PRIu64 " requests, %" PRIu64 " bytes received\n", prog, req, bytes);
    tacozip_close(ar);
}

/* Read the header of "path" (one 157-byte read; one request for a URL).
 * Returns 0 or an exit status after a message. */
static int read_header(cli_ctx *ctx, const char *path, taco_meta_array_t *m) {
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_source *src;
    int status, rc = open_source(ctx, path, &src, &err, &status);
    if (status) return status;
    if (rc == TACOZ_OK) rc = tacozip_read_header_source(src, m, &err);
    tacozip_source_close(src);
    return rc ? fail(rc, &err, ctx->shown) : 0;
}

/* Validate "path": the library's verdict (0 or a code) with "err" filled;
 * a usage problem with the settings is returned as *status. */
static int validate_archive(cli_ctx *ctx, const char *path, int level, tacozip_error *err, int *status) {
    tacozip_source *src;
    int rc = open_source(ctx, path, &src, err, status);
    if (*status) return 0;
    if (rc == TACOZ_OK) rc = tacozip_validate_source(src, level, err);
    tacozip_source_close(src);
    return rc;
}

/* The read options every reading command takes: --index-first, --stats. */
static void read_options(cli_ctx *ctx, const parsed_args *a) {
    if (has_opt(a, OPT_INDEX_FIRST)) ctx->read_flags |= TACOZIP_OPEN_INDEX_FIRST;
    ctx->show_stats = has_opt(a, OPT_STATS);
}

/* --wait SECONDS: how long a write may wait for another writer (0: not at all). */
static int wait_seconds(const cli_ctx *ctx, const parsed_args *pa, double *out) {
    *out = 0;
    const char *s = opt_value(pa, OPT_WAIT);
    if (!s) return 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 86400)
        return usage(ctx, "--wait needs a number of seconds from 0 to 86400, not '%s'", s);
    *out = v;
    return 0;
}

/* A write that found the archive locked by another writer (nothing was
 * changed): whether to try again, after a pause, within "until". */
static int locked_retry(int rc, double until, tacozip_error *err) {
    if (rc != TACOZ_ERR_LOCKED || now_s() + 0.05 > until) return 0;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    *err = (tacozip_error)TACOZIP_ERROR_INIT;
    return 1;
}

/* ---- commands ---------------------------------------------------------- */

/* create --plan: the layout and the entries, nothing written. */
static int print_plan(cli_ctx *ctx, write_args *a, int json) {
    size_t n = a->files.n;
    uint64_t *sizes = malloc((n ? n : 1) * sizeof *sizes), *lho = malloc((n ? n : 1) * sizeof *lho),
             *data = malloc((n ? n : 1) * sizeof *data), dir = 0;
    int status = 0;
    if (!sizes || !lho || !data) status = nomem();
    for (size_t i = 0; !status && i < n; i++) {
        struct stat st;
        if (stat(a->files.src[i], &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, a->files.src[i], strerror(errno));
            status = EXIT_FAIL;
        } else {
            sizes[i] = (uint64_t)st.st_size;
        }
    }
    tacozip_error err = TACOZIP_ERROR_INIT;
    taco_meta_array_t meta;
    int rc;
    if (!status && (rc = tacozip_plan((const char *const *)a->files.name, sizes, n, a->plan, a->n_plan, &a->opts, lho,
                                      data, &dir, &meta, &err)))
        status = fail(rc, &err, ctx->shown);
    if (!status && json) {
        printf("{\"members\": [");
        for (size_t i = 0; i < n; i++) {
            printf("%s{\"name\": ", i ? ", " : "");
            json_str(stdout, a->files.name[i], strlen(a->files.name[i]));
            printf(", \"header_offset\": %llu, \"data_offset\": %llu, \"size\": %llu}", (unsigned long long)lho[i],
                   (unsigned long long)data[i], (unsigned long long)sizes[i]);
        }
        printf("], \"entries\": [");
        for (unsigned k = 0; k < meta.count; k++)
            printf("%s[%llu, %llu]", k ? ", " : "", (unsigned long long)meta.entries[k].offset,
                   (unsigned long long)meta.entries[k].length);
        printf("], \"directory_offset\": %llu}\n", (unsigned long long)dir);
    } else if (!status) {
        printf("%14s %14s %14s  %s\n", "HEADER_OFFSET", "DATA_OFFSET", "SIZE", "NAME");
        for (size_t i = 0; i < n; i++)
            printf("%14llu %14llu %14llu  %s\n", (unsigned long long)lho[i], (unsigned long long)data[i],
                   (unsigned long long)sizes[i], a->files.name[i]);
        printf("directory at %llu\n", (unsigned long long)dir);
        for (unsigned k = 0; k < meta.count; k++)
            printf("entry %u: %llu:%llu\n", k, (unsigned long long)meta.entries[k].offset,
                   (unsigned long long)meta.entries[k].length);
    }
    free(sizes), free(lho), free(data);
    return status;
}

/* create with "-": at most one, named with --as, not with --plan or
 * --index. */
static int check_stdin_member(cli_ctx *ctx, const parsed_args *pa, write_args *a) {
    if (a->has_stdin > 1) return usage(ctx, "'-' (standard input) may be given once");
    if (has_opt(pa, OPT_PLAN)) return usage(ctx, "--plan needs every size: '-' (standard input) has none");
    if (a->opts.index) return usage(ctx, "--index needs every size: '-' (standard input) has none");
    for (size_t i = 0; i < a->files.n; i++)
        if (!strcmp(a->files.src[i], "-") && !strcmp(a->files.name[i], "-"))
            return usage(ctx, "'-' (standard input) needs --as NAME after it");
    return 0;
}

/* One read of standard input, for tacozip_writer_add_stream(). */
static int read_stdin(void *user, void *buf, size_t cap, size_t *got, tacozip_error *err) {
    (void)user;
    for (;;) {
        ssize_t n = read(0, buf, cap);
        if (n >= 0) {
            *got = (size_t)n;
            return TACOZ_OK;
        }
        if (errno == EINTR) continue;
        snprintf(err->message, sizeof err->message, "standard input: %s", strerror(errno));
        err->code = TACOZ_ERR_IO;
        return TACOZ_ERR_IO;
    }
}

/* create with "-": the streaming writer, standard input spooled (its size
 * is not known) in $TMPDIR. */
static int create_streaming(cli_ctx *ctx, const char *out, write_args *a, tacozip_error *err) {
    const char *tmp = getenv("TMPDIR");
    a->opts.spool_dir = tmp && *tmp ? tmp : "/tmp";
    tacozip_writer *w = NULL;
    a->opts.progress = NULL; /* a bar needs the total, which a stream does not give */
    int rc = tacozip_writer_open(out, &a->opts, tacozip_is_url(out) ? &ctx->remote : NULL, &w, err);
    if (rc) return rc;
    if ((rc = tacozip_writer_set_entries(w, a->plan, a->n_plan, err))) {
        tacozip_writer_abort(w);
        return rc;
    }
    for (size_t i = 0; i < a->files.n && rc == TACOZ_OK; i++)
        rc = !strcmp(a->files.src[i], "-")
                 ? tacozip_writer_add_stream(w, a->files.name[i], TACOZIP_SIZE_UNKNOWN, read_stdin, NULL, 0, err)
                 : tacozip_writer_add_file(w, a->files.src[i], a->files.name[i], err);
    if (rc) {
        tacozip_writer_abort(w);
        return rc;
    }
    return tacozip_writer_close(w, NULL, err);
}

/* create --zarr without -e: entry 0 is the span of the metadata documents
 * (the first members, in pack order). */
static int zarr_entry(write_args *a) {
    size_t k = 0;
    while (k < a->files.n && zarr_meta_rank(a->files.name[k]) >= 0) k++;
    const char **names = malloc((k ? k : 1) * sizeof *names);
    if (!names) return nomem();
    for (size_t i = 0; i < k; i++) names[i] = a->files.name[i];
    a->member_names[0] = names;
    a->plan[0] = (tacozip_entry_plan)TACOZIP_ENTRY_PLAN_INIT;
    a->plan[0].kind = TACOZIP_ENTRY_MEMBERS, a->plan[0].names = names, a->plan[0].n_names = k;
    a->n_plan = 1, a->planned = 1;
    return 0;
}

static int cmd_create(cli_ctx *ctx, const parsed_args *pa) {
    const char *out = pa->pos[0];
    const char *zarr = opt_value(pa, OPT_ZARR);
    if (zarr && (pa->npos > 1 || has_opt(pa, OPT_FILES_FROM) || has_opt(pa, OPT_AS)))
        return usage(ctx, "--zarr DIR takes no other FILE, DIR or -T LIST (it packs DIR alone)");
    if (has_opt(pa, OPT_JSON) && !has_opt(pa, OPT_PLAN)) return usage(ctx, "--json goes with --plan");
    write_args a;
    int rc = collect_write_args(ctx, pa, &a);
    if (!rc && zarr) rc = collect_zarr(&a.files, zarr);
    /* the default entry: one (0,0), as the original; with --zarr, the
     * metadata block */
    if (!rc && zarr && a.n_plan == 0) rc = zarr_entry(&a);
    double wait = 0;
    if (!rc) rc = wait_seconds(ctx, pa, &wait);
    const int remote = tacozip_is_url(out);
    if (!rc && remote && (rc = remote_settings(ctx)) == 0 && strncasecmp(out, "s3://", 5) != 0)
        rc = usage(ctx, "%s: archives are written to local files and s3:// URLs only", ctx->shown);
    if (!rc && a.has_stdin) rc = check_stdin_member(ctx, pa, &a);
    if (rc || has_opt(pa, OPT_PLAN)) {
        if (!rc) rc = print_plan(ctx, &a, has_opt(pa, OPT_JSON));
        free_plan(&a);
        free_files(&a.files);
        return rc;
    }
    if (a.meta.count == 0) a.meta.count = 1;
    progress_state ps = {0};
    setup_progress(&a, &ps, "create");
    tacozip_error err = TACOZIP_ERROR_INIT;
    const double until = now_s() + wait;
    do
        rc = a.has_stdin ? create_streaming(ctx, out, &a, &err)
             : a.planned || remote
                 ? tacozip_create_planned(out, (const char *const *)a.files.src, (const char *const *)a.files.name,
                                          a.files.n, a.plan, a.n_plan, &a.opts, remote ? &ctx->remote : NULL, &err)
                 : tacozip_create_ex(out, (const char *const *)a.files.src, (const char *const *)a.files.name,
                                     a.files.n, &a.meta, &a.opts, &err);
    while (locked_retry(rc, until, &err));
    if (ps.on && rc) fputc('\n', stderr);
    int status = rc ? fail_write(rc, &err, ctx->shown) : 0;
    free_plan(&a);
    free_files(&a.files);
    return status;
}

static int cmd_append(cli_ctx *ctx, const parsed_args *pa) {
    const char *zip = pa->pos[0];
    if (pa->npos < 2 && !has_opt(pa, OPT_FILES_FROM)) return usage(ctx, "needs ARCHIVE and FILES (or -T LIST)");
    write_args a;
    int rc = collect_write_args(ctx, pa, &a);
    if (rc) {
        free_files(&a.files);
        return rc;
    }
    double wait;
    if ((rc = wait_seconds(ctx, pa, &wait))) {
        free_files(&a.files);
        return rc;
    }
    progress_state ps = {0};
    setup_progress(&a, &ps, "append");
    tacozip_error err = TACOZIP_ERROR_INIT;
    const double until = now_s() + wait;
    do
        rc = tacozip_append_ex(zip, (const char *const *)a.files.src, (const char *const *)a.files.name, a.files.n,
                               &a.opts, &err);
    while (locked_retry(rc, until, &err));
    if (ps.on && rc) fputc('\n', stderr);
    free_files(&a.files);
    return rc ? fail_write(rc, &err, ctx->shown) : 0;
}

static int cmd_header(cli_ctx *ctx, const parsed_args *pa) {
    taco_meta_array_t m;
    int rc = read_header(ctx, pa->pos[0], &m);
    if (rc) return rc;
    if (has_opt(pa, OPT_JSON)) {
        printf("{\"count\": %u, \"entries\": [", m.count);
        for (int i = 0; i < m.count; i++)
            printf("%s[%" PRIu64 ", %" PRIu64 "]", i ? ", " : "", m.entries[i].offset, m.entries[i].length);
        printf("]}\n");
    } else {
        for (int i = 0; i < m.count; i++) printf("%" PRIu64 " %" PRIu64 "\n", m.entries[i].offset, m.entries[i].length);
    }
    return fflush(stdout) ? EXIT_FAIL : 0;
}

static int cmd_update(cli_ctx *ctx, const parsed_args *pa) {
    taco_meta_array_t m;
    int rc = parse_entries(ctx, pa, &m);
    if (rc) return rc;
    double wait;
    if ((rc = wait_seconds(ctx, pa, &wait))) return rc;
    tacozip_error err = TACOZIP_ERROR_INIT;
    const double until = now_s() + wait;
    do
        rc = tacozip_update_header_ex(pa->pos[0], &m, &err);
    while (locked_retry(rc, until, &err));
    return rc ? fail(rc, &err, ctx->shown) : 0;
}

static int cmd_recover(cli_ctx *ctx, const parsed_args *pa) {
    double wait;
    int rc = wait_seconds(ctx, pa, &wait), what = TACOZIP_RECOVERED_NOTHING;
    if (rc) return rc;
    tacozip_error err = TACOZIP_ERROR_INIT;
    const double until = now_s() + wait;
    do
        rc = tacozip_recover(pa->pos[0], &what, &err);
    while (locked_retry(rc, until, &err));
    if (rc) return fail(rc, &err, ctx->shown);
    static const char *const said[] = {
        [TACOZIP_RECOVERED_NOTHING] = "nothing to recover (no journal)",
        [TACOZIP_RECOVERED_APPEND] = "rolled back an interrupted append: the archive is as it was before it",
        [TACOZIP_RECOVERED_UPDATE] = "rolled back an interrupted header update: the old header is back",
        [TACOZIP_RECOVERED_STALE] = "removed a journal that did not belong to this file (the archive is unchanged)",
    };
    printf("%s: %s\n", ctx->shown, said[what]);
    return fflush(stdout) ? EXIT_FAIL : 0;
}

static int cmd_ls(cli_ctx *ctx, const parsed_args *pa) {
    read_options(ctx, pa);
    int json = has_opt(pa, OPT_JSON);
    tacozip_archive *ar;
    int rc = open_archive(ctx, pa->pos[0], has_opt(pa, OPT_VERIFY_LOCAL) ? TACOZIP_OPEN_VERIFY_LOCAL : 0, &ar);
    if (rc) return rc;
    size_t n = tacozip_count(ar);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
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
            printf("%12" PRIu64 " %12" PRIu64 " %08x ", m.data_offset, m.size, m.crc32);
            text_name(stdout, m.name, m.name_len);
            putchar('\n');
        }
    }
    if (json) printf("\n]\n");
    close_archive(ctx, ar);
    return fflush(stdout) == 0 ? 0 : EXIT_FAIL;
}

/* "A-B" or "A-" into *a, *b (b = UINT64_MAX for "A-"). */
static int parse_range(const cli_ctx *ctx, const char *range, uint64_t *a, uint64_t *b) {
    const char *dash = strchr(range, '-');
    if (!dash || dash == range) return usage(ctx, "--range must be A-B or A-, not '%s'", range);
    char *as = strndup(range, (size_t)(dash - range));
    if (!as) return nomem();
    int rc = parse_u64(ctx, as, "range start", a);
    free(as);
    if (rc) return rc;
    *b = UINT64_MAX;
    if (dash[1]) {
        if ((rc = parse_u64(ctx, dash + 1, "range end", b))) return rc;
        if (*b < *a) return usage(ctx, "range end before its start in '%s'", range);
    }
    return 0;
}

static int cmd_cat(cli_ctx *ctx, const parsed_args *pa) {
    read_options(ctx, pa);
    const char *member = pa->pos[1], *range = opt_value(pa, OPT_RANGE);
    uint64_t a = 0, b = UINT64_MAX;
    int rc = range ? parse_range(ctx, range, &a, &b) : 0;
    if (rc) return rc;
    tacozip_archive *ar;
    if ((rc = open_archive(ctx, pa->pos[0], 0, &ar))) return rc;
    size_t idx;
    if (tacozip_find(ar, member, (size_t)-1, &idx) != TACOZ_OK) {
        fprintf(stderr, "%s: %s: no member named \"%s\"\n", prog, ctx->shown, member);
        close_archive(ctx, ar);
        return EXIT_FAIL;
    }
    tacozip_member m = TACOZIP_MEMBER_INIT;
    tacozip_member_at(ar, idx, &m);
    if (range && a >= m.size) {
        fprintf(stderr, "%s: %s: range starts at %" PRIu64 ", past the %" PRIu64 " bytes of \"%s\"\n", prog, ctx->shown,
                a, m.size, member);
        close_archive(ctx, ar);
        return EXIT_FAIL;
    }
    if (m.size && b >= m.size) b = m.size - 1;
    rc = TACOZ_OK;
    int status = 0;
    tacozip_error err = TACOZIP_ERROR_INIT;
    /* The whole member: its CRC-32 is checked, by the library when it is
     * read in one piece (nothing written if it fails), else here as it
     * streams (the failure reported after the bytes). */
    const int whole = !range;
    uint32_t crc = 0;
    if (m.size) {
        size_t cap = 1 << 20;
        unsigned char *buf = malloc(cap);
        if (!buf) status = nomem();
        for (uint64_t off = a; buf && off <= b && rc == TACOZ_OK;) {
            size_t want = b - off + 1 < cap ? (size_t)(b - off + 1) : cap, got = 0;
            rc = tacozip_read_member_ex(ar, idx, off, buf, want, &got, &err);
            if (rc == TACOZ_OK && fwrite(buf, 1, got, stdout) != got) {
                fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno));
                status = EXIT_FAIL;
                break;
            }
            if (rc == TACOZ_OK && whole) crc = tacozip_crc32(crc, buf, got);
            off += got;
            if (got == 0) break;
        }
        free(buf);
        if (rc == TACOZ_OK && !status && whole && crc != m.crc32) {
            fprintf(stderr, "%s: %s: member \"%s\": CRC-32 of the bytes read is %08x, the directory says %08x\n", prog,
                    ctx->shown, member, crc, m.crc32);
            status = EXIT_FAIL;
        }
    }
    if (rc) status = fail(rc, &err, ctx->shown);
    close_archive(ctx, ar);
    if (fflush(stdout) && !status) {
        fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno));
        status = EXIT_FAIL;
    }
    return status;
}

static int cmd_extract(cli_ctx *ctx, const parsed_args *pa) {
    read_options(ctx, pa);
    const char *dest = opt_value(pa, OPT_DIR);
    if (!dest) dest = ".";
    unsigned flags = (has_opt(pa, OPT_OVERWRITE) ? TACOZIP_EXTRACT_OVERWRITE : 0) |
                     (has_opt(pa, OPT_SKIP_HEADER) ? TACOZIP_EXTRACT_SKIP_HEADER : 0);
    int progress = progress_choice(pa);
    size_t n = pa->npos - 1;
    tacozip_archive *ar;
    int rc = open_archive(ctx, pa->pos[0], 0, &ar);
    if (rc) return rc;
    progress_state ps = {0};
    if (progress == 1 || (progress == -1 && isatty(2) && tacozip_archive_size(ar) > (256u << 20)))
        progress_start(&ps, "extract");
    tacozip_error err = TACOZIP_ERROR_INIT;
    rc = tacozip_extract(ar, dest, n ? pa->pos + 1 : NULL, n, flags, ps.on ? progress_cb : NULL, &ps, &err);
    if (ps.on && rc) fputc('\n', stderr);
    close_archive(ctx, ar);
    return rc ? fail(rc, &err, ctx->shown) : 0;
}

static int cmd_span(cli_ctx *ctx, const parsed_args *pa) {
    read_options(ctx, pa);
    const char *prefix = opt_value(pa, OPT_PREFIX);
    unsigned flags = has_opt(pa, OPT_DATA_ONLY) ? TACOZIP_SPAN_DATA_ONLY : 0;
    int json = has_opt(pa, OPT_JSON);
    const char *const *names = pa->pos + 1;
    size_t n = pa->npos - 1;
    if (!n && !prefix) return usage(ctx, "needs MEMBERS or --prefix P");
    tacozip_archive *ar;
    int rc = open_archive(ctx, pa->pos[0], 0, &ar);
    if (rc) return rc;
    size_t count = tacozip_count(ar), k = 0;
    size_t *idx = malloc((n + count + 1) * sizeof *idx);
    if (!idx) {
        close_archive(ctx, ar);
        return nomem();
    }
    for (size_t i = 0; i < n; i++) {
        if (tacozip_find(ar, names[i], (size_t)-1, &idx[k]) != TACOZ_OK) {
            fprintf(stderr, "%s: %s: no member named \"%s\"\n", prog, ctx->shown, names[i]);
            rc = EXIT_FAIL;
        } else {
            k++;
        }
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
        fprintf(stderr, "%s: %s: no member matches\n", prog, ctx->shown);
        rc = EXIT_FAIL;
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
    close_archive(ctx, ar);
    if (fflush(stdout) && !rc) rc = EXIT_FAIL;
    return rc;
}

/* ---- refs: kerchunk references ---------------------------------------- */

typedef struct {
    const char *name;
    size_t len;
} name_ref;

static int cmp_name_ref(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The selected members' indexes into *out (directory entries left out,
 * names under "prefix"); 0, or EXIT_FAIL after a message: a compressed or
 * encrypted member (each one named), a name given twice, none at all. */
static int refs_select(const cli_ctx *ctx, tacozip_archive *ar, const char *prefix, size_t plen, size_t **out,
                       size_t *nout) {
    size_t count = tacozip_count(ar), k = 0, bad = 0;
    size_t *idx = malloc((count + 1) * sizeof *idx);
    name_ref *names = malloc((count + 1) * sizeof *names);
    if (!idx || !names) {
        free(idx), free(names);
        return nomem();
    }
    for (size_t i = 0; i < count; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, i, &m);
        if (m.name_len && m.name[m.name_len - 1] == '/') continue; /* a directory entry */
        if (m.name_len < plen || memcmp(m.name, prefix, plen)) continue;
        if (m.method != 0 || (m.flags & 0x41)) { /* bit 0: encrypted; bit 6: strong encryption */
            fprintf(stderr, "%s: %s: member \"", prog, ctx->shown);
            text_name(stderr, m.name, m.name_len);
            if (m.method != 0)
                fprintf(stderr, "\" cannot be referenced: compressed (method %u); only STORED members hold their "
                                "bytes as they are\n", m.method);
            else
                fprintf(stderr, "\" cannot be referenced: encrypted; only STORED members hold their bytes as they "
                                "are\n");
            bad++;
        }
        names[k] = (name_ref){m.name + plen, m.name_len - plen};
        idx[k++] = i;
    }
    int rc = 0;
    if (bad) {
        fprintf(stderr, "%s: %s: %zu member%s cannot be referenced: nothing written\n", prog, ctx->shown, bad,
                bad > 1 ? "s" : "");
        rc = EXIT_FAIL;
    } else if (k == 0) {
        fprintf(stderr, "%s: %s: no member%s%s%s to reference\n", prog, ctx->shown, plen ? " under \"" : "",
                plen ? prefix : "", plen ? "\"" : "");
        rc = EXIT_FAIL;
    } else {
        qsort(names, k, sizeof *names, cmp_name_ref);
        for (size_t i = 1; i < k && !rc; i++)
            if (!cmp_name_ref(&names[i - 1], &names[i])) {
                fprintf(stderr, "%s: %s: member name \"", prog, ctx->shown);
                text_name(stderr, prefix, plen);
                text_name(stderr, names[i].name, names[i].len);
                fprintf(stderr, "\" appears twice: its reference would be ambiguous\n");
                rc = EXIT_FAIL;
            }
    }
    free(names);
    if (rc) {
        free(idx);
        return rc;
    }
    *out = idx, *nout = k;
    return 0;
}

/* The reference set as JSON on "f": names as ls --json writes them. */
static void refs_write(FILE *f, tacozip_archive *ar, const size_t *idx, size_t n, size_t plen, const char *url) {
    fputs("{\"version\": 1, \"refs\": {", f);
    for (size_t i = 0; i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, idx[i], &m);
        fputs(i ? ",\n  " : "\n  ", f);
        json_str(f, m.name + plen, m.name_len - plen);
        fputs(": [", f);
        json_str(f, url, strlen(url));
        fprintf(f, ", %" PRIu64 ", %" PRIu64 "]", m.data_offset, m.size);
    }
    fputs("\n}}\n", f);
}

static int cmd_refs(cli_ctx *ctx, const parsed_args *pa) {
    read_options(ctx, pa);
    const char *path = pa->pos[0], *format = opt_value(pa, OPT_FORMAT), *out = opt_value(pa, OPT_OUTPUT);
    const char *url = opt_value(pa, OPT_URL), *p = opt_value(pa, OPT_PREFIX);
    if (format && !strcmp(format, "parquet"))
        return usage(ctx, "--format parquet (kerchunk's Parquet layout) is written by the Python package: "
                          "python -m tacozip.refs %s --format parquet -o DIR", path);
    if (format && strcmp(format, "json")) return usage(ctx, "unknown format '%s' (json)", format);
    if (out && !*out) return usage(ctx, "-o needs a file name");
    char *prefix = NULL;
    size_t plen = p ? strlen(p) : 0;
    if (plen && asprintf(&prefix, "%s%s", p, p[plen - 1] == '/' ? "" : "/") < 0) return nomem();
    plen = prefix ? strlen(prefix) : 0;
    tacozip_archive *ar;
    int rc = open_archive(ctx, path, 0, &ar);
    if (rc) {
        free(prefix);
        return rc;
    }
    char *real = NULL;
    if (!url && !tacozip_is_url(path)) {
        if (!(real = realpath(path, NULL))) {
            fprintf(stderr, "%s: %s: %s\n", prog, ctx->shown, strerror(errno));
            rc = EXIT_FAIL;
        }
        url = real;
    } else if (!url) {
        url = path;
    }
    size_t *idx = NULL, n = 0;
    if (!rc) rc = refs_select(ctx, ar, prefix ? prefix : "", plen, &idx, &n);
    if (!rc && (!out || !strcmp(out, "-"))) {
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
        refs_write(stdout, ar, idx, n, plen, url);
        if (fflush(stdout) || ferror(stdout)) {
            fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno));
            rc = EXIT_FAIL;
        }
    } else if (!rc) {
        /* the whole set in a temporary file beside OUT, then renamed to it:
         * OUT is the complete set or what it was before, never a part */
        char *tmp = NULL;
        int fd = -1;
        FILE *f = NULL;
        if (asprintf(&tmp, "%s.tmp-XXXXXX", out) < 0) {
            tmp = NULL;
            rc = nomem();
        } else if ((fd = mkstemp(tmp)) < 0 || !(f = fdopen(fd, "w"))) {
            fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
            if (fd >= 0) close(fd), unlink(tmp);
            rc = EXIT_FAIL;
        } else {
            mode_t um = umask(0);
            umask(um);
            refs_write(f, ar, idx, n, plen, url);
            int bad = fflush(f) || ferror(f) || fchmod(fd, 0666 & ~um) || fsync(fd);
            int err = errno;
            if (fclose(f)) bad = 1, err = errno;
            if (!bad && rename(tmp, out)) bad = 1, err = errno;
            if (bad) {
                fprintf(stderr, "%s: %s: %s (nothing written)\n", prog, out, strerror(err));
                unlink(tmp);
                rc = EXIT_FAIL;
            }
        }
        free(tmp);
    }
    free(idx);
    free(real);
    free(prefix);
    close_archive(ctx, ar);
    return rc;
}

/* Whether a validation result says something about the archive (valid, or
 * which structure is wrong), rather than that it could not be read (I/O,
 * network, memory, a malformed URL or setting): those are errors, reported
 * on stderr like every other command's, except with --json. */
static int is_verdict(int rc) {
    switch (rc) {
    case TACOZ_ERR_IO:
    case TACOZ_ERR_PARAM:
    case TACOZ_ERR_NOMEM:
    case TACOZ_ERR_CHANGED:
    case TACOZ_ERR_NETWORK:
    case TACOZ_ERR_RANGE_IGNORED:
    case TACOZ_ERR_NO_REMOTE:
        return 0;
    default:
        return 1;
    }
}

static int cmd_validate(cli_ctx *ctx, const parsed_args *pa) {
    static const char *const lv[] = {"quick", "normal", "deep"};
    int level = TACOZIP_VALIDATE_NORMAL, json = has_opt(pa, OPT_JSON);
    const char *ls = opt_value(pa, OPT_LEVEL);
    if (ls) {
        if (!strcmp(ls, "quick")) level = TACOZIP_VALIDATE_QUICK;
        else if (!strcmp(ls, "normal")) level = TACOZIP_VALIDATE_NORMAL;
        else if (!strcmp(ls, "deep")) level = TACOZIP_VALIDATE_DEEP;
        else return usage(ctx, "unknown level '%s' (quick, normal or deep)", ls);
    }
    tacozip_error err = TACOZIP_ERROR_INIT;
    int status;
    int rc = validate_archive(ctx, pa->pos[0], level, &err, &status);
    if (status) return status;
    if (!json && !is_verdict(rc)) return fail(rc, &err, ctx->shown); /* not read: an error, not a verdict */
    if (json) {
        printf("{\"valid\": %s, \"code\": %d, \"level\": \"%s\", \"message\": ", rc ? "false" : "true", rc, lv[level]);
        const char *msg = rc ? (err.message[0] ? err.message : tacozip_strerror(rc)) : "valid";
        json_str(stdout, msg, strlen(msg));
        printf("}\n");
    } else if (rc == 0) {
        printf("%s: valid (%s)\n", ctx->shown, lv[level]);
    } else {
        printf("%s: INVALID (code %d: %s)%s", ctx->shown, rc, tacozip_strerror(rc), err.message[0] ? "\n  " : "");
        put_message(stdout, err.message);
        putchar('\n');
    }
    if (fflush(stdout)) return EXIT_FAIL;
    return rc ? EXIT_FAIL : 0;
}

static int cmd_version(cli_ctx *ctx, const parsed_args *pa) {
    (void)ctx, (void)pa;
    printf("tacozip %s\n", tacozip_get_version());
    return fflush(stdout) ? EXIT_FAIL : 0;
}

static int cmd_help(cli_ctx *ctx, const parsed_args *pa);

static const cmd_spec COMMANDS[] = {
    {"create", NULL, HELP_CREATE, OPTS_CREATE, 1, POS_ANY, "OUT (and FILES)", cmd_create},
    {"append", NULL, HELP_APPEND, OPTS_APPEND, 1, POS_ANY, "ARCHIVE and FILES", cmd_append},
    {"header", NULL, HELP_HEADER, OPTS_HEADER, 1, 1, "ARCHIVE", cmd_header},
    {"update", NULL, HELP_UPDATE, OPTS_UPDATE, 1, 1, "ARCHIVE", cmd_update},
    {"ls", "list", HELP_LS, OPTS_LS, 1, 1, "ARCHIVE", cmd_ls},
    {"cat", NULL, HELP_CAT, OPTS_CAT, 2, 2, "ARCHIVE and MEMBER", cmd_cat},
    {"extract", NULL, HELP_EXTRACT, OPTS_EXTRACT, 1, POS_ANY, "ARCHIVE", cmd_extract},
    {"span", NULL, HELP_SPAN, OPTS_SPAN, 1, POS_ANY, "ARCHIVE and MEMBERS or --prefix P", cmd_span},
    {"refs", NULL, HELP_REFS, OPTS_REFS, 1, 1, "ARCHIVE", cmd_refs},
    {"validate", NULL, HELP_VALIDATE, OPTS_VALIDATE, 1, 1, "ARCHIVE", cmd_validate},
    {"recover", NULL, HELP_RECOVER, OPTS_RECOVER, 1, 1, "ARCHIVE", cmd_recover},
    {"version", NULL, HELP_VERSION, OPTS_NONE, 0, 0, "no arguments", cmd_version},
    {"help", NULL, HELP_HELP, OPTS_NONE, 0, 1, "at most a COMMAND", cmd_help},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const cmd_spec *find_command(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(name, COMMANDS[i].name) || (COMMANDS[i].alias && !strcmp(name, COMMANDS[i].alias)))
            return &COMMANDS[i];
    return NULL;
}

static int cmd_help(cli_ctx *ctx, const parsed_args *pa) {
    const char *text = HELP_MAIN;
    if (pa->npos) {
        const cmd_spec *c = find_command(pa->pos[0]);
        if (!c) return usage(ctx, "unknown command '%s'", pa->pos[0]);
        text = c->help;
    }
    fputs(text, stdout);
    return fflush(stdout) ? EXIT_FAIL : 0;
}

int main(int argc, char **argv) {
    /* Past the file-size limit (ulimit -f) a write fails with EFBIG rather
     * than the process being killed mid-append: the library then puts the
     * old archive back (docs: what a host process must do). */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        fputs(HELP_MAIN, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help")) name = "help";
    else if (!strcmp(name, "--version")) name = "version";
    cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cmd = find_command(name);
    if (!ctx.cmd) return usage(NULL, "unknown command '%s'", name);
    parsed_args pa;
    int rc = parse_args(&ctx, argc, argv, 2, &pa);
    if (rc || !pa.items) return rc; /* help printed, or a usage error */
    if (pa.npos && ctx.cmd->run != cmd_help && ctx.cmd->run != cmd_version)
        tacozip_display_name(pa.pos[0], ctx.shown, sizeof ctx.shown);
    rc = ctx.cmd->run(&ctx, &pa);
    free_parsed(&pa);
    return rc;
}

