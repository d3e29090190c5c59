/* create.c - creating archives (tacozip_create, _ex, _planned) and
 * appending to them (tacozip_append_ex), on the machinery of writer.c:
 * every source is checked before anything is written, then the archive is
 * emitted front to back into a new file or an S3 upload (output.c), or
 * after the old members of the archive appended to. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "writer.h"

static const char *plan_name(const void *ctx, size_t i, size_t *len) {
    const tz_member_plan *p = ctx;
    *len = p[i].nlen;
    return p[i].name;
}

/* Check arguments (and stat every source when "do_stat") before anything
 * is written.  "existing": the directory of the archive appended to. */
static int plan_members(const char *const *src, const char *const *arc, size_t n, const tz_dir *existing,
                        int do_stat, tz_member_plan **out, uint64_t *total, tacozip_error *err) {
    tz_member_plan *p = calloc(n ? n : 1, sizeof *p);
    tz_name_table seen = {0};
    int rc = p ? tz_names_init(&seen, n, p, plan_name, err) : tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    *total = 0;
    for (size_t i = 0; i < n && rc == TACOZ_OK; i++) {
        if (!src[i] || (arc && !arc[i])) {
            rc = tz_fail(err, TACOZ_ERR_PARAM, "source or archive name %zu is NULL", i);
            break;
        }
        const char *name = src[i];
        if (arc) {
            name = arc[i];
        } else {
            const char *slash = strrchr(src[i], '/');
            if (slash) name = slash + 1;
        }
        p[i].src = src[i];
        p[i].name = name;
        p[i].nlen = strlen(name);
        p[i].size = UINT64_MAX; /* learnt from fstat() when the member is written */
        if ((rc = tz_check_member_name(name, p[i].nlen, err))) break;
        if (tz_names_insert(&seen, i, NULL) != TACOZ_OK) {
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "member name \"%.200s\" given twice", name);
            break;
        }
        if (existing && tz_names_find(&existing->table, name, p[i].nlen, NULL) == TACOZ_OK) {
            rc = tz_fail(err, TACOZ_ERR_EXISTS, "member \"%.200s\" is already in the archive", name);
            break;
        }
        if (!do_stat) continue;
        struct stat st;
        if (stat(src[i], &st) != 0) {
            rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s", src[i]);
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = tz_fail(err, TACOZ_ERR_PARAM, "%s: not a regular file (%s); only regular files can be archived",
                         src[i], tz_file_kind(st.st_mode));
            break;
        }
        p[i].size = (uint64_t)st.st_size;
        p[i].mtime = (int64_t)st.st_mtime;
        *total += p[i].size;
    }
    tz_names_free(&seen);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return TACOZ_OK;
}

/* Write the archive of the checked members "plan" with the header
 * "meta" to a new local file or an s3:// upload. */
static int create_impl(const char *zip_path, const tz_member_plan *plan, size_t n, uint64_t total,
                       uint64_t expected, const taco_meta_array_t *meta, const tacozip_write_options *opts,
                       const tacozip_remote_options *remote, tacozip_error *err) {
    tz_output out;
    tz_writer w;
    memset(&w, 0, sizeof w);
    int rc = tz_output_open(&out, zip_path, opts, remote, expected, err);
    if (rc) return rc;
    if ((rc = tz_writer_init(&w, &out.sink, zip_path, opts, 0, err))) goto cleanup;
    w.total_bytes = total, w.total_files = n;
    int64_t now = opts->mtime ? opts->mtime : (int64_t)time(NULL);
    uint32_t dos = tz_dos_datetime(now, opts->mtime != 0);
    if ((rc = tz_writer_header(&w, meta, dos))) goto cleanup;
    if (opts->index) {
        rc = tz_writer_with_index(&w, plan, n, dos);
    } else {
        for (size_t i = 0; i < n && rc == TACOZ_OK; i++) rc = tz_writer_add_file(&w, &plan[i], NULL);
    }
    if (rc == TACOZ_OK) rc = tz_writer_end(&w, NULL, 0);
    if (rc == TACOZ_OK) rc = tz_output_commit(&out, err);
cleanup:
    tz_output_abort(&out);
    tz_writer_free(&w);
    return rc;
}

/* TACOZ_ERR_PARAM for a URL "why" cannot be written to, named without
 * credentials. */
static int refuse_url(const char *url, const char *why, tacozip_error *err) {
    char shown[512];
    tz_display_name(url, shown, sizeof shown);
    return tz_fail(err, TACOZ_ERR_PARAM, "%s: %s", shown, why);
}

static int check_create_args(const char *zip_path, const char *const *src_files, size_t num_files,
                             tacozip_error *err) {
    if (!zip_path || (num_files && !src_files)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path or file list");
    return TACOZ_OK;
}

int tacozip_create_ex(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                      size_t num_files, const taco_meta_array_t *meta, const tacozip_write_options *opts,
                      tacozip_error *err) {
    static const tacozip_write_options defaults;
    taco_meta_array_t one = {.count = 1};
    if (!opts) opts = &defaults;
    if (!meta) meta = &one;
    int rc = check_create_args(zip_path, src_files, num_files, err);
    if (rc) return rc;
    if (meta->count > TACO_HEADER_MAX_ENTRIES)
        return tz_fail(err, TACOZ_ERR_PARAM, "%u header entries given, at most %d fit", meta->count,
                       TACO_HEADER_MAX_ENTRIES);
    if (tacozip_is_url(zip_path))
        return refuse_url(zip_path, "tacozip_create_ex() writes local files; s3:// output is "
                                    "tacozip_create_planned() or tacozip_writer_open()", err);
    if ((rc = tz_check_write_options(opts, err))) return rc;
    tz_member_plan *plan = NULL;
    uint64_t total = 0;
    /* Sources are stat()ed up front only when something needs their sizes
     * before writing (the index, a progress total); otherwise each is
     * fstat()ed once open, and a missing one fails the (atomic) write. */
    int do_stat = opts->index || opts->progress;
    if ((rc = plan_members(src_files, arc_files, num_files, NULL, do_stat, &plan, &total, err))) return rc;
    rc = create_impl(zip_path, plan, num_files, total, TZ_SIZE_UNKNOWN, meta, opts, NULL, err);
    free(plan);
    return rc;
}

int tacozip_create(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                   size_t num_files, const taco_meta_array_t *meta) {
    return tacozip_create_ex(zip_path, src_files, arc_files, num_files, meta, NULL, NULL);
}

int tacozip_create_planned(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                           size_t num_files, const tacozip_entry_plan *entries, size_t n_entries,
                           const tacozip_write_options *opts, const tacozip_remote_options *remote,
                           tacozip_error *err) {
    static const tacozip_write_options defaults;
    if (!opts) opts = &defaults;
    int rc = check_create_args(zip_path, src_files, num_files, err);
    if (rc || (rc = tz_check_write_options(opts, err))) return rc;
    if (opts->index && tacozip_is_url(zip_path))
        return refuse_url(zip_path, "an embedded index (TACO_INDEX) is written to local files only (its CRCs are "
                                    "patched after the members)", err);
    tz_member_plan *plan = NULL;
    uint64_t total = 0, size = 0;
    if ((rc = plan_members(src_files, arc_files, num_files, NULL, 1, &plan, &total, err))) return rc;
    const char **names = malloc((num_files ? num_files : 1) * sizeof *names);
    uint64_t *sizes = malloc((num_files ? num_files : 1) * sizeof *sizes);
    taco_meta_array_t meta;
    if (!names || !sizes) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < num_files; i++) names[i] = plan[i].name, sizes[i] = plan[i].size;
        /* the entries are resolved on the layout before anything is written */
        rc = tz_plan_layout(names, sizes, num_files, entries, n_entries, opts, NULL, NULL, NULL, &size, &meta, err);
        if (rc) {
            char shown[512];
            tz_display_name(zip_path, shown, sizeof shown);
            tz_err_prefix(err, rc, shown);
        }
    }
    /* the archive's exact size: the upload's part size, one PUT or not */
    if (rc == TACOZ_OK) rc = create_impl(zip_path, plan, num_files, total, size, &meta, opts, remote, err);
    free(names), free(sizes), free(plan);
    return rc;
}

int tacozip_append_ex(const char *zip_path, const char *const *src_files, const char *const *arc_files,
                      size_t num_files, const tacozip_write_options *opts, tacozip_error *err) {
    static const tacozip_write_options defaults;
    if (!opts) opts = &defaults;
    if (!zip_path || (num_files && !src_files)) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path or file list");
    char shown[512];
    tz_display_name(zip_path, shown, sizeof shown);
    if (tacozip_is_url(zip_path))
        return tz_fail(err, TACOZ_ERR_PARAM, "%s: cannot append to a remote archive (objects are immutable)", shown);
    int rc = tz_check_write_options(opts, err);
    if (rc) return rc;
    tacozip_source *src = NULL;
    tz_dir dir = {0};
    tz_end_info end;
    tz_tail t = {NULL, 0, 0};
    tz_member_plan *plan = NULL;
    unsigned char *tail = NULL;
    int fd = -1;
    tz_sink sink;
    tz_writer w;
    memset(&w, 0, sizeof w);
    /* the writers' lock before the archive is read: another append or
     * update cannot change it between what is read here and what is
     * written (TACOZ_ERR_LOCKED at once if one is running) */
    int durable = !opts->no_fsync, what;
    if ((rc = tz_open_regular(zip_path, O_RDWR, &fd, err)) || (rc = tz_lock_writer(fd, err)) ||
        (rc = tz_journal_recover(zip_path, fd, durable, &what, err))) {
        tz_err_prefix(err, rc, shown);
        goto cleanup;
    }
    if ((rc = tz_source_file(zip_path, &src, err)) || (rc = tz_find_end(src, &end, &t, err)) ||
        (rc = tz_dir_read(&dir, src, &end, &t, err)) || (rc = tz_dir_resolve_offsets(&dir, src, 0, err))) {
        tz_err_prefix(err, rc, shown);
        goto cleanup;
    }
    if (tz_names_find(&dir.table, TACO_INDEX_NAME, TACO_INDEX_NAME_LEN, NULL) == TACOZ_OK) {
        rc = tz_fail(err, TACOZ_ERR_INDEXED,
                     "%s has an embedded member index (TACO_INDEX) that appending would make stale; "
                     "create the archive again instead",
                     shown);
        goto cleanup;
    }
    /* append checks every source before touching the archive */
    uint64_t total = 0;
    if ((rc = plan_members(src_files, arc_files, num_files, &dir, 1, &plan, &total, err))) goto cleanup;
    /* Keep the old tail (directory and end records) to write it back on failure. */
    uint64_t old_size = src->size, cd_off = end.cd_offset;
    size_t tail_len = (size_t)(old_size - cd_off);
    tail = malloc(tail_len ? tail_len : 1);
    tz_sink_file(&sink, fd, zip_path);
    if ((rc = tz_writer_init(&w, &sink, zip_path, opts, cd_off, err))) goto cleanup;
    w.total_bytes = total, w.total_files = num_files;
    if (!tail) {
        rc = tz_fail(err, TACOZ_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = tz_source_read(src, cd_off, tail, tail_len, err))) goto cleanup;
    size_t eocd_rel = (size_t)(end.eocd_offset - cd_off);
    size_t comment_len = end.comment_len;
    if (eocd_rel + ZIP_EOCD_SIZE + comment_len > tail_len) comment_len = tail_len - eocd_rel - ZIP_EOCD_SIZE;
    /* Old directory records are kept verbatim: old members do not move. */
    if ((rc = tz_writer_keep_directory(&w, tail, (size_t)end.cd_size, dir.count))) goto cleanup;

    /* the old tail into the rollback journal before the archive is touched */
    const tz_jregion old_tail = {cd_off, tail_len, tail};
    /* what tells this archive: the bytes just before the old directory */
    uint64_t fp_len = cd_off < 65536 ? cd_off : 65536;
    if ((rc = tz_journal_write(zip_path, fd, TZ_JOURNAL_OP_APPEND, old_size, &old_tail, 1, cd_off - fp_len, fp_len,
                               durable, err))) {
        tz_err_prefix(err, rc, shown);
        goto cleanup;
    }
    if (lseek(fd, (off_t)cd_off, SEEK_SET) < 0) {
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: seek", zip_path);
    }
    for (size_t i = 0; i < num_files && rc == TACOZ_OK; i++) rc = tz_writer_add_file(&w, &plan[i], NULL);
    if (rc == TACOZ_OK) rc = tz_writer_end(&w, tail + eocd_rel + ZIP_EOCD_SIZE, comment_len);
    if (rc == TACOZ_OK && ftruncate(fd, (off_t)tz_writer_pos(&w)) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: truncate", zip_path);
    if (rc == TACOZ_OK && !opts->no_fsync && fsync(fd) != 0)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: fsync", zip_path);
    if (rc) tz_journal_rollback_after(zip_path, fd, &old_tail, 1, old_size, durable, err);
    else if ((rc = tz_journal_remove(zip_path, durable, err))) tz_err_prefix(err, rc, shown);
cleanup:
    if (fd >= 0 && close(fd) != 0 && rc == TACOZ_OK)
        rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "%s: close", zip_path);
    free(t.buf);
    free(tail);
    tz_writer_free(&w);
    free(plan);
    tz_dir_free(&dir);
    tz_source_unref(src);
    return rc;
}
