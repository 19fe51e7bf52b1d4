--[[
The first step of a request sent with an Idempotency-Key: take the key, or find the answer kept
under it. A record lives until "expires_at" by the service's clock (and natively as long, so
Redis drops it by itself); a request that started and never finished holds the key until
"running_until", after which a retry runs it again.

KEYS[1]  the record hash            civ:{site}:idempotency:<digest>

ARGV[1]  sha256 of the request body        ARGV[2]  now (ms)
ARGV[3]  how long (ms) a started request holds the key
ARGV[4]  how long (ms) the record is kept from the first request

Returns {"started"}; {"reused"} (the key came with another body); {"running"}; or
{"done", status, answer, content type}.
]]

local record = redis.call("HMGET", KEYS[1], "body_hash", "state", "status", "answer",
  "content_type", "expires_at", "running_until")
local now = tonumber(ARGV[2])
local expires_at = now + tonumber(ARGV[4])
if record[1] and tonumber(record[6]) > now then
  if record[1] ~= ARGV[1] then
    return {"reused"}
  end
  if record[2] == "done" then
    return {"done", record[3], record[4], record[5]}
  end
  if tonumber(record[7]) > now then
    return {"running"}
  end
  -- Started by a request that never finished (its process died, or Redis failed it): this
  -- retry runs it again, within the day the first request opened.
  expires_at = tonumber(record[6])
end

redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], "body_hash", ARGV[1], "state", "running",
  "expires_at", string.format("%d", expires_at),
  "running_until", string.format("%d", now + tonumber(ARGV[3])))
redis.call("PEXPIRE", KEYS[1], math.max(1, expires_at - now))
return {"started"}
