#!/usr/bin/env bash
# cli_data.sh - `amuse data samples`: the PNG files it writes hold exactly the t10k images (and,
# with --inverted, 255 minus them), decoded here by an independent stdlib-only PNG reader, and
# the labels it prints are the t10k labels; bad arguments and a missing dataset are clear errors
# that leave no file behind.
#
# usage: bash cli_data.sh <path to amuse> <fixtures dir>
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-data
serve_lib_require_data
DATA=/usr/share/datasets/fashion-mnist

"$AMUSE" data samples --out "$TMP/s" --first 5 --count 3 --inverted >"$TMP/out.txt" 2>"$TMP/err.txt"
check "data samples exits 0" $? "$(cat "$TMP/err.txt")"
"$PYTHON" - "$TMP/s" "$TMP/out.txt" "$DATA" <<'PY'
import gzip, struct, sys, zlib
out, listing, data = sys.argv[1:4]
def png_grey(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, b"", None
    while pos < len(b):
        n, kind = struct.unpack(">I4s", b[pos:pos + 8])
        body = b[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color == 0, (path, depth, color)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], [0] * w
    for y in range(h):
        f, line = raw[y * (w + 1)], list(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            c = prev[x - 1] if x else 0
            p = a + prev[x] - c
            pred = [0, a, prev[x], (a + prev[x]) // 2,
                    min((abs(p - a), 0, a), (abs(p - prev[x]), 1, prev[x]), (abs(p - c), 2, c))[2]][f]
            line[x] = (line[x] + pred) & 255
        rows.append(line)
        prev = line
    return w, h, bytes(sum(rows, []))
with gzip.open(data + "/t10k-images-idx3-ubyte.gz") as f:
    _, n, h, w = struct.unpack(">IIII", f.read(16))
    images = f.read(h * w * 8)
with gzip.open(data + "/t10k-labels-idx1-ubyte.gz") as f:
    labels = f.read()[8:16]
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
lines = [l.rstrip("\n").split("\t") for l in open(listing)]
assert len(lines) == 6, lines
for k, i in enumerate([5, 6, 7]):
    want = images[i * h * w:(i + 1) * h * w]
    for j, (suffix, pix) in enumerate([("", want), ("-inverted", bytes(255 - p for p in want))]):
        path = f"{out}/t10k-{i}{suffix}.png"
        assert png_grey(path) == (w, h, pix), path
        assert lines[2 * k + j] == [path, names[labels[i]]], (lines[2 * k + j], path)
print("ok")
PY
check "t10k-5..7.png and their inverted twins hold the test images; labels as in the IDX file" $? "see above"

"$AMUSE" data samples --out "$TMP/bad" --first 9999 --count 2 >/dev/null 2>"$TMP/err.txt"
[ $? -ne 0 ] && grep -q 'past the 10000 images' "$TMP/err.txt" && [ ! -e "$TMP/bad" ]
check "a range past the end: clear error, nothing written" $? "$(cat "$TMP/err.txt")"
"$AMUSE" data samples --out "$TMP/none" --images "$TMP/missing.gz" >/dev/null 2>"$TMP/err.txt"
[ $? -ne 0 ] && grep -q 'missing.gz' "$TMP/err.txt" && grep -q 'dataset-fashion-mnist' "$TMP/err.txt"
check "a missing images file: names it and the package" $? "$(cat "$TMP/err.txt")"
"$AMUSE" data samples --count 0 >/dev/null 2>"$TMP/err.txt"
[ $? -eq 2 ] && grep -q -- '--count' "$TMP/err.txt"
check "--count 0 is refused" $? "$(cat "$TMP/err.txt")"
"$AMUSE" data samples --help | grep -q 'inverted'
check "data samples --help describes --inverted" $? ""

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
