--[[
Give a site a new api key; the current one stays valid until the grace deadline.

KEYS[1]  site hash                  civ:{site}:site

ARGV[1]  sha256 of the new key      ARGV[2]  now (ms)
ARGV[3]  previous key valid until (ms)

Returns the sha256 of the key it replaced, or false when the site does not exist.
]]

local current = redis.call("HGET", KEYS[1], "api_key_hash")
if not current then
  return false
end
redis.call("HSET", KEYS[1], "api_key_hash", ARGV[1], "previous_api_key_hash", current,
  "previous_api_key_valid_until", ARGV[3], "updated_at", ARGV[2])
return current
