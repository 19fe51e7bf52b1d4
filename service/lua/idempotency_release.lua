--[[
Give a key back after a request whose outcome is unknown (Redis failed it): the retry runs the
request again, and the write, keyed by the idempotency key, finds itself already done if it was.

KEYS[1]  the record hash            civ:{site}:idempotency:<digest>

ARGV[1]  sha256 of the request body

Returns 1 when the record was removed, 0 when it was not this request's running record.
]]

local record = redis.call("HMGET", KEYS[1], "body_hash", "state")
if record[1] ~= ARGV[1] or record[2] ~= "running" then
  return 0
end
return redis.call("DEL", KEYS[1])
