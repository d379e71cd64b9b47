#!/usr/bin/env python3
"""make_seeds.py - regenerate the small seed corpora under fuzz/corpus/ (stdlib only; images are
written through ctypes by Debian's libstb, the same stb that decodes them). The other files in
the corpora (hash names) are inputs a 60-second libFuzzer run found that add coverage, kept with
"fuzz_<name> -merge=1 corpus/<name> NEW_DIR"; crashers would be kept the same way. Run from anywhere."""
import ctypes
import ctypes.util
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(kind, name, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(header, buffer=b"", pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + buffer


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ---- safetensors
put("safetensors", "f32_meta", safetensors(
    {"__metadata__": {"format": "pt"}, "w": entry("F32", [2, 2], 0, 16), "b": entry("F32", [2], 16, 24)},
    struct.pack("<6f", 1, -2, 0.5, 3, 0, -0.0)))
put("safetensors", "f16_bf16", safetensors(
    {"h": entry("F16", [3], 0, 6), "b": entry("BF16", [2], 6, 10), "d": entry("F64", [1], 10, 18)},
    struct.pack("<3H2Hd", 0x3C00, 0x0001, 0x7E00, 0x3F80, 0xFF80, 0.1)))
put("safetensors", "ints_scalar_empty", safetensors(
    {"i": entry("I32", [], 0, 4), "e": entry("U8", [0, 5], 4, 4), "z": entry("BOOL", [2], 4, 6)},
    struct.pack("<i2B", -7, 1, 0)))
put("safetensors", "empty_header", safetensors({}))
put("safetensors", "overlap", safetensors(
    {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)))
put("safetensors", "unknown_dtype", safetensors({"a": entry("F4", [1], 0, 1)}, bytes(1)))

# ---- idx
raw_images = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 3) + bytes(range(0, 180, 10))
raw_labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes([9, 2, 1, 1])
put("idx", "images_raw", raw_images)
put("idx", "labels_raw", raw_labels)
put("idx", "images_gz", gzip.compress(raw_images, mtime=0))
put("idx", "labels_gz_two_members", gzip.compress(raw_labels[:6], mtime=0) + gzip.compress(raw_labels[6:], mtime=0))
put("idx", "truncated", raw_images[:-3])
put("idx", "float_type", bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + bytes(4))

# ---- images (first byte of each seed selects the harness's options)
stb = ctypes.CDLL(ctypes.util.find_library("stb") or "libstb.so.0")
tmp = os.path.join(HERE, "corpus", ".tmp_image")


def stb_image(fn, w, h, comp, pixels, *extra):
    if not fn(tmp.encode(), w, h, comp, bytes(pixels), *extra):
        raise SystemExit("stb could not write a seed image")
    with open(tmp, "rb") as f:
        data = f.read()
    os.remove(tmp)
    return data


grey = [(x * 37 + y * 11) % 256 for y in range(9) for x in range(7)]
rgba = [v for i in range(4 * 5) for v in (i * 12 % 256, 255 - i * 12 % 256, 80, 255 if i % 3 else 0)]
put("image", "grey_png", bytes([0x0A]) + stb_image(stb.stbi_write_png, 7, 9, 1, grey, 7))
put("image", "rgba_png", bytes([0x35]) + stb_image(stb.stbi_write_png, 4, 5, 4, rgba, 16))
put("image", "rgb_bmp", bytes([0x1F]) + stb_image(stb.stbi_write_bmp, 7, 3, 3, grey[:63]))
put("image", "grey_jpg", bytes([0x05]) + stb_image(stb.stbi_write_jpg, 7, 9, 1, grey, 80))
gif = (b"GIF89a" + struct.pack("<HH", 2, 2) + bytes([0x80, 0, 0]) + bytes([0, 0, 0, 255, 255, 255])
       + b"," + struct.pack("<HHHH", 0, 0, 2, 2) + b"\x00" + b"\x02\x02\x44\x01\x00" + b";")
put("image", "bw_gif", bytes([0x06]) + gif)
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
bomb = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + struct.pack(">I", 0) + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND")))
put("image", "bomb_png", bytes([0]) + bomb)
put("image", "text", b"\x00not an image at all")

# ---- request bodies (V2 inference, /v1 JSON, embeddings text)
put("serve_body", "v2_fp32", json.dumps({"id": "1", "inputs": [{"name": "input", "shape": [1, 4],
    "datatype": "FP32", "data": [[0.5, 1, -2, 3e-3]]}], "outputs": [{"name": "label"}]}).encode())
put("serve_body", "v2_bytes", json.dumps({"inputs": [{"name": "words", "shape": [2],
    "datatype": "BYTES", "data": ["king", "queen"]}]}).encode())
put("serve_body", "embeddings", json.dumps({"model": "english", "input": ["Don't stop!", "caf\u00e9 KING"],
    "encoding_format": "base64"}).encode())
put("serve_body", "analogy", json.dumps({"model": "english", "a": "man", "b": "king", "c": "woman", "k": 3}).encode())
put("serve_body", "deep", b'{"inputs": ' + b"[" * 40 + b"]" * 40 + b"}")
put("serve_body", "truncated", b'{"model": "english", "input": ["the qu')
put("serve_body", "escapes", b'{"input": "a\\"b\\\\c\\u0000d", "x": [1, {"y": null}]}')

# GloVe: first byte = (vocab size << 2) | reader (0 records file, 1 shuffle, 2 vocabulary file).
def crec(*recs):
    return b"".join(struct.pack("<iid", a, b, v) for a, b, v in recs)
good = crec((1, 2, 2.5), (2, 1, 2.5), (3, 3, 1.0), (1, 3, 0.5))
put("glove", "records", bytes([(3 << 2) | 0]) + good)
put("glove", "records_unchecked", bytes([0]) + good)
put("glove", "records_truncated", bytes([(3 << 2) | 0]) + good[:-5])
put("glove", "records_out_of_range", bytes([(2 << 2) | 0]) + good)
put("glove", "records_nan", bytes([(3 << 2) | 0]) + crec((1, 2, float("nan"))))
put("glove", "shuffle", bytes([(3 << 2) | 1]) + good * 1100)
put("glove", "shuffle_truncated", bytes([(3 << 2) | 1]) + good[:-1])
put("glove", "vocab", bytes([2]) + b"the 10\nof 7\ncat 2\n")
put("glove", "vocab_duplicate", bytes([2]) + b"the 10\nof 7\nthe 2\n")
put("glove", "vocab_bad_utf8", bytes([2]) + b"the 10\no\xc3 7\n")
