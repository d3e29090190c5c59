/* deflate.c - zlib-format compression of the TACO_INDEX columns, through
 * libdeflate when the build has it, else zlib (one of the two, never both). */
#include <stdlib.h>

#include "common.h"

#ifdef TACOZIP_HAVE_LIBDEFLATE
#include <libdeflate.h>

int tz_zlib_compress(const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len,
                     tacozip_error *err) {
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(9);
    if (!c) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index compressor");
    size_t cap = libdeflate_zlib_compress_bound(c, in_len);
    unsigned char *buf = malloc(cap ? cap : 1);
    size_t n = buf ? libdeflate_zlib_compress(c, in, in_len, buf, cap) : 0;
    libdeflate_free_compressor(c);
    if (!n) {
        free(buf);
        return tz_fail(err, TACOZ_ERR_NOMEM, "compressing the index failed");
    }
    *out = buf;
    *out_len = n;
    return TACOZ_OK;
}

int tz_zlib_decompress(const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len) {
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return -1;
    size_t got = 0;
    enum libdeflate_result r = libdeflate_zlib_decompress(d, in, in_len, out, out_len, &got);
    libdeflate_free_decompressor(d);
    return r == LIBDEFLATE_SUCCESS && got == out_len ? 0 : -1;
}

#else
#include <zlib.h>

int tz_zlib_compress(const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len,
                     tacozip_error *err) {
    if (in_len > 0xFFFFFFFFu) return tz_fail(err, TACOZ_ERR_TOO_LARGE, "index too large");
    uLongf cap = compressBound((uLong)in_len);
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return tz_fail(err, TACOZ_ERR_NOMEM, "out of memory for the index");
    if (compress2(buf, &cap, in, (uLong)in_len, 9) != Z_OK) {
        free(buf);
        return tz_fail(err, TACOZ_ERR_NOMEM, "compressing the index failed");
    }
    *out = buf;
    *out_len = cap;
    return TACOZ_OK;
}

int tz_zlib_decompress(const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len) {
    uLongf got = (uLongf)out_len;
    int r = uncompress(out, &got, in, (uLong)in_len);
    return r == Z_OK && got == out_len ? 0 : -1;
}
#endif
