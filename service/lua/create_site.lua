--[[
Create a site unless one with this id exists.

KEYS[1]  site hash                  civ:{site}:site

ARGV: field, value, field, value, ... (id, name, callback_url, policy, secrets, timestamps)

Returns 1 when created, 0 when the site already existed (nothing is changed then).
]]

if redis.call("EXISTS", KEYS[1]) == 1 then
  return 0
end
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1
