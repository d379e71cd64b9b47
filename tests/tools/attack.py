#!/usr/bin/python3
"""attack.py - the attacks of issue 8 (and a check of the binary tensor extension), replayed
against a running `amuse serve` on 127.0.0.1
(tests/cli_serve_attack.sh starts the server and the keys). Standard library only. Prints one
"ok ..." or "FAIL ..." line per check and a last line "N passed, M failed".

Every socket has a timeout and every loop a bound; only loopback addresses are used (several
127.0.0.x source addresses stand for several clients). Waits are for conditions (a connection
closing, a status arriving), with generous bounds for a busy 2-core machine or ASan.

usage: attack.py PORT PID ADMIN_KEY ACME_KEY OTHER_KEY RSS_LIMIT_MB
"""
import base64
import json
import socket
import struct
import sys
import threading
import time
import zlib

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
ADMIN, ACME, OTHER = sys.argv[3], sys.argv[4], sys.argv[5]
RSS_LIMIT_MB = int(sys.argv[6])
passed = failed = 0
peak_rss = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name, flush=True)
    else:
        failed += 1
        print("FAIL %s: %s" % (name, detail), flush=True)


def rss_mb():
    global peak_rss
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                mb = int(line.split()[1]) // 1024
                peak_rss = max(peak_rss, mb)
                return mb
    return 0


def connect(src="127.0.0.1", timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", PORT))
    return s


def read_all(s, limit=1 << 22):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def raw(data, src="127.0.0.1", timeout=30):
    """Send bytes, read until the server closes (Connection: close) or timeout."""
    s = connect(src, timeout)
    try:
        s.sendall(data)
        return read_all(s)
    finally:
        s.close()


def status_of(reply):
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def body_of(reply):
    return reply.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in reply else b""


def request(method, path, key=None, body=None, src="127.0.0.1", ctype="application/json",
            timeout=60, extra=""):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
    if key:
        head += "Authorization: Bearer %s\r\n" % key
    if body is not None:
        head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body))
    head += extra + "\r\n"
    reply = raw(head.encode() + (body or b""), src, timeout)
    return status_of(reply), body_of(reply)


def health(src="127.0.0.1"):
    t = time.monotonic()
    st, _ = request("GET", "/v2/health/live", src=src, timeout=30)
    return st, time.monotonic() - t


def closed_within(s, seconds):
    """Wait until the server closes s (EOF or reset); True if it did within seconds."""
    end = time.monotonic() + seconds
    s.settimeout(0.2)
    while time.monotonic() < end:
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


# ------------------------------------------------------------------ images


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16_rgba(w, h):
    """A w x h 16-bit RGBA PNG of zeros: tiny on the wire, 8 bytes a pixel once inflated."""
    row = b"\x00" + b"\x00" * (w * 8)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
            + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b""))


def gif(w, h):
    """A GIF that declares w x h pixels in 35 bytes."""
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x02\x02\x4c\x01\x00;")


def jpeg_grey(w, h):
    """A w x h flat grey baseline JPEG written by hand: every 8 x 8 block is two bits (a DC
    difference of 0, then end of block), so a large image is a small file that costs a full
    decode."""
    def seg(marker, body):
        return struct.pack(">HH", marker, len(body) + 2) + body
    bits = 2 * ((w + 7) // 8) * ((h + 7) // 8)
    data = b"\x00" * (bits // 8) + (bytes([0xFF >> (bits % 8)]) if bits % 8 else b"")
    return (b"\xff\xd8" + seg(0xFFDB, b"\x00" + b"\x01" * 64)
            + seg(0xFFC0, struct.pack(">BHHBBBB", 8, h, w, 1, 1, 0x11, 0))
            + seg(0xFFC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
            + seg(0xFFC4, b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00")
            + seg(0xFFDA, b"\x01\x01\x00\x00\x3f\x00") + data + b"\xff\xd9")


def v2_images(images):
    return json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [len(images)],
                                   "data": [base64.b64encode(i).decode() for i in images]}]}).encode()


def parallel(fn, n):
    out = [None] * n

    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # reported by the caller's check
            out[i] = ("error", repr(e))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss_mb()
        time.sleep(0.05)
    for t in threads:
        t.join()
    return out


def attacks_images():
    infer = "/v2/models/fashion/infer"
    t = time.monotonic()
    st, body = request("POST", infer, ACME, v2_images([gif(8192, 4880)] * 32))
    took = time.monotonic() - t
    check("GIF bomb x32 (8192x4880 declared in 35 bytes each) -> 413 on headers alone",
          st == 413 and b"budget" in body and took < 10, "%d in %.1f s: %s" % (st, took, body[:200]))
    st, body = request("POST", infer, ACME, v2_images([png16_rgba(4096, 4096)]))
    check("16-bit RGBA PNG 4096x4096 -> 413 (over the model's pixel budget)", st == 413,
          "%d: %s" % (st, body[:200]))
    many = v2_images([png16_rgba(2048, 2048)] * 5)
    st, body = request("POST", infer, ACME, many)
    check("five 2048x2048 images in one request -> 413 (max_request_pixels)",
          st == 413 and b"max_request_pixels" in body, "%d: %s" % (st, body[:200]))
    # Within budget: decoded on the pool, memory bounded, health answers meanwhile.
    one = v2_images([png16_rgba(2048, 2048)])
    base = rss_mb()
    results = []

    def probe_health():
        time.sleep(0.2)  # (let the decodes start; the check holds either way)
        results.append(health("127.0.0.9"))
    ht = threading.Thread(target=probe_health)
    ht.start()
    out = parallel(lambda i: request("POST", infer, ACME, one, timeout=120), 12)
    ht.join()
    codes = [o[0] if isinstance(o, tuple) else o for o in out]
    check("12 concurrent 2048x2048 16-bit PNGs (inside the budget) all answered 200 or 503/504",
          all(c in (200, 503, 504) for c in codes), str(codes))
    check("health answered while they decoded (%.2f s)" % results[0][1],
          results and results[0][0] == 200 and results[0][1] < 5, str(results))
    check("RSS during the decodes stayed under %d MB (base %d, peak %d)" % (RSS_LIMIT_MB, base, peak_rss),
          peak_rss < RSS_LIMIT_MB, "peak %d MB" % peak_rss)
    st, body = request("POST", infer, ACME, v2_images([b"GIF89a\x10\x00"]))
    check("truncated GIF -> 400", st == 400, "%d %s" % (st, body[:200]))
    # JPEG (libjpeg-turbo): a header declaring 8192 x 4880 costs a header read and a 413; a
    # 2048 x 2048 file decodes; the same file cut short is a 400, not a grey-filled image.
    st, body = request("POST", infer, ACME, v2_images([jpeg_grey(8192, 4880)[:600]] * 8))
    check("JPEG bomb x8 (8192x4880 declared) -> 413 on headers alone",
          st == 413 and b"budget" in body, "%d: %s" % (st, body[:200]))
    whole = jpeg_grey(2048, 2048)
    st, body = request("POST", infer, ACME, v2_images([whole]), timeout=120)
    check("2048x2048 JPEG (inside the budget) -> 200", st == 200, "%d: %s" % (st, body[:200]))
    st, body = request("POST", infer, ACME, v2_images([whole[:len(whole) // 2]]))
    check("truncated JPEG -> 400 naming the reason",
          st == 400 and b"Premature end of JPEG file" in body, "%d %s" % (st, body[:200]))


def attacks_keyless_bodies():
    base = rss_mb()
    socks = []
    replies = []
    for i in range(50):
        s = connect("127.0.0.%d" % (20 + i % 5))
        s.sendall(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 16000000\r\n\r\n" + b"[" * 65536)
        socks.append(s)
    for s in socks:
        replies.append(status_of(read_all(s, 4096)))
        s.close()
    s = connect()
    s.sendall(b"POST /no/such/route HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n\r\n")
    st = status_of(read_all(s, 4096))
    s.close()
    check("keyless oversized body on an unknown path: 401 like any other (%d)" % st, st == 401)
    grew = rss_mb() - base
    check("50 keyless 16 MB bodies: 401 before the body is read", replies.count(401) == 50,
          str(sorted(set(replies))))
    check("... and RSS grew by %d MB (< 64)" % grew, grew < 64, "base %d" % base)


def attacks_slow_clients():
    # slowloris: a header line now and then, never the end of the headers
    socks = [connect("127.0.0.%d" % (30 + i % 3)) for i in range(30)]
    for s in socks:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    st, took = health("127.0.0.40")
    check("health answered while 30 slow-header connections are open (%.2f s)" % took,
          st == 200 and took < 5, "%d" % st)
    alive = list(socks)
    while alive and time.monotonic() - t0 < 15:
        for s in list(alive):
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                alive.remove(s)
                continue
            if closed_within(s, 0.05):
                alive.remove(s)
        time.sleep(0.3)
    took = time.monotonic() - t0
    check("slow-header connections closed by the header deadline (%.1f s)" % took, not alive,
          "%d still open" % len(alive))
    for s in socks:
        s.close()

    # a body that trickles in: 408 or closed by the body deadline
    s = connect()
    s.sendall(("POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n" % ACME).encode())
    t0 = time.monotonic()
    reply = b""
    s.settimeout(0.5)
    while time.monotonic() - t0 < 20:
        try:
            s.sendall(b" " * 10)
        except OSError:
            break
        try:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            break
    took = time.monotonic() - t0
    s.close()
    check("trickled body ended by the body deadline (%.1f s, status %d)" % (took, status_of(reply)),
          took < 15 and status_of(reply) in (0, 408), reply[:120])

    # one client address may hold max_connections_per_client (12)
    held = [connect("127.0.0.50") for _ in range(12)]
    extra = [connect("127.0.0.50") for _ in range(4)]
    refused = sum(closed_within(s, 3) for s in extra)
    check("connections past the per-client limit are closed (%d of 4)" % refused, refused == 4)
    st, took = health("127.0.0.51")
    check("another client still gets health (%.2f s)" % took, st == 200)
    for s in held + extra:
        s.close()

    # the pool full (max_connections 40) from many addresses: health still answers, infer 503
    full = []
    for i in range(40):
        full.append(connect("127.0.0.%d" % (60 + i // 10)))
    time.sleep(0)  # (connections are open once connect returns)
    st, took = health("127.0.0.70")
    check("health answered with every ordinary slot taken (%.2f s)" % took, st == 200, "%d" % st)
    st, body = request("GET", "/v2/models/fashion", ACME, src="127.0.0.71")
    check("... other routes answer 503 then", st == 503, "%d %s" % (st, body[:120]))
    for s in full:
        s.close()


def attacks_http():
    def one(data):
        return raw(data)
    r = one(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ACME.encode()
            + b"\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n{}   ")
    check("two different Content-Length headers -> 400", status_of(r) == 400, r[:200])
    r = one(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ACME.encode()
            + b"\r\nContent-Length: 12abc\r\n\r\n{}")
    # libmicrohttpd 0.9.75 answers this itself, before any callback, and writes its status line
    # twice (docs/serve.md): checked here is that it is a 400 and the connection ends.
    check("invalid Content-Length -> 400, connection closed", status_of(r) == 400, r[:300])
    r = one(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ACME.encode()
            + b"\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    check("Content-Length with Transfer-Encoding -> 400", status_of(r) == 400, r[:200])
    r = one(b"GET /v2/health/live HTTP/1.1\r\nConnection: close\r\n\r\n")
    check("HTTP/1.1 without Host -> 400", status_of(r) == 400, r[:200])
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    r = one(b"POST /v2/models/fashion/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ACME.encode()
            + b"\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n" + body)
    check("chunked body over max_body_bytes -> 413 on the wire", status_of(r) == 413, r[:200])


def attacks_small():
    st, _ = request("GET", "/v2/models/words-en%00x", ACME)
    check("model name with %00 -> 404", st == 404, str(st))
    st, _ = request("GET", "/v2/models/fashion/versions/1", ACME)
    check("version 1 -> 200", st == 200, str(st))
    for v in ("01", "+1", "1x", " 1"):
        st, _ = request("GET", "/v2/models/fashion/versions/" + v.replace(" ", "%20"), ACME)
        check("version '%s' -> 404" % v, st == 404, str(st))
    big = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784],
                                  "data": [0.5] * 783 + [1e39]}]}).encode()
    st, body = request("POST", "/v2/models/fashion/infer", ACME, big)
    check("FP32 value 1e39 -> 400", st == 400 and b"FP32 range" in body, "%d %s" % (st, body[:200]))
    ok = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784],
                                 "data": [0.5] * 784}]}).encode()
    st, body = request("POST", "/v2/models/fashion/infer", ACME, ok + b" trailing")
    check("text after the JSON body -> 400", st == 400 and b"after" in body, "%d %s" % (st, body[:200]))
    st, body = request("POST", "/v2/models/fashion/infer", ACME, ok + b" \n")
    check("whitespace after the JSON body is fine", st == 200, "%d %s" % (st, body[:200]))
    st, body = request("GET", "/v1/words/similar?model=words&word=%FF%FEabc", ACME)
    try:
        json.loads(body.decode("utf-8"))
        valid = True
    except (UnicodeDecodeError, ValueError):
        valid = False
    check("invalid UTF-8 in a query string: the error is valid UTF-8 JSON (%d)" % st, valid, body[:200])
    st, body = request("POST", "/v1/words/analogy", ACME,
                       json.dumps({"model": "words", "positive": ["king"], "k": 1e19}).encode())
    check("k = 1e19 -> 400", st == 400 and b"k must" in body, "%d %s" % (st, body[:200]))


def binary_request(header, binary):
    j = json.dumps(header).encode()
    return j + binary, "Inference-Header-Content-Length: %d\r\n" % len(j)


def binary_extension():
    """Not an attack: the KServe binary tensor extension gives the same answers as JSON, and its
    malformed forms are 400s."""
    infer = "/v2/models/fashion/infer"
    values = [((i * 37) % 256) / 255.0 for i in range(784)]
    st, body_json = request("POST", infer, ACME, json.dumps({"inputs": [{"name": "input", "shape": [1, 784],
                                                                          "datatype": "FP32", "data": values}]}).encode())
    raw_floats = struct.pack("<784f", *values)
    b, extra = binary_request({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32",
                                           "parameters": {"binary_data_size": len(raw_floats)}}]}, raw_floats)
    st2, body_bin = request("POST", infer, ACME, b, extra=extra)
    pj = json.loads(body_json)["outputs"][0]["data"] if st == 200 else None
    pb = json.loads(body_bin)["outputs"][0]["data"] if st2 == 200 else None
    check("binary FP32 input: 200 and the same probabilities as JSON", st == st2 == 200 and pj == pb,
          "%d %d %s" % (st, st2, body_bin[:200]))
    img = png16_rgba(28, 28)
    elems = struct.pack("<I", len(img)) + img
    b, extra = binary_request({"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES",
                                           "parameters": {"binary_data_size": len(elems)}}],
                               "outputs": [{"name": "label"}]}, elems)
    st, body_bin = request("POST", infer, ACME, b, extra=extra)
    st2, body_json = request("POST", infer, ACME, json.dumps({"inputs": [{"name": "input", "shape": [1],
        "datatype": "BYTES", "data": [base64.b64encode(img).decode()]}], "outputs": [{"name": "label"}]}).encode())
    check("binary BYTES image (raw PNG bytes): 200, same label as base64 JSON",
          st == st2 == 200 and json.loads(body_bin)["outputs"] == json.loads(body_json)["outputs"],
          "%d %d %s" % (st, st2, body_bin[:200]))
    words = b"".join(struct.pack("<I", len(w)) + w for w in (b"king", b"queen"))
    b, extra = binary_request({"inputs": [{"name": "words", "shape": [2], "datatype": "BYTES",
                                           "parameters": {"binary_data_size": len(words)}}]}, words)
    st, body = request("POST", "/v2/models/words/infer", ACME, b, extra=extra)
    check("binary BYTES words: 200", st == 200 and b'"data": [1,2,3,4,1,2,3,5]' in body, "%d %s" % (st, body[:200]))
    header = {"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32",
                          "parameters": {"binary_data_size": len(raw_floats)}}]}
    bad = [
        ("sizes that do not add up", *binary_request(header, raw_floats + b"xx")),
        ("too few bytes for the shape", *binary_request(dict(header, inputs=[dict(header["inputs"][0],
            parameters={"binary_data_size": 8})]), raw_floats[:8])),
        ("a NaN", *binary_request(header, struct.pack("<f", float("nan")) + raw_floats[4:])),
        ("a header length past the body", json.dumps(header).encode(), "Inference-Header-Content-Length: 99999\r\n"),
        ("a header length that is not a number", json.dumps(header).encode(), "Inference-Header-Content-Length: 1e3\r\n"),
        ("binary_data_size without the header", json.dumps(header).encode(), ""),
    ]
    for name, body, extra in bad:
        st, reply = request("POST", infer, ACME, body, extra=extra)
        check("binary extension, %s -> 400" % name, st == 400, "%d %s" % (st, reply[:200]))


def attacks_metrics():
    for i in range(300):
        request("GET", "/v2/models/made-up-%d" % i, ACME)
    request("GET", "/v2/models/fashion", ACME)
    st, body = request("GET", "/metrics", ADMIN)
    text = body.decode()
    check("metrics: made-up model names get no series", "made-up" not in text, text[:200])
    check("metrics: the real model still has its own series",
          'model="fashion",endpoint="/v2/models/{model}"' in text, "")


def attacks_tenants():
    st, body = request("GET", "/v1/models", ACME)
    check("tenant acme lists its own model 'secret'", st == 200 and b'"secret"' in body, body[:300])
    st, body = request("GET", "/v1/models", OTHER)
    check("tenant other does not see 'secret'", st == 200 and b"secret" not in body and b"fashion" in body,
          body[:300])
    # Every route that names a model: tenant other gets the very bytes a missing model gets (the
    # wall is checked before the kind), tenant acme gets past the wall (200, or the 400 of a
    # word-vector model on a route that needs another kind).
    boundary = "b0undary"
    form = ("--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nsecret\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\nRIFF\r\n--%s--\r\n" % (boundary, boundary, boundary)).encode()
    multipart = "multipart/form-data; boundary=" + boundary
    png = b"\x89PNG\r\n\x1a\n" + bytes(32)
    for method, path, payload, ctype, acme_wants in (
            ("GET", "/v2/models/secret", None, None, 200),
            ("GET", "/v2/models/secret/ready", None, None, 200),
            ("POST", "/v2/models/secret/infer", json.dumps({"inputs": [{"name": "words", "datatype": "BYTES",
                                                                         "shape": [1], "data": ["king"]}]}).encode(),
             None, 200),
            ("GET", "/v1/models/secret", None, None, 200),
            ("POST", "/v1/embeddings", json.dumps({"model": "secret", "input": "king"}).encode(), None, 200),
            ("GET", "/v1/words/similar?model=secret&word=king", None, None, 200),
            ("POST", "/v1/words/analogy", json.dumps({"model": "secret", "positive": ["queen"]}).encode(), None,
             200),
            ("POST", "/v1/images/classify?model=secret", png, "image/png", "POST /v1/images/classify"),
            ("POST", "/v1/text/sentiment", json.dumps({"model": "secret", "input": "fine"}).encode(), None,
             "POST /v1/text/sentiment"),
            ("POST", "/v1/audio/transcriptions", form, multipart, "POST /v1/audio/transcriptions"),
            ("GET", "/v1/recommendations?model=secret&user=u1", None, None, "GET /v1/recommendations"),
            ("GET", "/v1/items/i1/similar?model=secret", None, None, "GET /v1/items/{id}/similar"),
            ("GET", "/v1/models/secret/users", None, None, "GET /v1/models/{model}/users"),
            ("POST", "/v1/completions", json.dumps({"model": "secret", "prompt": "tw"}).encode(), None,
             "POST /v1/completions"),
            ("POST", "/v1/chat/completions", json.dumps({"model": "secret", "messages": [
                {"role": "user", "content": "tw"}]}).encode(), None,
             "POST /v1/chat/completions"),
            ("POST", "/v2/models/secret/generate", json.dumps({"text_input": "tw"}).encode(), None,
             "POST /v2/models/{model}/generate")):
        kw = {"ctype": ctype} if ctype else {}
        st_other, body_other = request(method, path, OTHER, payload, **kw)
        st_acme, body_acme = request(method, path, ACME, payload, **kw)
        st_none, body_none = request(method, path.replace("secret", "nosuchmodel"), OTHER,
                                     payload and payload.replace(b"secret", b"nosuchmodel"), **kw)
        same = body_other.replace(b"secret", b"X") == body_none.replace(b"nosuchmodel", b"X")
        check("%s %s: other 404 like a missing model, acme %d" % (method, path, st_acme),
              st_other == 404 and b"model 'secret' is not loaded (GET /v1/models lists the models)" in body_other
              and st_acme == (200 if acme_wants == 200 else 400) and same,
              "%d %s / %s / acme %s" % (st_other, body_other[:160], body_none[:160], body_acme[:160]))
        if acme_wants != 200:  # the route's pattern: the one that needs another kind
            check("%s %s: acme is told the kind (word2vec) and the route" % (method, path),
                  b"model 'secret' is a word2vec model, not " in body_acme
                  and (acme_wants + " needs one").encode() in body_acme, body_acme[:200])
    st, body = request("GET", "/metrics", ADMIN)
    check("metrics count requests per tenant", b'amuse_tenant_requests_total{tenant="acme"}' in body
          and b'amuse_tenant_requests_total{tenant="other"}' in body, "")


def main():
    only = sys.argv[7].split(",") if len(sys.argv) > 7 else None
    groups = [("images", attacks_images), ("keyless", attacks_keyless_bodies), ("slow", attacks_slow_clients),
              ("http", attacks_http), ("small", attacks_small), ("metrics", attacks_metrics),
              ("tenants", attacks_tenants), ("binary", binary_extension)]
    for name, fn in groups:
        if only and name not in only:
            continue
        try:
            fn()
        except Exception as e:
            check("attack group %s ran to its end" % name, False, repr(e))
        st, took = health()
        check("after %s: the server answers health (%.2f s)" % (name, took), st == 200, str(st))
    rss = rss_mb()
    check("RSS now %d MB, peak %d MB (< %d)" % (rss, peak_rss, RSS_LIMIT_MB), peak_rss < RSS_LIMIT_MB)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
