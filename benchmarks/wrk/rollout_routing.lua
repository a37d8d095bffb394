-- wrk script for benchmarks/rollout_routing.py: POST /get-online-features by contract name (no version) for a random
-- batch of users "user-%05d", counting the entities each major served (x-served-versions) and non-200 answers.
-- Settings through environment variables: WRK_CONTRACT, WRK_FEATURES (comma separated), WRK_USERS, WRK_BATCH.
local contract = os.getenv("WRK_CONTRACT")
local features = {}
for name in string.gmatch(os.getenv("WRK_FEATURES"), "[^,]+") do
  table.insert(features, '"' .. contract .. ':' .. name .. '"')
end
local users = tonumber(os.getenv("WRK_USERS"))
local batch = tonumber(os.getenv("WRK_BATCH"))
local head = '{"features":[' .. table.concat(features, ",") .. '],"entities":{"user_id":['
non200 = 0
major1 = 0
major2 = 0

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local ids = {}
  for i = 1, batch do
    ids[i] = string.format('"user-%05d"', math.random(0, users - 1))
  end
  return wrk.format("POST", "/get-online-features", {["Content-Type"] = "application/json"},
                    head .. table.concat(ids, ",") .. ']}}')
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 return end
  local served = headers["x-served-versions"] or headers["X-Served-Versions"] or ""
  for major in string.gmatch(served, "[=,](%d+)") do
    if major == "1" then major1 = major1 + 1 elseif major == "2" then major2 = major2 + 1 end
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local bad, m1, m2 = 0, 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non200") or 0)
    m1 = m1 + (thread:get("major1") or 0)
    m2 = m2 + (thread:get("major2") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_200": %d, "socket_errors": %d, "major_1": %d, "major_2": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, m1, m2,
    latency:percentile(50), latency:percentile(99), latency.max))
end
