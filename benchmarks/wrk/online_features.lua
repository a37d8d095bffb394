-- wrk script: POST /get-online-features with a random entity batch per request, then a JSON summary on stdout.
-- Settings through environment variables: WRK_VIEW, WRK_FEATURES (comma separated), WRK_USERS (entity count to
-- draw from, ids "user-<n>"), WRK_BATCH (entities per request).
local view = os.getenv("WRK_VIEW")
local features = {}
for name in string.gmatch(os.getenv("WRK_FEATURES"), "[^,]+") do
  table.insert(features, '"' .. view .. ':' .. name .. '"')
end
local users = tonumber(os.getenv("WRK_USERS"))
local batch = tonumber(os.getenv("WRK_BATCH"))
local head = '{"features":[' .. table.concat(features, ",") .. '],"entities":{"user_id":['
local non200 = 0
local fallbacks = 0

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local ids = {}
  for i = 1, batch do
    ids[i] = '"user-' .. math.random(0, users - 1) .. '"'
  end
  return wrk.format("POST", "/get-online-features", {["Content-Type"] = "application/json"},
                    head .. table.concat(ids, ",") .. ']}}')
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
  local served = headers["x-fallbacks"] or headers["X-Fallbacks"]
  if served ~= nil and served ~= "0" then fallbacks = fallbacks + 1 end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local bad, fell = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non200") or 0)
    fell = fell + (thread:get("fallbacks") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_200": %d, "with_fallbacks": %d, "socket_errors": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, bad, fell,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
