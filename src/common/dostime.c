/* dostime.c - Unix time to the DOS date/time of ZIP records. */
#include <time.h>

#include "common.h"

uint32_t tz_dos_datetime(int64_t t, int utc) {
    if (t < 315532800) t = 315532800; /* 1980-01-01, the DOS epoch */
    time_t tt = (time_t)t;
    struct tm tm;
    if (!(utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm))) return (1u << 21) | (1u << 16);
    if (tm.tm_year < 80) tm.tm_year = 80;
    if (tm.tm_year > 207) tm.tm_year = 207;
    uint32_t date = (uint32_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    uint32_t tim = (uint32_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    return (date << 16) | tim;
}
