#!/usr/bin/env python3
"""generate_clients.py - C concurrent streaming clients against amuse serve's /v1/completions
(bench/generate.sh runs it). Each client sends R requests one after another (stream: true,
max_tokens M, its own seed) and times, per request, the first token (request sent -> first
`data:` event with text) and the tokens that follow. Prints one JSON object: ttft p50/p99 in ms,
tokens/s per stream (median over requests: tokens after the first / time from the first to the
last), and tokens/s in total (all tokens / wall time of the run).
usage: generate_clients.py HOST PORT KEY MODEL CLIENTS REQUESTS MAX_TOKENS
Standard library only."""
import http.client
import json
import sys
import threading
import time


def one(host, port, key, model, max_tokens, seed):
    body = json.dumps({"model": model, "prompt": "twinkle twinkle", "max_tokens": max_tokens,
                       "seed": seed, "temperature": 1, "stream": True})
    conn = http.client.HTTPConnection(host, port, timeout=120)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body,
                 {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("status %d: %s" % (resp.status, resp.read()[:200]))
    first = last = None
    tokens = 0
    for line in resp:
        if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
            continue
        ev = json.loads(line[6:])
        if any(c.get("text") for c in ev["choices"]):
            now = time.perf_counter()
            tokens += 1
            if first is None:
                first = now
            last = now
    conn.close()
    return first - t0, tokens, last - first


def main():
    host, port, key, model = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    clients, requests, max_tokens = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    results, errors = [], []
    lock = threading.Lock()

    def client(c):
        for r in range(requests):
            try:
                got = one(host, port, key, model, max_tokens, c * 1000 + r)
                with lock:
                    results.append(got)
            except Exception as e:  # reported, not hidden
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ttft = sorted(r[0] * 1000 for r in results)
    rates = sorted((r[1] - 1) / r[2] for r in results if r[1] > 1 and r[2] > 0)

    def pct(v, p):
        return round(v[min(len(v) - 1, int(p / 100 * len(v)))], 2) if v else None

    print(json.dumps({
        "clients": clients, "requests": len(results), "errors": len(errors),
        "first_error": errors[0] if errors else None, "max_tokens": max_tokens,
        "ttft_ms_p50": pct(ttft, 50), "ttft_ms_p99": pct(ttft, 99),
        "tokens_per_s_per_stream": pct(rates, 50),
        "tokens_per_s_total": round(sum(r[1] for r in results) / wall, 1),
    }))


if __name__ == "__main__":
    main()
