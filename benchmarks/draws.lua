-- wrk script for bench_serving.py: draw submissions, round-robin over each thread's patients.
-- Environment: CTCMON_TOKEN, CTCMON_PATIENTS (per thread), CTCMON_ACKS (file prefix),
-- CTCMON_PREFIX (patient ids <prefix>-<thread>-<k>, default "load": one per wrk process).
-- Each acknowledged (201) assessment id is written to <prefix>-<thread>.txt so the benchmark
-- can compare what the service acknowledged with what it stored.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  token = os.getenv("CTCMON_TOKEN")
  patients = tonumber(os.getenv("CTCMON_PATIENTS"))
  prefix = os.getenv("CTCMON_PREFIX") or "load"
  acks = io.open(os.getenv("CTCMON_ACKS") .. "-" .. tid .. ".txt", "w")
  acks:setvbuf("line")
  n = 0
end

local function date_of(days)
  -- days after 2020-01-02, as YYYY-MM-DD (os.date on a UTC timestamp)
  return os.date("!%Y-%m-%d", 1577923200 + days * 86400)
end

function request()
  local k = n % patients
  local cycle = math.floor(n / patients)
  local pid = prefix .. "-" .. tid .. "-" .. k
  local day = date_of(30 * cycle)
  local body = string.format(
    '{"date":"%s","measurements":[{"marker":"ctc_total","value":%d,"unit":"cells/7.5mL"},' ..
    '{"marker":"afp","value":%.1f,"unit":"ng/mL"}]}', day, n % 4, 3.0 + n % 7)
  n = n + 1
  return wrk.format("POST", "/v1/patients/" .. pid .. "/draws", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = pid .. "-" .. day,
  }, body)
end

function response(status, headers, body)
  -- one line per response: status and, when acknowledged, the assessment id
  local id = status == 201 and body:match('"assessment_id"%s*:%s*"([^"]+)"') or "-"
  acks:write(status, " ", id, "\n")
end

function done(summary, latency, requests)
  io.write(string.format("wrk: %d requests, %d non-2xx/3xx, %d socket errors\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("wrk latency p%d %.1f ms\n", p, latency:percentile(p) / 1000))
  end
end
