--[[
Issue a new webhook secret; the current one stays valid until the grace deadline. Only two
secrets are ever valid: a previous one still in grace is dropped.

KEYS[1]  site hash                  civ:{site}:site

ARGV[1]  new secret                 ARGV[2]  now (ms)
ARGV[3]  previous secret valid until (ms)

Returns 1, or 0 when the site does not exist.
]]

local current = redis.call("HGET", KEYS[1], "webhook_secret")
if not current then
  return 0
end
redis.call("HSET", KEYS[1], "webhook_secret", ARGV[1], "previous_secret", current,
  "previous_valid_until", ARGV[3], "updated_at", ARGV[2])
return 1
