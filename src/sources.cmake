# The library's source files (owned by src/; the top-level CMakeLists.txt
# includes this file).  Paths are relative to the project root.
set(TACOZIP_SOURCES
  src/archive.c src/crc.c src/error.c src/extract.c src/header.c src/index.c src/names.c
  src/remote.c src/source.c src/validate.c src/writer.c src/zipread.c)
set(TACOZIP_INCLUDE_DIRS ${CMAKE_CURRENT_LIST_DIR})
