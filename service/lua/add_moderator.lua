--[[
Add a moderator to an existing site.

KEYS[1]  site hash                  civ:{site}:site
KEYS[2]  moderators hash            civ:{site}:moderators

ARGV[1]  moderator id               ARGV[2]  moderator JSON

Returns 1, or 0 when the site does not exist.
]]

if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
return 1
