/* faultshim.c - an LD_PRELOAD shim that makes one chosen write-path call of
 * the tacozip executable fail (tests/crash/faultinject.py drives it).
 *
 * Build:  cc -shared -fPIC -O2 -o faultshim.so faultshim.c -ldl
 * Use:    LD_PRELOAD=./faultshim.so TACOZIP_FAULT_AT=K TACOZIP_FAULT_LOG=FILE tacozip ...
 *
 * Intercepted ("counted") calls:
 *   data      write pwrite pwrite64 writev pwritev pwritev64 (fds 0-2 ignored)
 *   sync      fsync fdatasync
 *   size      ftruncate ftruncate64
 *   names     rename renameat renameat2 link linkat unlink unlinkat (a
 *             journal or temporary file that cannot be removed)
 *   close     close (fds 0-2 ignored)
 *   creation  open open64 openat openat64 __open_2 __open64_2 __openat_2
 *             __openat64_2 (only with O_CREAT or O_TMPFILE), creat creat64,
 *             mkstemp mkostemp mkstemps mkostemps mkstemp64 mkostemp64
 *             (glibc's mkostemp opens its file with an internal call that no
 *             shim sees, so the function itself is the call site), mkdir,
 *             mkdirat
 * A call is counted only when its caller (__builtin_return_address(0),
 * resolved with dladdr) lies in the main executable: the calls libc,
 * libcurl or libdeflate make internally (stdio's write to stdout, say) are
 * neither counted nor failed.
 *
 * TACOZIP_FAULT_AT=K (K >= 1): the K-th counted call fails without being
 * performed: it returns -1 with errno ENOSPC (the data calls) or EIO (all
 * others).  One exception, close: Linux releases the descriptor even when
 * close() reports an error, so the shim closes it and then reports EIO (a
 * program that "retries" the close would otherwise see a different world
 * than on a real kernel).  K = 0 or unset: nothing fails.
 *
 * TACOZIP_FAULT_LOG=FILE: one line is appended per counted call:
 *     INDEX FUNCTION 0xOFFSET fd=FD STATE [INJECTED]
 * OFFSET is the caller's address minus the executable's load bias (what
 * `addr2line -f -e tacozip 0xOFFSET` takes); FD is the descriptor the call
 * acts on (-1 when none: rename, mkdir...), or the one it returned for a
 * creation; STATE is, for close, "dirty" when the descriptor was created or
 * written through counted calls and "clean" otherwise (an error closing a
 * descriptor nothing was written through cannot lose data), "-" for the
 * other calls.  The counter is shared by all threads (atomic); the log is
 * written with one write(2) per line, so lines of two threads never mix.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

static long fault_at;               /* 0: never fail */
static int log_fd = -1;
static int ready;                   /* set once the constructor has run */
static uintptr_t exe_bias;          /* load bias of the main executable */
static void *exe_base;              /* its dli_fbase (lowest mapping) */
static long counter;

#define MAX_FD 65536
static unsigned char dirty[MAX_FD]; /* fd written or created through counted calls */

static void mark(int fd, int v) {
    if (fd >= 0 && fd < MAX_FD) __atomic_store_n(&dirty[fd], (unsigned char)v, __ATOMIC_RELAXED);
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size, (void)data;
    /* the first object is the main program */
    uintptr_t lo = UINTPTR_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD && info->dlpi_phdr[i].p_vaddr < lo) lo = info->dlpi_phdr[i].p_vaddr;
    exe_bias = (uintptr_t)info->dlpi_addr;
    exe_base = (void *)(exe_bias + (lo == UINTPTR_MAX ? 0 : (lo & ~(uintptr_t)0xfff)));
    return 1;
}

__attribute__((constructor)) static void shim_init(void) {
    const char *k = getenv("TACOZIP_FAULT_AT");
    fault_at = k ? strtol(k, NULL, 10) : 0;
    const char *log = getenv("TACOZIP_FAULT_LOG");
    if (log && *log)
        log_fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    dl_iterate_phdr(phdr_cb, NULL);
    /* the shim's own descriptor is never a counted one */
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
}

/* Is "caller" in the main executable? */
static int from_exe(void *caller) {
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) return 0;
    Dl_info di;
    if (!dladdr(caller, &di)) return 0;
    return di.dli_fbase == exe_base;
}

static void put_log(long idx, const char *fn, void *caller, int fd, const char *state, int injected) {
    if (log_fd < 0) return;
    char line[200];
    int n = snprintf(line, sizeof line, "%ld %s 0x%lx fd=%d %s%s\n", idx, fn,
                     (unsigned long)((uintptr_t)caller - exe_bias), fd, state, injected ? " INJECTED" : "");
    if (n > 0) syscall(SYS_write, log_fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

/* Number one counted call (from 1).  The log line of a creation is written
 * by created() once the fd it returned is known. */
static long count(void) { return __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST); }

#define REAL(name) \
    static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* The common shape: counted only when called from the executable (and, when
 * skipfd, on fds above 2); the fault_at-th counted call returns -1 with
 * errno "err" without being performed; "fdexpr" is the fd for the log. */
#define COUNTED(fn, fdexpr, skipfd, err, call)                                      \
    void *caller = __builtin_return_address(0);                                     \
    int lfd = (fdexpr);                                                             \
    if ((skipfd && lfd >= 0 && lfd <= 2) || !from_exe(caller)) return call;        \
    long idx = count();                                                             \
    if (idx == fault_at) {                                                          \
        put_log(idx, fn, caller, lfd, "-", 1);                                      \
        errno = err;                                                                \
        return -1;                                                                  \
    }                                                                               \
    put_log(idx, fn, caller, lfd, "-", 0)

/* ---- data ---------------------------------------------------------------- */

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    COUNTED("write", fd, 1, ENOSPC, real_write(fd, buf, n));
    mark(fd, 1);
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite);
    COUNTED("pwrite", fd, 1, ENOSPC, real_pwrite(fd, buf, n, off));
    mark(fd, 1);
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    REAL(pwrite64);
    COUNTED("pwrite64", fd, 1, ENOSPC, real_pwrite64(fd, buf, n, off));
    mark(fd, 1);
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev);
    COUNTED("writev", fd, 1, ENOSPC, real_writev(fd, iov, cnt));
    mark(fd, 1);
    return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(pwritev);
    COUNTED("pwritev", fd, 1, ENOSPC, real_pwritev(fd, iov, cnt, off));
    mark(fd, 1);
    return real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
    REAL(pwritev64);
    COUNTED("pwritev64", fd, 1, ENOSPC, real_pwritev64(fd, iov, cnt, off));
    mark(fd, 1);
    return real_pwritev64(fd, iov, cnt, off);
}

/* ---- sync and size ---------------------------------------------------------- */

int fsync(int fd) {
    REAL(fsync);
    COUNTED("fsync", fd, 0, EIO, real_fsync(fd));
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    COUNTED("fdatasync", fd, 0, EIO, real_fdatasync(fd));
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len) {
    REAL(ftruncate);
    COUNTED("ftruncate", fd, 0, EIO, real_ftruncate(fd, len));
    mark(fd, 1);
    return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len) {
    REAL(ftruncate64);
    COUNTED("ftruncate64", fd, 0, EIO, real_ftruncate64(fd, len));
    mark(fd, 1);
    return real_ftruncate64(fd, len);
}

/* ---- names ---------------------------------------------------------------- */

int rename(const char *a, const char *b) {
    REAL(rename);
    COUNTED("rename", -1, 0, EIO, real_rename(a, b));
    return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b) {
    REAL(renameat);
    COUNTED("renameat", -1, 0, EIO, real_renameat(da, a, db, b));
    return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    REAL(renameat2);
    COUNTED("renameat2", -1, 0, EIO, real_renameat2(da, a, db, b, flags));
    return real_renameat2(da, a, db, b, flags);
}

int link(const char *a, const char *b) {
    REAL(link);
    COUNTED("link", -1, 0, EIO, real_link(a, b));
    return real_link(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags) {
    REAL(linkat);
    /* linkat(fd, "", ..., AT_EMPTY_PATH) names the fd it links */
    int efd = (flags & AT_EMPTY_PATH) && !a[0] ? da : -1;
    COUNTED("linkat", efd, 0, EIO, real_linkat(da, a, db, b, flags));
    return real_linkat(da, a, db, b, flags);
}

int unlink(const char *a) {
    REAL(unlink);
    COUNTED("unlink", -1, 0, EIO, real_unlink(a));
    return real_unlink(a);
}

int unlinkat(int d, const char *a, int flags) {
    REAL(unlinkat);
    COUNTED("unlinkat", -1, 0, EIO, real_unlinkat(d, a, flags));
    return real_unlinkat(d, a, flags);
}

/* ---- close ------------------------------------------------------------------ */

int close(int fd) {
    REAL(close);
    void *caller = __builtin_return_address(0);
    if ((fd >= 0 && fd <= 2) || !from_exe(caller)) return real_close(fd);
    long idx = count();
    const char *state = fd >= 0 && fd < MAX_FD && __atomic_load_n(&dirty[fd], __ATOMIC_RELAXED) ? "dirty" : "clean";
    mark(fd, 0);
    put_log(idx, "close", caller, fd, state, idx == fault_at);
    if (idx == fault_at) {
        real_close(fd);
        errno = EIO;
        return -1;
    }
    return real_close(fd);
}

/* ---- creation --------------------------------------------------------------- */

static int creating(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

/* After a creation: log it with the fd it returned (or -1). */
static int created(long idx, const char *fn, void *caller, int fd) {
    int e = errno;
    put_log(idx, fn, caller, fd, "-", 0);
    mark(fd, 1);
    errno = e;
    return fd;
}

#define CREATE_CALL(fn, call)                                   \
    do {                                                        \
        long idx = count();                                     \
        if (idx == fault_at) {                                  \
            put_log(idx, fn, caller, -1, "-", 1);               \
            errno = EIO;                                        \
            return -1;                                          \
        }                                                       \
        return created(idx, fn, caller, (call));                \
    } while (0)

#define MODE_ARG(flags)                                         \
    mode_t mode = 0;                                            \
    if (creating(flags)) {                                      \
        va_list ap;                                             \
        va_start(ap, flags);                                    \
        mode = (mode_t)va_arg(ap, int);                         \
        va_end(ap);                                             \
    }

int open(const char *p, int flags, ...) {
    REAL(open);
    MODE_ARG(flags);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real_open(p, flags, mode);
    CREATE_CALL("open", real_open(p, flags, mode));
}

int open64(const char *p, int flags, ...) {
    REAL(open64);
    MODE_ARG(flags);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real_open64(p, flags, mode);
    CREATE_CALL("open64", real_open64(p, flags, mode));
}

int openat(int d, const char *p, int flags, ...) {
    REAL(openat);
    MODE_ARG(flags);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real_openat(d, p, flags, mode);
    CREATE_CALL("openat", real_openat(d, p, flags, mode));
}

int openat64(int d, const char *p, int flags, ...) {
    REAL(openat64);
    MODE_ARG(flags);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real_openat64(d, p, flags, mode);
    CREATE_CALL("openat64", real_openat64(d, p, flags, mode));
}

/* _FORTIFY_SOURCE's checked forms (no mode: O_CREAT is not allowed there
 * without one, so these only ever open existing files; counted anyway when
 * a flag says they create). */
int __open_2(const char *p, int flags);
int __open64_2(const char *p, int flags);
int __openat_2(int d, const char *p, int flags);
int __openat64_2(int d, const char *p, int flags);

int __open_2(const char *p, int flags) {
    REAL(__open_2);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real___open_2(p, flags);
    CREATE_CALL("__open_2", real___open_2(p, flags));
}

int __open64_2(const char *p, int flags) {
    REAL(__open64_2);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real___open64_2(p, flags);
    CREATE_CALL("__open64_2", real___open64_2(p, flags));
}

int __openat_2(int d, const char *p, int flags) {
    REAL(__openat_2);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real___openat_2(d, p, flags);
    CREATE_CALL("__openat_2", real___openat_2(d, p, flags));
}

int __openat64_2(int d, const char *p, int flags) {
    REAL(__openat64_2);
    void *caller = __builtin_return_address(0);
    if (!creating(flags) || !from_exe(caller)) return real___openat64_2(d, p, flags);
    CREATE_CALL("__openat64_2", real___openat64_2(d, p, flags));
}

int creat(const char *p, mode_t mode) {
    REAL(creat);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_creat(p, mode);
    CREATE_CALL("creat", real_creat(p, mode));
}

int creat64(const char *p, mode_t mode) {
    REAL(creat64);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_creat64(p, mode);
    CREATE_CALL("creat64", real_creat64(p, mode));
}

int mkstemp(char *t) {
    REAL(mkstemp);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkstemp(t);
    CREATE_CALL("mkstemp", real_mkstemp(t));
}

int mkostemp(char *t, int flags) {
    REAL(mkostemp);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkostemp(t, flags);
    CREATE_CALL("mkostemp", real_mkostemp(t, flags));
}

int mkstemps(char *t, int slen) {
    REAL(mkstemps);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkstemps(t, slen);
    CREATE_CALL("mkstemps", real_mkstemps(t, slen));
}

int mkostemps(char *t, int slen, int flags) {
    REAL(mkostemps);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkostemps(t, slen, flags);
    CREATE_CALL("mkostemps", real_mkostemps(t, slen, flags));
}

int mkstemp64(char *t);
int mkstemp64(char *t) {
    REAL(mkstemp64);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkstemp64(t);
    CREATE_CALL("mkstemp64", real_mkstemp64(t));
}

int mkostemp64(char *t, int flags);
int mkostemp64(char *t, int flags) {
    REAL(mkostemp64);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkostemp64(t, flags);
    CREATE_CALL("mkostemp64", real_mkostemp64(t, flags));
}

int mkdir(const char *p, mode_t mode) {
    REAL(mkdir);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkdir(p, mode);
    long idx = count();
    put_log(idx, "mkdir", caller, -1, "-", idx == fault_at);
    if (idx == fault_at) {
        errno = EIO;
        return -1;
    }
    return real_mkdir(p, mode);
}

int mkdirat(int d, const char *p, mode_t mode) {
    REAL(mkdirat);
    void *caller = __builtin_return_address(0);
    if (!from_exe(caller)) return real_mkdirat(d, p, mode);
    long idx = count();
    put_log(idx, "mkdirat", caller, -1, "-", idx == fault_at);
    if (idx == fault_at) {
        errno = EIO;
        return -1;
    }
    return real_mkdirat(d, p, mode);
}
