/* fuzz_extract.c - libFuzzer harness for extraction.
 *
 * The input is opened as an in-memory archive and extracted, all members,
 * into a fresh directory "out" inside a sandbox directory, once plainly and
 * once again over the result with TACOZIP_EXTRACT_OVERWRITE.  Invariants
 * (a broken one calls abort()): the sandbox holds nothing but "out" (no
 * write outside the destination), nothing under "out" is a symbolic link,
 * no temporary ".part" file is left, a failed extraction leaves no file it
 * created, and codes are negative or 0. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tacozip.h"

static char sandbox[64];
static char out[96];
static int files_seen;

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static int check_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    if (type == FTW_SL || S_ISLNK(st->st_mode)) abort();  /* never a symbolic link */
    if (strstr(path, ".part")) abort();                   /* never a leftover temporary file */
    if (type == FTW_F) files_seen++;
    return 0;
}

/* Only "out" in the sandbox; returns the number of files under it. */
static int check_sandbox(void) {
    DIR *d = opendir(sandbox);
    if (!d) abort();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "out")) continue;
        abort(); /* something was written outside the destination */
    }
    closedir(d);
    files_seen = 0;
    struct stat st;
    if (stat(out, &st) == 0) nftw(out, check_one, 16, FTW_PHYS);
    return files_seen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t empty[1];
    if (!data) data = empty;
    if (!sandbox[0]) {
        snprintf(sandbox, sizeof sandbox, "/tmp/fuzz-extract-XXXXXX");
        if (!mkdtemp(sandbox)) abort();
        snprintf(out, sizeof out, "%s/out", sandbox);
    }
    tacozip_archive *ar = NULL;
    tacozip_error err = TACOZIP_ERROR_INIT;
    int rc = tacozip_open_memory(data, size, 0, &ar, &err);
    if (rc > 0) abort();
    if (rc != TACOZ_OK) return 0;
    rc = tacozip_extract(ar, out, NULL, 0, 0, NULL, NULL, &err);
    if (rc > 0) abort();
    int n = check_sandbox();
    if (rc != TACOZ_OK && n != 0) abort(); /* a failure removes the files it created (out was empty) */
    rc = tacozip_extract(ar, out, NULL, 0, TACOZIP_EXTRACT_OVERWRITE, NULL, NULL, &err);
    if (rc > 0) abort();
    check_sandbox();
    tacozip_close(ar);
    rm_tree(out);
    return 0;
}
