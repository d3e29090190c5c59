#!/usr/bin/env bash
# Set up a fresh machine, build tacozip, and run the main job on the bundled
# sample data (examples/sample-data): pack a small ML dataset into a TACO
# archive whose header points at its metadata, each split and
# COLLECTION.json, then read it back the way a remote client would.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
T=$PWD/build/tacozip
OUT=$PWD/build/demo
rm -rf "$OUT" && mkdir -p "$OUT"
ARCHIVE=$OUT/sample.taco

cd examples/sample-data
echo "== create (5 placeholder entries, as tacotoolbox does)"
"$T" create "$ARCHIVE" metadata.jsonl data COLLECTION.json -e 0:0 -e 0:0 -e 0:0 -e 0:0 -e 0:0
echo "== compute the byte range of each part, in archive coordinates"
meta=$("$T" span "$ARCHIVE" --data-only metadata.jsonl)
train=$("$T" span "$ARCHIVE" --prefix data/train/)
val=$("$T" span "$ARCHIVE" --prefix data/val/)
test=$("$T" span "$ARCHIVE" --prefix data/test/)
coll=$("$T" span "$ARCHIVE" --data-only COLLECTION.json)
echo "metadata=$meta train=$train val=$val test=$test COLLECTION.json=$coll"
"$T" update "$ARCHIVE" -e "$meta" -e "$train" -e "$val" -e "$test" -e "$coll"
echo "== header (what one 157-byte range request returns)"
"$T" header "$ARCHIVE"
echo "== members: data offset, size, CRC-32, name"
"$T" ls "$ARCHIVE"
echo "== validate (deep: header CRCs, local headers, every member CRC, overlaps)"
"$T" validate "$ARCHIVE" --level deep
echo "== a client fetches only the val split: bytes $val"
off=${val%%:*}; len=${val##*:}
python3 - "$ARCHIVE" "$off" "$len" <<'PY'
import sys, struct, zlib
path, off, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "rb") as f:        # stands in for one HTTP Range request
    f.seek(off); blob = f.read(length)
pos, n = 0, 0
while pos < len(blob):             # the range alone holds local headers + data
    sig, _, _, _, _, _, crc, csize, _, nlen, xlen = struct.unpack_from("<IHHHHHIIIHH", blob, pos)
    assert sig == 0x04034b50, "expected a local header"
    name = blob[pos + 30: pos + 30 + nlen].decode()
    data = blob[pos + 30 + nlen + xlen: pos + 30 + nlen + xlen + csize]
    assert zlib.crc32(data) == crc
    print(f"  recovered {name} ({csize} bytes, CRC ok)")
    pos += 30 + nlen + xlen + csize; n += 1
print(f"  {n} files from {length} bytes, out of {__import__('os').path.getsize(path)} in the archive")
PY
echo "== extract the val split safely and compare with the sources"
"$T" extract "$ARCHIVE" -C "$OUT/extracted" data/val/tile_000.csv data/val/tile_001.csv
diff -r "$OUT/extracted/data/val" data/val && echo "  identical"
echo "== any ZIP tool reads it"
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print('  zipfile:', len(z.namelist()), 'members, testzip ->', z.testzip())" "$ARCHIVE"
unzip -tq "$ARCHIVE" | sed 's/^/  unzip: /'
echo "== the same archive over HTTP (a local nginx stands in for a CDN or S3)"
NGX=$OUT/nginx
mkdir -p "$NGX/www" "$NGX/tmp"
cp "$ARCHIVE" "$NGX/www/"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$NGX/nginx.conf" <<CONF
daemon on;
pid $NGX/nginx.pid;
error_log $NGX/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 16; }
http {
  access_log $NGX/access.log;
  client_body_temp_path $NGX/tmp; proxy_temp_path $NGX/tmp; fastcgi_temp_path $NGX/tmp;
  uwsgi_temp_path $NGX/tmp; scgi_temp_path $NGX/tmp;
  server { listen 127.0.0.1:$PORT; root $NGX/www; }
}
CONF
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -c "$NGX/nginx.conf" -p "$NGX" -e "$NGX/error.log"
trap 'kill "$(cat "$NGX/nginx.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$NGX/nginx.pid" ] && break; sleep 0.2; done
URL=http://127.0.0.1:$PORT/sample.taco
echo "   tacozip header $URL"
"$T" header "$URL" | sed 's/^/  /'
echo "   tacozip cat $URL COLLECTION.json --stats"
"$T" cat "$URL" COLLECTION.json --stats | sed 's/^/  /'
echo "demo: done, archive at $ARCHIVE"
