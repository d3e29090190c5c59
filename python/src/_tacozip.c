/* _tacozip.c - the CPython extension over the tacozip C library.
 *
 * A thin layer: argument conversion, the GIL released around every call that
 * does file I/O, C error codes turned into the package's exception classes
 * (tacozip.exceptions).  The Pythonic API lives in python/tacozip/*.py. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "tacozip.h"

int tacozip_cli_main(int argc, char **argv); /* cli/tacozip.c */

/* ---- module state: the exception classes ------------------------------ */

typedef struct {
    PyObject *error;      /* TacozipError */
    PyObject *io_error;   /* TacozipIOError */
    PyObject *val_error;  /* TacozipValidationError */
    PyTypeObject *archive_type;
} mod_state;

static PyObject *g_module; /* set once at import; read-only afterwards */

static mod_state *state(void) { return (mod_state *)PyModule_GetState(g_module); }

/* Raise the exception class matching "code" with the package's standard
 * message; the detailed message (file, member, structure at fault) goes
 * into the exception's "detail" attribute and a note. */
static PyObject *raise_code(int code, const char *detail) {
    mod_state *st = state();
    PyObject *cls = st->error;
    if (code == TACOZ_ERR_IO) cls = st->io_error;
    else if (code == TACOZ_ERR_PARAM || code == TACOZ_ERR_INVALID_HEADER || (code <= -10 && code >= -39))
        cls = st->val_error;
    PyObject *exc = PyObject_CallFunction(cls, "i", code);
    if (!exc) return NULL;
    if (detail && detail[0]) {
        PyObject *d = PyUnicode_DecodeUTF8(detail, (Py_ssize_t)strlen(detail), "replace");
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
    *holder = b;
    return PyBytes_AS_STRING(b);
}

static int entries_arg(PyObject *seq, taco_meta_array_t *m) {
    memset(m, 0, sizeof *m);
    PyObject *fast = PySequence_Fast(seq, "entries must be a sequence of (offset, length) pairs");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > TACO_HEADER_MAX_ENTRIES) {
        PyErr_Format(PyExc_ValueError, "Too many entries: %zd > %d", n, TACO_HEADER_MAX_ENTRIES);
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long off, len;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "KK;each entry must be an (offset, length) pair",
                              &off, &len)) {
            Py_DECREF(fast);
            return -1;
        }
        m->entries[i].offset = off;
        m->entries[i].length = len;
    }
    m->count = (uint8_t)n;
    Py_DECREF(fast);
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
        PyList_SET_ITEM(l, i, t);
    }
    return l;
}

/* A list of str/bytes/PathLike → C string array (holders keep them alive). */
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

static int str_array_from(PyObject *seq, str_array *a, int as_path) {
    memset(a, 0, sizeof *a);
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of paths or names");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    a->v = PyMem_Calloc((size_t)n + 1, sizeof *a->v);
    a->hold = PyMem_Calloc((size_t)n + 1, sizeof *a->hold);
    if (!a->v || !a->hold) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *b = NULL;
        if (as_path) {
            if (!PyUnicode_FSConverter(item, &b)) break;
        } else if (PyUnicode_Check(item)) {
            b = PyUnicode_AsUTF8String(item);
            if (!b) break;
        } else {
            PyErr_SetString(PyExc_TypeError, "archive names must be str");
            break;
        }
        a->hold[i] = b;
        a->v[i] = PyBytes_AS_STRING(b);
        a->n = i + 1;
    }
    Py_DECREF(fast);
    if (PyErr_Occurred()) {
        str_array_free(a);
        return -1;
    }
    a->n = n;
    return 0;
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

static PyObject *py_read_header(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *hold = NULL;
    const char *path = path_arg(arg, &hold);
    if (!path) return NULL;
    taco_meta_array_t m;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_header_ex(path, &m, &err);
    Py_END_ALLOW_THREADS
    PyObject *res = rc ? raise_code(rc, err.message) : entries_list(&m);
    Py_DECREF(hold);
    return res;
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

/* ---- create / append ---------------------------------------------------- */

static PyObject *write_common(PyObject *args, PyObject *kw, int append) {
    static char *kwlist[] = {"zip_path", "src_files", "arc_files", "entries", "alignment", "fsync", "mtime",
                             "progress", "index", NULL};
    PyObject *p, *srcs, *arcs = Py_None, *entries = Py_None, *progress = Py_None, *hold = NULL;
    unsigned int alignment = 0;
    int do_fsync = 1, index = 0;
    long long mtime = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOIpLOp", kwlist, &p, &srcs, &arcs, &entries, &alignment,
                                     &do_fsync, &mtime, &progress, &index))
        return NULL;
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
    tacozip_write_options o = {.alignment = alignment, .no_fsync = !do_fsync, .mtime = mtime, .index = index};
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

/* ---- validate / detect ---------------------------------------------------- */

static PyObject *py_validate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *p, *hold = NULL;
    int level = TACOZIP_VALIDATE_NORMAL;
    if (!PyArg_ParseTuple(args, "O|i", &p, &level)) return NULL;
    const char *path = path_arg(p, &hold);
    if (!path) return NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_validate_ex(path, level, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(hold);
    return Py_BuildValue("(is)", rc, rc ? err.message : "");
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

static PyObject *py_cli_main(PyObject *self, PyObject *arg) {
    (void)self;
    str_array a;
    if (str_array_from(arg, &a, 1)) return NULL;
    int rc;
    fflush(stdout);
    Py_BEGIN_ALLOW_THREADS rc = tacozip_cli_main((int)a.n, (char **)a.v);
    fflush(stdout);
    fflush(stderr);
    Py_END_ALLOW_THREADS
    str_array_free(&a);
    return PyLong_FromLong(rc);
}

/* ---- Archive object ------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    tacozip_archive *ar;
    Py_ssize_t busy;   /* calls running without the GIL */
    int closing;       /* close() requested while busy */
} ArchiveObject;

static int archive_init(ArchiveObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "verify_local", "index_first", NULL};
    PyObject *p, *hold = NULL;
    int verify = 0, index_first = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pp", kwlist, &p, &verify, &index_first)) return -1;
    const char *path = path_arg(p, &hold);
    if (!path) return -1;
    tacozip_error err = TACOZIP_ERROR_INIT;
    tacozip_archive *ar = NULL;
    int rc;
    unsigned flags = (verify ? TACOZIP_OPEN_VERIFY_LOCAL : 0) | (index_first ? TACOZIP_OPEN_INDEX_FIRST : 0);
    Py_BEGIN_ALLOW_THREADS rc = tacozip_open_ex(path, flags, &ar, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(hold);
    if (rc) {
        raise_code(rc, err.message);
        return -1;
    }
    if (self->ar) tacozip_close(self->ar);
    self->ar = ar;
    return 0;
}

static void archive_dealloc(ArchiveObject *self) {
    if (self->ar) tacozip_close(self->ar);
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
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

static PyObject *member_tuple(const tacozip_member *m) {
    PyObject *name = PyUnicode_DecodeUTF8(m->name, (Py_ssize_t)m->name_len, "surrogateescape");
    if (!name) return NULL;
    return Py_BuildValue("(NKKkKKHH)", name, (unsigned long long)m->data_offset, (unsigned long long)m->size,
                         (unsigned long)m->crc32, (unsigned long long)m->header_offset,
                         (unsigned long long)m->uncompressed_size, (unsigned short)m->method,
                         (unsigned short)m->flags);
}

/* All members as a list of tuples (name, offset, size, crc32,
 * header_offset, uncompressed_size, method, flags). */
static PyObject *archive_members(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    if (!self->ar) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    size_t n = tacozip_count(self->ar);
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    for (size_t i = 0; i < n; i++) {
        tacozip_member m = TACOZIP_MEMBER_INIT;
        tacozip_member_at(self->ar, i, &m);
        PyObject *t = member_tuple(&m);
        if (!t) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    return l;
}

static PyObject *archive_find(ArchiveObject *self, PyObject *arg) {
    if (!self->ar) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    Py_ssize_t len;
    const char *name;
    if (PyUnicode_Check(arg)) {
        name = PyUnicode_AsUTF8AndSize(arg, &len);
        if (!name) {
            PyErr_Clear(); /* lone surrogates: encode as on disk */
            PyObject *b = PyUnicode_AsEncodedString(arg, "utf-8", "surrogateescape");
            if (!b) return NULL;
            size_t idx;
            int rc = tacozip_find(self->ar, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b), &idx);
            Py_DECREF(b);
            return PyLong_FromSsize_t(rc ? -1 : (Py_ssize_t)idx);
        }
    } else if (PyBytes_Check(arg)) {
        name = PyBytes_AS_STRING(arg);
        len = PyBytes_GET_SIZE(arg);
    } else {
        PyErr_SetString(PyExc_TypeError, "member name must be str or bytes");
        return NULL;
    }
    size_t idx;
    int rc = tacozip_find(self->ar, name, (size_t)len, &idx);
    return PyLong_FromSsize_t(rc ? -1 : (Py_ssize_t)idx);
}

static PyObject *archive_header(ArchiveObject *self, PyObject *noargs) {
    (void)noargs;
    if (!self->ar) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    taco_meta_array_t m;
    int rc = tacozip_archive_header(self->ar, &m);
    if (rc) return raise_code(rc, "the archive has no TACO_HEADER");
    return entries_list(&m);
}

static PyObject *archive_span(ArchiveObject *self, PyObject *args) {
    PyObject *seq;
    int data_only = 0;
    if (!PyArg_ParseTuple(args, "O|p", &seq, &data_only)) return NULL;
    if (!self->ar) return PyErr_Format(PyExc_ValueError, "I/O operation on closed archive");
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of member indices");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n == 0) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "span of no members");
        return NULL;
    }
    size_t *idx = PyMem_Malloc((size_t)n * sizeof *idx);
    if (!idx) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        idx[i] = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(fast, i));
        if (PyErr_Occurred()) {
            PyMem_Free(idx);
            Py_DECREF(fast);
            return NULL;
        }
    }
    Py_DECREF(fast);
    uint64_t off, len;
    int rc = tacozip_span(self->ar, idx, (size_t)n, data_only ? TACOZIP_SPAN_DATA_ONLY : 0, &off, &len);
    PyMem_Free(idx);
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
    if (!PyArg_ParseTuple(args, "KK", &off, &len)) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    uint64_t size = tacozip_archive_size(ar);
    if (off > size || len > size - off) {
        release(self);
        return PyErr_Format(PyExc_ValueError, "range %llu+%llu passes the end of the archive (%llu bytes)", off, len,
                            (unsigned long long)size);
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    if (!b) {
        release(self);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_at_ex(ar, off, PyBytes_AS_STRING(b), (size_t)len, &rerr);
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(b);
        raise_code(rc, rerr.message);
        release(self);
        return NULL;
    }
    release(self);
    return b;
}

/* readinto_member(index, offset, buffer) -> bytes read */
static PyObject *archive_readinto_member(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    Py_ssize_t index;
    unsigned long long off;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "nKw*", &index, &off, &view)) return NULL;
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
    if (rc) raise_code(rc, rerr.message);
    release(self);
    return rc ? NULL : PyLong_FromSize_t(got);
}

/* read_member(index, offset=0, length=-1) -> bytes */
static PyObject *archive_read_member(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    Py_ssize_t index;
    unsigned long long off = 0;
    long long length = -1;
    if (!PyArg_ParseTuple(args, "n|KL", &index, &off, &length)) return NULL;
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
    if (!b) {
        release(self);
        return NULL;
    }
    size_t got = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_member_ex(ar, (size_t)index, off, PyBytes_AS_STRING(b), (size_t)want, &got, &rerr);
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(b);
        raise_code(rc, rerr.message);
        release(self);
        return NULL;
    }
    release(self);
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
    if (rc) raise_code(rc, rerr.message);
    release(self);
    if (rc) return NULL;
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

/* Sequence of ints/pairs helpers for the multi-range calls. */
static uint64_t gap_arg(long long g) { return g < 0 ? TACOZIP_DEFAULT_GAP : (uint64_t)g; }

/* read_ranges([(offset, length), ...], max_gap=-1) -> [bytes, ...] */
static PyObject *archive_read_ranges(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    PyObject *seq;
    long long gap = -1;
    if (!PyArg_ParseTuple(args, "O|L", &seq, &gap)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of (offset, length) pairs");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    tacozip_range *rg = PyMem_Calloc((size_t)n + 1, sizeof *rg);
    PyObject *out = PyList_New(n);
    if (!rg || !out) {
        Py_DECREF(fast);
        Py_XDECREF(out);
        PyMem_Free(rg);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long o, l;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "KK;each range must be (offset, length)", &o, &l) ||
            l > (unsigned long long)PY_SSIZE_T_MAX) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "range too long");
            Py_DECREF(fast), Py_DECREF(out), PyMem_Free(rg);
            return NULL;
        }
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)l);
        if (!b) {
            Py_DECREF(fast), Py_DECREF(out), PyMem_Free(rg);
            return NULL;
        }
        PyList_SET_ITEM(out, i, b);
        rg[i].offset = o, rg[i].length = l, rg[i].buf = PyBytes_AS_STRING(b);
    }
    Py_DECREF(fast);
    tacozip_archive *ar = acquire(self);
    if (!ar) {
        Py_DECREF(out), PyMem_Free(rg);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = tacozip_read_ranges_ex(ar, rg, (size_t)n, gap_arg(gap), &rerr);
    Py_END_ALLOW_THREADS
    PyMem_Free(rg);
    if (rc) {
        raise_code(rc, rerr.message);
        Py_DECREF(out);
        out = NULL;
    }
    release(self);
    return out;
}

/* read_members([index, ...], max_gap=-1) -> [bytes, ...] */
static PyObject *archive_read_members(ArchiveObject *self, PyObject *args) {
    tacozip_error rerr = TACOZIP_ERROR_INIT;
    PyObject *seq;
    long long gap = -1;
    if (!PyArg_ParseTuple(args, "O|L", &seq, &gap)) return NULL;
    tacozip_archive *ar = acquire(self);
    if (!ar) return NULL;
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of member indices");
    if (!fast) {
        release(self);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    size_t *idx = PyMem_Calloc((size_t)n + 1, sizeof *idx);
    void **bufs = PyMem_Calloc((size_t)n + 1, sizeof *bufs);
    PyObject *out = PyList_New(n);
    int ok = idx && bufs && out;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        idx[i] = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(fast, i));
        tacozip_member m = TACOZIP_MEMBER_INIT;
        if (PyErr_Occurred() || tacozip_member_at(ar, idx[i], &m) != TACOZ_OK) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "member index out of range");
            ok = 0;
            break;
        }
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)m.size);
        if (!b) {
            ok = 0;
            break;
        }
        PyList_SET_ITEM(out, i, b);
        bufs[i] = PyBytes_AS_STRING(b);
    }
    Py_DECREF(fast);
    int rc = 0;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS rc = tacozip_read_members_ex(ar, idx, (size_t)n, bufs, gap_arg(gap), &rerr);
        Py_END_ALLOW_THREADS
        if (rc) raise_code(rc, rerr.message);
    } else if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    PyMem_Free(idx);
    PyMem_Free(bufs);
    release(self);
    if (!ok || rc) {
        Py_XDECREF(out);
        return NULL;
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
    {"serialize_header", py_serialize_header, METH_O, "157 header bytes for entries."},
    {"read_header", py_read_header, METH_O, "Entries of the archive at a path."},
    {"update_header", py_update_header, METH_VARARGS, "Rewrite header entries in place."},
    {"create", (PyCFunction)(void (*)(void))py_create, METH_VARARGS | METH_KEYWORDS, "Write a new archive."},
    {"append", (PyCFunction)(void (*)(void))py_append, METH_VARARGS | METH_KEYWORDS, "Add members."},
    {"validate", py_validate, METH_VARARGS, "validate(path, level) -> (code, message)"},
    {"detect_format", py_detect_format, METH_O, "0 unknown, 1 ZIP32, 2 ZIP64"},
    {"strerror", py_strerror, METH_O, "Message for a code."},
    {"cli_main", py_cli_main, METH_O, "Run the tacozip command with argv."},
    {NULL, NULL, 0, NULL}};

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
    mod_state *st = PyModule_GetState(m);
    Py_VISIT(st->error);
    Py_VISIT(st->io_error);
    Py_VISIT(st->val_error);
    Py_VISIT(st->archive_type);
    return 0;
}

static int module_clear(PyObject *m) {
    mod_state *st = PyModule_GetState(m);
    Py_CLEAR(st->error);
    Py_CLEAR(st->io_error);
    Py_CLEAR(st->val_error);
    Py_CLEAR(st->archive_type);
    return 0;
}

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_tacozip", "tacozip C extension", sizeof(mod_state),
                                    module_methods, NULL, module_traverse, module_clear, NULL};

PyMODINIT_FUNC PyInit__tacozip(void) {
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    mod_state *st = PyModule_GetState(m);
    PyObject *exc = PyImport_ImportModule("tacozip.exceptions");
    if (!exc) goto fail;
    st->error = PyObject_GetAttrString(exc, "TacozipError");
    st->io_error = PyObject_GetAttrString(exc, "TacozipIOError");
    st->val_error = PyObject_GetAttrString(exc, "TacozipValidationError");
    Py_DECREF(exc);
    if (!st->error || !st->io_error || !st->val_error) goto fail;
    st->archive_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &archive_spec, NULL);
    if (!st->archive_type) goto fail;
    Py_INCREF(st->archive_type);
    if (PyModule_AddObject(m, "Archive", (PyObject *)st->archive_type) < 0) {
        Py_DECREF(st->archive_type);
        goto fail;
    }
    g_module = m;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
