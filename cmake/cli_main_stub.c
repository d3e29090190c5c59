/* Transition only: python/src/_tacozip.c still registers cli_main, which
 * used to be the command compiled into the extension.  The command is now a
 * separate executable (installed into the environment's bin/), so this
 * placeholder only keeps the extension importable until cli_main is removed
 * from _tacozip.c; CMakeLists.txt stops compiling it by itself then. */
#include <stdio.h>

int tacozip_cli_main(int argc, char **argv);
int tacozip_cli_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fputs("tacozip: the command is the tacozip executable, not part of the extension\n", stderr);
    return 2;
}
