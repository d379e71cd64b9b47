-- serve_wrk.lua - wrk script for bench/serve.sh: POSTs one KServe V2 infer request (read from
-- the file named by BODY) with the key in KEY (and Inference-Header-Content-Length: IHCL when set,
-- for the binary extension), and prints a JSON summary line at the end. METHOD=GET (used by
-- bench/scale_serve.sh for the metadata route) sends a GET without the body instead.
local body_file = os.getenv("BODY")
local key = os.getenv("KEY")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()

wrk.method = os.getenv("METHOD") or "POST"
if wrk.method == "POST" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Authorization"] = "Bearer " .. key
-- The KServe binary tensor extension: the body's first IHCL bytes are JSON, the rest the tensor.
local ihcl = os.getenv("IHCL")
if ihcl and ihcl ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = ihcl
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors, e.status, e.timeout))
end
