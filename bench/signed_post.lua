-- wrk script: POST pre-signed Twilio webhooks, each request line used once.
-- Usage: wrk ... -s bench/signed_post.lua URL -- DATA_FILE PATH THREADS
-- DATA_FILE holds "signature<TAB>form body" lines (bench/signed.py). Thread n (1-based) sends
-- lines n, n+THREADS, n+2*THREADS, ... in order, so the Sids sent are known from the counts.
-- done() prints one line "BENCH_JSON {...}" with wrk's summary and the per-thread counts.

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file, path, stride = args[1], args[2], tonumber(args[3])
   requests_ = {}
   local index = 0
   for line in io.lines(file) do
      if index % stride == id - 1 then
         local tab = string.find(line, "\t", 1, true)
         local headers = {
            ["Content-Type"] = "application/x-www-form-urlencoded",
            ["X-Twilio-Signature"] = string.sub(line, 1, tab - 1),
         }
         requests_[#requests_ + 1] = wrk.format("POST", path, headers, string.sub(line, tab + 1))
      end
      index = index + 1
   end
   loaded = #requests_
   issued = 0
   ok = 0
   other = 0
   exhausted = 0
end

function request()
   issued = issued + 1
   if issued > loaded then
      -- Out of fresh requests: repeats would be deduplicated, so the run reports it.
      exhausted = 1
      return requests_[((issued - 1) % loaded) + 1]
   end
   return requests_[issued]
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local parts = {}
   for _, thread in ipairs(threads) do
      parts[#parts + 1] = string.format(
         '{"id":%d,"loaded":%d,"issued":%d,"ok":%d,"other":%d,"exhausted":%d}',
         thread:get("id"), thread:get("loaded"), thread:get("issued"), thread:get("ok"),
         thread:get("other"), thread:get("exhausted"))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"max":%.1f,"mean":%.1f},' ..
      '"threads":[%s]}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, table.concat(parts, ",")))
end
