# The command's source files (owned by cli/; to be included by the top-level
# CMakeLists.txt as src/sources.cmake is).  Paths are relative to the
# project root.  Use:
#   include(cli/sources.cmake)
#   add_executable(tacozip_cli ${TACOZIP_CLI_SOURCES})
#   target_compile_definitions(tacozip_cli PRIVATE ${TACOZIP_CLI_DEFINITIONS})
# (Until then the build compiles cli/tacozip.c alone, which then includes
# remote_env.c itself; see the end of cli/tacozip.c.)
set(TACOZIP_CLI_SOURCES cli/tacozip.c cli/remote_env.c)
set(TACOZIP_CLI_DEFINITIONS TACOZIP_CLI_SEPARATE_SOURCES=1)
