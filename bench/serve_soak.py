#!/usr/bin/python3
"""serve_soak.py - mixed traffic against a running `amuse serve` for a given time (bench/serve.sh
--soak starts the server and calls this). Standard library only.

Traffic, spread over CONNECTIONS client threads with keep-alive connections: V2 inference (FP32
t10k images) on fashion-dnn and fashion-cnn, /v1/images/classify with a PNG, /v1/embeddings and
/v1/words/similar on words-en, /metrics, and bad requests (bad JSON, an unknown model, a wrong
shape, an image over the pixel budget, no key) that must get their 4xx. Every RELOAD_S seconds
one model is reloaded through the admin route (the swap happens under load). Each reply's status
is checked against what that request must get; anything else is an unexpected error.

Per window of WINDOW_S seconds: requests, unexpected errors, p50 and p99 latency, the server's
RSS (/proc/PID/status). Writes one JSON object to OUT: the windows, totals, RSS growth from the
end of the first window (after warm-up) to the end, and the p99 spread across windows.

usage: serve_soak.py PORT PID KEY SECONDS CONNECTIONS OUT
"""
import base64
import gzip
import http.client
import json
import random
import struct
import sys
import threading
import time
import zlib

PORT, PID, KEY = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SECONDS, CONNECTIONS, OUT = float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
WINDOW_S = max(10.0, SECONDS / 30)
RELOAD_S = 120.0 if SECONDS >= 600 else max(20.0, SECONDS / 4)

raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
images = [raw[16 + i * 784:16 + (i + 1) * 784] for i in range(64)]


def png(pixels):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[y * 28:(y + 1) * 28] for y in range(28))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def fp32(i):
    return json.dumps({"inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32",
                                   "data": [b / 255.0 for b in images[i % 64]]}]}).encode()


fp32_bodies = [fp32(i) for i in range(16)]
pngs = [png(images[i]) for i in range(16)]
bomb = (b"GIF89a" + struct.pack("<HHBBB", 8192, 4880, 0, 0, 0) + b"," + struct.pack("<HHHHB", 0, 0, 8192, 4880, 0)
        + b"\x02\x02\x4c\x01\x00;")
words = ["king", "queen", "music", "film", "game", "story", "river", "city"]

# (weight, name, method, path, body, content type, expected statuses, key)
def mix(r):
    i = r.randrange(16)
    w = r.choice(words)
    return r.choices([
        ("v2 fashion-dnn", "POST", "/v2/models/fashion-dnn/infer", fp32_bodies[i], "application/json", (200,), KEY),
        ("v2 fashion-cnn", "POST", "/v2/models/fashion-cnn/infer", fp32_bodies[i], "application/json", (200,), KEY),
        ("classify", "POST", "/v1/images/classify?model=fashion-cnn&top_k=3", pngs[i], "image/png", (200,), KEY),
        ("embeddings", "POST", "/v1/embeddings", json.dumps({"model": "words-en", "input": ["the " + w, w]}).encode(),
         "application/json", (200,), KEY),
        ("similar", "GET", "/v1/words/similar?model=words-en&word=%s&k=5" % w, None, None, (200,), KEY),
        ("metrics", "GET", "/metrics", None, None, (200,), KEY),
        ("bad json", "POST", "/v2/models/fashion-dnn/infer", b'{"inputs": [', "application/json", (400,), KEY),
        ("unknown model", "GET", "/v2/models/no-such-%d" % i, None, None, (404,), KEY),
        ("wrong shape", "POST", "/v2/models/fashion-dnn/infer", json.dumps({"inputs": [{"name": "input",
         "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}).encode(), "application/json", (400,), KEY),
        ("image bomb", "POST", "/v1/images/classify?model=fashion-cnn", bomb, "image/gif", (413,), KEY),
        ("no key", "GET", "/v1/models", None, None, (401,), None),
    ], weights=[20, 20, 15, 15, 10, 2, 3, 3, 3, 2, 2])[0]


lock = threading.Lock()
windows = []  # per window: [latencies], unexpected, requests
unexpected_examples = []
t_start = time.monotonic()
stop = False


def window_of(t):
    return int((t - t_start) / WINDOW_S)


def record(t, latency, ok, what):
    k = window_of(t)
    with lock:
        while len(windows) <= k:
            windows.append({"lat": [], "unexpected": 0, "requests": 0, "rss_mb": None})
        windows[k]["requests"] += 1
        windows[k]["lat"].append(latency)
        if not ok:
            windows[k]["unexpected"] += 1
            if len(unexpected_examples) < 20:
                unexpected_examples.append(what)


def client(seed):
    r = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    while not stop:
        name, method, path, body, ctype, want, key = mix(r)
        headers = {}
        if key:
            headers["Authorization"] = "Bearer " + key
        if ctype:
            headers["Content-Type"] = ctype
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        except Exception as e:  # a dropped connection is an unexpected error
            status, data = 0, repr(e).encode()
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        t1 = time.monotonic()
        ok = status in want
        record(t1, (t1 - t0) * 1e3, ok, "%s: %d %s" % (name, status, data[:160]))


def rss_mb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


reloads = []
threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in range(CONNECTIONS)]
for t in threads:
    t.start()
next_reload = t_start + RELOAD_S
models = ["fashion-dnn", "fashion-cnn", "words-en"]
while time.monotonic() - t_start < SECONDS:
    time.sleep(0.5)
    now = time.monotonic()
    k = window_of(now)
    with lock:
        while len(windows) <= k:
            windows.append({"lat": [], "unexpected": 0, "requests": 0, "rss_mb": None})
        if k > 0 and windows[k - 1]["rss_mb"] is None:
            windows[k - 1]["rss_mb"] = rss_mb()
    if now >= next_reload:
        m = models[len(reloads) % len(models)]
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        c.request("POST", "/v2/repository/models/%s/load" % m, body=b"",
                  headers={"Authorization": "Bearer " + KEY})
        st = c.getresponse().status
        c.close()
        reloads.append({"at_s": round(now - t_start, 1), "model": m, "status": st})
        next_reload += RELOAD_S
stop = True
for t in threads:
    t.join(timeout=60)
end_rss = rss_mb()

rows = []
for i, w in enumerate(windows):
    if not w["requests"]:
        continue
    lat = sorted(w["lat"])
    rows.append({"window": i, "from_s": round(i * WINDOW_S, 1), "requests": w["requests"],
                 "unexpected": w["unexpected"], "p50_ms": round(lat[len(lat) // 2], 2),
                 "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
                 "rss_mb": round(w["rss_mb"] if w["rss_mb"] is not None else end_rss, 1)})
full = [r for r in rows if r["from_s"] + WINDOW_S <= SECONDS]  # the last window may be partial
base_rss = full[0]["rss_mb"] if full else end_rss
p99s = [r["p99_ms"] for r in full[1:]] or [r["p99_ms"] for r in rows]
out = {"seconds": SECONDS, "connections": CONNECTIONS, "window_s": WINDOW_S,
       "requests": sum(r["requests"] for r in rows),
       "unexpected_errors": sum(r["unexpected"] for r in rows),
       "unexpected_examples": unexpected_examples, "reloads": reloads,
       "rss_after_first_window_mb": base_rss, "rss_end_mb": round(end_rss, 1),
       "rss_growth_percent": round(100.0 * (end_rss - base_rss) / base_rss, 2) if base_rss else None,
       "p99_ms_min": min(p99s), "p99_ms_max": max(p99s),
       "p99_ms_median": sorted(p99s)[len(p99s) // 2], "windows": rows}
tmp = OUT + ".tmp"
json.dump(out, open(tmp, "w"), indent=1)
__import__("os").replace(tmp, OUT)
print("serve soak: %d requests in %.0f s at %d connections, %d unexpected errors, %d reloads, "
      "RSS %.1f -> %.1f MB (%+.2f%%), p99 per %.0f s window %.1f..%.1f ms (median %.1f)" % (
          out["requests"], SECONDS, CONNECTIONS, out["unexpected_errors"], len(reloads), base_rss,
          end_rss, out["rss_growth_percent"] or 0, WINDOW_S, out["p99_ms_min"], out["p99_ms_max"],
          out["p99_ms_median"]))
sys.exit(1 if out["unexpected_errors"] else 0)
