# The library's source files, layer by layer (see src/README.md); the
# top-level CMakeLists.txt includes this file.  Paths are relative to the
# project root.
set(TACOZIP_SOURCES
  # common: byte order, errors, CRC-32, deflate, names, DOS time, I/O, journal, URLs
  src/common/error.c src/common/crc.c src/common/deflate.c src/common/names.c
  src/common/dostime.c src/common/io.c src/common/journal.c src/common/url.c
  # byte sources
  src/source/source.c src/source/file.c src/source/memory.c src/source/callbacks.c src/source/http.c src/source/upload.c
  src/source/http_response.c
  # ZIP records, end records, central directory, fetched spans
  src/zip/records.c src/zip/end.c src/zip/directory.c src/zip/span.c
  # TACO header and index
  src/taco/header.c src/taco/index.c
  # reader and writer
  src/reader/open.c src/reader/read.c src/reader/extract.c src/reader/validate.c
  src/writer/writer.c src/writer/output.c src/writer/plan.c src/writer/stream.c src/writer/create.c src/writer/update.c src/writer/recover.c)
set(TACOZIP_INCLUDE_DIRS ${CMAKE_CURRENT_LIST_DIR})
