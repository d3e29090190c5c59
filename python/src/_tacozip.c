/* _tacozip.c - the CPython extension over the tacozip C library.
 *
 * A thin layer: argument conversion, the GIL released around every call that
 * may do I/O (files, HTTP(S)/S3, Python file objects), C error codes turned
 * into the package's exception classes (tacozip.exceptions), byte sources
 * over Python file objects (tacozip_source_new with callbacks that take the
 * GIL).  The Pythonic API lives in python/tacozip/.
 *
 * Written against the limited C API of Python 3.11 (no direct access to
 * object structs, no macros that read them), so that the module can be
 * built for the stable ABI. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tacozip.h"

/* ---- module state: the exception classes ------------------------------ */

typedef struct {
    PyObject *error;      /* TacozipError */
    PyObject *io_error;   /* TacozipIOError */
    PyObject *val_error;  /* TacozipValidationError */
    PyTypeObject *archive_type;
    PyTypeObject *writer_type;
} mod_state;

static PyObject *g_module; /* set once at import; read-only afterwards */

static mod_state *state(void) { return (mod_state *)PyModule_GetState(g_module); }

/* The exception classes, imported on first use: tacozip.config imports this
 * module for its code table, and tacozip.exceptions imports tacozip.config,
 * so they cannot be imported while this module initialises. */
static int load_exceptions(mod_state *st) {
    if (st->error) return 0;
    PyObject *exc = PyImport_ImportModule("tacozip.exceptions");
    if (!exc) return -1;
    PyObject *e = PyObject_GetAttrString(exc, "TacozipError");
    PyObject *io = PyObject_GetAttrString(exc, "TacozipIOError");
    PyObject *val = PyObject_GetAttrString(exc, "TacozipValidationError");
    Py_DECREF(exc);
    if (!e || !io || !val) {
        Py_XDECREF(e), Py_XDECREF(io), Py_XDECREF(val);
        return -1;
    }
    st->error = e, st->io_error = io, st->val_error = val;
    return 0;
}

/* A message from C as str.  C messages may hold bytes that are not UTF-8
 * (member names, paths, text cut at a byte limit inside a character):
 * those bytes are shown as \xNN escapes, so the result is always valid
 * text and never raises UnicodeDecodeError. */
static PyObject *message_str(const char *s) {
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "backslashreplace");
}

/* Raise the exception class matching "code" with the package's standard
 * message; the detailed message (file, member, structure at fault) goes
 * into the exception's "detail" attribute and a note. */
static PyObject *raise_code(int code, const char *detail) {
    mod_state *st = state();
    if (load_exceptions(st)) return NULL;
    PyObject *cls = st->error;
    if (code == TACOZ_ERR_IO || code == TACOZ_ERR_NETWORK || code == TACOZ_ERR_RANGE_IGNORED)
        cls = st->io_error;
    else if (code == TACOZ_ERR_PARAM || code == TACOZ_ERR_INVALID_HEADER || (code <= -10 && code >= -39))
        cls = st->val_error;
    PyObject *exc = PyObject_CallFunction(cls, "i", code);
    if (!exc) return NULL;
    if (detail && detail[0]) {
        PyObject *d = message_str(detail);
        if (d) {
            PyObject_SetAttrString(exc, "detail", d);
            PyObject *r = PyObject_CallMethod(exc, "add_note", "O", d);
            if (r) Py_DECREF(r);
            else PyErr_Clear(); /* add_note is 3.11+ */
            Py_DECREF(d);
        }
    } else {
        PyObject_SetAttrString(exc, "detail", Py_None);
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- conversions --------------------------------------------------------- */

/* os.fspath + UTF-8 bytes (kept alive by *holder). */
static const char *path_arg(PyObject *o, PyObject **holder) {
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(o, &b)) return NULL;
    const char *s = PyBytes_AsString(b);
    if (!s) {
        Py_DECREF(b);
        return NULL;
    }
    *holder = b;
    return s;
}

/* A path (str, bytes, os.PathLike) as opposed to a file object. */
static int is_path(PyObject *o) {
    return PyUnicode_Check(o) || PyBytes_Check(o) || PyObject_HasAttrString(o, "__fspath__");
}

/* A tuple of the items of any sequence (new reference), with "msg" as the
 * TypeError for other objects. */
static PyObject *as_tuple(PyObject *seq, const char *msg) {
    if (!PySequence_Check(seq) || PyUnicode_Check(seq) || PyBytes_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, msg);
        return NULL;
    }
    return PySequence_Tuple(seq);
}

/* An int (or an object with __index__) in [0, 2**64 - 1] -> *out; else
 * OverflowError "<what> <value> is out of range (0 to 2**64-1)" (the "K"
 * format would wrap -1 to 2**64-1 and 2**64+1 to 1 silently). */
static int u64_value(PyObject *o, unsigned long long *out, const char *what) {
    PyObject *i = PyNumber_Index(o);
    if (!i) return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(i);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_OverflowError, "%s %R is out of range (0 to 2**64-1)", what, i);
        }
        Py_DECREF(i);
        return -1;
    }
    Py_DECREF(i);
    *out = v;
    return 0;
}

/* "O&" converters for argument parsing */
static int conv_offset(PyObject *o, void *out) { return u64_value(o, out, "offset") == 0; }
static int conv_length(PyObject *o, void *out) { return u64_value(o, out, "length") == 0; }

/* An (offset, length) pair; "what" names it in messages ("entry 2"). */
static int pair_arg(PyObject *item, unsigned long long *a, unsigned long long *b, const char *msg,
                    const char *what, Py_ssize_t i) {
    PyObject *t = as_tuple(item, msg);
    if (!t) return -1;
    if (PyTuple_Size(t) != 2) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_TypeError, msg);
        return -1;
    }
    char name[64];
    snprintf(name, sizeof name, "%s %zd: offset", what, i);
    int rc = u64_value(PyTuple_GetItem(t, 0), a, name);
    if (!rc) {
        snprintf(name, sizeof name, "%s %zd: length", what, i);
        rc = u64_value(PyTuple_GetItem(t, 1), b, name);
    }
    Py_DECREF(t);
    return rc;
}

/* The header entries given, as a tuple of at most 7 (a new reference), or
 * NULL with an exception ("what": the TypeError's message). */
static PyObject *entries_tuple(PyObject *seq, const char *what, Py_ssize_t *n) {
    PyObject *t = as_tuple(seq, what);
    if (!t) return NULL;
    *n = PyTuple_Size(t);
    if (*n > TACO_HEADER_MAX_ENTRIES) {
        PyErr_Format(PyExc_ValueError, "Too many entries: %zd > %d", *n, TACO_HEADER_MAX_ENTRIES);
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

static int entries_arg(PyObject *seq, taco_meta_array_t *m) {
    memset(m, 0, sizeof *m);
    Py_ssize_t n;
    PyObject *t = entries_tuple(seq, "entries must be a sequence of (offset, length) pairs", &n);
    if (!t) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long off, len;
        if (pair_arg(PyTuple_GetItem(t, i), &off, &len, "each entry must be an (offset, length) pair", "entry", i)) {
            Py_DECREF(t);
            return -1;
        }
        m->entries[i].offset = off;
        m->entries[i].length = len;
    }
    m->count = (uint8_t)n;
    Py_DECREF(t);
    return 0;
}

static PyObject *entries_list(const taco_meta_array_t *m) {
    PyObject *l = PyList_New(m->count);
    if (!l) return NULL;
    for (int i = 0; i < m->count; i++) {
        PyObject *t = Py_BuildValue("(KK)", (unsigned long long)m->entries[i].offset,
                                    (unsigned long long)m->entries[i].length);
        if (!t) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SetItem(l, i, t);
    }
    return l;
}

/* A list of str/bytes/PathLike -> C string array (holders keep them alive). */
typedef struct {
    const char **v;
    PyObject **hold;
    Py_ssize_t n;
} str_array;

static void str_array_free(str_array *a) {
    for (Py_ssize_t i = 0; i < a->n; i++) Py_XDECREF(a->hold[i]);
    PyMem_Free(a->hold);
    PyMem_Free((void *)a->v);
    a->v = NULL, a->hold = NULL, a->n = 0;
}

/* The items are taken from a tuple copy of "seq" made before any user code
 * runs (__fspath__, a str subclass's methods), so code that mutates "seq"
 * cannot make this read past its end; such a change is then reported
 * (ValueError) rather than silently using either version.  Names (not
 * paths) must not contain NUL: C would see only the part before it. */
static int str_array_from(PyObject *seq, str_array *a, int as_path) {
    memset(a, 0, sizeof *a);
    PyObject *t = as_tuple(seq, "expected a sequence of paths or names");
    if (!t) return -1;
    Py_ssize_t n = PyTuple_Size(t);
    a->v = PyMem_Calloc((size_t)n + 1, sizeof *a->v);
    a->hold = PyMem_Calloc((size_t)n + 1, sizeof *a->hold);
    if (!a->v || !a->hold) {
        Py_DECREF(t);
        PyMem_Free(a->hold), PyMem_Free((void *)a->v);
        a->v = NULL, a->hold = NULL;
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GetItem(t, i);
        PyObject *b = NULL;
        if (as_path) {
            if (!PyUnicode_FSConverter(item, &b)) break;
        } else if (PyUnicode_Check(item)) {
            b = PyUnicode_AsUTF8String(item);
            if (!b) break;
        } else {
            PyErr_SetString(PyExc_TypeError, as_path ? "paths must be str, bytes or os.PathLike"
                                                     : "archive names must be str");
            break;
        }
        a->hold[i] = b;
        a->n = i + 1;
        if (!(a->v[i] = PyBytes_AsString(b))) break;
        if ((Py_ssize_t)strlen(a->v[i]) != PyBytes_Size(b)) {
            PyErr_Format(PyExc_ValueError, "%R contains a NUL character", item);
            break;
        }
    }
    Py_DECREF(t);
    if (!PyErr_Occurred()) {
        Py_ssize_t now = PySequence_Size(seq);
        if (now < 0) /* a sequence without a length: nothing to compare */
            PyErr_Clear();
        else if (now != n)
            PyErr_Format(PyExc_ValueError, "the sequence changed size while its items were converted (%zd -> %zd)",
                         n, now);
    }
    if (PyErr_Occurred()) {
        str_array_free(a);
        return -1;
    }
    a->n = n;
    return 0;
}

/* ---- remote options: a dict of tacozip_remote_options fields ----------- */

/* The Python package builds the dict (tacozip/_remote.py: keyword
 * arguments, storage_options, environment variables); here each key is a
 * field of tacozip_remote_options. */
typedef struct {
    tacozip_remote_options o;
    PyObject *hold[8];
    int nhold;
    str_array headers;
} remote_arg;

static void remote_free(remote_arg *r) {
    for (int i = 0; i < r->nhold; i++) Py_XDECREF(r->hold[i]);
    r->nhold = 0;
    str_array_free(&r->headers);
}

static int remote_str(remote_arg *r, PyObject *v, const char **out, const char *key) {
    if (v == Py_None) return 0;
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "remote option %s must be a str", key);
        return -1;
    }
    PyObject *b = PyUnicode_AsUTF8String(v);
    if (!b) return -1;
    char *s = NULL;
    Py_ssize_t n = 0;
    if (PyBytes_AsStringAndSize(b, &s, &n) < 0 || (Py_ssize_t)strlen(s) != n) {
        Py_DECREF(b);
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "remote option %s contains a NUL character", key);
        return -1;
    }
    if (r->nhold >= (int)(sizeof r->hold / sizeof r->hold[0])) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "too many string remote options");
        return -1;
    }
    r->hold[r->nhold++] = b;
    *out = s;
    return 0;
}

static int remote_long(PyObject *v, long *out, const char *key) {
    if (v == Py_None) return 0;
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "remote option %s must be an int", key);
        return -1;
    }
    *out = x;
    return 0;
}

static int remote_u64(PyObject *v, uint64_t *out, const char *key) {
    if (v == Py_None) return 0;
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "remote option %s must be a non-negative int", key);
        return -1;
    }
    *out = x;
    return 0;
}

/* 0: "remote" is None (no options: *out NULL); -1 with an exception. */
static int remote_from(PyObject *d, remote_arg *r, const tacozip_remote_options **out) {
    memset(r, 0, sizeof *r);
    r->o.struct_size = sizeof r->o;
    *out = NULL;
    if (!d || d == Py_None) return 0;
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "remote options must be a dict");
        return -1;
    }
    /* A copy: converting a value may run user code (__index__, __bool__,
     * a sequence's items) that changes "d"; the copy keeps every key and
     * value alive while it is used (the key names the option in messages). */
    PyObject *copy = PyDict_Copy(d);
    if (!copy) return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(copy, &pos, &k, &v)) {
        const char *key = PyUnicode_Check(k) ? PyUnicode_AsUTF8AndSize(k, NULL) : NULL;
        if (!key) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "remote option names must be str");
            goto fail;
        }
        long l = 0;
        int rc = 0;
#define STR_FIELD(name) else if (!strcmp(key, #name)) rc = remote_str(r, v, &r->o.name, key)
#define LONG_FIELD(name) else if (!strcmp(key, #name)) { rc = remote_long(v, &l, key); r->o.name = l; }
#define INT_FIELD(name)                                                              \
    else if (!strcmp(key, #name)) {                                                  \
        rc = remote_long(v, &l, key);                                                \
        if (!rc && (l < -2147483647L || l > 2147483647L)) {                          \
            PyErr_Format(PyExc_ValueError, "remote option %s is out of range", key); \
            rc = -1;                                                                 \
        }                                                                            \
        r->o.name = (int)l;                                                          \
    }
        if (0) {
        }
        STR_FIELD(access_key_id);
        STR_FIELD(secret_access_key);
        STR_FIELD(session_token);
        STR_FIELD(region);
        STR_FIELD(endpoint_url);
        STR_FIELD(ca_bundle);
        STR_FIELD(expected_identity);
        INT_FIELD(s3_addressing)
        INT_FIELD(retries)
        INT_FIELD(parallel)
        LONG_FIELD(connect_timeout_ms)
        LONG_FIELD(stall_timeout_s)
        LONG_FIELD(min_rate)
        LONG_FIELD(deadline_ms)
        LONG_FIELD(backoff_ms)
        LONG_FIELD(max_backoff_ms)
        else if (!strcmp(key, "unsigned_requests")) {
            int t = PyObject_IsTrue(v);
            if (t < 0) rc = -1;
            r->o.unsigned_requests = t > 0;
        }
        else if (!strcmp(key, "coalesce_gap")) rc = remote_u64(v, &r->o.coalesce_gap, key);
        else if (!strcmp(key, "max_skip")) rc = remote_u64(v, &r->o.max_skip, key);
        else if (!strcmp(key, "headers")) {
            if (v != Py_None) {
                str_array_free(&r->headers);
                rc = str_array_from(v, &r->headers, 0);
                r->o.headers = r->headers.v; /* NULL-terminated (calloc n + 1) */
            }
        }
        else {
            PyErr_Format(PyExc_TypeError, "unknown remote option %s", key);
            rc = -1;
        }
#undef STR_FIELD
#undef LONG_FIELD
#undef INT_FIELD
        if (rc) goto fail;
    }
    Py_DECREF(copy);
    *out = &r->o;
    return 0;
fail:
    Py_DECREF(copy);
    remote_free(r);
    return -1;
}

/* ---- byte sources over Python file objects -------------------------------- */

/* Returned instead of a tacozip code when a Python exception is set. */
#define PY_EXC (-1000)

/* A file object (read/readinto + seek) as a tacozip_source.  The library
 * calls the callbacks from the threads that read, without the GIL: each
 * takes the source's lock first (seek + read must not interleave), then
 * the GIL.  The lock is never waited for with the GIL held, so a thread
 * whose read() released the GIL cannot deadlock with another waiting for
 * the lock.  A Python exception becomes a tacozip error whose message is
 * the exception's text; it never escapes into C. */
typedef struct {
    PyObject *file;          /* strong reference until the close callback */
    PyThread_type_lock lock; /* serialises seek + read */
    int use_readinto;
} py_source;

/* Turn the pending Python exception into err (code and message). */
static int fail_from_exception(tacozip_error *err, const char *what) {
    PyObject *t = NULL, *v = NULL, *tb = NULL;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    int code = t && PyErr_GivenExceptionMatches(t, PyExc_MemoryError) ? TACOZ_ERR_NOMEM : TACOZ_ERR_IO;
    int interrupted = t && PyErr_GivenExceptionMatches(t, PyExc_KeyboardInterrupt);
    const char *tname = "exception", *text = "";
    PyObject *name = t && PyType_Check(t) ? PyType_GetName((PyTypeObject *)t) : NULL;
    if (name) tname = PyUnicode_AsUTF8AndSize(name, NULL);
    if (!tname) tname = "exception";
    PyObject *s = v ? PyObject_Str(v) : NULL;
    if (s) text = PyUnicode_AsUTF8AndSize(s, NULL);
    if (!text) text = "";
    PyErr_Clear();
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s raised %s%s%s", what, tname, text[0] ? ": " : "", text);
    Py_XDECREF(s);
    Py_XDECREF(name);
    Py_XDECREF(t), Py_XDECREF(v), Py_XDECREF(tb);
    /* Ctrl-C while the object was read: the read fails, and the interrupt
     * is raised again in the main thread at its next check */
    if (interrupted) PyErr_SetInterrupt();
    return code;
}

static int src_fail(tacozip_error *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

static int src_get_size(void *user, uint64_t *size, tacozip_error *err) {
    py_source *s = user;
    PyThread_acquire_lock(s->lock, WAIT_LOCK);
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = TACOZ_OK;
    long long n = -1;
    /* fsspec files know their size; others: seek to the end */
    PyObject *attr = PyObject_HasAttrString(s->file, "size") ? PyObject_GetAttrString(s->file, "size") : NULL;
    PyErr_Clear();
    if (attr && PyLong_Check(attr) && !PyBool_Check(attr)) {
        n = PyLong_AsLongLong(attr);
        if (n == -1 && PyErr_Occurred()) rc = fail_from_exception(err, ".size");
    } else {
        PyObject *r = PyObject_CallMethod(s->file, "seek", "ii", 0, 2);
        if (r && r == Py_None) { /* a seek() that returns nothing: ask tell() */
            Py_DECREF(r);
            r = PyObject_CallMethod(s->file, "tell", NULL);
        }
        if (!r) {
            rc = fail_from_exception(err, "seek(0, 2)");
        } else {
            n = PyLong_AsLongLong(r);
            if (n == -1 && PyErr_Occurred()) rc = fail_from_exception(err, "seek(0, 2)");
            Py_DECREF(r);
        }
    }
    Py_XDECREF(attr);
    if (rc == TACOZ_OK && n < 0)
        rc = src_fail(err, TACOZ_ERR_IO, "the file object gave a negative size (%lld)", n);
    if (rc == TACOZ_OK) *size = (uint64_t)n;
    PyGILState_Release(g);
    PyThread_release_lock(s->lock);
    return rc;
}

/* One readinto()/read() call into buf; returns bytes stored or -1 (err set). */
static Py_ssize_t src_read_once(py_source *s, char *buf, size_t want, tacozip_error *err) {
    Py_ssize_t n = -1;
    if (s->use_readinto) {
        PyObject *mv = PyMemoryView_FromMemory(buf, (Py_ssize_t)want, PyBUF_WRITE);
        if (!mv) return fail_from_exception(err, "readinto()"), -1;
        PyObject *r = PyObject_CallMethod(s->file, "readinto", "O", mv);
        PyObject *et = NULL, *ev = NULL, *etb = NULL;
        PyErr_Fetch(&et, &ev, &etb); /* readinto()'s exception, if any */
        /* the view must not outlive this call: release it whatever happened */
        PyObject *rel = PyObject_CallMethod(mv, "release", NULL);
        Py_DECREF(mv);
        if (!r) {
            Py_XDECREF(rel);
            PyErr_Clear();
            PyErr_Restore(et, ev, etb);
            fail_from_exception(err, "readinto()");
            return -1;
        }
        if (!rel) {
            Py_DECREF(r);
            fail_from_exception(err, "readinto() kept the buffer; release()");
            return -1;
        }
        Py_DECREF(rel);
        if (r == Py_None) {
            Py_DECREF(r);
            src_fail(err, TACOZ_ERR_IO, "readinto() returned None (a non-blocking file?)");
            return -1;
        }
        n = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (n == -1 && PyErr_Occurred()) return fail_from_exception(err, "readinto()"), -1;
    } else {
        PyObject *r = PyObject_CallMethod(s->file, "read", "n", (Py_ssize_t)want);
        if (!r) return fail_from_exception(err, "read()"), -1;
        Py_buffer view;
        if (r == Py_None) {
            Py_DECREF(r);
            src_fail(err, TACOZ_ERR_IO, "read() returned None (a non-blocking file?)");
            return -1;
        }
        if (PyObject_GetBuffer(r, &view, PyBUF_SIMPLE) != 0) {
            Py_DECREF(r);
            return fail_from_exception(err, "read() (not bytes)"), -1;
        }
        n = view.len;
        if ((size_t)n <= want) memcpy(buf, view.buf, (size_t)n);
        PyBuffer_Release(&view);
        Py_DECREF(r);
    }
    if (n < 0 || (size_t)n > want) {
        src_fail(err, TACOZ_ERR_IO, "the file object returned %lld bytes when %llu were asked for", (long long)n,
                 (unsigned long long)want);
        return -1;
    }
    return n;
}

static int src_read_at(void *user, uint64_t offset, void *buf, size_t len, tacozip_error *err) {
    py_source *s = user;
    PyThread_acquire_lock(s->lock, WAIT_LOCK);
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = TACOZ_OK;
    PyObject *r = PyObject_CallMethod(s->file, "seek", "K", (unsigned long long)offset);
    if (!r) {
        rc = fail_from_exception(err, "seek()");
    } else {
        Py_DECREF(r);
        size_t got = 0;
        while (got < len) {
            Py_ssize_t n = src_read_once(s, (char *)buf + got, len - got, err);
            if (n < 0) {
                if (PyErr_Occurred()) fail_from_exception(err, s->use_readinto ? "readinto()" : "read()");
                rc = err->code ? err->code : TACOZ_ERR_IO;
                break;
            }
            if (n == 0) {
                rc = src_fail(err, TACOZ_ERR_IO, "short read: %llu of %llu bytes at offset %llu (end of file)",
                              (unsigned long long)got, (unsigned long long)len, (unsigned long long)offset);
                break;
            }
            got += (size_t)n;
        }
    }
    PyGILState_Release(g);
    PyThread_release_lock(s->lock);
    return rc;
}

static void src_close(void *user) {
    py_source *s = user;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(s->file);
    PyGILState_Release(g);
    PyThread_free_lock(s->lock);
    free(s);
}

/* A source over file object "file" (GIL held; released around the
 * library call, which calls get_size).  Returns 0, a tacozip code (err
 * filled) or PY_EXC (a Python exception set). */
static int py_source_new(PyObject *file, const char *name, tacozip_source **out, tacozip_error *err) {
    int has_seek = PyObject_HasAttrString(file, "seek");
    int has_readinto = PyObject_HasAttrString(file, "readinto");
    int has_read = PyObject_HasAttrString(file, "read");
    if (!has_seek || !(has_readinto || has_read)) {
        PyObject *tn = PyType_GetName(Py_TYPE(file));
        if (tn) {
            PyErr_Format(PyExc_TypeError, "expected a path, a URL or a binary file object with seek() and "
                                          "read() or readinto(), not %U", tn);
            Py_DECREF(tn);
        }
        return PY_EXC;
    }
    py_source *s = calloc(1, sizeof *s);
    if (!s || !(s->lock = PyThread_allocate_lock())) {
        free(s);
        PyErr_NoMemory();
        return PY_EXC;
    }
    Py_INCREF(file);
    s->file = file;
    s->use_readinto = has_readinto;
    tacozip_source_callbacks cb = {sizeof cb, src_get_size, src_read_at, NULL, NULL, src_close};
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_source_new(&cb, s, name, out, err);
    Py_END_ALLOW_THREADS
    if (rc) { /* close is not called on failure */
        Py_DECREF(file);
        PyThread_free_lock(s->lock);
        free(s);
        return rc;
    }
    return 0;
}

/* Any source: a path or URL (with remote options) or a file object.
 * Returns 0, a negative tacozip code (err filled), or PY_EXC. */
static int any_source(PyObject *src, PyObject *remote, PyObject *name, tacozip_source **out, tacozip_error *err) {
    if (is_path(src)) {
        PyObject *hold = NULL;
        const char *path = path_arg(src, &hold);
        if (!path) return PY_EXC;
        remote_arg ra;
        const tacozip_remote_options *opts;
        if (remote_from(remote, &ra, &opts)) {
            Py_DECREF(hold);
            return PY_EXC;
        }
        int rc;
        Py_BEGIN_ALLOW_THREADS rc = tacozip_source_open(path, opts, out, err);
        Py_END_ALLOW_THREADS
        remote_free(&ra);
        Py_DECREF(hold);
        return rc;
    }
    PyObject *nb = NULL;
    const char *nm = NULL;
    if (name && name != Py_None) {
        if (!(nb = PyUnicode_AsUTF8String(name))) return PY_EXC;
        nm = PyBytes_AsString(nb);
    }
    int rc = py_source_new(src, nm, out, err);
    Py_XDECREF(nb);
    return rc;
}

/* ---- progress callback (called from C without the GIL) ------------------ */

typedef struct {
    PyObject *fn;
    int failed;
} py_progress;

static int progress_trampoline(void *user, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    py_progress *p = user;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(p->fn, "KKKK", (unsigned long long)done, (unsigned long long)total,
                                        (unsigned long long)files, (unsigned long long)nfiles);
    int stop = 0;
    if (!r) {
        p->failed = 1; /* keep the Python exception; cancel the C work */
        stop = 1;
    } else {
        stop = r != Py_None && PyObject_IsTrue(r) == 1;
        Py_DECREF(r);
    }
    PyGILState_Release(g);
    return stop;
}

/* ---- header functions ----------------------------------------------------- */

static PyObject *py_version(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    return PyUnicode_FromString(tacozip_get_version());
}

/* implied_dirs(names) -> (dirs, explicit): "dirs" is the set of every
 * directory the names imply (each prefix that ends just before a '/',
 * except ""), "explicit" the list of names that end in '/' (directory
 * entries).  One pass in C for taco://'s listing of large archives: a name
 * whose parent is the previous name's parent adds nothing new. */
static PyObject *py_implied_dirs(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyList_Check(arg)) return PyErr_Format(PyExc_TypeError, "implied_dirs() takes a list of str");
    PyObject *dirs = PySet_New(NULL), *explicit = PyList_New(0), *prev = NULL, *s = NULL;
    if (!dirs || !explicit) goto fail;
    Py_ssize_t prev_len = -1;
    /* the length is read again at each item and each item is held while it
     * is used: nothing here runs user code today, but a list must never be
     * read past its end */
    for (Py_ssize_t i = 0; i < PyList_Size(arg); i++) {
        Py_XDECREF(s);
        s = PyList_GetItem(arg, i);
        Py_XINCREF(s);
        if (!s) goto fail;
        if (!PyUnicode_Check(s)) {
            PyErr_Format(PyExc_TypeError, "implied_dirs() takes a list of str");
            goto fail;
        }
        Py_ssize_t len = PyUnicode_GetLength(s);
        if (len > 0 && PyUnicode_ReadChar(s, len - 1) == '/' && PyList_Append(explicit, s) < 0) goto fail;
        Py_ssize_t slash = len > 0 ? PyUnicode_FindChar(s, '/', 0, len - 1 > 0 ? len - 1 : 0, -1) : -1;
        if (slash == -2) goto fail;
        if (slash <= 0) continue; /* no parent (or only the root) */
        if (prev && slash == prev_len && PyUnicode_Tailmatch(s, prev, 0, slash, -1) == 1) continue;
        /* the parent, then each ancestor up to the first one already known */
        Py_ssize_t end = slash;
        int first = 1;
        while (end > 0) {
            PyObject *d = PyUnicode_Substring(s, 0, end);
            if (!d) goto fail;
            int known = PySet_Contains(dirs, d);
            if (known < 0 || (!known && PySet_Add(dirs, d) < 0)) {
                Py_DECREF(d);
                goto fail;
            }
            if (first) {
                Py_XDECREF(prev);
                prev = d; /* keeps the reference */
                prev_len = end;
                first = 0;
            } else {
                Py_DECREF(d);
            }
            if (known) break;
            end = PyUnicode_FindChar(s, '/', 0, end, -1);
            if (end == -2) goto fail;
        }
    }
    Py_XDECREF(s);
    Py_XDECREF(prev);
    return Py_BuildValue("(NN)", dirs, explicit);
fail:
    Py_XDECREF(s);
    Py_XDECREF(prev);
    Py_XDECREF(dirs);
    Py_XDECREF(explicit);
    return NULL;
}

static PyObject *py_parse_header(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0) return NULL;
    if (view.len < TACO_HEADER_SIZE) {
        PyErr_Format(PyExc_ValueError, "Buffer too small: %zd < %d", view.len, TACO_HEADER_SIZE);
        PyBuffer_Release(&view);
        return NULL;
    }
    taco_meta_array_t m;
    int rc = tacozip_parse_header(view.buf, (size_t)view.len, &m);
    PyBuffer_Release(&view);
    if (rc) return raise_code(rc, "not a TACO_HEADER");
    return entries_list(&m);
}

static PyObject *py_serialize_header(PyObject *self, PyObject *arg) {
    (void)self;
    taco_meta_array_t m;
    if (entries_arg(arg, &m)) return NULL;
    unsigned char buf[TACO_HEADER_SIZE];
    int rc = tacozip_serialize_header(&m, buf, sizeof buf);
    if (rc) return raise_code(rc, NULL);
    return PyBytes_FromStringAndSize((const char *)buf, sizeof buf);
}

/* read_header(source, remote=None, name=None): a local path through
 * tacozip_read_header_ex (the original function), a URL with remote
 * options or a file object through a source. */
static PyObject *py_read_header(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"source", "remote", "name", NULL};
    PyObject *src, *remote = Py_None, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO", kwlist, &src, &remote, &name)) return NULL;
    taco_meta_array_t m;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    if (is_path(src) && remote == Py_None) {
        PyObject *hold = NULL;
        const char *path = path_arg(src, &hold);
        if (!path) return NULL;
        Py_BEGIN_ALLOW_THREADS rc = tacozip_read_header_ex(path, &m, &err);
        Py_END_ALLOW_THREADS
        Py_DECREF(hold);
    } else {
        tacozip_source *s = NULL;
        rc = any_source(src, remote, name, &s, &err);
        if (rc == PY_EXC) return NULL;
        if (rc == 0) {
            Py_BEGIN_ALLOW_THREADS rc = tacozip_read_header_source(s, &m, &err);
            tacozip_source_close(s);
            Py_END_ALLOW_THREADS
        }
    }
    return rc ? raise_code(rc, err.message) : entries_list(&m);
}

static size_t *indices_arg(PyObject *seq, Py_ssize_t *n_out); /* below, with the archive's methods */

/* decode_span(buffer, base=0, flags=0) -> ([(name, header_pos, data_pos,
 * size, crc32, flags, dos_datetime)], end): the members of a fetched span
 * (tacozip_span_next); positions are into the buffer, so that the caller
 * slices its own memoryview (zero-copy).  "end" < len(buffer) only with
 * TACOZIP_SPAN_PARTIAL (where the cut member starts). */
static PyObject *py_decode_span(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"buffer", "base", "flags", NULL};
    PyObject *obj;
    unsigned long long base = 0;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O&I", kwlist, &obj, conv_offset, &base, &flags)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *list = PyList_New(0);
    if (!list) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *b = view.buf;
    size_t len = (size_t)view.len, pos = 0;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_span_member m = TACOZIP_SPAN_MEMBER_INIT;
    int rc;
    for (;;) {
        /* CRC-32 of large members: without the GIL (the buffer is held) */
        Py_BEGIN_ALLOW_THREADS rc = tacozip_span_next(b, len, (uint64_t)base, &pos, flags, &m, &err);
        Py_END_ALLOW_THREADS
        if (rc != 1) break;
        PyObject *name = PyUnicode_DecodeUTF8(m.name, (Py_ssize_t)m.name_len, "surrogateescape");
        PyObject *t = name ? Py_BuildValue("(NnnKkHk)", name, (Py_ssize_t)(m.header_offset - base),
                                           (Py_ssize_t)(m.data_offset - base), (unsigned long long)m.size,
                                           (unsigned long)m.crc32, m.flags, (unsigned long)m.dos_datetime)
                          : NULL;
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(list);
            PyBuffer_Release(&view);
            return NULL;
        }
        Py_DECREF(t);
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        Py_DECREF(list);
        return raise_code(rc, err.message);
    }
    return Py_BuildValue("(Nn)", list, (Py_ssize_t)pos);
}

/* fetch_entries(source, remote, name, indices, max_gap) -> (entries,
 * [bytes of each chosen entry], (requests, bytes) or None): the header
 * (one 157-byte read), then the ranges of header entries "indices" (None:
 * all) through tacozip_source_read_ranges (coalesced), on a source that is
 * never opened as an archive. */
static PyObject *py_fetch_entries(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *src, *remote, *name, *sel;
    long long gap;
    if (!PyArg_ParseTuple(args, "OOOOL", &src, &remote, &name, &sel, &gap)) return NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_source *s = NULL;
    int rc = any_source(src, remote, name, &s, &err);
    if (rc == PY_EXC) return NULL;
    if (rc) return raise_code(rc, err.message);
    taco_meta_array_t m;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_header_source(s, &m, &err);
    Py_END_ALLOW_THREADS
    PyObject *entries = NULL, *datas = NULL, *stats = NULL;
    size_t *idx = NULL;
    tacozip_range *rg = NULL;
    Py_ssize_t n = 0;
    if (rc) {
        raise_code(rc, err.message);
        goto cleanup;
    }
    if (sel == Py_None) {
        n = m.count;
        if (!(idx = PyMem_Calloc((size_t)n + 1, sizeof *idx))) {
            PyErr_NoMemory();
            goto cleanup;
        }
        for (Py_ssize_t i = 0; i < n; i++) idx[i] = (size_t)i;
    } else if (!(idx = indices_arg(sel, &n))) {
        goto cleanup;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (idx[i] >= m.count) {
            PyErr_Format(PyExc_IndexError, "header entry %zu out of range: the header has %u entries", idx[i],
                         (unsigned)m.count);
            goto cleanup;
        }
    if (!(entries = entries_list(&m)) || !(datas = PyList_New(n))) goto cleanup;
    if (!(rg = PyMem_Calloc((size_t)n + 1, sizeof *rg))) {
        PyErr_NoMemory();
        goto cleanup;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const taco_meta_entry_t *e = &m.entries[idx[i]];
        if (e->length > (uint64_t)PY_SSIZE_T_MAX) {
            PyErr_Format(PyExc_OverflowError, "header entry %zu is %llu bytes long", idx[i],
                         (unsigned long long)e->length);
            goto cleanup;
        }
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)e->length);
        if (!b) goto cleanup;
        PyList_SetItem(datas, i, b); /* steals */
        rg[i].offset = e->offset, rg[i].length = e->length, rg[i].buf = PyBytes_AsString(b);
    }
    /* the bytes objects are not shared yet: filled without the GIL */
    Py_BEGIN_ALLOW_THREADS rc = tacozip_source_read_ranges(s, rg, (size_t)n, gap < 0 ? TACOZIP_DEFAULT_GAP : (uint64_t)gap,
                                                           &err);
    Py_END_ALLOW_THREADS
    if (rc) {
        raise_code(rc, err.message);
        goto cleanup;
    }
    uint64_t nreq = 0, nbytes = 0;
    if (tacozip_source_stats(s, &nreq, &nbytes) == TACOZ_OK) {
        if (!(stats = Py_BuildValue("(KK)", (unsigned long long)nreq, (unsigned long long)nbytes))) goto cleanup;
    } else {
        stats = Py_NewRef(Py_None);
    }
cleanup:;
    PyObject *result = NULL;
    if (stats) result = Py_BuildValue("(OOO)", entries, datas, stats);
    Py_XDECREF(entries), Py_XDECREF(datas), Py_XDECREF(stats);
    PyMem_Free(idx);
    PyMem_Free(rg);
    Py_BEGIN_ALLOW_THREADS tacozip_source_close(s); /* a file object's close takes the GIL */
    Py_END_ALLOW_THREADS
    return result;
}

static PyObject *py_update_header(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *p, *e, *hold = NULL;
    if (!PyArg_ParseTuple(args, "OO", &p, &e)) return NULL;
    taco_meta_array_t m;
    if (entries_arg(e, &m)) return NULL;
    const char *path = path_arg(p, &hold);
    if (!path) return NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_update_header_ex(path, &m, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(hold);
    if (rc) return raise_code(rc, err.message);
    Py_RETURN_NONE;
}

static PyObject *py_recover(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *p, *hold = NULL;
    if (!PyArg_ParseTuple(args, "O", &p)) return NULL;
    const char *path = path_arg(p, &hold);
    if (!path) return NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc, what = TACOZIP_RECOVERED_NOTHING;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_recover(path, &what, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(hold);
    if (rc) return raise_code(rc, err.message);
    return PyLong_FromLong(what);
}

/* ---- create / append ---------------------------------------------------- */

static PyObject *write_common(PyObject *args, PyObject *kw, int append) {
    static char *kwlist[] = {"zip_path", "src_files", "arc_files", "entries", "alignment", "fsync", "mtime",
                             "progress", "index", NULL};
    PyObject *p, *srcs, *arcs = Py_None, *entries = Py_None, *progress = Py_None, *hold = NULL, *align = NULL;
    unsigned int alignment = 0;
    int do_fsync = 1, index = 0;
    long long mtime = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOpLOp", kwlist, &p, &srcs, &arcs, &entries, &align,
                                     &do_fsync, &mtime, &progress, &index))
        return NULL;
    if (align) { /* not "I": it wraps 2**40 to 0 silently */
        unsigned long long a = 0;
        if (u64_value(align, &a, "alignment")) {
            if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                a = (unsigned long long)-1;
            } else {
                return NULL;
            }
        }
        if (a > 0xFFFFFFFFull)
            return PyErr_Format(PyExc_OverflowError, "alignment %R is out of range (0, or a power of two <= 32768)",
                                align);
        alignment = (unsigned int)a;
    }
    taco_meta_array_t m = {.count = 1};
    if (entries != Py_None && entries_arg(entries, &m)) return NULL;
    str_array sa, aa = {0};
    if (str_array_from(srcs, &sa, 1)) return NULL;
    if (arcs != Py_None && str_array_from(arcs, &aa, 0)) {
        str_array_free(&sa);
        return NULL;
    }
    if (arcs != Py_None && aa.n != sa.n) {
        PyErr_Format(PyExc_ValueError, "Archive names count (%zd) must match source files count (%zd)", aa.n, sa.n);
        str_array_free(&sa);
        str_array_free(&aa);
        return NULL;
    }
    const char *path = path_arg(p, &hold);
    if (!path) {
        str_array_free(&sa);
        str_array_free(&aa);
        return NULL;
    }
    py_progress pp = {progress, 0};
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.alignment = alignment, o.no_fsync = !do_fsync, o.mtime = mtime, o.index = index;
    if (progress != Py_None) o.progress = progress_trampoline, o.progress_user = &pp;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (append)
        rc = tacozip_append_ex(path, sa.v, arcs == Py_None ? NULL : aa.v, (size_t)sa.n, &o, &err);
    else
        rc = tacozip_create_ex(path, sa.v, arcs == Py_None ? NULL : aa.v, (size_t)sa.n, &m, &o, &err);
    Py_END_ALLOW_THREADS
    str_array_free(&sa);
    str_array_free(&aa);
    Py_DECREF(hold);
    if (pp.failed) return NULL; /* the callback's own exception */
    if (rc) return raise_code(rc, err.message);
    Py_RETURN_NONE;
}

static PyObject *py_create(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    return write_common(args, kw, 0);
}
static PyObject *py_append(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    return write_common(args, kw, 1);
}

/* ---- header entries planned by name, plan, create_planned ---------------- */

/* The header entries of tacozip_plan / tacozip_create_planned /
 * tacozip_writer_set_entries, from a sequence whose items are either an
 * (offset, length) pair or a tuple naming what the entry covers (built by
 * tacozip/writer.py from tacozip.data() / span() / directory()):
 *   ("data", name) ("prefix", prefix) ("members", [names]) ("directory",)
 * The strings are kept alive by the holders until plan_free(). */
typedef struct {
    tacozip_entry_plan e[TACO_HEADER_MAX_ENTRIES];
    size_t n;
    PyObject *hold[TACO_HEADER_MAX_ENTRIES];
    str_array names[TACO_HEADER_MAX_ENTRIES];
} plan_arg;

static void plan_free(plan_arg *p) {
    for (int i = 0; i < TACO_HEADER_MAX_ENTRIES; i++) {
        Py_CLEAR(p->hold[i]);
        str_array_free(&p->names[i]);
    }
    p->n = 0;
}

/* A member name or prefix (str without NUL) -> UTF-8 kept in *holder. */
static const char *name_arg(PyObject *o, PyObject **holder, const char *what) {
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %R", what, o);
        return NULL;
    }
    PyObject *b = PyUnicode_AsUTF8String(o);
    if (!b) return NULL;
    const char *s = PyBytes_AsString(b);
    if (!s || (Py_ssize_t)strlen(s) != PyBytes_Size(b)) {
        Py_DECREF(b);
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%s %R contains a NUL character", what, o);
        return NULL;
    }
    *holder = b;
    return s;
}

/* 0, or -1 with an exception.  "seq" None: no entries (n = 0). */
static int plan_from(PyObject *seq, plan_arg *p) {
    memset(p, 0, sizeof *p);
    if (seq == Py_None) return 0;
    Py_ssize_t n;
    PyObject *t = entries_tuple(seq, "entries must be a sequence of (offset, length) pairs or planned entries", &n);
    if (!t) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GetItem(t, i);
        tacozip_entry_plan *e = &p->e[i];
        e->struct_size = sizeof *e;
        PyObject *it = PyTuple_Check(item) ? Py_NewRef(item) : NULL;
        PyObject *kind = it && PyTuple_Size(it) >= 1 ? PyTuple_GetItem(it, 0) : NULL;
        if (!kind || !PyUnicode_Check(kind)) { /* an (offset, length) pair */
            Py_XDECREF(it);
            unsigned long long off, len;
            if (pair_arg(item, &off, &len, "each entry must be an (offset, length) pair or a planned entry",
                         "entry", i))
                goto fail;
            e->kind = TACOZIP_ENTRY_RANGE, e->offset = off, e->length = len;
            continue;
        }
        const char *k = PyUnicode_AsUTF8AndSize(kind, NULL);
        Py_ssize_t sz = PyTuple_Size(it);
        int bad = 0;
        if (!k) {
            bad = -1;
        } else if (!strcmp(k, "data") || !strcmp(k, "prefix")) {
            if (sz != 2) bad = 1;
            else {
                e->kind = k[0] == 'd' ? TACOZIP_ENTRY_DATA : TACOZIP_ENTRY_PREFIX;
                e->name = name_arg(PyTuple_GetItem(it, 1), &p->hold[i], k[0] == 'd' ? "a member name" : "a prefix");
                if (!e->name) bad = -1;
            }
        } else if (!strcmp(k, "members")) {
            if (sz != 2) bad = 1;
            else if (str_array_from(PyTuple_GetItem(it, 1), &p->names[i], 0)) bad = -1;
            else {
                e->kind = TACOZIP_ENTRY_MEMBERS;
                e->names = p->names[i].v;
                e->n_names = (size_t)p->names[i].n;
            }
        } else if (!strcmp(k, "directory")) {
            if (sz != 1) bad = 1;
            else e->kind = TACOZIP_ENTRY_DIRECTORY;
        } else {
            bad = 1;
        }
        if (bad > 0) PyErr_Format(PyExc_TypeError, "entry %zd: unknown planned entry %R", i, item);
        Py_DECREF(it);
        if (bad) goto fail;
    }
    Py_DECREF(t);
    p->n = (size_t)n;
    return 0;
fail:
    Py_DECREF(t);
    plan_free(p);
    return -1;
}

/* alignment as write_common takes it: an int, refused (OverflowError) past 2**32-1. */
static int alignment_arg(PyObject *align, unsigned int *out) {
    *out = 0;
    if (!align || align == Py_None) return 0;
    unsigned long long a = 0;
    if (u64_value(align, &a, "alignment")) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        a = (unsigned long long)-1;
    }
    if (a > 0xFFFFFFFFull) {
        PyErr_Format(PyExc_OverflowError, "alignment %R is out of range (0, or a power of two <= 32768)", align);
        return -1;
    }
    *out = (unsigned int)a;
    return 0;
}

static PyObject *u64_list(const uint64_t *v, size_t n) {
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLongLong((unsigned long long)v[i]);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SetItem(l, (Py_ssize_t)i, x);
    }
    return l;
}

/* plan(names, sizes, entries=None, alignment=0, index=False) ->
 * (header_offsets, data_offsets, directory_offset, entries): tacozip_plan,
 * the layout create_planned (and a writer given the same members) writes.
 * entries None: one (0, 0), as create writes. */
static PyObject *py_plan(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"names", "sizes", "entries", "alignment", "index", NULL};
    PyObject *names, *sizes, *entries = Py_None, *align = NULL;
    int index = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOp", kwlist, &names, &sizes, &entries, &align, &index))
        return NULL;
    unsigned int alignment;
    if (alignment_arg(align, &alignment)) return NULL;
    str_array na;
    if (str_array_from(names, &na, 0)) return NULL;
    PyObject *st = as_tuple(sizes, "sizes must be a sequence of int");
    uint64_t *sz = NULL, *ho = NULL, *dof = NULL;
    PyObject *result = NULL;
    plan_arg pa;
    int have_plan = 0;
    if (!st) goto done;
    if (PyTuple_Size(st) != na.n) {
        PyErr_Format(PyExc_ValueError, "sizes count (%zd) must match names count (%zd)", PyTuple_Size(st), na.n);
        goto done;
    }
    sz = PyMem_Calloc((size_t)na.n + 1, sizeof *sz);
    ho = PyMem_Calloc((size_t)na.n + 1, sizeof *ho);
    dof = PyMem_Calloc((size_t)na.n + 1, sizeof *dof);
    if (!sz || !ho || !dof) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < na.n; i++) {
        unsigned long long v;
        char what[48];
        snprintf(what, sizeof what, "size %zd", i);
        if (u64_value(PyTuple_GetItem(st, i), &v, what)) goto done;
        sz[i] = v;
    }
    if (plan_from(entries, &pa)) goto done;
    have_plan = 1;
    tacozip_entry_plan dflt = TACOZIP_ENTRY_PLAN_INIT;
    const tacozip_entry_plan *ep = entries == Py_None ? &dflt : pa.e;
    size_t ne = entries == Py_None ? 1 : pa.n;
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.alignment = alignment, o.index = index;
    taco_meta_array_t m;
    memset(&m, 0, sizeof m);
    uint64_t dir_off = 0;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_plan(na.v, sz, (size_t)na.n, ep, ne, &o, ho, dof, &dir_off, &m, &err);
    Py_END_ALLOW_THREADS
    if (rc) {
        raise_code(rc, err.message);
        goto done;
    }
    m.count = (uint8_t)ne;
    result = Py_BuildValue("(NNKN)", u64_list(ho, (size_t)na.n), u64_list(dof, (size_t)na.n),
                           (unsigned long long)dir_off, entries_list(&m));
done:
    if (have_plan) plan_free(&pa);
    Py_XDECREF(st);
    PyMem_Free(sz), PyMem_Free(ho), PyMem_Free(dof);
    str_array_free(&na);
    return result;
}

/* create_planned(zip_path, src_files, arc_files, entries, alignment=0,
 * fsync=True, mtime=0, progress=None, index=False, remote=None):
 * tacozip_create_planned (entries planned by name, s3:// output). */
static PyObject *py_create_planned(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"zip_path", "src_files", "arc_files", "entries", "alignment", "fsync", "mtime",
                             "progress", "index", "remote", NULL};
    PyObject *p, *srcs, *arcs = Py_None, *entries = Py_None, *progress = Py_None, *align = NULL, *remote = Py_None;
    int do_fsync = 1, index = 0;
    long long mtime = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOpLOpO", kwlist, &p, &srcs, &arcs, &entries, &align,
                                     &do_fsync, &mtime, &progress, &index, &remote))
        return NULL;
    unsigned int alignment;
    if (alignment_arg(align, &alignment)) return NULL;
    plan_arg pa;
    if (plan_from(entries, &pa)) return NULL;
    str_array sa = {0}, aa = {0};
    PyObject *hold = NULL, *result = NULL;
    remote_arg ra;
    const tacozip_remote_options *ro = NULL;
    int have_remote = 0;
    if (str_array_from(srcs, &sa, 1)) goto done;
    if (arcs != Py_None && str_array_from(arcs, &aa, 0)) goto done;
    if (arcs != Py_None && aa.n != sa.n) {
        PyErr_Format(PyExc_ValueError, "Archive names count (%zd) must match source files count (%zd)", aa.n, sa.n);
        goto done;
    }
    const char *path = path_arg(p, &hold);
    if (!path) goto done;
    if (remote_from(remote, &ra, &ro)) goto done;
    have_remote = 1;
    py_progress pp = {progress, 0};
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.alignment = alignment, o.no_fsync = !do_fsync, o.mtime = mtime, o.index = index;
    if (progress != Py_None) o.progress = progress_trampoline, o.progress_user = &pp;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_entry_plan dflt = TACOZIP_ENTRY_PLAN_INIT;
    const tacozip_entry_plan *ep = entries == Py_None ? &dflt : pa.e;
    size_t ne = entries == Py_None ? 1 : pa.n;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_create_planned(path, sa.v, arcs == Py_None ? NULL : aa.v, (size_t)sa.n, ep,
                                                       ne, &o, ro, &err);
    Py_END_ALLOW_THREADS
    if (pp.failed) goto done; /* the callback's own exception */
    if (rc) {
        raise_code(rc, err.message);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    if (have_remote) remote_free(&ra);
    Py_XDECREF(hold);
    str_array_free(&sa);
    str_array_free(&aa);
    plan_free(&pa);
    return result;
}

/* ---- the streaming writer ---------------------------------------------------- */

/* A Python exception raised in a callback the library makes (progress, a
 * stream's read) is kept here, the callback fails (cancel / a negative
 * code), and the method raises it again once the library has returned: it
 * never crosses C frames, and no Python code runs with it pending. */
typedef struct {
    PyObject *type, *value, *tb;
} kept_exc;

static void keep_exception(kept_exc *k) {
    if (k->type) { /* the first one wins; a later one is dropped */
        PyErr_Clear();
        return;
    }
    PyErr_Fetch(&k->type, &k->value, &k->tb);
    PyErr_NormalizeException(&k->type, &k->value, &k->tb);
    if (k->tb && k->value) PyException_SetTraceback(k->value, k->tb);
}

/* Re-raise a kept exception: 1 if there was one. */
static int restore_exception(kept_exc *k) {
    if (!k->type) return 0;
    PyErr_Restore(k->type, k->value, k->tb);
    k->type = k->value = k->tb = NULL;
    return 1;
}

static void drop_exception(kept_exc *k) {
    Py_CLEAR(k->type);
    Py_CLEAR(k->value);
    Py_CLEAR(k->tb);
}

typedef struct {
    PyObject_HEAD
    tacozip_writer *w;
    int busy;          /* a call is running (the GIL may be released) */
    int failed;        /* an add or close failed: the writer is gone */
    PyObject *progress; /* None or the callable */
    kept_exc exc;
} WriterObject;

static int writer_progress(void *user, uint64_t done, uint64_t total, uint64_t files, uint64_t nfiles) {
    WriterObject *self = user;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = 0;
    if (self->exc.type) {
        stop = 1;
    } else if (self->progress && self->progress != Py_None) {
        PyObject *r = PyObject_CallFunction(self->progress, "KKKK", (unsigned long long)done,
                                            (unsigned long long)total, (unsigned long long)files,
                                            (unsigned long long)nfiles);
        if (!r) {
            keep_exception(&self->exc);
            stop = 1;
        } else {
            stop = r != Py_None && PyObject_IsTrue(r) == 1;
            if (PyErr_Occurred()) keep_exception(&self->exc), stop = 1;
            Py_DECREF(r);
        }
    }
    PyGILState_Release(g);
    return stop;
}

/* add_stream's reader: a Python object with readinto(b) or read(n). */
typedef struct {
    WriterObject *writer;
    PyObject *reader;
    int use_readinto;
} stream_ctx;

static int stream_read(void *user, void *buf, size_t cap, size_t *got, tacozip_error *err) {
    stream_ctx *s = user;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = TACOZ_OK;
    Py_ssize_t n = -1;
    *got = 0;
    if (s->writer->exc.type) { /* a progress callback failed: stop */
        rc = src_fail(err, TACOZ_ERR_CANCELLED, "a Python exception is pending");
        goto out;
    }
    if (cap > (size_t)PY_SSIZE_T_MAX) cap = (size_t)PY_SSIZE_T_MAX;
    if (s->use_readinto) {
        PyObject *mv = PyMemoryView_FromMemory(buf, (Py_ssize_t)cap, PyBUF_WRITE);
        if (!mv) goto pyfail;
        PyObject *r = PyObject_CallMethod(s->reader, "readinto", "O", mv);
        PyObject *et = NULL, *ev = NULL, *etb = NULL;
        PyErr_Fetch(&et, &ev, &etb);
        /* the view must not outlive this call */
        PyObject *rel = PyObject_CallMethod(mv, "release", NULL);
        Py_DECREF(mv);
        if (!r) {
            Py_XDECREF(rel);
            PyErr_Clear();
            PyErr_Restore(et, ev, etb);
            goto pyfail;
        }
        if (!rel) {
            Py_DECREF(r);
            goto pyfail; /* BufferError: readinto() kept the buffer */
        }
        Py_DECREF(rel);
        if (r == Py_None) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_BlockingIOError, "readinto() returned None (a non-blocking file?)");
            goto pyfail;
        }
        n = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (n == -1 && PyErr_Occurred()) goto pyfail;
    } else {
        PyObject *r = PyObject_CallMethod(s->reader, "read", "n", (Py_ssize_t)cap);
        if (!r) goto pyfail;
        if (r == Py_None) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_BlockingIOError, "read() returned None (a non-blocking file?)");
            goto pyfail;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(r, &view, PyBUF_SIMPLE) != 0) {
            Py_DECREF(r);
            goto pyfail;
        }
        n = view.len;
        if ((size_t)n <= cap) memcpy(buf, view.buf, (size_t)n);
        PyBuffer_Release(&view);
        Py_DECREF(r);
    }
    if (n < 0 || (size_t)n > cap) {
        PyErr_Format(PyExc_ValueError, "%s returned %zd bytes when at most %zu were asked for",
                     s->use_readinto ? "readinto()" : "read()", n, cap);
        goto pyfail;
    }
    *got = (size_t)n;
    goto out;
pyfail:
    keep_exception(&s->writer->exc);
    rc = src_fail(err, TACOZ_ERR_IO, "the stream's %s raised an exception", s->use_readinto ? "readinto()" : "read()");
out:
    PyGILState_Release(g);
    return rc;
}

static PyObject *writer_closed_error(WriterObject *self) {
    if (self->failed)
        PyErr_SetString(PyExc_ValueError, "the writer has failed (an add or close raised): nothing was written");
    else
        PyErr_SetString(PyExc_ValueError, "I/O operation on a closed writer");
    return NULL;
}

/* Take the writer for a call (NULL with an exception if closed or in use). */
static tacozip_writer *writer_take(WriterObject *self) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "writer in use: another call (in this or another thread, or a "
                                            "callback of this writer) is running");
        return NULL;
    }
    if (!self->w) return writer_closed_error(self), NULL;
    self->busy = 1;
    return self->w;
}

/* After a library call on the writer: rc < 0 means it has failed (an add)
 * or is freed (close): free it and raise the kept Python exception, else
 * the library's error. */
static PyObject *writer_done(WriterObject *self, int rc, const tacozip_error *err, int freed) {
    self->busy = 0;
    if (rc == TACOZ_OK && !self->exc.type) Py_RETURN_NONE;
    if (!freed && self->w) {
        tacozip_writer *w = self->w;
        self->w = NULL;
        Py_BEGIN_ALLOW_THREADS tacozip_writer_abort(w);
        Py_END_ALLOW_THREADS
    }
    self->w = NULL;
    self->failed = 1;
    if (restore_exception(&self->exc)) return NULL;
    return raise_code(rc, err->message);
}

/* Writer(path_or_url, alignment=0, fsync=True, mtime=0, progress=None,
 * spool_limit=0, spool_dir=None, part_size=0, upload_parallel=0,
 * expected_size=0, remote=None): tacozip_writer_open. */
static int writer_init(WriterObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "alignment", "fsync", "mtime", "progress", "spool_limit", "spool_dir",
                             "part_size", "upload_parallel", "expected_size", "remote", NULL};
    PyObject *p, *align = NULL, *progress = Py_None, *spool_dir = Py_None, *remote = Py_None;
    int do_fsync = 1, upload_parallel = 0;
    long long mtime = 0;
    unsigned long long spool_limit = 0, part_size = 0, expected_size = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OpLOO&OO&iO&O", kwlist, &p, &align, &do_fsync, &mtime, &progress,
                                     conv_length, &spool_limit, &spool_dir, conv_length, &part_size,
                                     &upload_parallel, conv_length, &expected_size, &remote))
        return -1;
    if (self->busy || self->w) {
        PyErr_SetString(PyExc_RuntimeError, "Writer.__init__ called on a writer that is open");
        return -1;
    }
    if (progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be callable or None");
        return -1;
    }
    unsigned int alignment;
    if (alignment_arg(align, &alignment)) return -1;
    PyObject *hold = NULL, *dhold = NULL;
    const char *path = path_arg(p, &hold);
    if (!path) return -1;
    const char *dir = NULL;
    if (spool_dir != Py_None && !(dir = path_arg(spool_dir, &dhold))) {
        Py_DECREF(hold);
        return -1;
    }
    remote_arg ra;
    const tacozip_remote_options *ro = NULL;
    if (remote_from(remote, &ra, &ro)) {
        Py_DECREF(hold);
        Py_XDECREF(dhold);
        return -1;
    }
    PyObject *old = self->progress;
    self->progress = Py_NewRef(progress);
    Py_XDECREF(old);
    self->failed = 0;
    tacozip_write_options o = TACOZIP_WRITE_OPTIONS_INIT;
    o.alignment = alignment, o.no_fsync = !do_fsync, o.mtime = mtime;
    o.spool_limit = spool_limit, o.spool_dir = dir, o.part_size = part_size;
    o.upload_parallel = upload_parallel, o.expected_size = expected_size;
    if (progress != Py_None) o.progress = writer_progress, o.progress_user = self;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_writer *w = NULL;
    int rc;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_writer_open(path, &o, ro, &w, &err);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    remote_free(&ra);
    Py_DECREF(hold);
    Py_XDECREF(dhold);
    if (rc) {
        raise_code(rc, err.message);
        return -1;
    }
    self->w = w;
    return 0;
}

/* The progress callable (and a kept exception) may refer back to the
 * writer: the type takes part in garbage collection, so that such a cycle
 * is collected, and its writer aborted, rather than kept forever. */
static int writer_traverse(WriterObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->progress);
    Py_VISIT(self->exc.type);
    Py_VISIT(self->exc.value);
    Py_VISIT(self->exc.tb);
    return 0;
}

static int writer_clear(WriterObject *self) {
    Py_CLEAR(self->progress);
    drop_exception(&self->exc);
    return 0;
}

static void writer_dealloc(WriterObject *self) {
    PyObject_GC_UnTrack((PyObject *)self);
    if (self->w) { /* never closed: nothing is left */
        tacozip_writer *w = self->w;
        self->w = NULL;
        Py_BEGIN_ALLOW_THREADS tacozip_writer_abort(w);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self->progress);
    drop_exception(&self->exc);
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* add_file(src_path, name=None) */
static PyObject *writer_add_file(WriterObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"src_path", "name", NULL};
    PyObject *src, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &src, &name)) return NULL;
    PyObject *hold = NULL, *nhold = NULL;
    const char *path = path_arg(src, &hold);
    if (!path) return NULL;
    const char *nm = NULL;
    if (name != Py_None && !(nm = name_arg(name, &nhold, "name"))) {
        Py_DECREF(hold);
        return NULL;
    }
    tacozip_writer *w = writer_take(self);
    PyObject *r = NULL;
    if (w) {
        tacozip_error err = TACOZIP_ERROR_INIT;
        int rc;
        Py_BEGIN_ALLOW_THREADS rc = tacozip_writer_add_file(w, path, nm, &err);
        Py_END_ALLOW_THREADS
        r = writer_done(self, rc, &err, 0);
    }
    Py_DECREF(hold);
    Py_XDECREF(nhold);
    return r;
}

/* add_buffer(name, data, mtime=0): any bytes-like object, not copied here. */
static PyObject *writer_add_buffer(WriterObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"name", "data", "mtime", NULL};
    PyObject *name, *data;
    long long mtime = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|L", kwlist, &name, &data, &mtime)) return NULL;
    PyObject *nhold = NULL;
    const char *nm = name_arg(name, &nhold, "name");
    if (!nm) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) != 0) {
        Py_DECREF(nhold);
        return NULL;
    }
    tacozip_writer *w = writer_take(self);
    PyObject *r = NULL;
    if (w) {
        tacozip_error err = TACOZIP_ERROR_INIT;
        int rc;
        /* the buffer stays exported (cannot be resized) while C reads it */
        Py_BEGIN_ALLOW_THREADS rc = tacozip_writer_add_buffer(w, nm, view.buf, (size_t)view.len, (int64_t)mtime, &err);
        Py_END_ALLOW_THREADS
        r = writer_done(self, rc, &err, 0);
    }
    PyBuffer_Release(&view);
    Py_DECREF(nhold);
    return r;
}

/* add_stream(name, reader, size=None, mtime=0): "reader" has readinto(b)
 * (preferred: the library's buffer is filled in place) or read(n). */
static PyObject *writer_add_stream(WriterObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"name", "reader", "size", "mtime", NULL};
    PyObject *name, *reader, *size = Py_None;
    long long mtime = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OL", kwlist, &name, &reader, &size, &mtime)) return NULL;
    uint64_t sz = TACOZIP_SIZE_UNKNOWN;
    if (size != Py_None) {
        unsigned long long v;
        if (u64_value(size, &v, "size")) return NULL;
        if (v == TACOZIP_SIZE_UNKNOWN)
            return PyErr_Format(PyExc_OverflowError, "size %R is out of range", size);
        sz = v;
    }
    int has_readinto = PyObject_HasAttrString(reader, "readinto");
    if (!has_readinto && !PyObject_HasAttrString(reader, "read")) {
        PyErr_SetString(PyExc_TypeError, "add_stream() needs an object with readinto() or read()");
        return NULL;
    }
    PyObject *nhold = NULL;
    const char *nm = name_arg(name, &nhold, "name");
    if (!nm) return NULL;
    tacozip_writer *w = writer_take(self);
    PyObject *r = NULL;
    if (w) {
        stream_ctx ctx = {self, reader, has_readinto};
        Py_INCREF(reader);
        tacozip_error err = TACOZIP_ERROR_INIT;
        int rc;
        Py_BEGIN_ALLOW_THREADS rc = tacozip_writer_add_stream(w, nm, sz, stream_read, &ctx, (int64_t)mtime, &err);
        Py_END_ALLOW_THREADS
        Py_DECREF(reader);
        r = writer_done(self, rc, &err, 0);
    }
    Py_DECREF(nhold);
    return r;
}

/* set_entries(entries): pairs and planned entries (see plan_from). */
static PyObject *writer_set_entries(WriterObject *self, PyObject *arg) {
    plan_arg pa;
    if (plan_from(arg, &pa)) return NULL;
    tacozip_writer *w = writer_take(self);
    PyObject *r = NULL;
    if (w) {
        tacozip_error err = TACOZIP_ERROR_INIT;
        int rc = tacozip_writer_set_entries(w, pa.e, pa.n, &err); /* copies; no I/O */
        self->busy = 0;
        if (rc) raise_code(rc, err.message); /* the writer stays usable: only the form was wrong */
        else r = Py_NewRef(Py_None);
    }
    plan_free(&pa);
    return r;
}

/* close() -> the header entries written */
static PyObject *writer_close(WriterObject *self, PyObject *noargs) {
    (void)noargs;
    tacozip_writer *w = writer_take(self);
    if (!w) return NULL;
    self->w = NULL; /* freed by the call in every case */
    taco_meta_array_t m;
    memset(&m, 0, sizeof m);
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_writer_close(w, &m, &err);
    Py_END_ALLOW_THREADS
    PyObject *r = writer_done(self, rc, &err, 1);
    if (!r) return NULL;
    Py_DECREF(r);
    return entries_list(&m);
}

/* abort(): drop everything (no file, no object, no pending upload). */
static PyObject *writer_abort(WriterObject *self, PyObject *noargs) {
    (void)noargs;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "writer in use: abort() while another call of it is running");
        return NULL;
    }
    if (self->w) {
        tacozip_writer *w = self->w;
        self->w = NULL;
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS tacozip_writer_abort(w);
        Py_END_ALLOW_THREADS
        self->busy = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *writer_get_closed(WriterObject *self, void *c) {
    (void)c;
    return PyBool_FromLong(self->w == NULL);
}

static PyObject *writer_get_failed(WriterObject *self, void *c) {
    (void)c;
    return PyBool_FromLong(self->failed);
}

static PyMethodDef writer_methods[] = {
    {"add_file", (PyCFunction)(void (*)(void))writer_add_file, METH_VARARGS | METH_KEYWORDS,
     "add_file(src_path, name=None): a regular file (name: its base name)"},
    {"add_buffer", (PyCFunction)(void (*)(void))writer_add_buffer, METH_VARARGS | METH_KEYWORDS,
     "add_buffer(name, data, mtime=0): a bytes-like object"},
    {"add_stream", (PyCFunction)(void (*)(void))writer_add_stream, METH_VARARGS | METH_KEYWORDS,
     "add_stream(name, reader, size=None, mtime=0): bytes from reader.readinto(b) or reader.read(n) until 0"},
    {"set_entries", (PyCFunction)writer_set_entries, METH_O, "set_entries(entries): pairs or planned entries"},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "close() -> header entries written"},
    {"abort", (PyCFunction)writer_abort, METH_NOARGS, "abort(): nothing is left"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef writer_getset[] = {{"closed", (getter)writer_get_closed, NULL, "closed, aborted or failed?", NULL},
                                      {"failed", (getter)writer_get_failed, NULL, "did an add or close fail?", NULL},
                                      {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot writer_slots[] = {{Py_tp_init, (void *)writer_init},
                                     {Py_tp_dealloc, (void *)writer_dealloc},
                                     {Py_tp_traverse, (void *)writer_traverse},
                                     {Py_tp_clear, (void *)writer_clear},
                                     {Py_tp_methods, writer_methods},
                                     {Py_tp_getset, writer_getset},
                                     {Py_tp_new, (void *)PyType_GenericNew},
                                     {Py_tp_doc, (void *)"Low-level streaming writer (use tacozip.Writer)."},
                                     {0, NULL}};

static PyType_Spec writer_spec = {"tacozip._tacozip.Writer", sizeof(WriterObject), 0,
                                  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, writer_slots};

/* ---- validate / detect ---------------------------------------------------- */

/* validate(source, level=1, remote=None, name=None) -> (code, message);
 * never raises for what the archive or its source does. */
static PyObject *py_validate(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"source", "level", "remote", "name", NULL};
    PyObject *src, *remote = Py_None, *name = Py_None;
    int level = TACOZIP_VALIDATE_NORMAL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|iOO", kwlist, &src, &level, &remote, &name)) return NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    if (is_path(src) && remote == Py_None) {
        PyObject *hold = NULL;
        const char *path = path_arg(src, &hold);
        if (!path) return NULL;
        Py_BEGIN_ALLOW_THREADS rc = tacozip_validate_ex(path, level, &err);
        Py_END_ALLOW_THREADS
        Py_DECREF(hold);
    } else {
        tacozip_source *s = NULL;
        rc = any_source(src, remote, name, &s, &err);
        if (rc == PY_EXC) return NULL;
        if (rc == 0) {
            Py_BEGIN_ALLOW_THREADS rc = tacozip_validate_source(s, level, &err);
            tacozip_source_close(s);
            Py_END_ALLOW_THREADS
        }
    }
    return Py_BuildValue("(iN)", rc, message_str(rc ? err.message : ""));
}

static PyObject *py_detect_format(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *hold = NULL;
    const char *path = path_arg(arg, &hold);
    if (!path) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_detect_format(path);
    Py_END_ALLOW_THREADS
    Py_DECREF(hold);
    return PyLong_FromLong(rc);
}

static PyObject *py_strerror(PyObject *self, PyObject *arg) {
    (void)self;
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(tacozip_strerror((int)code));
}

/* codes() -> [(code, name, message), ...]: every code the library names
 * (0 down to -99), name without "TACOZ_", message from tacozip_strerror. */
static PyObject *py_codes(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    PyObject *l = PyList_New(0);
    if (!l) return NULL;
    for (int code = 0; code >= -99; code--) {
        const char *name = tacozip_error_name(code);
        if (!name) continue;
        PyObject *t = Py_BuildValue("(iss)", code, name, tacozip_strerror(code));
        if (!t || PyList_Append(l, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(t);
    }
    return l;
}

/* display_name(path) -> str: the path or URL without credentials and query */
static PyObject *py_display_name(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *hold = NULL;
    const char *path = path_arg(arg, &hold);
    if (!path) return NULL;
    size_t cap = strlen(path) + 1;
    char *out = PyMem_Malloc(cap);
    if (!out) {
        Py_DECREF(hold);
        return PyErr_NoMemory();
    }
    tacozip_display_name(path, out, cap);
    Py_DECREF(hold);
    PyObject *r = PyUnicode_DecodeFSDefault(out);
    PyMem_Free(out);
    return r;
}

static PyObject *py_is_url(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *hold = NULL;
    const char *path = path_arg(arg, &hold);
    if (!path) return NULL;
    int u = tacozip_is_url(path);
    Py_DECREF(hold);
    return PyBool_FromLong(u);
}

/* crc32(data, value=0) -> int: the CRC-32 of a bytes-like object, as
 * zlib.crc32 (tacozip_crc32(): libdeflate's, several times faster, where
 * the library is built with it); the GIL is released for 64 KiB or more
 * (the buffer stays exported, so it cannot be resized meanwhile). */
static PyObject *py_crc32(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer b;
    PyObject *start = NULL;
    if (!PyArg_ParseTuple(args, "y*|O!", &b, &PyLong_Type, &start)) return NULL;
    unsigned long v = start ? PyLong_AsUnsignedLong(start) : 0;
    if (start && ((v == (unsigned long)-1 && PyErr_Occurred()) || v > 0xffffffffUL)) {
        PyBuffer_Release(&b);
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_OverflowError, "crc32: the starting value must lie in [0, 2**32)");
        }
        return NULL;
    }
    uint32_t c;
    if (b.len >= 65536) {
        Py_BEGIN_ALLOW_THREADS c = tacozip_crc32((uint32_t)v, b.buf, (size_t)b.len);
        Py_END_ALLOW_THREADS
    } else {
        c = tacozip_crc32((uint32_t)v, b.buf, (size_t)b.len);
    }
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(c);
}

/* ---- Archive object ------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    tacozip_archive *ar;
    Py_ssize_t busy;   /* calls running without the GIL */
    int closing;       /* close() requested while busy */
} ArchiveObject;

/* The busy protocol: every method that uses self->ar across a point where
 * other code may run (a call without the GIL, a source callback, user code
 * converting an argument, a garbage collection during an allocation)
 * holds it with acquire()/release().  close() while busy only marks the
 * archive closing (the last release() frees it); __init__ while busy is
 * refused, so an archive is never freed or swapped under a call using it. */
static int archive_in_use(void) {
    PyErr_SetString(PyExc_RuntimeError,
                    "archive in use: Archive.__init__ called again while another call (in this or another thread) "
                    "is using the archive");
    return -1;
}

/* Archive(source, verify_local=False, index_first=False, remote=None,
 * name=None, preload=None, no_crc=False): "source" is a path or URL
 * (remote: a dict of tacozip_remote_options fields, see
 * tacozip/_remote.py) or a binary file object ("name" is then its display
 * name in messages); no_crc: TACOZIP_OPEN_NO_CRC. */
static int archive_init(ArchiveObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"source", "verify_local", "index_first", "remote", "name", "preload", "no_crc", NULL};
    PyObject *p, *remote = Py_None, *name = Py_None, *preload = Py_None;
    int verify = 0, index_first = 0, no_crc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|ppOOOp", kwlist, &p, &verify, &index_first, &remote, &name,
                                     &preload, &no_crc))
        return -1;
    /* preload: (object size, bytes of its tail) for tacozip_source_preload_tail() */
    unsigned long long object_size = 0;
    Py_buffer tail = {0};
    if (preload != Py_None && !PyArg_ParseTuple(preload, "O&y*", conv_length, &object_size, &tail)) return -1;
    unsigned flags = (verify ? TACOZIP_OPEN_VERIFY_LOCAL : 0) | (index_first ? TACOZIP_OPEN_INDEX_FIRST : 0) |
                     (no_crc ? TACOZIP_OPEN_NO_CRC : 0);
    if (self->busy) { /* before the open too: no open whose result is refused */
        if (tail.buf) PyBuffer_Release(&tail);
        return archive_in_use();
    }
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_archive *ar = NULL;
    tacozip_source *src = NULL;
    int rc = any_source(p, remote, name, &src, &err);
    if (rc == PY_EXC) {
        if (tail.buf) PyBuffer_Release(&tail);
        return -1;
    }
    if (rc == 0 && tail.buf) {
        rc = tacozip_source_preload_tail(src, object_size, tail.buf, (size_t)tail.len, &err);
        if (rc) tacozip_source_close(src);
    }
    if (tail.buf) PyBuffer_Release(&tail);
    if (rc == 0) {
        Py_BEGIN_ALLOW_THREADS rc = tacozip_open_source(src, flags, &ar, &err);
        Py_END_ALLOW_THREADS
        tacozip_source_close(src); /* the archive holds its own reference */
    }
    if (rc) {
        raise_code(rc, err.message);
        return -1;
    }
    /* Checked again: the open ran without the GIL (and the source's callbacks
     * or __fspath__ ran user code), so a call may have begun meanwhile. */
    if (self->busy) {
        tacozip_close(ar);
        return archive_in_use();
    }
    if (self->ar) tacozip_close(self->ar);
    self->ar = ar;
    self->closing = 0;
    return 0;
}

static void archive_dealloc(ArchiveObject *self) {
    if (self->ar) tacozip_close(self->ar);
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* Take/release the archive for a call that drops the GIL. */
static tacozip_archive *acquire(ArchiveObject *self) {
    if (!self->ar || self->closing) {
        PyErr_SetString(PyExc_ValueError, "I/O operation on closed archive");
        return NULL;
    }
    self->busy++;
    return self->ar;
}
static void release(ArchiveObject *self) {
    if (--self->busy == 0 && self->closing && self->ar) {
        tacozip_close(self->ar);
        self->ar = NULL;
    }
}

static PyObject *archive_close(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    if (self->busy) self->closing = 1; /* the last running call frees it */
    else if (self->ar) {
        tacozip_close(self->ar);
        self->ar = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *archive_closed(ArchiveObject *self, void *c) {
    (void)c;
    return PyBool_FromLong(!self->ar || self->closing);
}

static PyObject *archive_count(ArchiveObject *self, void *c) {
    (void)c;
    if (!self->ar) return PyLong_FromLong(0);
    return PyLong_FromSize_t(tacozip_count(self->ar));
}

static PyObject *archive_size(ArchiveObject *self, void *c) {
    (void)c;
    if (!self->ar) return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(tacozip_archive_size(self->ar));
}

static PyObject *archive_format(ArchiveObject *self, void *c) {
    (void)c;
    return PyLong_FromLong(self->ar ? tacozip_archive_format(self->ar) : 0);
}

/* The ETag / version of the bytes, "" if unknown. */
static PyObject *archive_identity(ArchiveObject *self, void *c) {
    (void)c;
    if (!self->ar) return PyUnicode_FromString("");
    char buf[512];
    tacozip_source_identity(tacozip_archive_source(self->ar), buf, sizeof buf);
    return message_str(buf);
}

static PyObject *member_name(const tacozip_member *m) {
    return PyUnicode_DecodeUTF8(m->name, (Py_ssize_t)m->name_len, "surrogateescape");
}

static PyObject *member_tuple(const tacozip_member *m) {
    PyObject *name = member_name(m);
    if (!name) return NULL;
    return Py_BuildValue("(NKKkKKHHk)", name, (unsigned long long)m->data_offset, (unsigned long long)m->size,
                         (unsigned long)m->crc32, (unsigned long long)m->header_offset,
                         (unsigned long long)m->uncompressed_size, (unsigned short)m->method,
                         (unsigned short)m->flags, (unsigned long)m->dos_datetime);
}

/* One item per member, in directory order. */
/* (The allocations may run a garbage collection, and with it user code:
 * the archive is held, see acquire().) */
static PyObject *member_list(ArchiveObject *self, PyObject *(*item)(const tacozip_member *)) {
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    size_t n = tacozip_count(ar);
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, i, &m);
        PyObject *t = item(&m);
        if (!t) {
            Py_CLEAR(l);
            break;
        }
        PyList_SetItem(l, (Py_ssize_t)i, t);
    }
    release(self);
    return l;
}

/* All members as a list of tuples (name, offset, size, crc32,
 * header_offset, uncompressed_size, method, flags, dos_datetime). */
static PyObject *archive_members(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    return member_list(self, member_tuple);
}

/* All member names, in directory order (what a listing needs, without a
 * tuple per member). */
static PyObject *archive_names(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    return member_list(self, member_name);
}

/* directory_range() -> (offset, size) of the central directory. */
static PyObject *archive_directory_range(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    if (!self->ar || self->closing) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    uint64_t off = 0, size = 0;
    tacozip_directory_range(self->ar, &off, &size);
    return Py_BuildValue("(KK)", (unsigned long long)off, (unsigned long long)size);
}

/* member(index) -> the tuple members() gives for that one member. */
static PyObject *archive_member(ArchiveObject *self, PyObject *arg) {
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    PyObject *r = NULL;
    if (i == -1 && PyErr_Occurred())
        ;
    else if (i < 0 || (size_t)i >= tacozip_count(ar))
        PyErr_SetString(PyExc_IndexError, "member index out of range");
    else {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(ar, (size_t)i, &m);
        r = member_tuple(&m);
    }
    release(self);
    return r;
}

static PyObject *archive_find(ArchiveObject *self, PyObject *arg) {
    if (!self->ar || self->closing) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    PyObject *b;
    if (PyUnicode_Check(arg)) {
        /* lone surrogates (names that are not UTF-8): encode as on disk */
        b = PyUnicode_AsEncodedString(arg, "utf-8", "surrogateescape");
    } else if (PyBytes_Check(arg)) {
        Py_INCREF(arg);
        b = arg;
    } else {
        PyErr_SetString(PyExc_TypeError, "member name must be str or bytes");
        return NULL;
    }
    if (!b) return NULL;
    char *name;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(b, &name, &len) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    size_t idx;
    int rc = self->ar ? tacozip_find(self->ar, name, (size_t)len, &idx) : TACOZ_ERR_PARAM; /* no user code above */
    Py_DECREF(b);
    return PyLong_FromSsize_t(rc ? -1 : (Py_ssize_t)idx);
}

/* header(): for a larger remote archive the first call makes a request,
 * so the GIL is released. */
static PyObject *archive_header(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    taco_meta_array_t m;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_archive_header_ex(ar, &m, &err);
    Py_END_ALLOW_THREADS
    release(self);
    if (rc) return raise_code(rc, err.message);
    return entries_list(&m);
}

/* A sequence of member indices -> size_t array (PyMem_Free it). */
static size_t *indices_arg(PyObject *seq, Py_ssize_t *n_out) {
    PyObject *t = as_tuple(seq, "expected a sequence of member indices");
    if (!t) return NULL;
    Py_ssize_t n = PyTuple_Size(t);
    size_t *idx = PyMem_Calloc((size_t)n + 1, sizeof *idx);
    if (!idx) {
        Py_DECREF(t);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        idx[i] = PyLong_AsSize_t(PyTuple_GetItem(t, i));
        if (PyErr_Occurred()) {
            PyMem_Free(idx);
            Py_DECREF(t);
            return NULL;
        }
    }
    Py_DECREF(t);
    *n_out = n;
    return idx;
}

static PyObject *archive_span(ArchiveObject *self, PyObject *args) {
    PyObject *seq;
    int data_only = 0;
    if (!PyArg_ParseTuple(args, "O|p", &seq, &data_only)) return NULL;
    /* held while the indices are converted (user code: the sequence's items) */
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    Py_ssize_t n = 0;
    size_t *idx = indices_arg(seq, &n);
    if (!idx) {
        release(self);
        return NULL;
    }
    if (n == 0) {
        PyMem_Free(idx);
        release(self);
        PyErr_SetString(PyExc_ValueError, "span of no members");
        return NULL;
    }
    uint64_t off, len;
    int rc = tacozip_span(ar, idx, (size_t)n, data_only ? TACOZIP_SPAN_DATA_ONLY : 0, &off, &len);
    PyMem_Free(idx);
    release(self);
    if (rc) {
        PyErr_SetString(PyExc_IndexError, "member index out of range");
        return NULL;
    }
    return Py_BuildValue("(KK)", (unsigned long long)off, (unsigned long long)len);
}

/* read_at(offset, length) -> bytes of the archive */
static PyObject *archive_read_at(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    unsigned long long off, len;
    if (!PyArg_ParseTuple(args, "O&O&", conv_offset, &off, conv_length, &len)) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    uint64_t size = tacozip_archive_size(ar);
    if (off > size || len > size - off) {
        release(self);
        return PyErr_Format(PyExc_ValueError, "range %llu+%llu passes the end of the archive (%llu bytes)", off, len,
                            (unsigned long long)size);
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    char *buf = b ? PyBytes_AsString(b) : NULL;
    if (!buf) {
        Py_XDECREF(b);
        release(self);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_at_ex(ar, off, buf, (size_t)len, &rerr);
    Py_END_ALLOW_THREADS
    release(self);
    if (rc) {
        Py_DECREF(b);
        return raise_code(rc, rerr.message);
    }
    return b;
}

/* readinto_member(index, offset, buffer) -> bytes read */
static PyObject *archive_readinto_member(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    Py_ssize_t index;
    unsigned long long off;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "nO&w*", &index, conv_offset, &off, &view)) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (index < 0 || (size_t)index >= tacozip_count(ar)) {
        release(self);
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "member index out of range");
        return NULL;
    }
    size_t got = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_member_ex(ar, (size_t)index, off, view.buf, (size_t)view.len, &got, &rerr);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    release(self);
    if (rc) return raise_code(rc, rerr.message);
    return PyLong_FromSize_t(got);
}

/* read_member(index, offset=0, length=-1) -> bytes */
static PyObject *archive_read_member(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    Py_ssize_t index;
    unsigned long long off = 0;
    long long length = -1;
    if (!PyArg_ParseTuple(args, "n|O&L", &index, conv_offset, &off, &length)) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    tacozip_member m = TACOZIP_MEMBER_INIT;
    if (index < 0 || tacozip_member_at(ar, (size_t)index, &m) != TACOZ_OK) {
        release(self);
        PyErr_SetString(PyExc_IndexError, "member index out of range");
        return NULL;
    }
    uint64_t avail = off < m.size ? m.size - off : 0;
    uint64_t want = length < 0 || (uint64_t)length > avail ? avail : (uint64_t)length;
    if (want > (uint64_t)PY_SSIZE_T_MAX) {
        release(self);
        return PyErr_NoMemory();
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)want);
    char *buf = b ? PyBytes_AsString(b) : NULL;
    if (!buf) {
        Py_XDECREF(b);
        release(self);
        return NULL;
    }
    size_t got = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_member_ex(ar, (size_t)index, off, buf, (size_t)want, &got, &rerr);
    Py_END_ALLOW_THREADS
    release(self);
    if (rc) {
        Py_DECREF(b);
        return raise_code(rc, rerr.message);
    }
    return b;
}

static PyObject *archive_verify(ArchiveObject *self, PyObject *arg) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    Py_ssize_t index = PyLong_AsSsize_t(arg);
    if (index == -1 && PyErr_Occurred()) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    if (index < 0 || (size_t)index >= tacozip_count(ar)) {
        release(self);
        PyErr_SetString(PyExc_IndexError, "member index out of range");
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_verify_member_ex(ar, (size_t)index, &rerr);
    Py_END_ALLOW_THREADS
    release(self);
    if (rc) return raise_code(rc, rerr.message);
    Py_RETURN_NONE;
}

/* extract(dest, names=None, overwrite=False, skip_header=False) */
static PyObject *archive_extract(ArchiveObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dest", "names", "overwrite", "skip_header", NULL};
    PyObject *d, *names = Py_None, *hold = NULL;
    int overwrite = 0, skip = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Opp", kwlist, &d, &names, &overwrite, &skip)) return NULL;
    str_array na = {0};
    if (names != Py_None && str_array_from(names, &na, 0)) return NULL;
    const char *dest = path_arg(d, &hold);
    if (!dest) {
        str_array_free(&na);
        return NULL;
    }
    tacozip_archive *ar = acquire(self);
    if (!ar) {
        str_array_free(&na);
        Py_DECREF(hold);
        return NULL;
    }
    unsigned flags = (overwrite ? TACOZIP_EXTRACT_OVERWRITE : 0) | (skip ? TACOZIP_EXTRACT_SKIP_HEADER : 0);
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_extract(ar, dest, names == Py_None ? NULL : na.v, (size_t)na.n, flags, NULL,
                                                NULL, &err);
    Py_END_ALLOW_THREADS
    release(self);
    str_array_free(&na);
    Py_DECREF(hold);
    if (rc) return raise_code(rc, err.message);
    Py_RETURN_NONE;
}

static uint64_t gap_arg(long long g) { return g < 0 ? TACOZIP_DEFAULT_GAP : (uint64_t)g; }

/* read_ranges([(offset, length), ...], max_gap=-1) -> [bytes, ...] */
static PyObject *archive_read_ranges(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    PyObject *seq;
    long long gap = -1;
    if (!PyArg_ParseTuple(args, "O|L", &seq, &gap)) return NULL;
    PyObject *t = as_tuple(seq, "expected a sequence of (offset, length) pairs");
    if (!t) return NULL;
    Py_ssize_t n = PyTuple_Size(t);
    tacozip_range *rg = PyMem_Calloc((size_t)n + 1, sizeof *rg);
    PyObject *out = PyList_New(n);
    if (!rg || !out) {
        Py_DECREF(t);
        Py_XDECREF(out);
        PyMem_Free(rg);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long o, l;
        char *buf = NULL;
        PyObject *b = NULL;
        if (pair_arg(PyTuple_GetItem(t, i), &o, &l, "each range must be (offset, length)", "range", i) == 0) {
            if (l > (unsigned long long)PY_SSIZE_T_MAX) PyErr_SetString(PyExc_ValueError, "range too long");
            else if ((b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)l)))
                buf = PyBytes_AsString(b);
        }
        if (!buf) {
            Py_XDECREF(b);
            Py_DECREF(t), Py_DECREF(out), PyMem_Free(rg);
            return NULL;
        }
        PyList_SetItem(out, i, b);
        rg[i].offset = o, rg[i].length = l, rg[i].buf = buf;
    }
    Py_DECREF(t);
    tacozip_archive *ar = acquire(self);
    if (!ar) {
        Py_DECREF(out), PyMem_Free(rg);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_ranges_ex(ar, rg, (size_t)n, gap_arg(gap), &rerr);
    Py_END_ALLOW_THREADS
    PyMem_Free(rg);
    release(self);
    if (rc) {
        Py_DECREF(out);
        return raise_code(rc, rerr.message);
    }
    return out;
}

/* read_members([index, ...], max_gap=-1) -> [bytes, ...] */
static PyObject *archive_read_members(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    PyObject *seq;
    long long gap = -1;
    if (!PyArg_ParseTuple(args, "O|L", &seq, &gap)) return NULL;
    Py_ssize_t n = 0;
    size_t *idx = indices_arg(seq, &n);
    if (!idx) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) {
        PyMem_Free(idx);
        return NULL;
    }
    void **bufs = PyMem_Calloc((size_t)n + 1, sizeof *bufs);
    PyObject *out = PyList_New(n);
    int ok = bufs && out;
    if (!ok) PyErr_NoMemory();
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        if (tacozip_member_at(ar, idx[i], &m) != TACOZ_OK) {
            PyErr_SetString(PyExc_IndexError, "member index out of range");
            ok = 0;
            break;
        }
        if (m.size > (uint64_t)PY_SSIZE_T_MAX) {
            PyErr_NoMemory();
            ok = 0;
            break;
        }
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)m.size);
        if (!b || !(bufs[i] = PyBytes_AsString(b))) {
            Py_XDECREF(b);
            ok = 0;
            break;
        }
        PyList_SetItem(out, i, b);
    }
    int rc = 0;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS rc = tacozip_read_members_ex(ar, idx, (size_t)n, bufs, gap_arg(gap), &rerr);
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(idx);
    PyMem_Free(bufs);
    release(self);
    if (!ok || rc) {
        Py_XDECREF(out);
        return rc ? raise_code(rc, rerr.message) : NULL;
    }
    return out;
}

/* stats() -> (requests, bytes) for a remote archive, else None */
static PyObject *archive_stats(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    if (!self->ar) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    uint64_t req = 0, bytes = 0;
    if (tacozip_remote_stats(self->ar, &req, &bytes) != TACOZ_OK) Py_RETURN_NONE;
    return Py_BuildValue("(KK)", (unsigned long long)req, (unsigned long long)bytes);
}

static PyMethodDef archive_methods[] = {
    {"read_ranges", (PyCFunction)archive_read_ranges, METH_VARARGS,
     "read_ranges(ranges, max_gap=-1) -> list of bytes"},
    {"read_members", (PyCFunction)archive_read_members, METH_VARARGS,
     "read_members(indices, max_gap=-1) -> list of bytes"},
    {"stats", (PyCFunction)archive_stats, METH_NOARGS, "(requests, bytes) of a remote archive, or None"},
    {"close", (PyCFunction)archive_close, METH_NOARGS, "Release the archive."},
    {"members", (PyCFunction)archive_members, METH_NOARGS, "All members as tuples."},
    {"names", (PyCFunction)archive_names, METH_NOARGS, "All member names."},
    {"directory_range", (PyCFunction)archive_directory_range, METH_NOARGS, "(offset, size) of the central directory"},
    {"member", (PyCFunction)archive_member, METH_O, "member(index) -> one member's tuple"},
    {"find", (PyCFunction)archive_find, METH_O, "Index of a member by name, or -1."},
    {"header", (PyCFunction)archive_header, METH_NOARGS, "TACO header entries."},
    {"span", (PyCFunction)archive_span, METH_VARARGS, "span(indices, data_only=False) -> (offset, length)"},
    {"read_at", (PyCFunction)archive_read_at, METH_VARARGS, "read_at(offset, length) -> bytes"},
    {"read_member", (PyCFunction)archive_read_member, METH_VARARGS,
     "read_member(index, offset=0, length=-1) -> bytes"},
    {"readinto_member", (PyCFunction)archive_readinto_member, METH_VARARGS,
     "readinto_member(index, offset, buffer) -> int"},
    {"verify", (PyCFunction)archive_verify, METH_O, "Check a member's CRC-32."},
    {"extract", (PyCFunction)(void (*)(void))archive_extract, METH_VARARGS | METH_KEYWORDS,
     "extract(dest, names=None, overwrite=False, skip_header=False)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef archive_getset[] = {{"count", (getter)archive_count, NULL, "number of members", NULL},
                                       {"size", (getter)archive_size, NULL, "archive size in bytes", NULL},
                                       {"format", (getter)archive_format, NULL, "1 ZIP32, 2 ZIP64", NULL},
                                       {"closed", (getter)archive_closed, NULL, "closed?", NULL},
                                       {"identity", (getter)archive_identity, NULL,
                                        "ETag or version of the bytes ('' if unknown)", NULL},
                                       {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot archive_slots[] = {{Py_tp_init, (void *)archive_init},
                                      {Py_tp_dealloc, (void *)archive_dealloc},
                                      {Py_tp_methods, archive_methods},
                                      {Py_tp_getset, archive_getset},
                                      {Py_tp_new, (void *)PyType_GenericNew},
                                      {Py_tp_doc, (void *)"Low-level open archive (use tacozip.open)."},
                                      {0, NULL}};

static PyType_Spec archive_spec = {"tacozip._tacozip.Archive", sizeof(ArchiveObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, archive_slots};

/* ---- module ----------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"version", py_version, METH_NOARGS, "C library version."},
    {"parse_header", py_parse_header, METH_O, "Entries from a buffer of >= 157 bytes."},
    {"implied_dirs", py_implied_dirs, METH_O, "implied_dirs(names) -> (set of implied directories, names ending in '/')"},
    {"serialize_header", py_serialize_header, METH_O, "157 header bytes for entries."},
    {"read_header", (PyCFunction)(void (*)(void))py_read_header, METH_VARARGS | METH_KEYWORDS,
     "read_header(source, remote=None, name=None): entries of the archive at a path, URL or file object."},
    {"update_header", py_update_header, METH_VARARGS, "Rewrite header entries in place."},
    {"decode_span", (PyCFunction)(void (*)(void))py_decode_span, METH_VARARGS | METH_KEYWORDS,
     "decode_span(buffer, base=0, flags=0) -> ([(name, header_pos, data_pos, size, crc32, flags, dos_datetime)], end)"},
    {"fetch_entries", py_fetch_entries, METH_VARARGS,
     "fetch_entries(source, remote, name, indices, max_gap) -> (entries, [bytes], (requests, bytes) or None)"},

    {"recover", py_recover, METH_VARARGS, "Roll back an interrupted append or update; returns TACOZIP_RECOVERED_*."},
    {"create", (PyCFunction)(void (*)(void))py_create, METH_VARARGS | METH_KEYWORDS, "Write a new archive."},
    {"append", (PyCFunction)(void (*)(void))py_append, METH_VARARGS | METH_KEYWORDS, "Add members."},
    {"create_planned", (PyCFunction)(void (*)(void))py_create_planned, METH_VARARGS | METH_KEYWORDS,
     "create_planned(zip_path, src_files, arc_files, entries, alignment, fsync, mtime, progress, index, remote)"},
    {"plan", (PyCFunction)(void (*)(void))py_plan, METH_VARARGS | METH_KEYWORDS,
     "plan(names, sizes, entries=None, alignment=0, index=False) -> (header_offsets, data_offsets, "
     "directory_offset, entries)"},
    {"validate", (PyCFunction)(void (*)(void))py_validate, METH_VARARGS | METH_KEYWORDS,
     "validate(source, level=1, remote=None, name=None) -> (code, message)"},
    {"detect_format", py_detect_format, METH_O, "0 unknown, 1 ZIP32, 2 ZIP64"},
    {"strerror", py_strerror, METH_O, "Message for a code."},
    {"codes", py_codes, METH_NOARGS, "[(code, name, message)] for every code of the library."},
    {"display_name", py_display_name, METH_O, "A path or URL without credentials or query string."},
    {"is_url", py_is_url, METH_O, "True for http://, https:// and s3:// (any case)."},
    {"crc32", py_crc32, METH_VARARGS, "crc32(data, value=0) -> int: CRC-32 as zlib.crc32 (libdeflate's where built with it)."},
    {NULL, NULL, 0, NULL}};

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
    mod_state *st = PyModule_GetState(m);
    Py_VISIT(st->error);
    Py_VISIT(st->io_error);
    Py_VISIT(st->val_error);
    Py_VISIT(st->archive_type);
    Py_VISIT(st->writer_type);
    return 0;
}

static int module_clear(PyObject *m) {
    mod_state *st = PyModule_GetState(m);
    Py_CLEAR(st->error);
    Py_CLEAR(st->io_error);
    Py_CLEAR(st->val_error);
    Py_CLEAR(st->archive_type);
    Py_CLEAR(st->writer_type);
    return 0;
}

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_tacozip", "tacozip C extension", sizeof(mod_state),
                                    module_methods, NULL, module_traverse, module_clear, NULL};

PyMODINIT_FUNC PyInit__tacozip(void) {
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    mod_state *st = PyModule_GetState(m);
    st->archive_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &archive_spec, NULL);
    if (!st->archive_type) goto fail;
    Py_INCREF((PyObject *)st->archive_type);
    if (PyModule_AddObject(m, "Archive", (PyObject *)st->archive_type) < 0) {
        Py_DECREF(st->archive_type);
        goto fail;
    }
    st->writer_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &writer_spec, NULL);
    if (!st->writer_type) goto fail;
    Py_INCREF((PyObject *)st->writer_type);
    if (PyModule_AddObject(m, "Writer", (PyObject *)st->writer_type) < 0) {
        Py_DECREF(st->writer_type);
        goto fail;
    }
    /* The constants of include/tacozip.h that are not codes (codes: codes()). */
#define ADD_INT(name) \
    if (PyModule_AddIntConstant(m, #name, name) < 0) goto fail
    ADD_INT(TACO_HEADER_SIZE);
    ADD_INT(TACO_HEADER_MAX_ENTRIES);
    ADD_INT(TACO_HEADER_NAME_LEN);
    ADD_INT(TACO_HEADER_PAYLOAD_SIZE);
    ADD_INT(TACOZIP_FORMAT_UNKNOWN);
    ADD_INT(TACOZIP_FORMAT_ZIP32);
    ADD_INT(TACOZIP_FORMAT_ZIP64);
    ADD_INT(TACOZIP_VALIDATE_QUICK);
    ADD_INT(TACOZIP_VALIDATE_NORMAL);
    ADD_INT(TACOZIP_VALIDATE_DEEP);
    ADD_INT(TACOZIP_S3_AUTO);
    ADD_INT(TACOZIP_S3_PATH);
    ADD_INT(TACOZIP_S3_VIRTUAL);
    ADD_INT(TACOZIP_NO_RETRIES);
    ADD_INT(TACOZIP_SPAN_NO_CRC);
    ADD_INT(TACOZIP_SPAN_PARTIAL);
    ADD_INT(TACOZIP_ENTRY_RANGE);
    ADD_INT(TACOZIP_ENTRY_DATA);
    ADD_INT(TACOZIP_ENTRY_MEMBERS);
    ADD_INT(TACOZIP_ENTRY_PREFIX);
    ADD_INT(TACOZIP_ENTRY_DIRECTORY);
#undef ADD_INT
    if (PyModule_AddStringConstant(m, "TACO_HEADER_NAME", TACO_HEADER_NAME) < 0) goto fail;
    g_module = m;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
