#!/usr/bin/env python3
"""make_seeds.py - regenerate the small seed corpora under fuzz/corpus/ (stdlib only; images are
written through ctypes by Debian's libstb, the same stb that decodes them). The other files in
the corpora (hash names) are inputs a 60-second libFuzzer run found that add coverage, kept with
"fuzz_<name> -merge=1 corpus/<name> NEW_DIR"; crashers would be kept the same way. Run from anywhere."""
import ctypes
import ctypes.util
import gzip
import json
import math
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

# ---- whole HTTP requests (fuzz_http: "KEY" becomes the server's admin key; models/default)
def http(method, path, body=b"", headers=(), key=True):
    h = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
    if key:
        h += "Authorization: Bearer KEY\r\n"
    for name, value in headers:
        h += "%s: %s\r\n" % (name, value)
    if body:
        h += "Content-Length: %d\r\n" % len(body)
    return h.encode() + b"\r\n" + body


fp32 = json.dumps({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32",
                               "data": [0.25] * 784}], "outputs": [{"name": "label"}]}).encode()
grey = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
        + struct.pack(">I", zlib.crc32(b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)))
        + struct.pack(">I", 10) + b"IDAT" + zlib.compress(b"\x00\x80")[:10].ljust(10, b"\x00")
        + struct.pack(">I", zlib.crc32(b"IDAT" + zlib.compress(b"\x00\x80")[:10].ljust(10, b"\x00")))
        + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
import base64
put("http", "live", http("GET", "/v2/health/live", key=False))
put("http", "nokey", http("GET", "/v1/models", key=False))
put("http", "models", http("GET", "/v1/models"))
put("http", "metadata", http("GET", "/v2/models/fashion-dnn/versions/1"))
put("http", "infer_fp32", http("POST", "/v2/models/fashion-dnn/infer", fp32, [("Content-Type", "application/json")]))
put("http", "infer_png", http("POST", "/v2/models/fashion-cnn/infer", json.dumps({"inputs": [{
    "name": "input", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(grey).decode()]}]}).encode()))
put("http", "words", http("POST", "/v2/models/words-en/infer", json.dumps({"inputs": [{"name": "words",
    "shape": [2], "datatype": "BYTES", "data": ["king", "queen"]}]}).encode()))
put("http", "embeddings", http("POST", "/v1/embeddings", json.dumps({"model": "words-en",
    "input": ["the king", "a queen"]}).encode()))
put("http", "similar", http("GET", "/v1/words/similar?model=words-en&word=king&k=3"))
put("http", "analogy", http("POST", "/v1/words/analogy", json.dumps({"model": "words-en",
    "positive": ["king", "woman"], "negative": ["man"], "k": 2}).encode()))
put("http", "classify_raw", http("POST", "/v1/images/classify?model=fashion-dnn&top_k=2", grey,
                                 [("Content-Type", "image/png")]))
put("http", "metrics", http("GET", "/metrics"))
put("http", "index", http("POST", "/v2/repository/index", b"{}"))
put("http", "stats", http("GET", "/v2/models/fashion-dnn/stats"))
put("http", "chunked", b"POST /v2/models/fashion-dnn/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer KEY\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"inp\r\n0\r\n\r\n")
put("http", "two_lengths", b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer KEY\r\n"
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
put("http", "pipelined", http("GET", "/v2/health/ready", key=False).replace(b"Connection: close\r\n", b"")
    + http("GET", "/v2", key=True))
put("http", "preflight", http("OPTIONS", "/v1/models", key=False, headers=[("Origin", "http://a.example"),
    ("Access-Control-Request-Method", "POST")]))
put("http", "nul_name", http("GET", "/v2/models/words-en%00x"))
put("http", "http10", b"GET /v2/health/live HTTP/1.0\r\n\r\n")

# ---- multipart bodies (fuzz_multipart: first line the boundary, then the body)
def form(boundary, parts):
    out = b""
    for name, value, extra in parts:
        out += b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name + b"\"" + extra + b"\r\n\r\n" + value + b"\r\n"
    return boundary + b"\n" + out + b"--" + boundary + b"--\r\n"


put("multipart", "file_and_model", form(b"b0undary", [(b"model", b"fashion-dnn", b""), (b"top_k", b"3", b""),
    (b"file", grey, b"; filename=\"x.png\"\r\nContent-Type: image/png")]))
put("multipart", "no_file", form(b"xyz", [(b"model", b"fashion-dnn", b"")]))
put("multipart", "one_char", form(b"X", [(b"file", grey, b"")]))
put("multipart", "truncated", form(b"abc", [(b"file", grey, b"")])[:60])
put("multipart", "long_field", form(b"--q--", [(b"model", b"m" * 400, b"")]))

# ---- query strings (fuzz_query: the text after '?')
for name, q in (("similar", b"model=words-en&word=king&k=5"), ("top_k", b"model=fashion-dnn&top_k=1000"),
                ("escapes", b"model=words%2den&word=%FF%FE%00&k=%31"), ("empty", b""),
                ("repeated", b"model=a&model=words-en&word=&word=queen"), ("plus", b"word=new+york&model=words-en"),
                ("huge_k", b"model=words-en&word=king&k=10000000000000000000")):
    put("query", name, q)

# ---- training recipes (fuzz_recipe)
recipe = {"name": "r", "input": {"type": "image", "color": "grey", "invert": True},
          "labels": ["a", "b"],
          "model": {"class_name": "Sequential", "config": {"name": "r", "layers": [
              {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4, 4, 1]}},
              {"class_name": "Flatten", "config": {}},
              {"class_name": "Dense", "config": {"units": 2, "activation": "softmax"}}]}},
          "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                      "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
          "fit": {"batch_size": 8, "epochs": 1, "validation_split": 0.1, "seed": 3},
          "data": {"format": "idx", "train_images": "a.gz", "train_labels": "b.gz", "test_images": "c.gz"}}
put("recipe", "small", json.dumps(recipe).encode())
recipe["labels"] = ["only one"]
recipe["data"] = {"format": 3}
put("recipe", "bad_sections", json.dumps(recipe).encode())
for f in sorted(os.listdir(os.path.join(HERE, "..", "models"))):
    if f.endswith(".json"):
        with open(os.path.join(HERE, "..", "models", f), "rb") as src:
            put("recipe", "model_" + f[:-5], src.read())
# ---- audio (first byte: bit 0 raw PCM, bits 1-2 its rate, bits 3-4 its channels - 1, bit 6
# target 8 kHz). Small files from tests/fixtures/audio (made by espeak-ng and sox there), and
# damaged ones made here.
AUDIO = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "audio")


def fixture(name):
    with open(os.path.join(AUDIO, name), "rb") as f:
        return f.read()


def wav(rate, channels, bits, fmt_tag, frames, data_size=None, riff_size=None):
    block = channels * bits // 8
    data = frames
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


tone = b"".join(struct.pack("<h", int(8000 * ((i * 7) % 40 - 20) / 20)) for i in range(800))
put("audio", "tone8k_wav", bytes([0]) + fixture("tone8k.wav"))
put("audio", "flac", bytes([0]) + fixture("speech.flac"))
put("audio", "ogg_to_8k", bytes([64]) + fixture("speech.ogg"))
put("audio", "adpcm", bytes([0]) + fixture("speech_adpcm.wav"))
put("audio", "espeak_sizes", bytes([0]) + wav(22050, 1, 16, 1, tone, 0x7FFFF000, 0x7FFFF024))
put("audio", "stereo_float", bytes([0]) + wav(48000, 2, 32, 3,
    b"".join(struct.pack("<ff", math.sin(i / 5.0), float("nan") if i == 300 else 0.25) for i in range(400))))
put("audio", "truncated_header", bytes([0]) + wav(16000, 1, 16, 1, tone)[:30])
put("audio", "raw_16k", bytes([1 | (1 << 1)]) + tone)
put("audio", "raw_stereo_48k", bytes([1 | (3 << 1) | (1 << 3)]) + tone + b"\x01")
put("audio", "text", b"\x00not audio at all")
# ---- fastText .bin models (the first byte: 1 keeps the output matrix, 0 skips it)
def fasttext(words, dim=2, bucket=5, minn=2, maxn=3, version=12, model=2, labels=(), prune=None,
             quant=0, out_rows=None):
    args = struct.pack("<12id", dim, 5, 1, 1, 5, 1, 2, model, bucket, minn, maxn, 100, 1e-4)
    entries = b"".join(w.encode() + b"\0" + struct.pack("<qb", c, 0) for w, c in words)
    entries += b"".join(w.encode() + b"\0" + struct.pack("<qb", c, 1) for w, c in labels)
    pairs = b"".join(struct.pack("<ii", h, r) for h, r in (prune or []))
    dictionary = struct.pack("<iiiqq", len(words) + len(labels), len(words), len(labels), 9,
                             -1 if prune is None else len(prune)) + entries + pairs
    rows = len(words) + (bucket if prune is None else len(prune))
    matrix = struct.pack("<?qq", quant, rows, dim) + struct.pack("<%df" % (rows * dim),
                                                                 *[i / 8 for i in range(rows * dim)])
    out_rows = len(words) if out_rows is None else out_rows
    output = struct.pack("<?qq", 0, out_rows, dim) + bytes(4 * out_rows * dim)
    return struct.pack("<ii", 793712314, version) + args + dictionary + matrix + output


words = [("the", 5), ("cat", 3), ("naïve", 2)]
put("fasttext", "sg_keep", b"\1" + fasttext(words))
put("fasttext", "sg_skip", b"\0" + fasttext(words))
put("fasttext", "no_subwords", b"\1" + fasttext(words, bucket=0, minn=0, maxn=0))
put("fasttext", "supervised_v11", b"\1" + fasttext(words, version=11, model=3,
                                                   labels=[("__label__a", 4)], out_rows=1))
put("fasttext", "pruned", b"\0" + fasttext(words, prune=[(1, 0), (3, 1)]))
put("fasttext", "quantised", b"\0" + fasttext(words, quant=1))
put("fasttext", "truncated", b"\0" + fasttext(words)[:70])


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


# Generation bodies: first byte = (max_tokens cap - 1) / 64 << 3 | encoder-decoder << 2 | format
# (0 completions, 1 chat, 2 KServe generate).
def gen(fmt, body, seq2seq=0, cap=257):
    return bytes([((cap - 1) // 64) << 3 | seq2seq << 2 | fmt]) + json.dumps(body).encode()
put("completions", "completion", gen(0, {"model": "poems-zh", "prompt": "\u767d\u65e5", "max_tokens": 20,
                                         "temperature": 0.8, "top_p": 0.9, "seed": 3, "n": 2,
                                         "stop": ["\n", "\u3002"], "stream": True,
                                         "stream_options": {"include_usage": True}}))
put("completions", "completion_list", gen(0, {"model": "m", "prompt": ["one prompt"]}))
put("completions", "completion_two", gen(0, {"model": "m", "prompt": ["a", "b"]}))
put("completions", "chat", gen(1, {"model": "m", "messages": [
    {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "hi"}, {"role": "user", "content": "again"}],
    "max_completion_tokens": 8}))
put("completions", "chat_seq2seq_no_user", gen(1, {"model": "m", "messages": [
    {"role": "system", "content": "x"}]}, seq2seq=1))
put("completions", "chat_empty", gen(1, {"model": "m", "messages": [{"role": "user", "content": ""}]}))
put("completions", "chat_bad_role", gen(1, {"model": "m", "messages": [{"role": "tool", "content": "x"}]}))
put("completions", "kserve", gen(2, {"text_input": "twinkle", "parameters": {"max_tokens": 5, "seed": 1}}))
put("completions", "kserve_n", gen(2, {"text_input": "x", "parameters": {"n": 2}}))
put("completions", "bad_fields", gen(0, {"model": "m", "prompt": "x", "temperature": -1, "top_p": 0,
                                         "max_tokens": 1e9, "seed": 1.5, "stop": [""] * 5,
                                         "logprobs": 2}))
put("completions", "stop_bad_utf8", bytes([32]) + b'{"model": "m", "prompt": "x", "stop": "\udc80"}')
put("completions", "prompt_bad_utf8", bytes([32]) + b'{"model": "m", "prompt": "ab\ud800"}')
put("completions", "deep", bytes([0]) + b'{"prompt": ' + b"[" * 40 + b"]" * 40 + b"}")

# ---- training states (fuzz_train_state: first byte bit 0 restore_best_weights, bit 1
# ReduceLROnPlateau, bit 2 shuffling; the model is Dense 4 -> 3, Dropout, Dense 3 -> 2, Adam,
# resumed on 8 samples with seed 1). xoshiro256** as core/rng.c, to store a consistent
# shuffle_rng.
M64 = (1 << 64) - 1


def rng_seed(seed):
    s, x = [], seed
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        s.append(z ^ (z >> 31))
    return s


def rng_next(s):
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
    result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
    t = (s[1] << 17) & M64
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 45)
    return result


def rng_shuffle(s, n):
    for i in range(n - 1, 0, -1):
        limit = M64 - M64 % (i + 1)
        while rng_next(s) >= limit:
            pass


def train_state(shuffle, best, epochs=2):
    s = rng_seed(1 ^ 0x73687566666C65)
    for _ in range(epochs if shuffle else 0):
        rng_shuffle(s, 8)
    weights = [("dense/kernel", [4, 3]), ("dense/bias", [3]), ("dense_1/kernel", [3, 2]),
               ("dense_1/bias", [2])]
    header, buf = {}, b""
    for kind in ["weights/", "slot1/", "slot2/"] + (["best_weights/"] if best else []):
        for name, shape in weights:
            n = math.prod(shape)
            data = struct.pack("<%df" % n, *[0.01 * (i + 1) for i in range(n)])
            header[kind + name] = entry("F32", shape, len(buf), len(buf) + len(data))
            buf += data
    hexs = lambda st: " ".join("%016x" % w for w in st)
    history = [{"epoch": e + 1, "loss": 0.9, "accuracy": 0.5, "val_loss": None,
                "val_accuracy": None, "train_seconds": 0.01, "val_seconds": 0,
                "train_samples": 8, "learning_rate": 0.001} for e in range(epochs)]
    meta = {"format": "amuse-training-state", "version": "1", "model": "fuzz",
            "optimizer": "Adam", "iterations": str(2 * epochs), "learning_rate": "0x1.0624dep-10",
            "epoch": str(epochs), "train_samples": "8", "seed": "1", "monitor": "loss",
            "shuffle_rng": hexs(s), "best": "0x1.d99248p-1", "wait": "0",
            "plateau_best": "inf", "plateau_wait": "0", "plateau_cooldown": "0",
            "history": json.dumps(history, separators=(",", ":"))}
    for i, layer in enumerate(["input", "dense", "dropout", "dense_1"]):
        meta["rng/" + layer] = hexs(rng_seed(100 + i))
    header["__metadata__"] = meta
    return safetensors(header, buf)


put("train_state", "plain", bytes([0]) + train_state(False, False))
put("train_state", "shuffled", bytes([4]) + train_state(True, False))
put("train_state", "best_plateau_shuffled", bytes([7]) + train_state(True, True, epochs=5))
put("train_state", "missing_best", bytes([1]) + train_state(False, False))
put("train_state", "not_a_state", bytes([0]) + safetensors(
    {"weights/dense/kernel": entry("F32", [4, 3], 0, 48), "__metadata__": {"format": "x"}},
    bytes(48)))
