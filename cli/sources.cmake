# The command's source files (owned by cli/; the top-level CMakeLists.txt
# includes this file as it does src/sources.cmake).  Paths are relative to
# the project root.
set(TACOZIP_CLI_SOURCES cli/tacozip.c cli/remote_env.c)
