#!/usr/bin/env python3
"""safetensors_check.py - an independent safetensors reader (Python stdlib only: struct + json).

It shares no code with amuse's C reader, so a file amuse writes is checked against the format
as specified, not against amuse's own understanding of it. It validates the layout (header length,
JSON object, '{' first, header padded to 8 bytes as the reference writer does, every entry's dtype,
shape and data_offsets, byte lengths, exact tiling of the data buffer, string metadata), prints
each tensor's name, dtype, shape and first values, and optionally compares values and metadata:

    safetensors_check.py FILE [--expect NAME=v1,v2,...]... [--expect-meta KEY=VALUE]...

Values are compared bit for bit after rounding the expected decimal to float32. Exit status 0 if
everything holds, 1 otherwise. It does not read non-float dtypes' values.
"""
import json
import math
import struct
import sys

DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
UNPACK = {"F32": "<f", "F64": "<d", "F16": "<e"}


def fail(msg):
    print("safetensors_check: " + msg, file=sys.stderr)
    sys.exit(1)


def check(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail(f"{path}: {len(data)} bytes, shorter than the header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        fail(f"{path}: header length {n} past the end of the file")
    if n % 8 != 0:
        fail(f"{path}: header length {n} is not padded to a multiple of 8")
    raw = data[8:8 + n]
    if not raw.startswith(b"{"):
        fail(f"{path}: header does not start with '{{'")
    if raw.rstrip(b" ") != raw.rstrip():
        fail(f"{path}: header padding is not spaces")
    header = json.loads(raw.decode("utf-8"))
    if not isinstance(header, dict):
        fail(f"{path}: header is not an object")
    buffer = data[8 + n:]
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        fail(f"{path}: __metadata__ is not an object of strings")
    tensors = {}
    spans = []
    for name, info in header.items():
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_SIZES:
            fail(f"{path}: tensor {name!r}: unknown dtype {dtype!r}")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            fail(f"{path}: tensor {name!r}: bad shape {shape}")
        begin, end = offsets
        count = math.prod(shape)
        if end - begin != count * DTYPE_SIZES[dtype]:
            fail(f"{path}: tensor {name!r}: {end - begin} bytes for shape {shape} {dtype}")
        spans.append((begin, end, name))
        tensors[name] = (dtype, shape, buffer[begin:end])
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            fail(f"{path}: tensor {name!r} starts at {begin}, expected {at}")
        at = end
    if at != len(buffer):
        fail(f"{path}: tensors cover {at} of {len(buffer)} buffer bytes")
    return tensors, meta


def main(argv):
    if len(argv) < 2:
        fail("usage: safetensors_check.py FILE [--expect NAME=v,...] [--expect-meta KEY=VALUE]")
    tensors, meta = check(argv[1])
    for name, (dtype, shape, raw) in tensors.items():
        values = []
        if dtype in UNPACK:
            size = DTYPE_SIZES[dtype]
            values = [struct.unpack(UNPACK[dtype], raw[i:i + size])[0]
                      for i in range(0, min(len(raw), 6 * size), size)]
        print(f"{name} {dtype} {shape} {values}")
    for key, value in meta.items():
        print(f"metadata {key!r} = {value!r}")
    args = argv[2:]
    while args:
        flag, spec = args[0], args[1]
        args = args[2:]
        key, _, text = spec.partition("=")
        if flag == "--expect":
            if key not in tensors:
                fail(f"tensor {key!r} is missing")
            dtype, shape, raw = tensors[key]
            if dtype != "F32":
                fail(f"tensor {key!r} is {dtype}, not F32")
            want = b"".join(struct.pack("<f", float(v)) for v in text.split(",")) if text else b""
            if raw != want:
                got = [struct.unpack("<f", raw[i:i + 4])[0] for i in range(0, len(raw), 4)]
                fail(f"tensor {key!r}: values {got} differ from {text}")
        elif flag == "--expect-meta":
            if meta.get(key) != text:
                fail(f"metadata {key!r} is {meta.get(key)!r}, expected {text!r}")
        else:
            fail(f"unknown option {flag}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv)
