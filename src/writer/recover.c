/* recover.c - rolling back what an interrupted append or update left (the
 * journal itself is common/journal.c). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "../common/common.h"
#include "../source/source.h"

int tacozip_recover(const char *zip_path, int *what, tacozip_error *err) {
    int dummy;
    if (!what) what = &dummy;
    *what = TACOZIP_RECOVERED_NOTHING;
    if (!zip_path) return tz_fail(err, TACOZ_ERR_PARAM, "NULL path");
    char shown[512];
    tz_display_name(zip_path, shown, sizeof shown);
    if (tacozip_is_url(zip_path))
        return tz_fail(err, TACOZ_ERR_PARAM, "%s: only a local archive has a journal to recover", shown);
    int fd;
    int rc = tz_open_regular(zip_path, O_RDWR, &fd, err);
    if (rc == TACOZ_OK) {
        if ((rc = tz_lock_writer(fd, err)) == TACOZ_OK) rc = tz_journal_recover(zip_path, fd, 1, what, err);
        if (close(fd) != 0 && rc == TACOZ_OK) rc = tz_fail_errno(err, TACOZ_ERR_IO, errno, "close");
    }
    return rc ? tz_err_prefix(err, rc, shown) : TACOZ_OK;
}
