--[[
Set fields of a hash that must already exist (a site), so a write racing a missing site never
creates half a record.

KEYS[1]  the hash

ARGV: field, value, field, value, ...

Returns 1 when written, 0 when the hash does not exist.
]]

if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1
