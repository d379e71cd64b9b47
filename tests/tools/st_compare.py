#!/usr/bin/env python3
"""st_compare.py - compare the F32 tensors of two safetensors files (Python stdlib only).

    st_compare.py A B TOLERANCE

Both files must hold the same tensor names and shapes. For every value the difference must be
within TOLERANCE * (1 + |a|) (absolute near zero, relative for large values). Prints the largest
difference and the tensor it is in; exit status 0 if all values agree, 1 otherwise. It does not
validate the layout (safetensors_check.py does that).
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            continue
        lo, hi = e["data_offsets"]
        count = (hi - lo) // 4
        out[name] = (e["shape"], struct.unpack("<%df" % count, data[base + lo:base + hi]))
    return out


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    a, b, tol = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
    if sorted(a) != sorted(b):
        print("st_compare: tensor names differ: %s vs %s" % (sorted(a), sorted(b)))
        return 1
    worst, where = 0.0, ""
    for name in sorted(a):
        if a[name][0] != b[name][0]:
            print("st_compare: %s: shape %s vs %s" % (name, a[name][0], b[name][0]))
            return 1
        for x, y in zip(a[name][1], b[name][1]):
            d = abs(x - y) / (1.0 + abs(x))
            if d > worst or d != d:
                worst, where = d, name
    if worst == 0:
        print("st_compare: every value equal, tolerance %g" % tol)
    else:
        print("st_compare: largest difference %.3g (in %s), tolerance %g" % (worst, where, tol))
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
