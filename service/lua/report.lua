--[[
A reader's report of a published comment. One report per reader and comment: a repeat changes
nothing and is answered with the comment's standing. The report that brings the count to the
site's threshold puts the comment in the "reported" queue (it stays published, state "approved",
with the reason "REPORTED" added), keeps it until a moderator decides, and records the change in
the history, the audit stream and the outbox ("comment.reported").

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  reports hash               civ:{site}:reports:<id>
KEYS[3]  history list               civ:{site}:history:<id>
KEYS[4]  audit stream               civ:{site}:audit
KEYS[5]  outbox stream              civ:{site}:outbox
KEYS[6]  reported queue by age      civ:{site}:queue:reported:oldest
KEYS[7]  site record                civ:{site}:site

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  site id
ARGV[3]  comment id                        ARGV[4]  reporter id
ARGV[5]  report JSON {reason, note, at}    ARGV[6]  the site's report threshold
ARGV[7]  now (ms)                          ARGV[8]  outbox event id
ARGV[9]  outbox event type                 ARGV[10] states a report may find (comma separated)

Derived keys: the reporter's erasure marker (civ:{site}:erasure:<reporter>), which a report
must not find; the reported queue indexes of the comment's article, author and reasons, and the
browse indexes of "approved" (civ:{site}:comments:approved[:article:<a>|:author:<u>]), which
stop expiring while the comment is kept (file_state gives them their expiry back).

A report of an erased comment keeps no note: the host, not told of the erasure, may still show
the text, and a note may quote it.

Returns {"counted" or "repeat", state, reports, in the reported queue (1/0)}; {"not_found"};
{"erasing", the marker's remaining ms} while the reporter's erasure runs;
{"invalid_transition", state}; or {"gone"} when the site was deleted (since the caller read its
record: its purge may not have reached the comment yet).
]]

local prefix, site, id, reporter = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local threshold, now = tonumber(ARGV[6]), ARGV[7]

if redis.call("EXISTS", KEYS[7]) == 0 then
  return {"gone"}
end
-- A reader whose erasure is running, or ended within the minute its marker outlives it, could
-- report where the erasure has already looked: nothing is written, and sent again after the
-- marker the report is new data.
local erasing = redis.call("PTTL", prefix .. "erasure:" .. reporter)
if erasing ~= -2 then
  return {"erasing", erasing}
end
local stored = redis.call("HMGET", KEYS[1], "state", "article_id", "author_id", "priority",
  "model", "reasons", "erased_at")
local state = stored[1]
if not state then
  return {"not_found"}
end
local queued = redis.call("ZSCORE", KEYS[6], id) and 1 or 0
if redis.call("HEXISTS", KEYS[2], reporter) == 1 then
  return {"repeat", state, redis.call("HLEN", KEYS[2]), queued}
end
if not listed(ARGV[10], state) then
  return {"invalid_transition", state}
end

local kept = ARGV[5]
if stored[7] then
  -- The comment's author was erased, and the host, not told, may still show its text: a note
  -- may quote it, so the report keeps its reason and time only, as the erasure left those before.
  local report = cjson.decode(kept)
  kept = cjson.encode({reason = report.reason, at = report.at})
end
redis.call("HSET", KEYS[2], reporter, kept)
local count = redis.call("HLEN", KEYS[2])
-- The count travels with the comment, so every listing shows it without reading the reports.
redis.call("HSET", KEYS[1], "reports", count)
if queued == 0 and count >= threshold then
  local reasons = cjson.decode(stored[6])
  reasons[#reasons + 1] = "REPORTED"
  local reasons_json = cjson.encode(reasons)
  keep_creation(KEYS[1], KEYS[3])
  local version = redis.call("HINCRBY", KEYS[1], "version", 1)
  redis.call("HSET", KEYS[1], "reasons", reasons_json, "updated_at", now,
    "last_event_id", ARGV[8])
  -- It ages in the reported queue from this report, not from when it was written.
  enqueue(prefix, "reported", id, stored[2], stored[3], stored[4], now, reasons_json)
  record(KEYS[3], KEYS[4], KEYS[5], {
    id = id, site = site, version = version, now = now, actor = "readers", action = "report",
    from = state, to = state, reasons = reasons_json, note = "null",
    model = stored[5] and cjson.encode(stored[5]) or "null",
    event_id = ARGV[8], event_type = ARGV[9],
  })
  retain(prefix, id, 0)
  -- Its browse entries keep its decision time, so only their indexes' expiry could lose it.
  for _, key in ipairs(state_indexes(prefix, "approved", stored[2], stored[3])) do
    redis.call("PERSIST", key)
  end
  queued = 1
else
  -- Reports live exactly as long as the comment they are about.
  local ttl = redis.call("PTTL", KEYS[1])
  if ttl > 0 then
    redis.call("PEXPIRE", KEYS[2], ttl)
  end
end
return {"counted", state, count, queued}
