--[[
Lease the deliveries that are due: each is pushed out of reach for the lease time, stamped with
the caller's token and counted as an attempt. A worker that dies mid-delivery never settles, so
its lease runs out and another worker attempts the delivery again (at least once).

KEYS[1]  due deliveries zset       civ:{site}:deliveries:due

ARGV[1]  site key prefix "civ:{site}:"   ARGV[2]  now (ms)
ARGV[3]  most deliveries to lease        ARGV[4]  lease (ms)
ARGV[5]  lease token (unique per attempt batch)

Derived keys: the delivery records civ:{site}:delivery:<event id>.

Returns one flat field/value list per leased delivery record.
]]

local prefix, now = ARGV[1], tonumber(ARGV[2])
local due = redis.call("ZRANGE", KEYS[1], "-inf", now, "BYSCORE", "LIMIT", 0, ARGV[3])
local leased = {}
for _, event_id in ipairs(due) do
  local record = prefix .. "delivery:" .. event_id
  if redis.call("HGET", record, "state") ~= "pending" then
    redis.call("ZREM", KEYS[1], event_id)
  else
    redis.call("ZADD", KEYS[1], now + tonumber(ARGV[4]), event_id)
    redis.call("HINCRBY", record, "attempts", 1)
    redis.call("HSET", record, "lease", ARGV[5], "updated_at", now)
    table.insert(leased, redis.call("HGETALL", record))
  end
end
return leased
