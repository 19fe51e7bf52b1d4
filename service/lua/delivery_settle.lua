--[[
Record the outcome of one leased delivery attempt: delivered, retry later, or failed for good.

KEYS[1]  due deliveries zset        civ:{site}:deliveries:due
KEYS[2]  pending deliveries zset    civ:{site}:deliveries:pending
KEYS[3]  delivered deliveries zset  civ:{site}:deliveries:delivered
KEYS[4]  failed deliveries zset     civ:{site}:deliveries:failed
KEYS[5]  the delivery record        civ:{site}:delivery:<event id>
KEYS[6]  the comment's line         civ:{site}:deliveries:line:<comment id>
KEYS[7]  (optional) a hash the attempt waited on: a decision into Coral waiting for Coral's ids,
         the comment's Coral link civ:{site}:coral:link:<comment id>

ARGV[1]  site key prefix "civ:{site}:"   ARGV[2]  event id
ARGV[3]  lease token of the attempt     ARGV[4]  outcome: delivered, retry, failed, given_up or
                                                 hand_back
ARGV[5]  now (ms)                       ARGV[6]  next attempt (ms, for retry)
ARGV[7]  HTTP status ("" when none)     ARGV[8]  error text ("" when none)
ARGV[9]  how long a delivered record is kept (ms)
ARGV[10] how many delivered records the delivered index keeps
ARGV[11] how many field, value pairs of KEYS[7] follow (0 without KEYS[7])
ARGV[12..] field, value, ... of KEYS[7] as the attempt read them; then field, value, ... to set
         in KEYS[7] when the event is dead-lettered (a decision into Coral given up: Coral's
         own decisions count again), in the same step, so the hash never says so of an event
         still pending

Derived keys: the record of the comment's next event, civ:{site}:delivery:<event id>.

Retry: due at ARGV[6]; at once when a field of KEYS[7] has changed since the attempt read it
(what it waited for came during it, and the script that wrote it left the attempt to itself).
Failed on such a change: a retry due at once instead of a dead letter, and the attempt is not
counted, so the next one is the last again; another failure fails for good unless the fields
changed again during it, so each further attempt takes another change (another webhook).
Delivered: the event leaves its comment's line and the next event of that comment becomes due.
Failed (dead letter): the event keeps its place at the head of the line, so later events of the
same comment wait behind it until it is redelivered; per-comment order is never broken.
Given up (failed for a reason no attempt can change): failed, and it leaves its line as a
delivered event does, since later events waiting behind it would wait for ever; a redelivery puts
it at the end of its line.
Handed back (a stopping worker cut the attempt short): the lease ends and the event is due at
once, still at the head of its line, and the attempt it was leased for is not counted.

Returns "ok"; "retry" when a failure became a retry (see above); "stale" when the lease was lost
(it ran out and another worker took over); or "gone" when the site was deleted during the attempt
(civ:{site}:site).
]]

local prefix, event_id, now = ARGV[1], ARGV[2], ARGV[5]
-- The purge may have passed the indexes and the next event's record: what this wrote there would
-- be left for a new site of that id.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return "gone"
end
local stored = redis.call("HMGET", KEYS[5], "state", "lease")
if stored[1] ~= "pending" or stored[2] ~= ARGV[3] then
  return "stale"
end
local outcome = ARGV[4]
if outcome == "hand_back" then
  -- No outcome to record: what the last finished attempt met stays.
  redis.call("HINCRBY", KEYS[5], "attempts", -1)
  redis.call("HSET", KEYS[5], "updated_at", now, "lease", "", "next_attempt_at", now)
  redis.call("ZADD", KEYS[1], now, event_id)
  return "ok"
end
redis.call("HSET", KEYS[5], "last_status", ARGV[7], "last_error", ARGV[8], "updated_at", now,
  "lease", "")
local read_end = 11 + 2 * tonumber(ARGV[11])
local came = false
for index = 12, read_end, 2 do
  if (redis.call("HGET", KEYS[7], ARGV[index]) or "") ~= ARGV[index + 1] then
    came = true
    break
  end
end
if outcome == "failed" and came then
  -- What the last attempt waited for came during it, too late for it to use.
  redis.call("HINCRBY", KEYS[5], "attempts", -1)
  redis.call("HSET", KEYS[5], "next_attempt_at", now)
  redis.call("ZADD", KEYS[1], now, event_id)
  return "retry"
end
if outcome == "retry" then
  local at = came and now or ARGV[6]
  redis.call("HSET", KEYS[5], "next_attempt_at", at)
  redis.call("ZADD", KEYS[1], at, event_id)
  return "ok"
end
redis.call("ZREM", KEYS[1], event_id)
redis.call("ZREM", KEYS[2], event_id)
redis.call("HSET", KEYS[5], "next_attempt_at", "")
if outcome == "failed" or outcome == "given_up" then
  redis.call("HSET", KEYS[5], "state", "failed", "failed_at", now)
  redis.call("ZADD", KEYS[4], now, event_id)
  -- A hash gone meanwhile (its comment past the retention) is not written again, without expiry.
  if #ARGV > read_end and redis.call("EXISTS", KEYS[7]) == 1 then
    redis.call("HSET", KEYS[7], unpack(ARGV, read_end + 1))
  end
  if outcome == "failed" then
    return "ok"
  end
else
  redis.call("HSET", KEYS[5], "state", "delivered", "delivered_at", now)
  redis.call("PEXPIRE", KEYS[5], ARGV[9])
  redis.call("ZADD", KEYS[3], now, event_id)
  local kept = tonumber(ARGV[10])
  local count = redis.call("ZCARD", KEYS[3])
  if count > kept then
    redis.call("ZREMRANGEBYRANK", KEYS[3], 0, count - kept - 1)
  end
end
redis.call("LREM", KEYS[6], 1, event_id)
local next_event = redis.call("LINDEX", KEYS[6], 0)
if next_event then
  redis.call("HSET", prefix .. "delivery:" .. next_event, "next_attempt_at", now)
  redis.call("ZADD", KEYS[1], "NX", now, next_event)
end
return "ok"
