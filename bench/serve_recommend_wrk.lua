-- serve_recommend_wrk.lua - wrk script for bench/serve.sh --recommend: GETs
-- /v1/recommendations?model=movielens&user=U&k=10 for a user U drawn at random from 1..USERS
-- (MovieLens ids; a few requests also carry a like), with the key in KEY, and prints the same JSON
-- summary line as serve_wrk.lua.
local key = os.getenv("KEY")
local users = tonumber(os.getenv("USERS") or "671")
local model = os.getenv("MODEL") or "movielens"
local counter = 0

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

function request()
  counter = counter + 1
  local path = string.format("/v1/recommendations?model=%s&user=%d&k=10", model,
                             math.random(1, users))
  if counter % 10 == 0 then
    path = path .. "&liked=318,2571"
  end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. key})
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
