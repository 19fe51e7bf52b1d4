--[[
A moderator's token authenticated: note when, if the moderator is still listed (a revoked one is
not, and its token then fails at once on every process: nothing caches a token).

KEYS[1]  moderators hash            civ:{site}:moderators
KEYS[2]  last used hash             civ:{site}:moderators:last_used

ARGV[1]  moderator id               ARGV[2]  now (ms)

Returns 1, or 0 when the moderator is not (or no longer) listed.
]]

if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
return 1
