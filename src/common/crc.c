/* crc.c - CRC-32 (ZIP polynomial) through libdeflate when available (it
 * uses PCLMUL/ARMv8 CRC instructions), else zlib. */
#include "common.h"

#ifdef TACOZIP_HAVE_LIBDEFLATE
#include <libdeflate.h>
uint32_t tz_crc32(uint32_t crc, const void *data, size_t len) { return libdeflate_crc32(crc, data, len); }
#else
#include <limits.h>
#include <zlib.h>
uint32_t tz_crc32(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    uLong c = crc;
    while (len > 0) { /* zlib takes uInt lengths */
        uInt n = len > UINT_MAX ? UINT_MAX : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}
#endif

uint32_t tacozip_crc32(uint32_t crc, const void *data, size_t len) {
    if (!data || len == 0) return crc;
    return tz_crc32(crc, data, len);
}
