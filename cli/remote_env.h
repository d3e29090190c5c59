/* remote_env.h - the remote settings of the tacozip command, taken from the
 * environment (AWS_*, TACOZIP_HTTP_*, CA bundle variables).  The library
 * reads no environment variables: the command maps them here onto the
 * library's tacozip_remote_options and refuses malformed values. */
#ifndef TACOZIP_CLI_REMOTE_ENV_H
#define TACOZIP_CLI_REMOTE_ENV_H

#include <stddef.h>

#include "tacozip.h"

/*
 * cli_remote_options_from_env() fills "o" from the environment: the
 * library's defaults, then every variable that is set and not empty.
 * Strings stored in "o" point into the environment (valid for the run).
 *
 * Returns 0; or -1 with a sentence naming the variable and what is wrong
 * with its value in "errbuf" ("cap" bytes, always NUL-terminated), e.g.
 * "TACOZIP_HTTP_RETRIES='abc' is not a whole number from 0 to 100".
 */
int cli_remote_options_from_env(tacozip_remote_options *o, char *errbuf, size_t cap);

#endif
