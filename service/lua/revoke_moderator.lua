--[[
Remove a moderator from its site: its token stops authenticating at once (touch_moderator finds
it no longer listed).

KEYS[1]  moderators hash            civ:{site}:moderators
KEYS[2]  last used hash             civ:{site}:moderators:last_used

ARGV[1]  moderator id

Returns the moderator's stored JSON, or false when no such moderator is listed.
]]

local stored = redis.call("HGET", KEYS[1], ARGV[1])
if not stored then
  return false
end
redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
return stored
