"""Constants of tacozip: error codes, validation results, header layout.

Values and names are those of the original ``tacozip`` package; codes added
by this implementation follow them.
"""

# Error codes
TACOZ_OK = 0
TACOZ_ERR_IO = -1
TACOZ_ERR_LIBZIP = -2
TACOZ_ERR_INVALID_HEADER = -3
TACOZ_ERR_PARAM = -4
TACOZ_ERR_NOT_FOUND = -5
TACOZ_ERR_EXISTS = -6
TACOZ_ERR_TOO_LARGE = -7
# added by this implementation
TACOZ_ERR_NOMEM = -8
TACOZ_ERR_UNSUPPORTED = -9
TACOZ_ERR_UNSAFE_PATH = -40
TACOZ_ERR_CANCELLED = -41
TACOZ_ERR_CHANGED = -42

# Format detection
TACOZIP_FORMAT_UNKNOWN = 0
TACOZIP_FORMAT_ZIP32 = 1
TACOZIP_FORMAT_ZIP64 = 2

# Validation levels
TACOZIP_VALIDATE_QUICK = 0
TACOZIP_VALIDATE_NORMAL = 1
TACOZIP_VALIDATE_DEEP = 2

# Validation results
TACOZ_VALID = 0
TACOZ_INVALID_NOT_ZIP = -10
TACOZ_INVALID_NO_TACO = -11
TACOZ_INVALID_HEADER_SIZE = -12
TACOZ_INVALID_META_COUNT = -13
TACOZ_INVALID_FILE_SIZE = -14
TACOZ_INVALID_NO_EOCD = -20
TACOZ_INVALID_CD_OFFSET = -21
TACOZ_INVALID_NO_CD_ENTRY = -22
TACOZ_INVALID_REORDERED = -23
TACOZ_INVALID_CRC_LFH = -30
TACOZ_INVALID_CRC_CD = -31
# added by this implementation
TACOZ_INVALID_CD_ENTRY = -24
TACOZ_INVALID_COUNT = -25
TACOZ_INVALID_LFH = -26
TACOZ_INVALID_OVERLAP = -27
TACOZ_INVALID_ZIP64 = -28
TACOZ_INVALID_NAME = -29
TACOZ_INVALID_CRC_MEMBER = -32

# Error messages (the original package's wording for its codes)
ERROR_MESSAGES = {
    TACOZ_ERR_IO: "I/O error (open/read/write/close/flush)",
    TACOZ_ERR_LIBZIP: "An error occurred in libzip",
    TACOZ_ERR_INVALID_HEADER: "Header bytes malformed or unexpected",
    TACOZ_ERR_PARAM: "Invalid argument(s)",
    TACOZ_ERR_NOT_FOUND: "File not found in archive",
    TACOZ_ERR_EXISTS: "File already exists in archive",
    TACOZ_ERR_TOO_LARGE: "Archive too large",
    TACOZ_ERR_NOMEM: "Out of memory",
    TACOZ_ERR_UNSUPPORTED: "Member is compressed, encrypted or otherwise unsupported",
    TACOZ_ERR_UNSAFE_PATH: "Member name would write outside the destination",
    TACOZ_ERR_CANCELLED: "Cancelled",
    TACOZ_ERR_CHANGED: "Source file changed while being read",
    TACOZ_INVALID_NOT_ZIP: "Not a ZIP file (no local header signature at offset 0)",
    TACOZ_INVALID_NO_TACO: "First member is not TACO_HEADER",
    TACOZ_INVALID_HEADER_SIZE: "TACO_HEADER has wrong sizes or name length",
    TACOZ_INVALID_META_COUNT: "TACO_HEADER entry count is greater than 7",
    TACOZ_INVALID_FILE_SIZE: "File too small for the structures it declares",
    TACOZ_INVALID_NO_EOCD: "End of central directory record not found",
    TACOZ_INVALID_CD_OFFSET: "Central directory lies outside the file",
    TACOZ_INVALID_NO_CD_ENTRY: "TACO_HEADER missing from the central directory",
    TACOZ_INVALID_REORDERED: "TACO_HEADER is not the first entry at offset 0",
    TACOZ_INVALID_CRC_LFH: "TACO_HEADER CRC in local header does not match payload",
    TACOZ_INVALID_CRC_CD: "TACO_HEADER CRC in central directory does not match payload",
    TACOZ_INVALID_CD_ENTRY: "Malformed central directory record",
    TACOZ_INVALID_COUNT: "Entry counts of the end records and directory disagree",
    TACOZ_INVALID_LFH: "Local file header missing or inconsistent with the directory",
    TACOZ_INVALID_OVERLAP: "Members overlap each other or the central directory",
    TACOZ_INVALID_ZIP64: "Malformed ZIP64 record",
    TACOZ_INVALID_NAME: "Empty, NUL-containing or duplicate member name",
    TACOZ_INVALID_CRC_MEMBER: "Member data does not match its CRC-32",
}

# TACO Header constants
TACO_HEADER_MAX_ENTRIES = 7
TACO_HEADER_SIZE = 157
TACO_HEADER_NAME = "TACO_HEADER"
TACO_HEADER_NAME_LEN = 11
TACO_HEADER_PAYLOAD_SIZE = 116
