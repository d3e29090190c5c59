/*
 * tacozip.h - the public API of tacozip, a C library for TACO archives.
 *
 * A TACO archive is an ordinary STORE-only ZIP file whose first 157 bytes are
 * a member named TACO_HEADER.  Its 116-byte payload holds up to seven
 * (offset, length) byte ranges, so one small range request tells a client
 * where the interesting bytes of a remote archive are.  See docs/FORMAT.md.
 *
 * This header is the whole public interface and its manual.  It is organised
 * in the order a user meets things:
 *
 *   1. Constants, error codes, the error record, sized structs
 *   2. The TACO header (parse, serialize, read, update)
 *   3. Writing archives (create, append)
 *   4. Byte sources (files, memory, HTTP(S)/S3, caller-supplied)
 *   5. Reading archives (open, member index, byte ranges, extraction)
 *   6. Validation
 *   7. Miscellaneous (version, error strings, CRC-32, display names)
 *   8. Changes in 1.1
 *
 * Conventions that hold for every function unless its comment says
 * otherwise:
 *
 *   - Functions return an int: TACOZ_OK (0) on success, a negative code
 *     (TACOZ_ERR_* or TACOZ_INVALID_*) on failure.  tacozip_strerror() turns
 *     any code into a sentence.  The library never prints, never exits and
 *     never reads environment variables (libcurl, under it, still honours
 *     the standard proxy variables http_proxy, https_proxy, no_proxy).
 *   - Every fallible function that can say more than its code takes an
 *     optional "tacozip_error *err" (functions without it have an _ex form
 *     that has it).  When "err" is not NULL and a call fails, err->code is
 *     the returned code and err->message a sentence.  Passing NULL is always
 *     allowed.  There is no per-archive or per-thread "last error": the
 *     message belongs to the caller's record, so threads never see each
 *     other's messages.
 *   - Messages start with the display name (tacozip_display_name(): no
 *     credentials, no query string) of the file or URL they concern and
 *     ": ": the path or URL given, or a source file of create/append that
 *     failed; a function given an open archive or source starts it with the
 *     name the source was opened under.  Member names appear in double
 *     quotes.
 *   - Paths are UTF-8 byte strings as given to the operating system.
 *     Member names are UTF-8 and stored as given.
 *   - There is no global mutable state (libcurl's one-time global
 *     initialisation is done once, thread-safely, on first remote use).
 *     Distinct objects may be used from distinct threads at the same time;
 *     one tacozip_archive may be read by several threads at once, but must
 *     not be closed while another thread uses it.
 *
 * Sized structs.  Structs that the library reads (tacozip_write_options,
 * tacozip_remote_options, tacozip_source_callbacks) or fills (tacozip_error,
 * tacozip_member) begin with "uint32_t struct_size", so that later versions can add
 * fields at their end without breaking programs built against this one:
 *   - set it to sizeof the struct (the *_INIT macros do), or leave it 0: 0
 *     means "the 1.1 layout", so "tacozip_write_options o = {0};" and
 *     designated initialisers that leave struct_size out keep working;
 *   - the library reads or writes no field past "struct_size" bytes;
 *   - a non-zero struct_size smaller than the 1.1 layout is refused with
 *     TACOZ_ERR_PARAM (a tacozip_error with such a size is not written).
 *   A struct must be initialised (a tacozip_error left uninitialised on the
 *   stack may hold any struct_size); TACOZIP_ERROR_INIT does it.
 *
 * Compatibility: every function of the original tacozip C library
 * (tacozip_create, tacozip_read_header, tacozip_parse_header,
 * tacozip_serialize_header, tacozip_update_header, tacozip_detect_format,
 * tacozip_validate, tacozip_validate_error_string, tacozip_get_version) keeps
 * its name, signature and meaning.  One documented difference:
 * taco_meta_array_t.count is taken as given (see section 2).
 */
#ifndef TACOZIP_H
#define TACOZIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(TACOZIP_BUILD_SHARED)
#define TACOZIP_API __declspec(dllexport)
#elif defined(__GNUC__)
#define TACOZIP_API __attribute__((visibility("default")))
#else
#define TACOZIP_API
#endif

/* ======================================================================== */
/* 1. Constants and error codes                                             */
/* ======================================================================== */

/* The one version number of the project: CMake and the Python build read
 * it from this line. */
#define TACOZIP_VERSION_STRING "1.1.0"
#define TACOZIP_VERSION_MAJOR 1
#define TACOZIP_VERSION_MINOR 1
#define TACOZIP_VERSION_PATCH 0

/* Size of the TACO_HEADER member (local header + name + payload). */
#define TACO_HEADER_SIZE 157
/* Number of (offset, length) slots in the header. */
#define TACO_HEADER_MAX_ENTRIES 7
/* The member name, its length and the payload size. */
#define TACO_HEADER_NAME "TACO_HEADER"
#define TACO_HEADER_NAME_LEN 11
#define TACO_HEADER_PAYLOAD_SIZE 116

/* General error codes (values shared with the original library). */
#define TACOZ_OK 0
#define TACOZ_ERR_IO (-1)             /* open/read/write/fsync/rename failed */
#define TACOZ_ERR_LIBZIP (-2)         /* kept for compatibility; never returned */
#define TACOZ_ERR_INVALID_HEADER (-3) /* TACO_HEADER bytes malformed */
#define TACOZ_ERR_PARAM (-4)          /* invalid argument */
#define TACOZ_ERR_NOT_FOUND (-5)      /* member (or file) not found */
#define TACOZ_ERR_EXISTS (-6)         /* a member of that name exists */
#define TACOZ_ERR_TOO_LARGE (-7)      /* a size does not fit the format */
/* General error codes added by this implementation. */
#define TACOZ_ERR_NOMEM (-8)          /* memory allocation failed */
#define TACOZ_ERR_UNSUPPORTED (-9)    /* the member is compressed or encrypted (only STORED members are read) */
#define TACOZ_ERR_COMPRESSED TACOZ_ERR_UNSUPPORTED /* the same code under a clearer name */
#define TACOZ_ERR_UNSAFE_PATH (-40)   /* member name would escape the destination */
#define TACOZ_ERR_CANCELLED (-41)     /* the progress callback asked to stop */
#define TACOZ_ERR_CHANGED (-42)       /* a source (file or remote object) changed while read */
#define TACOZ_ERR_NETWORK (-43)       /* network or server failure (after retries) */
#define TACOZ_ERR_RANGE_IGNORED (-44) /* the server ignores Range requests */
#define TACOZ_ERR_SPLIT (-45)         /* multi-disk (split) archive */
#define TACOZ_ERR_INDEXED (-46)       /* append to an archive with an embedded TACO_INDEX */
#define TACOZ_ERR_NO_REMOTE (-47)     /* a URL, but this build has no libcurl */
#define TACOZ_ERR_NOT_REMOTE (-48)    /* a remote-only request on a local archive */
#define TACOZ_ERR_LOCKED (-49)        /* another process is writing the archive (append, update) */

/* Validation results (values shared with the original library).  Functions
 * that parse an archive return these too when the archive is malformed, so
 * one code says exactly which structure is wrong. */
#define TACOZ_VALID 0
#define TACOZ_INVALID_NOT_ZIP (-10)      /* no local header signature at 0 */
#define TACOZ_INVALID_NO_TACO (-11)      /* first member is not TACO_HEADER */
#define TACOZ_INVALID_HEADER_SIZE (-12)  /* TACO_HEADER sizes/lengths wrong */
#define TACOZ_INVALID_META_COUNT (-13)   /* header count > 7 */
#define TACOZ_INVALID_FILE_SIZE (-14)    /* file too small for its structures */
#define TACOZ_INVALID_NO_EOCD (-20)      /* end of central directory not found */
#define TACOZ_INVALID_CD_OFFSET (-21)    /* directory outside the file */
#define TACOZ_INVALID_NO_CD_ENTRY (-22)  /* TACO_HEADER missing from directory */
#define TACOZ_INVALID_REORDERED (-23)    /* TACO_HEADER not first / not at 0 */
#define TACOZ_INVALID_CRC_LFH (-30)      /* header CRC (local) wrong */
#define TACOZ_INVALID_CRC_CD (-31)       /* header CRC (directory) wrong */
/* Validation results added by this implementation. */
#define TACOZ_INVALID_CD_ENTRY (-24)     /* a directory record is malformed */
#define TACOZ_INVALID_COUNT (-25)        /* entry counts disagree */
#define TACOZ_INVALID_LFH (-26)          /* a local header is missing or disagrees */
#define TACOZ_INVALID_OVERLAP (-27)      /* members overlap each other/the directory */
#define TACOZ_INVALID_ZIP64 (-28)        /* ZIP64 records malformed */
#define TACOZ_INVALID_NAME (-29)         /* empty, NUL-containing or duplicate name */
#define TACOZ_INVALID_CRC_MEMBER (-32)   /* a member's data fails its CRC-32 */
#define TACOZ_INVALID_INDEX (-33)        /* TACO_INDEX malformed or disagrees with the directory */
#define TACOZ_INVALID_STORED_SIZE (-34)  /* a STORED member whose compressed and uncompressed sizes differ */
#define TACOZ_INVALID_DESCRIPTOR (-35)   /* the data-descriptor flag is set but no descriptor follows the data */

/* detect_format() results. */
#define TACOZIP_FORMAT_UNKNOWN 0
#define TACOZIP_FORMAT_ZIP32 1
#define TACOZIP_FORMAT_ZIP64 2

/* validate() levels. */
#define TACOZIP_VALIDATE_QUICK 0  /* header bytes only: one 157-byte read */
#define TACOZIP_VALIDATE_NORMAL 1 /* + end records, central directory, no overlaps,
                                     STORED sizes equal (TACOZ_INVALID_STORED_SIZE) */
#define TACOZIP_VALIDATE_DEEP 2   /* + header CRCs, every local header, every
                                     announced data descriptor (TACOZ_INVALID_DESCRIPTOR),
                                     every member's CRC, TACO_INDEX */

/* The error record (sized: see the top of this file).  Fill-in only on
 * failure; a successful call leaves it as it was. */
typedef struct tacozip_error {
    uint32_t struct_size; /* sizeof(tacozip_error), or 0 for the 1.1 layout */
    int code;           /* the code the call returned */
    char message[512];  /* NUL-terminated sentence */
} tacozip_error;
#define TACOZIP_ERROR_INIT {sizeof(tacozip_error), 0, {0}}

/* ======================================================================== */
/* 2. The TACO header                                                       */
/* ======================================================================== */

/* One (offset, length) byte range. */
typedef struct {
    uint64_t offset;
    uint64_t length;
} taco_meta_entry_t;

/*
 * The header payload.  "count" (0..7) says how many of "entries" are valid;
 * all seven slots are always stored, unused ones should be (0,0).
 *
 * Difference from the original library: its Python layer sets count to the
 * number of non-(0,0) pairs, so [(0,0),(5,6)] read back as [(0,0)].  Here
 * count is stored exactly as given, so entries read back as written.
 */
typedef struct {
    uint8_t count;
    taco_meta_entry_t entries[TACO_HEADER_MAX_ENTRIES];
} taco_meta_array_t;

/*
 * tacozip_parse_header() decodes the TACO_HEADER at the start of "buf".
 * "len" must be at least 157; bytes after the first 157 are ignored (clients
 * fetch 165 or 256 bytes).  Checks the local header signature, STORE method,
 * sizes (116), name (TACO_HEADER) and count <= 7.  The payload CRC is not
 * checked here (see tacozip_validate() DEEP).
 *
 * Returns TACOZ_OK and fills "out"; TACOZ_ERR_PARAM for NULL arguments or
 * len < 157; TACOZ_ERR_INVALID_HEADER for any malformed field.
 * Thread safety: pure function.
 */
TACOZIP_API int tacozip_parse_header(const unsigned char *buf, size_t len,
                                     taco_meta_array_t *out);

/*
 * tacozip_serialize_header() writes the 157 bytes of a TACO_HEADER member
 * (local header, name, payload) holding "in" into "buf" ("len" >= 157).
 * The DOS date/time fields are zero; the CRC is computed.  Slots at or past
 * in->count are written as given (callers normally zero them).
 *
 * Returns TACOZ_OK; TACOZ_ERR_PARAM for NULL, len < 157 or count > 7.
 */
TACOZIP_API int tacozip_serialize_header(const taco_meta_array_t *in,
                                         unsigned char *buf, size_t len);

/*
 * tacozip_read_header() reads the header of the archive at "zip_path" with
 * one 157-byte read and decodes it as tacozip_parse_header() does.
 * "zip_path" may be an http(s):// or s3:// URL: then exactly one request
 * (Range: bytes=0-156) is made, with default remote options (anonymous; see
 * tacozip_read_header_source() for credentials and settings).
 *
 * Returns TACOZ_OK; TACOZ_ERR_IO if the file cannot be opened or is shorter
 * than 157 bytes; TACOZ_ERR_INVALID_HEADER if it is not a TACO archive;
 * for a URL also TACOZ_ERR_NETWORK, TACOZ_ERR_RANGE_IGNORED,
 * TACOZ_ERR_NO_REMOTE.
 */
TACOZIP_API int tacozip_read_header(const char *zip_path, taco_meta_array_t *out);
TACOZIP_API int tacozip_read_header_ex(const char *zip_path, taco_meta_array_t *out, tacozip_error *err);

/*
 * tacozip_update_header() replaces the header payload of an existing local
 * TACO archive in place.  It writes exactly three places: the payload
 * (offset 41), the CRC in the local header (offset 14) and the CRC in
 * TACO_HEADER's central-directory record; then fsyncs.  Cost is O(1) in the
 * archive size (it reads the end records to find the directory record).
 *
 * Before writing anything it checks that the file is a TACO archive whose
 * directory lists TACO_HEADER first at offset 0; if not, the file is left
 * unchanged and a TACOZ_INVALID_* code (or TACOZ_ERR_INVALID_HEADER) is
 * returned.  TACOZ_ERR_PARAM if in->count > 7 or the path is a URL.
 *
 * Crash-safe: the old bytes of the three places are saved first in a
 * rollback journal beside the archive, ARCHIVE.tacozip-journal (written,
 * fsynced, and named only once complete), and the journal is removed once
 * the new header is durable.  If the process is killed or the machine stops
 * in between, the journal stays "hot": every reader of this library then
 * reads the old header (except tacozip_read_header(), which reads the 157
 * bytes alone and looks for the journal only when they are torn: it reads
 * the new header once all three places are written, the local CRC last),
 * and the next writer (append, update, create of the same path) or
 * tacozip_recover() puts the old bytes back.  Other ZIP tools
 * do not know the journal: run tacozip_recover() (or "tacozip recover")
 * before handing such an archive to them.  The journal's directory must be
 * writable (TACOZ_ERR_IO if the journal cannot be created; nothing is
 * changed then).  Writers of one file are
 * serialized: update and append take the file's writers' lock (an
 * open-file-description lock, fcntl F_OFD_SETLK) before reading it, and
 * create holds the lock of the file it replaces; a second writer fails at
 * once with TACOZ_ERR_LOCKED, having changed nothing (try again later; the
 * command's --wait does).  Readers take no lock and are never blocked.  On
 * a filesystem without such locks nothing is serialized.
 */
TACOZIP_API int tacozip_update_header(const char *zip_path, const taco_meta_array_t *in);
TACOZIP_API int tacozip_update_header_ex(const char *zip_path, const taco_meta_array_t *in,
                                         tacozip_error *err);

/* ======================================================================== */
/* 3. Writing archives                                                      */
/* ======================================================================== */

/*
 * Progress callback for long operations.  "done_bytes" of "total_bytes" of
 * member data have been processed, "done_files" of "total_files" members
 * are complete.  Return 0 to continue, non-zero to cancel: the operation
 * then fails with TACOZ_ERR_CANCELLED (what a cancel leaves is said by each
 * function).  Called at most every 4 MiB of data and after each member, in
 * the thread that called the operation.
 */
typedef int (*tacozip_progress_fn)(void *user, uint64_t done_bytes, uint64_t total_bytes,
                                   uint64_t done_files, uint64_t total_files);

/*
 * Options for tacozip_create_ex() and tacozip_append_ex() (sized: see the
 * top of this file).  Zero-initialise ("tacozip_write_options o = {0};")
 * for the defaults, which give exactly the layout tacotoolbox predicts:
 * data offset of member i = 157 + sum over earlier members of (30 + name
 * length + size), plus 20 for the ZIP64 extra of members >= 0xFFFFFFFF
 * bytes.
 */
typedef struct tacozip_write_options {
    uint32_t struct_size; /* sizeof(tacozip_write_options), or 0 for the 1.1 layout */
    /* Align every member's data (not TACO_HEADER's) to this many bytes,
     * using a 0xD935 extra field in the local header.  0 or 1: no
     * alignment (the default layout).  Otherwise a power of two <= 32768. */
    uint32_t alignment;
    /* Skip fsync() of the file and its directory (faster, not durable). */
    int no_fsync;
    /* DOS timestamp for every member, as Unix seconds, converted in UTC
     * (so the bytes do not depend on the local time zone); 0 = each source
     * file's modification time in local time, and the current time for
     * TACO_HEADER. */
    int64_t mtime;
    /* Progress callback (may be NULL) and its user pointer. */
    tacozip_progress_fn progress;
    void *progress_user;
    /* Embed a member index (a STORED member TACO_INDEX right after
     * TACO_HEADER) so that one read of the first 16 KiB gives the header and
     * the index of thousands of members (see docs/remote.md).  Changes the
     * layout: member offsets then follow the index, not the default rule. */
    int index;
    /* Streams of the streaming writer (tacozip_writer_add_stream()): */
    /* A member of unknown length is kept in memory up to this many bytes,
     * then in an unnamed temporary file in "spool_dir" (default 64 MiB;
     * TACOZIP_NO_SPOOL_MEMORY: to the file through a 1 MiB buffer, so a
     * stream shorter than 1 MiB still stays in memory). */
    uint64_t spool_limit;
    /* Directory of that temporary file (NULL: "/tmp"; the library reads no
     * environment variable: the command and the Python package pass
     * $TMPDIR). */
    const char *spool_dir;
    /* s3:// output (the streaming writer, tacozip_create_planned()): */
    /* the size of each part of the multipart upload (0:
     * chosen from expected_size so that at most 10,000 parts are needed,
     * at least 8 MiB; without expected_size 16 MiB, doubled every 1,000
     * parts).  At least 5 MiB (S3's minimum), at most 5 GiB. */
    uint64_t part_size;
    /* s3:// output: parts uploaded at once (default 4, at most 32). */
    int upload_parallel;
    /* The streaming writer: the archive's expected size in bytes, or 0 if
     * unknown: chooses the part size, and an archive expected to fit in one
     * part is uploaded with one PUT when it is closed (no multipart upload
     * at all).  tacozip_create_planned() computes the size itself. */
    uint64_t expected_size;
} tacozip_write_options;
#define TACOZIP_WRITE_OPTIONS_INIT {sizeof(tacozip_write_options), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
#define TACOZIP_NO_SPOOL_MEMORY UINT64_MAX

/*
 * tacozip_create() writes a new TACO archive at "zip_path": TACO_HEADER
 * holding "meta" (NULL: one (0,0) entry), then the "num_files" files
 * "src_files" STORED under the names "arc_files" (NULL: each source's base
 * name), in the order given.  ZIP64 records are used when needed and only
 * then (a member >= 0xFFFFFFFF bytes, an offset or directory past 4 GiB,
 * 65,535 or more entries).
 *
 * Creation is atomic: data goes to a new file in the directory of
 * "zip_path" that has no name yet (O_TMPFILE), fsynced, then given the
 * name: linkat(2) where nothing is there, else the temporary name
 * "ARCHIVE.tacozip-new" renamed over the old file at once.  On any
 * failure, cancel included, nothing is left under "zip_path" and an
 * existing file there is untouched; a process killed at any moment leaves
 * no temporary file either, except when killed between those last two
 * system calls: ARCHIVE.tacozip-new then remains, and the next create,
 * append, update or tacozip_recover() of "zip_path" removes it (the file is
 * locked while it is written, so one still being written is never
 * removed).  On a filesystem without O_TMPFILE the file has that temporary
 * name from the start, so a killed process leaves it until then.  An archive being replaced that has a hot
 * rollback journal (see tacozip_recover()) is rolled back first, under its
 * writers' lock.
 *
 * Returns TACOZ_OK; TACOZ_ERR_PARAM (NULL arguments, count > 7, empty or
 * over-long name, a name that is absolute or has a ".." component, bad
 * options); TACOZ_ERR_EXISTS (two members with the same name, or a member
 * named TACO_HEADER or TACO_INDEX); TACOZ_ERR_IO (a source is missing or
 * unreadable, the output cannot be written; as the original, a missing
 * source is an I/O error, not TACOZ_ERR_NOT_FOUND, which is about members);
 * TACOZ_ERR_CHANGED (a source changed size while read); TACOZ_ERR_TOO_LARGE;
 * TACOZ_ERR_NOMEM; TACOZ_ERR_CANCELLED.
 * Thread safety: distinct output paths may be written concurrently.
 */
TACOZIP_API int tacozip_create(const char *zip_path, const char *const *src_files,
                               const char *const *arc_files, size_t num_files,
                               const taco_meta_array_t *meta);
TACOZIP_API int tacozip_create_ex(const char *zip_path, const char *const *src_files,
                                  const char *const *arc_files, size_t num_files,
                                  const taco_meta_array_t *meta,
                                  const tacozip_write_options *opts, tacozip_error *err);

/*
 * tacozip_append_ex() adds members to an existing local archive without
 * rewriting existing data: the new members are written where the old
 * central directory began, followed by a new directory holding old and new
 * records.  TACO_HEADER and its entries are unchanged.
 *
 * On failure (cancel included) the file is restored to its previous bytes
 * (truncated to its old length, old directory rewritten) before returning.
 * Crash-safe: the old directory and end records are saved first in the
 * archive's rollback journal (see tacozip_update_header()), removed when
 * the new archive is durable; a process killed in the middle leaves a hot
 * journal, which readers of this library overlay (they read the old
 * archive) and which the next writer or tacozip_recover() rolls back.  If
 * restoring after a failure fails too, the journal is kept for
 * tacozip_recover() and the message says so.  With "no_fsync" the journal
 * is still written (a killed process is still rolled back) but nothing is
 * fsynced, so a machine that stops may lose either state.  A process whose writes may pass
 * its file-size limit (RLIMIT_FSIZE, "ulimit -f") must ignore or catch
 * SIGXFSZ, whose default action kills it in the middle of the write; with
 * the signal ignored the write fails with EFBIG, TACOZ_ERR_IO is returned
 * and the file is restored.  The tacozip command ignores it, and so does
 * CPython.
 *
 * Returns TACOZ_OK, the codes of tacozip_create_ex(), TACOZ_ERR_LOCKED if
 * another process is writing the archive (see tacozip_update_header()), a
 * TACOZ_INVALID_* code if "zip_path" is not a readable archive, TACOZ_ERR_EXISTS if a new
 * name is already in the archive, TACOZ_ERR_INDEXED if the archive has an
 * embedded TACO_INDEX (appending would make it stale), TACOZ_ERR_PARAM for
 * a URL.
 */
TACOZIP_API int tacozip_append_ex(const char *zip_path, const char *const *src_files,
                                  const char *const *arc_files, size_t num_files,
                                  const tacozip_write_options *opts, tacozip_error *err);

/*
 * tacozip_recover() finishes what an interrupted append or update left: if
 * the local archive "zip_path" has a hot rollback journal
 * (ARCHIVE.tacozip-journal, see tacozip_update_header()), its old bytes
 * are written back, the archive is truncated to its old size and fsynced,
 * and the journal is removed; the archive is then exactly what it was
 * before the interrupted write.  A journal that belongs to another file
 * (the journal keeps the CRC-32 of up to 64 KiB of the archive that the
 * write does not change; a copy of the archive and its journal is still
 * recovered) or that was never completed is removed without touching the
 * archive.  An ARCHIVE.tacozip-new left by a create that was killed (see
 * tacozip_create()) is removed too.  Takes the writers' lock, like append.
 *
 * "what" (may be NULL) receives TACOZIP_RECOVERED_NOTHING (no journal),
 * _APPEND or _UPDATE (that write was rolled back), or _STALE (a journal
 * that did not apply was removed).
 *
 * Returns TACOZ_OK, TACOZ_ERR_LOCKED if a writer is running (its journal
 * is not hot: it is in use), TACOZ_ERR_IO (the file cannot be opened or
 * written, or is not a regular file), TACOZ_ERR_NOMEM, TACOZ_ERR_PARAM for
 * NULL or a URL.  Thread-safe (no shared state).
 */
#define TACOZIP_RECOVERED_NOTHING 0
#define TACOZIP_RECOVERED_APPEND 1
#define TACOZIP_RECOVERED_UPDATE 2
#define TACOZIP_RECOVERED_STALE 3
TACOZIP_API int tacozip_recover(const char *zip_path, int *what, tacozip_error *err);

/* ------------------------------------------------------------------------ */
/* 3b. Header entries planned by name                                        */
/* ------------------------------------------------------------------------ */

/*
 * A header entry given by what it covers instead of by numbers.  The layout
 * is deterministic, so the library resolves it to (offset, length) when it
 * writes the archive (no update pass, the header is written once), or
 * without writing with tacozip_plan().
 *
 *   TACOZIP_ENTRY_RANGE      (offset, length) as given
 *   TACOZIP_ENTRY_DATA       the data of the member "name" (data offset,
 *                            size): what tacotoolbox stores for
 *                            COLLECTION.json and each metadata Parquet file
 *   TACOZIP_ENTRY_MEMBERS    the span of the members "names[0..n_names)":
 *                            from the lowest local header to the highest
 *                            end of data (what tacozip_span() computes;
 *                            tacozip_span_next() decodes it)
 *   TACOZIP_ENTRY_PREFIX     the span of every member whose name starts with
 *                            "name" (e.g. "data/val/")
 *   TACOZIP_ENTRY_DIRECTORY  the archive's metadata block: the central
 *                            directory and the end records, to the end of
 *                            the file (one read lists every member)
 *
 * A name or prefix that no member has is TACOZ_ERR_NOT_FOUND, naming it.
 * Strings are read during the call that takes the array (they need not
 * outlive it).
 */
struct tacozip_remote_options; /* section 4 */
#define TACOZIP_ENTRY_RANGE 0
#define TACOZIP_ENTRY_DATA 1
#define TACOZIP_ENTRY_MEMBERS 2
#define TACOZIP_ENTRY_PREFIX 3
#define TACOZIP_ENTRY_DIRECTORY 4
typedef struct tacozip_entry_plan {
    uint32_t struct_size;       /* sizeof(tacozip_entry_plan), or 0 */
    int kind;                   /* TACOZIP_ENTRY_* */
    uint64_t offset, length;    /* RANGE */
    const char *name;           /* DATA: the member; PREFIX: the prefix */
    const char *const *names;   /* MEMBERS: n_names member names */
    size_t n_names;
} tacozip_entry_plan;
#define TACOZIP_ENTRY_PLAN_INIT {sizeof(tacozip_entry_plan), 0, 0, 0, 0, 0, 0}

/*
 * tacozip_plan() computes, without writing anything, the layout that
 * tacozip_create_planned() (and a tacozip_writer given the same members in
 * the same order) writes: member i's local header offset and data offset,
 * and the resolved header entries.  "names" and "sizes" are the n members
 * in archive order; "opts" as for create (alignment and index change the
 * layout; NULL: defaults).  "header_offsets" and "data_offsets" (n each)
 * may be NULL; "entries_out" receives the n_entries resolved entries
 * (count = n_entries).  The end of the archive (the directory's offset,
 * "directory_offset", may be NULL) is computed too.
 *
 * Returns TACOZ_OK; TACOZ_ERR_PARAM (NULL, more than 7 entries, a bad
 * name, bad options); TACOZ_ERR_EXISTS (duplicate or reserved name);
 * TACOZ_ERR_NOT_FOUND (an entry names a member or prefix not planned);
 * TACOZ_ERR_NOMEM.  Pure function (thread-safe).
 */
TACOZIP_API int tacozip_plan(const char *const *names, const uint64_t *sizes, size_t n,
                             const tacozip_entry_plan *entries, size_t n_entries,
                             const tacozip_write_options *opts, uint64_t *header_offsets,
                             uint64_t *data_offsets, uint64_t *directory_offset,
                             taco_meta_array_t *entries_out, tacozip_error *err);

/*
 * tacozip_create_planned() is tacozip_create_ex() with header entries
 * planned by name: the sources are stat()ed and the entries resolved
 * before anything is written (TACOZ_ERR_NOT_FOUND then, naming the entry,
 * and nothing is created), and the header is written once, with the final
 * entries.  "zip_path" may be an s3:// URL ("remote": its settings, may be
 * NULL); the archive is then uploaded as tacozip_writer_open() says.
 * Returns the codes of tacozip_create_ex() and tacozip_plan(), and for
 * s3:// those of tacozip_writer_close().
 */
TACOZIP_API int tacozip_create_planned(const char *zip_path, const char *const *src_files,
                                       const char *const *arc_files, size_t num_files,
                                       const tacozip_entry_plan *entries, size_t n_entries,
                                       const tacozip_write_options *opts,
                                       const struct tacozip_remote_options *remote,
                                       tacozip_error *err);

/* ------------------------------------------------------------------------ */
/* 3c. The streaming writer                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A tacozip_writer writes one archive member by member: from files,
 * buffers, or streams of unknown length, with the header entries set at
 * any time before it is closed.  Nothing is visible under the output name
 * until tacozip_writer_close() succeeds; tacozip_writer_abort(), a failed
 * add or a failed close leave nothing (no file, no object, no pending
 * upload).
 *
 * The layout is the default one (tacozip_write_options: the one
 * tacotoolbox predicts, no data descriptors), so a member's local header
 * holds its size and CRC-32: a member of unknown length is spooled first
 * (in memory up to opts->spool_limit, then in an unnamed temporary file in
 * opts->spool_dir) and written when its end is reached.  opts->index is not
 * supported (TACOZ_ERR_PARAM: the index precedes the members; use
 * tacozip_create_planned()).  The header is written once, at close, with
 * the entries resolved (tacozip_writer_set_entries()).
 *
 * Output:
 *   - a local path: written like tacozip_create_ex() (an unnamed file in
 *     the same directory, fsynced, then named; an existing file is replaced
 *     only at close; the writers' lock of an existing file is held from
 *     open to close);
 *   - an s3://bucket/key URL ("remote": credentials, endpoint, retries;
 *     may be NULL for anonymous, default settings): an S3 multipart upload
 *     is started at open (so credentials that S3 refuses fail the open,
 *     before any member is read), parts of opts->part_size bytes are
 *     uploaded in the background, opts->upload_parallel at a time, while
 *     later members are read, each retried as remote->retries says; close
 *     uploads the first part last (it holds the header) and completes the
 *     upload (CompleteMultipartUpload), so the object appears whole or not
 *     at all.  Any failure aborts the upload (AbortMultipartUpload): no
 *     object and no parts are left.  When opts->expected_size says the
 *     archive fits in one part, no upload is started and close sends one
 *     PUT.  Memory used: at most about (upload_parallel + 3) parts.  Other URL
 *     schemes are refused (TACOZ_ERR_PARAM).
 *
 * One writer must be used from one thread at a time; distinct writers are
 * independent.
 *
 * tacozip_writer_open() returns TACOZ_OK and *out; TACOZ_ERR_PARAM (NULL,
 * bad options: a part size outside [5 MiB, 5 GiB] or too small for
 * expected_size in 10,000 parts, upload_parallel outside [1, 32];
 * opts->index; a URL that is not s3://), TACOZ_ERR_IO (the
 * directory cannot take a new file), TACOZ_ERR_LOCKED (another process
 * is writing the existing file), TACOZ_ERR_NETWORK (S3 refused the upload:
 * the message has S3's error code, e.g. InvalidAccessKeyId,
 * SignatureDoesNotMatch, NoSuchBucket, AccessDenied),
 * TACOZ_ERR_NO_REMOTE (a URL in a build without libcurl), TACOZ_ERR_NOMEM.
 * "opts" and "remote" are copied (their strings too).
 */
typedef struct tacozip_writer tacozip_writer;
TACOZIP_API int tacozip_writer_open(const char *path_or_url, const tacozip_write_options *opts,
                                    const struct tacozip_remote_options *remote, tacozip_writer **out,
                                    tacozip_error *err);

/*
 * Adding members, in archive order.  "name" is the archive name (checked
 * as for create: safe relative path, not TACO_HEADER/TACO_INDEX, not given
 * before); "mtime" Unix seconds for its DOS time (0: opts->mtime if set,
 * else a file's own time, else now).
 *
 * tacozip_writer_add_file(): a regular file ("name" NULL: its base name);
 * a file that changes size while read fails with TACOZ_ERR_CHANGED.
 * tacozip_writer_add_buffer(): "len" bytes at "data" (copied or written
 * before the call returns).
 * tacozip_writer_add_stream(): bytes from "read" until it reports the end.
 * "size" is the length if known (then nothing is spooled, and a stream
 * that ends early or goes on past it fails with TACOZ_ERR_CHANGED), or
 * TACOZIP_SIZE_UNKNOWN (spooled).  "read" fills up to "cap" bytes of
 * "buf", sets *got (0 = the end) and returns TACOZ_OK, or returns a
 * negative code (and may fill "err"), which fails the add with that code.
 *
 * Any failure of an add aborts the writer: the member is not written, the
 * output is removed (S3: the upload aborted), and every later call but
 * tacozip_writer_abort() returns TACOZ_ERR_PARAM ("the writer has failed");
 * the writer must still be freed with tacozip_writer_abort().  Codes:
 * TACOZ_ERR_PARAM, TACOZ_ERR_EXISTS, TACOZ_ERR_IO (a source or the output,
 * the spool file: "no space left" included), TACOZ_ERR_CHANGED,
 * TACOZ_ERR_TOO_LARGE (an s3:// archive past S3's 10,000 parts),
 * TACOZ_ERR_NETWORK, TACOZ_ERR_CANCELLED (opts->progress), TACOZ_ERR_NOMEM,
 * or a code "read" returned.
 */
#define TACOZIP_SIZE_UNKNOWN UINT64_MAX
typedef int (*tacozip_read_fn)(void *user, void *buf, size_t cap, size_t *got, tacozip_error *err);
TACOZIP_API int tacozip_writer_add_file(tacozip_writer *w, const char *src_path, const char *name,
                                        tacozip_error *err);
TACOZIP_API int tacozip_writer_add_buffer(tacozip_writer *w, const char *name, const void *data, size_t len,
                                          int64_t mtime, tacozip_error *err);
TACOZIP_API int tacozip_writer_add_stream(tacozip_writer *w, const char *name, uint64_t size,
                                          tacozip_read_fn read, void *user, int64_t mtime,
                                          tacozip_error *err);

/*
 * tacozip_writer_set_entries() sets the header entries (at most 7; the
 * default is one (0,0)), replacing any set before.  They are resolved at
 * close against every member added by then; this call checks only their
 * form (TACOZ_ERR_PARAM).  The strings are copied.
 */
TACOZIP_API int tacozip_writer_set_entries(tacozip_writer *w, const tacozip_entry_plan *entries, size_t n,
                                           tacozip_error *err);

/*
 * tacozip_writer_close() resolves the entries, writes the header, the
 * central directory and the end records, and makes the archive visible
 * (local: fsync and link; S3: last part and CompleteMultipartUpload, or
 * the one PUT).  "entries_out" (may be NULL) receives the header written.
 * Frees the writer in every case.  On failure nothing is left (local: no
 * file, an old file untouched; S3: the upload aborted).  Returns TACOZ_OK,
 * TACOZ_ERR_NOT_FOUND (an entry names no member), TACOZ_ERR_IO,
 * TACOZ_ERR_NETWORK, TACOZ_ERR_NOMEM, or TACOZ_ERR_PARAM if the writer had
 * failed.
 *
 * tacozip_writer_abort() drops everything written and frees the writer
 * (NULL is allowed).
 */
TACOZIP_API int tacozip_writer_close(tacozip_writer *w, taco_meta_array_t *entries_out, tacozip_error *err);
TACOZIP_API void tacozip_writer_abort(tacozip_writer *w);

/* ======================================================================== */
/* 4. Byte sources                                                          */
/* ======================================================================== */

/*
 * A byte source is what an archive is read from: a local file, a buffer in
 * memory, an http(s):// or s3:// object (libcurl), or callbacks supplied by
 * the caller (any other storage: a Python file object, an fsspec file, a
 * cloud SDK).  Sources are reference-counted: tacozip_open_source() takes a
 * reference of its own, so the caller may close its handle right after.
 */
typedef struct tacozip_source tacozip_source;

/* One byte range: "length" bytes at archive offset "offset" go to "buf"
 * (caller-owned, at least "length" bytes). */
typedef struct tacozip_range {
    uint64_t offset;
    uint64_t length;
    void *buf;
} tacozip_range;

/* S3 addressing styles (tacozip_remote_options.s3_addressing). */
#define TACOZIP_S3_AUTO 0    /* path style with an endpoint_url, else virtual host */
#define TACOZIP_S3_PATH 1    /* https://endpoint/bucket/key */
#define TACOZIP_S3_VIRTUAL 2 /* https://bucket.endpoint/key */

/* Settings whose 0 means "the default" spell "none" so: no retries at all;
 * coalesce only ranges that touch or overlap; read on past a
 * Range-ignoring 200 only when the wanted bytes start at byte 0. */
#define TACOZIP_NO_RETRIES (-1)
#define TACOZIP_NO_GAP UINT64_MAX
#define TACOZIP_NO_SKIP UINT64_MAX

/*
 * Settings of one remote source (sized: see the top of this file).  Every
 * field may be left 0/NULL for its default.  The library copies what it
 * needs at open: the strings need not outlive the call.  It reads no
 * environment variables: the command and the Python package fill these from
 * the usual AWS_* variables when their caller gives none (docs/remote.md).
 */
typedef struct tacozip_remote_options {
    uint32_t struct_size;          /* sizeof(tacozip_remote_options), or 0 for the 1.1 layout */
    /* S3 credentials.  Without a key and secret, requests are unsigned. */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;     /* sent as x-amz-security-token */
    const char *region;            /* default "us-east-1" */
    /* An S3-compatible endpoint (e.g. "http://127.0.0.1:9000"); NULL: AWS. */
    const char *endpoint_url;
    int s3_addressing;             /* TACOZIP_S3_AUTO / _PATH / _VIRTUAL */
    int unsigned_requests;         /* non-zero: never sign, even with a key */
    /* Timeouts: connecting (default 10,000 ms), and a transfer that moves
     * no byte for this long is cut and retried (default 30 s). */
    long connect_timeout_ms;
    long stall_timeout_s;
    /* Retries of a failed request (reset, timeout, 5xx, 429, short body):
     * default 4; TACOZIP_NO_RETRIES for none.  Backoff starts at
     * backoff_ms (default 100) and doubles up to max_backoff_ms (default
     * 5,000); a Retry-After header is honoured up to that cap. */
    int retries;
    long backoff_ms;
    long max_backoff_ms;
    /* Requests in flight at once for read_ranges / read_members (default 8,
     * at most 64). */
    int parallel;
    /* Ranges at most this many bytes apart are fetched in one request when
     * TACOZIP_DEFAULT_GAP is passed as max_gap (default 1 MiB;
     * TACOZIP_NO_GAP: 0). */
    uint64_t coalesce_gap;
    /* A server that ignores Range (answers 200) is read on only when the
     * wanted bytes start within this many bytes (default 1 MiB;
     * TACOZIP_NO_SKIP: 0); beyond it the read fails with
     * TACOZ_ERR_RANGE_IGNORED. */
    uint64_t max_skip;
    /* CA bundle file for TLS verification (NULL: the system's). */
    const char *ca_bundle;
    /* Extra request headers, "Name: value", NULL-terminated list (may be
     * NULL).  Like credentials, they are not sent to another host after a
     * redirect. */
    const char *const *headers;
    /* The identity the object must have (an ETag, as
     * tacozip_source_identity() gave it for an earlier source), or NULL /
     * "" to pin whatever the first response gives.  When set, the source
     * knows its identity before any request, the first request already
     * carries "If-Match: <it>" (unless it is a weak ETag, W/...), and a 412
     * or a response with another ETag fails with TACOZ_ERR_CHANGED: an
     * archive reopened on a URL (after pickling, in another process) reads
     * the same bytes as before or nothing.  At most 255 bytes, no CR/LF
     * (else TACOZ_ERR_PARAM).  A server that sends no ETag cannot be
     * checked against it. */
    const char *expected_identity;
    /* A transfer slower than min_rate bytes/s on average over
     * stall_timeout_s is cut and retried like a stalled one (default 1,024;
     * at most 2^30): a server that trickles a few bytes a second fails in
     * stall_timeout_s per attempt instead of never. */
    long min_rate;
    /* The most one operation (one read or open step, or one read_ranges /
     * read_members call, retries, redirects and backoff included) may take,
     * in ms (default 0: no limit; at most 86,400,000); past it the operation
     * fails with TACOZ_ERR_NETWORK ("no complete answer within the
     * deadline"). */
    long deadline_ms;
} tacozip_remote_options;

/*
 * Callbacks of a caller-supplied source (sized: see the top of this file).
 * "user" is the pointer given to tacozip_source_new().  Each function
 * returns TACOZ_OK or a negative code, and may fill "err" (never NULL when
 * the library calls) with a message.  The library calls them from the
 * threads that call its reading functions: if the archive is read from
 * several threads, they run concurrently, and they must be safe for that.
 */
typedef struct tacozip_source_callbacks {
    uint32_t struct_size; /* sizeof(tacozip_source_callbacks), or 0 for the 1.1 layout */
    /* Required: the total size in bytes (called once, at tacozip_source_new). */
    int (*get_size)(void *user, uint64_t *size, tacozip_error *err);
    /* Required: exactly "len" bytes at "offset" into "buf" (never past the size). */
    int (*read_at)(void *user, uint64_t offset, void *buf, size_t len, tacozip_error *err);
    /* Optional (NULL: read_at per range): several ranges at once, for
     * sources that can fetch them in parallel.  Ranges are coalesced by the
     * library before this is called. */
    int (*read_ranges)(void *user, tacozip_range *ranges, size_t n, tacozip_error *err);
    /* Optional: an identity of the bytes (an ETag, a version id) written
     * into "buf" ("cap" bytes, NUL-terminated), or "" if unknown. */
    int (*identity)(void *user, char *buf, size_t cap);
    /* Optional: called once when the last reference to the source goes. */
    void (*close)(void *user);
} tacozip_source_callbacks;

/*
 * tacozip_source_open() opens "path_or_url": a local file, or an http://,
 * https:// or s3://bucket/key URL (schemes are matched without regard to
 * case).  "remote" (may be NULL: defaults, anonymous) holds the settings of
 * a URL; it is ignored for local files.  Opening a URL makes no request:
 * the first read does.  Only http and https are spoken, in requests and in
 * redirects (a redirect to any other scheme fails with TACOZ_ERR_NETWORK).
 *
 * Returns TACOZ_OK and "*out" (one reference); TACOZ_ERR_IO (missing or
 * unreadable file); TACOZ_ERR_PARAM (a malformed URL, bad options);
 * TACOZ_ERR_NO_REMOTE (a URL in a build without libcurl); TACOZ_ERR_NOMEM.
 */
TACOZIP_API int tacozip_source_open(const char *path_or_url, const tacozip_remote_options *remote,
                                    tacozip_source **out, tacozip_error *err);

/*
 * tacozip_source_memory() makes a source of "len" bytes at "data" (not
 * copied: they must outlive every archive opened on the source).
 */
TACOZIP_API int tacozip_source_memory(const void *data, size_t len, tacozip_source **out,
                                      tacozip_error *err);

/*
 * tacozip_source_new() makes a source of caller-supplied callbacks ("cb" is
 * copied; "name" is copied and used in messages, NULL: "<callbacks>").
 * It calls cb->get_size once.  On failure cb->close is not called.
 * Returns TACOZ_OK; TACOZ_ERR_PARAM (read_at or get_size missing, bad
 * size); the code of get_size; TACOZ_ERR_NOMEM.
 */
TACOZIP_API int tacozip_source_new(const tacozip_source_callbacks *cb, void *user, const char *name,
                                   tacozip_source **out, tacozip_error *err);

/* tacozip_source_close() drops the caller's reference (NULL is allowed). */
TACOZIP_API void tacozip_source_close(tacozip_source *src);

/*
 * tacozip_source_identity() writes what identifies the bytes of the source
 * ("cap" bytes, NUL-terminated): a remote object's ETag once a response
 * has given one, a callback source's identity(), else "".  Returns the
 * length written.
 */
TACOZIP_API size_t tacozip_source_identity(tacozip_source *src, char *buf, size_t cap);

/*
 * tacozip_source_read() reads exactly "len" bytes at "offset".  A remote
 * source learns its size from its first response; before that a read is
 * checked only by the server.  TACOZ_INVALID_FILE_SIZE if the range passes
 * the end; TACOZ_ERR_IO; the network codes.
 */
TACOZIP_API int tacozip_source_read(tacozip_source *src, uint64_t offset, void *buf, size_t len,
                                    tacozip_error *err);

/*
 * tacozip_source_read_ranges() reads several byte ranges of a source
 * without opening it as an archive (no end records, no directory): what a
 * client that knows its ranges from the TACO header needs, after
 * tacozip_read_header_source().  Ranges are coalesced and read as
 * tacozip_read_ranges() does: neighbours at most "max_gap" bytes apart
 * (TACOZIP_DEFAULT_GAP: the source's coalesce_gap, 1 MiB unless set) in one
 * request of at most 64 MiB, the requests of a remote source in parallel;
 * bytes the source already holds (the header it read) cost no request.
 * Ranges may be in any order, overlap, or be empty.
 *
 * Returns TACOZ_OK; TACOZ_ERR_PARAM (NULL, a range past the end as far as
 * the source knows its size, or without a buffer); TACOZ_ERR_IO; the
 * network codes; TACOZ_ERR_NOMEM.  Messages start with the source's name.
 * Thread safety: as reads of the source (several threads may read one
 * source at once).
 */
TACOZIP_API int tacozip_source_read_ranges(tacozip_source *src, tacozip_range *ranges, size_t n,
                                           uint64_t max_gap, tacozip_error *err);

/*
 * tacozip_source_stats() reports how many HTTP requests a remote source
 * has made and how many body bytes they returned since it was opened (as
 * tacozip_remote_stats() does for an archive; an archive opened on the
 * source shares its counts).  TACOZ_OK; TACOZ_ERR_NOT_REMOTE (and zeros)
 * for a local, memory or callback source; TACOZ_ERR_PARAM for NULL.
 * Thread-safe.
 */
TACOZIP_API int tacozip_source_stats(const tacozip_source *src, uint64_t *requests, uint64_t *bytes);

/*
 * tacozip_source_preload_tail() hands a source the last "len" bytes of its
 * object, known in advance ("data" is copied), and the object's size: for
 * example an archive's central directory and end records, [directory
 * offset, archive size) as tacozip_directory_range() gives them, carried to
 * another process so that opening the archive there costs no request.
 * Reads that fall in those bytes are served from the copy; only the rest
 * is fetched.  The bytes are trusted as given: give the source the
 * object's identity too (tacozip_remote_options.expected_identity) so that
 * the first request fails with TACOZ_ERR_CHANGED if the object has been
 * replaced since.  A local file or memory source (reading them again costs
 * nothing) ignores them and returns TACOZ_OK; remote and callback sources
 * use them.  Call it before the source is opened as an archive (not
 * thread-safe with reads).
 *
 * Returns TACOZ_OK; TACOZ_ERR_PARAM (NULL, "len" 0 or larger than
 * "object_size"); TACOZ_ERR_CHANGED (the source already knows another
 * size); TACOZ_ERR_NOMEM.
 */
TACOZIP_API int tacozip_source_preload_tail(tacozip_source *src, uint64_t object_size, const void *data,
                                            size_t len, tacozip_error *err);

/* ======================================================================== */
/* 5. Reading archives                                                      */
/* ======================================================================== */

/* An open archive: its central directory parsed into a member index.
 * Opaque; create with tacozip_open*(), free with tacozip_close(). */
typedef struct tacozip_archive tacozip_archive;

/* One member as the index knows it (sized: see the top of this file; set
 * "struct_size" before tacozip_member_at() fills it).  "name" points into the
 * archive object and stays valid until tacozip_close(); it is
 * NUL-terminated and "name_len" bytes long. */
typedef struct tacozip_member {
    uint32_t struct_size;   /* sizeof(tacozip_member), or 0 for the 1.1 layout */
    const char *name;
    size_t name_len;
    uint64_t header_offset; /* local file header */
    uint64_t data_offset;   /* first byte of the stored data */
    uint64_t size;          /* bytes of data (compressed size) */
    uint64_t uncompressed_size;
    uint32_t crc32;
    uint16_t method;        /* 0 = STORE; others can be listed, not read */
    uint16_t flags;         /* general purpose bit flag */
    uint32_t dos_datetime;  /* DOS time (low 16 bits) and date (high 16) */
    uint32_t external_attr;
} tacozip_member;
#define TACOZIP_MEMBER_INIT {sizeof(tacozip_member), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Flags for tacozip_open_ex() and friends. */
#define TACOZIP_OPEN_VERIFY_LOCAL 1u /* read every local header at open */
#define TACOZIP_OPEN_INDEX_FIRST 2u  /* first read the first 16 KiB: header + TACO_INDEX */
#define TACOZIP_OPEN_NO_CRC 4u       /* whole-member reads skip the CRC-32 check (the caller verifies) */

/*
 * tacozip_open_source() opens the archive held by "src" (a reference is
 * taken; the caller still closes its own) and parses its end records (ZIP32
 * and ZIP64) and central directory, with bounds checks on every field.
 * Data offsets are derived from the directory when the members are laid
 * out back to back (every archive tacozip writes, without reading any local
 * header); otherwise, or with TACOZIP_OPEN_VERIFY_LOCAL, the local headers
 * are read.  The first read of a member's data always checks its local
 * header against the directory.
 *
 * Archives written by other tools are accepted; TACO_HEADER need not be
 * present (tacozip_archive_header() then fails).
 *
 * A remote source costs one request for the last 65 KiB (end records, and
 * the directory when it fits) and at most one more for the directory.  With
 * TACOZIP_OPEN_INDEX_FIRST the first request is for the first 16 KiB
 * instead: for an archive written with the index option, the member list
 * comes from TACO_INDEX and that one request (two if the index is larger)
 * is all; for others the end records are then read as usual.  The TACO
 * header of a local or small archive is read at open; that of a larger
 * remote archive on the first tacozip_archive_header() call (one request,
 * made once, under the archive's lock).
 *
 * Returns TACOZ_OK and sets "*out"; TACOZ_ERR_IO; TACOZ_ERR_NOMEM;
 * TACOZ_ERR_SPLIT (split archive); the network codes; or the
 * TACOZ_INVALID_* code of the first malformed structure (overlapping
 * members included).
 */
TACOZIP_API int tacozip_open_source(tacozip_source *src, unsigned flags, tacozip_archive **out,
                                    tacozip_error *err);

/*
 * tacozip_open_ex() is tacozip_source_open(path, NULL) + tacozip_open_source();
 * tacozip_open_remote() the same with remote settings.  tacozip_open() has
 * no flags and no message.  The codes are those of both.
 */
TACOZIP_API int tacozip_open(const char *path, tacozip_archive **out);
TACOZIP_API int tacozip_open_ex(const char *path, unsigned flags, tacozip_archive **out,
                                tacozip_error *err);
TACOZIP_API int tacozip_open_remote(const char *path_or_url, unsigned flags,
                                    const tacozip_remote_options *remote, tacozip_archive **out,
                                    tacozip_error *err);

/*
 * tacozip_open_memory() opens an archive held in memory.  The buffer is not
 * copied and must outlive the archive object.
 */
TACOZIP_API int tacozip_open_memory(const void *data, size_t len, unsigned flags,
                                    tacozip_archive **out, tacozip_error *err);

/* tacozip_close() frees the archive object (NULL is allowed). */
TACOZIP_API void tacozip_close(tacozip_archive *ar);

/* The archive's source (borrowed: valid until tacozip_close()). */
TACOZIP_API tacozip_source *tacozip_archive_source(const tacozip_archive *ar);

/* Number of members, TACO_HEADER included; archive size in bytes; and
 * whether ZIP64 end records are present. */
TACOZIP_API size_t tacozip_count(const tacozip_archive *ar);
TACOZIP_API uint64_t tacozip_archive_size(const tacozip_archive *ar);
TACOZIP_API int tacozip_archive_format(const tacozip_archive *ar);
/* Offset and size of the central directory. */
TACOZIP_API void tacozip_directory_range(const tacozip_archive *ar, uint64_t *offset,
                                         uint64_t *size);

/*
 * tacozip_archive_header() decodes the TACO_HEADER of an open archive (see
 * tacozip_open_source() for when it is read).  TACOZ_ERR_INVALID_HEADER if
 * the archive has none; for a remote archive read now, the network codes.
 * Thread safety: may be called from several threads (one reads, the others
 * wait for it).
 */
TACOZIP_API int tacozip_archive_header(const tacozip_archive *ar, taco_meta_array_t *out);
TACOZIP_API int tacozip_archive_header_ex(const tacozip_archive *ar, taco_meta_array_t *out,
                                          tacozip_error *err);

/*
 * tacozip_member_at() fills "out" with member "index" (0 <= index <
 * tacozip_count(), in directory order).  TACOZ_ERR_PARAM if out of range
 * or out->struct_size is wrong.
 */
TACOZIP_API int tacozip_member_at(const tacozip_archive *ar, size_t index, tacozip_member *out);

/*
 * tacozip_find() looks a member up by exact name ("name_len" bytes; pass
 * (size_t)-1 for a NUL-terminated name) in O(1) through a hash table built
 * at open.  Sets "*index".  TACOZ_ERR_NOT_FOUND if absent.
 */
TACOZIP_API int tacozip_find(const tacozip_archive *ar, const char *name, size_t name_len,
                             size_t *index);

/* Flags for tacozip_span(). */
#define TACOZIP_SPAN_DATA_ONLY 1u /* from the first data byte, not local header */

/*
 * tacozip_span() computes the smallest byte range [*offset, *offset +
 * *length) that covers members "indices[0..n)": from the lowest local
 * header offset (or data offset with TACOZIP_SPAN_DATA_ONLY) to the highest
 * end of data.  With local headers included, those bytes alone suffice to
 * recover the members (a split, a zoom level), which is what a TACO header
 * entry usually points at.  TACOZ_ERR_PARAM if n == 0 or an index is out of
 * range.
 */
TACOZIP_API int tacozip_span(const tacozip_archive *ar, const size_t *indices, size_t n,
                             unsigned flags, uint64_t *offset, uint64_t *length);

/*
 * Decoding a fetched span without the archive.  A client that reads only
 * the header (one 157-byte request) and then the bytes of one header
 * entry, [offset, offset + length), holds whole members back to back when
 * the entry was written as tacozip_span() computes it (local headers
 * included): a split, a zoom level.  tacozip_span_next() turns those bytes
 * into members, one per call, from the local headers alone: no central
 * directory, no archive object, no allocation.
 *
 * One decoded member (sized: see the top of this file; set "struct_size"
 * before the first call).  "name" and "data" point into the caller's span
 * buffer (zero-copy) and are valid as long as it is; "name" is NOT
 * NUL-terminated.
 */
typedef struct tacozip_span_member {
    uint32_t struct_size;   /* sizeof(tacozip_span_member), or 0 for the 1.1 layout */
    const char *name;       /* name_len bytes, not NUL-terminated */
    size_t name_len;
    const unsigned char *data; /* the member's stored bytes */
    uint64_t size;
    uint64_t header_offset; /* archive offset of its local header ("base" + position in the span) */
    uint64_t data_offset;   /* archive offset of its first data byte */
    uint32_t crc32;         /* as its local header says (checked unless TACOZIP_SPAN_NO_CRC) */
    uint16_t flags;         /* general purpose bit flag (0x0800: the name is UTF-8) */
    uint32_t dos_datetime;  /* DOS time (low 16 bits) and date (high 16) */
} tacozip_span_member;
#define TACOZIP_SPAN_MEMBER_INIT {sizeof(tacozip_span_member), 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Flags for tacozip_span_next() (bits distinct from TACOZIP_SPAN_DATA_ONLY). */
#define TACOZIP_SPAN_NO_CRC 2u  /* do not check each member's CRC-32 (the caller does, or trusts) */
#define TACOZIP_SPAN_PARTIAL 4u /* a span cut inside a member ends there instead of failing */

/*
 * tacozip_span_next() decodes the member whose local header is at byte
 * "*pos" of "span" ("len" bytes, which are archive bytes from offset
 * "base": the header entry's offset, used in "out" and in messages).
 * Start with *pos = 0 and call until it returns 0:
 *
 *     size_t pos = 0;
 *     tacozip_span_member m = TACOZIP_SPAN_MEMBER_INIT;
 *     while ((rc = tacozip_span_next(buf, len, off, &pos, 0, &m, &err)) == 1)
 *         use(m.name, m.name_len, m.data, m.size);
 *     if (rc < 0) fail(err.message);
 *
 * Each local header is read for the name, the sizes (ZIP64: sizes
 * 0xFFFFFFFF and the 0x0001 extra field), the CRC-32 and the flags; every
 * other extra field (the 0xD935 alignment padding of archives written with
 * alignment among them) is skipped.  The data's CRC-32 is checked against
 * the local header unless TACOZIP_SPAN_NO_CRC.
 *
 * Returns (unlike most functions here) 1 when a member was decoded: "out"
 * is filled and *pos moved past its data; 0 at the end: *pos == len, or,
 * with TACOZIP_SPAN_PARTIAL, the span is cut inside the member at *pos
 * (*pos < len then; base + *pos is where a further fetch would resume); a
 * negative code on failure, with *pos and "out" unchanged:
 *   TACOZ_INVALID_LFH: no local header signature at *pos (at 0: the span
 *     does not start at a member; later: the bytes after a member are not
 *     another one, e.g. the central directory), or a malformed extra field;
 *   TACOZ_INVALID_FILE_SIZE: the span ends inside the member at *pos (its
 *     header or its data; not with TACOZIP_SPAN_PARTIAL), named when its
 *     name is in the span;
 *   TACOZ_ERR_UNSUPPORTED: the member is compressed, encrypted, or has a
 *     data descriptor (flag bit 3: sizes after the data, so its end is not
 *     known without the central directory);
 *   TACOZ_INVALID_ZIP64: sizes 0xFFFFFFFF without a ZIP64 extra field
 *     holding them;
 *   TACOZ_INVALID_STORED_SIZE: compressed and uncompressed sizes differ;
 *   TACOZ_INVALID_NAME: an empty name or one holding a NUL byte;
 *   TACOZ_INVALID_CRC_MEMBER: the data fails its CRC-32;
 *   TACOZ_ERR_PARAM: NULL arguments, unknown flags, *pos > len, a wrong
 *     out->struct_size.
 * Messages name the member (in double quotes) and its archive offset; they
 * do not start with a file name (there is none).  Names are not checked
 * for safety as paths (see tacozip_extract() for that) nor for duplicates.
 * Thread safety: pure function (reads "span", writes "*pos", "out", "err").
 */
TACOZIP_API int tacozip_span_next(const void *span, size_t len, uint64_t base, size_t *pos, unsigned flags,
                                  tacozip_span_member *out, tacozip_error *err);

/*
 * tacozip_read_at() reads "len" raw bytes of the archive at "offset".
 * TACOZ_ERR_PARAM if the range passes the end of the archive; TACOZ_ERR_IO;
 * the network codes.
 */
TACOZIP_API int tacozip_read_at(tacozip_archive *ar, uint64_t offset, void *buf, size_t len);
TACOZIP_API int tacozip_read_at_ex(tacozip_archive *ar, uint64_t offset, void *buf, size_t len,
                                   tacozip_error *err);

/*
 * tacozip_read_member() reads up to "len" bytes of member "index" starting
 * at "offset" within the member, sets "*nread" (short only at the member's
 * end).  The first read of a member checks its local header against the
 * directory (TACOZ_INVALID_LFH if they disagree): a remote read near the
 * start of the data fetches the header in the same request, one further in
 * fetches it in a parallel request.  A read of the whole member (offset 0,
 * "len" at least its size) checks its CRC-32 too (TACOZ_INVALID_CRC_MEMBER;
 * the buffer then holds the bytes read), unless the archive was opened with
 * TACOZIP_OPEN_NO_CRC; a read of part of a member is not checked (read the
 * rest and use tacozip_crc32(), or tacozip_verify_member()).
 * TACOZ_ERR_UNSUPPORTED for compressed or encrypted members.
 */
TACOZIP_API int tacozip_read_member(tacozip_archive *ar, size_t index, uint64_t offset,
                                    void *buf, size_t len, size_t *nread);
TACOZIP_API int tacozip_read_member_ex(tacozip_archive *ar, size_t index, uint64_t offset,
                                       void *buf, size_t len, size_t *nread, tacozip_error *err);

/* Pass as "max_gap" for the default coalescing gap (the source's
 * coalesce_gap setting: 1 MiB unless set, as obstore). */
#define TACOZIP_DEFAULT_GAP UINT64_MAX

/*
 * tacozip_read_ranges() reads several byte ranges of the archive.  Ranges
 * whose gap is at most "max_gap" bytes are merged into one request (up to
 * 64 MiB each); for a remote archive the requests run in parallel (up to
 * the "parallel" setting, default 8) on reused connections, multiplexed
 * over HTTP/2 where the server offers it; a caller-supplied source gets
 * them through its read_ranges callback.  Ranges may be given in any order
 * and may overlap.  Returns TACOZ_OK, TACOZ_ERR_PARAM (a range past the end
 * or without a buffer), or the first failure.
 */
TACOZIP_API int tacozip_read_ranges(tacozip_archive *ar, tacozip_range *ranges, size_t n, uint64_t max_gap);
TACOZIP_API int tacozip_read_ranges_ex(tacozip_archive *ar, tacozip_range *ranges, size_t n,
                                       uint64_t max_gap, tacozip_error *err);

/*
 * tacozip_read_members() reads whole members "indices[0..n)" into "bufs[i]"
 * (each at least the member's size) through tacozip_read_ranges(), each
 * range starting at the member's local header so that the header is checked
 * in the same request, and checks each member's CRC-32
 * (TACOZ_INVALID_CRC_MEMBER, unless opened with TACOZIP_OPEN_NO_CRC).
 * TACOZ_ERR_UNSUPPORTED for compressed members.
 */
TACOZIP_API int tacozip_read_members(tacozip_archive *ar, const size_t *indices, size_t n, void *const *bufs,
                                     uint64_t max_gap);
TACOZIP_API int tacozip_read_members_ex(tacozip_archive *ar, const size_t *indices, size_t n,
                                        void *const *bufs, uint64_t max_gap, tacozip_error *err);

/*
 * tacozip_remote_stats() reports how many HTTP requests an archive opened
 * from a URL has made (a redirect and the request it leads to count as
 * two) and how many body bytes they returned, since its source was
 * opened.  TACOZ_ERR_NOT_REMOTE (and zeros) for other sources.
 */
TACOZIP_API int tacozip_remote_stats(const tacozip_archive *ar, uint64_t *requests, uint64_t *bytes);

/*
 * tacozip_verify_member() reads member "index" whole and checks its CRC-32.
 * TACOZ_INVALID_CRC_MEMBER on mismatch.
 */
TACOZIP_API int tacozip_verify_member(tacozip_archive *ar, size_t index);
TACOZIP_API int tacozip_verify_member_ex(tacozip_archive *ar, size_t index, tacozip_error *err);

/* Flags for tacozip_extract(). */
#define TACOZIP_EXTRACT_OVERWRITE 1u    /* replace existing files */
#define TACOZIP_EXTRACT_SKIP_HEADER 2u  /* do not write TACO_HEADER */

/*
 * tacozip_extract() writes members to files under "dest_dir" (created if
 * missing): all of them when "names" is NULL, else the "n" members named
 * (TACOZ_ERR_NOT_FOUND if one is absent, before anything is written).
 * Directory entries (names ending in '/') become directories.
 *
 * Safety: a name that is absolute, has a ".." component, a backslash, a
 * drive letter or a NUL, or would resolve through an existing symbolic link
 * outside "dest_dir", is refused with TACOZ_ERR_UNSAFE_PATH before any file
 * is written.  Each file is written unnamed (O_TMPFILE; on a filesystem
 * without it, under a temporary name ".tacozip-XXXXXXXXXXXX.tmp"), its
 * CRC-32 checked (TACOZ_INVALID_CRC_MEMBER on mismatch), then linked into
 * place, so a killed process leaves complete files only (and, on such a
 * filesystem, temporary names).
 * A name longer than 4,095 bytes or deeper than 128 levels is refused with
 * TACOZ_ERR_UNSAFE_PATH too.  Existing files are not replaced unless
 * TACOZIP_EXTRACT_OVERWRITE is given: every target is checked before
 * anything is written (TACOZ_ERR_EXISTS, nothing extracted), and the final
 * link does not replace a file that appeared meanwhile (linkat(2), or
 * renameat2(RENAME_NOREPLACE) for a named temporary; TACOZ_ERR_EXISTS, that
 * file left as it is).
 *
 * On any failure, cancel by "progress" included, the files this call
 * created are removed again (files it replaced under
 * TACOZIP_EXTRACT_OVERWRITE stay replaced; directories it created stay).
 */
TACOZIP_API int tacozip_extract(tacozip_archive *ar, const char *dest_dir,
                                const char *const *names, size_t n, unsigned flags,
                                tacozip_progress_fn progress, void *progress_user,
                                tacozip_error *err);

/* ======================================================================== */
/* 6. Validation                                                            */
/* ======================================================================== */

/*
 * tacozip_detect_format() returns TACOZIP_FORMAT_ZIP64 if the file has a
 * ZIP64 end record, TACOZIP_FORMAT_ZIP32 if it has a plain one, and
 * TACOZIP_FORMAT_UNKNOWN if it cannot be read or has no end record.
 */
TACOZIP_API int tacozip_detect_format(const char *zip_path);

/*
 * tacozip_validate() checks the archive at "zip_path" and returns
 * TACOZ_VALID (0) or the TACOZ_INVALID_* code of the first problem found
 * (TACOZ_ERR_IO if the file cannot be read, TACOZ_ERR_PARAM for a bad
 * level, the network codes for a URL).  Levels:
 *   QUICK  : the 157 header bytes (signature, name, sizes, count).
 *   NORMAL : QUICK + end records and central directory in bounds, entry
 *            counts consistent, TACO_HEADER listed first at offset 0, and
 *            no member overlapping another or the directory (as far as
 *            the directory shows: local headers are read only where the
 *            layout does not prove the data offsets).
 *   DEEP   : NORMAL + both header CRCs + every local header agrees with the
 *            directory + TACO_INDEX agrees with the directory + every
 *            member's data CRC-32.  Reads the whole archive.
 */
TACOZIP_API int tacozip_validate(const char *zip_path, int level);
TACOZIP_API int tacozip_validate_ex(const char *zip_path, int level, tacozip_error *err);

/*
 * The same on a source: tacozip_read_header_source() (one 157-byte read),
 * tacozip_validate_source().  Use these with tacozip_source_open() to give
 * remote settings, or with tacozip_source_new() for other storage.
 */
TACOZIP_API int tacozip_read_header_source(tacozip_source *src, taco_meta_array_t *out, tacozip_error *err);
TACOZIP_API int tacozip_validate_source(tacozip_source *src, int level, tacozip_error *err);

/* tacozip_validate_error_string() describes a validation code. */
TACOZIP_API const char *tacozip_validate_error_string(int code);

/* ======================================================================== */
/* 7. Miscellaneous                                                         */
/* ======================================================================== */

/* tacozip_get_version() returns the library version, e.g. "1.1.0". */
TACOZIP_API const char *tacozip_get_version(void);

/* tacozip_strerror() describes any code of this header (static string). */
TACOZIP_API const char *tacozip_strerror(int code);

/*
 * tacozip_error_name() returns the macro name of a code without its
 * "TACOZ_" prefix ("ERR_IO", "INVALID_LFH", "OK"), or NULL for an unknown
 * code.  With tacozip_strerror() it lets bindings take every code and
 * message from the library.  Codes run from 0 down to -99.
 */
TACOZIP_API const char *tacozip_error_name(int code);

/*
 * tacozip_display_name() writes "path" as it may be shown in messages and
 * logs into "out" ("cap" bytes, always NUL-terminated): local paths as
 * they are, URLs without user:password@ (the last '@' before the host ends
 * them) and without the query string or fragment (which may hold a
 * presigned signature).  The library's own messages already use this form.
 */
TACOZIP_API void tacozip_display_name(const char *path, char *out, size_t cap);

/* tacozip_is_url() is 1 if "path" starts with http://, https:// or s3://
 * (in any case), else 0. */
TACOZIP_API int tacozip_is_url(const char *path);

/* tacozip_crc32() updates the CRC-32 (ZIP polynomial) "crc" with "len"
 * bytes at "data"; start with crc = 0. */
TACOZIP_API uint32_t tacozip_crc32(uint32_t crc, const void *data, size_t len);

/* ======================================================================== */
/* 8. Changes in 1.1                                                        */
/* ======================================================================== */
/*
 * - Errors: the _ex reads (read_at, read_member, read_ranges, read_members,
 *   verify_member, archive_header) take a tacozip_error; tacozip_last_error()
 *   is gone.  TACOZ_ERR_UNSUPPORTED now only means a compressed or
 *   encrypted member; split archives (TACOZ_ERR_SPLIT), append to an indexed
 *   archive (TACOZ_ERR_INDEXED), a URL without libcurl (TACOZ_ERR_NO_REMOTE)
 *   and remote statistics of a local archive (TACOZ_ERR_NOT_REMOTE) have
 *   codes of their own.  tacozip_error_name() names every code.
 * - Sized structs: tacozip_error, tacozip_write_options and tacozip_member
 *   begin with "struct_size" (so do the new tacozip_remote_options and
 *   tacozip_source_callbacks).
 * - Remote settings per source (tacozip_remote_options), no environment
 *   variables read by the library; http and https only, redirects
 *   included; credentials and extra headers not sent to another host.
 * - tacozip_remote_options.expected_identity pins a URL to an ETag known
 *   from before (TACOZ_ERR_CHANGED if the object is another one now).
 * - Sources with round trips (HTTP(S), S3, callbacks) keep the tail and the
 *   first bytes they read: reads inside them make no request.
 * - Byte sources are public: tacozip_source_open/_memory/_new, and
 *   tacozip_open_source / tacozip_read_header_source /
 *   tacozip_validate_source on them.
 * - DOS times from tacozip_write_options.mtime are UTC.
 * - Header-only clients: tacozip_span_next() decodes a fetched span into
 *   its members without the directory; tacozip_source_read_ranges() and
 *   tacozip_source_stats() read (coalesced) and count byte ranges of a
 *   source that is not opened as an archive.
 * - Writing: the streaming writer (tacozip_writer_open / _add_file /
 *   _add_buffer / _add_stream / _set_entries / _close / _abort), header
 *   entries planned by name (tacozip_entry_plan, tacozip_plan(),
 *   tacozip_create_planned()), s3:// output through S3 multipart upload;
 *   tacozip_write_options gained spool_limit, spool_dir, part_size,
 *   upload_parallel and expected_size.
 * The nine functions of the original library are unchanged.
 */

#ifdef __cplusplus
}
#endif

#endif /* TACOZIP_H */
