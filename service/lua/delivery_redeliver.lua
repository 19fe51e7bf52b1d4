--[[
Schedule a failed (or already delivered) event for delivery again, from a fresh attempt count.

KEYS[1]  due deliveries zset        civ:{site}:deliveries:due
KEYS[2]  pending deliveries zset    civ:{site}:deliveries:pending
KEYS[3]  delivered deliveries zset  civ:{site}:deliveries:delivered
KEYS[4]  failed deliveries zset     civ:{site}:deliveries:failed
KEYS[5]  the delivery record        civ:{site}:delivery:<event id>

ARGV[1]  site key prefix "civ:{site}:"   ARGV[2]  event id
ARGV[3]  now (ms)

Derived key: the comment's line civ:{site}:deliveries:line:<comment id>. A failed event is still
at the head of its line and becomes due at once. A delivered event had left the line; it joins
its end, so it is sent again after any event of the comment already waiting, never before one.

Returns {"ok", fields}; {"not_found"} (also when the site was deleted since the caller read its
record: civ:{site}:site); or {"pending", fields} when it is already scheduled.
]]

local prefix, event_id, now = ARGV[1], ARGV[2], ARGV[3]
-- What this scheduled behind the site's purge would be left for a new site of that id.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return {"not_found"}
end
local stored = redis.call("HMGET", KEYS[5], "state", "comment_id", "created_at")
if not stored[1] then
  return {"not_found"}
end
if stored[1] == "pending" then
  return {"pending", redis.call("HGETALL", KEYS[5])}
end
redis.call("ZREM", KEYS[3], event_id)
redis.call("ZREM", KEYS[4], event_id)
redis.call("ZADD", KEYS[2], stored[3], event_id)
redis.call("PERSIST", KEYS[5])
redis.call("HSET", KEYS[5], "state", "pending", "attempts", 0, "updated_at", now,
  "next_attempt_at", "", "lease", "")
redis.call("HDEL", KEYS[5], "delivered_at", "failed_at")
local line = prefix .. "deliveries:line:" .. stored[2]
if not redis.call("LPOS", line, event_id) then
  redis.call("RPUSH", line, event_id)
end
if redis.call("LINDEX", line, 0) == event_id then
  redis.call("HSET", KEYS[5], "next_attempt_at", now)
  redis.call("ZADD", KEYS[1], now, event_id)
end
return {"ok", redis.call("HGETALL", KEYS[5])}
