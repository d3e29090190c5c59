/* callbacks.c - a byte source of caller-supplied functions (any storage the
 * library does not speak itself: Python file objects, fsspec, cloud SDKs). */
#include <stdlib.h>
#include <string.h>

#include "source.h"

typedef struct {
    tacozip_source base;
    tacozip_source_callbacks cb; /* the 1.1 fields, copied */
    void *user;
} cb_source;

/* A callback that fails without a message still gives one. */
static int cb_result(int rc, tacozip_error *e, tacozip_error *err, const char *what) {
    if (rc == TACOZ_OK) return TACOZ_OK;
    if (rc > 0) rc = TACOZ_ERR_IO;
    if (e->message[0]) return tz_fail(err, rc, "%s", e->message);
    return tz_fail(err, rc, "%s callback failed (%s)", what, tacozip_strerror(rc));
}

static int cb_read_at(tacozip_source *s, uint64_t off, void *buf, size_t len, tacozip_error *err) {
    cb_source *c = (cb_source *)s;
    tacozip_error e = TACOZIP_ERROR_INIT;
    return cb_result(c->cb.read_at(c->user, off, buf, len, &e), &e, err, "read_at");
}

static int cb_read_many(tacozip_source *s, tacozip_range *r, size_t n, tacozip_error *err) {
    cb_source *c = (cb_source *)s;
    tacozip_error e = TACOZIP_ERROR_INIT;
    return cb_result(c->cb.read_ranges(c->user, r, n, &e), &e, err, "read_ranges");
}

static size_t cb_identity(tacozip_source *s, char *buf, size_t cap) {
    cb_source *c = (cb_source *)s;
    if (!c->cb.identity || cap == 0) return 0;
    buf[0] = '\0';
    if (c->cb.identity(c->user, buf, cap) != TACOZ_OK) buf[0] = '\0';
    buf[cap - 1] = '\0';
    return strlen(buf);
}

static void cb_destroy(tacozip_source *s) {
    cb_source *c = (cb_source *)s;
    if (c->cb.close) c->cb.close(c->user);
    free(c);
}

static const tz_source_ops cb_ops = {.read_at = cb_read_at, .destroy = cb_destroy, .identity = cb_identity};
static const tz_source_ops cb_ops_many = {
    .read_at = cb_read_at, .destroy = cb_destroy, .identity = cb_identity, .read_many = cb_read_many};

int tz_source_callbacks(const tacozip_source_callbacks *cb, void *user, const char *name, tacozip_source **out,
                        tacozip_error *err) {
    int rc = tz_check_struct_size(cb->struct_size, sizeof(tacozip_source_callbacks), "tacozip_source_callbacks", err);
    if (rc) return rc;
    if (!cb->read_at || !cb->get_size) return tz_fail(err, TACOZ_ERR_PARAM, "callbacks need get_size and read_at");
    uint64_t size = 0;
    tacozip_error e = TACOZIP_ERROR_INIT;
    if ((rc = cb_result(cb->get_size(user, &size, &e), &e, err, "get_size"))) return rc;
    if (size == TZ_SIZE_UNKNOWN) return tz_fail(err, TACOZ_ERR_PARAM, "get_size gave an impossible size");
    cb_source *c = calloc(1, sizeof *c);
    if (!c) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    if ((rc = tz_source_init(&c->base, cb->read_ranges ? &cb_ops_many : &cb_ops, name ? name : "<callbacks>", err))) {
        free(c);
        return rc;
    }
    memcpy(&c->cb, cb, sizeof c->cb);
    c->user = user;
    c->base.size = size;
    c->base.round_trips = 1; /* assume each read may be a request */
    *out = &c->base;
    return TACOZ_OK;
}
