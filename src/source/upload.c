/* upload.c - placeholder until the S3 upload lands. */
#include "source.h"
int tz_upload_open(const char *url, const tacozip_remote_options *o, uint64_t total, uint64_t part_size, int parallel,
                   tz_upload **out, tacozip_error *err) {
    (void)url, (void)o, (void)total, (void)part_size, (void)parallel;
    *out = NULL;
    return tz_fail(err, TACOZ_ERR_NO_REMOTE, "uploads are not built yet");
}
int tz_upload_write(tz_upload *u, const void *d, size_t n, tacozip_error *e) { (void)u, (void)d, (void)n; return tz_fail(e, TACOZ_ERR_PARAM, "no upload"); }
int tz_upload_patch(tz_upload *u, uint64_t o, const void *d, size_t n, tacozip_error *e) { (void)u, (void)o, (void)d, (void)n; return tz_fail(e, TACOZ_ERR_PARAM, "no upload"); }
int tz_upload_hold(tz_upload *u, uint64_t o, size_t n, tacozip_error *e) { (void)u, (void)o, (void)n; return tz_fail(e, TACOZ_ERR_PARAM, "no upload"); }
int tz_upload_commit(tz_upload *u, tacozip_error *e) { (void)u; return tz_fail(e, TACOZ_ERR_PARAM, "no upload"); }
void tz_upload_abort(tz_upload *u) { (void)u; }
void tz_upload_stats(const tz_upload *u, tz_upload_stats_t *out) { (void)u, (void)out; }
